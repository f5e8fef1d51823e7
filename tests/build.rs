//! Builds the first-party plugins (`plugins/`) and the test guests (`tests/guests/`) for
//! wasm32-wasip2 and exposes each component's path as a constant in `portico_tests::artifacts`,
//! e.g. `artifacts::SCAFFOLD_SERVICE`, `artifacts::INFINITE_LOOP`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest
        .parent()
        .expect("tests/ is inside the repository")
        .to_owned();
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));

    for watched in ["wit", "sdk/src", "sdk/Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }

    let mut consts = String::new();
    for workspace in ["plugins", "tests/guests"] {
        let dir = root.join(workspace);
        println!(
            "cargo:rerun-if-changed={}",
            dir.join("Cargo.toml").display()
        );
        let members = members(&dir);
        for member in &members {
            println!(
                "cargo:rerun-if-changed={}",
                dir.join(member).join("src").display()
            );
            println!(
                "cargo:rerun-if-changed={}",
                dir.join(member).join("Cargo.toml").display()
            );
        }
        build(&dir);
        for member in &members {
            let wasm = dir
                .join("target/wasm32-wasip2/release")
                .join(format!("{}.wasm", member.replace('-', "_")));
            assert!(wasm.exists(), "{} was not built", wasm.display());
            let name = member.to_uppercase().replace('-', "_");
            consts.push_str(&format!(
                "/// `{workspace}/{member}` built for wasm32-wasip2.\npub const {name}: &str = {:?};\n",
                wasm.display().to_string()
            ));
        }
    }
    // Compiled plugins survive between test runs here, as they would between server starts.
    consts.push_str(&format!(
        "/// Where the test runtime caches compiled plugins across test processes.\npub const CACHE_DIR: &str = {:?};\n",
        out.join("plugin-cache").display().to_string()
    ));
    std::fs::write(out.join("artifacts.rs"), consts).expect("OUT_DIR is writable");
}

/// Member folders: every subfolder with a Cargo.toml.
fn members(workspace: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(workspace)
        .expect("workspace folder exists")
        .flatten()
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn build(workspace: &Path) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(workspace)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        // The outer build's settings are for the host target, not for these guests.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_PROFILE_RELEASE_DEBUG")
        .env_remove("CARGO_LLVM_COV")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .status()
        .expect("cargo runs");
    assert!(
        status.success(),
        "building {} for wasm32-wasip2 failed (is the target installed? `rustup target add wasm32-wasip2`)",
        workspace.display()
    );
}

//! Builds the first-party plugins (`plugins/`) and the test guests (`tests/guests/`) for
//! wasm32-wasip2 and exposes each component's path as a constant in `portico_tests::artifacts`,
//! e.g. `artifacts::SCAFFOLD_SERVICE`, `artifacts::INFINITE_LOOP`. The Python and JavaScript
//! guests (`tests/guests-py`, `tests/guests-js`) and example plugins (`plugins/*-py`,
//! `plugins/*-ts`) are built too, with the tools `scripts/setup` installs, e.g.
//! `artifacts::PY_PROBE`, `artifacts::NOTIFY_PY`.

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
    consts.push_str(&interpreted::build_all(&root, &out));
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

/// Python and JavaScript components: componentize-py and the JavaScript SDK's build script
/// (esbuild + jco), run as `portico plugin build` runs them, against the repository's WIT and
/// SDKs. The two languages build side by side (each tool is mostly one thread).
mod interpreted {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// A guest: its folder, relative to the repository, its constant's name and its file's
    /// name (a plugins folder names each plugin by its file: `notify_py.wasm` is `notify-py`).
    const PYTHON: &[(&str, &str, &str)] = &[
        ("tests/guests-py/probe", "PY_PROBE", "py_probe.wasm"),
        ("tests/guests-py/noop", "PY_NOOP", "py_noop.wasm"),
        ("plugins/notify-py", "NOTIFY_PY", "notify_py.wasm"),
    ];
    const JAVASCRIPT: &[(&str, &str, &str)] = &[
        ("tests/guests-js/probe", "JS_PROBE", "js_probe.wasm"),
        ("tests/guests-js/noop", "JS_NOOP", "js_noop.wasm"),
        (
            "plugins/open-pull-request-ts",
            "OPEN_PULL_REQUEST",
            "open_pull_request.wasm",
        ),
    ];

    pub fn build_all(root: &Path, out: &Path) -> String {
        for watched in [
            "sdk/python/src",
            "sdk/js/src",
            "sdk/js/bin",
            "sdk/js/package-lock.json",
        ] {
            println!("cargo:rerun-if-changed={}", root.join(watched).display());
        }
        let dir = out.join("interpreted");
        std::fs::create_dir_all(&dir).expect("OUT_DIR is writable");
        let python = {
            let (root, dir) = (root.to_owned(), dir.clone());
            std::thread::spawn(move || {
                PYTHON
                    .iter()
                    .map(|(guest, name, file)| (name, python(&root, guest, &dir.join(file))))
                    .collect::<Vec<_>>()
            })
        };
        let javascript: Vec<_> = JAVASCRIPT
            .iter()
            .map(|(guest, name, file)| (name, javascript(root, guest, &dir.join(file))))
            .collect();
        let mut built = python.join().expect("the Python builds finish");
        built.extend(javascript);
        built
            .iter()
            .map(|(name, wasm)| {
                format!(
                    "/// Built from Python or JavaScript with the repository's SDK.\npub const {name}: &str = {:?};\n",
                    wasm.display().to_string()
                )
            })
            .collect()
    }

    fn watch(folder: &Path) {
        println!("cargo:rerun-if-changed={}", folder.display());
        for entry in std::fs::read_dir(folder).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() && !matches!(&*name, "node_modules" | "dist" | "__pycache__") {
                watch(&path);
            } else if path.is_file() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }

    fn python(root: &Path, guest: &str, wasm: &Path) -> PathBuf {
        let folder = root.join(guest);
        watch(&folder);
        let tool = root.join(".tools/py/bin/componentize-py");
        let mut command = Command::new(&tool);
        command
            .current_dir(&folder)
            .arg("-d")
            .arg(root.join("wit"))
            .args(["-w", "action-backend", "componentize", "app", "-p", "."])
            .arg("-p")
            .arg(root.join("sdk/python/src"))
            .arg("-o")
            .arg(wasm);
        run(command, &tool, guest);
        wasm.to_owned()
    }

    fn javascript(root: &Path, guest: &str, wasm: &Path) -> PathBuf {
        let folder = root.join(guest);
        watch(&folder);
        let entry = ["src/index.ts", "src/index.js", "index.ts", "index.js"]
            .into_iter()
            .map(|e| folder.join(e))
            .find(|e| e.is_file())
            .unwrap_or_else(|| panic!("{guest} has no entry module"));
        let script = root.join("sdk/js/bin/portico-js-build.mjs");
        let mut command = Command::new("node");
        command
            .current_dir(&folder)
            .arg(&script)
            .arg("--entry")
            .arg(&entry)
            .arg("--wit")
            .arg(root.join("wit"))
            .arg("-o")
            .arg(wasm);
        run(command, &script, guest);
        wasm.to_owned()
    }

    fn run(mut command: Command, tool: &Path, guest: &str) {
        let output = command.output().unwrap_or_else(|e| {
            panic!("{}: {e} (run scripts/setup to install it)", tool.display())
        });
        assert!(
            output.status.success(),
            "building {guest} with {} failed (run scripts/setup if a tool is missing):\n{}{}",
            tool.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

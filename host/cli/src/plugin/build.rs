//! `portico plugin build [DIR]`: turns a plugin folder into a component with its language's
//! tool, so an author needs one command whatever they write in: `cargo` for Rust,
//! `componentize-py` for Python, the JavaScript SDK's `portico-js-build` (esbuild + jco) for
//! JavaScript and TypeScript. The contract's WIT is built into this binary, so a Python or
//! JavaScript plugin builds against exactly the contract this host runs.

use crate::error::CliError;
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

/// `plugin build` arguments.
#[derive(Args)]
pub struct BuildArgs {
    /// The plugin folder: a Rust crate (Cargo.toml), a JavaScript/TypeScript package
    /// (package.json) or a Python plugin (app.py).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Where to write the component [default: Rust: target/wasm32-wasip2/release/CRATE.wasm;
    /// Python and JavaScript: dist/FOLDER.wasm].
    #[arg(long)]
    out: Option<PathBuf>,
    /// A Portico checkout's `sdk` folder, for a plugin whose SDK is not installed next to it: a
    /// Python plugin is built with `sdk/python/src` on its path, a JavaScript plugin without
    /// `node_modules` with `sdk/js`'s build script.
    #[arg(long, env = "PORTICO_SDK")]
    sdk: Option<PathBuf>,
}

/// What a plugin folder is written in, told by the file that only that language has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language {
    /// `Cargo.toml`.
    Rust,
    /// `app.py` (the module componentize-py starts from).
    Python,
    /// `package.json`.
    JavaScript,
}

impl Language {
    /// The language of the plugin in `dir`.
    pub fn of(dir: &Path) -> Result<Self, CliError> {
        if dir.join("Cargo.toml").is_file() {
            Ok(Self::Rust)
        } else if dir.join("package.json").is_file() {
            Ok(Self::JavaScript)
        } else if dir.join("app.py").is_file() {
            Ok(Self::Python)
        } else {
            Err(CliError::local(format!(
                "{} is not a plugin folder: it has no Cargo.toml (Rust), package.json \
                 (JavaScript/TypeScript) or app.py (Python); `portico plugin new NAME --lang \
                 rust|python|js` makes one",
                dir.display()
            )))
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Rust => "Rust",
            Self::Python => "Python",
            Self::JavaScript => "JavaScript",
        }
    }
}

/// The pinned Python tool: the SDK and the host are tested with this version.
pub const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

/// The contract this binary runs plugins against, file by file (`deps/` holds WASI 0.2).
const CONTRACT: &[(&str, &str)] = &[
    ("action.wit", include_str!("../../../../wit/action.wit")),
    ("deps/cli.wit", include_str!("../../../../wit/deps/cli.wit")),
    (
        "deps/clocks.wit",
        include_str!("../../../../wit/deps/clocks.wit"),
    ),
    (
        "deps/filesystem.wit",
        include_str!("../../../../wit/deps/filesystem.wit"),
    ),
    (
        "deps/http.wit",
        include_str!("../../../../wit/deps/http.wit"),
    ),
    ("deps/io.wit", include_str!("../../../../wit/deps/io.wit")),
    (
        "deps/random.wit",
        include_str!("../../../../wit/deps/random.wit"),
    ),
    (
        "deps/sockets.wit",
        include_str!("../../../../wit/deps/sockets.wit"),
    ),
];

/// Builds the plugin and says where the component is.
pub(super) fn run(args: BuildArgs) -> Result<ExitCode, CliError> {
    let started = Instant::now();
    let language = Language::of(&args.dir)?;
    let out = build(
        &args.dir,
        language,
        args.out.as_deref(),
        args.sdk.as_deref(),
    )?;
    let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    println!(
        "Built {} ({} bytes, {}) in {:.1} s",
        out.display(),
        size,
        language.name(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "Next: portico plugin test {} --action action.json",
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Builds the plugin in `dir` and returns the component's path.
pub fn build(
    dir: &Path,
    language: Language,
    out: Option<&Path>,
    sdk: Option<&Path>,
) -> Result<PathBuf, CliError> {
    match language {
        Language::Rust => {
            let built = build_rust(dir)?;
            let Some(out) = out else { return Ok(built) };
            std::fs::copy(&built, out)
                .map_err(|e| CliError::local(format!("{}: {e}", out.display())))?;
            Ok(out.to_owned())
        }
        Language::Python => build_python(dir, &default_out(dir, out)?, sdk),
        Language::JavaScript => build_javascript(dir, &default_out(dir, out)?, sdk),
    }
}

/// componentize-py: the plugin's `.venv` one (made active, so it finds the SDK installed
/// there), else the one on PATH with `--sdk`'s Python SDK on the module path.
fn build_python(dir: &Path, out: &Path, sdk: Option<&Path>) -> Result<PathBuf, CliError> {
    let tool = local_tool(dir, ".venv/bin/componentize-py", "componentize-py");
    let mut command = Command::new(&tool);
    command.arg("-d").arg(contract_dir()?);
    command.args(["-w", "action-backend", "componentize", "app", "-p", "."]);
    if let Some(sdk) = sdk {
        let src = std::path::absolute(sdk.join("python/src"))
            .map_err(|e| CliError::local(format!("{}: {e}", sdk.display())))?;
        command.arg("-p").arg(src);
    }
    command.arg("-o").arg(out);
    if dir.join(".venv/bin/componentize-py").is_file() {
        let venv = std::path::absolute(dir.join(".venv")).unwrap_or_default();
        command.env("VIRTUAL_ENV", venv);
    }
    run_tool(dir, command, &tool, || {
        format!(
            "python3 -m venv .venv && .venv/bin/pip install {COMPONENTIZE_PY} \
             /path/to/portico/sdk/python (the README in the plugin folder says which)"
        )
    })?;
    Ok(out.to_owned())
}

/// The JavaScript SDK's `portico-js-build` (esbuild, then jco): the plugin's own from `npm
/// install`, else `--sdk`'s, else one on PATH.
fn build_javascript(dir: &Path, out: &Path, sdk: Option<&Path>) -> Result<PathBuf, CliError> {
    let entry = ["src/index.ts", "src/index.js", "index.ts", "index.js"]
        .into_iter()
        .find(|e| dir.join(e).is_file())
        .ok_or_else(|| {
            CliError::local(format!(
                "{}: no entry module (src/index.ts, src/index.js, index.ts or index.js)",
                dir.display()
            ))
        })?;
    let installed = dir.join("node_modules/.bin/portico-js-build");
    let checkout = sdk
        .map(|sdk| sdk.join("js/bin/portico-js-build.mjs"))
        .filter(|script| script.is_file() && !installed.is_file());
    let (tool, mut command) = match checkout {
        Some(script) => {
            let script = std::path::absolute(&script).unwrap_or(script);
            let mut node = Command::new("node");
            node.arg(&script);
            (script, node)
        }
        None => {
            let tool = local_tool(
                dir,
                "node_modules/.bin/portico-js-build",
                "portico-js-build",
            );
            (tool.clone(), Command::new(tool))
        }
    };
    command.args(["--entry", entry, "--wit"]);
    command.arg(contract_dir()?).arg("-o").arg(out);
    run_tool(dir, command, &tool, || "npm install".to_owned())?;
    Ok(out.to_owned())
}

/// `cargo build --release --target wasm32-wasip2`, and where cargo put the component.
fn build_rust(dir: &Path) -> Result<PathBuf, CliError> {
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml"))
        .map_err(|e| CliError::local(format!("{}: {e}", dir.join("Cargo.toml").display())))?;
    let manifest: toml::Table = toml::from_str(&manifest)
        .map_err(|e| CliError::local(format!("{}: {e}", dir.join("Cargo.toml").display())))?;
    let name = manifest
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .ok_or_else(|| CliError::local("Cargo.toml has no [package] name"))?
        .replace('-', "_");
    let mut command = Command::new("cargo");
    command.args(["build", "--release", "--target", "wasm32-wasip2"]);
    run_tool(dir, command, Path::new("cargo"), || {
        "rustup target add wasm32-wasip2".to_owned()
    })?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join("target"));
    Ok(target
        .join("wasm32-wasip2/release")
        .join(format!("{name}.wasm")))
}

/// `--out`, else `dist/<folder name>.wasm` (its folder created).
fn default_out(dir: &Path, out: Option<&Path>) -> Result<PathBuf, CliError> {
    let out = match out {
        Some(out) => std::path::absolute(out),
        None => {
            let name = std::path::absolute(dir)
                .ok()
                .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "plugin".into());
            std::path::absolute(dir.join("dist").join(format!("{name}.wasm")))
        }
    }
    .map_err(|e| CliError::local(format!("the output path: {e}")))?;
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| CliError::local(format!("{}: {e}", parent.display())))?;
    }
    Ok(out)
}

/// The plugin folder's own copy of a tool (a virtualenv's, `node_modules`'), else the one on
/// PATH.
fn local_tool(dir: &Path, local: &str, on_path: &str) -> PathBuf {
    let local = dir.join(local);
    if local.is_file() {
        std::path::absolute(&local).unwrap_or(local)
    } else {
        PathBuf::from(on_path)
    }
}

/// Runs a build tool in `dir`, its output passed through; a tool that is missing is named with
/// the command that installs it.
fn run_tool(
    dir: &Path,
    mut command: Command,
    tool: &Path,
    install: impl Fn() -> String,
) -> Result<(), CliError> {
    let status = command.current_dir(dir).status().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            CliError::local(format!(
                "{} is not installed (not in the plugin folder, not on PATH); install it: {}",
                tool.display(),
                install()
            ))
        } else {
            CliError::local(format!("cannot run {}: {e}", tool.display()))
        }
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(CliError::local(format!(
            "{} failed ({status}); its output above says why",
            tool.display()
        )))
    }
}

/// The contract, written out for the Python and JavaScript tools (which read WIT files):
/// `<cache>/contract/<hash>/`, one folder per contract text, so builds never see a mix.
fn contract_dir() -> Result<PathBuf, CliError> {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for (path, text) in CONTRACT {
        hash.update(path.as_bytes());
        hash.update(text.as_bytes());
    }
    let dir = super::test::cache_dir()?
        .join("contract")
        .join(&hex::encode(hash.finalize())[..16]);
    if dir.join("action.wit").is_file() {
        return Ok(dir);
    }
    let staging = dir.with_extension(format!("tmp{}", std::process::id()));
    for (path, text) in CONTRACT {
        let file = staging.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| CliError::local(format!("{}: {e}", parent.display())))?;
        }
        std::fs::write(&file, text)
            .map_err(|e| CliError::local(format!("{}: {e}", file.display())))?;
    }
    match std::fs::rename(&staging, &dir) {
        Ok(()) => Ok(dir),
        // Another build wrote the same contract first.
        Err(_) if dir.join("action.wit").is_file() => {
            let _ = std::fs::remove_dir_all(&staging);
            Ok(dir)
        }
        Err(e) => Err(CliError::local(format!("{}: {e}", dir.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_is_told_by_its_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Language::of(dir.path()).is_err());
        std::fs::write(dir.path().join("app.py"), "").unwrap();
        assert_eq!(Language::of(dir.path()).unwrap(), Language::Python);
        std::fs::write(dir.path().join("package.json"), "{}").unwrap();
        assert_eq!(Language::of(dir.path()).unwrap(), Language::JavaScript);
        std::fs::write(dir.path().join("Cargo.toml"), "").unwrap();
        assert_eq!(Language::of(dir.path()).unwrap(), Language::Rust);
    }

    #[test]
    fn the_built_in_contract_is_the_repository_wit() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../wit");
        let mut files: Vec<String> = std::fs::read_dir(root.join("deps"))
            .unwrap()
            .flatten()
            .map(|e| format!("deps/{}", e.file_name().to_string_lossy()))
            .collect();
        files.push("action.wit".into());
        files.sort();
        let mut built_in: Vec<String> = CONTRACT.iter().map(|(p, _)| p.to_string()).collect();
        built_in.sort();
        assert_eq!(files, built_in, "every WIT file is built in");
    }
}

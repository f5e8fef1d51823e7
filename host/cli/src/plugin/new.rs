//! `portico plugin new NAME [--lang rust|python|js]`: a plugin that builds, tests and runs as it
//! is, so an author starts from a working loop and changes one thing at a time. The three
//! languages' plugins do the same thing (register a `service` entity) with the same action.

use crate::error::CliError;
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `plugin new` arguments.
#[derive(Args)]
pub struct NewArgs {
    /// The plugin's name: 1-63 lower-case letters, digits or `-`, starting with a letter. It
    /// names the crate, the action and the plugin on the server.
    #[arg(value_parser = plugin_name)]
    name: String,
    /// Where to create the crate (default: ./NAME); it must not exist or be empty.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The language: rust (a crate), python (componentize-py) or js (TypeScript, built with
    /// esbuild and jco).
    #[arg(long, value_enum, default_value = "rust")]
    lang: Lang,
    /// The Portico checkout's `sdk` folder the plugin depends on by path (the Python and
    /// JavaScript SDKs are its `python` and `js` subfolders) [default: the SDK of the Portico
    /// source this binary was built from, if it is still there].
    #[arg(long, env = "PORTICO_SDK")]
    sdk: Option<PathBuf>,
}

/// `--lang`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Lang {
    Rust,
    Python,
    Js,
}

impl Lang {
    /// The plugin's files: path in the folder, template. `action.json` and `catalog.json` are
    /// the same in every language.
    fn files(self) -> Vec<(&'static str, &'static str)> {
        let mut files = match self {
            Lang::Rust => RUST.to_vec(),
            Lang::Python => PYTHON.to_vec(),
            Lang::Js => JAVASCRIPT.to_vec(),
        };
        files.extend(COMMON);
        files
    }

    /// The SDK of this language inside the `sdk` folder, and the file that proves it is there.
    fn sdk(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Lang::Rust => ("", "Cargo.toml", "name = \"portico-sdk\""),
            Lang::Python => ("python", "pyproject.toml", "name = \"portico-sdk\""),
            Lang::Js => ("js", "package.json", "\"name\": \"@portico/sdk\""),
        }
    }

    /// What to type next, after `cd DIR`.
    fn next_steps(self, name: &str, crate_name: &str, sdk: &str) -> Vec<String> {
        let test = |wasm: &str| {
            format!(
                "portico plugin test {wasm} --action action.json \\\n    --inputs '{{\"name\": \"checkout\"}}' --catalog catalog.json"
            )
        };
        match self {
            Lang::Rust => vec![
                "cargo build --release".into(),
                test(&format!("target/wasm32-wasip2/release/{crate_name}.wasm")),
            ],
            Lang::Python => vec![
                "python3 -m venv .venv".into(),
                format!(".venv/bin/pip install componentize-py==0.25.1 {sdk}/python"),
                "portico plugin build".into(),
                test(&format!("dist/{name}.wasm")),
            ],
            Lang::Js => vec![
                "npm install".into(),
                "portico plugin build".into(),
                test(&format!("dist/{name}.wasm")),
            ],
        }
    }
}

/// The SDK folder of the source tree this binary was built from: a `portico` built from a
/// checkout scaffolds plugins against that checkout's SDK with no flag.
const BUILT_FROM_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../sdk");

/// A Rust plugin: path in the crate, template.
const RUST: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("template/Cargo.toml.tmpl")),
    (
        ".cargo/config.toml",
        include_str!("template/cargo-config.toml.tmpl"),
    ),
    (".gitignore", include_str!("template/gitignore.tmpl")),
    ("src/lib.rs", include_str!("template/lib.rs.tmpl")),
    ("README.md", include_str!("template/README.md.tmpl")),
];

/// A Python plugin: `app.py` is the module componentize-py starts from.
const PYTHON: &[(&str, &str)] = &[
    ("app.py", include_str!("template/python/app.py.tmpl")),
    (
        "test_app.py",
        include_str!("template/python/test_app.py.tmpl"),
    ),
    (".gitignore", include_str!("template/python/gitignore.tmpl")),
    ("README.md", include_str!("template/python/README.md.tmpl")),
];

/// A TypeScript plugin.
const JAVASCRIPT: &[(&str, &str)] = &[
    (
        "package.json",
        include_str!("template/js/package.json.tmpl"),
    ),
    ("src/index.ts", include_str!("template/js/index.ts.tmpl")),
    (
        "src/service.ts",
        include_str!("template/js/service.ts.tmpl"),
    ),
    (".gitignore", include_str!("template/js/gitignore.tmpl")),
    ("README.md", include_str!("template/js/README.md.tmpl")),
];

/// The action and the catalog fixture, the same in every language.
const COMMON: &[(&str, &str)] = &[
    ("action.json", include_str!("template/action.json.tmpl")),
    ("catalog.json", include_str!("template/catalog.json.tmpl")),
];

/// Checks a plugin name against `^[a-z][a-z0-9-]{0,62}$`: a crate name, an action identifier
/// and a plugin name on the server all at once.
fn plugin_name(name: &str) -> Result<String, String> {
    let ok = (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "`{name}` is not a plugin name: it must match ^[a-z][a-z0-9-]{{0,62}}$ (1-63 \
             lower-case letters, digits or `-`, starting with a letter)"
        ))
    }
}

/// Writes the crate and says what to do next.
pub(super) fn run(args: NewArgs) -> Result<ExitCode, CliError> {
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.name));
    refuse_non_empty(&dir)?;
    let sdk = sdk_folder(args.sdk, args.lang)?;
    let sdk_text = sdk.to_string_lossy().replace('\\', "/");
    let crate_name = args.name.replace('-', "_");
    for (path, template) in args.lang.files() {
        let sdk = match path {
            "Cargo.toml" => toml_escape(&sdk_text),
            "package.json" => json_escape(&sdk_text),
            _ => sdk_text.clone(),
        };
        let text = template
            .replace("{{name}}", &args.name)
            .replace("{{crate}}", &crate_name)
            .replace("{{sdk}}", &sdk);
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| CliError::local(format!("{}: {e}", parent.display())))?;
        }
        std::fs::write(&target, text)
            .map_err(|e| CliError::local(format!("{}: {e}", target.display())))?;
    }
    let shown = dir.display();
    println!(
        "Created plugin `{}` in {shown} (SDK: {sdk_text})",
        args.name
    );
    println!();
    println!("  cd {shown}");
    for step in args.lang.next_steps(&args.name, &crate_name, &sdk_text) {
        println!("  {step}");
    }
    println!();
    println!("README.md has the rest: the unit tests, and pushing it to a server.");
    Ok(ExitCode::SUCCESS)
}

/// An existing folder with anything in it is someone's work: never written into.
fn refuse_non_empty(dir: &Path) -> Result<(), CliError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => match entries.next() {
            None => Ok(()),
            Some(_) => Err(CliError::local(format!(
                "{} already exists and is not empty; choose another --dir or name",
                dir.display()
            ))),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Err(CliError::local(format!(
            "{} already exists and is a file",
            dir.display()
        ))),
        Err(e) => Err(CliError::local(format!("{}: {e}", dir.display()))),
    }
}

/// `--sdk` (or `PORTICO_SDK`), else the SDK this binary was built from; always an absolute
/// path, so the plugin builds wherever it is moved on this machine.
fn sdk_folder(given: Option<PathBuf>, lang: Lang) -> Result<PathBuf, CliError> {
    let (sdk, from) = match given {
        Some(path) => (path, "--sdk (or PORTICO_SDK)"),
        None => {
            let built_from = PathBuf::from(BUILT_FROM_SDK);
            if !built_from.join("Cargo.toml").is_file() {
                return Err(CliError::local(
                    "cannot find portico-sdk: this binary was not built from a Portico checkout \
                     that is still there; pass --sdk PATH (the `sdk` folder of a Portico \
                     checkout) or set PORTICO_SDK",
                ));
            }
            (
                built_from,
                "the Portico checkout this binary was built from",
            )
        }
    };
    let sdk = std::fs::canonicalize(&sdk)
        .map_err(|e| CliError::local(format!("{} (from {from}): {e}", sdk.display())))?;
    let (sub, file, name) = lang.sdk();
    let manifest = std::fs::read_to_string(sdk.join(sub).join(file)).unwrap_or_default();
    if !manifest.contains(name) {
        return Err(CliError::local(format!(
            "{} (from {from}) is not Portico's `sdk` folder: {} does not name the SDK",
            sdk.display(),
            Path::new(sub).join(file).display()
        )));
    }
    Ok(sdk)
}

/// The text of a JSON string.
fn json_escape(text: &str) -> String {
    let quoted = serde_json::Value::String(text.to_owned()).to_string();
    quoted[1..quoted.len() - 1].to_owned()
}

/// The text of a TOML basic string.
fn toml_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rule() {
        for good in ["a", "hello", "my-plugin-2", &"a".repeat(63)] {
            assert!(plugin_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "2fast",
            "Hello",
            "my_plugin",
            "-x",
            "a.b",
            &"a".repeat(64),
        ] {
            let err = plugin_name(bad).unwrap_err();
            assert!(err.contains("^[a-z][a-z0-9-]{0,62}$"), "{err}");
        }
    }
}

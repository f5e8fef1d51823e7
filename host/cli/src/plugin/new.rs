//! `portico plugin new NAME`: a plugin crate that builds, tests and runs as it is, so an author
//! starts from a working loop and changes one thing at a time.

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
    /// The portico-sdk folder the crate depends on by path [default: the SDK of the Portico
    /// source this binary was built from, if it is still there].
    #[arg(long, env = "PORTICO_SDK")]
    sdk: Option<PathBuf>,
}

/// The SDK folder of the source tree this binary was built from: a `portico` built from a
/// checkout scaffolds plugins against that checkout's SDK with no flag.
const BUILT_FROM_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../sdk");

/// The files of a new plugin: path in the crate, template.
const FILES: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("template/Cargo.toml.tmpl")),
    (
        ".cargo/config.toml",
        include_str!("template/cargo-config.toml.tmpl"),
    ),
    (".gitignore", include_str!("template/gitignore.tmpl")),
    ("src/lib.rs", include_str!("template/lib.rs.tmpl")),
    ("action.json", include_str!("template/action.json.tmpl")),
    ("catalog.json", include_str!("template/catalog.json.tmpl")),
    ("README.md", include_str!("template/README.md.tmpl")),
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
    let sdk = sdk_folder(args.sdk)?;
    let sdk_text = sdk.to_string_lossy().replace('\\', "/");
    let crate_name = args.name.replace('-', "_");
    for (path, template) in FILES {
        let text = template
            .replace("{{name}}", &args.name)
            .replace("{{crate}}", &crate_name)
            .replace("{{sdk}}", &toml_escape(&sdk_text));
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
        "Created plugin `{}` in {shown} (portico-sdk: {sdk_text})",
        args.name
    );
    println!();
    println!("  cd {shown}");
    println!("  cargo build --release");
    println!(
        "  portico plugin test target/wasm32-wasip2/release/{crate_name}.wasm --action action.json \\"
    );
    println!("    --inputs '{{\"name\": \"checkout\"}}' --catalog catalog.json");
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
/// path, so the crate builds wherever it is moved on this machine.
fn sdk_folder(given: Option<PathBuf>) -> Result<PathBuf, CliError> {
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
    let manifest = std::fs::read_to_string(sdk.join("Cargo.toml")).unwrap_or_default();
    if !manifest.contains("name = \"portico-sdk\"") {
        return Err(CliError::local(format!(
            "{} (from {from}) is not the portico-sdk crate: its Cargo.toml does not name \
             portico-sdk",
            sdk.display()
        )));
    }
    Ok(sdk)
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

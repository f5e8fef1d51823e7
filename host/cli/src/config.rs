//! Contexts: the servers `portico` talks to, each a URL and a token, kept in
//! `$XDG_CONFIG_HOME/portico/config.toml` (or `~/.config/...`, or `PORTICO_CONFIG`), readable by
//! its owner only because it holds tokens. `PORTICO_URL` and `PORTICO_TOKEN` override the
//! current context, so CI needs no file at all.

use crate::error::CliError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The contexts file.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contexts {
    /// The context commands use unless `--context` names another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    /// By name.
    #[serde(default)]
    pub contexts: BTreeMap<String, Context>,
}

/// One server.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Context {
    /// `https://portico.example.com`.
    pub url: String,
    /// A personal API token.
    pub token: String,
}

/// Where the contexts file is.
pub fn path() -> Result<PathBuf, CliError> {
    if let Some(p) = std::env::var_os("PORTICO_CONFIG") {
        return Ok(PathBuf::from(p));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .ok_or_else(|| {
            CliError::Local("neither HOME nor XDG_CONFIG_HOME is set; set PORTICO_CONFIG".into())
        })?;
    Ok(base.join("portico").join("config.toml"))
}

impl Contexts {
    /// Reads the file; none yet is no contexts.
    pub fn load() -> Result<Self, CliError> {
        let path = path()?;
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text)
                .map_err(|e| CliError::Local(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(CliError::Local(format!("{}: {e}", path.display()))),
        }
    }

    /// Writes the file, readable and writable by its owner only (0600).
    pub fn save(&self) -> Result<PathBuf, CliError> {
        let path = path()?;
        let fail = |e: std::io::Error| CliError::Local(format!("{}: {e}", path.display()));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let text = toml::to_string(self).map_err(|e| CliError::Local(e.to_string()))?;
        // Written beside and renamed, so a crash never leaves half a file; created 0600 so the
        // tokens are never readable by others, not even for a moment.
        let tmp = path.with_extension("toml.tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp).map_err(fail)?;
        std::io::Write::write_all(&mut file, text.as_bytes()).map_err(fail)?;
        #[cfg(unix)]
        std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(fail)?;
        std::fs::rename(&tmp, &path).map_err(fail)?;
        Ok(path)
    }

    /// The server to talk to: `--context` or the current one, with `PORTICO_URL` and
    /// `PORTICO_TOKEN` taking precedence.
    pub fn resolve(&self, name: Option<&str>) -> Result<Context, CliError> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let chosen = match name.or(self.current.as_deref()) {
            Some(n) => Some(self.contexts.get(n).ok_or_else(|| {
                CliError::Local(format!(
                    "no context `{n}` (known: {}); add it with `portico login --url URL --name {n}`",
                    self.names()
                ))
            })?),
            None => None,
        };
        let url = env("PORTICO_URL").or_else(|| chosen.map(|c| c.url.clone()));
        let token = env("PORTICO_TOKEN").or_else(|| chosen.map(|c| c.token.clone()));
        match (url, token) {
            (Some(url), Some(token)) => Ok(Context { url, token }),
            (None, _) => Err(CliError::Local(
                "no server: run `portico login --url URL`, or set PORTICO_URL and PORTICO_TOKEN"
                    .into(),
            )),
            (Some(url), None) => Err(CliError::Local(format!(
                "no token for {url}: set PORTICO_TOKEN or run `portico login --url {url}`"
            ))),
        }
    }

    fn names(&self) -> String {
        if self.contexts.is_empty() {
            "none".into()
        } else {
            self.contexts.keys().cloned().collect::<Vec<_>>().join(", ")
        }
    }
}

//! Where the values of `{{ .secrets.NAME }}` come from, and the header templates that use them.
//!
//! Secrets are resolved by the host when a request leaves the plugin; the plugin never sees them.

use crate::grant::GrantError;
use std::path::PathBuf;

/// Looks up a secret by name.
pub trait SecretsProvider: Send + Sync {
    /// The secret's value, or `None` when it is not configured.
    fn secret(&self, name: &str) -> Option<String>;
}

/// Secrets from environment variables: `NAME` is read from `PORTICO_SECRET_NAME` (upper-cased).
#[derive(Clone, Debug)]
pub struct EnvSecrets {
    prefix: String,
}

impl EnvSecrets {
    /// Reads `PORTICO_SECRET_<NAME>`.
    pub fn new() -> Self {
        Self::with_prefix("PORTICO_SECRET_")
    }

    /// Reads `<prefix><NAME>`.
    pub fn with_prefix(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }
}

impl Default for EnvSecrets {
    fn default() -> Self {
        Self::new()
    }
}

impl SecretsProvider for EnvSecrets {
    fn secret(&self, name: &str) -> Option<String> {
        std::env::var(format!("{}{}", self.prefix, name.to_ascii_uppercase())).ok()
    }
}

/// Secrets from files: `NAME` is the content of `<dir>/NAME`, without a trailing newline (the
/// layout of Kubernetes secret volumes and systemd credentials).
#[derive(Clone, Debug)]
pub struct FileSecrets {
    dir: PathBuf,
}

impl FileSecrets {
    /// Reads secrets from files in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
}

impl SecretsProvider for FileSecrets {
    fn secret(&self, name: &str) -> Option<String> {
        if !valid_name(name) {
            return None;
        }
        let value = std::fs::read_to_string(self.dir.join(name)).ok()?;
        Some(value.trim_end_matches(['\n', '\r']).to_owned())
    }
}

/// Tries each provider in order; the first that knows the name wins.
pub struct SecretsChain(pub Vec<Box<dyn SecretsProvider>>);

impl SecretsProvider for SecretsChain {
    fn secret(&self, name: &str) -> Option<String> {
        self.0.iter().find_map(|p| p.secret(name))
    }
}

/// No secrets at all.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoSecrets;

impl SecretsProvider for NoSecrets {
    fn secret(&self, _name: &str) -> Option<String> {
        None
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A header value with `{{ .secrets.NAME }}` placeholders, parsed once when the grant is checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Template(Vec<Part>);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Secret(String),
}

impl Template {
    pub(crate) fn parse(text: &str, path: &str) -> Result<Self, GrantError> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| GrantError::new(path, "`{{` without a closing `}}`"))?;
            let expr = after[..end].trim();
            let name = expr
                .strip_prefix(".secrets.")
                .filter(|name| valid_name(name))
                .ok_or_else(|| {
                    GrantError::new(
                        path,
                        format!(
                            "unsupported placeholder `{{{{ {expr} }}}}`: only \
                             `{{{{ .secrets.NAME }}}}` is allowed (NAME: letters, digits, `_`, `-`)"
                        ),
                    )
                })?;
            parts.push(Part::Secret(name.to_owned()));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Self(parts))
    }

    /// The value with every secret filled in, or the name of the first missing secret.
    pub(crate) fn render(&self, secrets: &dyn SecretsProvider) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.0 {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Secret(name) => out.push_str(&secrets.secret(name).ok_or(name.clone())?),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Map(HashMap<&'static str, &'static str>);
    impl SecretsProvider for Map {
        fn secret(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|v| v.to_string())
        }
    }

    #[test]
    fn templates_fill_in_secrets_and_name_the_missing_one() {
        let secrets = Map(HashMap::from([("gh_token", "s3cr3t")]));
        let t = Template::parse("Bearer {{ .secrets.gh_token }}", "h").unwrap();
        assert_eq!(t.render(&secrets).unwrap(), "Bearer s3cr3t");
        let t = Template::parse("{{.secrets.other}}", "h").unwrap();
        assert_eq!(t.render(&secrets).unwrap_err(), "other");
        assert_eq!(
            Template::parse("plain", "h")
                .unwrap()
                .render(&NoSecrets)
                .unwrap(),
            "plain"
        );
    }

    #[test]
    fn templates_reject_anything_but_secrets() {
        let err =
            Template::parse("{{ .inputs.name }}", "capabilities.http[0].headers.X").unwrap_err();
        assert_eq!(err.path, "capabilities.http[0].headers.X");
        assert!(err.reason.contains(".secrets.NAME"), "{err}");
        assert!(Template::parse("{{ .secrets.x", "h").is_err());
        assert!(Template::parse("{{ .secrets.a/b }}", "h").is_err());
    }

    #[test]
    fn file_secrets_trim_the_newline_and_refuse_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "abc\n").unwrap();
        let secrets = FileSecrets::new(dir.path());
        assert_eq!(secrets.secret("token").as_deref(), Some("abc"));
        assert_eq!(secrets.secret("../token"), None);
        assert_eq!(secrets.secret("missing"), None);
    }
}

//! Where the values of `{{ .secrets.NAME }}` come from, who may use them, and the header
//! templates that use them.
//!
//! Secrets are resolved by the host when a request leaves the plugin; the plugin never sees them.
//! Each secret is usable only by the actions (and, optionally, the origins) the operator allows:
//! a secret with no allow rule is usable by no action.

use crate::limits::GrantError;
use std::path::PathBuf;

/// Looks up a secret by name.
pub trait SecretsProvider: Send + Sync {
    /// The secret's value, or `None` when it is not configured.
    fn secret(&self, name: &str) -> Option<String>;

    /// Who may use the secret; nobody unless the operator said so.
    fn access(&self, _name: &str) -> SecretAccess {
        SecretAccess::default()
    }
}

/// Which actions, and optionally which origins, may use one secret.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretAccess {
    /// Action identifiers, or `*` for every action.
    pub actions: Vec<String>,
    /// Origins (`scheme://host[:port]`) the secret may be sent to; empty means any the action
    /// grants.
    pub origins: Vec<String>,
}

impl SecretAccess {
    /// Parses the comma-separated lists of the environment variables or files.
    pub fn parse(actions: Option<&str>, origins: Option<&str>) -> Self {
        let list = |text: Option<&str>| -> Vec<String> {
            text.unwrap_or_default()
                .split([',', '\n'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        Self {
            actions: list(actions),
            origins: list(origins).iter().map(|o| normalise_origin(o)).collect(),
        }
    }

    /// Whether `action` may use the secret at all.
    pub fn allows_action(&self, action: &str) -> bool {
        self.actions.iter().any(|a| a == "*" || a == action)
    }

    /// Whether the secret may be sent to `origin` (normalised, `scheme://host:port`).
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.origins.is_empty() || self.origins.iter().any(|o| o == origin)
    }
}

/// `https://API.example.com` -> `https://api.example.com:443`, the form grants are matched in.
fn normalise_origin(origin: &str) -> String {
    let Ok(uri) = origin.trim().parse::<http::Uri>() else {
        return origin.trim().to_owned();
    };
    let tls = uri.scheme_str() == Some("https");
    let host = uri
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    format!("{}://{host}:{port}", if tls { "https" } else { "http" })
}

/// Secrets from environment variables: `NAME` is read from `PORTICO_SECRET_NAME` (upper-cased);
/// the actions that may use it from `PORTICO_SECRET_NAME_ACTIONS` (comma-separated, `*` for all)
/// and the origins it may be sent to from `PORTICO_SECRET_NAME_ORIGINS` (optional).
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

    fn access(&self, name: &str) -> SecretAccess {
        let var = |suffix: &str| {
            std::env::var(format!(
                "{}{}_{suffix}",
                self.prefix,
                name.to_ascii_uppercase()
            ))
            .ok()
        };
        SecretAccess::parse(var("ACTIONS").as_deref(), var("ORIGINS").as_deref())
    }
}

/// Secrets from files: `NAME` is the content of `<dir>/NAME`, without a trailing newline (the
/// layout of Kubernetes secret volumes and systemd credentials); the actions that may use it are
/// listed in `<dir>/NAME.actions` and the origins in `<dir>/NAME.origins` (comma- or
/// line-separated).
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

    fn access(&self, name: &str) -> SecretAccess {
        if !valid_name(name) {
            return SecretAccess::default();
        }
        let read = |ext: &str| std::fs::read_to_string(self.dir.join(format!("{name}.{ext}"))).ok();
        SecretAccess::parse(read("actions").as_deref(), read("origins").as_deref())
    }
}

/// Tries each provider in order; the first that knows the name wins.
pub struct SecretsChain(pub Vec<Box<dyn SecretsProvider>>);

impl SecretsProvider for SecretsChain {
    fn secret(&self, name: &str) -> Option<String> {
        self.0.iter().find_map(|p| p.secret(name))
    }

    /// The rule of the provider that holds the value.
    fn access(&self, name: &str) -> SecretAccess {
        self.0
            .iter()
            .find(|p| p.secret(name).is_some())
            .map(|p| p.access(name))
            .unwrap_or_default()
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

    /// The names of the secrets the template uses.
    pub(crate) fn secret_names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|p| match p {
            Part::Secret(name) => Some(name.as_str()),
            Part::Text(_) => None,
        })
    }

    /// The value with every secret filled in, and the secret values used (to redact them from
    /// what comes back); or why a secret cannot be used.
    pub(crate) fn render(
        &self,
        secrets: &dyn SecretsProvider,
        action: &str,
        origin: &str,
    ) -> Result<(String, Vec<String>), SecretRefused> {
        let mut out = String::new();
        let mut used = Vec::new();
        for part in &self.0 {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Secret(name) => {
                    let value = secrets
                        .secret(name)
                        .ok_or_else(|| SecretRefused::Missing(name.clone()))?;
                    let access = secrets.access(name);
                    if !access.allows_action(action) {
                        return Err(SecretRefused::Action(name.clone()));
                    }
                    if !access.allows_origin(origin) {
                        return Err(SecretRefused::Origin(name.clone()));
                    }
                    out.push_str(&value);
                    used.push(value);
                }
            }
        }
        Ok((out, used))
    }
}

/// Why a template's secret cannot be filled in.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SecretRefused {
    #[error("secret `{0}`, which is not configured on the host")]
    Missing(String),
    #[error(
        "secret `{0}`, which the operator does not allow this action to use \
         (PORTICO_SECRET_<NAME>_ACTIONS or secrets/<name>.actions)"
    )]
    Action(String),
    #[error(
        "secret `{0}`, which the operator does not allow to be sent to this origin \
         (PORTICO_SECRET_<NAME>_ORIGINS or secrets/<name>.origins)"
    )]
    Origin(String),
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
        fn access(&self, _name: &str) -> SecretAccess {
            SecretAccess::parse(Some("deploy"), Some("https://X"))
        }
    }

    #[test]
    fn a_secret_is_usable_only_by_the_actions_and_origins_allowed() {
        let secrets = Map(HashMap::from([("gh_token", "s3cr3t")]));
        let t = Template::parse("Bearer {{ .secrets.gh_token }}", "h").unwrap();
        assert!(t.render(&secrets, "deploy", "https://x:443").is_ok());
        assert_eq!(
            t.render(&secrets, "other", "https://x:443").unwrap_err(),
            SecretRefused::Action("gh_token".into())
        );
        assert_eq!(
            t.render(&secrets, "deploy", "https://y:443").unwrap_err(),
            SecretRefused::Origin("gh_token".into())
        );
        assert!(
            !SecretAccess::default().allows_action("deploy"),
            "deny by default"
        );
        assert!(SecretAccess::parse(Some("*"), None).allows_action("any"));
    }

    #[test]
    fn templates_fill_in_secrets_and_name_the_missing_one() {
        let secrets = Map(HashMap::from([("gh_token", "s3cr3t")]));
        let t = Template::parse("Bearer {{ .secrets.gh_token }}", "h").unwrap();
        let (value, used) = t.render(&secrets, "deploy", "https://x:443").unwrap();
        assert_eq!(value, "Bearer s3cr3t");
        assert_eq!(used, ["s3cr3t"]);
        let t = Template::parse("{{.secrets.other}}", "h").unwrap();
        assert_eq!(
            t.render(&secrets, "deploy", "https://x:443").unwrap_err(),
            SecretRefused::Missing("other".into())
        );
        let plain = Template::parse("plain", "h").unwrap();
        assert_eq!(plain.render(&NoSecrets, "a", "o").unwrap().0, "plain");
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
        std::fs::write(dir.path().join("token.actions"), "deploy\nrollback\n").unwrap();
        let secrets = FileSecrets::new(dir.path());
        assert_eq!(secrets.secret("token").as_deref(), Some("abc"));
        assert_eq!(secrets.access("token").actions, ["deploy", "rollback"]);
        assert_eq!(secrets.access("other"), SecretAccess::default());
        assert_eq!(secrets.secret("../token"), None);
        assert_eq!(secrets.secret("missing"), None);
    }
}

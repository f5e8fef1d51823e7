//! Bearer-token authentication. Tokens are random, shown once, and stored only as SHA-256
//! hashes; the caller's user comes from the hash.
//!
//! Who a token authenticates is cached for a moment ([`crate::Lookups::users`]). A change to
//! users or tokens made on this replica calls [`forget_tokens`] after it commits, and a lookup
//! that raced that change is not kept (see `GENERATION`), so a revoked token, a rotated-out
//! value or a disabled user's token fails on this replica's very next request; other replicas
//! see the change when their cache entry ends (its ttl).

use crate::AppState;
use crate::error::ApiError;
use crate::session::{CSRF_HEADER, Principal, Session};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine;
use portico_catalog::Actor;
use portico_store::{ApiToken, AuditRecord, Role, Store, User};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bumped by [`forget_tokens`] after every change to users or tokens. A lookup that started
/// before a bump may have read the old state; it must not stay in the cache after the bump's
/// clear. (Process-wide rather than per state: a bump only makes another state's racing lookup
/// skip the cache once.)
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// How stale `last_used_at` may get: a token's use is written at most this often per replica,
/// so that authenticating stays a read.
const TOUCH_EVERY: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

/// Forgets every cached token on this replica. Call after a change to users or tokens commits.
pub fn forget_tokens(state: &AppState) {
    GENERATION.fetch_add(1, Ordering::SeqCst);
    state.lookups.users.clear();
}

/// The authenticated caller.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Who.
    pub user: User,
    /// Which client made the change, for the audit log: `api`, or `apply` when the request says
    /// it comes from `portico apply` (its [`CLIENT_HEADER`]). `apply --prune` deletes only
    /// what the audit log shows an apply created, so hand-made objects are never pruned.
    pub origin: &'static str,
}

/// The header a client names itself with (`portico-client: apply`); any other value counts as
/// plain `api`, so a caller cannot pose as the host's own origins (`examples`, `automation`).
pub const CLIENT_HEADER: &str = "portico-client";

/// The origin a request's [`CLIENT_HEADER`] claims.
fn origin_of(headers: &axum::http::HeaderMap) -> &'static str {
    match headers.get(CLIENT_HEADER).map(|v| v.as_bytes()) {
        Some(b"apply") => "apply",
        _ => "api",
    }
}

impl Caller {
    /// The caller as the catalog sees it.
    pub fn actor(&self) -> Actor {
        Actor {
            identifier: self.user.identifier.clone(),
            admin: self.user.role == Role::Admin,
            teams: self.user.teams.clone(),
            origin: self.origin.into(),
            run_id: None,
        }
    }

    /// Whether the caller is an admin.
    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }

    /// 403 (recorded in the audit log) unless the caller is an admin.
    pub async fn require_admin(
        &self,
        store: &dyn Store,
        what: &str,
        resource_type: &str,
        resource_id: &str,
    ) -> Result<(), ApiError> {
        if self.is_admin() {
            return Ok(());
        }
        let message = format!("{what} needs the admin role; you are a member");
        let record = AuditRecord::failure(
            &self.user.identifier,
            "api",
            what,
            resource_type,
            resource_id,
            message.clone(),
        );
        if let Err(e) = store.record(record).await {
            tracing::error!("cannot record a denied attempt: {e}");
        }
        Err(ApiError::forbidden(message))
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    /// A bearer token, or else the portal's session cookie (whose CSRF header must come with
    /// any request that changes something: the portal's scripts call the API this way).
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let hash = match header {
            Some(header) => {
                let token = header
                    .strip_prefix("Bearer ")
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| {
                        ApiError::unauthorized("the Authorization header must be `Bearer <token>`")
                    })?;
                hash_token(token)
            }
            None => {
                let key = &state.runner.config().key;
                let Some(session) = Session::from_headers(&parts.headers, key) else {
                    return Err(ApiError::unauthorized(
                        "missing token: send `Authorization: Bearer <token>`",
                    ));
                };
                if !parts.method.is_safe() && !session.csrf_matches(&parts.headers) {
                    return Err(ApiError::forbidden(format!(
                        "a request with the portal's session must carry its `{CSRF_HEADER}` header"
                    )));
                }
                match session.principal {
                    Principal::Token { hash } => hash,
                }
            }
        };
        let user = user_by_token_hash(state, &hash).await?.ok_or_else(|| {
            ApiError::unauthorized(
                "unknown token (revoked, replaced, or its user disabled): ask an admin for a \
                 valid one",
            )
        })?;
        Ok(Self {
            user,
            origin: origin_of(&parts.headers),
        })
    }
}

/// The user a token (by its hash) authenticates, if any: kept a moment in
/// [`crate::Lookups::users`].
pub async fn user_by_token_hash(
    state: &AppState,
    hash: &str,
) -> Result<Option<User>, portico_store::StoreError> {
    if let Some(user) = state.lookups.users.get(hash) {
        return Ok(user);
    }
    let generation = GENERATION.load(Ordering::SeqCst);
    let credential = state.store.authenticate(hash).await?;
    let user = credential.as_ref().map(|c| c.user.clone());
    state.lookups.users.put(hash.to_owned(), user.clone());
    if GENERATION.load(Ordering::SeqCst) != generation {
        // A change committed meanwhile: what was read may be gone already.
        state.lookups.users.clear();
    }
    if let Some(credential) = credential {
        touch(state, hash.to_owned(), credential.last_used_at);
    }
    Ok(user)
}

/// Who reports on a run: an external system holding the run's token (`prr_...`, see
/// [`portico_runs::host_key::HostKey::run_token`]), or a user.
#[derive(Clone, Debug)]
pub enum Reporter {
    /// The bearer of a run-scoped token, good for this run only.
    Run(String),
    /// A user with a personal token.
    User(Caller),
}

impl From<Reporter> for portico_runs::external::Reporter {
    fn from(reporter: Reporter) -> Self {
        match reporter {
            Reporter::Run(id) => Self::RunToken(id),
            Reporter::User(caller) => Self::User {
                admin: caller.is_admin(),
                identifier: caller.user.identifier,
            },
        }
    }
}

impl FromRequestParts<AppState> for Reporter {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let bearer = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if let Some(token) = bearer.filter(|t| t.starts_with("prr_")) {
            return state
                .runner
                .config()
                .key
                .check_run_token(token)
                .map(Self::Run)
                .ok_or_else(|| ApiError::unauthorized("invalid run token"));
        }
        Caller::from_request_parts(parts, state)
            .await
            .map(Self::User)
    }
}

/// Records a token's use in the background when the stored time is older than
/// [`TOUCH_EVERY`] (a request never waits for it, and a failure only leaves it older).
fn touch(state: &AppState, hash: String, last_used_at: Option<chrono::DateTime<chrono::Utc>>) {
    let now = portico_store::now();
    if last_used_at.is_some_and(|at| now - at < TOUCH_EVERY) {
        return;
    }
    let store = state.store.clone();
    tokio::spawn(async move {
        if let Err(e) = store.touch_token(&hash, now).await {
            tracing::warn!("cannot record a token's use: {e}");
        }
    });
}

/// A new token's metadata: a random id (`tok_` and 16 hex digits) and the value's prefix.
pub fn token_record(user: &str, name: Option<String>, value: &str) -> ApiToken {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap_or_else(|e| panic!("the OS random source failed: {e}"));
    ApiToken {
        id: format!("tok_{}", hex::encode(bytes)),
        user: user.to_owned(),
        name,
        prefix: Some(token_prefix(value)),
        created_at: portico_store::now(),
        rotated_at: None,
        last_used_at: None,
    }
}

/// What is shown of a token after its creation: its first 12 characters (`ptc_` and 8 of its
/// 43 random ones), enough to tell tokens apart, far too few to guess the rest.
pub fn token_prefix(value: &str) -> String {
    value.chars().take(12).collect()
}

/// A new random token: `ptc_` and 32 random bytes, base64url.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).unwrap_or_else(|e| panic!("the OS random source failed: {e}"));
    format!(
        "ptc_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// How a token is stored: SHA-256, hex. Tokens are 256 random bits, so a fast hash is enough.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// How the first admin's token was chosen, so the caller can say so.
#[derive(Debug, PartialEq, Eq)]
pub enum Bootstrap {
    /// Users exist already: nothing done.
    AlreadyDone,
    /// The admin's token is `PORTICO_ADMIN_TOKEN`.
    FromEnvironment,
    /// A token was generated and written to this file (mode 0600).
    Generated(std::path::PathBuf),
}

/// On first start (no users), creates the `admin` user with `token`, or with a generated one
/// written to `<data_dir>/admin-token` (mode 0600).
pub async fn bootstrap_admin(
    store: &dyn Store,
    data_dir: &Path,
    token: Option<String>,
) -> Result<Bootstrap, String> {
    let token = token.filter(|t| !t.is_empty());
    if let Some(token) = &token {
        crate::startup::check_admin_token(token)?;
    }
    if store.count_users().await.map_err(|e| e.to_string())? > 0 {
        return Ok(Bootstrap::AlreadyDone);
    }
    let (token, how) = match token {
        Some(t) => (t, Bootstrap::FromEnvironment),
        None => {
            let token = new_token();
            let path = data_dir.join("admin-token");
            write_secret_file(&path, &token).map_err(|e| format!("{}: {e}", path.display()))?;
            (token, Bootstrap::Generated(path))
        }
    };
    let admin = User {
        identifier: "admin".into(),
        email: None,
        role: Role::Admin,
        teams: Vec::new(),
        disabled: false,
        created_at: portico_store::now(),
    };
    let mut record = AuditRecord::success("portico", "bootstrap", "CREATE", "user", "admin");
    record.after = Some(serde_json::to_value(&admin).unwrap_or_default());
    let first = token_record("admin", None, &token);
    store
        .create_user(admin, first, hash_token(&token), record)
        .await
        .map_err(|e| e.to_string())?;
    Ok(how)
}

fn write_secret_file(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(content.as_bytes())?;
    file.write_all(b"\n")
}

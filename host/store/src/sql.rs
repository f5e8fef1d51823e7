//! The statement text both backends run, written once with Postgres's `$n` placeholders. SQLite
//! runs the same text with `?n` ([`Statement::sqlite`]), rendered once, on first use, like the
//! `LazyLock` statements before it. Where the two dialects spell something differently (an
//! upsert, a cast, removing a JSON key), the statement picks the spelling by [`Dialect`]. What only
//! one backend runs stays in that backend: SQLite's claim inside its writer thread and its admin
//! count, Postgres's `SKIP LOCKED` claim, its `ANY($1)` lease renewal and its admin row lock.
//!
//! Binding values stays in each backend (SQLite stores JSON as text, Postgres as jsonb); reading
//! rows back into the model is shared too, in [`crate::rows`].

use crate::model::{AuditFilter, EntityRef, RunFilter, RunStatus};
use crate::query::{self, Dialect, Param, Query, QueryError};
use crate::{Write, rows::sql_limit};
use std::sync::OnceLock;

/// One statement, built (and for SQLite renumbered) once per process, on first use.
pub(crate) struct Statement {
    build: fn(Dialect) -> String,
    sqlite: OnceLock<String>,
    postgres: OnceLock<String>,
}

impl Statement {
    const fn new(build: fn(Dialect) -> String) -> Self {
        Self {
            build,
            sqlite: OnceLock::new(),
            postgres: OnceLock::new(),
        }
    }

    /// The text for SQLite: `$n` placeholders become `?n`.
    pub(crate) fn sqlite(&self) -> &str {
        self.sqlite
            .get_or_init(|| question_marks(&(self.build)(Dialect::Sqlite)))
    }

    /// The text for Postgres.
    pub(crate) fn postgres(&self) -> &str {
        self.postgres
            .get_or_init(|| (self.build)(Dialect::Postgres))
    }
}

/// Rewrites the placeholders `$1`, `$2`... as SQLite's `?1`, `?2`... (SQLite reads `$1` as a
/// *named* parameter, numbered by first appearance rather than by its digits). A `$` not followed
/// by a digit (a JSON path such as `'$.sealed'`) is kept.
fn question_marks(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

/// A placeholder for the `n`th parameter.
fn placeholder(dialect: Dialect, n: usize) -> String {
    match dialect {
        Dialect::Sqlite => format!("?{n}"),
        Dialect::Postgres => format!("${n}"),
    }
}

/// `INSERT INTO {into}` that fails on a taken key ([`Write::Create`]) or replaces the row
/// ([`Write::Replace`]): SQLite's `INSERT OR REPLACE`, Postgres's `ON CONFLICT ({key}) DO UPDATE
/// SET {set}`.
fn insert(dialect: Dialect, write: Write, into: &str, key: &str, set: &str) -> String {
    match (write, dialect) {
        (Write::Create, _) => format!("INSERT INTO {into}"),
        (Write::Replace, Dialect::Sqlite) => format!("INSERT OR REPLACE INTO {into}"),
        (Write::Replace, Dialect::Postgres) => {
            format!("INSERT INTO {into} ON CONFLICT ({key}) DO UPDATE SET {set}")
        }
    }
}

/// `INSERT INTO {into}` that skips a row whose key is taken.
fn insert_or_ignore(dialect: Dialect, into: &str) -> String {
    match dialect {
        Dialect::Sqlite => format!("INSERT OR IGNORE INTO {into}"),
        Dialect::Postgres => format!("INSERT INTO {into} ON CONFLICT DO NOTHING"),
    }
}

/// The `AND`ed conditions of a list filter and their parameters, numbered from 1.
struct Conditions {
    dialect: Dialect,
    text: Vec<String>,
    params: Vec<Param>,
}

impl Conditions {
    fn new(dialect: Dialect) -> Self {
        Self {
            dialect,
            text: vec!["1=1".to_owned()],
            params: Vec::new(),
        }
    }

    /// Adds `condition`, whose one `?` stands for `value`.
    fn add(&mut self, condition: &str, value: Param) {
        self.params.push(value);
        let at = placeholder(self.dialect, self.params.len());
        self.text.push(condition.replace('?', &at));
    }

    fn joined(&self) -> String {
        self.text.join(" AND ")
    }
}

// ---------------------------------------------------------------------------------------------
// Catalog
// ---------------------------------------------------------------------------------------------

/// An entity's columns, in the order [`crate::rows::entity`] reads them.
pub(crate) const ENTITY_COLUMNS: &str = "e.blueprint, e.identifier, e.title, e.icon, e.team, \
    e.properties, e.relations, e.created_at, e.created_by, e.updated_at, e.updated_by";

pub(crate) static LIST_BLUEPRINTS: Statement =
    Statement::new(|_| "SELECT data FROM blueprints ORDER BY identifier".into());
pub(crate) static GET_BLUEPRINT: Statement =
    Statement::new(|_| "SELECT data FROM blueprints WHERE identifier = $1".into());

/// [`crate::CatalogData::put_blueprint`]'s statement for `write`.
pub(crate) fn put_blueprint(write: Write) -> &'static Statement {
    static CREATE: Statement = Statement::new(|d| blueprint_insert(d, Write::Create));
    static REPLACE: Statement = Statement::new(|d| blueprint_insert(d, Write::Replace));
    match write {
        Write::Create => &CREATE,
        Write::Replace => &REPLACE,
    }
}

fn blueprint_insert(dialect: Dialect, write: Write) -> String {
    insert(
        dialect,
        write,
        "blueprints (identifier, data) VALUES ($1, $2)",
        "identifier",
        "data = EXCLUDED.data",
    )
}

pub(crate) static COUNT_ENTITIES: Statement =
    Statement::new(|_| "SELECT count(*) FROM entities WHERE blueprint = $1".into());
pub(crate) static DELETE_BLUEPRINT_EDGES: Statement =
    Statement::new(|_| "DELETE FROM entity_relations WHERE blueprint = $1".into());
pub(crate) static DELETE_BLUEPRINT_ENTITIES: Statement =
    Statement::new(|_| "DELETE FROM entities WHERE blueprint = $1".into());
pub(crate) static DELETE_BLUEPRINT: Statement =
    Statement::new(|_| "DELETE FROM blueprints WHERE identifier = $1".into());

pub(crate) static GET_ENTITY: Statement = Statement::new(|_| {
    format!("SELECT {ENTITY_COLUMNS} FROM entities e WHERE e.blueprint = $1 AND e.identifier = $2")
});

/// [`crate::CatalogData::put_entity`]'s statement for `write`.
pub(crate) fn put_entity(write: Write) -> &'static Statement {
    static CREATE: Statement = Statement::new(|d| entity_insert(d, Write::Create));
    static REPLACE: Statement = Statement::new(|d| entity_insert(d, Write::Replace));
    match write {
        Write::Create => &CREATE,
        Write::Replace => &REPLACE,
    }
}

fn entity_insert(dialect: Dialect, write: Write) -> String {
    insert(
        dialect,
        write,
        "entities (blueprint, identifier, title, icon, team, properties, relations, created_at, \
         created_by, updated_at, updated_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        "blueprint, identifier",
        "title = EXCLUDED.title, icon = EXCLUDED.icon, team = EXCLUDED.team, \
         properties = EXCLUDED.properties, relations = EXCLUDED.relations, \
         created_at = EXCLUDED.created_at, created_by = EXCLUDED.created_by, \
         updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by",
    )
}

/// Removes an entity's outgoing relation edges.
pub(crate) static DELETE_EDGES: Statement = Statement::new(|_| {
    "DELETE FROM entity_relations WHERE blueprint = $1 AND identifier = $2".into()
});
pub(crate) static INSERT_EDGE: Statement = Statement::new(|d| {
    insert_or_ignore(
        d,
        "entity_relations (blueprint, identifier, relation, target_blueprint, \
         target_identifier) VALUES ($1, $2, $3, $4, $5)",
    )
});
pub(crate) static DELETE_ENTITY: Statement =
    Statement::new(|_| "DELETE FROM entities WHERE blueprint = $1 AND identifier = $2".into());
pub(crate) static DEPENDENTS: Statement = Statement::new(|_| {
    "SELECT DISTINCT blueprint, identifier FROM entity_relations \
     WHERE target_blueprint = $1 AND target_identifier = $2 ORDER BY 1, 2"
        .into()
});

/// [`crate::CatalogData::search`]'s statement and parameters: the compiled query, after the
/// `after` entity when given, in the query's order. The cursor names an entity; its sort key is
/// read from the row (so a cursor whose entity was deleted meanwhile ends the listing).
pub(crate) fn search(
    q: &Query,
    limit: usize,
    after: Option<EntityRef>,
    dialect: Dialect,
) -> Result<(String, Vec<Param>), QueryError> {
    let mut sql = query::compile(q, dialect)?;
    let key = q.order.key;
    let (op, dir) = if q.order.descending {
        ("<", " DESC")
    } else {
        (">", "")
    };
    if let Some(after) = after {
        let n = sql.params.len();
        let (b, i) = (placeholder(dialect, n + 1), placeholder(dialect, n + 2));
        let position = match key {
            crate::SortKey::Identifier => format!("({b}, {i})"),
            _ => format!(
                "(SELECT {} FROM entities c WHERE c.blueprint = {b} AND c.identifier = {i})",
                key.columns("c").join(", ")
            ),
        };
        let columns = key.columns("e").join(", ");
        sql.text = format!("({}) AND ({columns}) {op} {position}", sql.text);
        sql.params.push(Param::Text(after.blueprint));
        sql.params.push(Param::Text(after.identifier));
    }
    let order: Vec<String> = key
        .columns("e")
        .into_iter()
        .map(|c| format!("{c}{dir}"))
        .collect();
    let text = format!(
        "SELECT {ENTITY_COLUMNS} FROM entities e WHERE {} ORDER BY {} LIMIT {}",
        sql.text,
        order.join(", "),
        sql_limit(limit)
    );
    Ok((text, sql.params))
}

// ---------------------------------------------------------------------------------------------
// Users, tokens and teams
// ---------------------------------------------------------------------------------------------

/// A user's columns, in the order [`crate::rows::user`] reads them.
const USER_COLUMNS: &str = "identifier, email, role, teams, created_at, disabled";
/// A token's columns (never its hash), in the order [`crate::rows::token`] reads them.
const TOKEN_COLUMNS: &str = "id, user_id, name, prefix, created_at, rotated_at, last_used_at";

pub(crate) static INSERT_USER: Statement = Statement::new(|_| {
    "INSERT INTO users (identifier, email, role, teams, disabled, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6)"
        .into()
});
pub(crate) static INSERT_TOKEN: Statement = Statement::new(|_| {
    "INSERT INTO user_tokens (id, user_id, name, prefix, token_hash, created_at, rotated_at, \
     last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        .into()
});
pub(crate) static LIST_USERS: Statement =
    Statement::new(|_| format!("SELECT {USER_COLUMNS} FROM users ORDER BY identifier"));
pub(crate) static GET_USER: Statement =
    Statement::new(|_| format!("SELECT {USER_COLUMNS} FROM users WHERE identifier = $1"));
/// The user's columns, then the token's id and when it was last used.
pub(crate) static AUTHENTICATE: Statement = Statement::new(|_| {
    "SELECT u.identifier, u.email, u.role, u.teams, u.created_at, u.disabled, \
     t.id, t.last_used_at \
     FROM user_tokens t JOIN users u ON u.identifier = t.user_id \
     WHERE t.token_hash = $1 AND NOT u.disabled"
        .into()
});
pub(crate) static UPDATE_USER: Statement = Statement::new(|_| {
    "UPDATE users SET role = $2, teams = $3, disabled = $4 WHERE identifier = $1".into()
});
pub(crate) static DELETE_USER: Statement =
    Statement::new(|_| "DELETE FROM users WHERE identifier = $1".into());
pub(crate) static DELETE_USER_TOKENS: Statement =
    Statement::new(|_| "DELETE FROM user_tokens WHERE user_id = $1".into());
pub(crate) static LIST_TOKENS: Statement = Statement::new(|_| {
    format!("SELECT {TOKEN_COLUMNS} FROM user_tokens WHERE user_id = $1 ORDER BY created_at, id")
});
pub(crate) static ROTATE_TOKEN: Statement = Statement::new(|_| {
    format!(
        "UPDATE user_tokens SET token_hash = $3, prefix = $4, rotated_at = $5, \
         last_used_at = NULL WHERE user_id = $1 AND id = $2 RETURNING {TOKEN_COLUMNS}"
    )
});
pub(crate) static DELETE_TOKEN: Statement =
    Statement::new(|_| "DELETE FROM user_tokens WHERE user_id = $1 AND id = $2".into());
pub(crate) static TOUCH_TOKEN: Statement =
    Statement::new(|_| "UPDATE user_tokens SET last_used_at = $2 WHERE token_hash = $1".into());
pub(crate) static COUNT_USERS: Statement = Statement::new(|_| "SELECT count(*) FROM users".into());
pub(crate) static INSERT_TEAM: Statement = Statement::new(|_| {
    "INSERT INTO teams (name, description, created_at) VALUES ($1, $2, $3)".into()
});
pub(crate) static LIST_TEAMS: Statement =
    Statement::new(|_| "SELECT name, description, created_at FROM teams ORDER BY name".into());

// ---------------------------------------------------------------------------------------------
// Plugins and actions
// ---------------------------------------------------------------------------------------------

/// Stores a plugin version unless the name already has this digest.
pub(crate) static INSERT_PLUGIN: Statement = Statement::new(|d| {
    insert_or_ignore(
        d,
        "plugins (name, digest, size, bytes, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
});
pub(crate) static LIST_PLUGINS: Statement = Statement::new(|_| {
    "SELECT name, digest, size, created_at, created_by FROM plugins \
     ORDER BY name, created_at DESC, digest"
        .into()
});
pub(crate) static PLUGIN_BYTES: Statement =
    Statement::new(|_| "SELECT bytes FROM plugins WHERE name = $1 AND digest = $2".into());
/// Removes one version (an upload that turned out not to compile).
pub(crate) static WITHDRAW_PLUGIN_VERSION: Statement =
    Statement::new(|_| "DELETE FROM plugins WHERE name = $1 AND digest = $2".into());
/// How many actions a plugin runs.
pub(crate) static PLUGIN_USERS: Statement =
    Statement::new(|_| "SELECT count(*) FROM actions WHERE plugin = $1".into());
pub(crate) static DELETE_PLUGIN: Statement =
    Statement::new(|_| "DELETE FROM plugins WHERE name = $1".into());

/// An action's columns, in the order [`crate::rows::action`] reads them.
const ACTION_COLUMNS: &str = "identifier, plugin, data, created_at, updated_at";

/// [`crate::ActionDefinitions::put_action`]'s statement for `write`.
pub(crate) fn put_action(write: Write) -> &'static Statement {
    static CREATE: Statement = Statement::new(|d| action_insert(d, Write::Create));
    static REPLACE: Statement = Statement::new(|d| action_insert(d, Write::Replace));
    match write {
        Write::Create => &CREATE,
        Write::Replace => &REPLACE,
    }
}

fn action_insert(dialect: Dialect, write: Write) -> String {
    insert(
        dialect,
        write,
        &format!("actions ({ACTION_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"),
        "identifier",
        "plugin = EXCLUDED.plugin, data = EXCLUDED.data, updated_at = EXCLUDED.updated_at",
    )
}

pub(crate) static GET_ACTION: Statement =
    Statement::new(|_| format!("SELECT {ACTION_COLUMNS} FROM actions WHERE identifier = $1"));
pub(crate) static LIST_ACTIONS: Statement =
    Statement::new(|_| format!("SELECT {ACTION_COLUMNS} FROM actions ORDER BY identifier"));
pub(crate) static DELETE_ACTION: Statement =
    Statement::new(|_| "DELETE FROM actions WHERE identifier = $1".into());

// ---------------------------------------------------------------------------------------------
// Runs, approvals and run logs
// ---------------------------------------------------------------------------------------------

/// A run's stored columns, as [`INSERT_RUN`] writes them.
pub(crate) const RUN_COLUMNS: &str = "id, action, blueprint, entity, properties, status, \
    status_label, link, summary, progress, error, affected_entities, output, source, created_by, \
    created_at, updated_at, ended_at, attempts, payload";

/// [`RUN_COLUMNS`] (the payload as text, for `JsonText`) and whether an external system holds
/// the run (`RunRecord::external`), in the order [`crate::rows::run`] reads them.
fn run_select(dialect: Dialect) -> String {
    let (payload, external) = match dialect {
        Dialect::Sqlite => ("payload", "lease_owner IS 'external'"),
        Dialect::Postgres => ("payload::text", "COALESCE(lease_owner = 'external', false)"),
    };
    let columns = RUN_COLUMNS.strip_suffix("payload").unwrap_or(RUN_COLUMNS);
    format!("{columns}{payload}, {external}")
}

/// A run and its lease owner and end (`$21`, `$22`), built once: it runs for every run.
pub(crate) static INSERT_RUN: Statement = Statement::new(|d| {
    let payload = match d {
        Dialect::Sqlite => "$20",
        Dialect::Postgres => "$20::text::jsonb",
    };
    format!(
        "INSERT INTO runs ({RUN_COLUMNS}, lease_owner, lease_until) VALUES ($1, $2, $3, $4, $5, \
         $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, {payload}, $21, $22)"
    )
});

/// Stores an action version unless it is stored (`$1` digest, `$2` definition, `$3` now).
pub(crate) static INSERT_ACTION_VERSION: Statement = Statement::new(|d| {
    let definition = match d {
        Dialect::Sqlite => "$2",
        Dialect::Postgres => "$2::text::jsonb",
    };
    format!(
        "INSERT INTO action_versions (digest, definition, created_at) \
         VALUES ($1, {definition}, $3) ON CONFLICT (digest) DO NOTHING"
    )
});
pub(crate) static ACTION_VERSION: Statement = Statement::new(|d| {
    let definition = match d {
        Dialect::Sqlite => "definition",
        Dialect::Postgres => "definition::text",
    };
    format!("SELECT {definition} FROM action_versions WHERE digest = $1")
});

pub(crate) static GET_RUN: Statement =
    Statement::new(|d| format!("SELECT {} FROM runs WHERE id = $1", run_select(d)));

/// [`crate::RunQueue::list_runs`]'s statement and parameters.
pub(crate) fn list_runs(f: &RunFilter, dialect: Dialect) -> (String, Vec<Param>) {
    let mut c = Conditions::new(dialect);
    if let Some(v) = &f.action {
        c.add("action = ?", Param::Text(v.clone()));
    }
    if let Some(v) = &f.status {
        c.add("status = ?", Param::Text(v.as_str().into()));
    }
    if let Some(v) = &f.created_by {
        c.add("created_by = ?", Param::Text(v.clone()));
    }
    if let Some(v) = &f.entity {
        c.add("entity = ?", Param::Text(v.clone()));
    }
    if let Some(v) = &f.before {
        c.add(
            "(created_at, id) < (SELECT created_at, id FROM runs WHERE id = ?)",
            Param::Text(v.clone()),
        );
    }
    let text = format!(
        "SELECT {} FROM runs WHERE {} ORDER BY created_at DESC, id DESC LIMIT {}",
        run_select(dialect),
        c.joined(),
        sql_limit(f.limit)
    );
    (text, c.params)
}

/// Writes a run's mutable fields unless its status is final; a final status (`$12`) drops the
/// lease and the payload's sealed secrets (SQLite rewrites the payload only when it holds some).
/// Built once: it runs for every run.
pub(crate) static UPDATE_RUN: Statement = Statement::new(|d| {
    let unsealed = match d {
        Dialect::Sqlite => {
            "CASE WHEN $12 AND instr(payload, '\"sealed\"') > 0 \
             THEN json_remove(payload, '$.sealed') ELSE payload END"
        }
        Dialect::Postgres => {
            "CASE WHEN $12 AND jsonb_typeof(payload) = 'object' \
             THEN payload - 'sealed' ELSE payload END"
        }
    };
    format!(
        "UPDATE runs SET status = $2, status_label = $3, link = $4, summary = $5, \
         progress = $6, error = $7, affected_entities = $8, output = $9, \
         updated_at = $10, ended_at = $11, \
         lease_owner = CASE WHEN $12 THEN NULL ELSE lease_owner END, \
         lease_until = CASE WHEN $12 THEN NULL ELSE lease_until END, \
         payload = {unsealed} \
         WHERE id = $1 AND status NOT IN {}",
        final_statuses()
    )
});

/// The SQL list of the final statuses, e.g. `('SUCCESS', 'FAILURE')`.
fn final_statuses() -> String {
    let quoted: Vec<String> = RunStatus::FINAL.iter().map(|s| format!("'{s}'")).collect();
    format!("({})", quoted.join(", "))
}

pub(crate) static EXPIRED_RUNS: Statement = Statement::new(|d| {
    format!(
        "SELECT {} FROM runs WHERE status = 'IN_PROGRESS' \
         AND (lease_until IS NULL OR lease_until < $1) ORDER BY created_at, id",
        run_select(d)
    )
});
pub(crate) static REQUEUE_RUN: Statement = Statement::new(|_| {
    "UPDATE runs SET status = 'PENDING', lease_owner = NULL, lease_until = NULL \
     WHERE id = $1 AND status = 'IN_PROGRESS'"
        .into()
});
pub(crate) static HAND_OFF_RUN: Statement = Statement::new(|_| {
    "UPDATE runs SET lease_owner = 'external', lease_until = $3 \
     WHERE id = $1 AND lease_owner = $2 AND status = 'IN_PROGRESS'"
        .into()
});
pub(crate) static INSERT_APPROVAL: Statement = Statement::new(|_| {
    "INSERT INTO run_approvals (run_id, approver, decision, description, at) \
     VALUES ($1, $2, $3, $4, $5)"
        .into()
});
pub(crate) static APPROVALS: Statement = Statement::new(|_| {
    "SELECT run_id, approver, decision, description, at FROM run_approvals \
     WHERE run_id = $1 ORDER BY at, approver"
        .into()
});
pub(crate) static COUNT_RUNS: Statement =
    Statement::new(|_| "SELECT count(*) FROM runs WHERE status = $1".into());
pub(crate) static INSERT_LOG: Statement = Statement::new(|_| {
    "INSERT INTO run_logs (run_id, seq, at, level, message) VALUES ($1, $2, $3, $4, $5)".into()
});
pub(crate) static LAST_LOG_SEQ: Statement = Statement::new(|_| {
    "SELECT CAST(coalesce(max(seq), 0) AS BIGINT) FROM run_logs WHERE run_id = $1".into()
});
pub(crate) static RUN_LOGS: Statement = Statement::new(|_| {
    "SELECT run_id, seq, at, level, message FROM run_logs \
     WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
        .into()
});

/// A user's runs of an action that have not ended (`$1` user, `$2` action), for
/// [`crate::RunLimits::concurrent`].
pub(crate) static COUNT_UNENDED_RUNS: Statement = Statement::new(|_| {
    "SELECT count(*) FROM runs WHERE created_by = $1 AND action = $2 \
     AND status IN ('WAITING_FOR_APPROVAL', 'PENDING', 'IN_PROGRESS')"
        .into()
});
/// A user's runs of an action created after `$3`, for [`crate::RunLimits::per_day`].
pub(crate) static COUNT_RUNS_SINCE: Statement = Statement::new(|_| {
    "SELECT count(*) FROM runs WHERE created_by = $1 AND action = $2 AND created_at > $3".into()
});

// ---------------------------------------------------------------------------------------------
// Outbox and leadership
// ---------------------------------------------------------------------------------------------

/// An event, due at once (`$3`: now).
pub(crate) static INSERT_EVENT: Statement = Statement::new(|_| {
    "INSERT INTO outbox (topic, body, created_at, due_at) VALUES ($1, $2, $3, $3)".into()
});
/// Leases the oldest due events (`$1` now, `$2` limit) until `$3`. Postgres skips the rows
/// another consumer is claiming, and re-checks `due_at` on a row it had to wait for.
pub(crate) static CLAIM_EVENTS: Statement = Statement::new(|d| {
    let skip = match d {
        Dialect::Sqlite => "",
        Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
    };
    format!(
        "UPDATE outbox SET due_at = $3, attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM outbox WHERE due_at <= $1 ORDER BY id LIMIT $2{skip}) \
         AND due_at <= $1 RETURNING id, topic, body, created_at, attempts"
    )
});
pub(crate) static RETRY_EVENT: Statement =
    Statement::new(|_| "UPDATE outbox SET due_at = $2 WHERE id = $1".into());
pub(crate) static COUNT_EVENTS: Statement =
    Statement::new(|_| "SELECT count(*) FROM outbox".into());
/// Takes `$1`'s leadership for `$2` until `$4` when nobody holds it, it was `$2`'s, or its
/// holder's term ended before `$3`; changes no row otherwise.
pub(crate) static LEAD: Statement = Statement::new(|_| {
    "INSERT INTO leaders (role, owner, until) VALUES ($1, $2, $4) \
     ON CONFLICT (role) DO UPDATE SET owner = excluded.owner, until = excluded.until \
     WHERE leaders.owner = excluded.owner OR leaders.until < $3"
        .into()
});

// ---------------------------------------------------------------------------------------------
// Audit
// ---------------------------------------------------------------------------------------------

pub(crate) static INSERT_AUDIT: Statement = Statement::new(|_| {
    "INSERT INTO audit_log (at, actor, operation, resource_type, resource_id, blueprint, \
     run_id, before, after, status, reason, origin) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        .into()
});

/// [`crate::AuditTrail::audit_log`]'s statement and parameters, newest first.
pub(crate) fn audit_log(f: &AuditFilter, dialect: Dialect) -> (String, Vec<Param>) {
    let mut c = Conditions::new(dialect);
    if let Some(v) = &f.resource_type {
        c.add("resource_type = ?", Param::Text(v.clone()));
    }
    if let Some(v) = &f.resource_id {
        c.add("resource_id = ?", Param::Text(v.clone()));
    }
    if let Some(v) = &f.actor {
        c.add("actor = ?", Param::Text(v.clone()));
    }
    if let Some(v) = &f.run_id {
        c.add("run_id = ?", Param::Text(v.clone()));
    }
    if let Some(v) = f.from {
        c.add("at >= ?", Param::Int(v.timestamp_millis()));
    }
    if let Some(v) = f.to {
        c.add("at < ?", Param::Int(v.timestamp_millis()));
    }
    if let Some(v) = f.before_id {
        c.add("id < ?", Param::Int(v));
    }
    if let Some(v) = &f.visible_to {
        c.add(
            "(resource_type IN ('blueprint', 'entity') OR actor = ?)",
            Param::Text(v.clone()),
        );
    }
    let text = format!(
        "SELECT id, at, actor, operation, resource_type, resource_id, blueprint, run_id, \
         before, after, status, reason, origin FROM audit_log WHERE {} \
         ORDER BY id DESC LIMIT {}",
        c.joined(),
        sql_limit(f.limit)
    );
    (text, c.params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_numbers_its_placeholders_and_keeps_json_paths() {
        assert_eq!(
            question_marks("a = $1 AND b = $12 AND json_remove(p, '$.sealed') AND c = $"),
            "a = ?1 AND b = ?12 AND json_remove(p, '$.sealed') AND c = $"
        );
        assert!(UPDATE_RUN.sqlite().contains("'$.sealed'"));
        assert!(UPDATE_RUN.sqlite().contains("WHERE id = ?1 AND"));
        assert!(
            INSERT_RUN
                .postgres()
                .contains("$20::text::jsonb, $21, $22)")
        );
        assert!(INSERT_RUN.sqlite().contains("?19, ?20, ?21, ?22)"));
    }

    #[test]
    fn run_columns_read_the_payload_as_text_and_the_hand_off() {
        assert!(
            run_select(Dialect::Postgres)
                .ends_with("attempts, payload::text, COALESCE(lease_owner = 'external', false)")
        );
        assert!(
            run_select(Dialect::Sqlite).ends_with("attempts, payload, lease_owner IS 'external'")
        );
    }
}

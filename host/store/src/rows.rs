//! Reading rows back into the model, written once for both backends. A backend's row type says
//! how it reads one column of each kind ([`Columns`]): SQLite keeps JSON as text and booleans as
//! integers, Postgres keeps jsonb and booleans. The column orders are those of the statements in
//! [`crate::sql`].

use crate::model::*;
use chrono::{DateTime, TimeZone, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A time as stored: milliseconds since the epoch.
pub(crate) fn ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// A stored time.
pub(crate) fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// A `LIMIT`: both databases take at most a 64-bit integer.
pub(crate) fn sql_limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// One result row, read by column index.
pub(crate) trait Columns {
    /// Why a column cannot be read.
    type Error;
    fn text(&self, i: usize) -> Result<String, Self::Error>;
    fn opt_text(&self, i: usize) -> Result<Option<String>, Self::Error>;
    fn int(&self, i: usize) -> Result<i64, Self::Error>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, Self::Error>;
    /// A 32-bit integer column (a run's attempts).
    fn int32(&self, i: usize) -> Result<i32, Self::Error>;
    fn flag(&self, i: usize) -> Result<bool, Self::Error>;
    /// A JSON column; unreadable JSON reads as `null`.
    fn json(&self, i: usize) -> Result<Value, Self::Error>;
    fn opt_json(&self, i: usize) -> Result<Option<Value>, Self::Error>;
    /// A JSON column as `T`; JSON of another shape reads as `T::default()`.
    fn decoded<T: DeserializeOwned + Default>(&self, i: usize) -> Result<T, Self::Error>;
    fn status(&self, i: usize) -> Result<RunStatus, Self::Error>;

    fn time(&self, i: usize) -> Result<DateTime<Utc>, Self::Error> {
        Ok(at(self.int(i)?))
    }

    fn opt_time(&self, i: usize) -> Result<Option<DateTime<Utc>>, Self::Error> {
        Ok(self.opt_int(i)?.map(at))
    }
}

/// [`crate::sql::ENTITY_COLUMNS`].
pub(crate) fn entity<R: Columns>(r: &R) -> Result<Entity, R::Error> {
    Ok(Entity {
        blueprint: r.text(0)?,
        identifier: r.text(1)?,
        title: r.opt_text(2)?,
        icon: r.opt_text(3)?,
        team: r.decoded(4)?,
        properties: r.json(5)?,
        relations: r.json(6)?,
        created_at: r.time(7)?,
        created_by: r.text(8)?,
        updated_at: r.time(9)?,
        updated_by: r.text(10)?,
    })
}

pub(crate) fn entity_ref<R: Columns>(r: &R) -> Result<EntityRef, R::Error> {
    Ok(EntityRef {
        blueprint: r.text(0)?,
        identifier: r.text(1)?,
    })
}

/// A user's columns (`identifier, email, role, teams, created_at, disabled`).
pub(crate) fn user<R: Columns>(r: &R) -> Result<User, R::Error> {
    Ok(User {
        identifier: r.text(0)?,
        email: r.opt_text(1)?,
        role: Role::parse(&r.text(2)?).unwrap_or(Role::Member),
        teams: r.decoded(3)?,
        created_at: r.time(4)?,
        disabled: r.flag(5)?,
    })
}

/// [`crate::sql::AUTHENTICATE`]'s row.
pub(crate) fn credential<R: Columns>(r: &R) -> Result<Credential, R::Error> {
    Ok(Credential {
        user: user(r)?,
        token_id: r.text(6)?,
        last_used_at: r.opt_time(7)?,
    })
}

/// A token's columns (`id, user_id, name, prefix, created_at, rotated_at, last_used_at`).
pub(crate) fn token<R: Columns>(r: &R) -> Result<ApiToken, R::Error> {
    Ok(ApiToken {
        id: r.text(0)?,
        user: r.text(1)?,
        name: r.opt_text(2)?,
        prefix: r.opt_text(3)?,
        created_at: r.time(4)?,
        rotated_at: r.opt_time(5)?,
        last_used_at: r.opt_time(6)?,
    })
}

pub(crate) fn team<R: Columns>(r: &R) -> Result<Team, R::Error> {
    Ok(Team {
        name: r.text(0)?,
        description: r.opt_text(1)?,
        created_at: r.time(2)?,
    })
}

pub(crate) fn plugin<R: Columns>(r: &R) -> Result<PluginVersion, R::Error> {
    Ok(PluginVersion {
        name: r.text(0)?,
        digest: r.text(1)?,
        size: r.int(2)? as u64,
        created_at: r.time(3)?,
        created_by: r.text(4)?,
    })
}

pub(crate) fn action<R: Columns>(r: &R) -> Result<ActionRecord, R::Error> {
    Ok(ActionRecord {
        identifier: r.text(0)?,
        plugin: r.text(1)?,
        data: r.json(2)?,
        created_at: r.time(3)?,
        updated_at: r.time(4)?,
    })
}

/// A run's columns and whether an external system holds it.
pub(crate) fn run<R: Columns>(r: &R) -> Result<RunRecord, R::Error> {
    Ok(RunRecord {
        id: r.text(0)?,
        action: r.text(1)?,
        blueprint: r.opt_text(2)?,
        entity: r.opt_text(3)?,
        properties: r.json(4)?,
        status: r.status(5)?,
        status_label: r.opt_text(6)?,
        link: r.decoded(7)?,
        summary: r.opt_text(8)?,
        progress: r.opt_json(9)?,
        error: r.opt_json(10)?,
        affected_entities: r.json(11)?,
        output: r.opt_json(12)?,
        source: r.text(13)?,
        created_by: r.text(14)?,
        created_at: r.time(15)?,
        updated_at: r.time(16)?,
        ended_at: r.opt_time(17)?,
        attempts: r.int32(18)?,
        payload: JsonText::from_stored(r.text(19)?),
        external: r.flag(20)?,
    })
}

pub(crate) fn approval<R: Columns>(r: &R) -> Result<Approval, R::Error> {
    Ok(Approval {
        run_id: r.text(0)?,
        approver: r.text(1)?,
        decision: r.text(2)?,
        description: r.opt_text(3)?,
        at: r.time(4)?,
    })
}

pub(crate) fn log_line<R: Columns>(r: &R) -> Result<RunLogLine, R::Error> {
    Ok(RunLogLine {
        run_id: r.text(0)?,
        seq: r.int(1)?,
        at: r.time(2)?,
        level: r.text(3)?,
        message: r.text(4)?,
    })
}

/// [`crate::sql::CLAIM_EVENTS`]'s returned columns.
pub(crate) fn event<R: Columns>(r: &R) -> Result<OutboxEvent, R::Error> {
    Ok(OutboxEvent {
        id: r.int(0)?,
        topic: r.text(1)?,
        body: r.json(2)?,
        created_at: r.time(3)?,
        attempts: r.int32(4)?,
    })
}

pub(crate) fn audit_record<R: Columns>(r: &R) -> Result<AuditRecord, R::Error> {
    Ok(AuditRecord {
        id: r.int(0)?,
        at: r.time(1)?,
        actor: r.text(2)?,
        operation: r.text(3)?,
        resource_type: r.text(4)?,
        resource_id: r.text(5)?,
        blueprint: r.opt_text(6)?,
        run_id: r.opt_text(7)?,
        before: r.opt_json(8)?,
        after: r.opt_json(9)?,
        status: if r.text(10)? == "SUCCESS" {
            AuditStatus::Success
        } else {
            AuditStatus::Failure
        },
        reason: r.opt_text(11)?,
        origin: r.text(12)?,
    })
}

/// How an audit status is stored.
pub(crate) fn audit_status(status: AuditStatus) -> &'static str {
    match status {
        AuditStatus::Success => "SUCCESS",
        AuditStatus::Failure => "FAILURE",
    }
}

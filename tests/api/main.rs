//! The HTTP API end to end: a real server on 127.0.0.1:0 per backend (SQLite always, Postgres
//! when PORTICO_TEST_POSTGRES_URL is set), driven over HTTP; on Postgres, several servers share one
//! database as replicas do.

mod actions;
mod audit;
mod automations;
mod blueprints;
mod durability;
mod entities;
mod envelope;
mod external;
mod guardrails;
mod limits;
mod metrics;
mod plugins;
mod portal;
mod readiness;
mod replicas;
mod runs;
mod search;
mod secrets;
mod tokens;
mod users;

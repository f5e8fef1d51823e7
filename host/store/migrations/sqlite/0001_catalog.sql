CREATE TABLE blueprints (
    identifier  TEXT PRIMARY KEY,
    data        TEXT NOT NULL
) STRICT;

CREATE TABLE entities (
    blueprint   TEXT NOT NULL,
    identifier  TEXT NOT NULL,
    title       TEXT,
    icon        TEXT,
    team        TEXT NOT NULL DEFAULT '[]',
    properties  TEXT NOT NULL DEFAULT '{}',
    relations   TEXT NOT NULL DEFAULT '{}',
    created_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    updated_by  TEXT NOT NULL,
    PRIMARY KEY (blueprint, identifier)
) STRICT;

CREATE TABLE entity_relations (
    blueprint          TEXT NOT NULL,
    identifier         TEXT NOT NULL,
    relation           TEXT NOT NULL,
    target_blueprint   TEXT NOT NULL,
    target_identifier  TEXT NOT NULL,
    PRIMARY KEY (blueprint, identifier, relation, target_identifier)
) STRICT;
CREATE INDEX entity_relations_target ON entity_relations (target_blueprint, target_identifier);

CREATE TABLE users (
    identifier  TEXT PRIMARY KEY,
    email       TEXT,
    role        TEXT NOT NULL,
    teams       TEXT NOT NULL DEFAULT '[]',
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE teams (
    name         TEXT PRIMARY KEY,
    description  TEXT,
    created_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE audit_log (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    at             INTEGER NOT NULL,
    actor          TEXT NOT NULL,
    operation      TEXT NOT NULL,
    resource_type  TEXT NOT NULL,
    resource_id    TEXT NOT NULL,
    blueprint      TEXT,
    run_id         TEXT,
    before         TEXT,
    after          TEXT,
    status         TEXT NOT NULL,
    reason         TEXT,
    origin         TEXT NOT NULL
) STRICT;
CREATE INDEX audit_log_resource ON audit_log (resource_type, resource_id);
CREATE INDEX audit_log_actor ON audit_log (actor);
CREATE INDEX audit_log_at ON audit_log (at);

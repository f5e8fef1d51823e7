-- Text keys and titles use the "C" collation: they sort and compare by bytes, as SQLite does,
-- whatever the database's default collation (often a linguistic one such as en_US.UTF-8), so
-- listings, search order, `after` cursors and `<`/`>` on them give the same answers on both
-- backends.

CREATE TABLE blueprints (
    identifier  TEXT COLLATE "C" PRIMARY KEY,
    data        JSONB NOT NULL
);

CREATE TABLE entities (
    blueprint   TEXT COLLATE "C" NOT NULL,
    identifier  TEXT COLLATE "C" NOT NULL,
    title       TEXT COLLATE "C",
    icon        TEXT,
    team        JSONB NOT NULL DEFAULT '[]',
    properties  JSONB NOT NULL DEFAULT '{}',
    relations   JSONB NOT NULL DEFAULT '{}',
    created_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    updated_by  TEXT NOT NULL,
    PRIMARY KEY (blueprint, identifier)
);
CREATE INDEX entities_properties ON entities USING GIN (properties jsonb_path_ops);
CREATE INDEX entities_team ON entities USING GIN (team);

CREATE TABLE entity_relations (
    blueprint          TEXT COLLATE "C" NOT NULL,
    identifier         TEXT COLLATE "C" NOT NULL,
    relation           TEXT COLLATE "C" NOT NULL,
    target_blueprint   TEXT COLLATE "C" NOT NULL,
    target_identifier  TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (blueprint, identifier, relation, target_identifier)
);
CREATE INDEX entity_relations_target ON entity_relations (target_blueprint, target_identifier);

CREATE TABLE users (
    identifier  TEXT COLLATE "C" PRIMARY KEY,
    email       TEXT,
    role        TEXT NOT NULL,
    teams       JSONB NOT NULL DEFAULT '[]',
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE teams (
    name         TEXT COLLATE "C" PRIMARY KEY,
    description  TEXT,
    created_at   BIGINT NOT NULL
);

CREATE TABLE audit_log (
    id             BIGSERIAL PRIMARY KEY,
    at             BIGINT NOT NULL,
    actor          TEXT NOT NULL,
    operation      TEXT NOT NULL,
    resource_type  TEXT NOT NULL,
    resource_id    TEXT NOT NULL,
    blueprint      TEXT,
    run_id         TEXT,
    before         JSONB,
    after          JSONB,
    status         TEXT NOT NULL,
    reason         TEXT,
    origin         TEXT NOT NULL
);
CREATE INDEX audit_log_resource ON audit_log (resource_type, resource_id);
CREATE INDEX audit_log_actor ON audit_log (actor);
CREATE INDEX audit_log_at ON audit_log (at);

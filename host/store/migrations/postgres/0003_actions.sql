CREATE TABLE actions (
    identifier  TEXT COLLATE "C" PRIMARY KEY,
    plugin      TEXT COLLATE "C" NOT NULL,
    data        JSONB NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX actions_plugin ON actions (plugin);

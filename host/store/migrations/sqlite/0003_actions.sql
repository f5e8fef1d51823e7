CREATE TABLE actions (
    identifier  TEXT PRIMARY KEY,
    plugin      TEXT NOT NULL,
    data        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX actions_plugin ON actions (plugin);

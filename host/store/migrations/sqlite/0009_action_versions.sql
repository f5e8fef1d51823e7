-- Each action version runs were accepted with, stored once: a run's payload names it by
-- `digest` instead of carrying a copy. Rows are never changed nor deleted.
CREATE TABLE action_versions (
    digest      TEXT PRIMARY KEY,
    definition  TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

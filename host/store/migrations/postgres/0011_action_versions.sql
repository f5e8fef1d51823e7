-- Each action version runs were accepted with, stored once: a run's payload names it by
-- `digest` instead of carrying a copy. Rows are never changed nor deleted.
CREATE TABLE action_versions (
    digest      TEXT COLLATE "C" PRIMARY KEY,
    definition  JSONB NOT NULL,
    created_at  BIGINT NOT NULL
);

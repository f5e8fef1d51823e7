-- The outbox: events written in the same transaction as the change that caused them, consumed
-- by whichever replica claims them. `due_at` (ms) is when an event may be claimed: when it was
-- written, when a retry is due, or when a consumer's lease on it ends. AUTOINCREMENT: an id is
-- never reused, since run ids are derived from it.
CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    topic       TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    due_at      INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX outbox_due ON outbox (due_at, id);

-- Who does periodic work that must run on one replica at a time, until when (ms).
CREATE TABLE leaders (
    role   TEXT PRIMARY KEY,
    owner  TEXT NOT NULL,
    until  INTEGER NOT NULL
) STRICT;

-- Quotas count a user's runs of an action.
CREATE INDEX runs_creator ON runs (created_by, action, created_at);

-- The outbox: events written in the same transaction as the change that caused them, consumed
-- by whichever replica claims them (`FOR UPDATE SKIP LOCKED`). `due_at` (ms) is when an event
-- may be claimed: when it was written, when a retry is due, or when a consumer's lease on it
-- ends. Identity ids are never reused, since run ids are derived from them.
CREATE TABLE outbox (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic       TEXT COLLATE "C" NOT NULL,
    body        JSONB NOT NULL,
    created_at  BIGINT NOT NULL,
    due_at      BIGINT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbox_due ON outbox (due_at, id);

-- Who does periodic work that must run on one replica at a time, until when (ms).
CREATE TABLE leaders (
    role   TEXT COLLATE "C" PRIMARY KEY,
    owner  TEXT COLLATE "C" NOT NULL,
    until  BIGINT NOT NULL
);

-- Quotas count a user's runs of an action.
CREATE INDEX runs_creator ON runs (created_by, action, created_at);

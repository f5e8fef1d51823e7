-- Action runs. JSON columns are TEXT; timestamps are milliseconds since the epoch. A run is
-- owned by a worker (`lease_owner`) until `lease_until` while IN_PROGRESS; both are NULL
-- otherwise.
CREATE TABLE runs (
    id                 TEXT PRIMARY KEY,
    action             TEXT NOT NULL,
    blueprint          TEXT,
    entity             TEXT,
    properties         TEXT NOT NULL DEFAULT '{}',
    status             TEXT NOT NULL,
    status_label       TEXT,
    link               TEXT NOT NULL DEFAULT '[]',
    summary            TEXT,
    progress           TEXT,
    error              TEXT,
    affected_entities  TEXT NOT NULL DEFAULT '[]',
    output             TEXT,
    source             TEXT NOT NULL,
    created_by         TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    ended_at           INTEGER,
    attempts           INTEGER NOT NULL DEFAULT 0,
    payload            TEXT NOT NULL DEFAULT 'null',
    lease_owner        TEXT,
    lease_until        INTEGER
) STRICT;
-- Claiming (oldest PENDING first) and finding expired leases (IN_PROGRESS).
CREATE INDEX runs_status ON runs (status, created_at);
-- Listing, newest first, with an id cursor.
CREATE INDEX runs_created ON runs (created_at, id);

CREATE TABLE run_logs (
    run_id   TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    at       INTEGER NOT NULL,
    level    TEXT NOT NULL,
    message  TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) STRICT;

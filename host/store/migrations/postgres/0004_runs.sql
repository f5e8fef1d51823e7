-- Action runs. Timestamps are milliseconds since the epoch. A run is owned by a worker
-- (`lease_owner`) until `lease_until` while IN_PROGRESS; both are NULL otherwise.
CREATE TABLE runs (
    id                 TEXT COLLATE "C" PRIMARY KEY,
    action             TEXT COLLATE "C" NOT NULL,
    blueprint          TEXT COLLATE "C",
    entity             TEXT COLLATE "C",
    properties         JSONB NOT NULL DEFAULT '{}',
    status             TEXT COLLATE "C" NOT NULL,
    status_label       TEXT,
    link               JSONB NOT NULL DEFAULT '[]',
    summary            TEXT,
    progress           JSONB,
    error              JSONB,
    affected_entities  JSONB NOT NULL DEFAULT '[]',
    output             JSONB,
    source             TEXT NOT NULL,
    created_by         TEXT COLLATE "C" NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    ended_at           BIGINT,
    attempts           INTEGER NOT NULL DEFAULT 0,
    payload            JSONB NOT NULL DEFAULT 'null',
    lease_owner        TEXT COLLATE "C",
    lease_until        BIGINT
);
-- Claiming (oldest PENDING first) and finding expired leases (IN_PROGRESS).
CREATE INDEX runs_status ON runs (status, created_at);
-- Listing, newest first, with an id cursor.
CREATE INDEX runs_created ON runs (created_at, id);

CREATE TABLE run_logs (
    run_id   TEXT COLLATE "C" NOT NULL,
    seq      BIGINT NOT NULL,
    at       BIGINT NOT NULL,
    level    TEXT NOT NULL,
    message  TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);

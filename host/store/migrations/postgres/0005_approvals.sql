-- Approval decisions: one per approver and run.
CREATE TABLE run_approvals (
    run_id       TEXT COLLATE "C" NOT NULL,
    approver     TEXT COLLATE "C" NOT NULL,
    decision     TEXT NOT NULL,
    description  TEXT,
    at           BIGINT NOT NULL,
    PRIMARY KEY (run_id, approver)
);

-- Approval decisions: one per approver and run.
CREATE TABLE run_approvals (
    run_id       TEXT NOT NULL,
    approver     TEXT NOT NULL,
    decision     TEXT NOT NULL,
    description  TEXT,
    at           INTEGER NOT NULL,
    PRIMARY KEY (run_id, approver)
) STRICT;

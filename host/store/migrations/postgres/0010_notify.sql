-- Live changes for every replica (`portico_store::Change`): triggers send `pg_notify` on the
-- `portico` channel, delivered to every listening replica when the writing transaction
-- commits (and never when it rolls back). A payload is a kind letter and run ids separated by
-- spaces: `c <id>` a run changed, `e <id>` a run ended, `l <ids>` log lines appended, `q` a
-- PENDING run is waiting, `*` anything may have changed. Postgres drops a notification that
-- repeats one already sent in the same transaction, so a batch of runs queued, or of log
-- statements for one run, is one notification.

-- A run's status, progress or other mutable fields were written (lease renewals and hand-offs
-- change only the lease and send nothing: see the triggers' WHEN), or a PENDING run appeared.
CREATE FUNCTION portico_notify_run() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'PENDING' AND (TG_OP = 'INSERT' OR OLD.status <> 'PENDING') THEN
        PERFORM pg_notify('portico', 'q');
    END IF;
    IF TG_OP = 'UPDATE' THEN
        PERFORM pg_notify('portico', CASE
            WHEN position(' ' IN NEW.id) > 0 THEN '*'
            WHEN NEW.status IN ('SUCCESS', 'FAILURE', 'CANCELLED', 'DECLINED') THEN 'e ' || NEW.id
            ELSE 'c ' || NEW.id
        END);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER runs_notify_insert AFTER INSERT ON runs
    FOR EACH ROW WHEN (NEW.status = 'PENDING')
    EXECUTE FUNCTION portico_notify_run();

CREATE TRIGGER runs_notify_update AFTER UPDATE ON runs
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status
        OR OLD.updated_at IS DISTINCT FROM NEW.updated_at
        OR OLD.progress IS DISTINCT FROM NEW.progress
        OR OLD.ended_at IS DISTINCT FROM NEW.ended_at)
    EXECUTE FUNCTION portico_notify_run();

-- Log lines: one notification per statement, naming each run once (a batch of 500 lines of
-- one run is `l <id>`); too many runs for a payload (8,000 bytes) is `*`.
CREATE FUNCTION portico_notify_logs() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids TEXT;
    spaced BOOLEAN;
BEGIN
    SELECT string_agg(DISTINCT run_id, ' '), bool_or(position(' ' IN run_id) > 0)
        INTO ids, spaced FROM appended;
    IF ids IS NOT NULL THEN
        PERFORM pg_notify('portico',
            CASE WHEN spaced OR octet_length(ids) > 7900 THEN '*' ELSE 'l ' || ids END);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER run_logs_notify AFTER INSERT ON run_logs
    REFERENCING NEW TABLE AS appended
    FOR EACH STATEMENT EXECUTE FUNCTION portico_notify_logs();

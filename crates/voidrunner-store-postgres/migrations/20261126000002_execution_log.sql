-- The execution event log (see voidrunner_store::LogStore): chunks remember the attempt that
-- produced them, and every status change writes a `status` event in the same transaction,
-- with seq = max(seq) + 1. Every writer of an execution's log holds that execution's row
-- lock (status changes update the row; chunk appends lock it FOR UPDATE first), so the max
-- cannot race. The event is announced with NOTIFY on commit:
-- payload `log db <execution id>/<seq> <schema>`.
ALTER TABLE execution_logs ADD COLUMN attempt integer NOT NULL DEFAULT 0;

CREATE FUNCTION execution_status_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    next_seq bigint;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.status IS NOT DISTINCT FROM OLD.status THEN
        RETURN NULL;
    END IF;
    SELECT COALESCE(MAX(seq), 0) + 1 INTO next_seq
        FROM execution_logs WHERE execution_id = NEW.id;
    INSERT INTO execution_logs (execution_id, seq, stream, data, created_at, attempt)
    VALUES (
        NEW.id,
        next_seq,
        'status',
        convert_to(json_build_object(
            'status', NEW.status,
            'attempt', NEW.attempt,
            'verdict', NEW.verdict,
            'exit_code', NEW.exit_code,
            'signal', NEW.signal,
            'wall_time_ms', NEW.wall_time_ms,
            'cpu_time_ms', NEW.cpu_time_ms,
            'peak_memory_bytes', NEW.peak_memory_bytes,
            'output_truncated', NEW.output_truncated,
            'last_error', NEW.last_error
        )::text, 'UTF8'),
        clock_timestamp(),
        NEW.attempt
    );
    PERFORM pg_notify('voidrunner_queue',
        'log db ' || NEW.id::text || '/' || next_seq::text || ' ' || current_schema());
    RETURN NULL;
END
$$;

CREATE TRIGGER executions_status_event
    AFTER INSERT OR UPDATE OF status ON executions
    FOR EACH ROW EXECUTE FUNCTION execution_status_event();

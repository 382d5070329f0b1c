-- The execution event log (see voidrunner_store::LogStore): chunks remember the attempt that
-- produced them, and every status change writes a `status` event in the same transaction,
-- with seq = max(seq) + 1 (SQLite has one writer, so the max cannot race).
ALTER TABLE execution_logs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER executions_status_event_insert AFTER INSERT ON executions
BEGIN
    INSERT INTO execution_logs (execution_id, seq, stream, data, created_at, attempt)
    VALUES (
        NEW.id,
        (SELECT COALESCE(MAX(seq), 0) + 1 FROM execution_logs WHERE execution_id = NEW.id),
        'status',
        CAST(json_object('status', NEW.status, 'attempt', NEW.attempt) AS BLOB),
        NEW.created_at,
        NEW.attempt
    );
END;

CREATE TRIGGER executions_status_event_update AFTER UPDATE OF status ON executions
WHEN NEW.status IS NOT OLD.status
BEGIN
    INSERT INTO execution_logs (execution_id, seq, stream, data, created_at, attempt)
    VALUES (
        NEW.id,
        (SELECT COALESCE(MAX(seq), 0) + 1 FROM execution_logs WHERE execution_id = NEW.id),
        'status',
        CAST(json_object(
            'status', NEW.status,
            'attempt', NEW.attempt,
            'verdict', json(NEW.verdict),
            'exit_code', NEW.exit_code,
            'signal', NEW.signal,
            'wall_time_ms', NEW.wall_time_ms,
            'cpu_time_ms', NEW.cpu_time_ms,
            'peak_memory_bytes', NEW.peak_memory_bytes,
            'output_truncated', json(CASE NEW.output_truncated WHEN 1 THEN 'true' ELSE 'false' END),
            'last_error', NEW.last_error
        ) AS BLOB),
        CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER),
        NEW.attempt
    );
END;

-- Log archiving and retention scan only what is still to do, whatever the size of the table.

-- Archive candidates: executions whose output is still in execution_logs (archiving and
-- expiry set log_bytes to 0, so archived and expired executions leave this index).
CREATE INDEX executions_log_bytes_pending ON executions (log_bytes)
    WHERE log_bytes > 0 AND logs_expired_at IS NULL;

-- Retention by age: finished executions whose output has not expired yet.
CREATE INDEX executions_finished_unexpired ON executions (finished_at)
    WHERE finished_at IS NOT NULL AND logs_expired_at IS NULL;

-- Interactive stdin, webhooks, resource samples, log archiving/retention and request ids.
-- Timestamps are microseconds since the epoch, like every other table.

-- What the client asked for at enqueue time.
ALTER TABLE executions ADD COLUMN interactive INTEGER NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN callback_url TEXT;
ALTER TABLE executions ADD COLUMN request_id TEXT;
-- Sampled memory/CPU timeline of the run (JSON array of ResourceSample), written with the result.
ALTER TABLE executions ADD COLUMN resource_samples TEXT;
-- Bytes of output chunks in execution_logs (maintained by append_logs), for archiving.
ALTER TABLE executions ADD COLUMN log_bytes INTEGER NOT NULL DEFAULT 0;
-- Set when the retention cleaner deleted the logs (reads then answer "expired").
ALTER TABLE executions ADD COLUMN logs_expired_at INTEGER;
CREATE INDEX executions_finished ON executions (finished_at) WHERE finished_at IS NOT NULL;

-- Stdin of interactive executions, appended by API nodes, read by the worker running it.
CREATE TABLE execution_input (
    execution_id TEXT    NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    data         BLOB    NOT NULL,
    eof          INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (execution_id, seq)
);

-- Logs moved to object storage: the rows of execution_logs up to last_seq are deleted in the
-- same transaction that inserts this row.
CREATE TABLE execution_log_archives (
    execution_id TEXT    PRIMARY KEY REFERENCES executions (id) ON DELETE CASCADE,
    object_key   TEXT    NOT NULL,
    bytes        INTEGER NOT NULL,
    events       INTEGER NOT NULL,
    last_seq     INTEGER NOT NULL,
    archived_at  INTEGER NOT NULL
);
CREATE INDEX execution_log_archives_age ON execution_log_archives (archived_at);

-- One webhook delivery per execution with a callback_url, created by the database in the same
-- transaction that makes the execution terminal (whatever path did it).
CREATE TABLE webhook_deliveries (
    execution_id    TEXT    PRIMARY KEY REFERENCES executions (id) ON DELETE CASCADE,
    owner_id        TEXT    NOT NULL REFERENCES users (id),
    url             TEXT    NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    last_status     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';

CREATE TRIGGER executions_webhook_enqueue_update AFTER UPDATE OF status ON executions
WHEN NEW.callback_url IS NOT NULL
 AND NEW.status IN ('completed', 'failed', 'timeout', 'cancelled')
 AND NEW.status IS NOT OLD.status
BEGIN
    INSERT OR IGNORE INTO webhook_deliveries
        (execution_id, owner_id, url, next_attempt_at, created_at, updated_at)
    VALUES (
        NEW.id, NEW.owner_id, NEW.callback_url,
        CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER),
        CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER),
        CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)
    );
END;

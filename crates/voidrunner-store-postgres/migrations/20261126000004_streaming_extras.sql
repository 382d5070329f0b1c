-- Interactive stdin, webhooks, resource samples, log archiving/retention and request ids.

-- What the client asked for at enqueue time.
ALTER TABLE executions ADD COLUMN interactive boolean NOT NULL DEFAULT false;
ALTER TABLE executions ADD COLUMN callback_url text;
ALTER TABLE executions ADD COLUMN request_id text;
-- Sampled memory/CPU timeline of the run (JSON array of ResourceSample), written with the result.
ALTER TABLE executions ADD COLUMN resource_samples jsonb;
-- Bytes of output chunks in execution_logs (maintained by append_logs), for archiving.
ALTER TABLE executions ADD COLUMN log_bytes bigint NOT NULL DEFAULT 0;
-- Set when the retention cleaner deleted the logs (reads then answer "expired").
ALTER TABLE executions ADD COLUMN logs_expired_at timestamptz;
CREATE INDEX executions_finished ON executions (finished_at) WHERE finished_at IS NOT NULL;

-- Stdin of interactive executions, appended by API nodes, read by the worker running it.
CREATE TABLE execution_input (
    execution_id uuid        NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    seq          bigint      NOT NULL,
    data         bytea       NOT NULL,
    eof          boolean     NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (execution_id, seq)
);

-- Logs moved to object storage: the rows of execution_logs up to last_seq are deleted in the
-- same transaction that inserts this row.
CREATE TABLE execution_log_archives (
    execution_id uuid        PRIMARY KEY REFERENCES executions (id) ON DELETE CASCADE,
    object_key   text        NOT NULL,
    bytes        bigint      NOT NULL,
    events       bigint      NOT NULL,
    last_seq     bigint      NOT NULL,
    archived_at  timestamptz NOT NULL
);
CREATE INDEX execution_log_archives_age ON execution_log_archives (archived_at);

-- One webhook delivery per execution with a callback_url, created by the database in the same
-- transaction that makes the execution terminal (whatever path did it).
CREATE TABLE webhook_deliveries (
    execution_id    uuid        PRIMARY KEY REFERENCES executions (id) ON DELETE CASCADE,
    owner_id        uuid        NOT NULL REFERENCES users (id),
    url             text        NOT NULL,
    state           text        NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    last_status     integer,
    last_error      text,
    created_at      timestamptz NOT NULL,
    delivered_at    timestamptz,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';

CREATE FUNCTION execution_webhook_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.callback_url IS NOT NULL
       AND NEW.status IN ('completed', 'failed', 'timeout', 'cancelled')
       AND (TG_OP = 'INSERT' OR OLD.status IS DISTINCT FROM NEW.status) THEN
        INSERT INTO webhook_deliveries (execution_id, owner_id, url, next_attempt_at, created_at, updated_at)
        VALUES (NEW.id, NEW.owner_id, NEW.callback_url, now(), now(), now())
        ON CONFLICT (execution_id) DO NOTHING;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER executions_webhook_enqueue
    AFTER INSERT OR UPDATE OF status ON executions
    FOR EACH ROW EXECUTE FUNCTION execution_webhook_enqueue();

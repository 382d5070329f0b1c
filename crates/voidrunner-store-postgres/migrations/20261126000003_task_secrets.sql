-- Per-task secrets, sealed by the caller (AES-256-GCM, bound to "<task_id>/<name>"); the
-- store never sees a plaintext. Each execution of a task gets a copy at enqueue (a snapshot,
-- like the rest of the execution), read only by the worker that runs it.
CREATE TABLE task_secrets (
    task_id uuid  NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    name    text  NOT NULL,
    sealed  bytea NOT NULL,
    PRIMARY KEY (task_id, name)
);

CREATE TABLE execution_secrets (
    execution_id uuid  NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    name         text  NOT NULL,
    sealed       bytea NOT NULL,
    PRIMARY KEY (execution_id, name)
);

-- Workflows (see voidrunner_store::WorkflowStore and docs/WORKFLOWS.md) and git repositories
-- registered for events (voidrunner_store::RepositoryStore). A started node's status is not
-- stored: it is derived from its current job when read (jobs.workflow_id links back).
CREATE TABLE workflows (
    id                  TEXT    NOT NULL PRIMARY KEY,
    owner_id            TEXT    NOT NULL REFERENCES users (id),
    name                TEXT    NOT NULL,
    definition          TEXT    NOT NULL,              -- JSON of the definition as submitted
    vars                TEXT    NOT NULL DEFAULT '{}', -- JSON object name → value
    trusted             INTEGER NOT NULL CHECK (trusted IN (0, 1)),
    files               TEXT    NOT NULL DEFAULT '{}', -- JSON object path → content
    origin              TEXT    NOT NULL,              -- JSON, opaque to the store
    status              TEXT    NOT NULL CHECK (status IN
        ('running', 'succeeded', 'failed', 'cancelled', 'skipped')),
    outputs             TEXT    NOT NULL DEFAULT '{}', -- JSON object "<node>.<key>" → value
    error               TEXT,
    run                 INTEGER NOT NULL DEFAULT 1 CHECK (run >= 1),
    cancel_requested_at INTEGER,
    request_id          TEXT,
    created_at          INTEGER NOT NULL,
    finished_at         INTEGER
) STRICT;
CREATE INDEX workflows_owner_created ON workflows (owner_id, created_at DESC, id DESC);
CREATE INDEX workflows_created ON workflows (created_at DESC, id DESC);
-- The scheduler's sweep: running workflows, oldest first.
CREATE INDEX workflows_running ON workflows (created_at, id) WHERE status = 'running';

-- One row per node instance. Only 'pending' and 'skipped' are node states; 'started' means
-- "look at job_id" (the job's status is the node's status).
CREATE TABLE workflow_nodes (
    workflow_id      TEXT    NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    name             TEXT    NOT NULL,
    idx              INTEGER NOT NULL CHECK (idx >= 0),
    group_name       TEXT    NOT NULL,
    definition       TEXT    NOT NULL,              -- JSON of the job definition
    depends_on       TEXT    NOT NULL DEFAULT '[]', -- JSON array of node names
    condition        TEXT    NOT NULL,
    state            TEXT    NOT NULL CHECK (state IN ('pending', 'skipped', 'started')),
    reason           TEXT,
    job_id           TEXT,
    previous_job_ids TEXT    NOT NULL DEFAULT '[]', -- JSON array of job ids, oldest first
    parent_job_id    TEXT,
    started_at       INTEGER,
    finished_at      INTEGER,                       -- skip time (a started node reads its job's)
    PRIMARY KEY (workflow_id, name),
    UNIQUE (workflow_id, idx),
    CHECK ((state = 'started') = (job_id IS NOT NULL))
) STRICT, WITHOUT ROWID;

-- Sealed by the API (bound to "<workflow_id>/<name>"); read only by the worker.
CREATE TABLE workflow_secrets (
    workflow_id TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    sealed      BLOB NOT NULL,
    PRIMARY KEY (workflow_id, name)
) STRICT, WITHOUT ROWID;

-- Applied triggers (follow-up jobs from inside a job): the key makes a replay a no-op.
CREATE TABLE workflow_triggers (
    workflow_id   TEXT    NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    parent_job_id TEXT    NOT NULL,
    operation_id  TEXT    NOT NULL,
    nodes         TEXT    NOT NULL,                 -- JSON array of the added node names
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (workflow_id, parent_job_id, operation_id)
) STRICT, WITHOUT ROWID;

-- The job of a workflow node: which workflow and node, and the context frozen at start.
ALTER TABLE jobs ADD COLUMN workflow_id TEXT REFERENCES workflows (id);
ALTER TABLE jobs ADD COLUMN workflow_node TEXT;
ALTER TABLE jobs ADD COLUMN workflow_context TEXT; -- JSON, opaque to the store
CREATE INDEX jobs_workflow ON jobs (workflow_id) WHERE workflow_id IS NOT NULL;

-- Registered repositories; the hook finds one by (provider, full_name) from the payload.
CREATE TABLE repositories (
    id               TEXT    NOT NULL PRIMARY KEY,
    owner_id         TEXT    NOT NULL REFERENCES users (id),
    provider         TEXT    NOT NULL CHECK (provider IN ('github', 'gitlab')),
    full_name        TEXT    NOT NULL,
    clone_url        TEXT    NOT NULL,
    ci_dir           TEXT    NOT NULL,
    fork_secrets     INTEGER NOT NULL DEFAULT 0 CHECK (fork_secrets IN (0, 1)),
    status_reporting TEXT    NOT NULL DEFAULT 'null', -- JSON settings or null
    webhook_secret   BLOB    NOT NULL,                -- sealed ("<id>/webhook")
    created_at       INTEGER NOT NULL,
    UNIQUE (provider, full_name)
) STRICT;
CREATE INDEX repositories_owner ON repositories (owner_id, full_name);

-- Sealed by the API (bound to "<repository_id>/<name>"); read only by the hook handler.
CREATE TABLE repository_secrets (
    repository_id TEXT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    sealed        BLOB NOT NULL,
    PRIMARY KEY (repository_id, name)
) STRICT, WITHOUT ROWID;

-- Received deliveries: the key makes a redelivery start nothing.
CREATE TABLE hook_deliveries (
    provider      TEXT    NOT NULL,
    delivery_id   TEXT    NOT NULL,
    body_sha256   TEXT    NOT NULL,                -- the signed body: a replay under a new id
    repository_id TEXT    NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    event         TEXT    NOT NULL,
    summary       TEXT    NOT NULL,                -- JSON, for display
    workflow_ids  TEXT    NOT NULL DEFAULT '[]',   -- JSON array of the workflows it started
    received_at   INTEGER NOT NULL,
    PRIMARY KEY (provider, delivery_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX hook_deliveries_repository ON hook_deliveries (repository_id, received_at DESC);
CREATE UNIQUE INDEX hook_deliveries_body ON hook_deliveries (provider, body_sha256);

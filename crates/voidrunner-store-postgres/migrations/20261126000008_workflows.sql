-- Workflows (see voidrunner_store::WorkflowStore and docs/WORKFLOWS.md) and git repositories
-- registered for events (voidrunner_store::RepositoryStore). A started node's status is not
-- stored: it is derived from its current job when read (jobs.workflow_id links back).
-- Compare-and-set writes lock the workflow row first (FOR SHARE to start a node, FOR UPDATE
-- to cancel, add nodes or re-run), then node rows, always in that order.
CREATE TABLE workflows (
    id                  uuid        PRIMARY KEY,
    owner_id            uuid        NOT NULL REFERENCES users (id),
    name                text        NOT NULL,
    definition          jsonb       NOT NULL,               -- the definition as submitted
    vars                jsonb       NOT NULL DEFAULT '{}',  -- name → value
    trusted             boolean     NOT NULL,
    files               jsonb       NOT NULL DEFAULT '{}',  -- path → content
    origin              jsonb       NOT NULL,               -- opaque to the store
    status              text        NOT NULL CHECK (status IN
        ('running', 'succeeded', 'failed', 'cancelled', 'skipped')),
    outputs             jsonb       NOT NULL DEFAULT '{}',  -- "<node>.<key>" → value
    error               text,
    run                 integer     NOT NULL DEFAULT 1 CHECK (run >= 1),
    cancel_requested_at timestamptz,
    request_id          text,
    created_at          timestamptz NOT NULL,
    finished_at         timestamptz
);
CREATE INDEX workflows_owner_created ON workflows (owner_id, created_at DESC, id DESC);
CREATE INDEX workflows_created ON workflows (created_at DESC, id DESC);
-- The scheduler's sweep: running workflows, oldest first.
CREATE INDEX workflows_running ON workflows (created_at, id) WHERE status = 'running';

-- One row per node instance. Only 'pending' and 'skipped' are node states; 'started' means
-- "look at job_id" (the job's status is the node's status).
CREATE TABLE workflow_nodes (
    workflow_id      uuid        NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    name             text        NOT NULL,
    idx              integer     NOT NULL CHECK (idx >= 0),
    group_name       text        NOT NULL,
    definition       jsonb       NOT NULL,              -- the job definition
    depends_on       jsonb       NOT NULL DEFAULT '[]', -- node names
    condition        text        NOT NULL,
    state            text        NOT NULL CHECK (state IN ('pending', 'skipped', 'started')),
    reason           text,
    job_id           uuid,
    previous_job_ids jsonb       NOT NULL DEFAULT '[]', -- job ids, oldest first
    parent_job_id    uuid,
    started_at       timestamptz,
    finished_at      timestamptz,                       -- skip time (a started node reads its job's)
    PRIMARY KEY (workflow_id, name),
    UNIQUE (workflow_id, idx),
    CHECK ((state = 'started') = (job_id IS NOT NULL))
);

-- Sealed by the API (bound to "<workflow_id>/<name>"); read only by the worker.
CREATE TABLE workflow_secrets (
    workflow_id uuid  NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    name        text  NOT NULL,
    sealed      bytea NOT NULL,
    PRIMARY KEY (workflow_id, name)
);

-- Applied triggers (follow-up jobs from inside a job): the key makes a replay a no-op.
CREATE TABLE workflow_triggers (
    workflow_id   uuid        NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    parent_job_id uuid        NOT NULL,
    operation_id  text        NOT NULL,
    nodes         jsonb       NOT NULL,                 -- the added node names
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (workflow_id, parent_job_id, operation_id)
);

-- The job of a workflow node: which workflow and node, and the context frozen at start.
ALTER TABLE jobs
    ADD COLUMN workflow_id      uuid REFERENCES workflows (id),
    ADD COLUMN workflow_node    text,
    ADD COLUMN workflow_context jsonb, -- opaque to the store
    ADD CONSTRAINT jobs_workflow_link CHECK ((workflow_id IS NULL) = (workflow_node IS NULL));
CREATE INDEX jobs_workflow ON jobs (workflow_id) WHERE workflow_id IS NOT NULL;

-- Registered repositories; the hook finds one by (provider, full_name) from the payload.
CREATE TABLE repositories (
    id               uuid        PRIMARY KEY,
    owner_id         uuid        NOT NULL REFERENCES users (id),
    provider         text        NOT NULL CHECK (provider IN ('github', 'gitlab')),
    full_name        text        NOT NULL,
    clone_url        text        NOT NULL,
    ci_dir           text        NOT NULL,
    fork_secrets     boolean     NOT NULL DEFAULT false,
    status_reporting jsonb       NOT NULL DEFAULT 'null', -- settings or null
    webhook_secret   bytea       NOT NULL,                -- sealed ("<id>/webhook")
    created_at       timestamptz NOT NULL,
    CONSTRAINT repositories_provider_full_name UNIQUE (provider, full_name)
);
CREATE INDEX repositories_owner ON repositories (owner_id, full_name);

-- Sealed by the API (bound to "<repository_id>/<name>"); read only by the hook handler.
CREATE TABLE repository_secrets (
    repository_id uuid  NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    name          text  NOT NULL,
    sealed        bytea NOT NULL,
    PRIMARY KEY (repository_id, name)
);

-- Received deliveries: the key makes a redelivery start nothing.
CREATE TABLE hook_deliveries (
    provider      text        NOT NULL,
    delivery_id   text        NOT NULL,
    body_sha256   text        NOT NULL,              -- the signed body: a replay under a new id
    repository_id uuid        NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    event         text        NOT NULL,
    summary       jsonb       NOT NULL,              -- for display
    workflow_ids  jsonb       NOT NULL DEFAULT '[]', -- the workflows it started
    received_at   timestamptz NOT NULL,
    PRIMARY KEY (provider, delivery_id)
);
CREATE INDEX hook_deliveries_repository ON hook_deliveries (repository_id, received_at DESC);
CREATE UNIQUE INDEX hook_deliveries_body ON hook_deliveries (provider, body_sha256);

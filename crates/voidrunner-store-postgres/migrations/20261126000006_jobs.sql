-- CI jobs run by the server (see voidrunner_store::JobStore and docs/JOBS.md). Status events
-- of the job log are written by the store code in the same transaction as the change (not by
-- triggers), with seq = max(seq) + 1: every writer of a job's log holds the job row's lock
-- (the status UPDATE, or SELECT … FOR UPDATE before appending), so the max cannot race.
CREATE TABLE jobs (
    id                  uuid        PRIMARY KEY,
    owner_id            uuid        NOT NULL REFERENCES users (id),
    name                text        NOT NULL,
    definition          jsonb       NOT NULL,
    status              text        NOT NULL CHECK (status IN
        ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    priority            smallint    NOT NULL CHECK (priority BETWEEN 0 AND 10),
    attempt             integer     NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts        integer     NOT NULL CHECK (max_attempts >= 1),
    worker_id           text,
    lease_owner         text,
    lease_until         timestamptz,
    run_after           timestamptz NOT NULL,
    cancel_requested_at timestamptz,
    created_at          timestamptz NOT NULL,
    started_at          timestamptz,
    finished_at         timestamptz,
    failures            jsonb       NOT NULL DEFAULT '[]',
    outputs             jsonb       NOT NULL DEFAULT '{}',
    request_id          text,
    has_tarball         boolean     NOT NULL DEFAULT false,
    last_error          text,
    dead_lettered_at    timestamptz
);
-- Claim order: priority (higher first), then FIFO; only queued rows are indexed.
CREATE INDEX jobs_claim ON jobs (priority DESC, created_at, id) WHERE status = 'queued';
CREATE INDEX jobs_lease ON jobs (lease_until) WHERE status = 'running';
CREATE INDEX jobs_owner_created ON jobs (owner_id, created_at DESC, id DESC);
CREATE INDEX jobs_created ON jobs (created_at DESC, id DESC);

-- Sealed by the API like task secrets (bound to "<job_id>/<name>"); read only by the worker.
CREATE TABLE job_secrets (
    job_id uuid  NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    name   text  NOT NULL,
    sealed bytea NOT NULL,
    PRIMARY KEY (job_id, name)
);

CREATE TABLE job_steps (
    job_id            uuid        NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    idx               integer     NOT NULL CHECK (idx >= 0),
    name              text        NOT NULL,
    state             text        NOT NULL CHECK (state IN ('pending', 'running', 'succeeded',
        'failed', 'timed_out', 'cancelled', 'skipped')),
    exit_code         integer,
    detail            text,
    started_at        timestamptz,
    finished_at       timestamptz,
    wall_ms           bigint,
    cpu_ms            bigint,
    peak_memory_bytes bigint,
    PRIMARY KEY (job_id, idx)
);

CREATE TABLE job_events (
    job_id     uuid        NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq        bigint      NOT NULL CHECK (seq >= 1),
    attempt    integer     NOT NULL,
    step       text,
    stream     text        NOT NULL CHECK (stream IN ('stdout', 'stderr', 'status', 'phase')),
    data       bytea       NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (job_id, seq)
);

CREATE TABLE job_artifacts (
    job_id     uuid   NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    path       text   NOT NULL,
    size       bigint NOT NULL CHECK (size >= 0),
    sha256     text   NOT NULL,
    object_key text   NOT NULL,
    PRIMARY KEY (job_id, path)
);

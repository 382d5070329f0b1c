-- CI jobs run by the server (see voidrunner_store::JobStore and docs/JOBS.md). Status events
-- of the job log are written by the store code in the same transaction as the change (not by
-- triggers), with seq = max(seq) + 1 (SQLite has one writer, so the max cannot race).
CREATE TABLE jobs (
    id                  TEXT    NOT NULL PRIMARY KEY,
    owner_id            TEXT    NOT NULL REFERENCES users (id),
    name                TEXT    NOT NULL,
    definition          TEXT    NOT NULL,              -- JSON of the validated definition
    status              TEXT    NOT NULL CHECK (status IN
        ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    priority            INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 10),
    attempt             INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts        INTEGER NOT NULL CHECK (max_attempts >= 1),
    worker_id           TEXT,
    lease_owner         TEXT,
    lease_until         INTEGER,
    run_after           INTEGER NOT NULL,
    cancel_requested_at INTEGER,
    created_at          INTEGER NOT NULL,
    started_at          INTEGER,
    finished_at         INTEGER,
    failures            TEXT    NOT NULL DEFAULT '[]', -- JSON array of {phase, reason}
    outputs             TEXT    NOT NULL DEFAULT '{}', -- JSON object name → value
    request_id          TEXT,
    has_tarball         INTEGER NOT NULL DEFAULT 0 CHECK (has_tarball IN (0, 1)),
    last_error          TEXT,
    dead_lettered_at    INTEGER
) STRICT;
-- Claim order: priority (higher first), then FIFO; only queued rows are indexed.
CREATE INDEX jobs_claim ON jobs (priority DESC, created_at, id) WHERE status = 'queued';
CREATE INDEX jobs_lease ON jobs (lease_until) WHERE status = 'running';
CREATE INDEX jobs_owner_created ON jobs (owner_id, created_at DESC, id DESC);
CREATE INDEX jobs_created ON jobs (created_at DESC, id DESC);

-- Sealed by the API like task secrets (bound to "<job_id>/<name>"); read only by the worker.
CREATE TABLE job_secrets (
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    name   TEXT NOT NULL,
    sealed BLOB NOT NULL,
    PRIMARY KEY (job_id, name)
) STRICT, WITHOUT ROWID;

CREATE TABLE job_steps (
    job_id            TEXT    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    idx               INTEGER NOT NULL CHECK (idx >= 0),
    name              TEXT    NOT NULL,
    state             TEXT    NOT NULL CHECK (state IN ('pending', 'running', 'succeeded',
        'failed', 'timed_out', 'cancelled', 'skipped')),
    exit_code         INTEGER,
    detail            TEXT,
    started_at        INTEGER,
    finished_at       INTEGER,
    wall_ms           INTEGER,
    cpu_ms            INTEGER,
    peak_memory_bytes INTEGER,
    PRIMARY KEY (job_id, idx)
) STRICT, WITHOUT ROWID;

CREATE TABLE job_events (
    job_id     TEXT    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL CHECK (seq >= 1),
    attempt    INTEGER NOT NULL,
    step       TEXT,
    stream     TEXT    NOT NULL CHECK (stream IN ('stdout', 'stderr', 'status', 'phase')),
    data       BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (job_id, seq)
) STRICT, WITHOUT ROWID;

CREATE TABLE job_artifacts (
    job_id     TEXT    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    path       TEXT    NOT NULL,
    size       INTEGER NOT NULL CHECK (size >= 0),
    sha256     TEXT    NOT NULL,
    object_key TEXT    NOT NULL,
    PRIMARY KEY (job_id, path)
) STRICT, WITHOUT ROWID;

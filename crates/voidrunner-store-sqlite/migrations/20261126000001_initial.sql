-- VoidRunner initial schema (SQLite).
-- Conventions: ids are lower-case hyphenated UUID text; timestamps are INTEGER unix
-- microseconds (UTC); JSON documents are TEXT; STRICT tables so types are enforced.
-- Never edit this file once released: add a new migration (expand, then contract).

CREATE TABLE users (
    id            TEXT    NOT NULL PRIMARY KEY,
    email         TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('user', 'admin')),
    created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE refresh_tokens (
    id         TEXT    NOT NULL PRIMARY KEY,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id  TEXT    NOT NULL,
    token_hash TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    revoked_at INTEGER
) STRICT;
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

CREATE TABLE api_keys (
    id           TEXT    NOT NULL PRIMARY KEY,
    user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    prefix       TEXT    NOT NULL,
    key_hash     TEXT    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER,
    revoked_at   INTEGER
) STRICT;
CREATE INDEX api_keys_user ON api_keys (user_id, created_at DESC, id DESC);

CREATE TABLE tasks (
    id                    TEXT    NOT NULL PRIMARY KEY,
    owner_id              TEXT    NOT NULL REFERENCES users (id),
    name                  TEXT    NOT NULL,
    description           TEXT,
    language              TEXT    NOT NULL,
    code                  TEXT    NOT NULL,
    stdin                 TEXT,
    env                   TEXT    NOT NULL,          -- JSON object of strings
    limits                TEXT    NOT NULL,          -- JSON ResourceLimits
    priority              INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 10),
    tags                  TEXT    NOT NULL,          -- JSON array of strings
    metadata              TEXT    NOT NULL,          -- JSON object
    -- Unicode-lower-cased "name \x1f description", written by the store, so text search is
    -- case-insensitive beyond ASCII and identical on every backend.
    search_text           TEXT    NOT NULL,
    last_execution_status TEXT CHECK (last_execution_status IN
        ('queued', 'running', 'completed', 'failed', 'timeout', 'cancelled')),
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    deleted_at            INTEGER
) STRICT;
-- Listing is always newest first by (created_at, id) over live rows.
CREATE INDEX tasks_owner_created ON tasks (owner_id, created_at DESC, id DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX tasks_created ON tasks (created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX tasks_owner_language ON tasks (owner_id, language, created_at DESC, id DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX tasks_owner_status ON tasks (owner_id, last_execution_status, created_at DESC, id DESC)
    WHERE deleted_at IS NULL;

CREATE TABLE executions (
    id                  TEXT    NOT NULL PRIMARY KEY,
    -- Nullable so one-shot runs (`POST /api/v1/run`) may exist without a stored task.
    task_id             TEXT    REFERENCES tasks (id),
    owner_id            TEXT    NOT NULL REFERENCES users (id),
    status              TEXT    NOT NULL CHECK (status IN
        ('queued', 'running', 'completed', 'failed', 'timeout', 'cancelled')),
    priority            INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 10),
    -- Snapshot of what to run, taken at enqueue time.
    language            TEXT    NOT NULL,
    code                TEXT    NOT NULL,
    stdin               TEXT,
    env                 TEXT    NOT NULL,
    limits              TEXT    NOT NULL,
    -- Queue bookkeeping.
    attempt             INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts        INTEGER NOT NULL CHECK (max_attempts >= 1),
    -- Worker that ran the current/last attempt (kept after the lease ends, for display).
    worker_id           TEXT,
    lease_owner         TEXT,
    lease_until         INTEGER,
    run_after           INTEGER NOT NULL,
    cancel_requested_at INTEGER,
    created_at          INTEGER NOT NULL,
    started_at          INTEGER,
    finished_at         INTEGER,
    -- Result.
    verdict             TEXT,                        -- JSON Verdict
    exit_code           INTEGER,
    signal              INTEGER,
    wall_time_ms        INTEGER,
    cpu_time_ms         INTEGER,
    peak_memory_bytes   INTEGER,
    stdout              TEXT    NOT NULL DEFAULT '',
    stderr              TEXT    NOT NULL DEFAULT '',
    compile_output      TEXT,
    output_truncated    INTEGER NOT NULL DEFAULT 0 CHECK (output_truncated IN (0, 1)),
    last_error          TEXT,
    dead_lettered_at    INTEGER
) STRICT;
-- Claim order: priority (higher first), then FIFO; only queued rows are indexed.
CREATE INDEX executions_claim ON executions (priority DESC, created_at, id)
    WHERE status = 'queued';
-- Reaper: expired leases of running executions.
CREATE INDEX executions_lease ON executions (lease_until) WHERE status = 'running';
CREATE INDEX executions_task ON executions (task_id, created_at DESC, id DESC);
-- Per-user quota (running count) and per-user listing.
CREATE INDEX executions_owner_status ON executions (owner_id, status);
-- Admin dead-letter listing, newest first by the same keyset as every execution listing.
CREATE INDEX executions_dead_letter ON executions (created_at DESC, id DESC)
    WHERE dead_lettered_at IS NOT NULL;

CREATE TABLE execution_logs (
    execution_id TEXT    NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL CHECK (seq >= 0),
    -- 'stdout', 'stderr', 'system', …: validated by the store's caller, not a CHECK, so new
    -- streams (compile output, job steps) need no table rebuild on SQLite.
    stream       TEXT    NOT NULL,
    data         BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (execution_id, seq)
) STRICT, WITHOUT ROWID;

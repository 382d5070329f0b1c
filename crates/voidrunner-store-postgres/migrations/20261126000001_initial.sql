-- VoidRunner initial schema (PostgreSQL).
-- Conventions: uuid ids, timestamptz (microsecond precision), jsonb documents, text[] tags.
-- Objects are created unqualified, in the first schema of the connection's search_path.
-- Never edit this file once released: add a new migration (expand, then contract).

CREATE TABLE users (
    id            uuid        PRIMARY KEY,
    email         text        NOT NULL CONSTRAINT users_email_key UNIQUE,
    password_hash text        NOT NULL,
    role          text        NOT NULL CHECK (role IN ('user', 'admin')),
    created_at    timestamptz NOT NULL
);

CREATE TABLE refresh_tokens (
    id         uuid        PRIMARY KEY,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id  uuid        NOT NULL,
    token_hash text        NOT NULL CONSTRAINT refresh_tokens_token_hash_key UNIQUE,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    revoked_at timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

CREATE TABLE api_keys (
    id           uuid        PRIMARY KEY,
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text        NOT NULL,
    prefix       text        NOT NULL,
    key_hash     text        NOT NULL CONSTRAINT api_keys_key_hash_key UNIQUE,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_keys_user ON api_keys (user_id, created_at DESC, id DESC);

CREATE TABLE tasks (
    id                    uuid        PRIMARY KEY,
    owner_id              uuid        NOT NULL REFERENCES users (id),
    name                  text        NOT NULL,
    description           text,
    language              text        NOT NULL,
    code                  text        NOT NULL,
    stdin                 text,
    env                   jsonb       NOT NULL,
    limits                jsonb       NOT NULL,
    priority              smallint    NOT NULL CHECK (priority BETWEEN 0 AND 10),
    tags                  text[]      NOT NULL,
    metadata              jsonb       NOT NULL,
    -- Unicode-lower-cased "name \x1f description", written by the store, so text search is
    -- case-insensitive independently of the database locale and identical on every backend.
    search_text           text        NOT NULL,
    last_execution_status text CHECK (last_execution_status IN
        ('queued', 'running', 'completed', 'failed', 'timeout', 'cancelled')),
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL,
    deleted_at            timestamptz
);
-- Listing is always newest first by (created_at, id) over live rows.
CREATE INDEX tasks_owner_created ON tasks (owner_id, created_at DESC, id DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX tasks_created ON tasks (created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX tasks_owner_language ON tasks (owner_id, language, created_at DESC, id DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX tasks_owner_status ON tasks (owner_id, last_execution_status, created_at DESC, id DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX tasks_tags ON tasks USING gin (tags) WHERE deleted_at IS NULL;

CREATE TABLE executions (
    id                  uuid        PRIMARY KEY,
    -- Nullable so one-shot runs (`POST /api/v1/run`) may exist without a stored task.
    task_id             uuid        REFERENCES tasks (id),
    owner_id            uuid        NOT NULL REFERENCES users (id),
    status              text        NOT NULL CHECK (status IN
        ('queued', 'running', 'completed', 'failed', 'timeout', 'cancelled')),
    priority            smallint    NOT NULL CHECK (priority BETWEEN 0 AND 10),
    -- Snapshot of what to run, taken at enqueue time.
    language            text        NOT NULL,
    code                text        NOT NULL,
    stdin               text,
    env                 jsonb       NOT NULL,
    limits              jsonb       NOT NULL,
    -- Queue bookkeeping.
    attempt             integer     NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts        integer     NOT NULL CHECK (max_attempts >= 1),
    -- Worker that ran the current/last attempt (kept after the lease ends, for display).
    worker_id           text,
    lease_owner         text,
    lease_until         timestamptz,
    run_after           timestamptz NOT NULL,
    cancel_requested_at timestamptz,
    created_at          timestamptz NOT NULL,
    started_at          timestamptz,
    finished_at         timestamptz,
    -- Result.
    verdict             jsonb,
    exit_code           integer,
    signal              integer,
    wall_time_ms        bigint,
    cpu_time_ms         bigint,
    peak_memory_bytes   bigint,
    stdout              text        NOT NULL DEFAULT '',
    stderr              text        NOT NULL DEFAULT '',
    compile_output      text,
    output_truncated    boolean     NOT NULL DEFAULT false,
    last_error          text,
    dead_lettered_at    timestamptz
);
-- Claim order: priority (higher first), then FIFO; only queued rows are indexed, and
-- `FOR UPDATE SKIP LOCKED` lets many workers claim concurrently.
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
    execution_id uuid        NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    seq          bigint      NOT NULL CHECK (seq >= 0),
    -- 'stdout', 'stderr', 'system', …: validated by the store's caller, not a CHECK, so new
    -- streams (compile output, job steps) need no table rebuild on SQLite.
    stream       text        NOT NULL,
    data         bytea       NOT NULL,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (execution_id, seq)
);

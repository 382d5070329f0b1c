-- Commit statuses to report to the git host (voidrunner_store::RepositoryStore, docs/GIT.md):
-- one row per workflow started by an event of a repository with status_reporting. The
-- workflow's (status, run) is the truth; a row is due when it differs from the last posted
-- (and from the given-up) transition, next_attempt_at has passed and no live claim holds it.
-- Claims lock due rows FOR UPDATE SKIP LOCKED.
CREATE TABLE commit_statuses (
    workflow_id     uuid        PRIMARY KEY REFERENCES workflows (id) ON DELETE CASCADE,
    repository_id   uuid        NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    sha             text        NOT NULL,
    context         text        NOT NULL,
    posted_state    text,                   -- last workflow status posted
    posted_run      integer,
    gave_up_state   text,                   -- the transition given up on
    gave_up_run     integer,
    open            boolean     NOT NULL DEFAULT true, -- until a final state is settled
    attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL,
    last_error      text,
    claimed_by      text,
    claim_token     uuid,
    claimed_until   timestamptz,
    created_at      timestamptz NOT NULL
);
-- Due rows: open ones (a final state not yet posted), or those of a running workflow
-- (workflows_running), e.g. after a re-run.
CREATE INDEX commit_statuses_open ON commit_statuses (next_attempt_at) WHERE open;
CREATE INDEX commit_statuses_repository ON commit_statuses (repository_id);

-- Commit statuses to report to the git host (voidrunner_store::RepositoryStore, docs/GIT.md):
-- one row per workflow started by an event of a repository with status_reporting. The
-- workflow's (status, run) is the truth; a row is due when it differs from the last posted
-- (and from the given-up) transition, next_attempt_at has passed and no live claim holds it.
CREATE TABLE commit_statuses (
    workflow_id     TEXT    NOT NULL PRIMARY KEY REFERENCES workflows (id) ON DELETE CASCADE,
    repository_id   TEXT    NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    sha             TEXT    NOT NULL,
    context         TEXT    NOT NULL,
    posted_state    TEXT,                          -- last workflow status posted
    posted_run      INTEGER,
    gave_up_state   TEXT,                          -- the transition given up on
    gave_up_run     INTEGER,
    open            INTEGER NOT NULL DEFAULT 1 CHECK (open IN (0, 1)), -- until a final state is settled
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    claimed_by      TEXT,
    claim_token     TEXT,
    claimed_until   INTEGER,
    created_at      INTEGER NOT NULL
) STRICT;
-- Due rows: open ones (a final state not yet posted), or those of a running workflow
-- (workflows_running), e.g. after a re-run.
CREATE INDEX commit_statuses_open ON commit_statuses (next_attempt_at) WHERE open = 1;
CREATE INDEX commit_statuses_repository ON commit_statuses (repository_id);

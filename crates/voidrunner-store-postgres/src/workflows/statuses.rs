//! Commit statuses to report on PostgreSQL (see [`voidrunner_store::RepositoryStore`]): rows
//! are inserted in the delivery's transaction; a claim is one `UPDATE … FROM (SELECT … FOR
//! UPDATE OF c SKIP LOCKED)`, so two claimers never get the same row.

use std::time::Duration;

use sqlx::PgConnection;
use uuid::Uuid;
use voidrunner_domain::Timestamp;
use voidrunner_store::{
    CommitStatus, NewCommitStatus, RepositoryId, StatusReport, StatusReportOutcome, StoreError,
    StoreResult, WorkflowId, WorkflowState,
};

use crate::PostgresStore;
use crate::error::{corrupt, map_sqlx};

/// Inserts the statuses of a delivery inside its transaction, due at `now`.
pub(super) async fn insert_statuses(
    conn: &mut PgConnection,
    statuses: &[NewCommitStatus],
    now: Timestamp,
) -> StoreResult<()> {
    for s in statuses {
        sqlx::query(
            "INSERT INTO commit_statuses (workflow_id, repository_id, sha, context, \
                 next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(s.workflow_id.0)
        .bind(s.repository_id.0)
        .bind(&s.sha)
        .bind(&s.context)
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    }
    Ok(())
}

/// A workflow status column.
fn state(column: &'static str, s: &str) -> StoreResult<WorkflowState> {
    WorkflowState::parse(s).ok_or_else(|| corrupt(column, s))
}

/// A stored non-negative counter.
fn count(column: &'static str, v: i32) -> StoreResult<u32> {
    u32::try_from(v).map_err(|_| corrupt(column, v))
}

/// An optional `(state, run)` pair.
fn transition(
    column: &'static str,
    s: Option<String>,
    run: Option<i32>,
) -> StoreResult<Option<(WorkflowState, u32)>> {
    match (s, run) {
        (Some(s), Some(r)) => Ok(Some((state(column, &s)?, count(column, r)?))),
        _ => Ok(None),
    }
}

/// A run or state counter as stored.
fn int(v: u32) -> i64 {
    i64::from(v)
}

/// A claimed row with its workflow's current `(status, run)`.
type ClaimedRow = (Uuid, Uuid, String, String, String, i32, i32);

impl PostgresStore {
    /// See [`voidrunner_store::RepositoryStore::claim_status_reports`].
    pub(super) async fn claim_statuses(
        &self,
        node: &str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> StoreResult<Vec<StatusReport>> {
        let lease = chrono::Duration::from_std(lease)
            .map_err(|_| StoreError::Conflict("status claim lease out of range".into()))?;
        let claim = Uuid::new_v4();
        let rows: Vec<ClaimedRow> = sqlx::query_as(
            "UPDATE commit_statuses c SET claimed_by = $4, claim_token = $5, claimed_until = $2 \
             FROM (SELECT c.workflow_id, w.status, w.run \
                   FROM commit_statuses c JOIN workflows w ON w.id = c.workflow_id \
                   WHERE c.workflow_id IN (SELECT workflow_id FROM commit_statuses WHERE open \
                           UNION SELECT id FROM workflows WHERE status = 'running') \
                     AND (c.posted_state IS DISTINCT FROM w.status \
                          OR c.posted_run IS DISTINCT FROM w.run) \
                     AND (c.gave_up_state IS DISTINCT FROM w.status \
                          OR c.gave_up_run IS DISTINCT FROM w.run) \
                     AND c.next_attempt_at <= $1 \
                     AND (c.claimed_until IS NULL OR c.claimed_until <= $1) \
                   ORDER BY c.next_attempt_at, c.workflow_id LIMIT $3 \
                   FOR UPDATE OF c SKIP LOCKED) due \
             WHERE c.workflow_id = due.workflow_id \
             RETURNING c.workflow_id, c.repository_id, c.sha, c.context, due.status, due.run, \
                 c.attempts",
        )
        .bind(now)
        .bind(now + lease)
        .bind(i64::from(limit))
        .bind(node)
        .bind(claim)
        .fetch_all(&self.pool)
        .await
        .map_err(map_sqlx)?;
        rows.into_iter()
            .map(|(wf, repo, sha, context, status, run, attempts)| {
                Ok(StatusReport {
                    workflow_id: WorkflowId(wf),
                    repository_id: RepositoryId(repo),
                    sha,
                    context,
                    state: state("workflows.status", &status)?,
                    run: count("workflows.run", run)?,
                    attempts: count("commit_statuses.attempts", attempts)?,
                    claim,
                })
            })
            .collect()
    }

    /// See [`voidrunner_store::RepositoryStore::finish_status_report`].
    pub(super) async fn finish_status(
        &self,
        workflow_id: WorkflowId,
        claim: Uuid,
        outcome: StatusReportOutcome,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let q = match &outcome {
            StatusReportOutcome::Posted { state, run } => sqlx::query(
                "UPDATE commit_statuses SET posted_state = $3, posted_run = $4, open = $5, \
                     attempts = 0, last_error = NULL, next_attempt_at = $6, \
                     claimed_by = NULL, claim_token = NULL, claimed_until = NULL \
                 WHERE workflow_id = $1 AND claim_token = $2",
            )
            .bind(workflow_id.0)
            .bind(claim)
            .bind(state.as_str())
            .bind(int(*run))
            .bind(!state.is_terminal())
            .bind(now),
            StatusReportOutcome::Retry { error, at } => sqlx::query(
                "UPDATE commit_statuses SET attempts = attempts + 1, last_error = $3, \
                     next_attempt_at = $4, \
                     claimed_by = NULL, claim_token = NULL, claimed_until = NULL \
                 WHERE workflow_id = $1 AND claim_token = $2",
            )
            .bind(workflow_id.0)
            .bind(claim)
            .bind(error)
            .bind(*at),
            StatusReportOutcome::GiveUp { state, run, error } => sqlx::query(
                "UPDATE commit_statuses SET gave_up_state = $3, gave_up_run = $4, open = $5, \
                     attempts = 0, last_error = $6, next_attempt_at = $7, \
                     claimed_by = NULL, claim_token = NULL, claimed_until = NULL \
                 WHERE workflow_id = $1 AND claim_token = $2",
            )
            .bind(workflow_id.0)
            .bind(claim)
            .bind(state.as_str())
            .bind(int(*run))
            .bind(!state.is_terminal())
            .bind(error)
            .bind(now),
        };
        let done = q.execute(&self.pool).await.map_err(map_sqlx)?;
        Ok(done.rows_affected() == 1)
    }

    /// See [`voidrunner_store::RepositoryStore::get_commit_status`].
    pub(super) async fn commit_status(
        &self,
        workflow_id: WorkflowId,
    ) -> StoreResult<Option<CommitStatus>> {
        type Row = (
            Uuid,
            String,
            String,
            Option<String>,
            Option<i32>,
            Option<String>,
            Option<i32>,
            i32,
            Timestamp,
            Option<String>,
            Option<String>,
            Option<Timestamp>,
        );
        let row: Option<Row> = sqlx::query_as(
            "SELECT repository_id, sha, context, posted_state, posted_run, gave_up_state, \
                 gave_up_run, attempts, next_attempt_at, last_error, claimed_by, claimed_until \
             FROM commit_statuses WHERE workflow_id = $1",
        )
        .bind(workflow_id.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_sqlx)?;
        let Some((repo, sha, context, ps, pr, gs, gr, attempts, next, error, by, until)) = row
        else {
            return Ok(None);
        };
        Ok(Some(CommitStatus {
            workflow_id,
            repository_id: RepositoryId(repo),
            sha,
            context,
            posted: transition("commit_statuses.posted_state", ps, pr)?,
            gave_up: transition("commit_statuses.gave_up_state", gs, gr)?,
            attempts: count("commit_statuses.attempts", attempts)?,
            next_attempt_at: next,
            last_error: error,
            claimed_by: by,
            claimed_until: until,
        }))
    }
}

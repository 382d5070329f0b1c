//! Commit statuses to report on SQLite (see [`voidrunner_store::RepositoryStore`]): rows are
//! inserted in the delivery's transaction; a claim reads the due rows and stamps them under
//! one `BEGIN IMMEDIATE`, so two claimers never get the same row.

use std::time::Duration;

use sqlx::{Sqlite, Transaction};
use uuid::Uuid;
use uuid::fmt::Hyphenated;
use voidrunner_domain::Timestamp;
use voidrunner_store::{
    CommitStatus, NewCommitStatus, RepositoryId, StatusReport, StatusReportOutcome, StoreError,
    StoreResult, WorkflowId, WorkflowState,
};

use crate::SqliteStore;
use crate::convert::{micros, opt_ts, text, ts};
use crate::error::{corrupt, map_sqlx};

/// Inserts the statuses of a delivery inside its transaction, due at `now`.
pub(super) async fn insert_statuses(
    tx: &mut Transaction<'static, Sqlite>,
    statuses: &[NewCommitStatus],
    now: Timestamp,
) -> StoreResult<()> {
    for s in statuses {
        sqlx::query(
            "INSERT INTO commit_statuses (workflow_id, repository_id, sha, context, \
                 next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(text(s.workflow_id.0))
        .bind(text(s.repository_id.0))
        .bind(&s.sha)
        .bind(&s.context)
        .bind(micros(now))
        .bind(micros(now))
        .execute(&mut **tx)
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
fn count(column: &'static str, v: i64) -> StoreResult<u32> {
    u32::try_from(v).map_err(|_| corrupt(column, v))
}

/// An optional `(state, run)` pair.
fn transition(
    column: &'static str,
    s: Option<String>,
    run: Option<i64>,
) -> StoreResult<Option<(WorkflowState, u32)>> {
    match (s, run) {
        (Some(s), Some(r)) => Ok(Some((state(column, &s)?, count(column, r)?))),
        _ => Ok(None),
    }
}

/// The due rows with their workflow's current `(status, run)` (binds: now, now, limit).
const DUE: &str = "SELECT c.workflow_id, c.repository_id, c.sha, c.context, w.status, \
        w.run, c.attempts \
    FROM commit_statuses c JOIN workflows w ON w.id = c.workflow_id \
    WHERE c.workflow_id IN (SELECT workflow_id FROM commit_statuses WHERE open = 1 \
            UNION SELECT id FROM workflows WHERE status = 'running') \
      AND (COALESCE(c.posted_state, '') <> w.status OR COALESCE(c.posted_run, 0) <> w.run) \
      AND (COALESCE(c.gave_up_state, '') <> w.status OR COALESCE(c.gave_up_run, 0) <> w.run) \
      AND c.next_attempt_at <= ? AND (c.claimed_until IS NULL OR c.claimed_until <= ?) \
    ORDER BY c.next_attempt_at, c.workflow_id LIMIT ?";

/// A due row with its workflow's current `(status, run)`.
type DueRow = (Hyphenated, Hyphenated, String, String, String, i64, i64);

impl SqliteStore {
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
        let until = micros(now + lease);
        // Most passes find nothing: look on a reader first, so an idle reconciler does not
        // take the write lock every second.
        let any: Option<i64> = sqlx::query_scalar(&format!("SELECT 1 FROM ({DUE}) LIMIT 1"))
            .bind(micros(now))
            .bind(micros(now))
            .bind(i64::from(limit))
            .fetch_optional(&self.reader)
            .await
            .map_err(map_sqlx)?;
        if any.is_none() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_immediate().await?;
        let rows: Vec<DueRow> = sqlx::query_as(DUE)
            .bind(micros(now))
            .bind(micros(now))
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        let mut out = Vec::with_capacity(rows.len());
        for (wf, repo, sha, context, status, run, attempts) in rows {
            let claim = Uuid::new_v4();
            sqlx::query(
                "UPDATE commit_statuses SET claimed_by = ?, claim_token = ?, claimed_until = ? \
                 WHERE workflow_id = ?",
            )
            .bind(node)
            .bind(text(claim))
            .bind(until)
            .bind(wf)
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?;
            out.push(StatusReport {
                workflow_id: WorkflowId(wf.into_uuid()),
                repository_id: RepositoryId(repo.into_uuid()),
                sha,
                context,
                state: state("workflows.status", &status)?,
                run: count("workflows.run", run)?,
                attempts: count("commit_statuses.attempts", attempts)?,
                claim,
            });
        }
        tx.commit().await.map_err(map_sqlx)?;
        Ok(out)
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
                "UPDATE commit_statuses SET posted_state = ?, posted_run = ?, open = ?, \
                     attempts = 0, last_error = NULL, next_attempt_at = ?, \
                     claimed_by = NULL, claim_token = NULL, claimed_until = NULL \
                 WHERE workflow_id = ? AND claim_token = ?",
            )
            .bind(state.as_str())
            .bind(i64::from(*run))
            .bind(!state.is_terminal())
            .bind(micros(now)),
            StatusReportOutcome::Retry { error, at } => sqlx::query(
                "UPDATE commit_statuses SET attempts = attempts + 1, last_error = ?, \
                     next_attempt_at = ?, \
                     claimed_by = NULL, claim_token = NULL, claimed_until = NULL \
                 WHERE workflow_id = ? AND claim_token = ?",
            )
            .bind(error)
            .bind(micros(*at)),
            StatusReportOutcome::GiveUp { state, run, error } => sqlx::query(
                "UPDATE commit_statuses SET gave_up_state = ?, gave_up_run = ?, open = ?, \
                     attempts = 0, last_error = ?, next_attempt_at = ?, \
                     claimed_by = NULL, claim_token = NULL, claimed_until = NULL \
                 WHERE workflow_id = ? AND claim_token = ?",
            )
            .bind(state.as_str())
            .bind(i64::from(*run))
            .bind(!state.is_terminal())
            .bind(error)
            .bind(micros(now)),
        };
        let done = q
            .bind(text(workflow_id.0))
            .bind(text(claim))
            .execute(&self.writer)
            .await
            .map_err(map_sqlx)?;
        Ok(done.rows_affected() == 1)
    }

    /// See [`voidrunner_store::RepositoryStore::get_commit_status`].
    pub(super) async fn commit_status(
        &self,
        workflow_id: WorkflowId,
    ) -> StoreResult<Option<CommitStatus>> {
        type Row = (
            Hyphenated,
            String,
            String,
            Option<String>,
            Option<i64>,
            Option<String>,
            Option<i64>,
            i64,
            i64,
            Option<String>,
            Option<String>,
            Option<i64>,
        );
        let row: Option<Row> = sqlx::query_as(
            "SELECT repository_id, sha, context, posted_state, posted_run, gave_up_state, \
                 gave_up_run, attempts, next_attempt_at, last_error, claimed_by, claimed_until \
             FROM commit_statuses WHERE workflow_id = ?",
        )
        .bind(text(workflow_id.0))
        .fetch_optional(&self.reader)
        .await
        .map_err(map_sqlx)?;
        let Some((repo, sha, context, ps, pr, gs, gr, attempts, next, error, by, until)) = row
        else {
            return Ok(None);
        };
        Ok(Some(CommitStatus {
            workflow_id,
            repository_id: RepositoryId(repo.into_uuid()),
            sha,
            context,
            posted: transition("commit_statuses.posted_state", ps, pr)?,
            gave_up: transition("commit_statuses.gave_up_state", gs, gr)?,
            attempts: count("commit_statuses.attempts", attempts)?,
            next_attempt_at: ts("commit_statuses.next_attempt_at", next)?,
            last_error: error,
            claimed_by: by,
            claimed_until: opt_ts("commit_statuses.claimed_until", until)?,
        }))
    }
}

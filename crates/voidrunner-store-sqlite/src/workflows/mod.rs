//! Workflows on SQLite (see [`voidrunner_store::WorkflowStore`]); registered repositories and
//! deliveries in `repos.rs`. Every write runs under `BEGIN IMMEDIATE`, so each
//! compare-and-set (read the state, then write) holds the one write lock throughout.

mod repos;
mod rows;
mod statuses;
mod triggers;

use std::collections::BTreeMap;

use sqlx::types::Json;
use sqlx::{QueryBuilder, Sqlite};
use uuid::Uuid;
use voidrunner_domain::Timestamp;
use voidrunner_store::{
    JobId, JobWorkflowLink, NewJob, NewWorkflow, NewWorkflowNode, NodeStatus, Scope, StoreError,
    StoreResult, TriggerOutcome, Workflow, WorkflowCursor, WorkflowId, WorkflowNode, WorkflowPage,
    WorkflowState, WorkflowStore,
};

use crate::SqliteStore;
use crate::convert::{micros, text};
use crate::error::map_sqlx;
use crate::jobs::insert_job;
use rows::{NODES_QUERY, NodeRow, WORKFLOW_COLUMNS, WorkflowRow, insert_workflow, workflow_in};

/// Reason recorded on the nodes a cancel request skips.
const CANCELLED_REASON: &str = "workflow cancelled";

/// The scoped `WHERE` of a workflow lookup.
fn scoped(qb: &mut QueryBuilder<'_, Sqlite>, scope: Scope, id: WorkflowId) {
    qb.push(" WHERE id = ").push_bind(text(id.0));
    if let Scope::Owner(owner) = scope {
        qb.push(" AND owner_id = ").push_bind(text(owner.as_uuid()));
    }
}

impl SqliteStore {
    /// The workflow's `(status, cancel requested)` inside `tx` if within scope.
    async fn workflow_state_in(
        tx: &mut sqlx::Transaction<'static, Sqlite>,
        scope: Scope,
        id: WorkflowId,
    ) -> StoreResult<(WorkflowState, bool)> {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "SELECT status, cancel_requested_at IS NOT NULL FROM workflows",
        );
        scoped(&mut qb, scope, id);
        let (status, cancel): (String, bool) = qb
            .build_query_as()
            .fetch_one(&mut **tx)
            .await
            .map_err(map_sqlx)?;
        let status = WorkflowState::parse(&status)
            .ok_or_else(|| crate::error::corrupt("workflows.status", &status))?;
        Ok((status, cancel))
    }
}

#[async_trait::async_trait]
impl WorkflowStore for SqliteStore {
    async fn create_workflow(
        &self,
        new: NewWorkflow,
        nodes: Vec<NewWorkflowNode>,
        sealed_secrets: BTreeMap<String, Vec<u8>>,
    ) -> StoreResult<Workflow> {
        let mut tx = self.begin_immediate().await?;
        let wf = insert_workflow(&mut tx, &new, &nodes, &sealed_secrets).await?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(wf)
    }

    async fn get_workflow(&self, scope: Scope, id: WorkflowId) -> StoreResult<Workflow> {
        let mut qb =
            QueryBuilder::<Sqlite>::new(format!("SELECT {WORKFLOW_COLUMNS} FROM workflows"));
        scoped(&mut qb, scope, id);
        qb.build_query_as::<WorkflowRow>()
            .fetch_one(&self.reader)
            .await
            .map_err(map_sqlx)?
            .into_workflow()
    }

    async fn list_workflows(
        &self,
        scope: Scope,
        status: Option<WorkflowState>,
        after: Option<WorkflowCursor>,
        limit: u32,
    ) -> StoreResult<WorkflowPage> {
        let mut qb = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE 1 = 1"
        ));
        if let Scope::Owner(owner) = scope {
            qb.push(" AND owner_id = ").push_bind(text(owner.as_uuid()));
        }
        if let Some(s) = status {
            qb.push(" AND status = ").push_bind(s.as_str());
        }
        if let Some(c) = after {
            qb.push(" AND (created_at, id) < (")
                .push_bind(micros(c.created_at))
                .push(", ")
                .push_bind(text(c.id.0))
                .push(")");
        }
        qb.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(i64::from(limit) + 1);
        let mut items = qb
            .build_query_as::<WorkflowRow>()
            .fetch_all(&self.reader)
            .await
            .map_err(map_sqlx)?
            .into_iter()
            .map(WorkflowRow::into_workflow)
            .collect::<StoreResult<Vec<_>>>()?;
        let next = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|w| WorkflowCursor {
                created_at: w.created_at,
                id: w.id,
            })
        } else {
            None
        };
        Ok(WorkflowPage { items, next })
    }

    async fn workflow_nodes(&self, scope: Scope, id: WorkflowId) -> StoreResult<Vec<WorkflowNode>> {
        self.get_workflow(scope, id).await?;
        sqlx::query_as::<_, NodeRow>(NODES_QUERY)
            .bind(text(id.0))
            .fetch_all(&self.reader)
            .await
            .map_err(map_sqlx)?
            .into_iter()
            .map(NodeRow::into_node)
            .collect()
    }

    async fn workflow_secrets(&self, id: WorkflowId) -> StoreResult<BTreeMap<String, Vec<u8>>> {
        let rows: Vec<(String, Vec<u8>)> =
            sqlx::query_as("SELECT name, sealed FROM workflow_secrets WHERE workflow_id = ?")
                .bind(text(id.0))
                .fetch_all(&self.reader)
                .await
                .map_err(map_sqlx)?;
        Ok(rows.into_iter().collect())
    }

    async fn start_workflow_node(
        &self,
        workflow_id: WorkflowId,
        node: &str,
        job: NewJob,
        context: serde_json::Value,
    ) -> StoreResult<bool> {
        let wf = text(workflow_id.0);
        let mut tx = self.begin_immediate().await?;
        let row: Option<(String, String, String, bool)> = sqlx::query_as(
            "SELECT n.state, w.status, w.owner_id, w.cancel_requested_at IS NOT NULL \
             FROM workflow_nodes n JOIN workflows w ON w.id = n.workflow_id \
             WHERE n.workflow_id = ? AND n.name = ?",
        )
        .bind(wf)
        .bind(node)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        let (state, status, owner, cancel) = row.ok_or(StoreError::NotFound)?;
        if state != "pending" || status != "running" || cancel {
            return Ok(false);
        }
        if owner != text(job.owner_id.as_uuid()).to_string() {
            return Err(StoreError::Conflict(
                "a node's job must belong to the workflow's owner".into(),
            ));
        }
        sqlx::query(
            "UPDATE workflow_nodes SET state = 'started', job_id = ?, started_at = ?, \
                 reason = NULL, finished_at = NULL \
             WHERE workflow_id = ? AND name = ? AND state = 'pending'",
        )
        .bind(text(job.id.as_uuid()))
        .bind(micros(job.created_at))
        .bind(wf)
        .bind(node)
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        let link = JobWorkflowLink {
            workflow_id,
            node: node.to_owned(),
            context,
        };
        insert_job(&mut tx, &job, &BTreeMap::new(), Some(&link)).await?;
        tx.commit().await.map_err(map_sqlx)?;
        self.signals.notify_work();
        Ok(true)
    }

    async fn skip_workflow_node(
        &self,
        workflow_id: WorkflowId,
        node: &str,
        reason: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE workflow_nodes SET state = 'skipped', reason = ?, finished_at = ? \
             WHERE workflow_id = ? AND name = ? AND state = 'pending'",
        )
        .bind(reason)
        .bind(micros(now))
        .bind(text(workflow_id.0))
        .bind(node)
        .execute(&self.writer)
        .await
        .map_err(map_sqlx)?;
        Ok(done.rows_affected() == 1)
    }

    async fn add_workflow_nodes(
        &self,
        workflow_id: WorkflowId,
        parent: JobId,
        operation_id: &str,
        nodes: Vec<NewWorkflowNode>,
        now: Timestamp,
    ) -> StoreResult<TriggerOutcome> {
        self.add_nodes(workflow_id, parent, operation_id, nodes, now)
            .await
    }

    async fn finish_workflow(
        &self,
        id: WorkflowId,
        status: WorkflowState,
        outputs: BTreeMap<String, String>,
        error: Option<String>,
        now: Timestamp,
    ) -> StoreResult<bool> {
        if !status.is_terminal() {
            return Err(StoreError::Conflict("not a final workflow status".into()));
        }
        let done = sqlx::query(
            "UPDATE workflows SET status = ?, outputs = ?, error = COALESCE(?, error), \
                 finished_at = ? \
             WHERE id = ? AND status = 'running'",
        )
        .bind(status.as_str())
        .bind(Json(&outputs))
        .bind(error)
        .bind(micros(now))
        .bind(text(id.0))
        .execute(&self.writer)
        .await
        .map_err(map_sqlx)?;
        Ok(done.rows_affected() == 1)
    }

    async fn request_workflow_cancel(
        &self,
        scope: Scope,
        id: WorkflowId,
        error: Option<String>,
        now: Timestamp,
    ) -> StoreResult<Workflow> {
        let key = text(id.0);
        let mut tx = self.begin_immediate().await?;
        let (status, _) = Self::workflow_state_in(&mut tx, scope, id).await?;
        if status.is_terminal() {
            return Err(StoreError::Conflict(format!(
                "workflow {id} already finished ({})",
                status.as_str()
            )));
        }
        sqlx::query(
            "UPDATE workflows SET cancel_requested_at = COALESCE(cancel_requested_at, ?), \
                 error = COALESCE(error, ?) WHERE id = ?",
        )
        .bind(micros(now))
        .bind(error)
        .bind(key)
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        sqlx::query(
            "UPDATE workflow_nodes SET state = 'skipped', reason = ?, finished_at = ? \
             WHERE workflow_id = ? AND state = 'pending'",
        )
        .bind(CANCELLED_REASON)
        .bind(micros(now))
        .bind(key)
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        let wf = workflow_in(&mut tx, key).await?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(wf)
    }

    async fn rerun_workflow(
        &self,
        scope: Scope,
        id: WorkflowId,
        _now: Timestamp,
    ) -> StoreResult<Workflow> {
        let key = text(id.0);
        let mut tx = self.begin_immediate().await?;
        let (status, _) = Self::workflow_state_in(&mut tx, scope, id).await?;
        if !matches!(status, WorkflowState::Failed | WorkflowState::Cancelled) {
            return Err(StoreError::Conflict(format!(
                "only a failed or cancelled workflow can be re-run (this one is {})",
                status.as_str()
            )));
        }
        let nodes = sqlx::query_as::<_, NodeRow>(NODES_QUERY)
            .bind(key)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        for row in nodes {
            let name = row.name().to_owned();
            let node = row.into_node()?;
            if !matches!(
                node.status,
                NodeStatus::Failed
                    | NodeStatus::TimedOut
                    | NodeStatus::Cancelled
                    | NodeStatus::Skipped
            ) {
                continue;
            }
            let mut previous: Vec<Uuid> =
                node.previous_job_ids.iter().map(|j| j.as_uuid()).collect();
            previous.extend(node.job_id.map(|j| j.as_uuid()));
            sqlx::query(
                "UPDATE workflow_nodes SET state = 'pending', reason = NULL, job_id = NULL, \
                     previous_job_ids = ?, started_at = NULL, finished_at = NULL \
                 WHERE workflow_id = ? AND name = ?",
            )
            .bind(Json(&previous))
            .bind(key)
            .bind(&name)
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        }
        sqlx::query(
            "UPDATE workflows SET status = 'running', run = run + 1, outputs = '{}', \
                 error = NULL, finished_at = NULL, cancel_requested_at = NULL WHERE id = ?",
        )
        .bind(key)
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        let wf = workflow_in(&mut tx, key).await?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(wf)
    }

    async fn running_workflows(&self, limit: u32) -> StoreResult<Vec<WorkflowId>> {
        let ids: Vec<uuid::fmt::Hyphenated> = sqlx::query_scalar(
            "SELECT id FROM workflows WHERE status = 'running' \
             ORDER BY created_at, id LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(map_sqlx)?;
        Ok(ids.into_iter().map(|i| WorkflowId(i.into_uuid())).collect())
    }
}

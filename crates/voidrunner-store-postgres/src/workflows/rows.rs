//! `workflows` and `workflow_nodes` rows, the derived node status, and the insert that
//! `create_workflow` and `record_delivery` share.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;
use voidrunner_domain::{Timestamp, UserId};
use voidrunner_store::{
    JobId, JobStatus, NewWorkflow, NewWorkflowNode, NodeStatus, StoreError, StoreResult, Workflow,
    WorkflowId, WorkflowNode, WorkflowState, failures_from_json, outputs_from_json,
};

use crate::error::{corrupt, map_sqlx};

/// Columns of [`WorkflowRow`].
pub(crate) const WORKFLOW_COLUMNS: &str = "id, owner_id, name, definition, vars, trusted, \
    files, origin, status, outputs, error, run, cancel_requested_at, request_id, created_at, \
    finished_at";

/// A `workflows` row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct WorkflowRow {
    id: Uuid,
    owner_id: Uuid,
    name: String,
    definition: Json<serde_json::Value>,
    vars: Json<BTreeMap<String, String>>,
    trusted: bool,
    files: Json<BTreeMap<String, String>>,
    origin: Json<serde_json::Value>,
    status: String,
    outputs: Json<BTreeMap<String, String>>,
    error: Option<String>,
    run: i32,
    cancel_requested_at: Option<Timestamp>,
    request_id: Option<String>,
    created_at: Timestamp,
    finished_at: Option<Timestamp>,
}

impl WorkflowRow {
    /// Converts to the store's workflow.
    pub(crate) fn into_workflow(self) -> StoreResult<Workflow> {
        Ok(Workflow {
            id: WorkflowId(self.id),
            owner_id: UserId(self.owner_id),
            name: self.name,
            definition: self.definition.0,
            vars: self.vars.0,
            trusted: self.trusted,
            files: self.files.0,
            origin: self.origin.0,
            status: WorkflowState::parse(&self.status)
                .ok_or_else(|| corrupt("workflows.status", &self.status))?,
            outputs: self.outputs.0,
            error: self.error,
            run: u32::try_from(self.run).map_err(|_| corrupt("workflows.run", self.run))?,
            cancel_requested_at: self.cancel_requested_at,
            request_id: self.request_id,
            created_at: self.created_at,
            finished_at: self.finished_at,
        })
    }
}

/// Select of [`NodeRow`]s of one workflow (bind its id), in `idx` order.
pub(crate) const NODES_QUERY: &str = "SELECT n.name, n.idx, n.group_name, n.definition, \
    n.depends_on, n.condition, n.state, n.reason, n.job_id, n.previous_job_ids, \
    n.parent_job_id, n.finished_at, j.status AS job_status, j.failures AS job_failures, \
    j.outputs AS job_outputs, j.created_at AS job_created_at, \
    j.finished_at AS job_finished_at \
    FROM workflow_nodes n LEFT JOIN jobs j ON j.id = n.job_id \
    WHERE n.workflow_id = $1 ORDER BY n.idx";

/// A `workflow_nodes` row joined with its current job.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct NodeRow {
    name: String,
    idx: i32,
    group_name: String,
    definition: Json<serde_json::Value>,
    depends_on: Json<Vec<String>>,
    condition: String,
    state: String,
    reason: Option<String>,
    job_id: Option<Uuid>,
    previous_job_ids: Json<Vec<Uuid>>,
    parent_job_id: Option<Uuid>,
    finished_at: Option<Timestamp>,
    job_status: Option<String>,
    job_failures: Option<Json<serde_json::Value>>,
    job_outputs: Option<Json<serde_json::Value>>,
    job_created_at: Option<Timestamp>,
    job_finished_at: Option<Timestamp>,
}

/// A started node's status from its job's (`failed` by a `timeout` failure reads `timed_out`).
pub(crate) fn status_of_job(status: JobStatus, failures: &serde_json::Value) -> NodeStatus {
    match status {
        JobStatus::Queued => NodeStatus::Queued,
        JobStatus::Running => NodeStatus::Running,
        JobStatus::Succeeded => NodeStatus::Succeeded,
        JobStatus::Cancelled => NodeStatus::Cancelled,
        JobStatus::Failed => {
            let timed_out = failures_from_json(failures)
                .is_some_and(|f| f.iter().any(|f| f.phase == "timeout"));
            if timed_out {
                NodeStatus::TimedOut
            } else {
                NodeStatus::Failed
            }
        }
    }
}

impl NodeRow {
    /// The node's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Converts to the store's node, deriving the status (see the `WorkflowStore` docs).
    pub(crate) fn into_node(self) -> StoreResult<WorkflowNode> {
        let (status, outputs, started_at, finished_at) = match self.state.as_str() {
            "pending" => (NodeStatus::Pending, BTreeMap::new(), None, None),
            "skipped" => (NodeStatus::Skipped, BTreeMap::new(), None, self.finished_at),
            "started" => {
                let (Some(status), Some(failures), Some(outputs), Some(created)) = (
                    self.job_status,
                    self.job_failures,
                    self.job_outputs,
                    self.job_created_at,
                ) else {
                    return Err(corrupt("workflow_nodes.job_id", "job missing"));
                };
                let status =
                    JobStatus::parse(&status).ok_or_else(|| corrupt("jobs.status", &status))?;
                (
                    status_of_job(status, &failures.0),
                    outputs_from_json(&outputs.0)
                        .ok_or_else(|| corrupt("jobs.outputs", &outputs.0))?,
                    Some(created),
                    self.job_finished_at,
                )
            }
            other => return Err(corrupt("workflow_nodes.state", other)),
        };
        Ok(WorkflowNode {
            name: self.name,
            group: self.group_name,
            idx: u32::try_from(self.idx).map_err(|_| corrupt("workflow_nodes.idx", self.idx))?,
            definition: self.definition.0,
            depends_on: self.depends_on.0,
            condition: self.condition,
            status,
            reason: self.reason,
            job_id: self.job_id.map(JobId),
            previous_job_ids: self.previous_job_ids.0.into_iter().map(JobId).collect(),
            parent_job_id: self.parent_job_id.map(JobId),
            outputs,
            started_at,
            finished_at,
        })
    }
}

/// `Conflict` naming the first node whose name repeats within `nodes` or is in `taken`.
pub(crate) fn check_names(nodes: &[NewWorkflowNode], taken: &BTreeSet<String>) -> StoreResult<()> {
    let mut seen = BTreeSet::new();
    for n in nodes {
        if taken.contains(&n.name) || !seen.insert(n.name.as_str()) {
            return Err(StoreError::Conflict(format!(
                "workflow node {:?} already exists",
                n.name
            )));
        }
    }
    Ok(())
}

/// Inserts `nodes` as `pending` from `first_idx` on, inside the caller's transaction.
pub(crate) async fn insert_nodes(
    conn: &mut PgConnection,
    workflow: Uuid,
    nodes: &[NewWorkflowNode],
    first_idx: i32,
) -> StoreResult<()> {
    for (i, n) in (first_idx..).zip(nodes) {
        sqlx::query(
            "INSERT INTO workflow_nodes (workflow_id, name, idx, group_name, definition, \
                 depends_on, condition, state, parent_job_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8)",
        )
        .bind(workflow)
        .bind(&n.name)
        .bind(i)
        .bind(&n.group)
        .bind(Json(&n.definition))
        .bind(Json(&n.depends_on))
        .bind(&n.condition)
        .bind(n.parent_job_id.map(|j| j.as_uuid()))
        .execute(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    }
    Ok(())
}

/// Reads a workflow row on `conn` (inside the caller's transaction).
pub(crate) async fn workflow_in(conn: &mut PgConnection, id: Uuid) -> StoreResult<Workflow> {
    sqlx::query_as::<_, WorkflowRow>(&format!(
        "SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE id = $1"
    ))
    .bind(id)
    .fetch_one(conn)
    .await
    .map_err(map_sqlx)?
    .into_workflow()
}

/// Inserts a workflow (`running`, run 1), its nodes and sealed secrets inside the caller's transaction: what
/// `create_workflow` writes, shared with `record_delivery`.
pub(crate) async fn insert_workflow(
    conn: &mut PgConnection,
    new: &NewWorkflow,
    nodes: &[NewWorkflowNode],
    sealed_secrets: &BTreeMap<String, Vec<u8>>,
) -> StoreResult<Workflow> {
    check_names(nodes, &BTreeSet::new())?;
    let id = new.id.0;
    sqlx::query(
        "INSERT INTO workflows (id, owner_id, name, definition, vars, trusted, files, origin, \
             status, request_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'running', $9, $10)",
    )
    .bind(id)
    .bind(new.owner_id.as_uuid())
    .bind(&new.name)
    .bind(Json(&new.definition))
    .bind(Json(&new.vars))
    .bind(new.trusted)
    .bind(Json(&new.files))
    .bind(Json(&new.origin))
    .bind(&new.request_id)
    .bind(new.created_at)
    .execute(&mut *conn)
    .await
    .map_err(|e| match map_sqlx(e) {
        StoreError::Conflict(m) if m == "already exists" => {
            StoreError::Conflict("workflow already exists".into())
        }
        other => other,
    })?;
    insert_nodes(conn, id, nodes, 0).await?;
    for (name, sealed) in sealed_secrets {
        sqlx::query("INSERT INTO workflow_secrets (workflow_id, name, sealed) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(name)
            .bind(sealed)
            .execute(&mut *conn)
            .await
            .map_err(map_sqlx)?;
    }
    workflow_in(conn, id).await
}

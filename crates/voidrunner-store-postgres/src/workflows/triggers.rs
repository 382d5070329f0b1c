//! Triggered nodes (follow-up jobs from inside a job): `add_workflow_nodes`, idempotent by
//! `(workflow, parent job, operation id)`.

use std::collections::BTreeSet;

use sqlx::types::Json;
use uuid::Uuid;
use voidrunner_domain::Timestamp;
use voidrunner_store::{
    JobId, NewWorkflowNode, Scope, StoreError, StoreResult, TriggerOutcome, WorkflowId,
    WorkflowState,
};

use super::lock_workflow;
use super::rows::{check_names, insert_nodes};
use crate::PostgresStore;
use crate::error::map_sqlx;

impl PostgresStore {
    /// See [`voidrunner_store::WorkflowStore::add_workflow_nodes`].
    pub(super) async fn add_nodes(
        &self,
        workflow_id: WorkflowId,
        parent: JobId,
        operation_id: &str,
        nodes: Vec<NewWorkflowNode>,
        now: Timestamp,
    ) -> StoreResult<TriggerOutcome> {
        let wf = workflow_id.0;
        let parent_key = parent.as_uuid();
        let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
        let (status, cancel) = lock_workflow(&mut tx, Scope::All, workflow_id).await?;
        let applied: Option<Json<Vec<String>>> = sqlx::query_scalar(
            "SELECT nodes FROM workflow_triggers \
             WHERE workflow_id = $1 AND parent_job_id = $2 AND operation_id = $3",
        )
        .bind(wf)
        .bind(parent_key)
        .bind(operation_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        if let Some(names) = applied {
            return Ok(TriggerOutcome::Duplicate(names.0));
        }
        if status != WorkflowState::Running || cancel {
            return Err(StoreError::Conflict(format!(
                "workflow {workflow_id} is not running"
            )));
        }
        let parent_wf: Option<Option<Uuid>> =
            sqlx::query_scalar("SELECT workflow_id FROM jobs WHERE id = $1")
                .bind(parent_key)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_sqlx)?;
        if parent_wf.flatten() != Some(wf) {
            return Err(StoreError::Conflict(format!(
                "job {parent} does not belong to workflow {workflow_id}"
            )));
        }
        let existing: Vec<(String, i32)> =
            sqlx::query_as("SELECT name, idx FROM workflow_nodes WHERE workflow_id = $1")
                .bind(wf)
                .fetch_all(&mut *tx)
                .await
                .map_err(map_sqlx)?;
        let next_idx = existing.iter().map(|(_, i)| i + 1).max().unwrap_or(0);
        let taken: BTreeSet<String> = existing.into_iter().map(|(n, _)| n).collect();
        check_names(&nodes, &taken)?;
        check_dependencies(&nodes, &taken)?;
        let nodes: Vec<NewWorkflowNode> = nodes
            .into_iter()
            .map(|n| NewWorkflowNode {
                parent_job_id: Some(parent),
                ..n
            })
            .collect();
        insert_nodes(&mut tx, wf, &nodes, next_idx).await?;
        let names: Vec<String> = nodes.into_iter().map(|n| n.name).collect();
        sqlx::query(
            "INSERT INTO workflow_triggers (workflow_id, parent_job_id, operation_id, nodes, \
                 created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(wf)
        .bind(parent_key)
        .bind(operation_id)
        .bind(Json(&names))
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(TriggerOutcome::Added(names))
    }
}

/// `Conflict` naming the first node with a dependency that is neither in `taken` nor in
/// `nodes`.
fn check_dependencies(nodes: &[NewWorkflowNode], taken: &BTreeSet<String>) -> StoreResult<()> {
    let batch: BTreeSet<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    for n in nodes {
        if let Some(dep) = n
            .depends_on
            .iter()
            .find(|d| !taken.contains(*d) && !batch.contains(d.as_str()))
        {
            return Err(StoreError::Conflict(format!(
                "workflow node {:?} depends on unknown node {dep:?}",
                n.name
            )));
        }
    }
    Ok(())
}

//! The store-backed [`WorkflowLink`] the job worker hands to the runner for a job that runs
//! as a workflow node. It is bound to the job's own workflow: there is no way to name
//! another one, so a job can only trigger within its own workflow.

use std::sync::Arc;

use voidrunner_store::{JobId, Scope, Store, StoreError, TriggerOutcome, WorkflowId};

use crate::definition::JobDefinition;
use crate::link::{NodeInfo, TriggerAnswer, TriggerPayload, WorkflowLink};

/// The workflow side of one running workflow job, through the store.
#[derive(Clone)]
pub struct StoreLink {
    store: Arc<dyn Store>,
    workflow: WorkflowId,
    job: JobId,
    parent: JobDefinition,
}

impl std::fmt::Debug for StoreLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreLink")
            .field("workflow", &self.workflow)
            .field("job", &self.job)
            .finish_non_exhaustive()
    }
}

impl StoreLink {
    /// The link of job `job` (running `parent`) in workflow `workflow`.
    pub fn new(
        store: Arc<dyn Store>,
        workflow: WorkflowId,
        job: JobId,
        parent: JobDefinition,
    ) -> StoreLink {
        StoreLink {
            store,
            workflow,
            job,
            parent,
        }
    }
}

fn store_error(e: StoreError) -> String {
    match e {
        StoreError::Conflict(m) => m,
        StoreError::NotFound => "the workflow does not exist".to_owned(),
        e => format!("the workflow store failed: {e}"),
    }
}

#[async_trait::async_trait]
impl WorkflowLink for StoreLink {
    async fn trigger(&self, payload: TriggerPayload) -> Result<TriggerAnswer, String> {
        let workflow = self
            .store
            .get_workflow(Scope::All, self.workflow)
            .await
            .map_err(store_error)?;
        let specs = crate::trigger::resolve_trigger(&payload, &self.parent, &workflow.files)?;
        let mut nodes = Vec::with_capacity(specs.len());
        for spec in specs {
            let name = spec.name.clone();
            nodes.push(
                spec.into_new_node(Some(self.job))
                    .map_err(|e| format!("job {name}: {e}"))?,
            );
        }
        let outcome = self
            .store
            .add_workflow_nodes(
                self.workflow,
                self.job,
                &payload.operation_id,
                nodes,
                voidrunner_store::now(),
            )
            .await
            .map_err(store_error)?;
        match outcome {
            TriggerOutcome::Added(nodes) => {
                if let Err(e) = super::advance(&*self.store, self.workflow).await {
                    // The sweep retries; the nodes are stored.
                    tracing::warn!(workflow.id = %self.workflow, error = %e, "advancing workflow {} after a trigger failed: {e}", self.workflow);
                }
                Ok(TriggerAnswer {
                    nodes,
                    duplicate: false,
                })
            }
            TriggerOutcome::Duplicate(nodes) => Ok(TriggerAnswer {
                nodes,
                duplicate: true,
            }),
        }
    }

    async fn node(&self, name: &str) -> Result<Option<NodeInfo>, String> {
        let nodes = self
            .store
            .workflow_nodes(Scope::All, self.workflow)
            .await
            .map_err(store_error)?;
        Ok(nodes
            .into_iter()
            .find(|n| n.name == name)
            .map(|n| NodeInfo {
                name: n.name,
                status: n.status.as_str().to_owned(),
                job_id: n.job_id.map(|j| j.to_string()),
                outputs: n.outputs,
            }))
    }
}

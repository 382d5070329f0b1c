//! Workflows and registered repositories (see `voidrunner_store::WorkflowStore` and
//! `voidrunner_store::RepositoryStore`). PLACEHOLDER written by the lead so that the
//! workspace compiles while the backend is written; every method answers a conflict.

use std::collections::BTreeMap;

use voidrunner_domain::Timestamp;
use voidrunner_store::{
    Delivery, DeliveryOutcome, DeliveryWorkflow, JobId, NewDelivery, NewJob, NewRepository,
    NewWorkflow, NewWorkflowNode, Repository, RepositoryId, RepositoryStore, Scope, StoreError,
    StoreResult, TriggerOutcome, Workflow, WorkflowCursor, WorkflowId, WorkflowNode, WorkflowPage,
    WorkflowState, WorkflowStore,
};

use crate::PostgresStore;

fn todo<T>() -> StoreResult<T> {
    Err(StoreError::Conflict("not implemented yet".into()))
}

#[async_trait::async_trait]
impl WorkflowStore for PostgresStore {
    async fn create_workflow(
        &self,
        _new: NewWorkflow,
        _nodes: Vec<NewWorkflowNode>,
        _sealed_secrets: BTreeMap<String, Vec<u8>>,
    ) -> StoreResult<Workflow> {
        todo()
    }
    async fn get_workflow(&self, _scope: Scope, _id: WorkflowId) -> StoreResult<Workflow> {
        todo()
    }
    async fn list_workflows(
        &self,
        _scope: Scope,
        _status: Option<WorkflowState>,
        _after: Option<WorkflowCursor>,
        _limit: u32,
    ) -> StoreResult<WorkflowPage> {
        todo()
    }
    async fn workflow_nodes(
        &self,
        _scope: Scope,
        _id: WorkflowId,
    ) -> StoreResult<Vec<WorkflowNode>> {
        todo()
    }
    async fn workflow_secrets(&self, _id: WorkflowId) -> StoreResult<BTreeMap<String, Vec<u8>>> {
        todo()
    }
    async fn start_workflow_node(
        &self,
        _workflow_id: WorkflowId,
        _node: &str,
        _job: NewJob,
        _context: serde_json::Value,
    ) -> StoreResult<bool> {
        todo()
    }
    async fn skip_workflow_node(
        &self,
        _workflow_id: WorkflowId,
        _node: &str,
        _reason: &str,
        _now: Timestamp,
    ) -> StoreResult<bool> {
        todo()
    }
    async fn add_workflow_nodes(
        &self,
        _workflow_id: WorkflowId,
        _parent: JobId,
        _operation_id: &str,
        _nodes: Vec<NewWorkflowNode>,
        _now: Timestamp,
    ) -> StoreResult<TriggerOutcome> {
        todo()
    }
    async fn finish_workflow(
        &self,
        _id: WorkflowId,
        _status: WorkflowState,
        _outputs: BTreeMap<String, String>,
        _error: Option<String>,
        _now: Timestamp,
    ) -> StoreResult<bool> {
        todo()
    }
    async fn request_workflow_cancel(
        &self,
        _scope: Scope,
        _id: WorkflowId,
        _error: Option<String>,
        _now: Timestamp,
    ) -> StoreResult<Workflow> {
        todo()
    }
    async fn rerun_workflow(
        &self,
        _scope: Scope,
        _id: WorkflowId,
        _now: Timestamp,
    ) -> StoreResult<Workflow> {
        todo()
    }
    async fn running_workflows(&self, _limit: u32) -> StoreResult<Vec<WorkflowId>> {
        todo()
    }
}

#[async_trait::async_trait]
impl RepositoryStore for PostgresStore {
    async fn create_repository(
        &self,
        _new: NewRepository,
        _sealed_webhook_secret: Vec<u8>,
        _sealed_secrets: BTreeMap<String, Vec<u8>>,
    ) -> StoreResult<Repository> {
        todo()
    }
    async fn get_repository(&self, _scope: Scope, _id: RepositoryId) -> StoreResult<Repository> {
        todo()
    }
    async fn list_repositories(&self, _scope: Scope) -> StoreResult<Vec<Repository>> {
        todo()
    }
    async fn delete_repository(&self, _scope: Scope, _id: RepositoryId) -> StoreResult<()> {
        todo()
    }
    async fn update_repository_secrets(
        &self,
        _scope: Scope,
        _id: RepositoryId,
        _webhook_secret: Option<Vec<u8>>,
        _secrets: BTreeMap<String, Option<Vec<u8>>>,
    ) -> StoreResult<Repository> {
        todo()
    }
    async fn find_repository(
        &self,
        _provider: &str,
        _full_name: &str,
    ) -> StoreResult<Option<(Repository, Vec<u8>)>> {
        todo()
    }
    async fn repository_secrets(
        &self,
        _id: RepositoryId,
    ) -> StoreResult<BTreeMap<String, Vec<u8>>> {
        todo()
    }
    async fn record_delivery(
        &self,
        _delivery: NewDelivery,
        _workflows: Vec<DeliveryWorkflow>,
    ) -> StoreResult<DeliveryOutcome> {
        todo()
    }
    async fn list_deliveries(
        &self,
        _scope: Scope,
        _id: RepositoryId,
        _limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        todo()
    }
}

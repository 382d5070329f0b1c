//! Workflows (see `docs/WORKFLOWS.md`): graphs of CI jobs run by a durable scheduler.
//!
//! Protocol (every backend):
//! - `create_workflow` inserts the workflow (`running`), one `pending` row per node and the
//!   sealed workflow secrets (bound to `"<workflow_id>/<NAME>"`) in ONE transaction.
//! - A node is started by [`WorkflowStore::start_workflow_node`], which in ONE transaction
//!   moves the node row from `pending` to started (`job_id` set, `started_at`) only if it is
//!   still `pending` and the workflow is still `running` without a cancel request, and inserts
//!   the job (exactly what [`crate::JobStore::create_job`] inserts, plus the job's
//!   [`JobWorkflowLink`] columns). Two schedulers racing to start the same node: one inserts
//!   the job, the other gets `Ok(false)` and nothing is written. So no node's job is ever
//!   created twice, and the job queue's lease rules make sure it runs once.
//! - A started node's status is NOT stored: it is derived from its current job when read
//!   (`queued`/`running`/`succeeded`/`failed`/`cancelled`; `failed` with a failure of phase
//!   `timeout` reads `timed_out`). Only `pending` and `skipped` are node-row states. So a
//!   job's completion needs no second write to keep the graph consistent.
//! - Skips ([`WorkflowStore::skip_workflow_node`]) and the final status
//!   ([`WorkflowStore::finish_workflow`]) are conditional updates as well (`pending` →
//!   `skipped`; `running` → terminal), so any number of schedulers may run the same decision
//!   pass at once: decisions are deterministic and every write is compare-and-set.
//! - Triggered nodes (follow-up jobs from inside a job) are added by
//!   [`WorkflowStore::add_workflow_nodes`], idempotent by `(workflow, parent job,
//!   operation id)`: a replay answers the first call's node names and adds nothing.
//! - A cancel request ([`WorkflowStore::request_workflow_cancel`]) records
//!   `cancel_requested_at` (and an optional error, e.g. an output conflict, which makes the
//!   final status `failed`) and skips every `pending` node in the same transaction; the
//!   scheduler then cancels the nodes' unfinished jobs and finishes the workflow.
//! - A re-run ([`WorkflowStore::rerun_workflow`]) of a `failed` or `cancelled` workflow puts
//!   every node whose status is `failed`, `timed_out`, `cancelled` or `skipped` back to
//!   `pending` (its old job id moves to `previous_job_ids`), clears the final fields and sets
//!   the workflow `running` with `run + 1`, in one transaction.

use std::collections::BTreeMap;

use voidrunner_domain::{Timestamp, UserId};

use crate::{JobId, NewJob, Scope, StoreResult};

pub use voidrunner_domain::WorkflowId;

/// A workflow's status. Terminal: everything but `running`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkflowState {
    /// Some node is not terminal.
    Running,
    /// Every node succeeded or was skipped (not all skipped).
    Succeeded,
    /// Some node failed or timed out, or outputs conflicted.
    Failed,
    /// Cancelled by a user (or some node was cancelled and none failed).
    Cancelled,
    /// Every node was skipped.
    Skipped,
}

impl WorkflowState {
    /// The stored (and wire) name.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowState::Running => "running",
            WorkflowState::Succeeded => "succeeded",
            WorkflowState::Failed => "failed",
            WorkflowState::Cancelled => "cancelled",
            WorkflowState::Skipped => "skipped",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<WorkflowState> {
        Some(match s {
            "running" => WorkflowState::Running,
            "succeeded" => WorkflowState::Succeeded,
            "failed" => WorkflowState::Failed,
            "cancelled" => WorkflowState::Cancelled,
            "skipped" => WorkflowState::Skipped,
            _ => return None,
        })
    }

    /// No further change will happen (until a re-run).
    pub fn is_terminal(self) -> bool {
        self != WorkflowState::Running
    }
}

/// A node's status as read (derived from its job once started; see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeStatus {
    /// Not started, not skipped.
    Pending,
    /// Its job waits for a worker.
    Queued,
    /// Its job runs.
    Running,
    /// Its job succeeded.
    Succeeded,
    /// Its job failed.
    Failed,
    /// Its job failed by its timeout.
    TimedOut,
    /// Its job was cancelled.
    Cancelled,
    /// Its condition was false, or the workflow was cancelled before it started.
    Skipped,
}

impl NodeStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Pending => "pending",
            NodeStatus::Queued => "queued",
            NodeStatus::Running => "running",
            NodeStatus::Succeeded => "succeeded",
            NodeStatus::Failed => "failed",
            NodeStatus::TimedOut => "timed_out",
            NodeStatus::Cancelled => "cancelled",
            NodeStatus::Skipped => "skipped",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<NodeStatus> {
        Some(match s {
            "pending" => NodeStatus::Pending,
            "queued" => NodeStatus::Queued,
            "running" => NodeStatus::Running,
            "succeeded" => NodeStatus::Succeeded,
            "failed" => NodeStatus::Failed,
            "timed_out" => NodeStatus::TimedOut,
            "cancelled" => NodeStatus::Cancelled,
            "skipped" => NodeStatus::Skipped,
            _ => return None,
        })
    }

    /// Finished one way or another.
    pub fn is_terminal(self) -> bool {
        !matches!(
            self,
            NodeStatus::Pending | NodeStatus::Queued | NodeStatus::Running
        )
    }
}

/// The workflow columns of a job that belongs to a workflow (set by
/// [`WorkflowStore::start_workflow_node`]; `None` on plain jobs).
#[derive(Debug, Clone, PartialEq)]
pub struct JobWorkflowLink {
    /// The workflow.
    pub workflow_id: WorkflowId,
    /// The node's name (`build[1]`).
    pub node: String,
    /// What the job reads about its workflow (vars, the outputs of finished nodes, the
    /// trust level), frozen when the node started; the scheduler's JSON, opaque here.
    pub context: serde_json::Value,
}

/// A workflow to create (definition already validated and expanded by the caller).
#[derive(Debug, Clone)]
pub struct NewWorkflow {
    /// New id.
    pub id: WorkflowId,
    /// Owner (must exist, else `Conflict`).
    pub owner_id: UserId,
    /// The definition's name.
    pub name: String,
    /// The definition as submitted (JSON), for display and re-runs.
    pub definition: serde_json::Value,
    /// Workflow variables.
    pub vars: BTreeMap<String, String>,
    /// Trusted: secrets may reach its jobs. False for fork pull requests unless the
    /// repository's policy says otherwise. Inherited by every node, triggered ones too.
    pub trusted: bool,
    /// The CI files the workflow may reference (`job_file` of triggered jobs), by path
    /// relative to the CI root; capped by the caller.
    pub files: BTreeMap<String, String>,
    /// Where it came from: `{"kind":"api"}`, `{"kind":"hook", "repository_id", "delivery_id",
    /// "event", "sha", "branch", …}`; opaque to the store.
    pub origin: serde_json::Value,
    /// Request id of the creating API call.
    pub request_id: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
}

/// A node to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewWorkflowNode {
    /// Unique within the workflow (`build[1]`).
    pub name: String,
    /// The definition's node name shared by fan-out instances (`build`); outputs are
    /// published under it.
    pub group: String,
    /// The job to run, as validated JSON (env, item variable and source already applied).
    pub definition: serde_json::Value,
    /// Node names (instances) that must be terminal first.
    pub depends_on: Vec<String>,
    /// `all_success`, `any_failed` or `always`.
    pub condition: String,
    /// The job that triggered this node, for follow-up jobs.
    pub parent_job_id: Option<JobId>,
}

/// A stored workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct Workflow {
    /// Id.
    pub id: WorkflowId,
    /// Owner.
    pub owner_id: UserId,
    /// The definition's name.
    pub name: String,
    /// The definition as submitted.
    pub definition: serde_json::Value,
    /// Variables.
    pub vars: BTreeMap<String, String>,
    /// Secrets may reach its jobs.
    pub trusted: bool,
    /// CI files by path.
    pub files: BTreeMap<String, String>,
    /// Origin (see [`NewWorkflow::origin`]).
    pub origin: serde_json::Value,
    /// Status.
    pub status: WorkflowState,
    /// Merged outputs (`<node>.<key>`), recorded when it finished.
    pub outputs: BTreeMap<String, String>,
    /// Why it failed when no node says so (an output conflict).
    pub error: Option<String>,
    /// Runs so far (1, then + 1 per re-run).
    pub run: u32,
    /// When a cancel was requested (cleared by a re-run).
    pub cancel_requested_at: Option<Timestamp>,
    /// Request id of the creating API call.
    pub request_id: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// When it reached its current terminal status.
    pub finished_at: Option<Timestamp>,
}

/// A node as read, with its job's state.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowNode {
    /// Name (`build[1]`).
    pub name: String,
    /// Group (`build`).
    pub group: String,
    /// Creation order within the workflow, from 0 (triggered nodes come after).
    pub idx: u32,
    /// The job definition it runs.
    pub definition: serde_json::Value,
    /// Dependencies (node names).
    pub depends_on: Vec<String>,
    /// Condition name.
    pub condition: String,
    /// Derived status (see the module docs).
    pub status: NodeStatus,
    /// Why it was skipped.
    pub reason: Option<String>,
    /// Its current job once started.
    pub job_id: Option<JobId>,
    /// Jobs of earlier runs (re-runs), oldest first.
    pub previous_job_ids: Vec<JobId>,
    /// The job that triggered it.
    pub parent_job_id: Option<JobId>,
    /// Its job's outputs (empty until it finished).
    pub outputs: BTreeMap<String, String>,
    /// When its job was created.
    pub started_at: Option<Timestamp>,
    /// When its job finished, or when it was skipped.
    pub finished_at: Option<Timestamp>,
}

/// Keyset position in a newest-first workflow listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkflowCursor {
    /// `created_at` of the last row of the previous page.
    pub created_at: Timestamp,
    /// `id` of the last row of the previous page.
    pub id: WorkflowId,
}

/// One page of workflows, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowPage {
    /// Rows.
    pub items: Vec<Workflow>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<WorkflowCursor>,
}

/// `add_workflow_nodes` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerOutcome {
    /// The nodes were added (their names).
    Added(Vec<String>),
    /// This operation id was already applied by this parent: nothing added; the names the
    /// first call added.
    Duplicate(Vec<String>),
}

/// Workflows: creation, reading, and the scheduler's compare-and-set writes.
#[async_trait::async_trait]
pub trait WorkflowStore {
    /// Inserts the workflow (`running`, run 1), its nodes (`pending`, `idx` in order) and its
    /// sealed secrets in one transaction. `Conflict` for a duplicate id, a duplicate node
    /// name or an unknown owner.
    async fn create_workflow(
        &self,
        new: NewWorkflow,
        nodes: Vec<NewWorkflowNode>,
        sealed_secrets: BTreeMap<String, Vec<u8>>,
    ) -> StoreResult<Workflow>;
    /// A workflow within scope; `NotFound` otherwise.
    async fn get_workflow(&self, scope: Scope, id: WorkflowId) -> StoreResult<Workflow>;
    /// Workflows within scope, newest first, optionally of one status.
    async fn list_workflows(
        &self,
        scope: Scope,
        status: Option<WorkflowState>,
        after: Option<WorkflowCursor>,
        limit: u32,
    ) -> StoreResult<WorkflowPage>;
    /// The nodes in `idx` order with their derived status; `NotFound` when out of scope.
    async fn workflow_nodes(&self, scope: Scope, id: WorkflowId) -> StoreResult<Vec<WorkflowNode>>;
    /// The sealed secrets given at creation. For the worker, never for an API response.
    async fn workflow_secrets(&self, id: WorkflowId) -> StoreResult<BTreeMap<String, Vec<u8>>>;
    /// Starts a node: see the module docs. `job.id` becomes the node's job; its owner must be
    /// the workflow's. `Ok(false)` (nothing written) when the node is not `pending` or the
    /// workflow is not `running` or has a cancel request; `NotFound` for an unknown node.
    async fn start_workflow_node(
        &self,
        workflow_id: WorkflowId,
        node: &str,
        job: NewJob,
        context: serde_json::Value,
    ) -> StoreResult<bool>;
    /// Skips a `pending` node with `reason`; `Ok(false)` when it was not pending.
    async fn skip_workflow_node(
        &self,
        workflow_id: WorkflowId,
        node: &str,
        reason: &str,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Adds triggered nodes (`pending`, after the existing ones), idempotent by
    /// `(workflow_id, parent, operation_id)`. `Conflict` naming the node when a name is
    /// taken or a dependency is unknown, or when the workflow is not `running`.
    async fn add_workflow_nodes(
        &self,
        workflow_id: WorkflowId,
        parent: JobId,
        operation_id: &str,
        nodes: Vec<NewWorkflowNode>,
        now: Timestamp,
    ) -> StoreResult<TriggerOutcome>;
    /// Records the final status and merged outputs if still `running`; `Ok(false)` otherwise.
    /// `error` explains a failure no node shows.
    async fn finish_workflow(
        &self,
        id: WorkflowId,
        status: WorkflowState,
        outputs: BTreeMap<String, String>,
        error: Option<String>,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Records a cancel request (see the module docs); `error` makes the final status
    /// `failed`. `Conflict` when already finished; `NotFound` out of scope. A second request
    /// keeps the first time. Returns the row.
    async fn request_workflow_cancel(
        &self,
        scope: Scope,
        id: WorkflowId,
        error: Option<String>,
        now: Timestamp,
    ) -> StoreResult<Workflow>;
    /// Re-runs the failed, timed-out, cancelled and skipped nodes of a `failed` or
    /// `cancelled` workflow (see the module docs). `Conflict` otherwise. Returns the row.
    async fn rerun_workflow(
        &self,
        scope: Scope,
        id: WorkflowId,
        now: Timestamp,
    ) -> StoreResult<Workflow>;
    /// Ids of `running` workflows, oldest first, at most `limit`: the scheduler's sweep.
    async fn running_workflows(&self, limit: u32) -> StoreResult<Vec<WorkflowId>>;
}

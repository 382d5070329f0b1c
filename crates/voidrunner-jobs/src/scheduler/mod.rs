//! The durable workflow scheduler (see `docs/WORKFLOWS.md`).
//!
//! All state is in the store; the scheduler keeps none. [`advance`] is one decision pass
//! over a workflow: it reads the workflow and its nodes (a started node's status is its
//! job's), decides with the engine rules ([`crate::workflow::WorkflowPlan`]) and writes
//! every decision with a compare-and-set of the store ([`voidrunner_store::WorkflowStore`]).
//! Decisions are deterministic, so any number of passes may run at once, on any nodes of a
//! cluster: the first write of a decision wins, the others change nothing, and no node's
//! job is ever created twice (the job queue's lease rules then run it once).
//!
//! [`WorkflowScheduler`] runs passes in the background: for the workflow of every job that
//! finishes (job signals, cluster-wide on PostgreSQL) and in a periodic sweep over the
//! running workflows, so a restart, a killed node or a lost signal never stalls a workflow.
//! Signals (and the API's own passes after each write) are the fast path; the sweep is the
//! safety net, so it passes a workflow again only when this node has not passed it for
//! [`SchedulerConfig::revisit_after`] (or has never passed it, or its last pass failed).
//! That keeps a sweep of many long-running workflows to one listing query per interval.

mod link;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use voidrunner_store::{
    JobId, JobSignal, NewJob, NodeStatus, Scope, Store, StoreError, StoreResult, Workflow,
    WorkflowId, WorkflowNode, WorkflowState,
};

pub use link::StoreLink;

use crate::definition::JobDefinition;
use crate::link::WorkflowContext;
use crate::workflow::{NodeState, PlanNode, WorkflowPlan, WorkflowStatus, merge_outputs};

/// Most nodes one pass starts (the next pass, on their completion, starts more).
pub const MAX_STARTS_PER_PASS: usize = 64;

/// Priority of workflow jobs in the job queue.
const NODE_PRIORITY: u8 = 5;
/// Claims allowed per workflow job before it is dead-lettered (failed).
const NODE_MAX_ATTEMPTS: u32 = 3;

fn node_state(status: NodeStatus) -> NodeState {
    match status {
        NodeStatus::Pending => NodeState::Pending,
        NodeStatus::Queued | NodeStatus::Running => NodeState::Running,
        NodeStatus::Succeeded => NodeState::Succeeded,
        NodeStatus::Failed => NodeState::Failed,
        NodeStatus::TimedOut => NodeState::TimedOut,
        NodeStatus::Cancelled => NodeState::Cancelled,
        NodeStatus::Skipped => NodeState::Skipped,
    }
}

fn final_state(status: WorkflowStatus) -> WorkflowState {
    match status {
        WorkflowStatus::Running => WorkflowState::Running,
        WorkflowStatus::Succeeded => WorkflowState::Succeeded,
        WorkflowStatus::Failed => WorkflowState::Failed,
        WorkflowStatus::Cancelled => WorkflowState::Cancelled,
        WorkflowStatus::Skipped => WorkflowState::Skipped,
    }
}

/// The outputs of the succeeded nodes as `<group>.<key>`, in creation order; `Err` names
/// the first conflicting key.
fn merged_outputs(nodes: &[WorkflowNode]) -> Result<BTreeMap<String, String>, String> {
    let mut outputs = BTreeMap::new();
    for n in nodes.iter().filter(|n| n.status == NodeStatus::Succeeded) {
        merge_outputs(&mut outputs, &n.group, &n.outputs).map_err(|c| c.to_string())?;
    }
    Ok(outputs)
}

/// One idempotent decision pass over workflow `id` (see the module docs); answers its
/// status afterwards. Safe to call from anywhere at any time, concurrently too: after a
/// job of the workflow finished, after a trigger, from a sweep.
pub async fn advance(store: &dyn Store, id: WorkflowId) -> StoreResult<WorkflowState> {
    let mut workflow = store.get_workflow(Scope::All, id).await?;
    if workflow.status.is_terminal() {
        return Ok(workflow.status);
    }
    let mut nodes = store.workflow_nodes(Scope::All, id).await?;
    if workflow.cancel_requested_at.is_none() {
        match merged_outputs(&nodes) {
            Ok(outputs) => return decide(store, &workflow, &nodes, outputs).await,
            Err(conflict) => {
                match store
                    .request_workflow_cancel(
                        Scope::All,
                        id,
                        Some(conflict),
                        voidrunner_store::now(),
                    )
                    .await
                {
                    Ok(w) => workflow = w,
                    // Finished meanwhile (by another pass).
                    Err(StoreError::Conflict(_)) => {
                        return Ok(store.get_workflow(Scope::All, id).await?.status);
                    }
                    Err(e) => return Err(e),
                }
                nodes = store.workflow_nodes(Scope::All, id).await?;
            }
        }
    }
    cancel(store, &workflow, &nodes).await
}

/// The normal pass: skip, start, or finish.
async fn decide(
    store: &dyn Store,
    workflow: &Workflow,
    nodes: &[WorkflowNode],
    outputs: BTreeMap<String, String>,
) -> StoreResult<WorkflowState> {
    let mut plan = WorkflowPlan::from_nodes(nodes.iter().map(|n| PlanNode {
        name: &n.name,
        group: &n.group,
        depends_on: &n.depends_on,
        condition: &n.condition,
        state: node_state(n.status),
    }));
    let mut jobs: HashMap<usize, JobDefinition> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        if n.status != NodeStatus::Pending {
            continue;
        }
        match serde_json::from_value::<JobDefinition>(n.definition.clone()) {
            Ok(def) => {
                jobs.insert(i, def);
            }
            Err(e) => plan.skip(i, &format!("the stored job definition does not parse: {e}")),
        }
    }
    let starts = plan.next(MAX_STARTS_PER_PASS);
    let now = voidrunner_store::now();
    // Skips first, so a conflicting pass that reads between them sees the cascade.
    let mut lost_race = false;
    for (i, n) in nodes.iter().enumerate() {
        if n.status == NodeStatus::Pending
            && plan.state(i) == NodeState::Skipped
            && let Some(reason) = plan.skip_reason(i)
            && !store
                .skip_workflow_node(workflow.id, &n.name, reason, now)
                .await?
        {
            lost_race = true;
        }
    }
    for &i in &starts {
        let Some(def) = jobs.remove(&i) else { continue };
        let node = &nodes[i];
        let context = WorkflowContext {
            workflow_id: workflow.id.to_string(),
            node: node.name.clone(),
            vars: workflow.vars.clone(),
            outputs: outputs.clone(),
            trusted: workflow.trusted,
        };
        let context = serde_json::to_value(&context).map_err(StoreError::unavailable)?;
        let job = NewJob {
            id: JobId::new(),
            owner_id: workflow.owner_id,
            name: def.name.clone(),
            steps: def.steps.iter().map(|s| s.name.clone()).collect(),
            definition: node.definition.clone(),
            priority: NODE_PRIORITY,
            max_attempts: NODE_MAX_ATTEMPTS,
            request_id: workflow.request_id.clone(),
            has_tarball: false,
            created_at: voidrunner_store::now(),
        };
        let job_id = job.id;
        if store
            .start_workflow_node(workflow.id, &node.name, job, context)
            .await?
        {
            tracing::info!(
                workflow.id = %workflow.id,
                job.id = %job_id,
                "workflow {} node {} started as job {job_id}",
                workflow.id,
                node.name
            );
        }
    }
    let status = plan.status();
    if status == WorkflowStatus::Running || lost_race {
        // Either something runs, or another writer changed the graph under this pass: the
        // next pass (its job's completion, or the sweep) decides on fresh rows.
        return Ok(WorkflowState::Running);
    }
    let state = final_state(status);
    finish(store, workflow.id, state, outputs, None).await
}

/// The pass of a workflow with a cancel request: cancel every unfinished job, skip what is
/// still pending, and finish once every node is terminal.
async fn cancel(
    store: &dyn Store,
    workflow: &Workflow,
    nodes: &[WorkflowNode],
) -> StoreResult<WorkflowState> {
    let now = voidrunner_store::now();
    let mut unfinished = false;
    for n in nodes {
        match n.status {
            // Lost to another writer: re-decide on fresh rows next pass.
            NodeStatus::Pending
                if !store
                    .skip_workflow_node(workflow.id, &n.name, "the workflow was cancelled", now)
                    .await? =>
            {
                unfinished = true;
            }
            NodeStatus::Queued | NodeStatus::Running => {
                unfinished = true;
                if let Some(job) = n.job_id {
                    match store.request_job_cancel(Scope::All, job, now).await {
                        Ok(_) | Err(StoreError::Conflict(_) | StoreError::NotFound) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            _ => {}
        }
    }
    if unfinished {
        return Ok(WorkflowState::Running);
    }
    let (state, error) = match &workflow.error {
        Some(e) => (WorkflowState::Failed, Some(e.clone())),
        None => (WorkflowState::Cancelled, None),
    };
    // Outputs as far as they merge (a conflict already is the error).
    let mut outputs = BTreeMap::new();
    for n in nodes.iter().filter(|n| n.status == NodeStatus::Succeeded) {
        let _ = merge_outputs(&mut outputs, &n.group, &n.outputs);
    }
    finish(store, workflow.id, state, outputs, error).await
}

async fn finish(
    store: &dyn Store,
    id: WorkflowId,
    state: WorkflowState,
    outputs: BTreeMap<String, String>,
    error: Option<String>,
) -> StoreResult<WorkflowState> {
    if store
        .finish_workflow(id, state, outputs, error, voidrunner_store::now())
        .await?
    {
        tracing::info!(workflow.id = %id, workflow.status = state.as_str(), "workflow {id} {}", state.as_str());
        Ok(state)
    } else {
        Ok(store.get_workflow(Scope::All, id).await?.status)
    }
}

/// Settings of a node's workflow scheduler.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// How often every running workflow gets a pass (catches lost signals, restarts and
    /// killed nodes).
    pub sweep_interval: Duration,
    /// Most workflows one sweep looks at.
    pub sweep_batch: u32,
    /// A sweep passes a workflow this node passed successfully less than this long ago only
    /// if its signals were lost (a lagging receiver): the longest a lost signal can delay a
    /// workflow.
    pub revisit_after: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            sweep_interval: Duration::from_secs(1),
            sweep_batch: 1000,
            revisit_after: Duration::from_secs(15),
        }
    }
}

/// A running workflow scheduler (one per `serve`/`worker` node with a job worker; any
/// number may run against one store).
#[derive(Debug)]
pub struct WorkflowScheduler {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl WorkflowScheduler {
    /// Starts the background passes on the current runtime.
    pub fn start(store: Arc<dyn Store>, cfg: SchedulerConfig) -> WorkflowScheduler {
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(store, cfg, stop.clone()));
        WorkflowScheduler { stop, task }
    }

    /// Stops it (a pass in flight completes its current write; the store stays consistent
    /// whatever point it stops at).
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// Remembers the last error per workflow so a persistent one is logged once, not per sweep,
/// and when this node last passed each workflow successfully (for the sweep's revisit rule).
#[derive(Default)]
struct ErrorLog {
    workflows: HashMap<WorkflowId, String>,
    listing: Option<String>,
    passed: HashMap<WorkflowId, Instant>,
}

impl ErrorLog {
    fn record(&mut self, id: WorkflowId, result: StoreResult<WorkflowState>) {
        match result {
            Ok(_) => {
                self.workflows.remove(&id);
                self.passed.insert(id, Instant::now());
            }
            Err(e) => {
                self.passed.remove(&id);
                let msg = e.to_string();
                if self.workflows.len() >= 10_000 {
                    // Workflows finished elsewhere leave entries behind: forget them all.
                    self.workflows.clear();
                }
                if self.workflows.get(&id) != Some(&msg) {
                    tracing::warn!(workflow.id = %id, error = %msg, "advancing workflow {id} failed: {msg}");
                    self.workflows.insert(id, msg);
                }
            }
        }
    }
}

async fn run(store: Arc<dyn Store>, cfg: SchedulerConfig, stop: CancellationToken) {
    let mut signals = store.queue_signals().subscribe_jobs();
    let mut sweep = tokio::time::interval(cfg.sweep_interval.max(Duration::from_millis(10)));
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut errors = ErrorLog::default();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            s = signals.recv() => match s {
                Ok(JobSignal::Finished(job)) => {
                    if let Some(id) = workflow_of(&*store, job).await {
                        errors.record(id, advance(&*store, id).await);
                    }
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    // Signals were lost: every running workflow gets a pass now.
                    errors.passed.clear();
                    sweep_all(&*store, &cfg, &mut errors, &stop).await;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    signals = store.queue_signals().subscribe_jobs();
                }
            },
            _ = sweep.tick() => sweep_all(&*store, &cfg, &mut errors, &stop).await,
        }
    }
}

async fn workflow_of(store: &dyn Store, job: JobId) -> Option<WorkflowId> {
    match store.get_job(Scope::All, job).await {
        Ok(job) => job.workflow.map(|w| w.workflow_id),
        Err(e) => {
            tracing::warn!(job.id = %job, error = %e, "reading finished job {job} failed: {e}");
            None
        }
    }
}

async fn sweep_all(
    store: &dyn Store,
    cfg: &SchedulerConfig,
    errors: &mut ErrorLog,
    stop: &CancellationToken,
) {
    let ids = match store.running_workflows(cfg.sweep_batch).await {
        Ok(ids) => ids,
        Err(e) => {
            let msg = e.to_string();
            if errors.listing.as_ref() != Some(&msg) {
                tracing::warn!(error = %msg, "listing running workflows failed: {msg}");
                errors.listing = Some(msg);
            }
            return;
        }
    };
    errors.listing = None;
    // Finished workflows (or ones beyond this listing) are forgotten.
    let listed: std::collections::HashSet<WorkflowId> = ids.iter().copied().collect();
    errors.passed.retain(|id, _| listed.contains(id));
    for id in ids {
        if stop.is_cancelled() {
            return;
        }
        if errors
            .passed
            .get(&id)
            .is_some_and(|at| at.elapsed() < cfg.revisit_after)
        {
            continue;
        }
        errors.record(id, advance(store, id).await);
    }
}

//! A workflow run on this machine, without a server or a store: the graph and its states in
//! memory, the same decision rules as the durable scheduler ([`WorkflowPlan::from_nodes`]),
//! ready nodes run concurrently with [`run_job`], follow-up jobs triggered by a job (socket
//! or `/job/triggers.json`) added as they come, outputs merged under each node's group and
//! handed to later nodes in their [`WorkflowContext`]. Serves `voidrunner workflow run` and
//! `voidrunner job run [--follow]`.

mod run;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

pub use run::{LocalEvent, LocalRun, run_workflow};

use super::JobReport;
use crate::definition::JobDefinition;
use crate::link::{NodeInfo, TriggerAnswer, TriggerPayload, WorkflowContext, WorkflowLink};
use crate::path::workspace_relative;
use crate::trigger::{entries, resolve_trigger};
use crate::workflow::{NodeSpec, NodeState, PlanNode, WorkflowPlan, WorkflowStatus, merge_outputs};

/// Who added a node, when a job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggeredBy {
    /// The triggering node.
    pub node: String,
    /// The trigger's operation id.
    pub operation_id: String,
}

/// One node of a local workflow.
#[derive(Debug, Clone)]
pub struct LocalNode {
    /// Name, group, job (env assembled), dependencies, condition.
    pub spec: NodeSpec,
    /// Current state.
    pub state: NodeState,
    /// Why it was skipped.
    pub reason: Option<String>,
    /// Its job id once started.
    pub job_id: Option<String>,
    /// Its outputs once finished.
    pub outputs: BTreeMap<String, String>,
    /// Set for nodes added by a trigger.
    pub triggered_by: Option<TriggeredBy>,
    /// The CI file its job came from (for triggered nodes), to tell how to run it alone.
    pub job_file: Option<String>,
}

#[derive(Debug, Default)]
struct Inner {
    nodes: Vec<LocalNode>,
    outputs: BTreeMap<String, String>,
    operations: BTreeMap<(String, String), Vec<String>>,
    error: Option<String>,
    started: usize,
}

/// A workflow held in memory (see the module docs).
#[derive(Debug)]
pub struct LocalWorkflow {
    id: String,
    vars: BTreeMap<String, String>,
    files: BTreeMap<String, String>,
    inner: Mutex<Inner>,
    /// Woken when a trigger adds nodes, so they are decided at once (as on the server).
    added: tokio::sync::Notify,
}

/// A node the decision pass started: run `job` with `context`.
#[derive(Debug, Clone)]
pub struct Start {
    /// Node name.
    pub node: String,
    /// Job id given to it.
    pub job_id: String,
    /// The job.
    pub job: JobDefinition,
    /// Its workflow facts (outputs of the nodes finished so far).
    pub context: WorkflowContext,
}

fn status_name(s: NodeState) -> &'static str {
    match s {
        NodeState::Pending => "pending",
        NodeState::Running => "running",
        NodeState::Succeeded => "succeeded",
        NodeState::Failed => "failed",
        NodeState::TimedOut => "timed_out",
        NodeState::Cancelled => "cancelled",
        NodeState::Skipped => "skipped",
    }
}

impl LocalWorkflow {
    /// A workflow `id` with `vars`, the CI `files` triggered jobs may name, and its nodes
    /// (from [`crate::workflow::instantiate`], or one job).
    pub fn new(
        id: impl Into<String>,
        vars: BTreeMap<String, String>,
        files: BTreeMap<String, String>,
        specs: Vec<NodeSpec>,
    ) -> Arc<LocalWorkflow> {
        let nodes = specs
            .into_iter()
            .map(|spec| LocalNode {
                spec,
                state: NodeState::Pending,
                reason: None,
                job_id: None,
                outputs: BTreeMap::new(),
                triggered_by: None,
                job_file: None,
            })
            .collect();
        Arc::new(LocalWorkflow {
            id: id.into(),
            vars,
            files,
            inner: Mutex::new(Inner {
                nodes,
                ..Inner::default()
            }),
            added: tokio::sync::Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The workflow's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The text of CI file `path`.
    pub fn file(&self, path: &str) -> Option<String> {
        self.files.get(path).cloned()
    }

    /// The link handed to node `node`'s job.
    pub fn link(self: &Arc<Self>, node: &str) -> Arc<dyn WorkflowLink> {
        Arc::new(NodeLink {
            workflow: self.clone(),
            node: node.to_owned(),
        })
    }

    /// Every node, in the order they were added.
    pub fn nodes(&self) -> Vec<LocalNode> {
        self.lock().nodes.clone()
    }

    /// Outputs of finished nodes as `<group>.<key>`.
    pub fn outputs(&self) -> BTreeMap<String, String> {
        self.lock().outputs.clone()
    }

    /// What failed the workflow outside its nodes (an output conflict).
    pub fn error(&self) -> Option<String> {
        self.lock().error.clone()
    }

    /// The workflow's status (an output conflict fails it).
    pub fn status(&self) -> WorkflowStatus {
        let inner = self.lock();
        let status = plan_of(&inner.nodes).status();
        if inner.error.is_some() && status != WorkflowStatus::Running {
            WorkflowStatus::Failed
        } else {
            status
        }
    }

    /// One decision pass: skips what can no longer run (answered as (node, reason)) and
    /// starts up to `max_starts` ready nodes.
    pub fn decide(&self, max_starts: usize) -> (Vec<Start>, Vec<(String, String)>) {
        let mut inner = self.lock();
        let mut plan = plan_of(&inner.nodes);
        let started = plan.next(max_starts);
        let mut skipped = Vec::new();
        for i in 0..inner.nodes.len() {
            if inner.nodes[i].state == NodeState::Pending && plan.state(i) == NodeState::Skipped {
                let reason = plan.skip_reason(i).unwrap_or("skipped").to_owned();
                inner.nodes[i].state = NodeState::Skipped;
                inner.nodes[i].reason = Some(reason.clone());
                skipped.push((inner.nodes[i].spec.name.clone(), reason));
            }
        }
        let mut starts = Vec::new();
        for i in started {
            inner.started += 1;
            let job_id = format!("{}-{}", self.id, inner.started);
            let outputs = inner.outputs.clone();
            let node = &mut inner.nodes[i];
            node.state = NodeState::Running;
            node.job_id = Some(job_id.clone());
            starts.push(Start {
                node: node.spec.name.clone(),
                job_id,
                job: node.spec.job.clone(),
                context: WorkflowContext {
                    workflow_id: self.id.clone(),
                    node: node.spec.name.clone(),
                    vars: self.vars.clone(),
                    outputs,
                    trusted: true,
                },
            });
        }
        (starts, skipped)
    }

    /// Why each pending node has not started: `waiting for a, b`, `ready`, or
    /// `would be skipped: …` (nothing is changed).
    pub fn pending(&self) -> Vec<(String, String)> {
        let inner = self.lock();
        let mut plan = plan_of(&inner.nodes);
        plan.next(usize::MAX);
        let mut out = Vec::new();
        for (i, node) in inner.nodes.iter().enumerate() {
            if node.state != NodeState::Pending {
                continue;
            }
            let reason = match plan.state(i) {
                NodeState::Running => "ready".to_owned(),
                NodeState::Skipped => format!(
                    "would be skipped: {}",
                    plan.skip_reason(i).unwrap_or("its condition is false")
                ),
                _ => {
                    let waiting: Vec<String> = plan
                        .deps(i)
                        .filter(|&d| !inner.nodes[d].state.is_terminal())
                        .map(|d| inner.nodes[d].spec.name.clone())
                        .collect();
                    format!("waiting for {}", waiting.join(", "))
                }
            };
            out.push((node.spec.name.clone(), reason));
        }
        out
    }

    /// Records how `node`'s job ended and merges its outputs; answers its new state. An
    /// output conflict fails the workflow and skips every pending node.
    pub fn finish(&self, node: &str, report: &JobReport) -> NodeState {
        let state = match report.outcome {
            "succeeded" => NodeState::Succeeded,
            "cancelled" => NodeState::Cancelled,
            _ if report.failures.iter().any(|f| f.phase == "timeout") => NodeState::TimedOut,
            _ => NodeState::Failed,
        };
        let mut inner = self.lock();
        let Some(i) = inner.nodes.iter().position(|n| n.spec.name == node) else {
            return state;
        };
        inner.nodes[i].state = state;
        inner.nodes[i].outputs = report.outputs.clone();
        let group = inner.nodes[i].spec.group.clone();
        let mut merged = inner.outputs.clone();
        match merge_outputs(&mut merged, &group, &report.outputs) {
            Ok(()) => inner.outputs = merged,
            Err(e) => {
                inner.error.get_or_insert(format!("{e} (by {node})"));
                abandon(&mut inner.nodes, "the workflow failed: conflicting outputs");
            }
        }
        state
    }

    /// Skips every pending node with `reason` (cancel, or a run that stops early).
    pub fn abandon(&self, reason: &str) {
        abandon(&mut self.lock().nodes, reason);
    }

    fn trigger(&self, parent: &str, payload: &TriggerPayload) -> Result<TriggerAnswer, String> {
        let mut inner = self.lock();
        let key = (parent.to_owned(), payload.operation_id.clone());
        if let Some(nodes) = inner.operations.get(&key) {
            return Ok(TriggerAnswer {
                nodes: nodes.clone(),
                duplicate: true,
            });
        }
        let parent_job = inner
            .nodes
            .iter()
            .find(|n| n.spec.name == parent)
            .map(|n| n.spec.job.clone())
            .ok_or_else(|| format!("node {parent} is not in this workflow"))?;
        let specs = resolve_trigger(payload, &parent_job, &self.files)?;
        let mut problems = Vec::new();
        for ((at, entry), spec) in entries(payload).iter().zip(&specs) {
            if inner.nodes.iter().any(|n| n.spec.name == spec.name) {
                problems.push(format!(
                    "{at}.job_name: node {:?} already exists in this workflow",
                    entry.job_name
                ));
            }
        }
        if !problems.is_empty() {
            return Err(problems.join("\n"));
        }
        let files: Vec<Option<String>> = entries(payload)
            .iter()
            .map(|(_, e)| self.job_file_of(e))
            .collect();
        let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
        for (spec, job_file) in specs.into_iter().zip(files) {
            inner.nodes.push(LocalNode {
                spec,
                state: NodeState::Pending,
                reason: None,
                job_id: None,
                outputs: BTreeMap::new(),
                triggered_by: Some(TriggeredBy {
                    node: parent.to_owned(),
                    operation_id: payload.operation_id.clone(),
                }),
                job_file,
            });
        }
        inner.operations.insert(key, names.clone());
        self.added.notify_one();
        Ok(TriggerAnswer {
            nodes: names,
            duplicate: false,
        })
    }

    /// The CI file a trigger entry's job comes from (the rules of [`resolve_trigger`]).
    fn job_file_of(&self, entry: &crate::link::TriggerJob) -> Option<String> {
        if entry.job.is_some() {
            return None;
        }
        let candidates = match &entry.job_file {
            Some(f) => {
                let f = workspace_relative(f).ok()?;
                vec![f.clone(), format!("jobs/{f}")]
            }
            None => vec![
                format!("jobs/{}.yaml", entry.job_name),
                format!("jobs/{}.yml", entry.job_name),
            ],
        };
        candidates.into_iter().find(|c| self.files.contains_key(c))
    }

    fn node_info(&self, name: &str) -> Option<NodeInfo> {
        let inner = self.lock();
        inner
            .nodes
            .iter()
            .find(|n| n.spec.name == name)
            .map(|n| NodeInfo {
                name: n.spec.name.clone(),
                status: status_name(n.state).to_owned(),
                job_id: n.job_id.clone(),
                outputs: n.outputs.clone(),
            })
    }
}

fn abandon(nodes: &mut [LocalNode], reason: &str) {
    for n in nodes.iter_mut().filter(|n| n.state == NodeState::Pending) {
        n.state = NodeState::Skipped;
        n.reason = Some(reason.to_owned());
    }
}

/// The decision plan of the current graph (a dependency naming a fan-out group means each
/// of its instances: [`WorkflowPlan::from_nodes`]).
fn plan_of(nodes: &[LocalNode]) -> WorkflowPlan {
    WorkflowPlan::from_nodes(nodes.iter().map(|n| PlanNode {
        name: &n.spec.name,
        group: &n.spec.group,
        depends_on: &n.spec.depends_on,
        condition: n.spec.condition.as_str(),
        state: n.state,
    }))
}

#[derive(Debug)]
struct NodeLink {
    workflow: Arc<LocalWorkflow>,
    node: String,
}

#[async_trait::async_trait]
impl WorkflowLink for NodeLink {
    async fn trigger(&self, payload: TriggerPayload) -> Result<TriggerAnswer, String> {
        self.workflow.trigger(&self.node, &payload)
    }

    async fn node(&self, name: &str) -> Result<Option<NodeInfo>, String> {
        Ok(self.workflow.node_info(name))
    }
}

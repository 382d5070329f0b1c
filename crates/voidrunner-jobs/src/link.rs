//! What a job running as a workflow node knows of, and may ask of, its workflow: the frozen
//! [`WorkflowContext`] (vars, outputs of finished nodes, trust) and the [`WorkflowLink`]
//! through which it triggers follow-up jobs (socket ops `trigger_jobs`, `is_job_running`,
//! `get_job_result`, and `/job/triggers.json` read when the job ends).
//!
//! The trigger payload (the runnerlib shape):
//! `{"type":"trigger_job","operation_id":"…","jobs":[{"job_name":…,"env":{…},
//! "depends_on":[…],"condition":…, "job":{…} | "job_file":"…"}]}`, or `workflows: [{"jobs":
//! […]}]` whose jobs are flattened into the same workflow. A trigger is idempotent by
//! `operation_id`; children inherit the parent's workflow, env and trust, never more.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The workflow facts a node's job reads (written to `/job/workflow.json`; outputs also
/// answer the socket's `get_output` as `<node>.<key>`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowContext {
    /// The workflow's id.
    pub workflow_id: String,
    /// This node's name (`build[1]`).
    pub node: String,
    /// The workflow's variables.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// Outputs of the nodes finished when this one started, as `<node>.<key>`.
    #[serde(default)]
    pub outputs: BTreeMap<String, String>,
    /// Secrets may reach this workflow's jobs (false for fork pull requests).
    #[serde(default)]
    pub trusted: bool,
}

/// A trigger request as sent by a job (socket `trigger_jobs` op or `/job/triggers.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerPayload {
    /// Must be `trigger_job`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Idempotency key: the same id from the same job adds nothing new.
    pub operation_id: String,
    /// Where the request came from (`runnerlib`, `file`, …); informational.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_type: Option<String>,
    /// The jobs to add.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<TriggerJob>,
    /// The multi-workflow form: each entry's `jobs` are added too (to the same workflow).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workflows: Vec<TriggerWorkflow>,
}

/// One entry of the `workflows` form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerWorkflow {
    /// Display name (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The jobs.
    #[serde(default)]
    pub jobs: Vec<TriggerJob>,
}

/// One job to trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerJob {
    /// The new node's name (unique in the workflow).
    pub job_name: String,
    /// Extra environment (over the parent's).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Nodes of the workflow that must finish first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// `all_success` (default), `any_failed` or `always`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// The job, inline …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<serde_json::Value>,
    /// … or a job file of the workflow's CI files; when both are absent,
    /// `jobs/<job_name>.yaml` (or `.yml`) of the CI files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_file: Option<String>,
}

/// What a trigger did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerAnswer {
    /// The nodes added (or, for a replay, added by the first call).
    pub nodes: Vec<String>,
    /// The operation id had been applied before: nothing new was added.
    pub duplicate: bool,
}

/// A node of the workflow as a job sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Name.
    pub name: String,
    /// `pending`, `queued`, `running`, `succeeded`, `failed`, `timed_out`, `cancelled`,
    /// `skipped`.
    pub status: String,
    /// Its job id once started.
    pub job_id: Option<String>,
    /// Its outputs once finished.
    pub outputs: BTreeMap<String, String>,
}

/// The workflow side of a running job: the server's store-backed implementation, or the
/// local runner's in-memory one (`voidrunner job run`, `voidrunner workflow run`).
#[async_trait::async_trait]
pub trait WorkflowLink: Send + Sync + std::fmt::Debug {
    /// Applies a trigger from this job. `Err` explains a refusal (bad payload, unknown job
    /// file, a name taken, asking for more than the parent has); nothing is added then.
    async fn trigger(&self, payload: TriggerPayload) -> Result<TriggerAnswer, String>;
    /// A node of this job's workflow by name; `Ok(None)` when there is none.
    async fn node(&self, name: &str) -> Result<Option<NodeInfo>, String>;
}

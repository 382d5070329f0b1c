//! Wire types of the `workflows` endpoints (`/api/v1/workflows`, see `docs/WORKFLOWS.md`):
//! submission, the workflow with its nodes' states, listings and their query.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::SecretValue;

/// `POST /api/v1/workflows`: a workflow definition with the CI files its `job_file`s name,
/// variable overrides and secret values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWorkflowRequest {
    /// The definition: YAML or JSON text (a string), or the definition as a JSON object
    /// (schema: `GET /api/v1/workflows/schema`). Every problem is reported at once (`422`
    /// with `problems`).
    #[schema(value_type = Object)]
    pub definition: serde_json::Value,
    /// CI files by path relative to the CI root (`jobs/build.yaml` → its text): where
    /// `job_file` nodes (and jobs triggered later) are read from. At most 256 files,
    /// 256 KiB each, 2 MiB in all. Never returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<BTreeMap<String, String>>,
    /// Variables over the definition's `vars` (same name: this value wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vars: Option<BTreeMap<String, String>>,
    /// Write-only secret values, available to the nodes' jobs that declare them
    /// (`secrets: [NAME]`); values 4–4096 bytes, no NUL. Stored encrypted; never echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub secrets: Option<BTreeMap<String, SecretValue>>,
}

/// One node of a workflow with its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WorkflowNodeResponse {
    /// Instance name (`build[1]`).
    pub name: String,
    /// The definition's node name shared by fan-out instances (`build`); outputs are
    /// published under it.
    pub group: String,
    /// `pending`, `queued`, `running`, `succeeded`, `failed`, `timed_out`, `cancelled` or
    /// `skipped` (a started node's status is its job's).
    pub status: String,
    /// Why it was skipped.
    pub reason: Option<String>,
    /// Its current job (`GET /api/v1/jobs/{id}`) once started.
    pub job_id: Option<uuid::Uuid>,
    /// Jobs of earlier runs of this node (re-runs), oldest first.
    pub previous_job_ids: Vec<uuid::Uuid>,
    /// The job that triggered it (follow-up jobs).
    pub parent_job_id: Option<uuid::Uuid>,
    /// Node names that must be finished first.
    pub depends_on: Vec<String>,
    /// `all_success`, `any_failed` or `always`.
    pub condition: String,
    /// When its job was created.
    pub started_at: Option<DateTime<Utc>>,
    /// When its job finished, or when it was skipped.
    pub finished_at: Option<DateTime<Utc>>,
    /// Its job's outputs (empty until it finished).
    pub outputs: BTreeMap<String, String>,
}

/// A workflow as `GET /api/v1/workflows/{id}` and the writes return it. Never contains
/// secret values or the CI files' contents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkflowResponse {
    /// Id.
    pub id: uuid::Uuid,
    /// The definition's name.
    pub name: String,
    /// `running`, `succeeded`, `failed`, `cancelled` or `skipped`.
    pub status: String,
    /// Runs so far (1, then + 1 per re-run).
    pub run: u32,
    /// Secrets may reach its jobs (false for fork pull requests).
    pub trusted: bool,
    /// Variables (the definition's with the overrides applied).
    pub vars: BTreeMap<String, String>,
    /// Merged outputs (`<node>.<key>`), recorded when it finished.
    pub outputs: BTreeMap<String, String>,
    /// Why it failed when no node says so (e.g. conflicting outputs).
    pub error: Option<String>,
    /// Where it came from: `{"kind":"api"}` or `{"kind":"hook", …}`.
    #[schema(value_type = Object)]
    pub origin: serde_json::Value,
    /// The definition as submitted (validated, as JSON).
    #[schema(value_type = Object)]
    pub definition: serde_json::Value,
    /// Paths of its CI files (contents are never returned).
    pub files: Vec<String>,
    /// Submission time.
    pub created_at: DateTime<Utc>,
    /// When it reached its current terminal status.
    pub finished_at: Option<DateTime<Utc>>,
    /// When a cancel was requested (cleared by a re-run).
    pub cancel_requested_at: Option<DateTime<Utc>>,
    /// The nodes in creation order (triggered ones last).
    pub nodes: Vec<WorkflowNodeResponse>,
}

/// A workflow in a listing (no nodes, definition or files: read the workflow for those).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkflowSummaryResponse {
    /// Id.
    pub id: uuid::Uuid,
    /// The definition's name.
    pub name: String,
    /// Status (see [`WorkflowResponse::status`]).
    pub status: String,
    /// Runs so far.
    pub run: u32,
    /// Secrets may reach its jobs.
    pub trusted: bool,
    /// Where it came from.
    #[schema(value_type = Object)]
    pub origin: serde_json::Value,
    /// Why it failed when no node says so.
    pub error: Option<String>,
    /// Submission time.
    pub created_at: DateTime<Utc>,
    /// When it reached its current terminal status.
    pub finished_at: Option<DateTime<Utc>>,
    /// When a cancel was requested.
    pub cancel_requested_at: Option<DateTime<Utc>>,
}

/// `GET /api/v1/workflows`: one page, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkflowListResponse {
    /// The workflows.
    pub items: Vec<WorkflowSummaryResponse>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Query of `GET /api/v1/workflows`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListWorkflowsQuery {
    /// Page size 1–100 (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Only workflows with this status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// A job's place in a workflow (on `GET /api/v1/jobs/{id}` of a node's job).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobWorkflowResponse {
    /// The workflow (`GET /api/v1/workflows/{id}`).
    pub workflow_id: uuid::Uuid,
    /// The node's name (`build[1]`).
    pub node: String,
}

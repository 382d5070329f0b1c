//! CI jobs (`/api/v1/jobs`, see `docs/JOBS.md`): submission, the job with its steps and
//! artifacts, its event log and the query parameters of these endpoints.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{LogEncoding, SecretValue};

/// `POST /api/v1/jobs`: a job definition, the values of its secrets and, for a `tarball`
/// source, the archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateJobRequest {
    /// The definition: YAML or JSON text (a string), or the definition as a JSON object
    /// (schema: `GET /api/v1/jobs/schema`). Every problem is reported at once (`422` with
    /// `problems`).
    #[schema(value_type = Object)]
    pub definition: serde_json::Value,
    /// Write-only values of the secrets the definition names (`secrets: [NAME]`): every
    /// declared name needs one, no other names; values 4–4096 bytes, no NUL. Stored
    /// encrypted, masked in every output; never echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub secrets: Option<BTreeMap<String, SecretValue>>,
    /// The source archive (tar, optionally gzip), standard base64; required exactly when the
    /// definition's `source` or `ci_source` is `{type: tarball}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tarball_base64: Option<String>,
    /// 0–10, default 5; higher runs first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
}

/// One step of a job and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobStepResponse {
    /// Position in the definition, from 0.
    pub idx: u32,
    /// Step name.
    pub name: String,
    /// `pending`, `running`, `succeeded`, `failed`, `timed_out`, `cancelled` or `skipped`.
    pub state: String,
    /// Exit code when the step's process exited.
    pub exit_code: Option<i32>,
    /// Why it ended that way when not a plain exit (limit, signal, skip reason).
    pub detail: Option<String>,
    /// Start time.
    pub started_at: Option<DateTime<Utc>>,
    /// End time.
    pub finished_at: Option<DateTime<Utc>>,
    /// Wall-clock time.
    pub wall_ms: Option<u64>,
    /// CPU time.
    pub cpu_ms: Option<u64>,
    /// Peak memory of the step's process tree, when measured.
    pub peak_memory_bytes: Option<u64>,
}

/// A collected artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobArtifactResponse {
    /// Path relative to `/job` (e.g. `artifacts/app.tgz`).
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Lower-case hex SHA-256 of the bytes.
    pub sha256: String,
    /// Where to download it (`GET`, same credentials), relative to the server.
    pub download_url: String,
}

/// A failure outside the steps (source preparation, a hook phase, the timeout).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobFailureResponse {
    /// `source`, a hook phase, `workspace`, `timeout`, …
    pub phase: String,
    /// Why.
    pub reason: String,
}

/// A job as `GET /api/v1/jobs/{id}` and `POST /api/v1/jobs` return it. Never contains
/// secret values or the uploaded archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobResponse {
    /// Id.
    pub id: uuid::Uuid,
    /// The definition's name.
    pub name: String,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub status: String,
    /// 0–10.
    pub priority: u8,
    /// Claims so far (the current one while running).
    pub attempt: u32,
    /// Claims allowed before the job is dead-lettered.
    pub max_attempts: u32,
    /// A source archive was uploaded with it.
    pub has_tarball: bool,
    /// The validated definition (as JSON).
    #[schema(value_type = Object)]
    pub definition: serde_json::Value,
    /// Steps in definition order.
    pub steps: Vec<JobStepResponse>,
    /// Collected artifacts, by path.
    pub artifacts: Vec<JobArtifactResponse>,
    /// Failures outside the steps, in order.
    pub failures: Vec<JobFailureResponse>,
    /// Outputs recorded by the steps (`set_output`).
    pub outputs: BTreeMap<String, String>,
    /// Request id of the creating call.
    pub request_id: Option<String>,
    /// Infrastructure error of the last attempt (dead letter), if any.
    pub last_error: Option<String>,
    /// Submission time.
    pub created_at: DateTime<Utc>,
    /// Last claim time.
    pub started_at: Option<DateTime<Utc>>,
    /// Terminal time.
    pub finished_at: Option<DateTime<Utc>>,
    /// When a cancel was requested.
    pub cancel_requested_at: Option<DateTime<Utc>>,
    /// The workflow node it runs; `null` for a job submitted on its own.
    #[serde(default)]
    pub workflow: Option<crate::JobWorkflowResponse>,
}

/// A job in a listing (no definition, steps or artifacts: read the job for those).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobSummaryResponse {
    /// Id.
    pub id: uuid::Uuid,
    /// The definition's name.
    pub name: String,
    /// Status (see [`JobResponse::status`]).
    pub status: String,
    /// 0–10.
    pub priority: u8,
    /// Claims so far.
    pub attempt: u32,
    /// Submission time.
    pub created_at: DateTime<Utc>,
    /// Last claim time.
    pub started_at: Option<DateTime<Utc>>,
    /// Terminal time.
    pub finished_at: Option<DateTime<Utc>>,
}

/// `GET /api/v1/jobs`: one page, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobListResponse {
    /// The jobs.
    pub items: Vec<JobSummaryResponse>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Query of `GET /api/v1/jobs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListJobsQuery {
    /// Page size 1–100 (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Only jobs with this status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// One event of a job's log: the `items` of `GET /api/v1/jobs/{id}/events` and the `data`
/// of every event of `GET /api/v1/jobs/{id}/stream`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobEventResponse {
    /// Position in the job's log (also the SSE event id), from 1.
    pub seq: u64,
    /// The attempt that produced it.
    pub attempt: u32,
    /// The step (or `hook:<phase>`) it belongs to; `null` for job-level events.
    pub step: Option<String>,
    /// `stdout`, `stderr`, `status` (JSON: job `{status, attempt, last_error}` or step
    /// `{state, exit_code, detail}`) or `phase` (the phase name).
    pub stream: String,
    /// The bytes, as text or base64 (see `encoding`).
    pub data: String,
    /// How `data` is encoded.
    pub encoding: LogEncoding,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
}

/// `GET /api/v1/jobs/{id}/events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobEventListResponse {
    /// Events with `seq > after`, in order (filtered by `step` when given).
    pub items: Vec<JobEventResponse>,
    /// The highest seq read: pass it as `after` for the next page (it may be past the last
    /// item when a `step` filter skipped events). Equal to `after` when nothing was read.
    pub next_after: u64,
}

/// Query of `GET /api/v1/jobs/{id}/events`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobEventsQuery {
    /// Only events with a larger seq (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
    /// Only the events of this step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Events read, 1–1000 (default 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// Query of `GET /api/v1/jobs/{id}/stream`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobStreamQuery {
    /// Resume after this event id (the `Last-Event-ID` header wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
    /// Only the events of this step (job-level status events are always sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
}

//! Tasks: create, update, read and list.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use voidrunner_domain::{ExecutionStatus, PartialLimits, ResourceLimits, Task};

use chrono::{DateTime, Utc};

/// Status of an execution (here: of a task's most recent one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatusDto {
    /// Waiting in the queue.
    Queued,
    /// Running on a worker.
    Running,
    /// Exited with code 0.
    Completed,
    /// Failed (non-zero exit, limit hit, …).
    Failed,
    /// Wall-clock timeout.
    Timeout,
    /// Cancelled by a user.
    Cancelled,
}

impl From<ExecutionStatus> for ExecutionStatusDto {
    fn from(s: ExecutionStatus) -> Self {
        match s {
            ExecutionStatus::Queued => Self::Queued,
            ExecutionStatus::Running => Self::Running,
            ExecutionStatus::Completed => Self::Completed,
            ExecutionStatus::Failed => Self::Failed,
            ExecutionStatus::Timeout => Self::Timeout,
            ExecutionStatus::Cancelled => Self::Cancelled,
        }
    }
}

impl ExecutionStatusDto {
    /// The wire spelling (also used in the `status` query filter).
    pub fn as_str(&self) -> &'static str {
        ExecutionStatus::from(*self).as_str()
    }
}

impl From<ExecutionStatusDto> for ExecutionStatus {
    fn from(s: ExecutionStatusDto) -> Self {
        match s {
            ExecutionStatusDto::Queued => Self::Queued,
            ExecutionStatusDto::Running => Self::Running,
            ExecutionStatusDto::Completed => Self::Completed,
            ExecutionStatusDto::Failed => Self::Failed,
            ExecutionStatusDto::Timeout => Self::Timeout,
            ExecutionStatusDto::Cancelled => Self::Cancelled,
        }
    }
}

/// Resource limits a client asks for; missing fields take the server defaults, and every
/// value must be within the server maxima.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsRequest {
    /// Wall-clock timeout in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u32>,
    /// Memory limit in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u32>,
    /// CPU bandwidth in cores (e.g. 0.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_cores: Option<f64>,
    /// Maximum live processes/threads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_processes: Option<u32>,
    /// Maximum stdout+stderr bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_bytes: Option<u64>,
}

impl From<LimitsRequest> for PartialLimits {
    fn from(l: LimitsRequest) -> Self {
        Self {
            timeout_secs: l.timeout_secs,
            memory_mb: l.memory_mb,
            cpu_cores: l.cpu_cores,
            max_processes: l.max_processes,
            max_output_bytes: l.max_output_bytes,
        }
    }
}

/// Fully resolved limits of a task.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LimitsResponse {
    /// Wall-clock timeout in seconds.
    pub timeout_secs: u32,
    /// Memory limit in MiB.
    pub memory_mb: u32,
    /// CPU bandwidth in cores.
    pub cpu_cores: f64,
    /// Maximum live processes/threads.
    pub max_processes: u32,
    /// Maximum stdout+stderr bytes.
    pub max_output_bytes: u64,
}

impl From<ResourceLimits> for LimitsResponse {
    fn from(l: ResourceLimits) -> Self {
        Self {
            timeout_secs: l.timeout_secs,
            memory_mb: l.memory_mb,
            cpu_cores: l.cpu_cores,
            max_processes: l.max_processes,
            max_output_bytes: l.max_output_bytes,
        }
    }
}

/// `POST /api/v1/tasks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTaskRequest {
    /// 1–255 characters.
    pub name: String,
    /// Up to 1000 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// An enabled language, e.g. `python`, `javascript`, `bash`.
    pub language: String,
    /// Source code (size capped by the server, 1 MiB by default).
    pub code: String,
    /// Standard input for every run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    /// Environment variables; names match `^[A-Za-z_][A-Za-z0-9_]*$`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    /// Resource limits; missing fields take the defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitsRequest>,
    /// 0–10, default 5; higher runs first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    /// Labels of `[A-Za-z0-9_.:-]`, used by the `tag` filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Free-form JSON object owned by the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// Write-only secrets (name → value): stored encrypted, injected into each run as env
    /// variables, and replaced by `***` in every output stored or streamed. Names like `env`;
    /// values 4–4096 bytes; at most 32. Responses show only `secret_names`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub secrets: Option<BTreeMap<String, SecretValue>>,
}

/// A secret value on its way in: serialized as a plain string, never printed by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretValue(pub String);

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

impl From<&str> for SecretValue {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

/// `PUT /api/v1/tasks/{id}`: a partial update. Absent fields stay unchanged; `description`
/// and `stdin` may be `null` to clear them; `env`, `tags`, `metadata` and `limits` replace the
/// whole value (missing limit fields take the defaults).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTaskRequest {
    /// New name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New description; `null` clears it.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, nullable)]
    pub description: Option<Option<String>>,
    /// New language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// New code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// New stdin; `null` clears it.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, nullable)]
    pub stdin: Option<Option<String>>,
    /// New environment (replaces the map).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    /// New limits (replace the limits; missing fields take the defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitsRequest>,
    /// New priority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    /// New tags (replaces the list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// New metadata object (replaces it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// Secrets to change: a string sets or replaces that secret, `null` removes it; secrets
    /// not named are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<BTreeMap<String, Option<String>>>)]
    pub secrets: Option<BTreeMap<String, Option<SecretValue>>>,
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A task with everything needed to run it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskResponse {
    /// Task id.
    pub id: Uuid,
    /// Owner's account id.
    pub owner_id: Uuid,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Language.
    pub language: String,
    /// Source code.
    pub code: String,
    /// Standard input.
    pub stdin: Option<String>,
    /// Environment variables.
    pub env: BTreeMap<String, String>,
    /// Resolved limits.
    pub limits: LimitsResponse,
    /// Priority 0–10.
    pub priority: u8,
    /// Tags.
    pub tags: Vec<String>,
    /// Client metadata object.
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    /// Status of the most recent execution, if any.
    pub last_execution_status: Option<ExecutionStatusDto>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last update time.
    pub updated_at: DateTime<Utc>,
    /// Names of the task's secrets, sorted; the values are write-only.
    #[serde(default)]
    pub secret_names: Vec<String>,
}

impl From<Task> for TaskResponse {
    fn from(t: Task) -> Self {
        Self {
            id: t.id.as_uuid(),
            owner_id: t.owner_id.as_uuid(),
            name: t.name,
            description: t.description,
            language: t.language,
            code: t.code,
            stdin: t.stdin,
            env: t.env,
            limits: t.limits.into(),
            priority: t.priority,
            tags: t.tags,
            metadata: t.metadata,
            last_execution_status: t.last_execution_status.map(Into::into),
            created_at: t.created_at,
            updated_at: t.updated_at,
            secret_names: Vec::new(),
        }
    }
}

impl TaskResponse {
    /// Sets the names of the task's secrets (the values are never returned).
    pub fn with_secret_names(mut self, names: Vec<String>) -> Self {
        self.secret_names = names;
        self
    }
}

/// A task in a listing: without code, stdin and env, which can be large or sensitive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskSummaryResponse {
    /// Task id.
    pub id: Uuid,
    /// Owner's account id.
    pub owner_id: Uuid,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Language.
    pub language: String,
    /// Priority 0–10.
    pub priority: u8,
    /// Tags.
    pub tags: Vec<String>,
    /// Status of the most recent execution, if any.
    pub last_execution_status: Option<ExecutionStatusDto>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last update time.
    pub updated_at: DateTime<Utc>,
}

impl From<Task> for TaskSummaryResponse {
    fn from(t: Task) -> Self {
        Self {
            id: t.id.as_uuid(),
            owner_id: t.owner_id.as_uuid(),
            name: t.name,
            description: t.description,
            language: t.language,
            priority: t.priority,
            tags: t.tags,
            last_execution_status: t.last_execution_status.map(Into::into),
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// `GET /api/v1/tasks`: one page, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskListResponse {
    /// At most `limit` tasks.
    pub items: Vec<TaskSummaryResponse>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Query parameters of `GET /api/v1/tasks`. The server parses them itself so that each bad
/// value is a 400 naming its parameter; clients serialize this struct.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListTasksQuery {
    /// Page size, 1–100 (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Opaque cursor from a previous page's `next_cursor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Status of the task's last execution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ExecutionStatusDto>,
    /// Exact language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Tasks carrying this tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Case-insensitive text search in name and description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// Only tasks created strictly before this RFC 3339 time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_before: Option<DateTime<Utc>>,
    /// Only tasks created strictly after this RFC 3339 time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_after: Option<DateTime<Utc>>,
    /// Admins only: list every user's tasks (403 for others).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_distinguishes_absent_from_null() {
        let absent: UpdateTaskRequest = serde_json::from_str("{}").expect("absent");
        assert_eq!(absent.description, None);
        let null: UpdateTaskRequest =
            serde_json::from_str(r#"{"description":null}"#).expect("null");
        assert_eq!(null.description, Some(None));
        let json = serde_json::to_string(&null).expect("serialize");
        assert_eq!(
            json, r#"{"description":null}"#,
            "a client can send the clear"
        );
        assert!(serde_json::from_str::<UpdateTaskRequest>(r#"{"x":1}"#).is_err());
    }

    #[test]
    fn list_query_serializes_only_given_filters() {
        let q = ListTasksQuery {
            limit: Some(5),
            status: Some(ExecutionStatusDto::Failed),
            ..Default::default()
        };
        let json = serde_json::to_value(&q).expect("serialize");
        assert_eq!(json, serde_json::json!({"limit": 5, "status": "failed"}));
    }
}

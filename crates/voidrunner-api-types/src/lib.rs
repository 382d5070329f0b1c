//! Wire types of the VoidRunner HTTP API, shared by the server (`voidrunner-api`), the client
//! (`voidrunner-client`) and generated OpenAPI.
//!
//! These are deliberately separate from the domain types and the database rows: the wire
//! format is a public contract that changes only with the API version, while the domain and
//! storage may evolve freely. Requests reject unknown fields; timestamps are RFC 3339 UTC.

mod auth;
mod error;
mod executions;
mod jobs;
mod languages;
mod logs;
mod repositories;
mod stats;
mod system;
mod tasks;
mod webhooks;
mod workflows;
mod ws;

pub use auth::{
    ApiKeyListResponse, ApiKeyResponse, CreateApiKeyRequest, CreatedApiKeyResponse, LoginRequest,
    LogoutRequest, RefreshRequest, RegisterRequest, RoleDto, TokenResponse, UserResponse,
};
pub use error::{ErrorBody, ErrorCode, ErrorDetail, ProblemDto};
pub use executions::{
    Audience, ExecuteTaskRequest, ExecutionListResponse, ExecutionResponse,
    ExecutionSummaryResponse, ListExecutionsQuery, RunRequest, VerdictDto, WaitQuery,
};
pub use jobs::{
    CreateJobRequest, JobArtifactResponse, JobEventListResponse, JobEventResponse, JobEventsQuery,
    JobFailureResponse, JobListResponse, JobResponse, JobStepResponse, JobStreamQuery,
    JobSummaryResponse, ListJobsQuery,
};
pub use languages::{LanguageListResponse, LanguageResponse};
pub use logs::{LogChunkListResponse, LogChunkResponse, LogEncoding, LogsQuery, StreamQuery};
pub use stats::{
    ExecutionMetricsResponse, PercentilesResponse, QueueNowResponse, ResourceSampleResponse,
    SamplingResponse, StatsQuery, StatsResponse, StatusCountsResponse, ThroughputPointResponse,
    ThroughputResponse,
};
pub use system::{HealthResponse, ReadyResponse};
pub use tasks::{
    CreateTaskRequest, ExecutionStatusDto, LimitsRequest, LimitsResponse, ListTasksQuery,
    SecretValue, TaskListResponse, TaskResponse, TaskSummaryResponse, UpdateTaskRequest,
};

pub use repositories::*;
pub use workflows::*;
pub use ws::{WsClientMessage, WsServerMessage};

pub use webhooks::{SigningSecretResponse, WebhookDeliveryResponse};

/// Timestamps on the wire: UTC, serialized as RFC 3339.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

//! Wire types of the `repositories` endpoints (`/api/v1/repositories`) and of the git hook
//! (`POST /api/v1/hooks/{source}`); see `docs/GIT.md`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use chrono::{DateTime, Utc};

use crate::SecretValue;

/// `POST /api/v1/repositories`: a git repository whose events start workflows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRepositoryRequest {
    /// `github` or `gitlab`.
    pub provider: String,
    /// `owner/name` as the git host writes it in payloads (GitLab: `path_with_namespace`).
    pub full_name: String,
    /// Where the server clones from (https or ssh; `file` only where the operator allows
    /// it). Events never choose the URL.
    pub clone_url: String,
    /// The webhook secret (GitHub: the HMAC key of `X-Hub-Signature-256`; GitLab: the
    /// `X-Gitlab-Token`), 16–256 bytes. Write-only.
    #[schema(value_type = String)]
    pub webhook_secret: SecretValue,
    /// The CI directory, relative to the repository root (default `.voidrunner`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_dir: Option<String>,
    /// Whether pull requests from forks get the secrets (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fork_secrets: Option<bool>,
    /// Job secrets (name → value) given to the workflows of trusted events. Write-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub secrets: Option<BTreeMap<String, SecretValue>>,
    /// Report commit statuses back to the git host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reporting: Option<StatusReportingRequest>,
}

/// Commit-status reporting settings (GitHub-style `POST {api_url}/repos/{full_name}/statuses/{sha}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusReportingRequest {
    /// API base URL, e.g. `https://api.github.com`.
    pub api_url: String,
    /// Token sent as `Authorization: Bearer`. Write-only.
    #[schema(value_type = String)]
    pub token: SecretValue,
}

/// A registered repository (secrets are never shown, only their names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RepositoryResponse {
    /// Id.
    pub id: uuid::Uuid,
    /// `github` or `gitlab`.
    pub provider: String,
    /// `owner/name`.
    pub full_name: String,
    /// Clone URL.
    pub clone_url: String,
    /// CI directory.
    pub ci_dir: String,
    /// Fork pull requests get the secrets.
    pub fork_secrets: bool,
    /// Names of the job secrets.
    pub secret_names: Vec<String>,
    /// The status reporting API URL, when reporting is on.
    pub status_api_url: Option<String>,
    /// Where the git host posts events (`/api/v1/hooks/<provider>`).
    pub hook_path: String,
    /// Registration time.
    pub created_at: DateTime<Utc>,
}

/// `GET /api/v1/repositories`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RepositoryListResponse {
    /// The caller's repositories, by `full_name`.
    pub items: Vec<RepositoryResponse>,
}

/// `PATCH /api/v1/repositories/{id}/secrets`: rotate the webhook secret and/or change job
/// secrets (`null` removes one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRepositorySecretsRequest {
    /// New webhook secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub webhook_secret: Option<SecretValue>,
    /// Job secrets to set (value) or remove (`null`).
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, Option<String>>)]
    pub secrets: BTreeMap<String, Option<SecretValue>>,
}

/// A recorded hook delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryResponse {
    /// `github` or `gitlab`.
    pub provider: String,
    /// The git host's delivery id.
    pub delivery_id: String,
    /// Normalized event (`push`, `tag_created`, `pull_request_opened`, …).
    pub event: String,
    /// What was decided: ref, shas, matched workflows, skipped ones with the reason.
    #[schema(value_type = Object)]
    pub summary: serde_json::Value,
    /// Workflows it started.
    pub workflow_ids: Vec<uuid::Uuid>,
    /// Receive time.
    pub received_at: DateTime<Utc>,
}

/// `GET /api/v1/repositories/{id}/deliveries`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryListResponse {
    /// Newest first.
    pub items: Vec<DeliveryResponse>,
}

/// The answer to a git host's event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HookResponse {
    /// The delivery id.
    pub delivery_id: String,
    /// Normalized event, or `null` for events that start nothing (`ping`, deleted refs,
    /// unsupported events).
    pub event: Option<String>,
    /// True when this delivery was already handled: `workflow_ids` are the first one's.
    pub duplicate: bool,
    /// Workflows started.
    pub workflow_ids: Vec<uuid::Uuid>,
    /// What was decided (see [`DeliveryResponse::summary`]).
    #[schema(value_type = Object)]
    pub summary: serde_json::Value,
}

//! Git repositories registered for events (`POST /api/v1/hooks/{source}`) and the record of
//! deliveries, which makes a delivery start its workflows at most once.
//!
//! Protocol (every backend):
//! - A repository is unique by `(provider, full_name)` (the hook finds it from the payload).
//!   Its webhook secret and its job secrets are sealed by the API (bound to
//!   `"<repository_id>/webhook"` and `"<repository_id>/<NAME>"`) and never returned by a
//!   listing.
//! - [`RepositoryStore::record_delivery`] inserts the delivery row AND creates every
//!   workflow it started (exactly what [`crate::WorkflowStore::create_workflow`] inserts) in
//!   ONE transaction. A second delivery with the same `(provider, delivery_id)`, or with the
//!   same `(provider, body_sha256)` (a replayed body under a new id), writes nothing and
//!   answers the first one's workflow ids, even when both arrive at once.

use std::collections::BTreeMap;

use voidrunner_domain::{Timestamp, UserId};

use crate::{NewWorkflow, NewWorkflowNode, Scope, StoreResult, WorkflowId};

pub use voidrunner_domain::RepositoryId;

/// A repository to register.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRepository {
    /// New id.
    pub id: RepositoryId,
    /// Owner: the workflows its events start belong to this user.
    pub owner_id: UserId,
    /// `github` or `gitlab`.
    pub provider: String,
    /// `owner/name` as the git host names it in payloads (GitLab: `path_with_namespace`).
    pub full_name: String,
    /// Where the server clones it from (never taken from a payload).
    pub clone_url: String,
    /// The CI directory inside the repository (e.g. `.voidrunner`).
    pub ci_dir: String,
    /// Whether pull requests from forks get the repository's secrets (default false).
    pub fork_secrets: bool,
    /// Commit-status reporting settings (`{"api_url", "token_secret"}`), or `null` for none;
    /// opaque to the store.
    pub status_reporting: serde_json::Value,
    /// Creation time.
    pub created_at: Timestamp,
}

/// A registered repository (without its sealed values).
#[derive(Debug, Clone, PartialEq)]
pub struct Repository {
    /// Id.
    pub id: RepositoryId,
    /// Owner.
    pub owner_id: UserId,
    /// `github` or `gitlab`.
    pub provider: String,
    /// `owner/name`.
    pub full_name: String,
    /// Clone URL.
    pub clone_url: String,
    /// CI directory.
    pub ci_dir: String,
    /// Fork pull requests get secrets.
    pub fork_secrets: bool,
    /// Commit-status reporting settings or `null`.
    pub status_reporting: serde_json::Value,
    /// Names of its job secrets.
    pub secret_names: Vec<String>,
    /// Creation time.
    pub created_at: Timestamp,
}

/// A delivery to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDelivery {
    /// `github` or `gitlab`.
    pub provider: String,
    /// The git host's delivery id (`X-GitHub-Delivery`, `X-Gitlab-Event-UUID`).
    pub delivery_id: String,
    /// Lower-case hex SHA-256 of the raw body. The delivery id header is not covered by the
    /// signature, so the same signed body under another id is a replay: a duplicate too.
    pub body_sha256: String,
    /// The repository it was for.
    pub repository_id: RepositoryId,
    /// Normalized event name (`push`, `tag_created`, `pull_request_opened`, …).
    pub event: String,
    /// What was decided, for display (`{"ref", "sha", "matched": [...], "skipped": {...}}`).
    pub summary: serde_json::Value,
    /// Receive time.
    pub received_at: Timestamp,
}

/// A recorded delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Provider.
    pub provider: String,
    /// Delivery id.
    pub delivery_id: String,
    /// Repository.
    pub repository_id: RepositoryId,
    /// Event.
    pub event: String,
    /// Summary.
    pub summary: serde_json::Value,
    /// Workflows it started.
    pub workflow_ids: Vec<WorkflowId>,
    /// Receive time.
    pub received_at: Timestamp,
}

/// `record_delivery` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Recorded; these workflows were created.
    Created(Vec<WorkflowId>),
    /// Already recorded: nothing written; the first delivery's workflows.
    Duplicate(Vec<WorkflowId>),
}

/// One workflow a delivery starts, with its nodes and sealed secrets.
#[derive(Debug, Clone)]
pub struct DeliveryWorkflow {
    /// The workflow.
    pub workflow: NewWorkflow,
    /// Its nodes.
    pub nodes: Vec<NewWorkflowNode>,
    /// Its sealed secrets (bound to `"<workflow_id>/<NAME>"`); empty for untrusted ones.
    pub sealed_secrets: BTreeMap<String, Vec<u8>>,
}

/// Registered repositories and their deliveries.
#[async_trait::async_trait]
pub trait RepositoryStore {
    /// Registers a repository with its sealed webhook secret and sealed job secrets.
    /// `Conflict` when `(provider, full_name)` is taken or the owner is unknown.
    async fn create_repository(
        &self,
        new: NewRepository,
        sealed_webhook_secret: Vec<u8>,
        sealed_secrets: BTreeMap<String, Vec<u8>>,
    ) -> StoreResult<Repository>;
    /// A repository within scope; `NotFound` otherwise.
    async fn get_repository(&self, scope: Scope, id: RepositoryId) -> StoreResult<Repository>;
    /// Repositories within scope, by `full_name`.
    async fn list_repositories(&self, scope: Scope) -> StoreResult<Vec<Repository>>;
    /// Deletes a repository (its deliveries go with it; workflows stay). `NotFound` out of
    /// scope.
    async fn delete_repository(&self, scope: Scope, id: RepositoryId) -> StoreResult<()>;
    /// Applies a secrets patch (name → sealed value, `None` removes) and, when given, a new
    /// sealed webhook secret. `NotFound` out of scope. Returns the row.
    async fn update_repository_secrets(
        &self,
        scope: Scope,
        id: RepositoryId,
        webhook_secret: Option<Vec<u8>>,
        secrets: BTreeMap<String, Option<Vec<u8>>>,
    ) -> StoreResult<Repository>;
    /// The repository a hook names, with its sealed webhook secret (unscoped: the hook is
    /// not a user). `Ok(None)` when unknown.
    async fn find_repository(
        &self,
        provider: &str,
        full_name: &str,
    ) -> StoreResult<Option<(Repository, Vec<u8>)>>;
    /// The sealed job secrets. For the hook handler, never for an API response.
    async fn repository_secrets(&self, id: RepositoryId) -> StoreResult<BTreeMap<String, Vec<u8>>>;
    /// Records a delivery and creates its workflows at most once (see the module docs).
    async fn record_delivery(
        &self,
        delivery: NewDelivery,
        workflows: Vec<DeliveryWorkflow>,
    ) -> StoreResult<DeliveryOutcome>;
    /// The repository's deliveries, newest first, at most `limit`; `NotFound` out of scope.
    async fn list_deliveries(
        &self,
        scope: Scope,
        id: RepositoryId,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>>;
}

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
//! - Commit statuses (`status_reporting`): [`RepositoryStore::record_delivery_with_statuses`]
//!   records one [`NewCommitStatus`] per started workflow in that same transaction. The
//!   stored workflow state is the truth: a row is due when the workflow's `(status, run)`
//!   differs from the last one posted (and from the one given up on), its `next_attempt_at`
//!   has passed and no live claim holds it. [`RepositoryStore::claim_status_reports`] claims
//!   due rows compare-and-set (a claim token and `claimed_until`), so two nodes never post
//!   the same transition at once; [`RepositoryStore::finish_status_report`] records the
//!   outcome only under that claim.

use std::collections::BTreeMap;

use uuid::Uuid;
use voidrunner_domain::{Timestamp, UserId};

use crate::{NewWorkflow, NewWorkflowNode, Scope, StoreResult, WorkflowId, WorkflowState};

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

/// A commit status to report for one workflow a delivery starts (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCommitStatus {
    /// The workflow whose state is reported (one row per workflow).
    pub workflow_id: WorkflowId,
    /// The repository whose `status_reporting` settings (URL, sealed token) post it.
    pub repository_id: RepositoryId,
    /// The commit the status is for (the event's code commit).
    pub sha: String,
    /// The context (GitHub) or name (GitLab) shown on the commit, e.g. `voidrunner/ci`.
    pub context: String,
}

/// A claimed commit status: the transition to post now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    /// The workflow (the row's key).
    pub workflow_id: WorkflowId,
    /// Its repository.
    pub repository_id: RepositoryId,
    /// Commit.
    pub sha: String,
    /// Context / name.
    pub context: String,
    /// The workflow's state when claimed: what to post.
    pub state: WorkflowState,
    /// The workflow's run when claimed (a re-run is a new transition).
    pub run: u32,
    /// Failed attempts so far for the current transition.
    pub attempts: u32,
    /// The claim token: [`RepositoryStore::finish_status_report`] needs it.
    pub claim: Uuid,
}

/// How posting a claimed status went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusReportOutcome {
    /// The host accepted it: the transition is posted (attempts restart at 0).
    Posted {
        /// The state posted (the claimed one).
        state: WorkflowState,
        /// The run posted.
        run: u32,
    },
    /// It failed for now: try again at `at` (`attempts` + 1, the error kept).
    Retry {
        /// Why, for operators.
        error: String,
        /// Not claimed again before this time (the caller's backoff).
        at: Timestamp,
    },
    /// Give this transition up (too many attempts, or the host refused it for good): the
    /// row is kept with the error and the transition in `gave_up`; a later transition of
    /// the workflow is tried afresh.
    GiveUp {
        /// The state given up on (the claimed one).
        state: WorkflowState,
        /// Its run.
        run: u32,
        /// Why.
        error: String,
    },
}

/// A stored commit status (operators, tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitStatus {
    /// The workflow.
    pub workflow_id: WorkflowId,
    /// Its repository.
    pub repository_id: RepositoryId,
    /// Commit.
    pub sha: String,
    /// Context / name.
    pub context: String,
    /// Last state successfully posted, with its run; `None` before the first.
    pub posted: Option<(WorkflowState, u32)>,
    /// The transition given up on (too many failures or refused by the host), if any.
    pub gave_up: Option<(WorkflowState, u32)>,
    /// Failed attempts for the current transition.
    pub attempts: u32,
    /// Not claimed before this time.
    pub next_attempt_at: Timestamp,
    /// The last failure.
    pub last_error: Option<String>,
    /// The node holding the claim (may have expired).
    pub claimed_by: Option<String>,
    /// The claim's expiry.
    pub claimed_until: Option<Timestamp>,
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
    /// [`Self::record_delivery`], plus the commit statuses to report for its workflows, in
    /// the same transaction (nothing for a duplicate). Due at once.
    async fn record_delivery_with_statuses(
        &self,
        delivery: NewDelivery,
        workflows: Vec<DeliveryWorkflow>,
        statuses: Vec<NewCommitStatus>,
    ) -> StoreResult<DeliveryOutcome>;
    /// Claims up to `limit` due statuses for `node` until `now + lease` (see the module
    /// docs), oldest `next_attempt_at` first. Each is claimed by one caller only.
    async fn claim_status_reports(
        &self,
        node: &str,
        now: Timestamp,
        lease: std::time::Duration,
        limit: u32,
    ) -> StoreResult<Vec<StatusReport>>;
    /// Records how posting went and releases the claim; `Ok(false)` (nothing written) when
    /// the claim is no longer held.
    async fn finish_status_report(
        &self,
        workflow_id: WorkflowId,
        claim: Uuid,
        outcome: StatusReportOutcome,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// The stored status of a workflow; `Ok(None)` when none is reported.
    async fn get_commit_status(&self, workflow_id: WorkflowId)
    -> StoreResult<Option<CommitStatus>>;
}

//! Tasks, with access scopes and cursor pagination.

use voidrunner_domain::{ExecutionStatus, NewTask, Task, TaskId, TaskPatch, Timestamp, UserId};

use crate::StoreResult;

/// Whose rows a call may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Only rows owned by this user.
    Owner(UserId),
    /// Every row (admins).
    All,
}

/// Filters for listing tasks; all present filters must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFilter {
    /// Exact language name.
    pub language: Option<String>,
    /// Status of the task's last execution.
    pub status: Option<ExecutionStatus>,
    /// Tasks carrying this tag.
    pub tag: Option<String>,
    /// Case-insensitive substring of name or description (`%` and `_` are literal).
    pub search: Option<String>,
    /// Created strictly before.
    pub created_before: Option<Timestamp>,
    /// Created strictly after.
    pub created_after: Option<Timestamp>,
}

/// Position after which the next page starts. Order is newest first:
/// `(created_at DESC, id DESC)`, so rows inserted while paging land before the first page
/// and never cause duplicates or gaps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskCursor {
    /// `created_at` of the last row of the previous page.
    pub created_at: Timestamp,
    /// `id` of the last row of the previous page.
    pub id: TaskId,
}

/// Which page to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Start after this row; `None` for the first page.
    pub after: Option<TaskCursor>,
    /// 1–100 (validated by the caller).
    pub limit: u32,
}

/// One page of results.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The rows, at most `limit`.
    pub items: Vec<T>,
    /// Cursor for the next page; `None` when this is the last one.
    pub next: Option<TaskCursor>,
}

/// Task CRUD.
#[async_trait::async_trait]
pub trait TaskStore {
    /// Inserts a validated task.
    async fn create_task(&self, task: NewTask) -> StoreResult<Task>;
    /// Gets a live task within scope; `NotFound` otherwise.
    async fn get_task(&self, scope: Scope, id: TaskId) -> StoreResult<Task>;
    /// Applies a validated patch; `NotFound` when missing or out of scope.
    async fn update_task(&self, scope: Scope, id: TaskId, patch: TaskPatch) -> StoreResult<Task>;
    /// Replaces the whole set of a live task's secrets (name → value sealed by the caller;
    /// the store never sees a plaintext). `NotFound` when missing or out of scope. Executions
    /// enqueued afterwards get a copy; earlier ones keep theirs.
    async fn set_task_secrets(
        &self,
        scope: Scope,
        id: TaskId,
        sealed: std::collections::BTreeMap<String, Vec<u8>>,
    ) -> StoreResult<()>;
    /// Changes some of a live task's secrets in one transaction: `set` adds or replaces
    /// (name → sealed value), `remove` deletes (unknown names are ignored); other secrets
    /// are kept. Answers the resulting names, sorted. `NotFound` when missing or out of scope.
    async fn patch_task_secrets(
        &self,
        scope: Scope,
        id: TaskId,
        set: std::collections::BTreeMap<String, Vec<u8>>,
        remove: &[String],
    ) -> StoreResult<Vec<String>>;
    /// The names of a live task's secrets, sorted (values are write-only through the API).
    async fn task_secret_names(&self, scope: Scope, id: TaskId) -> StoreResult<Vec<String>>;
    /// Soft-deletes; `NotFound` when missing, already deleted or out of scope.
    async fn delete_task(&self, scope: Scope, id: TaskId, now: Timestamp) -> StoreResult<()>;
    /// Lists live tasks within scope, newest first.
    async fn list_tasks(
        &self,
        scope: Scope,
        filter: &TaskFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Task>>;
}

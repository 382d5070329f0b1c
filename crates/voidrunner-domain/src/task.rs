//! Tasks: stored code plus everything needed to run it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{ExecutionStatus, ResourceLimits, TaskId, Timestamp, UserId};

/// A task as stored. Soft-deleted tasks are never returned by the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Task id (UUIDv7).
    pub id: TaskId,
    /// The user who owns it; only they (and admins) can see it.
    pub owner_id: UserId,
    /// 1–255 characters.
    pub name: String,
    /// Up to 1000 characters.
    pub description: Option<String>,
    /// A language registry name, e.g. `python`.
    pub language: String,
    /// Source code (size capped by configuration, 1 MiB by default).
    pub code: String,
    /// Standard input given to every run.
    pub stdin: Option<String>,
    /// Environment variables given to every run (validated names).
    pub env: BTreeMap<String, String>,
    /// Fully resolved limits.
    pub limits: ResourceLimits,
    /// 0–10, higher runs first.
    pub priority: u8,
    /// Free-form labels used for filtering.
    pub tags: Vec<String>,
    /// Free-form JSON object owned by the client.
    pub metadata: serde_json::Value,
    /// Status of the most recent execution, denormalized for list filters.
    pub last_execution_status: Option<ExecutionStatus>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last update time.
    pub updated_at: Timestamp,
}

/// A validated task to insert. The store assigns nothing: id and timestamps are set here so
/// every backend stores exactly the same values.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTask {
    /// See [`Task`].
    pub id: TaskId,
    /// See [`Task`].
    pub owner_id: UserId,
    /// See [`Task`].
    pub name: String,
    /// See [`Task`].
    pub description: Option<String>,
    /// See [`Task`].
    pub language: String,
    /// See [`Task`].
    pub code: String,
    /// See [`Task`].
    pub stdin: Option<String>,
    /// See [`Task`].
    pub env: BTreeMap<String, String>,
    /// See [`Task`].
    pub limits: ResourceLimits,
    /// See [`Task`].
    pub priority: u8,
    /// See [`Task`].
    pub tags: Vec<String>,
    /// See [`Task`].
    pub metadata: serde_json::Value,
    /// See [`Task`].
    pub created_at: Timestamp,
}

/// A validated partial update; `None` leaves a field unchanged. For optional fields,
/// `Some(None)` clears them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskPatch {
    /// New name.
    pub name: Option<String>,
    /// New description (`Some(None)` clears it).
    pub description: Option<Option<String>>,
    /// New language.
    pub language: Option<String>,
    /// New code.
    pub code: Option<String>,
    /// New stdin (`Some(None)` clears it).
    pub stdin: Option<Option<String>>,
    /// New environment (replaces the whole map).
    pub env: Option<BTreeMap<String, String>>,
    /// New limits (already resolved against the bounds).
    pub limits: Option<ResourceLimits>,
    /// New priority.
    pub priority: Option<u8>,
    /// New tags (replaces the list).
    pub tags: Option<Vec<String>>,
    /// New metadata (replaces the object).
    pub metadata: Option<serde_json::Value>,
    /// Update time to record.
    pub updated_at: Option<Timestamp>,
}

impl TaskPatch {
    /// Applies the patch to a task in memory, the one rule every backend uses: present fields
    /// replace, absent ones stay; `updated_at` is the patch's time, or `now` when it has none.
    pub fn apply_to(self, task: &mut Task, now: Timestamp) {
        if let Some(v) = self.name {
            task.name = v;
        }
        if let Some(v) = self.description {
            task.description = v;
        }
        if let Some(v) = self.language {
            task.language = v;
        }
        if let Some(v) = self.code {
            task.code = v;
        }
        if let Some(v) = self.stdin {
            task.stdin = v;
        }
        if let Some(v) = self.env {
            task.env = v;
        }
        if let Some(v) = self.limits {
            task.limits = v;
        }
        if let Some(v) = self.priority {
            task.priority = v;
        }
        if let Some(v) = self.tags {
            task.tags = v;
        }
        if let Some(v) = self.metadata {
            task.metadata = v;
        }
        task.updated_at = self.updated_at.unwrap_or(now);
    }
}

//! Conversions between SQLite column values and domain values.

use std::collections::BTreeMap;

use sqlx::types::Json;
use uuid::Uuid;
use uuid::fmt::Hyphenated;
use voidrunner_domain::{
    ExecutionStatus, ResourceLimits, Role, Task, TaskId, Timestamp, User, UserId,
};
use voidrunner_store::StoreResult;

use crate::error::corrupt;

/// Timestamp → INTEGER unix microseconds.
pub(crate) fn micros(t: Timestamp) -> i64 {
    t.timestamp_micros()
}

/// Optional timestamp → nullable INTEGER.
pub(crate) fn opt_micros(t: Option<Timestamp>) -> Option<i64> {
    t.map(micros)
}

/// INTEGER unix microseconds → timestamp.
pub(crate) fn ts(column: &'static str, v: i64) -> StoreResult<Timestamp> {
    chrono::DateTime::from_timestamp_micros(v).ok_or_else(|| corrupt(column, v))
}

/// Nullable INTEGER → optional timestamp.
pub(crate) fn opt_ts(column: &'static str, v: Option<i64>) -> StoreResult<Option<Timestamp>> {
    v.map(|v| ts(column, v)).transpose()
}

/// UUID → the TEXT form stored (lower-case, hyphenated).
pub(crate) fn text(id: Uuid) -> Hyphenated {
    id.hyphenated()
}

/// The text that `search` filters look in: the Unicode lower case of the name and the
/// description, separated by a unit separator so a needle never matches across the two.
pub(crate) fn search_text(name: &str, description: Option<&str>) -> String {
    let mut s = name.to_lowercase();
    if let Some(d) = description {
        s.push('\u{1f}');
        s.push_str(&d.to_lowercase());
    }
    s
}

/// A `users` row without the password hash.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct UserRow {
    pub id: Hyphenated,
    pub email: String,
    pub role: String,
    pub created_at: i64,
}

impl UserRow {
    /// Columns to select, in a form usable with a table alias `u`.
    pub const COLUMNS: &'static str = "u.id, u.email, u.role, u.created_at";

    /// Converts to the domain user.
    pub fn into_user(self) -> StoreResult<User> {
        Ok(User {
            id: UserId(self.id.into_uuid()),
            role: Role::parse(&self.role).ok_or_else(|| corrupt("users.role", &self.role))?,
            email: self.email,
            created_at: ts("users.created_at", self.created_at)?,
        })
    }
}

/// A `tasks` row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct TaskRow {
    pub id: Hyphenated,
    pub owner_id: Hyphenated,
    pub name: String,
    pub description: Option<String>,
    pub language: String,
    pub code: String,
    pub stdin: Option<String>,
    pub env: Json<BTreeMap<String, String>>,
    pub limits: Json<ResourceLimits>,
    pub priority: i64,
    pub tags: Json<Vec<String>>,
    pub metadata: Json<serde_json::Value>,
    pub last_execution_status: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl TaskRow {
    /// Columns to select.
    pub const COLUMNS: &'static str = "id, owner_id, name, description, language, code, stdin, \
        env, limits, priority, tags, metadata, last_execution_status, created_at, updated_at";

    /// Converts to the domain task.
    pub fn into_task(self) -> StoreResult<Task> {
        let last_execution_status = self
            .last_execution_status
            .map(|s| {
                ExecutionStatus::parse(&s).ok_or_else(|| corrupt("tasks.last_execution_status", s))
            })
            .transpose()?;
        Ok(Task {
            id: TaskId(self.id.into_uuid()),
            owner_id: UserId(self.owner_id.into_uuid()),
            name: self.name,
            description: self.description,
            language: self.language,
            code: self.code,
            stdin: self.stdin,
            env: self.env.0,
            limits: self.limits.0,
            priority: u8::try_from(self.priority)
                .map_err(|_| corrupt("tasks.priority", self.priority))?,
            tags: self.tags.0,
            metadata: self.metadata.0,
            last_execution_status,
            created_at: ts("tasks.created_at", self.created_at)?,
            updated_at: ts("tasks.updated_at", self.updated_at)?,
        })
    }
}

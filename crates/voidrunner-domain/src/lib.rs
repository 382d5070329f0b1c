//! Domain model of VoidRunner: the vocabulary every other crate speaks.
//!
//! Nothing here does IO or depends on an async runtime, a database or HTTP, so the rules
//! (state transitions, validation) can be tested in isolation and shared by every layer.

mod execution;
mod ids;
mod limits;
pub mod net;
mod task;
mod user;
pub mod validation;

pub use execution::{Execution, ExecutionStatus, ResourceSample, TransitionError, Verdict};
pub use ids::{
    ApiKeyId, ExecutionId, IdParseError, JobId, RepositoryId, TaskId, UserId, WorkflowId,
};
pub use limits::{LimitBounds, LimitError, PartialLimits, ResourceLimits};
pub use task::{NewTask, Task, TaskPatch};
pub use user::{Role, User};
pub use validation::{TaskCaps, ValidationError};

/// Timestamps are always UTC; they serialize as RFC 3339.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

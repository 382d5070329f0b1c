//! Strongly typed identifiers, so a task id can never be passed where a user id is expected.
//!
//! All ids are UUIDv7: time-ordered, which keeps B-tree inserts local and lets
//! `(created_at, id)` act as a stable pagination key.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An id string that is not a UUID.
#[derive(Debug, Clone, thiserror::Error)]
#[error("not a valid UUID")]
pub struct IdParseError;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered (UUIDv7) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// The underlying UUID, for storage layers.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self).map_err(|_| IdParseError)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }
    };
}

id_type!(
    /// Identifies a user account.
    UserId
);
id_type!(
    /// Identifies a task (stored code plus its run settings).
    TaskId
);
id_type!(
    /// Identifies one execution (one run) of a task.
    ExecutionId
);
id_type!(
    /// Identifies an API key (not the secret itself).
    ApiKeyId
);
id_type!(
    /// Identifies a CI job.
    JobId
);
id_type!(
    /// Identifies a workflow (a graph of CI jobs).
    WorkflowId
);
id_type!(
    /// Identifies a git repository registered for events.
    RepositoryId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_garbage() {
        let id = TaskId::new();
        let parsed: TaskId = id.to_string().parse().expect("parse own id");
        assert_eq!(id, parsed);
        assert!("not-a-uuid".parse::<TaskId>().is_err());
    }

    #[test]
    fn ids_are_time_ordered() {
        let a = ExecutionId::new();
        let b = ExecutionId::new();
        assert!(a < b);
    }
}

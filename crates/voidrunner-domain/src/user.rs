//! Users and roles.

use serde::{Deserialize, Serialize};

use crate::{Timestamp, UserId};

/// What a user may do. Admins see every task and the admin endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A regular account: sees only its own tasks and executions.
    User,
    /// An operator account.
    Admin,
}

impl Role {
    /// Stable storage / wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    /// Parses the storage / wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A user account as the rest of the system sees it (never with its password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Account id.
    pub id: UserId,
    /// Login email, stored lower-cased.
    pub email: String,
    /// Permissions.
    pub role: Role,
    /// When the account was created.
    pub created_at: Timestamp,
}

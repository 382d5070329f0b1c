//! Accounts, tokens and API keys.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use voidrunner_domain::{Role, User};

use chrono::{DateTime, Utc};

/// Account role on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleDto {
    /// Sees only their own resources.
    User,
    /// Operator: may list every user's tasks.
    Admin,
}

impl From<Role> for RoleDto {
    fn from(r: Role) -> Self {
        match r {
            Role::User => Self::User,
            Role::Admin => Self::Admin,
        }
    }
}

/// `POST /api/v1/auth/register`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// Email; normalized to lower case.
    pub email: String,
    /// 8–128 characters.
    pub password: String,
}

/// `POST /api/v1/auth/login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Email (case-insensitive).
    pub email: String,
    /// Password.
    pub password: String,
}

/// `POST /api/v1/auth/refresh`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token from the last login/refresh; it is used up by this call.
    pub refresh_token: String,
}

/// `POST /api/v1/auth/logout`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogoutRequest {
    /// Any refresh token of the session; its whole rotation family is revoked.
    pub refresh_token: String,
}

/// An account (never with its password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserResponse {
    /// Account id.
    pub id: Uuid,
    /// Lower-cased email.
    pub email: String,
    /// Role.
    pub role: RoleDto,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl From<User> for UserResponse {
    fn from(u: User) -> Self {
        Self {
            id: u.id.as_uuid(),
            email: u.email,
            role: u.role.into(),
            created_at: u.created_at,
        }
    }
}

/// Tokens issued by register, login and refresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// Short-lived JWT for `Authorization: Bearer …`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Access token lifetime in seconds.
    pub expires_in_secs: u64,
    /// Opaque, single-use refresh token.
    pub refresh_token: String,
    /// When the refresh token expires.
    pub refresh_expires_at: DateTime<Utc>,
    /// The authenticated account.
    pub user: UserResponse,
}

/// `POST /api/v1/auth/api-keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    /// Label, 1–100 characters.
    pub name: String,
    /// Optional expiry (must be in the future).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// An API key as listed (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyResponse {
    /// Key id (used to revoke it).
    pub id: Uuid,
    /// Label.
    pub name: String,
    /// First characters of the key, to tell keys apart.
    pub prefix: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Expiry, if any.
    pub expires_at: Option<DateTime<Utc>>,
    /// Last successful use.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Revocation time; revoked keys never authenticate.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Answer to key creation: the only time the secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreatedApiKeyResponse {
    /// The full secret (`vr_…`); store it now, it cannot be shown again.
    pub key: String,
    /// The stored key.
    pub api_key: ApiKeyResponse,
}

/// `GET /api/v1/auth/api-keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyListResponse {
    /// Keys, newest first, revoked ones included.
    pub items: Vec<ApiKeyResponse>,
}

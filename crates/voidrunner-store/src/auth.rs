//! Users, refresh tokens and API keys.

use uuid::Uuid;
use voidrunner_domain::{ApiKeyId, Role, Timestamp, User, UserId};

use crate::StoreResult;

/// A user to create. `password_hash` is an argon2id PHC string.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// New id.
    pub id: UserId,
    /// Lower-cased email; unique.
    pub email: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Role to give the user.
    pub role: Role,
    /// When true and no user exists yet, the user is created as admin instead of `role`;
    /// decided atomically with the insert, so two concurrent first sign-ups cannot both win.
    pub admin_if_first: bool,
    /// Creation time (from [`crate::now`]).
    pub created_at: Timestamp,
}

/// A user with the password hash, only for login.
#[derive(Debug, Clone)]
pub struct UserCredentials {
    /// The user.
    pub user: User,
    /// argon2id PHC string.
    pub password_hash: String,
}

/// User accounts.
#[async_trait::async_trait]
pub trait UserStore {
    /// Creates a user; `Conflict` when the email is taken.
    async fn create_user(&self, new: NewUser) -> StoreResult<User>;
    /// Gets a user by id; `NotFound` when missing.
    async fn get_user(&self, id: UserId) -> StoreResult<User>;
    /// Looks a user up by (lower-cased) email for login; `Ok(None)` when missing.
    async fn find_credentials(&self, email: &str) -> StoreResult<Option<UserCredentials>>;
}

/// A refresh token to store. Only the SHA-256 hash (hex) of the opaque token is stored.
#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    /// Row id.
    pub id: Uuid,
    /// Owner.
    pub user_id: UserId,
    /// Rotation family: every token obtained by refreshing shares the first token's family.
    pub family_id: Uuid,
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    /// Issue time.
    pub created_at: Timestamp,
    /// Expiry.
    pub expires_at: Timestamp,
}

/// The replacement token in a rotation; owner and family are taken from the presented token.
#[derive(Debug, Clone)]
pub struct RefreshTokenSeed {
    /// Row id.
    pub id: Uuid,
    /// Hex SHA-256 of the new token.
    pub token_hash: String,
    /// Issue time (also the time of the rotation).
    pub created_at: Timestamp,
    /// Expiry.
    pub expires_at: Timestamp,
}

/// What happened when a refresh token was presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The token was valid; it is now used up and the seed is stored in its family.
    Rotated {
        /// The token's owner.
        user: User,
        /// The family.
        family_id: Uuid,
    },
    /// The token had already been rotated or revoked: the whole family is now revoked
    /// (token theft detection).
    Reused,
    /// The token expired (nothing stored).
    Expired,
    /// No such token.
    Unknown,
}

/// A stored API key (never the secret itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Key id.
    pub id: ApiKeyId,
    /// Owner.
    pub user_id: UserId,
    /// Human label.
    pub name: String,
    /// First characters of the key, shown in listings so users can tell keys apart.
    pub prefix: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// Optional expiry.
    pub expires_at: Option<Timestamp>,
    /// Last successful use.
    pub last_used_at: Option<Timestamp>,
    /// When revoked; revoked keys never authenticate.
    pub revoked_at: Option<Timestamp>,
}

/// An API key to create.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// Key id.
    pub id: ApiKeyId,
    /// Owner.
    pub user_id: UserId,
    /// Human label (1–100 chars).
    pub name: String,
    /// Display prefix.
    pub prefix: String,
    /// Hex SHA-256 of the full key.
    pub key_hash: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// Optional expiry.
    pub expires_at: Option<Timestamp>,
}

/// Refresh tokens and API keys.
#[async_trait::async_trait]
pub trait AuthStore {
    /// Stores a refresh token starting (or continuing) a family.
    async fn insert_refresh_token(&self, token: NewRefreshToken) -> StoreResult<()>;
    /// In one transaction: finds the token by hash; if it is live, marks it used and stores
    /// `replacement` in the same family; if it was already used or revoked, revokes the whole
    /// family and answers [`RefreshOutcome::Reused`].
    async fn rotate_refresh_token(
        &self,
        presented_hash: &str,
        replacement: RefreshTokenSeed,
    ) -> StoreResult<RefreshOutcome>;
    /// Revokes the family of the presented token (logout). `Ok(false)` when unknown.
    async fn revoke_refresh_family(
        &self,
        presented_hash: &str,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Revokes every refresh token of a user (logout everywhere); returns how many.
    async fn revoke_user_refresh_tokens(&self, user_id: UserId, now: Timestamp)
    -> StoreResult<u64>;

    /// Stores a new API key.
    async fn create_api_key(&self, key: NewApiKey) -> StoreResult<ApiKey>;
    /// Lists a user's keys, newest first, revoked ones included.
    async fn list_api_keys(&self, user_id: UserId) -> StoreResult<Vec<ApiKey>>;
    /// Revokes a key of this user; `NotFound` when it is not theirs or missing.
    async fn revoke_api_key(
        &self,
        user_id: UserId,
        id: ApiKeyId,
        now: Timestamp,
    ) -> StoreResult<()>;
    /// Finds the live (not revoked, not expired) key with this hash, records the use and
    /// returns its owner; `Ok(None)` otherwise.
    async fn authenticate_api_key(
        &self,
        key_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Option<User>>;
}

//! Users, refresh tokens and API keys on PostgreSQL.

use sqlx::PgConnection;
use uuid::Uuid;
use voidrunner_domain::{ApiKeyId, Role, Timestamp, User, UserId};
use voidrunner_store::{
    ApiKey, AuthStore, NewApiKey, NewRefreshToken, NewUser, RefreshOutcome, RefreshTokenSeed,
    StoreError, StoreResult, UserCredentials, UserStore,
};

use crate::PostgresStore;
use crate::convert::UserRow;
use crate::error::map_sqlx;

#[async_trait::async_trait]
impl UserStore for PostgresStore {
    async fn create_user(&self, new: NewUser) -> StoreResult<User> {
        let email = new.email.to_lowercase();
        let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
        let role = if new.admin_if_first {
            // Blocks concurrent inserts (not reads) until commit, so two first sign-ups cannot
            // both see an empty table. Only sign-ups that may become admin pay for it.
            sqlx::query("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await
                .map_err(map_sqlx)?;
            let any: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users)")
                .fetch_one(&mut *tx)
                .await
                .map_err(map_sqlx)?;
            if any { new.role } else { Role::Admin }
        } else {
            new.role
        };
        sqlx::query(
            "INSERT INTO users (id, email, password_hash, role, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(new.id.as_uuid())
        .bind(&email)
        .bind(&new.password_hash)
        .bind(role.as_str())
        .bind(new.created_at)
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(User {
            id: new.id,
            email,
            role,
            created_at: new.created_at,
        })
    }

    async fn get_user(&self, id: UserId) -> StoreResult<User> {
        let sql = format!("SELECT {} FROM users u WHERE u.id = $1", UserRow::COLUMNS);
        sqlx::query_as::<_, UserRow>(&sql)
            .bind(id.as_uuid())
            .fetch_one(&self.pool)
            .await
            .map_err(map_sqlx)?
            .into_user()
    }

    async fn find_credentials(&self, email: &str) -> StoreResult<Option<UserCredentials>> {
        let sql = format!(
            "SELECT {}, u.password_hash FROM users u WHERE u.email = $1",
            UserRow::COLUMNS
        );
        let row = sqlx::query_as::<_, CredentialsRow>(&sql)
            .bind(email.to_lowercase())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_sqlx)?;
        row.map(|r| {
            Ok(UserCredentials {
                user: r.user.into_user()?,
                password_hash: r.password_hash,
            })
        })
        .transpose()
    }
}

#[derive(Debug, sqlx::FromRow)]
struct CredentialsRow {
    #[sqlx(flatten)]
    user: UserRow,
    password_hash: String,
}

#[derive(Debug, sqlx::FromRow)]
struct RefreshRow {
    id: Uuid,
    user_id: Uuid,
    family_id: Uuid,
    expires_at: Timestamp,
    used_at: Option<Timestamp>,
    revoked_at: Option<Timestamp>,
}

#[derive(Debug, sqlx::FromRow)]
struct ApiKeyRow {
    id: Uuid,
    user_id: Uuid,
    name: String,
    prefix: String,
    created_at: Timestamp,
    expires_at: Option<Timestamp>,
    last_used_at: Option<Timestamp>,
    revoked_at: Option<Timestamp>,
}

impl ApiKeyRow {
    const COLUMNS: &'static str =
        "id, user_id, name, prefix, created_at, expires_at, last_used_at, revoked_at";

    fn into_key(self) -> ApiKey {
        ApiKey {
            id: ApiKeyId(self.id),
            user_id: UserId(self.user_id),
            name: self.name,
            prefix: self.prefix,
            created_at: self.created_at,
            expires_at: self.expires_at,
            last_used_at: self.last_used_at,
            revoked_at: self.revoked_at,
        }
    }
}

const INSERT_REFRESH: &str = "INSERT INTO refresh_tokens \
    (id, user_id, family_id, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)";

/// Serializes every refresh-token operation of one user (rotation, reuse revocation, logout)
/// for the rest of the transaction. Row locks alone are not enough under READ COMMITTED: a
/// family-wide `UPDATE` would not see a replacement token inserted by a concurrent rotation
/// that commits while the update waits, leaving a stolen family alive. Statements issued after
/// this lock see everything committed before it was granted.
async fn lock_user_refresh(tx: &mut PgConnection, user_id: Uuid) -> StoreResult<()> {
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended('voidrunner.refresh:' || $1::text, 0))",
    )
    .bind(user_id)
    .execute(&mut *tx)
    .await
    .map_err(map_sqlx)?;
    Ok(())
}

/// Finds the presented token's owner, takes the owner's refresh lock, then reads the token
/// row afresh under that lock. `None` when the hash is unknown.
async fn lock_presented(
    tx: &mut PgConnection,
    presented_hash: &str,
) -> StoreResult<Option<RefreshRow>> {
    let owner: Option<Uuid> =
        sqlx::query_scalar("SELECT user_id FROM refresh_tokens WHERE token_hash = $1")
            .bind(presented_hash)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_sqlx)?;
    let Some(owner) = owner else {
        return Ok(None);
    };
    lock_user_refresh(tx, owner).await?;
    sqlx::query_as(
        "SELECT id, user_id, family_id, expires_at, used_at, revoked_at \
         FROM refresh_tokens WHERE token_hash = $1",
    )
    .bind(presented_hash)
    .fetch_optional(&mut *tx)
    .await
    .map_err(map_sqlx)
}

const REVOKE_FAMILY: &str =
    "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL";

#[async_trait::async_trait]
impl AuthStore for PostgresStore {
    async fn insert_refresh_token(&self, token: NewRefreshToken) -> StoreResult<()> {
        sqlx::query(INSERT_REFRESH)
            .bind(token.id)
            .bind(token.user_id.as_uuid())
            .bind(token.family_id)
            .bind(&token.token_hash)
            .bind(token.created_at)
            .bind(token.expires_at)
            .execute(&self.pool)
            .await
            .map_err(map_sqlx)?;
        Ok(())
    }

    async fn rotate_refresh_token(
        &self,
        presented_hash: &str,
        replacement: RefreshTokenSeed,
    ) -> StoreResult<RefreshOutcome> {
        let now = replacement.created_at;
        let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
        let row = lock_presented(&mut tx, presented_hash).await?;
        let Some(row) = row else {
            return Ok(RefreshOutcome::Unknown);
        };
        if row.used_at.is_some() || row.revoked_at.is_some() {
            sqlx::query(REVOKE_FAMILY)
                .bind(now)
                .bind(row.family_id)
                .execute(&mut *tx)
                .await
                .map_err(map_sqlx)?;
            tx.commit().await.map_err(map_sqlx)?;
            return Ok(RefreshOutcome::Reused);
        }
        if row.expires_at <= now {
            return Ok(RefreshOutcome::Expired);
        }
        sqlx::query("UPDATE refresh_tokens SET used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(row.id)
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        sqlx::query(INSERT_REFRESH)
            .bind(replacement.id)
            .bind(row.user_id)
            .bind(row.family_id)
            .bind(&replacement.token_hash)
            .bind(now)
            .bind(replacement.expires_at)
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        let sql = format!("SELECT {} FROM users u WHERE u.id = $1", UserRow::COLUMNS);
        let user = sqlx::query_as::<_, UserRow>(&sql)
            .bind(row.user_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_sqlx)?
            .into_user()?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(RefreshOutcome::Rotated {
            user,
            family_id: row.family_id,
        })
    }

    async fn revoke_refresh_family(
        &self,
        presented_hash: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
        let Some(RefreshRow {
            family_id: family, ..
        }) = lock_presented(&mut tx, presented_hash).await?
        else {
            return Ok(false);
        };
        sqlx::query(REVOKE_FAMILY)
            .bind(now)
            .bind(family)
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(true)
    }

    async fn revoke_user_refresh_tokens(
        &self,
        user_id: UserId,
        now: Timestamp,
    ) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
        lock_user_refresh(&mut tx, user_id.as_uuid()).await?;
        let done = sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(user_id.as_uuid())
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(done.rows_affected())
    }

    async fn create_api_key(&self, key: NewApiKey) -> StoreResult<ApiKey> {
        sqlx::query(
            "INSERT INTO api_keys (id, user_id, name, prefix, key_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(key.id.as_uuid())
        .bind(key.user_id.as_uuid())
        .bind(&key.name)
        .bind(&key.prefix)
        .bind(&key.key_hash)
        .bind(key.created_at)
        .bind(key.expires_at)
        .execute(&self.pool)
        .await
        .map_err(map_sqlx)?;
        Ok(ApiKey {
            id: key.id,
            user_id: key.user_id,
            name: key.name,
            prefix: key.prefix,
            created_at: key.created_at,
            expires_at: key.expires_at,
            last_used_at: None,
            revoked_at: None,
        })
    }

    async fn list_api_keys(&self, user_id: UserId) -> StoreResult<Vec<ApiKey>> {
        let sql = format!(
            "SELECT {} FROM api_keys WHERE user_id = $1 ORDER BY created_at DESC, id DESC",
            ApiKeyRow::COLUMNS
        );
        let rows = sqlx::query_as::<_, ApiKeyRow>(&sql)
            .bind(user_id.as_uuid())
            .fetch_all(&self.pool)
            .await
            .map_err(map_sqlx)?;
        Ok(rows.into_iter().map(ApiKeyRow::into_key).collect())
    }

    async fn revoke_api_key(
        &self,
        user_id: UserId,
        id: ApiKeyId,
        now: Timestamp,
    ) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) \
             WHERE id = $2 AND user_id = $3",
        )
        .bind(now)
        .bind(id.as_uuid())
        .bind(user_id.as_uuid())
        .execute(&self.pool)
        .await
        .map_err(map_sqlx)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn authenticate_api_key(
        &self,
        key_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Option<User>> {
        let sql = format!(
            "WITH used AS ( \
                 UPDATE api_keys SET last_used_at = $1 \
                 WHERE key_hash = $2 AND revoked_at IS NULL \
                   AND (expires_at IS NULL OR expires_at > $1) \
                 RETURNING user_id) \
             SELECT {} FROM users u JOIN used ON used.user_id = u.id",
            UserRow::COLUMNS
        );
        sqlx::query_as::<_, UserRow>(&sql)
            .bind(now)
            .bind(key_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_sqlx)?
            .map(UserRow::into_user)
            .transpose()
    }
}

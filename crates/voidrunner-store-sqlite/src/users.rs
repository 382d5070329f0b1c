//! Users, refresh tokens and API keys on SQLite.

use uuid::fmt::Hyphenated;
use voidrunner_domain::{ApiKeyId, Role, Timestamp, User, UserId};
use voidrunner_store::{
    ApiKey, AuthStore, NewApiKey, NewRefreshToken, NewUser, RefreshOutcome, RefreshTokenSeed,
    StoreError, StoreResult, UserCredentials, UserStore,
};

use crate::SqliteStore;
use crate::convert::{UserRow, micros, opt_micros, opt_ts, text, ts};
use crate::error::map_sqlx;

#[async_trait::async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, new: NewUser) -> StoreResult<User> {
        let email = new.email.to_lowercase();
        // The write lock is held from BEGIN IMMEDIATE, so "is this the first user?" and the
        // insert cannot interleave with another sign-up.
        let mut tx = self.begin_immediate().await?;
        let role = if new.admin_if_first {
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
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(text(new.id.as_uuid()))
        .bind(&email)
        .bind(&new.password_hash)
        .bind(role.as_str())
        .bind(micros(new.created_at))
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
        let sql = format!("SELECT {} FROM users u WHERE u.id = ?", UserRow::COLUMNS);
        sqlx::query_as::<_, UserRow>(&sql)
            .bind(text(id.as_uuid()))
            .fetch_one(&self.reader)
            .await
            .map_err(map_sqlx)?
            .into_user()
    }

    async fn find_credentials(&self, email: &str) -> StoreResult<Option<UserCredentials>> {
        let sql = format!(
            "SELECT {}, u.password_hash FROM users u WHERE u.email = ?",
            UserRow::COLUMNS
        );
        let row = sqlx::query_as::<_, CredentialsRow>(&sql)
            .bind(email.to_lowercase())
            .fetch_optional(&self.reader)
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
    user_id: Hyphenated,
    family_id: Hyphenated,
    expires_at: i64,
    used_at: Option<i64>,
    revoked_at: Option<i64>,
}

#[derive(Debug, sqlx::FromRow)]
struct ApiKeyRow {
    id: Hyphenated,
    user_id: Hyphenated,
    name: String,
    prefix: String,
    created_at: i64,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl ApiKeyRow {
    const COLUMNS: &'static str =
        "id, user_id, name, prefix, created_at, expires_at, last_used_at, revoked_at";

    fn into_key(self) -> StoreResult<ApiKey> {
        Ok(ApiKey {
            id: ApiKeyId(self.id.into_uuid()),
            user_id: UserId(self.user_id.into_uuid()),
            name: self.name,
            prefix: self.prefix,
            created_at: ts("api_keys.created_at", self.created_at)?,
            expires_at: opt_ts("api_keys.expires_at", self.expires_at)?,
            last_used_at: opt_ts("api_keys.last_used_at", self.last_used_at)?,
            revoked_at: opt_ts("api_keys.revoked_at", self.revoked_at)?,
        })
    }
}

const INSERT_REFRESH: &str = "INSERT INTO refresh_tokens \
    (id, user_id, family_id, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)";

#[async_trait::async_trait]
impl AuthStore for SqliteStore {
    async fn insert_refresh_token(&self, token: NewRefreshToken) -> StoreResult<()> {
        sqlx::query(INSERT_REFRESH)
            .bind(text(token.id))
            .bind(text(token.user_id.as_uuid()))
            .bind(text(token.family_id))
            .bind(&token.token_hash)
            .bind(micros(token.created_at))
            .bind(micros(token.expires_at))
            .execute(&self.writer)
            .await
            .map_err(map_sqlx)?;
        Ok(())
    }

    async fn rotate_refresh_token(
        &self,
        presented_hash: &str,
        replacement: RefreshTokenSeed,
    ) -> StoreResult<RefreshOutcome> {
        let now = micros(replacement.created_at);
        let mut tx = self.begin_immediate().await?;
        let row: Option<RefreshRow> = sqlx::query_as(
            "SELECT user_id, family_id, expires_at, used_at, revoked_at \
             FROM refresh_tokens WHERE token_hash = ?",
        )
        .bind(presented_hash)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        let Some(row) = row else {
            return Ok(RefreshOutcome::Unknown);
        };
        if row.used_at.is_some() || row.revoked_at.is_some() {
            sqlx::query(
                "UPDATE refresh_tokens SET revoked_at = ? \
                 WHERE family_id = ? AND revoked_at IS NULL",
            )
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
        sqlx::query("UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ?")
            .bind(now)
            .bind(presented_hash)
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        sqlx::query(INSERT_REFRESH)
            .bind(text(replacement.id))
            .bind(row.user_id)
            .bind(row.family_id)
            .bind(&replacement.token_hash)
            .bind(now)
            .bind(micros(replacement.expires_at))
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        let sql = format!("SELECT {} FROM users u WHERE u.id = ?", UserRow::COLUMNS);
        let user = sqlx::query_as::<_, UserRow>(&sql)
            .bind(row.user_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_sqlx)?
            .into_user()?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(RefreshOutcome::Rotated {
            user,
            family_id: row.family_id.into_uuid(),
        })
    }

    async fn revoke_refresh_family(
        &self,
        presented_hash: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_immediate().await?;
        let family: Option<Hyphenated> =
            sqlx::query_scalar("SELECT family_id FROM refresh_tokens WHERE token_hash = ?")
                .bind(presented_hash)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_sqlx)?;
        let Some(family) = family else {
            return Ok(false);
        };
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL",
        )
        .bind(micros(now))
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
        let done = sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
        )
        .bind(micros(now))
        .bind(text(user_id.as_uuid()))
        .execute(&self.writer)
        .await
        .map_err(map_sqlx)?;
        Ok(done.rows_affected())
    }

    async fn create_api_key(&self, key: NewApiKey) -> StoreResult<ApiKey> {
        sqlx::query(
            "INSERT INTO api_keys (id, user_id, name, prefix, key_hash, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(text(key.id.as_uuid()))
        .bind(text(key.user_id.as_uuid()))
        .bind(&key.name)
        .bind(&key.prefix)
        .bind(&key.key_hash)
        .bind(micros(key.created_at))
        .bind(opt_micros(key.expires_at))
        .execute(&self.writer)
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
            "SELECT {} FROM api_keys WHERE user_id = ? ORDER BY created_at DESC, id DESC",
            ApiKeyRow::COLUMNS
        );
        sqlx::query_as::<_, ApiKeyRow>(&sql)
            .bind(text(user_id.as_uuid()))
            .fetch_all(&self.reader)
            .await
            .map_err(map_sqlx)?
            .into_iter()
            .map(ApiKeyRow::into_key)
            .collect()
    }

    async fn revoke_api_key(
        &self,
        user_id: UserId,
        id: ApiKeyId,
        now: Timestamp,
    ) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? AND user_id = ?",
        )
        .bind(micros(now))
        .bind(text(id.as_uuid()))
        .bind(text(user_id.as_uuid()))
        .execute(&self.writer)
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
        let user_id: Option<Hyphenated> = sqlx::query_scalar(
            "UPDATE api_keys SET last_used_at = ?1 \
             WHERE key_hash = ?2 AND revoked_at IS NULL \
               AND (expires_at IS NULL OR expires_at > ?1) \
             RETURNING user_id",
        )
        .bind(micros(now))
        .bind(key_hash)
        .fetch_optional(&self.writer)
        .await
        .map_err(map_sqlx)?;
        match user_id {
            Some(id) => self.get_user(UserId(id.into_uuid())).await.map(Some),
            None => Ok(None),
        }
    }
}

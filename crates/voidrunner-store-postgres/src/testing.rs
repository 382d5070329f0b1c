//! Helpers for tests in other crates (feature `testing`).
//!
//! Each [`fresh_store`] call creates its own schema (`vr_test_<unix secs>_<uuid>`) in the
//! database of `base_url` and points the store's `search_path` at it: isolation costs one
//! `CREATE SCHEMA` plus the migrations, fast enough for hundreds of tests. Schemas older than
//! [`STALE_AFTER_SECS`] are dropped on the way, so crashed runs do not accumulate garbage;
//! [`drop_test_schemas`] removes all of them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::{PostgresOptions, PostgresStore};

/// Prefix of every test schema.
pub const SCHEMA_PREFIX: &str = "vr_test_";

/// Test schemas older than this are considered abandoned and dropped by [`fresh_store`].
pub const STALE_AFTER_SECS: u64 = 3600;

/// A migrated store in a brand-new schema of the database at `base_url`.
///
/// # Panics
/// When the database is unreachable or the schema cannot be created (a broken test host).
pub async fn fresh_store(base_url: &str) -> PostgresStore {
    let now_secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let schema = format!(
        "{SCHEMA_PREFIX}{now_secs}_{}",
        uuid::Uuid::new_v4().simple()
    );
    let opts = PostgresOptions {
        max_connections: 4,
        acquire_timeout: Duration::from_secs(30),
        schema: Some(schema.clone()),
    };
    let store = PostgresStore::connect(base_url, opts)
        .await
        .expect("connect to test postgres");
    drop_stale(&store, now_secs).await;
    // Creates the schema. Each schema is private to its test: no cross-node migration lock.
    store
        .run_migrations(false)
        .await
        .expect("migrate test schema");
    store
}

/// Another handle on the schema of `store` (its own pools and `LISTEN` connection), as a
/// second node of the same deployment would have: for tests of cross-process wake-ups.
///
/// # Panics
/// When the database is unreachable or `store` has no schema of its own.
pub async fn another_handle(base_url: &str, store: &PostgresStore) -> PostgresStore {
    let opts = PostgresOptions {
        max_connections: 4,
        acquire_timeout: Duration::from_secs(30),
        schema: Some(
            store
                .schema
                .clone()
                .expect("a test store has its own schema"),
        ),
    };
    PostgresStore::connect(base_url, opts)
        .await
        .expect("connect another handle")
}

/// Best effort: drops test schemas left behind by runs that ended long ago.
async fn drop_stale(store: &PostgresStore, now_secs: u64) {
    let Ok(names) = sqlx::query_scalar::<_, String>(
        "SELECT nspname::text FROM pg_namespace WHERE starts_with(nspname, $1)",
    )
    .bind(SCHEMA_PREFIX)
    .fetch_all(&store.pool)
    .await
    else {
        return;
    };
    for name in names {
        let created = name
            .strip_prefix(SCHEMA_PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse::<u64>().ok());
        if created.is_some_and(|c| c + STALE_AFTER_SECS < now_secs) {
            let sql = format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE");
            if let Err(e) = sqlx::query(&sql).execute(&store.pool).await {
                tracing::debug!(schema = %name, error = %e, "could not drop stale test schema {name}: {e}");
            }
        }
    }
}

/// Drops every test schema in the database at `base_url` (for cleanup scripts; do not call
/// while tests are running against that database). Returns how many were dropped.
pub async fn drop_test_schemas(base_url: &str) -> Result<usize, sqlx::Error> {
    let mut conn = PgConnection::connect(base_url).await?;
    let names: Vec<String> =
        sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE starts_with(nspname, $1)")
            .bind(SCHEMA_PREFIX)
            .fetch_all(&mut conn)
            .await?;
    for name in &names {
        sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
            .execute(&mut conn)
            .await?;
    }
    Ok(names.len())
}

#[async_trait::async_trait]
impl voidrunner_store::conformance::TestHooks for PostgresStore {
    async fn set_last_execution_status(
        &self,
        task: voidrunner_domain::TaskId,
        status: Option<voidrunner_domain::ExecutionStatus>,
    ) -> voidrunner_store::StoreResult<()> {
        sqlx::query("UPDATE tasks SET last_execution_status = $1 WHERE id = $2")
            .bind(status.map(|s| s.as_str()))
            .bind(task.as_uuid())
            .execute(&self.pool)
            .await
            .map_err(crate::error::map_sqlx)?;
        Ok(())
    }
}

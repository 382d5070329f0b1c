//! PostgreSQL backend of the VoidRunner store: what API and worker nodes share when scaling
//! out.
//!
//! Read-then-write logic (refresh rotation, task updates) locks the rows it reads with
//! `SELECT … FOR UPDATE` inside one transaction; the first-user-admin decision takes a short
//! table lock. Objects live in the first schema of the connection's `search_path`, which is
//! what lets tests isolate themselves in a schema each. See the crate README for the schema.

mod convert;
mod error;
mod tasks;
#[cfg(feature = "testing")]
pub mod testing;
mod users;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use voidrunner_store::{Store, StoreError, StoreResult};

/// Tuning knobs; the defaults suit one API or worker node.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Maximum pooled connections of this process.
    pub max_connections: u32,
    /// How long a caller waits for a pooled connection before the store reports unavailable.
    pub acquire_timeout: Duration,
    /// Schema to use instead of the server's default `search_path` (tests isolate with it).
    pub schema: Option<String>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
            schema: None,
        }
    }
}

/// The PostgreSQL store. Cheap to clone (the pool is reference counted).
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects without migrating (`voidrunner migrate` and tools that must not change the
    /// schema). `url` is a `postgres://` URL.
    pub async fn connect(url: &str, opts: PostgresOptions) -> StoreResult<Self> {
        let mut connect: PgConnectOptions = url.parse().map_err(error::map_sqlx)?;
        connect = connect.application_name("voidrunner");
        if let Some(schema) = &opts.schema {
            connect = connect.options([("search_path", schema.as_str())]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .acquire_timeout(opts.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(error::map_sqlx)?;
        Ok(Self { pool })
    }

    /// Connects and migrates: what `voidrunner serve --store postgres://…` calls.
    pub async fn open(url: &str, opts: PostgresOptions) -> StoreResult<Self> {
        let store = Self::connect(url, opts).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Applies pending embedded migrations (idempotent; concurrent callers serialize on an
    /// advisory lock, so several nodes may start at once).
    pub async fn migrate(&self) -> StoreResult<()> {
        self.run_migrations(true).await
    }

    async fn run_migrations(&self, locking: bool) -> StoreResult<()> {
        let mut migrator = sqlx::migrate!("./migrations");
        migrator.set_locking(locking);
        migrator
            .run(&self.pool)
            .await
            .map_err(StoreError::unavailable)
    }

    /// Closes the pool, waiting for connections to be returned (graceful shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[async_trait::async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(error::map_sqlx)?;
        Ok(())
    }

    fn backend_name(&self) -> &'static str {
        "postgres"
    }
}

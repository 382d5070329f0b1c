//! PostgreSQL backend of the VoidRunner store: what API and worker nodes share when scaling
//! out.
//!
//! Read-then-write logic (refresh rotation, task updates) locks the rows it reads with
//! `SELECT … FOR UPDATE` inside one transaction; the first-user-admin decision takes a short
//! table lock. Objects live in the first schema of the connection's `search_path`, which is
//! what lets tests isolate themselves in a schema each. See the crate README for the schema.

mod archive;
mod convert;
mod error;
mod execution_row;
mod executions;
mod input;
mod job_blobs;
mod jobs;
mod jobs_queue;
mod logs;
mod queue;
mod retention;
mod signals;
mod stats;
mod tasks;
#[cfg(feature = "testing")]
pub mod testing;
mod users;
mod webhooks;
mod workflows;

use std::sync::Arc;
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

/// The PostgreSQL store. Cheap to clone (pools and signals are reference counted); the
/// queue listener stops when the last clone is dropped or [`PostgresStore::close`] is called.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// One connection, held by the `LISTEN` task (see `signals.rs`).
    listen_pool: PgPool,
    /// The configured schema, created by [`PostgresStore::migrate`] when missing.
    schema: Option<String>,
    /// Queue signals of this handle, fed locally and by `LISTEN`.
    hub: Arc<signals::Hub>,
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
            .connect_with(connect.clone())
            .await
            .map_err(error::map_sqlx)?;
        let scope = match &opts.schema {
            Some(s) => s.clone(),
            None => sqlx::query_scalar::<_, Option<String>>("SELECT current_schema()::text")
                .fetch_one(&pool)
                .await
                .map_err(error::map_sqlx)?
                .unwrap_or_else(|| "public".to_owned()),
        };
        // The listener connection is named after the handle, so operators (and tests) can
        // tell it apart in `pg_stat_activity`.
        let origin = uuid::Uuid::new_v4().simple().to_string();
        let listen_pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(opts.acquire_timeout)
            .connect_lazy_with(connect.application_name(&listener_name(&origin)));
        let hub = signals::Hub::start(listen_pool.clone(), origin, scope).await?;
        Ok(Self {
            pool,
            listen_pool,
            schema: opts.schema,
            hub,
        })
    }

    /// Connects and migrates: what `voidrunner serve --store postgres://…` calls.
    pub async fn open(url: &str, opts: PostgresOptions) -> StoreResult<Self> {
        let store = Self::connect(url, opts).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Applies pending embedded migrations (idempotent; concurrent callers serialize on an
    /// advisory lock, so several nodes may start at once). Creates the configured schema
    /// first when it does not exist.
    pub async fn migrate(&self) -> StoreResult<()> {
        self.run_migrations(true).await
    }

    async fn run_migrations(&self, locking: bool) -> StoreResult<()> {
        if let Some(schema) = &self.schema {
            self.create_schema(schema).await?;
        }
        let mut migrator = sqlx::migrate!("./migrations");
        migrator.set_locking(locking);
        migrator
            .run(&self.pool)
            .await
            .map_err(StoreError::unavailable)
    }

    /// `CREATE SCHEMA IF NOT EXISTS` is not safe against concurrent creators (they can both
    /// pass the check and one fails on the catalog's unique index), so nodes starting together
    /// take a transaction-scoped advisory lock on the schema name first.
    async fn create_schema(&self, schema: &str) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(error::map_sqlx)?;
        sqlx::query(
            "SELECT pg_advisory_xact_lock(hashtextextended('voidrunner.schema:' || $1, 0))",
        )
        .bind(schema)
        .execute(&mut *tx)
        .await
        .map_err(error::map_sqlx)?;
        let sql = format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(schema));
        sqlx::query(&sql)
            .execute(&mut *tx)
            .await
            .map_err(error::map_sqlx)?;
        tx.commit().await.map_err(error::map_sqlx)
    }

    /// Stops the queue listener and closes the pools, waiting for connections to be returned
    /// (graceful shutdown). Every clone of this handle stops receiving remote signals.
    pub async fn close(&self) {
        self.hub.stop();
        self.listen_pool.close().await;
        self.pool.close().await;
    }

    /// `application_name` of this handle's `LISTEN` connection.
    pub fn listener_application_name(&self) -> String {
        listener_name(self.hub.origin())
    }

    /// The schema whose queue events this handle hears (part of every `NOTIFY` payload).
    fn hub_scope(&self) -> &str {
        self.hub.scope()
    }
}

/// `application_name` of a handle's `LISTEN` connection.
fn listener_name(origin: &str) -> String {
    format!("voidrunner-listen-{origin}")
}

/// Quotes an SQL identifier (doubling embedded quotes), for schema names from configuration.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
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

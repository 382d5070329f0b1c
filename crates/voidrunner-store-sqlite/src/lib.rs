//! SQLite backend of the VoidRunner store: the zero-configuration default of `voidrunner serve`.
//!
//! Concurrency model: one *writer* pool with a single connection (every write transaction
//! starts with `BEGIN IMMEDIATE`, so writers queue in-process instead of failing with
//! `SQLITE_BUSY`) and a *reader* pool of several `query_only` connections. WAL mode lets
//! readers run while the writer commits. Timestamps are INTEGER unix microseconds, ids are
//! hyphenated UUID text, JSON documents are TEXT. See the crate README for the schema.

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
mod stats;
mod tasks;
#[cfg(feature = "testing")]
pub mod testing;
mod users;
mod webhooks;
mod workflows;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use voidrunner_store::{QueueSignals, Store, StoreError, StoreResult};

/// Embedded migrations (`migrations/`), applied by [`SqliteStore::migrate`].
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Tuning knobs; the defaults suit `voidrunner serve` on a small machine.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Connections in the read pool (the write pool always has exactly one).
    pub max_read_connections: u32,
    /// How long a connection waits on a lock held by another process before failing.
    pub busy_timeout: Duration,
    /// How long a caller waits for a pooled connection before the store reports unavailable.
    pub acquire_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            max_read_connections: 8,
            busy_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(30),
        }
    }
}

/// The SQLite store. Cheap to clone (pools and signals are reference counted).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Exactly one connection: all writes are serialized here.
    writer: SqlitePool,
    /// Read-only (`query_only`) connections for lookups and listings.
    reader: SqlitePool,
    /// Queue wake-ups of this process. SQLite is embedded, so every enqueue, cancel and
    /// finish happens through this handle (or a clone) and is signalled here after commit.
    signals: Arc<QueueSignals>,
}

impl SqliteStore {
    /// Opens (creating the file and its parent directory if needed) and migrates: what
    /// `voidrunner serve` calls.
    pub async fn open(path: &Path, opts: SqliteOptions) -> StoreResult<Self> {
        let store = Self::connect(path, opts).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Opens (creating the file and its parent directory if needed) without migrating, for
    /// `voidrunner migrate` and for tools that must not change the schema.
    pub async fn connect(path: &Path, opts: SqliteOptions) -> StoreResult<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(StoreError::unavailable)?;
        }
        let base = SqliteConnectOptions::new()
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(opts.busy_timeout);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(opts.acquire_timeout)
            .connect_with(base.clone().create_if_missing(true))
            .await
            .map_err(error::map_sqlx)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(opts.max_read_connections.max(1))
            .acquire_timeout(opts.acquire_timeout)
            .connect_with(base.pragma("query_only", "ON"))
            .await
            .map_err(error::map_sqlx)?;
        tracing::debug!(db.path = %path.display(), "sqlite store connected: {}", path.display());
        Ok(Self {
            writer,
            reader,
            signals: Arc::new(QueueSignals::new()),
        })
    }

    /// Applies pending embedded migrations (idempotent).
    pub async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR
            .run(&self.writer)
            .await
            .map_err(StoreError::unavailable)
    }

    /// Closes both pools, waiting for connections to be returned (graceful shutdown).
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }

    /// Starts a write transaction that holds SQLite's write lock from its first statement, so
    /// read-then-write logic cannot be interleaved with another writer.
    async fn begin_immediate(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Sqlite>> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(error::map_sqlx)
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map_err(error::map_sqlx)?;
        Ok(())
    }

    fn backend_name(&self) -> &'static str {
        "sqlite"
    }
}

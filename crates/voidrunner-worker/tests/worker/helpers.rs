//! Test helpers: a fresh real store (SQLite always, PostgreSQL when
//! `VOIDRUNNER_TEST_DATABASE_URL` is set), the real native executor over the real sandbox, a
//! fault executor for failures that cannot be caused for real, and condition waits.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use voidrunner_domain::{Execution, ExecutionId, ExecutionStatus, ResourceLimits, Role, UserId};
use voidrunner_exec::Executor;
use voidrunner_store::{ExecutionStore, NewExecution, NewUser, Scope, Store};
use voidrunner_worker::{RetrySettings, WorkerConfig, WorkerPool};

/// The queue half of a store.
pub type Queue = dyn ExecutionStore + Send + Sync;

/// How long any condition may take before a test fails.
pub const WAIT: Duration = Duration::from_secs(30);

/// A fresh store of one backend.
pub struct TestStore {
    pub store: Arc<dyn Store>,
    pub queue: Arc<Queue>,
    pub backend: &'static str,
    /// Where the database is, to break it for real in outage tests.
    location: Location,
    _dir: Option<TempDir>,
}

enum Location {
    Sqlite(PathBuf),
    Postgres(String),
}

/// A fresh, migrated SQLite store.
pub async fn sqlite() -> TestStore {
    let (store, dir) = voidrunner_store_sqlite::testing::fresh_store().await;
    let store = Arc::new(store);
    TestStore {
        store: store.clone(),
        queue: store,
        backend: "sqlite",
        location: Location::Sqlite(dir.path().join("voidrunner.db")),
        _dir: Some(dir),
    }
}

/// A fresh PostgreSQL schema, or `None` (with a skip line) when no database is configured.
pub async fn postgres() -> Option<TestStore> {
    let Ok(url) = std::env::var("VOIDRUNNER_TEST_DATABASE_URL") else {
        println!("SKIPPED: postgres variant (set VOIDRUNNER_TEST_DATABASE_URL to run it)");
        return None;
    };
    postgres_at(&url).await
}

async fn postgres_at(url: &str) -> Option<TestStore> {
    let store = Arc::new(voidrunner_store_postgres::testing::fresh_store(url).await);
    Some(TestStore {
        store: store.clone(),
        queue: store,
        backend: "postgres",
        location: Location::Postgres(url.to_owned()),
        _dir: None,
    })
}

/// A fresh PostgreSQL schema and a second handle on it (its own pools and `LISTEN`
/// connection), as a second node of one deployment has; `None` without a database.
pub async fn postgres_two_nodes() -> Option<(TestStore, Arc<dyn Store>)> {
    let Ok(url) = std::env::var("VOIDRUNNER_TEST_DATABASE_URL") else {
        println!("SKIPPED: postgres two-node case (set VOIDRUNNER_TEST_DATABASE_URL to run it)");
        return None;
    };
    let first = voidrunner_store_postgres::testing::fresh_store(&url).await;
    let second = voidrunner_store_postgres::testing::another_handle(&url, &first).await;
    let first = Arc::new(first);
    let t = TestStore {
        store: first.clone(),
        queue: first,
        backend: "postgres",
        location: Location::Postgres(url),
        _dir: None,
    };
    Some((t, Arc::new(second)))
}

/// Runs the body `$name(TestStore)` once per backend.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(crate::helpers::sqlite().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(store) = crate::helpers::postgres().await {
                    super::$name(store).await;
                }
            }
        }
    )*};
}
pub(crate) use both_backends;

pub use crate::executors::{Counting, Fault, FaultExecutor, native};

impl TestStore {
    /// A new user (executions need an owner).
    pub async fn user(&self) -> UserId {
        let id = UserId::new();
        self.store
            .create_user(NewUser {
                id,
                email: format!("{id}@example.test"),
                password_hash: "not-a-hash".into(),
                role: Role::User,
                admin_if_first: false,
                created_at: voidrunner_store::now(),
            })
            .await
            .expect("create user");
        id
    }

    /// Enqueues a one-shot execution.
    pub async fn enqueue(&self, job: Job<'_>) -> Execution {
        self.queue
            .enqueue_execution(NewExecution {
                id: ExecutionId::new(),
                task_id: None,
                owner_id: job.owner,
                priority: job.priority,
                language: job.language.to_owned(),
                code: job.code.to_owned(),
                stdin: job.stdin.map(str::to_owned),
                env: job
                    .env
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect::<BTreeMap<_, _>>(),
                limits: limits(),
                interactive: job.interactive,
                callback_url: None,
                request_id: None,
                max_attempts: job.max_attempts,
                created_at: voidrunner_store::now(),
            })
            .await
            .expect("enqueue")
    }

    /// The row now.
    pub async fn get(&self, id: ExecutionId) -> Execution {
        self.queue
            .get_execution(Scope::All, id)
            .await
            .expect("get execution")
    }

    /// Polls the row until `pred` holds; fails the test after [`WAIT`].
    pub async fn wait_for(
        &self,
        id: ExecutionId,
        what: &str,
        pred: impl Fn(&Execution) -> bool,
    ) -> Execution {
        eventually(what, || async {
            let e = self.get(id).await;
            pred(&e).then_some(e)
        })
        .await
    }

    /// Polls the row until it is terminal.
    pub async fn wait_finished(&self, id: ExecutionId) -> Execution {
        self.wait_for(id, "execution finished", |e| e.status.is_terminal())
            .await
    }

    /// Starts a pool over this store.
    pub fn pool(
        &self,
        executor: Arc<dyn Executor>,
        node: &str,
        config: WorkerConfig,
    ) -> WorkerPool {
        WorkerPool::start(self.store.clone(), executor, node.to_owned(), config)
    }
}

/// What to enqueue.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    pub owner: UserId,
    pub language: &'a str,
    pub code: &'a str,
    pub stdin: Option<&'a str>,
    pub priority: u8,
    pub max_attempts: u32,
    /// Environment variables of the run.
    pub env: &'a [(&'a str, &'a str)],
    /// Stdin stays open for input appended through the store.
    pub interactive: bool,
}

impl<'a> Job<'a> {
    /// A bash program of `owner`, priority 5, 3 attempts.
    pub fn bash(owner: UserId, code: &'a str) -> Self {
        Self {
            owner,
            language: "bash",
            code,
            stdin: None,
            priority: 5,
            max_attempts: 3,
            env: &[],
            interactive: false,
        }
    }
}

/// Limits of every test execution.
pub fn limits() -> ResourceLimits {
    ResourceLimits {
        timeout_secs: 20,
        memory_mb: 256,
        cpu_cores: 1.0,
        max_processes: 64,
        max_output_bytes: 1 << 20,
    }
}

/// A config for tests: fast polls and reaper, short backoff, no jitter.
pub fn config(concurrency: usize) -> WorkerConfig {
    WorkerConfig {
        concurrency,
        per_user_concurrency: None,
        lease_secs: 30,
        heartbeat_interval_ms: 10_000,
        poll_interval_ms: 50,
        reaper_interval_ms: 50,
        retry: RetrySettings {
            base_ms: 50,
            max_ms: 1_000,
            jitter: 0.0,
        },
        drain_grace_secs: 30,
        ..WorkerConfig::default()
    }
}

/// Polls `probe` every 10 ms until it yields a value; fails the test after [`WAIT`].
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Is `status` running?
pub fn running(e: &Execution) -> bool {
    e.status == ExecutionStatus::Running
}

/// A real outage of a test store, until [`Outage::repair`]: on SQLite another connection holds
/// the write lock (writes fail after the busy timeout), on PostgreSQL the executions table is
/// renamed away (every queue query fails).
pub enum Outage {
    Sqlite(sqlx::SqliteConnection),
    Postgres {
        conn: sqlx::PgConnection,
        table: String,
    },
}

impl TestStore {
    /// Breaks the store; `probe` is an execution of this store (finds its PostgreSQL schema).
    pub async fn outage(&self, probe: ExecutionId) -> Outage {
        use sqlx::Connection;
        match &self.location {
            Location::Sqlite(path) => {
                let url = format!("sqlite://{}", path.display());
                let mut conn = sqlx::SqliteConnection::connect(&url)
                    .await
                    .expect("connect");
                sqlx::query("BEGIN IMMEDIATE")
                    .execute(&mut conn)
                    .await
                    .expect("take the write lock");
                Outage::Sqlite(conn)
            }
            Location::Postgres(url) => {
                let schema = postgres_schema_of(url, probe).await;
                let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
                let table = format!("\"{schema}\".executions");
                sqlx::query(&format!("ALTER TABLE {table} RENAME TO executions_offline"))
                    .execute(&mut conn)
                    .await
                    .expect("rename away");
                Outage::Postgres {
                    conn,
                    table: format!("\"{schema}\".executions_offline"),
                }
            }
        }
    }
}

impl Outage {
    /// Ends the outage.
    pub async fn repair(self) {
        match self {
            Outage::Sqlite(mut conn) => {
                sqlx::query("ROLLBACK")
                    .execute(&mut conn)
                    .await
                    .expect("release the write lock");
            }
            Outage::Postgres { mut conn, table } => {
                sqlx::query(&format!("ALTER TABLE {table} RENAME TO executions"))
                    .execute(&mut conn)
                    .await
                    .expect("rename back");
            }
        }
    }
}

/// The test schema holding execution `probe` (test stores do not expose their schema).
async fn postgres_schema_of(url: &str, probe: ExecutionId) -> String {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    let schemas: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE starts_with(nspname, 'vr_test_') \
         AND to_regclass(quote_ident(nspname) || '.executions') IS NOT NULL",
    )
    .fetch_all(&mut conn)
    .await
    .expect("schemas");
    for schema in schemas {
        let sql = format!("SELECT count(*) FROM \"{schema}\".executions WHERE id = $1");
        let found: i64 = sqlx::query_scalar(&sql)
            .bind(probe.as_uuid())
            .fetch_one(&mut conn)
            .await
            .unwrap_or(0);
        if found == 1 {
            return schema;
        }
    }
    panic!("schema of execution {probe} not found");
}

impl TestStore {
    /// How another process opens this store (see [`open_address`]); `probe` is one of its
    /// executions.
    pub async fn address(&self, probe: ExecutionId) -> String {
        match &self.location {
            Location::Sqlite(path) => format!("sqlite:{}", path.display()),
            Location::Postgres(url) => {
                format!("postgres:{}@{url}", postgres_schema_of(url, probe).await)
            }
        }
    }
}

/// Opens the store at an [`TestStore::address`], as another process does.
pub async fn open_address(address: &str) -> Arc<dyn Store> {
    if let Some(path) = address.strip_prefix("sqlite:") {
        let store = voidrunner_store_sqlite::SqliteStore::open(
            std::path::Path::new(path),
            voidrunner_store_sqlite::SqliteOptions::default(),
        )
        .await
        .expect("open sqlite");
        return Arc::new(store);
    }
    let rest = address.strip_prefix("postgres:").expect("known address");
    let (schema, url) = rest.split_once('@').expect("schema@url");
    let opts = voidrunner_store_postgres::PostgresOptions {
        max_connections: 4,
        acquire_timeout: Duration::from_secs(30),
        schema: Some(schema.to_owned()),
    };
    let store = voidrunner_store_postgres::PostgresStore::connect(url, opts)
        .await
        .expect("connect postgres");
    Arc::new(store)
}

impl TestStore {
    /// Rows whose stored output (the result's stdout/stderr/compile output, or an event of
    /// the log, status events included) or sealed secret contains `needle`, read with plain
    /// SQL.
    pub async fn raw_output_rows_containing(&self, probe: ExecutionId, needle: &str) -> i64 {
        use sqlx::Connection;
        match &self.location {
            Location::Sqlite(path) => {
                let url = format!("sqlite://{}?mode=ro", path.display());
                let mut conn = sqlx::SqliteConnection::connect(&url)
                    .await
                    .expect("open sqlite");
                sqlx::query_scalar(
                    "SELECT (SELECT count(*) FROM executions WHERE instr(stdout, ?1) > 0 \
                     OR instr(stderr, ?1) > 0 OR instr(coalesce(compile_output, ''), ?1) > 0) \
                     + (SELECT count(*) FROM execution_logs WHERE instr(data, ?2) > 0) \
                     + (SELECT count(*) FROM task_secrets WHERE instr(sealed, ?2) > 0) \
                     + (SELECT count(*) FROM execution_secrets WHERE instr(sealed, ?2) > 0)",
                )
                .bind(needle)
                .bind(needle.as_bytes())
                .fetch_one(&mut conn)
                .await
                .expect("count sqlite rows")
            }
            Location::Postgres(url) => {
                let schema = postgres_schema_of(url, probe).await;
                let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
                let sql = format!(
                    "SELECT (SELECT count(*) FROM \"{schema}\".executions WHERE \
                     strpos(stdout, $1) > 0 OR strpos(stderr, $1) > 0 \
                     OR strpos(coalesce(compile_output, ''), $1) > 0) \
                     + (SELECT count(*) FROM \"{schema}\".execution_logs \
                     WHERE position($2 in data) > 0) \
                     + (SELECT count(*) FROM \"{schema}\".task_secrets \
                     WHERE position($2 in sealed) > 0) \
                     + (SELECT count(*) FROM \"{schema}\".execution_secrets \
                     WHERE position($2 in sealed) > 0)"
                );
                sqlx::query_scalar(&sql)
                    .bind(needle)
                    .bind(needle.as_bytes())
                    .fetch_one(&mut conn)
                    .await
                    .expect("count postgres rows")
            }
        }
    }
}

impl TestStore {
    /// The resource timeline stored with an execution's result, read with plain SQL (the
    /// column is JSON on both backends).
    pub async fn stored_samples(&self, id: ExecutionId) -> Vec<voidrunner_domain::ResourceSample> {
        use sqlx::Connection;
        let json: Option<String> = match &self.location {
            Location::Sqlite(path) => {
                let url = format!("sqlite://{}?mode=ro", path.display());
                let mut conn = sqlx::SqliteConnection::connect(&url)
                    .await
                    .expect("open sqlite");
                sqlx::query_scalar("SELECT resource_samples FROM executions WHERE id = ?1")
                    .bind(id.as_uuid().hyphenated().to_string())
                    .fetch_one(&mut conn)
                    .await
                    .expect("read sqlite samples")
            }
            Location::Postgres(url) => {
                let schema = postgres_schema_of(url, id).await;
                let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
                let sql = format!(
                    "SELECT resource_samples::text FROM \"{schema}\".executions WHERE id = $1"
                );
                sqlx::query_scalar(&sql)
                    .bind(id.as_uuid())
                    .fetch_one(&mut conn)
                    .await
                    .expect("read postgres samples")
            }
        };
        json.map(|j| serde_json::from_str(&j).expect("samples json"))
            .unwrap_or_default()
    }
}

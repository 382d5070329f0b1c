//! Queue benchmark (not a test): enqueue→start latency with an idle pool, sustained
//! executions/s of a trivial bash program, and 40 light python executions submitted at once —
//! real store, real sandbox. SQLite always, PostgreSQL when `VOIDRUNNER_TEST_DATABASE_URL` is
//! set.
//!
//! `cargo bench -p voidrunner-worker --bench queue`

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use voidrunner_domain::{ExecutionId, ResourceLimits, Role, UserId};
use voidrunner_exec::{
    ExecOutcome, ExecRequest, Executor, LanguageRegistry, NativeConfig, NativeExecutor, OutputEvent,
};
use voidrunner_sandbox::{HelperCommand, Sandbox, SandboxConfig};
use voidrunner_store::{NewExecution, NewUser, Store};
use voidrunner_worker::{WorkerConfig, WorkerPool};

/// The native executor, reporting the instant each run starts.
#[derive(Debug)]
struct Timed {
    inner: NativeExecutor,
    started: mpsc::UnboundedSender<Instant>,
}

#[async_trait::async_trait]
impl Executor for Timed {
    async fn execute(
        &self,
        req: ExecRequest,
        output: mpsc::Sender<OutputEvent>,
        cancel: CancellationToken,
    ) -> ExecOutcome {
        let _ = self.started.send(Instant::now());
        self.inner.execute(req, output, cancel).await
    }
}

/// Runs nothing: measures what the queue and the pool cost per execution.
#[derive(Debug)]
struct Nothing;

#[async_trait::async_trait]
impl Executor for Nothing {
    async fn execute(
        &self,
        _req: ExecRequest,
        _output: mpsc::Sender<OutputEvent>,
        _cancel: CancellationToken,
    ) -> ExecOutcome {
        let mut outcome = ExecOutcome::cancelled();
        outcome.verdict = voidrunner_domain::Verdict::Exited { code: 0 };
        outcome.exit_code = Some(0);
        outcome
    }
}

fn native() -> NativeExecutor {
    let helper = HelperCommand {
        program: PathBuf::from(env!("CARGO_BIN_EXE_voidrunner-worker-helper")),
        args: Vec::new(),
    };
    let sandbox = Sandbox::new(SandboxConfig::new(helper)).expect("sandbox");
    let registry = LanguageRegistry::builtin();
    registry.detect_all();
    NativeExecutor::new(
        Arc::new(sandbox),
        Arc::new(registry),
        NativeConfig::default(),
    )
}

fn new_execution(owner: UserId, language: &str, code: &str) -> NewExecution {
    NewExecution {
        id: ExecutionId::new(),
        task_id: None,
        owner_id: owner,
        priority: 5,
        language: language.to_owned(),
        code: code.to_owned(),
        stdin: None,
        env: BTreeMap::new(),
        limits: ResourceLimits {
            timeout_secs: 10,
            memory_mb: 256,
            cpu_cores: 1.0,
            max_processes: 64,
            max_output_bytes: 1 << 20,
        },
        interactive: false,
        callback_url: None,
        request_id: None,
        max_attempts: 3,
        created_at: voidrunner_store::now(),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "index into a small sample"
    )]
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Waits until `n` executions finished (finished signals, checked against the queue stats).
async fn wait_all_finished(
    store: &Arc<dyn Store>,
    mut rx: tokio::sync::broadcast::Receiver<ExecutionId>,
    n: usize,
) {
    let mut seen = 0;
    while seen < n {
        match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
            Ok(Ok(_)) => seen += 1,
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(k))) => {
                seen += usize::try_from(k).unwrap_or(usize::MAX);
            }
            Ok(Err(_)) | Err(_) => panic!("executions did not finish"),
        }
    }
    let stats = store.queue_stats().await.expect("stats");
    assert_eq!((stats.queued, stats.running), (0, 0), "all finished");
}

async fn bench(name: &str, store: Arc<dyn Store>) {
    let owner = UserId::new();
    store
        .create_user(NewUser {
            id: owner,
            email: format!("{owner}@bench.test"),
            password_hash: "x".into(),
            role: Role::User,
            admin_if_first: false,
            created_at: voidrunner_store::now(),
        })
        .await
        .expect("user");
    let (tx, mut started) = mpsc::unbounded_channel();
    let executor = Arc::new(Timed {
        inner: native(),
        started: tx,
    });
    let config = WorkerConfig {
        per_user_concurrency: None,
        ..WorkerConfig::default()
    };
    let concurrency = config.concurrency;
    let pool = WorkerPool::start(Arc::clone(&store), executor, "bench".into(), config);
    let signals = store.queue_signals();

    // 1. enqueue → start, one at a time on an idle pool (the wake-up path).
    let mut from_call = Vec::new();
    let mut from_commit = Vec::new();
    for i in 0..220 {
        let finished = signals.subscribe_finished();
        let t0 = Instant::now();
        store
            .enqueue_execution(new_execution(owner, "bash", "true"))
            .await
            .expect("enqueue");
        let committed = Instant::now();
        let t1 = started.recv().await.expect("started");
        if i >= 20 {
            from_call.push(t1 - t0);
            from_commit.push(t1.saturating_duration_since(committed));
        }
        wait_all_finished(&store, finished, 1).await;
    }
    from_call.sort();
    from_commit.sort();
    println!(
        "{name}: enqueue→start  p50 {:?}  p99 {:?}  (from the enqueue call; from its return: p50 {:?} p99 {:?}; n={}, idle pool, {concurrency} slots)",
        percentile(&from_call, 0.5),
        percentile(&from_call, 0.99),
        percentile(&from_commit, 0.5),
        percentile(&from_commit, 0.99),
        from_call.len()
    );

    pool.shutdown().await;

    // 2. sustained throughput of a trivial bash program; 3. 40 light python executions.
    let bash = |_| ("bash", "true".to_owned());
    let rate = throughput(&store, owner, Arc::new(native()), concurrency, 1000, bash).await;
    println!("{name}: trivial bash with {concurrency} slots: {rate:.0} executions/s");
    let python = |i| ("python", format!("print(sum(range({i} * 1000)))\n"));
    let rate = throughput(&store, owner, Arc::new(native()), concurrency, 40, python).await;
    println!(
        "{name}: 40 light python executions submitted at once, all done in {:.2} s",
        40.0 / rate
    );
    // 4. Slots beyond the cores: runs wait on process start-up and IO too.
    let rate = throughput(
        &store,
        owner,
        Arc::new(native()),
        concurrency * 2,
        1000,
        bash,
    )
    .await;
    println!(
        "{name}: trivial bash with {} slots: {rate:.0} executions/s",
        concurrency * 2
    );
    // 5. The queue's own ceiling: an executor that runs nothing.
    let rate = throughput(&store, owner, Arc::new(Nothing), concurrency, 1000, bash).await;
    println!(
        "{name}: queue ceiling (executor runs nothing, {concurrency} slots): {rate:.0} executions/s"
    );
}

/// Enqueues `n` executions (`program(i)` = language, code) at once to a fresh pool and waits
/// for all of them; returns executions per second.
async fn throughput(
    store: &Arc<dyn Store>,
    owner: UserId,
    executor: Arc<dyn Executor>,
    concurrency: usize,
    n: usize,
    program: impl Fn(usize) -> (&'static str, String),
) -> f64 {
    let config = WorkerConfig {
        per_user_concurrency: None,
        concurrency,
        ..WorkerConfig::default()
    };
    let pool = WorkerPool::start(Arc::clone(store), executor, "bench".into(), config);
    let finished = store.queue_signals().subscribe_finished();
    let t0 = Instant::now();
    for i in 0..n {
        let (language, code) = program(i);
        store
            .enqueue_execution(new_execution(owner, language, &code))
            .await
            .expect("enqueue");
    }
    wait_all_finished(store, finished, n).await;
    let secs = t0.elapsed().as_secs_f64();
    pool.shutdown().await;
    #[expect(clippy::cast_precision_loss, reason = "small count")]
    let rate = n as f64 / secs;
    rate
}

#[tokio::main]
async fn main() {
    let (sqlite, _dir) = voidrunner_store_sqlite::testing::fresh_store().await;
    bench("sqlite", Arc::new(sqlite)).await;
    if let Ok(url) = std::env::var("VOIDRUNNER_TEST_DATABASE_URL") {
        let pg = voidrunner_store_postgres::testing::fresh_store(&url).await;
        bench("postgres", Arc::new(pg)).await;
    } else {
        println!("postgres: skipped (set VOIDRUNNER_TEST_DATABASE_URL)");
    }
}

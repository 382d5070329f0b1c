//! Builds the execution engine (sandbox + native executor) and the worker pool from the
//! configuration. Used by `serve` (embedded pool) and `worker` (standalone node).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use serde::Deserialize;
use voidrunner_exec::docker::DEFAULT_SOCKET;
use voidrunner_exec::native::{NativeConfig, NativeExecutor};
use voidrunner_exec::{DockerConfig, DockerExecutor, Executor, LanguageRegistry, RoutingExecutor};
use voidrunner_sandbox::{HelperCommand, Mode, Sandbox, SandboxConfig};
use voidrunner_store::Store;
use voidrunner_worker::{WorkerConfig, WorkerPool};

/// `[sandbox]`: who sandboxed programs run as and where their scratch space lives. The
/// isolation itself (namespaces, seccomp, read-only root, limits) has no switches.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxSection {
    /// Unprivileged host uid of sandboxed programs (never 0).
    pub uid: u32,
    /// Unprivileged host gid of sandboxed programs (never 0).
    pub gid: u32,
    /// Name of VoidRunner's subtree in each cgroup hierarchy.
    pub cgroup_parent: String,
    /// Private directory (0700) for per-run workspaces.
    pub workspace_root: PathBuf,
    /// Size of the `/work` tmpfs of one execution (source, compiled binary, files written).
    pub workspace_mb: u64,
    /// Size of each run's `/tmp` tmpfs.
    pub tmp_mb: u64,
    /// Largest file a program may write.
    pub max_file_size_mb: u64,
    /// Open file descriptors per process.
    pub max_open_files: u64,
}

impl Default for SandboxSection {
    fn default() -> Self {
        let native = NativeConfig::default();
        Self {
            uid: 65534,
            gid: 65534,
            cgroup_parent: "voidrunner".to_owned(),
            workspace_root: PathBuf::from("/run/voidrunner"),
            workspace_mb: native.workspace_bytes >> 20,
            tmp_mb: native.tmp_bytes >> 20,
            max_file_size_mb: native.max_file_size_bytes >> 20,
            max_open_files: native.max_open_files,
        }
    }
}

/// `[docker]`: the optional Docker executor for languages whose registry entry says
/// `executor = "docker"`. Its container security settings have no switches.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DockerSection {
    /// Connect to the engine at start (start-up fails when it does not answer).
    pub enabled: bool,
    /// Engine socket.
    pub socket: String,
    /// `uid:gid` programs run as inside containers (root is refused: falls back to 1000:1000).
    pub user: String,
    /// Label identifying this node's containers, so a restarted node removes the ones its
    /// previous run left behind. Must be unique among running nodes; default: the worker
    /// node id (unique per process, so leftovers of a crashed run are reaped by age instead).
    pub node_id: Option<String>,
    /// Containers of any node older than this are removed at start.
    pub orphan_age_secs: u64,
}

impl Default for DockerSection {
    fn default() -> Self {
        let d = DockerConfig::default();
        Self {
            enabled: false,
            socket: DEFAULT_SOCKET.to_owned(),
            user: d.user,
            node_id: None,
            orphan_age_secs: d.orphan_age.as_secs(),
        }
    }
}

/// The executor of a worker node: the native sandbox, plus Docker for the languages that ask
/// for it when `[docker] enabled`.
pub async fn build_executor(
    section: &SandboxSection,
    docker: &DockerSection,
    registry: Arc<LanguageRegistry>,
    node_id: &str,
    sandbox: Arc<Sandbox>,
) -> anyhow::Result<Arc<dyn Executor>> {
    let native = Arc::new(NativeExecutor::new(
        sandbox,
        Arc::clone(&registry),
        native_config(section),
    ));
    let docker = if docker.enabled {
        let config = DockerConfig {
            socket: docker.socket.clone(),
            user: docker.user.clone(),
            node_id: docker.node_id.clone().unwrap_or_else(|| node_id.to_owned()),
            orphan_age: std::time::Duration::from_secs(docker.orphan_age_secs),
            limits: native_config(section),
            ..DockerConfig::default()
        };
        let executor = DockerExecutor::connect(Arc::clone(&registry), config)
            .await
            .context("docker.enabled: connecting to the Docker engine")?;
        let reaped = executor
            .reap_orphans()
            .await
            .context("removing orphaned containers")?;
        tracing::info!(
            docker.reaped = reaped,
            "docker executor ready ({reaped} orphaned containers removed)"
        );
        Some(Arc::new(executor) as Arc<dyn Executor>)
    } else {
        None
    };
    Ok(Arc::new(RoutingExecutor::new(registry, native, docker)))
}

fn native_config(section: &SandboxSection) -> NativeConfig {
    NativeConfig {
        workspace_bytes: section.workspace_mb << 20,
        tmp_bytes: section.tmp_mb << 20,
        max_file_size_bytes: section.max_file_size_mb << 20,
        max_open_files: section.max_open_files,
        ..NativeConfig::default()
    }
}

/// Starts the sandbox (helper = this binary's hidden subcommand) for executions and jobs.
pub fn build_sandbox(section: &SandboxSection) -> anyhow::Result<Arc<Sandbox>> {
    let helper = HelperCommand::current_exe().context("locating the voidrunner executable")?;
    let mut cfg = SandboxConfig::new(helper);
    cfg.uid = section.uid;
    cfg.gid = section.gid;
    cfg.cgroup_parent.clone_from(&section.cgroup_parent);
    cfg.workspace_root.clone_from(&section.workspace_root);
    let sandbox = Sandbox::new(cfg).context("starting the sandbox (see `voidrunner doctor`)")?;
    match sandbox.mode() {
        Mode::Full { cgroup } => {
            tracing::info!(sandbox.cgroup = ?cgroup, "sandbox ready: full isolation")
        }
        Mode::Degraded { reason } => {
            tracing::warn!(sandbox.reason = %reason, "sandbox DEGRADED: limits are rlimits only: {reason}");
        }
    }
    Ok(Arc::new(sandbox))
}

/// Starts a worker pool on the current runtime.
pub fn start_pool(
    store: Arc<dyn Store>,
    executor: Arc<dyn Executor>,
    node_id: String,
    config: WorkerConfig,
    metrics: Option<voidrunner_metrics::Metrics>,
    secret_box: Arc<voidrunner_mask::SecretBox>,
) -> anyhow::Result<WorkerPool> {
    config.validate()?;
    tracing::info!(worker.node_id = %node_id, worker.concurrency = config.concurrency, "worker pool {node_id} starting with {} slots", config.concurrency);
    let options = voidrunner_worker::PoolOptions {
        metrics,
        secret_box: Some(secret_box),
    };
    Ok(WorkerPool::start_with(
        store, executor, node_id, config, options,
    ))
}

/// `[jobs]`: the CI job worker of `serve` and `worker` nodes (see docs/JOBS.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsSection {
    /// Jobs run at once on this node; 0 disables the job worker.
    pub concurrency: usize,
    /// Jobs one user may have running at once across the cluster; 0 = no limit.
    pub per_user_concurrency: u32,
    /// Steps of one job at once (a job's `parallelism` is capped by it).
    pub width: usize,
    /// Default and maximum job wall time.
    pub timeout_secs: u64,
    /// Default wall time of a step.
    pub step_timeout_secs: u64,
    /// Memory of a step's process tree.
    pub step_memory_mb: u64,
    /// Size of a job's workspace tmpfs.
    pub workspace_mb: u64,
    /// Most bytes of artifacts per job.
    pub max_artifact_mb: u64,
    /// Git protocols sources may use (`file` only for tests and trusted setups).
    pub git_protocols: Vec<String>,
    /// Git hosts may resolve to loopback/private/link-local addresses (a self-hosted git
    /// server on the internal network); off: a user's URL cannot reach this network.
    pub git_allow_private: bool,
    /// Jobs may ask for `network: true`.
    pub allow_network: bool,
    /// Lease length; heartbeats every third of it.
    pub lease_secs: u64,
    /// Copy the workspace of a job that did not succeed to `<data_dir>/failed-workspaces/<id>`.
    pub keep_failed_workspaces: bool,
    /// Finished jobs and workflows (with everything they own) are deleted this long after
    /// they finished; 0 keeps them forever (see docs/OPERATIONS.md).
    pub retention_max_age_secs: u64,
    /// Pause between passes of the retention cleaner (jobs, workflows and hook deliveries).
    pub retention_interval_secs: u64,
}

impl Default for JobsSection {
    fn default() -> Self {
        Self {
            concurrency: 2,
            per_user_concurrency: 0,
            width: 4,
            timeout_secs: 3600,
            step_timeout_secs: 600,
            step_memory_mb: 1024,
            workspace_mb: 1024,
            max_artifact_mb: 64,
            git_protocols: vec!["https".into(), "ssh".into()],
            git_allow_private: false,
            allow_network: false,
            lease_secs: 30,
            keep_failed_workspaces: false,
            retention_max_age_secs: 0,
            retention_interval_secs: 300,
        }
    }
}

/// This node's job worker and workflow scheduler, started and stopped together.
#[derive(Debug)]
pub struct JobNode {
    worker: voidrunner_jobs::server::JobWorker,
    scheduler: voidrunner_jobs::scheduler::WorkflowScheduler,
}

impl JobNode {
    /// Stops claiming (running jobs are released for another node), then the scheduler.
    pub async fn stop(self) {
        self.worker.stop().await;
        self.scheduler.stop().await;
    }
}

/// Starts this node's job worker and workflow scheduler (`None` when `[jobs] concurrency =
/// 0`). Every such node runs a scheduler: passes are idempotent, so several are safe and a
/// killed node's workflows go on.
pub fn start_job_worker(
    jobs: &JobsSection,
    data_dir: &std::path::Path,
    store: Arc<dyn Store>,
    sandbox: Arc<Sandbox>,
    secret_box: Arc<voidrunner_mask::SecretBox>,
    node_id: &str,
) -> Option<JobNode> {
    use std::time::Duration;
    if jobs.concurrency == 0 {
        return None;
    }
    let runner = voidrunner_jobs::runner::RunnerConfig {
        width: jobs.width.max(1),
        sources: voidrunner_jobs::source::SourcePolicy {
            git_protocols: jobs.git_protocols.clone(),
            allow_private_hosts: jobs.git_allow_private,
            ..voidrunner_jobs::source::SourcePolicy::default()
        },
        step_limits: voidrunner_sandbox::Limits {
            wall_timeout: Duration::from_secs(jobs.step_timeout_secs),
            cpu_time: Duration::from_secs(jobs.step_timeout_secs),
            memory_bytes: jobs.step_memory_mb << 20,
            ..voidrunner_sandbox::Limits::default()
        },
        job_timeout: Duration::from_secs(jobs.timeout_secs),
        workspace_bytes: jobs.workspace_mb << 20,
        allow_network: jobs.allow_network,
        artifacts_dir: data_dir.join("job-scratch"),
        max_artifact_bytes: jobs.max_artifact_mb << 20,
        keep_failed_workspaces: jobs
            .keep_failed_workspaces
            .then(|| data_dir.join("failed-workspaces")),
    };
    let cfg = voidrunner_jobs::server::JobWorkerConfig {
        worker_id: format!("{node_id}-jobs"),
        concurrency: jobs.concurrency,
        per_user_concurrency: Some(jobs.per_user_concurrency).filter(|n| *n > 0),
        lease: Duration::from_secs(jobs.lease_secs.max(3)),
        poll: Duration::from_secs(1),
        retry: voidrunner_store::RetryPolicy::default(),
        runner,
    };
    tracing::info!(jobs.concurrency = jobs.concurrency, "job worker started");
    let scheduler = voidrunner_jobs::scheduler::WorkflowScheduler::start(
        store.clone(),
        voidrunner_jobs::scheduler::SchedulerConfig::default(),
    );
    let worker = voidrunner_jobs::server::JobWorker::start(store, sandbox, Some(secret_box), cfg);
    Some(JobNode { worker, scheduler })
}

/// Starts this node's CI retention cleaner (`None` when neither `[jobs]
/// retention_max_age_secs` nor `[hooks] delivery_retention_secs` is set). Every node runs
/// one: its batches are idempotent transactions, so several are safe.
pub fn start_retention(
    jobs: &JobsSection,
    hooks: &voidrunner_api::HookSettings,
    store: Arc<dyn Store>,
    metrics: Option<voidrunner_metrics::Metrics>,
) -> Option<voidrunner_jobs::retention::RetentionTask> {
    use std::time::Duration;
    let age = |secs: u64| (secs > 0).then(|| Duration::from_secs(secs));
    let settings = voidrunner_jobs::retention::RetentionSettings {
        job_max_age: age(jobs.retention_max_age_secs),
        delivery_max_age: age(hooks.delivery_retention_secs),
        batch: 100,
        interval: Duration::from_secs(jobs.retention_interval_secs.max(1)),
    };
    settings.enabled().then(|| {
        voidrunner_jobs::retention::RetentionCleaner::new(store, settings, metrics).spawn()
    })
}

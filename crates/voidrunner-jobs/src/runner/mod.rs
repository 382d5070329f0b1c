//! Runs one job on this machine: workspace, sources, lifecycle hooks, steps in the sandbox
//! (in parallel where the plan allows), the in-job socket, artifacts and cleanup. The same
//! code serves `voidrunner job run` (no server) and, through its events, the service.
//!
//! Workspace (host: a size- and inode-capped tmpfs; in each step: `/job`):
//! `src` (the source, possibly untrusted), `ci` (trusted CI code, read-only to steps),
//! `artifacts`, `tmp`, `.voidrunner` (the socket and the Python module).

mod artifacts;
mod hooks;
pub mod local;
mod steps;
mod triggers;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use voidrunner_mask::{SecretRegistry, SecretSet};
use voidrunner_sandbox::{Limits, Sandbox, Workspace};

use crate::control::{ControlServer, ControlWorkflow, JobState};
use crate::definition::{HookPhase, JobDefinition};
use crate::plan::{JobOutcome, Plan};
use crate::source::{SourceInputs, SourcePolicy, prepare};

pub use artifacts::ArtifactFile;
pub use hooks::{HookContext, LifecycleHook};

/// Operator settings of the runner.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Most steps at once (a job's `parallelism` is capped by it).
    pub width: usize,
    /// Source preparation rules.
    pub sources: SourcePolicy,
    /// Step limits when the job sets none (and the ceiling of what it may set).
    pub step_limits: Limits,
    /// Default job timeout.
    pub job_timeout: Duration,
    /// Workspace size in bytes.
    pub workspace_bytes: u64,
    /// Jobs may ask for network access (`network: true`); refused otherwise.
    pub allow_network: bool,
    /// Where collected artifacts are copied (one directory per job is made inside).
    pub artifacts_dir: PathBuf,
    /// Most bytes of artifacts per job.
    pub max_artifact_bytes: u64,
    /// When set, the workspace of a job that did not succeed is copied here (one directory
    /// per job id; links kept as links, never followed; the job socket left out) before it is
    /// removed, for debugging.
    pub keep_failed_workspaces: Option<PathBuf>,
}

/// One job to run.
#[derive(Debug, Clone)]
pub struct JobRequest {
    /// Job id (names the artifacts directory and the socket token's scope).
    pub id: String,
    /// The validated definition.
    pub definition: JobDefinition,
    /// Values of the definition's `secrets`.
    pub secrets: BTreeMap<String, String>,
    /// The uploaded archive of a `tarball` source.
    pub tarball: Option<PathBuf>,
    /// Where relative `copy` paths start.
    pub base_dir: Option<PathBuf>,
    /// The workflow facts of a job run as a workflow node (written to `/job/workflow.json`).
    pub workflow: Option<crate::link::WorkflowContext>,
    /// Where `trigger_jobs`, `is_job_running` and `get_job_result` go; without it those
    /// socket ops answer an error and `/job/triggers.json` is ignored.
    pub link: Option<std::sync::Arc<dyn crate::link::WorkflowLink>>,
}

/// Progress, for terminals and event logs. Output is already masked.
#[derive(Debug, Clone, PartialEq)]
pub enum JobEvent {
    /// A lifecycle phase begins.
    Phase(HookPhase),
    /// A step started.
    StepStarted {
        /// Step name.
        step: String,
    },
    /// Output of a step or a user hook (`step` is `hook:<phase>` for hooks).
    Output {
        /// Who wrote it.
        step: String,
        /// `stdout` or `stderr`.
        stream: &'static str,
        /// Masked bytes.
        data: Vec<u8>,
    },
    /// A step ended (or was skipped).
    StepFinished(StepReport),
    /// An artifact was collected.
    Artifact(ArtifactFile),
}

/// What happened to one step.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StepReport {
    /// Step name.
    pub name: String,
    /// Final state.
    pub state: &'static str,
    /// Exit code when it exited.
    pub exit_code: Option<i32>,
    /// Why it ended that way when not a plain exit (limit, signal, skip reason).
    pub detail: Option<String>,
    /// Wall time in milliseconds.
    pub wall_ms: u64,
    /// CPU time in milliseconds.
    pub cpu_ms: u64,
    /// Peak memory, when measured.
    pub peak_memory_bytes: Option<u64>,
}

/// A failure outside the steps: which phase, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JobFailure {
    /// `validation`, `source`, a hook phase, `workspace`, `timeout`.
    pub phase: String,
    /// Reason (never a secret value: messages come from rules and tools, masked).
    pub reason: String,
}

/// The result of a job.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct JobReport {
    /// `succeeded`, `failed` or `cancelled`.
    pub outcome: &'static str,
    /// Steps in definition order.
    pub steps: Vec<StepReport>,
    /// Outputs recorded through the socket.
    pub outputs: BTreeMap<String, String>,
    /// Artifacts collected.
    pub artifacts: Vec<ArtifactFile>,
    /// Failures outside the steps (source preparation, hooks, timeout), in order.
    pub failures: Vec<JobFailure>,
}

/// Sends events; a closed receiver is not an error.
#[derive(Debug, Clone)]
pub struct Events(mpsc::UnboundedSender<JobEvent>);

impl Events {
    /// Wraps a sender.
    pub fn new(tx: mpsc::UnboundedSender<JobEvent>) -> Self {
        Events(tx)
    }
    pub(crate) fn send(&self, e: JobEvent) {
        let _ = self.0.send(e);
    }
}

/// State shared by the parts of one run.
pub(crate) struct Job<'a> {
    pub cfg: &'a RunnerConfig,
    pub req: &'a JobRequest,
    pub sandbox: &'a Arc<Sandbox>,
    pub workspace: Arc<Workspace>,
    pub registry: SecretRegistry,
    pub token: String,
    pub events: Events,
    pub state: Arc<JobState>,
}

fn outcome_name(o: JobOutcome) -> &'static str {
    match o {
        JobOutcome::Succeeded => "succeeded",
        JobOutcome::Failed => "failed",
        JobOutcome::Cancelled => "cancelled",
    }
}

/// 256 bits from the OS generator, hex: the job socket's credential.
fn random_token() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Checks what the definition asks against the policy and the submission.
fn admit(cfg: &RunnerConfig, req: &JobRequest) -> Result<SecretSet, JobFailure> {
    let fail = |reason: String| JobFailure {
        phase: "validation".into(),
        reason,
    };
    if req.definition.network {
        return Err(fail(if cfg.allow_network {
            // Steps always run in an empty network namespace: say so instead of letting a
            // step discover it.
            "network access for steps is not available in this build (the sandbox has no network)"
                .into()
        } else {
            "network access is not allowed by this server's policy".into()
        }));
    }
    for name in &req.definition.secrets {
        if !req.secrets.contains_key(name) {
            return Err(fail(format!("secret {name} has no value")));
        }
    }
    SecretSet::from_values(req.secrets.values())
        .map_err(|e| fail(format!("a secret value is refused: {e}")))
}

/// Runs `req` to its end. Never panics on bad input: every failure is in the report.
pub async fn run_job(
    sandbox: Arc<Sandbox>,
    cfg: &RunnerConfig,
    req: &JobRequest,
    events: Events,
    cancel: CancellationToken,
) -> JobReport {
    let mut report = JobReport {
        outcome: "failed",
        steps: Vec::new(),
        outputs: BTreeMap::new(),
        artifacts: Vec::new(),
        failures: Vec::new(),
    };
    events.send(JobEvent::Phase(HookPhase::PreValidation));
    let secrets = match admit(cfg, req) {
        Ok(s) => s,
        Err(f) => {
            report.failures.push(f);
            return report;
        }
    };
    events.send(JobEvent::Phase(HookPhase::PostValidation));
    let workspace = match make_workspace(&sandbox, cfg, req.definition.limits.as_ref()) {
        Ok(ws) => Arc::new(ws),
        Err(reason) => {
            report.failures.push(JobFailure {
                phase: "workspace".into(),
                reason,
            });
            return report;
        }
    };
    if let Err(reason) = triggers::write_context(&workspace, req) {
        report.failures.push(JobFailure {
            phase: "workspace".into(),
            reason,
        });
        return report;
    }
    let job = Job {
        cfg,
        req,
        sandbox: &sandbox,
        workspace,
        registry: SecretRegistry::new(secrets),
        token: random_token(),
        events,
        state: Arc::new(JobState::default()),
    };
    let mut hooks = hooks::Hooks::new(&req.definition);
    let timeout = req
        .definition
        .timeout_secs
        .map_or(cfg.job_timeout, |s| Duration::from_secs(u64::from(s)))
        .min(cfg.job_timeout);
    let timed_out = CancellationToken::new();
    let stop = CancellationToken::new();
    let watcher = tokio::spawn({
        let (stop, timed_out, cancel) = (stop.clone(), timed_out.clone(), cancel.clone());
        async move {
            tokio::select! {
                () = cancel.cancelled() => {}
                () = tokio::time::sleep(timeout) => timed_out.cancel(),
            }
            stop.cancel();
        }
    });
    let mut plan = Plan::new(&req.definition);
    let ok = hooks
        .run(&job, HookPhase::PreSource, &stop, &mut report)
        .await
        && prepare_sources(&job, &mut report).await
        && hooks
            .run(&job, HookPhase::PostSource, &stop, &mut report)
            .await;
    let server = if ok {
        start_control(&job, &mut report)
    } else {
        None
    };
    let ok = ok
        && server.is_some()
        && hooks
            .run(&job, HookPhase::PreExecution, &stop, &mut report)
            .await;
    if ok {
        report.steps = steps::run_steps(&job, &mut plan, &stop, &timed_out).await;
        hooks
            .run(&job, HookPhase::PostExecution, &stop, &mut report)
            .await;
        if !cancel.is_cancelled() {
            triggers::apply_file(&job, &mut report).await;
        }
    } else {
        plan.abandon("the job failed before its steps");
        report.steps = steps::skipped(&plan);
    }
    watcher.abort();
    if timed_out.is_cancelled() {
        report.failures.push(JobFailure {
            phase: "timeout".into(),
            reason: format!("the job's timeout of {timeout:?} fired"),
        });
    }
    let outcome = if cancel.is_cancelled() {
        JobOutcome::Cancelled
    } else if !report.failures.is_empty() {
        JobOutcome::Failed
    } else {
        plan.outcome()
    };
    if outcome != JobOutcome::Succeeded {
        hooks
            .run(
                &job,
                HookPhase::OnError,
                &CancellationToken::new(),
                &mut report,
            )
            .await;
    }
    report.outcome = outcome_name(outcome);
    drop(server);
    if outcome != JobOutcome::Succeeded
        && let Some(dir) = &cfg.keep_failed_workspaces
    {
        let dest = dir.join(&req.id);
        let from = job.workspace.path().to_path_buf();
        let kept = tokio::task::spawn_blocking(move || keep_tree(&from, &dest)).await;
        if let Ok(Err(e)) | Err(e) = kept.map_err(|e| e.to_string()) {
            tracing::warn!(error = %e, "keeping the failed workspace of job {} failed", req.id);
        }
    }
    hooks
        .run(
            &job,
            HookPhase::Cleanup,
            &CancellationToken::new(),
            &mut report,
        )
        .await;
    report.outputs = job.state.outputs();
    report.artifacts = hooks.collected();
    report
}

fn make_workspace(
    sandbox: &Sandbox,
    cfg: &RunnerConfig,
    limits: Option<&crate::definition::JobLimits>,
) -> Result<Workspace, String> {
    // The job may ask for less than the runner's size, never more.
    let bytes = limits
        .and_then(|l| l.workspace_mb)
        .map_or(cfg.workspace_bytes, |mb| {
            (u64::from(mb) << 20).min(cfg.workspace_bytes)
        });
    let files = limits.and_then(|l| l.max_files).map(u64::from);
    let ws = sandbox
        .create_workspace_with(bytes, files)
        .map_err(|e| format!("cannot create the workspace: {e}"))?;
    for dir in ["src", "ci", "artifacts", "tmp", ".voidrunner"] {
        let p = ws.path().join(dir);
        std::fs::create_dir(&p).map_err(|e| format!("mkdir {dir}: {e}"))?;
    }
    ws.write_file(
        ".voidrunner/voidrunner_job.py",
        crate::PYTHON_MODULE.as_bytes(),
        0o644,
    )
    .map_err(|e| format!("installing the job module: {e}"))?;
    chown_tree(ws.path(), sandbox.config().uid, sandbox.config().gid)
        .map_err(|e| format!("chown workspace: {e}"))?;
    Ok(ws)
}

/// Hands a prepared tree to the sandbox user, never following a link.
fn chown_tree(root: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(root, Some(uid), Some(gid))?;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            std::os::unix::fs::lchown(&path, Some(uid), Some(gid))?;
            if entry.file_type()?.is_dir() {
                stack.push(path);
            }
        }
    }
    Ok(())
}

async fn prepare_sources(job: &Job<'_>, report: &mut JobReport) -> bool {
    let def = &job.req.definition;
    let mut work = vec![("src", def.source.clone())];
    if let Some(ci) = &def.ci_source {
        work.insert(0, ("ci", ci.clone())); // trusted code first
    }
    for (dir, source) in work {
        let dest = job.workspace.path().join(dir);
        let policy = job.cfg.sources.clone();
        let tarball = job.req.tarball.clone();
        let base = job.req.base_dir.clone();
        let result = tokio::task::spawn_blocking(move || {
            prepare(
                &source,
                &dest,
                SourceInputs {
                    tarball: tarball.as_deref(),
                    base_dir: base.as_deref(),
                },
                &policy,
            )
        })
        .await;
        let failure = match result {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(format!("source preparation crashed: {e}")),
        };
        if let Some(reason) = failure {
            report.failures.push(JobFailure {
                phase: "source".into(),
                reason: format!(
                    "{dir}: {}",
                    String::from_utf8_lossy(&job.registry.snapshot().mask_all(reason.as_bytes()))
                ),
            });
            return false;
        }
    }
    let (uid, gid) = (job.sandbox.config().uid, job.sandbox.config().gid);
    if let Err(e) = chown_tree(job.workspace.path(), uid, gid) {
        report.failures.push(JobFailure {
            phase: "source".into(),
            reason: format!("chown: {e}"),
        });
        return false;
    }
    true
}

fn start_control(job: &Job<'_>, report: &mut JobReport) -> Option<ControlServer> {
    let socket = job.workspace.path().join(".voidrunner/control.sock");
    match ControlServer::start_with(
        &socket,
        job.token.clone(),
        job.registry.clone(),
        job.state.clone(),
        job.workspace.path(),
        ControlWorkflow {
            context: job.req.workflow.clone(),
            link: job.req.link.clone(),
        },
    ) {
        Ok(s) => Some(s),
        Err(e) => {
            report.failures.push(JobFailure {
                phase: "workspace".into(),
                reason: format!("cannot open the job socket: {e}"),
            });
            None
        }
    }
}

/// Copies a workspace for debugging: files and directories, links recreated as links (never
/// followed), special files and the job socket left out.
fn keep_tree(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let entries = std::fs::read_dir(from.join(&rel)).map_err(|e| e.to_string())?;
        for entry in entries.flatten() {
            let rel_path = rel.join(entry.file_name());
            if rel_path == Path::new(".voidrunner/control.sock") {
                continue;
            }
            let (src, dst) = (from.join(&rel_path), to.join(&rel_path));
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let done = if kind.is_symlink() {
                std::fs::read_link(&src).and_then(|t| std::os::unix::fs::symlink(t, &dst))
            } else if kind.is_dir() {
                stack.push(rel_path.clone());
                std::fs::create_dir(&dst)
            } else if kind.is_file() {
                std::fs::copy(&src, &dst).map(|_| ())
            } else {
                Ok(())
            };
            done.map_err(|e| format!("{}: {e}", rel_path.display()))?;
        }
    }
    Ok(())
}

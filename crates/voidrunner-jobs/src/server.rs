//! The job worker of `serve` and `worker` nodes: claims queued jobs from the store, runs
//! each with the [`runner`](crate::runner) (the same code as `voidrunner job run`), and
//! records what happens through the store's fenced writes — step states, the job's event log
//! (output batched like execution logs), artifacts, and the result exactly once.
//!
//! Leases follow the execution queue: heartbeats extend the lease and report cancel
//! requests; a cancel signal from any node reaches the job through `QueueSignals`; a lost
//! lease stops the job without recording anything; an infrastructure failure releases the job
//! for retry (the reaper handles crashed workers).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use voidrunner_mask::SecretBox;
use voidrunner_sandbox::Sandbox;
use voidrunner_store::{
    JobArtifact, JobCompleteOutcome, JobFailure, JobId, JobLease, JobResult, JobSignal, JobStatus,
    JobStream, JobWorkflowLink, LeaseStatus, NewJobEvent, ReleaseReason, RetryPolicy, Scope,
    StepState, StepUpdate, Store, WorkflowId, backoff,
};

use crate::definition::{JobDefinition, Source};
use crate::link::{WorkflowContext, WorkflowLink};
use crate::runner::{Events, JobEvent, JobReport, JobRequest, RunnerConfig, run_job};
use crate::scheduler::{StoreLink, advance};

/// Settings of a node's job worker.
#[derive(Debug, Clone)]
pub struct JobWorkerConfig {
    /// This node's id (lease owner).
    pub worker_id: String,
    /// Jobs run at once on this node.
    pub concurrency: usize,
    /// Jobs one user may have running at once across the cluster; `None`: no limit.
    pub per_user_concurrency: Option<u32>,
    /// Lease length; heartbeats renew it every third of it.
    pub lease: Duration,
    /// Claim poll interval when no signal arrives.
    pub poll: Duration,
    /// Backoff of retried jobs.
    pub retry: RetryPolicy,
    /// The runner's settings; `artifacts_dir` is this node's scratch for collected files.
    pub runner: RunnerConfig,
}

/// A running job worker.
#[derive(Debug)]
pub struct JobWorker {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl JobWorker {
    /// Starts claiming. Jobs with secrets need `secret_box` (the key the API sealed them with).
    pub fn start(
        store: Arc<dyn Store>,
        sandbox: Arc<Sandbox>,
        secret_box: Option<Arc<SecretBox>>,
        cfg: JobWorkerConfig,
    ) -> JobWorker {
        let stop = CancellationToken::new();
        let shared = Arc::new(Shared {
            store,
            sandbox,
            secret_box,
            cfg,
            freed: tokio::sync::Notify::new(),
        });
        let task = tokio::spawn(claim_loop(shared, stop.clone()));
        JobWorker { stop, task }
    }

    /// Stops claiming and cancels the running jobs (they are released for another node).
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

struct Shared {
    store: Arc<dyn Store>,
    sandbox: Arc<Sandbox>,
    secret_box: Option<Arc<SecretBox>>,
    cfg: JobWorkerConfig,
    /// A job of this node ended: with a per-user limit, its owner's next job may be claimable.
    freed: tokio::sync::Notify,
}

fn after(d: Duration) -> voidrunner_domain::Timestamp {
    voidrunner_store::now() + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

async fn claim_loop(shared: Arc<Shared>, stop: CancellationToken) {
    let slots = Arc::new(Semaphore::new(shared.cfg.concurrency.max(1)));
    let mut work = shared.store.queue_signals().subscribe_work();
    let mut running = tokio::task::JoinSet::new();
    loop {
        let permit = tokio::select! {
            () = stop.cancelled() => break,
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let claimed = shared
            .store
            .claim_next_job(
                &shared.cfg.worker_id,
                after(shared.cfg.lease),
                voidrunner_store::now(),
                shared.cfg.per_user_concurrency,
            )
            .await;
        match claimed {
            Ok(Some(job)) => {
                let shared = shared.clone();
                let stop = stop.child_token();
                running.spawn(async move {
                    run_claimed(&shared, job, stop).await;
                    drop(permit);
                    if shared.cfg.per_user_concurrency.is_some() {
                        shared.freed.notify_one();
                    }
                });
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "claiming a job failed; retrying"),
        }
        drop(permit);
        // Reap crashed workers' jobs now and then (cheap when there are none).
        let retry = shared.cfg.retry;
        let retry_at = move |attempt: u32| after(backoff(&retry, attempt, rand_unit()));
        if let Err(e) = shared
            .store
            .reap_expired_job_leases(voidrunner_store::now(), &retry_at)
            .await
        {
            tracing::warn!(error = %e, "reaping job leases failed");
        }
        tokio::select! {
            () = stop.cancelled() => break,
            _ = work.changed() => {}
            () = shared.freed.notified() => {}
            () = tokio::time::sleep(shared.cfg.poll) => {}
        }
    }
    while running.join_next().await.is_some() {}
}

/// A uniform draw in [0, 1) for backoff jitter.
fn rand_unit() -> f64 {
    rand::random::<f64>()
}

/// Why a run could not start: retried (infrastructure) or recorded as a job failure.
enum Prep {
    Retry(String),
    Fail(JobFailure),
}

async fn prepare_request(
    shared: &Shared,
    job: &voidrunner_store::Job,
) -> Result<(JobRequest, Option<PathBuf>), Prep> {
    let definition: JobDefinition =
        serde_json::from_value(job.definition.clone()).map_err(|e| {
            Prep::Fail(JobFailure {
                phase: "validation".into(),
                reason: format!("stored definition does not parse: {e}"),
            })
        })?;
    let mut definition = definition;
    let (secrets, workflow, link) = match &job.workflow {
        None => (job_secrets(shared, job).await?, None, None),
        Some(wl) => {
            let context = workflow_context(wl);
            let secrets = workflow_secrets(shared, wl.workflow_id, &context, &definition).await?;
            // A secret the workflow does not have (a fork pull request's) is absent, not an
            // error: the job runs without it.
            definition.secrets.retain(|name| secrets.contains_key(name));
            let link: Arc<dyn WorkflowLink> = Arc::new(StoreLink::new(
                shared.store.clone(),
                wl.workflow_id,
                job.id,
                definition.clone(),
            ));
            (secrets, Some(context), Some(link))
        }
    };
    let wants_tarball = matches!(definition.source, Source::Tarball)
        || matches!(definition.ci_source, Some(Source::Tarball));
    let mut tarball = None;
    if wants_tarball && job.has_tarball {
        // The API stores the archive right after creating the job: wait a little for it.
        let mut bytes = None;
        for _ in 0..50 {
            match shared
                .store
                .job_blob(Scope::All, job.id, "source.tar")
                .await
            {
                Ok(b) => {
                    bytes = Some(b);
                    break;
                }
                Err(voidrunner_store::StoreError::NotFound) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(Prep::Retry(format!("reading the tarball: {e}"))),
            }
        }
        let Some(bytes) = bytes else {
            return Err(Prep::Fail(JobFailure {
                phase: "source".into(),
                reason: "the uploaded tarball is missing".into(),
            }));
        };
        let path = std::env::temp_dir().join(format!("voidrunner-job-{}.tar", job.id));
        tokio::fs::write(&path, bytes)
            .await
            .map_err(|e| Prep::Retry(format!("writing the tarball: {e}")))?;
        tarball = Some(path);
    }
    Ok((
        JobRequest {
            id: job.id.to_string(),
            definition,
            secrets,
            tarball: tarball.clone(),
            base_dir: None,
            workflow,
            link,
        },
        tarball,
    ))
}

/// The job's own secrets, opened with the context `"<job_id>/<NAME>"`.
async fn job_secrets(
    shared: &Shared,
    job: &voidrunner_store::Job,
) -> Result<BTreeMap<String, String>, Prep> {
    let sealed = shared
        .store
        .job_secrets(job.id)
        .await
        .map_err(|e| Prep::Retry(format!("reading the job's secrets: {e}")))?;
    open_secrets(shared, sealed, &job.id.to_string())
}

/// The workflow's secrets that the job's definition names, opened with the context
/// `"<workflow_id>/<NAME>"`; none for an untrusted workflow.
async fn workflow_secrets(
    shared: &Shared,
    id: WorkflowId,
    context: &WorkflowContext,
    definition: &JobDefinition,
) -> Result<BTreeMap<String, String>, Prep> {
    if !context.trusted || definition.secrets.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut sealed = shared
        .store
        .workflow_secrets(id)
        .await
        .map_err(|e| Prep::Retry(format!("reading the workflow's secrets: {e}")))?;
    sealed.retain(|name, _| definition.secrets.contains(name));
    open_secrets(shared, sealed, &id.to_string())
}

fn open_secrets(
    shared: &Shared,
    sealed: BTreeMap<String, Vec<u8>>,
    owner: &str,
) -> Result<BTreeMap<String, String>, Prep> {
    let mut secrets = BTreeMap::new();
    if sealed.is_empty() {
        return Ok(secrets);
    }
    let Some(secret_box) = &shared.secret_box else {
        return Err(Prep::Retry(
            "the job has secrets but this node has no secrets key".into(),
        ));
    };
    for (name, value) in sealed {
        let plain = secret_box
            .open_with_context(&value, format!("{owner}/{name}").as_bytes())
            .map_err(|e| Prep::Retry(format!("secret {name} does not open: {e}")))?;
        secrets.insert(name, String::from_utf8_lossy(&plain).into_owned());
    }
    Ok(secrets)
}

/// The context the scheduler froze into the job; a minimal one if it does not parse.
fn workflow_context(link: &JobWorkflowLink) -> WorkflowContext {
    serde_json::from_value(link.context.clone()).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "the stored workflow context does not parse");
        WorkflowContext {
            workflow_id: link.workflow_id.to_string(),
            node: link.node.clone(),
            ..WorkflowContext::default()
        }
    })
}

async fn run_claimed(shared: &Shared, job: voidrunner_store::Job, stop: CancellationToken) {
    use tracing::Instrument as _;
    let Some(lease) = JobLease::of(&job) else {
        return;
    };
    let span = tracing::info_span!(
        "job",
        job.id = %job.id,
        job.attempt = lease.attempt,
        request_id = job.request_id.as_deref().unwrap_or("")
    );
    run_leased(shared, job, lease, stop).instrument(span).await;
}

async fn run_leased(
    shared: &Shared,
    job: voidrunner_store::Job,
    lease: JobLease,
    stop: CancellationToken,
) {
    let (req, tarball) = match prepare_request(shared, &job).await {
        Ok(r) => r,
        Err(Prep::Retry(error)) => {
            tracing::warn!(error = %error, "job {} released for retry", job.id);
            let retry_at = after(backoff(&shared.cfg.retry, lease.attempt, rand_unit()));
            let _ = shared
                .store
                .release_job(
                    &lease,
                    ReleaseReason::Failure { error, retry_at },
                    voidrunner_store::now(),
                )
                .await;
            return;
        }
        Err(Prep::Fail(failure)) => {
            complete(
                shared,
                &lease,
                JobStatus::Failed,
                vec![failure],
                BTreeMap::new(),
            )
            .await;
            return;
        }
    };
    let cancel = CancellationToken::new();
    let lost = CancellationToken::new();
    let watch = tokio::spawn(watch_lease(
        shared.store.clone(),
        lease.clone(),
        shared.cfg.lease,
        cancel.clone(),
        lost.clone(),
        stop.clone(),
    ));
    let (tx, rx) = mpsc::unbounded_channel();
    let recorder = tokio::spawn(record_events(
        shared.store.clone(),
        lease.clone(),
        rx,
        steps_index(&req.definition),
    ));
    let report = run_job(
        shared.sandbox.clone(),
        &shared.cfg.runner,
        &req,
        Events::new(tx),
        cancel.clone(),
    )
    .await;
    let _ = recorder.await;
    watch.abort();
    if let Some(path) = tarball {
        let _ = tokio::fs::remove_file(path).await;
    }
    let job_dir = shared.cfg.runner.artifacts_dir.join(&req.id);
    if lost.is_cancelled() {
        tracing::warn!("job {} lost its lease; nothing recorded", job.id);
        let _ = tokio::fs::remove_dir_all(&job_dir).await;
        return;
    }
    if stop.is_cancelled() && report.outcome == "cancelled" {
        // This node is shutting down: give the job back instead of recording a cancel.
        let _ = shared
            .store
            .release_job(&lease, ReleaseReason::Shutdown, voidrunner_store::now())
            .await;
        let _ = tokio::fs::remove_dir_all(&job_dir).await;
        return;
    }
    let mut failures: Vec<JobFailure> = report
        .failures
        .iter()
        .map(|f| JobFailure {
            phase: f.phase.clone(),
            reason: f.reason.clone(),
        })
        .collect();
    if let Err(reason) = store_artifacts(shared, &lease, &report, &job_dir).await {
        failures.push(JobFailure {
            phase: "post_execution".into(),
            reason,
        });
    }
    let _ = tokio::fs::remove_dir_all(&job_dir).await;
    let status = match report.outcome {
        "succeeded" if failures.is_empty() => JobStatus::Succeeded,
        "cancelled" => JobStatus::Cancelled,
        _ => JobStatus::Failed,
    };
    complete(shared, &lease, status, failures, report.outputs.clone()).await;
}

async fn complete(
    shared: &Shared,
    lease: &JobLease,
    status: JobStatus,
    failures: Vec<JobFailure>,
    outputs: BTreeMap<String, String>,
) {
    let result = JobResult {
        status,
        steps: Vec::new(),
        failures,
        outputs,
        finished_at: voidrunner_store::now(),
    };
    match shared.store.complete_job(lease, result).await {
        Ok(JobCompleteOutcome::Completed(job)) => {
            tracing::info!(
                job.status = job.status.as_str(),
                "job {} {}",
                job.id,
                job.status.as_str()
            );
            if let Some(link) = job.workflow {
                // Fast path: decide the next nodes now (the schedulers' signal handling and
                // sweep do the same; passes are idempotent).
                if let Err(e) = advance(&*shared.store, link.workflow_id).await {
                    tracing::warn!(workflow.id = %link.workflow_id, error = %e, "advancing workflow {} failed: {e}", link.workflow_id);
                }
            }
        }
        Ok(JobCompleteOutcome::LeaseLost) => {
            tracing::warn!("job {} lost its lease before completing", lease.job_id)
        }
        Err(e) => tracing::error!(error = %e, "recording job {} failed", lease.job_id),
    }
}

fn steps_index(def: &JobDefinition) -> BTreeMap<String, u32> {
    def.steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.clone(), u32::try_from(i).unwrap_or(u32::MAX)))
        .collect()
}

/// Heartbeats; a cancel request (or a cancel signal from another node) cancels the run, a
/// lost lease cancels it and marks it lost, a node shutdown cancels it.
async fn watch_lease(
    store: Arc<dyn Store>,
    lease: JobLease,
    length: Duration,
    cancel: CancellationToken,
    lost: CancellationToken,
    stop: CancellationToken,
) {
    let mut signals = store.queue_signals().subscribe_jobs();
    let every = (length / 3).max(Duration::from_millis(100));
    loop {
        tokio::select! {
            () = stop.cancelled() => { cancel.cancel(); return; }
            s = signals.recv() => {
                if let Ok(JobSignal::Cancel(id)) = s && id == lease.job_id {
                    cancel.cancel();
                }
            }
            () = tokio::time::sleep(every) => {
                match store.heartbeat_job(&lease, after(length)).await {
                    Ok(LeaseStatus::Held { cancel_requested: true }) => cancel.cancel(),
                    Ok(LeaseStatus::Held { .. }) => {}
                    Ok(LeaseStatus::Lost) => { lost.cancel(); cancel.cancel(); return; }
                    Err(e) => tracing::warn!(error = %e, "job heartbeat failed"),
                }
            }
        }
    }
}

/// Writes the runner's events: step states at once, output batched (one write per 50 ms or
/// 64 KiB), phases as events.
async fn record_events(
    store: Arc<dyn Store>,
    lease: JobLease,
    mut rx: mpsc::UnboundedReceiver<JobEvent>,
    steps: BTreeMap<String, u32>,
) {
    let mut batch: Vec<NewJobEvent> = Vec::new();
    let mut bytes = 0usize;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        let event = tokio::select! {
            e = rx.recv() => e,
            _ = tick.tick() => {
                flush(&*store, &lease, &mut batch, &mut bytes).await;
                continue;
            }
        };
        let Some(event) = event else { break };
        match event {
            JobEvent::Output { step, stream, data } => {
                bytes += data.len();
                batch.push(NewJobEvent {
                    step: Some(step),
                    stream: if stream == "stderr" {
                        JobStream::Stderr
                    } else {
                        JobStream::Stdout
                    },
                    data,
                });
                if bytes >= 64 * 1024 {
                    flush(&*store, &lease, &mut batch, &mut bytes).await;
                }
            }
            JobEvent::Phase(phase) => batch.push(NewJobEvent {
                step: None,
                stream: JobStream::Phase,
                data: phase.as_str().as_bytes().to_vec(),
            }),
            JobEvent::StepStarted { step } => {
                flush(&*store, &lease, &mut batch, &mut bytes).await;
                if let Some(&idx) = steps.get(&step) {
                    let update = StepUpdate {
                        idx,
                        state: StepState::Running,
                        exit_code: None,
                        detail: None,
                        started_at: Some(voidrunner_store::now()),
                        finished_at: None,
                        wall_ms: None,
                        cpu_ms: None,
                        peak_memory_bytes: None,
                    };
                    let _ = store.update_step(&lease, update).await;
                }
            }
            JobEvent::StepFinished(r) => {
                flush(&*store, &lease, &mut batch, &mut bytes).await;
                if let (Some(&idx), Some(state)) = (steps.get(&r.name), StepState::parse(r.state)) {
                    let ran = state != StepState::Skipped;
                    let update = StepUpdate {
                        idx,
                        state,
                        exit_code: r.exit_code,
                        detail: r.detail.clone(),
                        started_at: None,
                        finished_at: Some(voidrunner_store::now()),
                        wall_ms: ran.then_some(r.wall_ms),
                        cpu_ms: ran.then_some(r.cpu_ms),
                        peak_memory_bytes: r.peak_memory_bytes,
                    };
                    let _ = store.update_step(&lease, update).await;
                }
            }
            JobEvent::Artifact(_) => {}
        }
    }
    flush(&*store, &lease, &mut batch, &mut bytes).await;
}

async fn flush(
    store: &dyn Store,
    lease: &JobLease,
    batch: &mut Vec<NewJobEvent>,
    bytes: &mut usize,
) {
    if batch.is_empty() {
        return;
    }
    if let Err(e) = store
        .append_job_events(lease, batch, voidrunner_store::now())
        .await
    {
        tracing::warn!(error = %e, "writing job events failed");
    }
    batch.clear();
    *bytes = 0;
}

/// Moves collected artifacts from this node's scratch directory into the store.
async fn store_artifacts(
    shared: &Shared,
    lease: &JobLease,
    report: &JobReport,
    dir: &std::path::Path,
) -> Result<(), String> {
    for a in &report.artifacts {
        let bytes = tokio::fs::read(dir.join(&a.path))
            .await
            .map_err(|e| format!("artifact {}: {e}", a.path))?;
        let name = format!("artifacts/{}", a.path);
        shared
            .store
            .put_job_blob(lease.job_id, &name, &bytes, voidrunner_store::now())
            .await
            .map_err(|e| format!("storing artifact {}: {e}", a.path))?;
        shared
            .store
            .record_job_artifact(
                lease,
                JobArtifact {
                    path: a.path.clone(),
                    size: a.size,
                    sha256: a.sha256.clone(),
                    object_key: format!("db:{name}"),
                },
            )
            .await
            .map_err(|e| format!("recording artifact {}: {e}", a.path))?;
    }
    Ok(())
}

/// Parses a job id (for callers holding strings).
pub fn parse_job_id(s: &str) -> Option<JobId> {
    s.parse().ok()
}

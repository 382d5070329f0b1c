//! Running a [`LocalWorkflow`]: decide, start ready nodes' jobs (at most `width` at once),
//! record how each ended, decide again — also as soon as a trigger adds nodes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use voidrunner_sandbox::Sandbox;

use super::{LocalWorkflow, Start};
use crate::runner::{Events, JobEvent, JobReport, JobRequest, RunnerConfig, run_job};
use crate::workflow::{NodeState, WorkflowStatus};

/// What a local run reports as it goes.
#[derive(Debug, Clone)]
pub enum LocalEvent {
    /// A node's job started.
    Started {
        /// Node.
        node: String,
        /// Its job id.
        job_id: String,
    },
    /// A node was skipped.
    Skipped {
        /// Node.
        node: String,
        /// Why.
        reason: String,
    },
    /// Progress of a node's job.
    Job {
        /// Node.
        node: String,
        /// The event.
        event: JobEvent,
    },
    /// A node's job ended.
    Finished {
        /// Node.
        node: String,
        /// Its state.
        state: NodeState,
        /// The job's report.
        report: Box<JobReport>,
    },
}

/// How a local run runs its jobs.
#[derive(Debug, Clone)]
pub struct LocalRun {
    /// The sandbox.
    pub sandbox: Arc<Sandbox>,
    /// Runner settings (shared by every job).
    pub cfg: RunnerConfig,
    /// Secret values; each job gets those its definition names.
    pub secrets: BTreeMap<String, String>,
    /// Where relative `copy` sources start.
    pub base_dir: Option<PathBuf>,
    /// The archive of `tarball` sources.
    pub tarball: Option<PathBuf>,
    /// Most jobs at once.
    pub width: usize,
    /// Stop starting jobs after this many (`job run` without `--follow`: 1).
    pub max_jobs: Option<usize>,
}

/// Runs `workflow` until nothing more can start (or `run.max_jobs` jobs ran); answers its
/// status. Cancel stops running jobs and skips pending nodes.
pub async fn run_workflow(
    workflow: &Arc<LocalWorkflow>,
    run: &LocalRun,
    events: &mpsc::UnboundedSender<LocalEvent>,
    cancel: &CancellationToken,
) -> WorkflowStatus {
    let cfg = Arc::new(run.cfg.clone());
    let mut running: JoinSet<(String, JobReport)> = JoinSet::new();
    let mut launched = 0usize;
    loop {
        if cancel.is_cancelled() {
            workflow.abandon("the workflow was cancelled");
        }
        let budget = run
            .max_jobs
            .map_or(usize::MAX, |m| m.saturating_sub(launched));
        let room = run.width.max(1).saturating_sub(running.len()).min(budget);
        if room > 0 || run.max_jobs.is_none() {
            let (starts, skipped) = workflow.decide(room);
            for (node, reason) in skipped {
                let _ = events.send(LocalEvent::Skipped { node, reason });
            }
            for start in starts {
                launched += 1;
                let _ = events.send(LocalEvent::Started {
                    node: start.node.clone(),
                    job_id: start.job_id.clone(),
                });
                spawn_job(&mut running, workflow, run, &cfg, start, events, cancel);
            }
        }
        if running.is_empty() {
            break;
        }
        let done = tokio::select! {
            done = running.join_next() => done,
            () = workflow.added.notified() => continue,
        };
        let Some(Ok((node, report))) = done else {
            continue;
        };
        let state = workflow.finish(&node, &report);
        let _ = events.send(LocalEvent::Finished {
            node,
            state,
            report: Box::new(report),
        });
    }
    workflow.status()
}

fn spawn_job(
    running: &mut JoinSet<(String, JobReport)>,
    workflow: &Arc<LocalWorkflow>,
    run: &LocalRun,
    cfg: &Arc<RunnerConfig>,
    start: Start,
    events: &mpsc::UnboundedSender<LocalEvent>,
    cancel: &CancellationToken,
) {
    let secrets = run
        .secrets
        .iter()
        .filter(|(k, _)| start.job.secrets.contains(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let req = JobRequest {
        id: start.job_id,
        definition: start.job,
        secrets,
        tarball: run.tarball.clone(),
        base_dir: run.base_dir.clone(),
        workflow: Some(start.context),
        link: Some(workflow.link(&start.node)),
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let forward = {
        let (events, node) = (events.clone(), start.node.clone());
        tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                let _ = events.send(LocalEvent::Job {
                    node: node.clone(),
                    event,
                });
            }
        })
    };
    let (sandbox, cfg, cancel, node) =
        (run.sandbox.clone(), cfg.clone(), cancel.clone(), start.node);
    running.spawn(async move {
        let report = run_job(sandbox, &cfg, &req, Events::new(tx), cancel).await;
        drop(req);
        let _ = forward.await;
        (node, report)
    });
}

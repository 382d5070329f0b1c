//! Steps: each in its own sandboxed process with the workspace at `/job`, started as the plan
//! allows, output masked on its way out, killed on cancel or timeout.

use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use voidrunner_sandbox::{Limits, OutputChunk, RunResult, RunSpec, SandboxVerdict, Stream};

use super::{Job, JobEvent, StepReport};
use crate::definition::Step;
use crate::path::workspace_relative;
use crate::plan::{Plan, StepState};

/// Runs the plan to its end; answers a report per step, in definition order.
pub(crate) async fn run_steps(
    job: &Job<'_>,
    plan: &mut Plan,
    stop: &CancellationToken,
    timed_out: &CancellationToken,
) -> Vec<StepReport> {
    let width = job
        .req
        .definition
        .parallelism
        .map_or(job.cfg.width, |p| {
            usize::try_from(p).unwrap_or(1).min(job.cfg.width)
        })
        .max(1);
    let mut reports: Vec<Option<StepReport>> = vec![None; plan.len()];
    let mut running = FuturesUnordered::new();
    let mut abandoned = false;
    loop {
        let started = if stop.is_cancelled() {
            Vec::new()
        } else {
            plan.next(width)
        };
        // Skips decided by this pass are reported before the starts, in plan order.
        report_skips(job, plan, &mut reports);
        for i in started {
            job.events.send(JobEvent::StepStarted {
                step: plan.name(i).to_owned(),
            });
            running.push(run_step(job, i, stop.child_token()));
        }
        if running.is_empty() {
            if stop.is_cancelled() && !abandoned {
                plan.abandon(abandon_reason(timed_out));
                report_skips(job, plan, &mut reports);
            }
            break;
        }
        tokio::select! {
            Some((i, result)) = running.next() => {
                let (state, report) = finished(plan.name(i), result, timed_out);
                plan.finish(i, state);
                job.events.send(JobEvent::StepFinished(report.clone()));
                reports[i] = Some(report);
            }
            () = stop.cancelled(), if !abandoned => {
                abandoned = true;
                plan.abandon(abandon_reason(timed_out));
            }
        }
    }
    reports
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.unwrap_or_else(|| skip_report(plan, i)))
        .collect()
}

fn abandon_reason(timed_out: &CancellationToken) -> &'static str {
    if timed_out.is_cancelled() {
        "the job timed out"
    } else {
        "the job was cancelled"
    }
}

/// Reports of a plan whose steps never started.
pub(crate) fn skipped(plan: &Plan) -> Vec<StepReport> {
    (0..plan.len()).map(|i| skip_report(plan, i)).collect()
}

fn skip_report(plan: &Plan, i: usize) -> StepReport {
    StepReport {
        name: plan.name(i).to_owned(),
        state: plan.state(i).as_str(),
        exit_code: None,
        detail: plan.skip_reason(i).map(str::to_owned),
        wall_ms: 0,
        cpu_ms: 0,
        peak_memory_bytes: None,
    }
}

fn report_skips(job: &Job<'_>, plan: &Plan, reports: &mut [Option<StepReport>]) {
    for (i, slot) in reports.iter_mut().enumerate() {
        if slot.is_none() && plan.state(i) == StepState::Skipped {
            let r = skip_report(plan, i);
            job.events.send(JobEvent::StepFinished(r.clone()));
            *slot = Some(r);
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn finished(
    name: &str,
    result: Result<RunResult, String>,
    timed_out: &CancellationToken,
) -> (StepState, StepReport) {
    let mut report = StepReport {
        name: name.to_owned(),
        state: "failed",
        exit_code: None,
        detail: None,
        wall_ms: 0,
        cpu_ms: 0,
        peak_memory_bytes: None,
    };
    let r = match result {
        Ok(r) => r,
        Err(e) => {
            report.detail = Some(format!("sandbox error: {e}"));
            return (StepState::Failed, report);
        }
    };
    report.wall_ms = millis(r.wall_time);
    report.cpu_ms = millis(r.cpu_time);
    report.peak_memory_bytes = r.peak_memory_bytes;
    let (state, detail) = match r.verdict {
        SandboxVerdict::Exited(0) => {
            report.exit_code = Some(0);
            (StepState::Succeeded, None)
        }
        SandboxVerdict::Exited(code) => {
            report.exit_code = Some(code);
            (StepState::Failed, None)
        }
        SandboxVerdict::Signaled(sig) => {
            (StepState::Failed, Some(format!("killed by signal {sig}")))
        }
        SandboxVerdict::Timeout => (StepState::TimedOut, Some("step timeout".to_owned())),
        SandboxVerdict::CpuLimit => (StepState::Failed, Some("CPU time limit".to_owned())),
        SandboxVerdict::MemoryLimit => (StepState::Failed, Some("memory limit".to_owned())),
        SandboxVerdict::OutputLimit => (StepState::Failed, Some("output limit".to_owned())),
        SandboxVerdict::Cancelled if timed_out.is_cancelled() => {
            (StepState::TimedOut, Some("job timeout".to_owned()))
        }
        SandboxVerdict::Cancelled => (StepState::Cancelled, Some("job cancelled".to_owned())),
        SandboxVerdict::SandboxError(e) => (StepState::Failed, Some(format!("sandbox error: {e}"))),
    };
    report.state = state.as_str();
    report.detail = detail;
    (state, report)
}

/// The environment of every command of the job (steps and user hooks).
pub(crate) fn base_env(job: &Job<'_>, who: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("PATH", "/usr/local/bin:/usr/bin:/bin"),
        ("HOME", "/job/tmp"),
        ("TMPDIR", "/tmp"),
        ("LANG", "C.UTF-8"),
        ("CI", "true"),
        ("PYTHONPATH", "/job/.voidrunner"),
        ("VOIDRUNNER_JOB_SOCKET", "/job/.voidrunner/control.sock"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    env.push(("VOIDRUNNER_JOB".into(), job.req.definition.name.clone()));
    env.push(("VOIDRUNNER_JOB_ID".into(), job.req.id.clone()));
    env.push(("VOIDRUNNER_STEP".into(), who.to_owned()));
    env.push(("VOIDRUNNER_JOB_TOKEN".into(), job.token.clone()));
    if let Some(wf) = &job.req.workflow {
        env.push(("VOIDRUNNER_WORKFLOW_ID".into(), wf.workflow_id.clone()));
        env.push(("VOIDRUNNER_WORKFLOW_NODE".into(), wf.node.clone()));
    }
    for (k, v) in &job.req.definition.env {
        env.push((k.clone(), v.clone()));
    }
    for name in &job.req.definition.secrets {
        if let Some(v) = job.req.secrets.get(name) {
            env.push((name.clone(), v.clone()));
        }
    }
    env
}

/// Limits of a command: the job's `limits` over the runner's defaults.
pub(crate) fn limits(job: &Job<'_>, timeout_secs: Option<u32>) -> Limits {
    let mut l = job.cfg.step_limits;
    if let Some(j) = &job.req.definition.limits {
        if let Some(m) = j.memory_mb {
            l.memory_bytes = u64::from(m) * 1024 * 1024;
        }
        if let Some(c) = j.cpu_cores {
            l.cpu_cores = c;
        }
        if let Some(p) = j.max_processes {
            l.max_processes = p;
        }
        if let Some(o) = j.max_output_bytes {
            l.max_output_bytes = o;
        }
    }
    if let Some(t) = timeout_secs {
        l.wall_timeout = Duration::from_secs(u64::from(t));
    }
    l.cpu_time = l.cpu_time.max(l.wall_timeout);
    l
}

/// Runs `command` in the job's sandbox as `who`, forwarding masked output as events.
pub(crate) async fn run_command(
    job: &Job<'_>,
    who: &str,
    command: &str,
    cwd: &str,
    extra_env: &[(String, String)],
    limits: Limits,
    cancel: CancellationToken,
) -> Result<RunResult, String> {
    let mut spec = RunSpec::new(["/bin/sh", "-c", command]);
    spec.env = base_env(job, who);
    spec.env.extend(extra_env.iter().cloned());
    spec.cwd = cwd.to_owned();
    spec.workspace = Some(job.workspace.clone());
    spec.workspace_target = Some("/job".into());
    spec.workspace_readonly = vec!["ci".into()];
    spec.limits = limits;
    let (tx, mut rx) = mpsc::channel::<OutputChunk>(64);
    let forward = async {
        let mut out = job.registry.masker();
        let mut err = job.registry.masker();
        while let Some(chunk) = rx.recv().await {
            let (masker, stream) = match chunk.stream {
                Stream::Stdout => (&mut out, "stdout"),
                Stream::Stderr => (&mut err, "stderr"),
            };
            let mut data = Vec::new();
            masker.push(&chunk.data, &mut data);
            if !data.is_empty() {
                job.events.send(JobEvent::Output {
                    step: who.to_owned(),
                    stream,
                    data,
                });
            }
        }
        for (masker, stream) in [(&mut out, "stdout"), (&mut err, "stderr")] {
            let mut data = Vec::new();
            masker.finish(&mut data);
            if !data.is_empty() {
                job.events.send(JobEvent::Output {
                    step: who.to_owned(),
                    stream,
                    data,
                });
            }
        }
    };
    let (result, ()) = tokio::join!(job.sandbox.run(spec, tx, cancel), forward);
    result.map_err(|e| e.to_string())
}

async fn run_step(
    job: &Job<'_>,
    i: usize,
    cancel: CancellationToken,
) -> (usize, Result<RunResult, String>) {
    let step: &Step = &job.req.definition.steps[i];
    let cwd = match step.working_dir.as_deref().map(workspace_relative) {
        None => "/job/src".to_owned(),
        Some(Ok(rel)) => format!("/job/{rel}"),
        Some(Err(e)) => return (i, Err(format!("working_dir {e}"))),
    };
    let env: Vec<(String, String)> = step
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let limits = limits(job, step.timeout_secs);
    let result = run_command(job, &step.name, &step.command, &cwd, &env, limits, cancel).await;
    (i, result)
}

//! One container from creation to removal: attach, start, feed stdin, stream output with the
//! output cap, enforce the wall timeout and cancellation, sample metrics, read the verdict,
//! remove. A drop guard removes the container even when the future is dropped.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, KillContainerOptionsBuilder, RemoveContainerOptionsBuilder,
    StatsOptionsBuilder,
};
use bytes::Bytes;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use voidrunner_domain::Verdict;
use voidrunner_sandbox::Limits;

use crate::{OutputEvent, OutputStream, Phase, PhaseReport};

/// How often the cgroup files of a running container are read for CPU and peak memory.
const SAMPLE_EVERY: Duration = Duration::from_millis(20);

/// What one container run needs from the executor.
#[derive(Debug)]
pub(super) struct ContainerRun<'a> {
    pub docker: &'a Docker,
    pub limits: &'a Limits,
    pub output: &'a mpsc::Sender<OutputEvent>,
    pub cancel: &'a CancellationToken,
    /// The phase the output events carry.
    pub phase: Phase,
    /// When set, stdout is not output but data kept for the next phase (the compile phase's
    /// tar archive), up to this many bytes; more is an `OutputLimit`.
    pub capture_stdout: Option<u64>,
    /// Start of the whole execution (output event timestamps are relative to it).
    pub started: Instant,
}

/// What one container produced.
#[derive(Debug)]
pub(super) struct Ran {
    /// The phase report, or why the container could not run (a `SandboxError`).
    pub report: Result<PhaseReport, String>,
    /// Captured stdout (see [`ContainerRun::capture_stdout`]).
    pub captured: Vec<u8>,
}

/// Removes the container when dropped (spawned on the current runtime), unless
/// [`RemoveGuard::remove`] already did it.
struct RemoveGuard {
    docker: Option<Docker>,
    id: String,
}

impl RemoveGuard {
    async fn remove(mut self) {
        if let Some(docker) = self.docker.take() {
            remove_force(&docker, &self.id).await;
        }
    }
}

impl Drop for RemoveGuard {
    fn drop(&mut self) {
        let Some(docker) = self.docker.take() else {
            return;
        };
        let id = std::mem::take(&mut self.id);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move { remove_force(&docker, &id).await });
            }
            Err(_) => tracing::warn!(
                docker.container = %id,
                "container {id} left behind (no runtime); it is reaped at the next start"
            ),
        }
    }
}

async fn remove_force(docker: &Docker, id: &str) {
    let opts = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    if let Err(e) = docker.remove_container(id, Some(opts)).await {
        tracing::warn!(docker.container = %id, error = %e, "removing container {id}: {e}");
    }
}

async fn kill(docker: &Docker, id: &str) {
    let opts = KillContainerOptionsBuilder::new().signal("KILL").build();
    if let Err(e) = docker.kill_container(id, Some(opts)).await {
        // "is not running" is the normal race with a program that just ended.
        tracing::debug!(docker.container = %id, error = %e, "killing container {id}: {e}");
    }
}

/// Peak memory and CPU time seen so far.
#[derive(Debug, Default, Clone, Copy)]
struct Sample {
    peak_memory: Option<u64>,
    cpu_ns: Option<u64>,
}

impl Sample {
    fn merge(&mut self, peak: Option<u64>, cpu: Option<u64>) {
        if let Some(p) = peak {
            self.peak_memory = Some(self.peak_memory.map_or(p, |q| q.max(p)));
        }
        if let Some(c) = cpu {
            self.cpu_ns = Some(self.cpu_ns.map_or(c, |d| d.max(c)));
        }
    }
}

fn read_u64(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Samples the container's cgroup v1 files directly (when this process sees them: engine on
/// the same host, `cgroupfs` driver) and the engine's stats stream (everywhere, ~1 s apart).
async fn sample(docker: Docker, id: String, into: Arc<Mutex<Sample>>) {
    let mem = format!("/sys/fs/cgroup/memory/docker/{id}/memory.max_usage_in_bytes");
    let cpu = [
        format!("/sys/fs/cgroup/cpuacct/docker/{id}/cpuacct.usage"),
        format!("/sys/fs/cgroup/cpu,cpuacct/docker/{id}/cpuacct.usage"),
    ];
    let opts = StatsOptionsBuilder::new().stream(true).build();
    let mut stats = docker.stats(&id, Some(opts));
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    let mut stats_open = true;
    loop {
        let (peak, used) = tokio::select! {
            _ = tick.tick() => (read_u64(&mem), cpu.iter().find_map(|p| read_u64(p))),
            s = stats.next(), if stats_open => match s {
                Some(Ok(s)) => (
                    s.memory_stats.and_then(|m| m.max_usage),
                    s.cpu_stats.and_then(|c| c.cpu_usage).and_then(|u| u.total_usage),
                ),
                _ => { stats_open = false; (None, None) }
            },
        };
        if let Ok(mut s) = into.lock() {
            s.merge(peak, used.filter(|c| *c > 0));
        }
    }
}

/// The first reason the supervisor killed the container for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum KillReason {
    Timeout,
    Cancel,
    Output,
}

impl ContainerRun<'_> {
    /// Creates, runs and removes one container; never leaves it behind.
    pub async fn run(self, body: bollard::models::ContainerCreateBody, input: Vec<u8>) -> Ran {
        let id = match self.docker.create_container(None, body).await {
            Ok(r) => r.id,
            Err(e) => {
                return Ran {
                    report: Err(format!("creating the container: {e}")),
                    captured: Vec::new(),
                };
            }
        };
        let guard = RemoveGuard {
            docker: Some(self.docker.clone()),
            id: id.clone(),
        };
        let mut captured = Vec::new();
        let report = self.supervise(&id, input, &mut captured).await;
        guard.remove().await;
        Ran { report, captured }
    }

    async fn supervise(
        &self,
        id: &str,
        input: Vec<u8>,
        captured: &mut Vec<u8>,
    ) -> Result<PhaseReport, String> {
        let started = self.started;
        let opts = AttachContainerOptionsBuilder::new()
            .stream(true)
            .stdin(true)
            .stdout(true)
            .stderr(true)
            .logs(false)
            .build();
        let attached = self
            .docker
            .attach_container(id, Some(opts))
            .await
            .map_err(|e| format!("attaching to the container: {e}"))?;
        let (mut out, mut stdin) = (attached.output, attached.input);
        self.docker
            .start_container(id, None)
            .await
            .map_err(|e| format!("starting the container: {e}"))?;
        let run_started = Instant::now();
        let metrics = Arc::new(Mutex::new(Sample::default()));
        let sampler = tokio::spawn(sample(
            self.docker.clone(),
            id.to_owned(),
            Arc::clone(&metrics),
        ));
        // A program that never reads its stdin must not block the supervisor: the writer is
        // its own task, aborted at the end.
        let writer = tokio::spawn(async move {
            let _ = stdin.write_all(&input).await;
            let _ = stdin.shutdown().await;
        });
        let mut wait = self.docker.wait_container(id, None);
        let deadline = tokio::time::sleep(self.limits.wall_timeout);
        tokio::pin!(deadline);
        let mut reason: Option<KillReason> = None;
        let mut exit: Option<Result<i64, String>> = None;
        let mut out_done = false;
        let mut written: u64 = 0;
        let mut truncated = false;
        let mut open = true;
        while exit.is_none() || !out_done {
            let new_reason = tokio::select! {
                () = self.cancel.cancelled(), if reason.is_none() => Some(KillReason::Cancel),
                () = &mut deadline, if reason.is_none() => Some(KillReason::Timeout),
                w = wait.next(), if exit.is_none() => {
                    exit = Some(match w {
                        Some(Ok(r)) => Ok(r.status_code),
                        Some(Err(BollardError::DockerContainerWaitError { code, .. })) => Ok(code),
                        Some(Err(e)) => Err(format!("waiting for the container: {e}")),
                        None => Err("the engine closed the wait stream".to_owned()),
                    });
                    None
                }
                item = out.next(), if !out_done => {
                    let (stream, data) = match item {
                        Some(Ok(LogOutput::StdOut { message } | LogOutput::Console { message })) => (OutputStream::Stdout, message),
                        Some(Ok(LogOutput::StdErr { message })) => (OutputStream::Stderr, message),
                        Some(Ok(LogOutput::StdIn { .. })) => continue,
                        Some(Err(_)) | None => { out_done = true; continue; }
                    };
                    if truncated {
                        continue; // drain until the killed container closes its streams
                    }
                    if let (Some(cap), OutputStream::Stdout) = (self.capture_stdout, stream) {
                        captured.extend_from_slice(&data);
                        if captured.len() as u64 > cap {
                            truncated = true;
                            Some(KillReason::Output)
                        } else {
                            None
                        }
                    } else {
                    let room = self.limits.max_output_bytes.saturating_sub(written);
                    let over = data.len() as u64 > room;
                    let data: Bytes = if over { data.slice(..usize::try_from(room).unwrap_or(0)) } else { data };
                    written += data.len() as u64;
                    if open && !data.is_empty() {
                        let event = OutputEvent { stream, data, elapsed: started.elapsed(), phase: self.phase };
                        open = self.output.send(event).await.is_ok();
                    }
                    if over {
                        truncated = true;
                        Some(KillReason::Output)
                    } else {
                        None
                    }
                    }
                }
            };
            if let Some(r) = new_reason
                && reason.is_none()
            {
                reason = Some(r);
                // Not awaited here: the engine finishes a kill only once the container's
                // output is drained, so this loop must keep reading meanwhile.
                let (docker, id) = (self.docker.clone(), id.to_owned());
                tokio::spawn(async move { kill(&docker, &id).await });
            }
        }
        let wall_time = run_started.elapsed();
        writer.abort();
        sampler.abort();
        let code = exit.unwrap_or_else(|| Err("no exit status".to_owned()))?;
        let inspect = self
            .docker
            .inspect_container(id, None)
            .await
            .map_err(|e| format!("inspecting the container: {e}"))?;
        let mut oom = inspect.state.and_then(|s| s.oom_killed).unwrap_or(false);
        let sample = metrics.lock().map(|s| *s).unwrap_or_default();
        let cpu_time = sample.cpu_ns.map_or(Duration::ZERO, Duration::from_nanos);
        if code == 137 && reason.is_none() && !oom && cpu_time < self.limits.cpu_time {
            oom = self.late_oom(id, sample.peak_memory).await;
        }
        let verdict = verdict(reason, oom, code, cpu_time, wall_time, self.limits.cpu_time);
        Ok(PhaseReport {
            phase: self.phase,
            verdict,
            wall_time,
            cpu_time,
            peak_memory_bytes: sample.peak_memory,
            output_truncated: truncated,
            samples: Vec::new(),
        })
    }
}

impl ContainerRun<'_> {
    /// Whether a SIGKILL the supervisor did not send was the memory limit, when the engine's
    /// flag said no. The engine learns of an OOM kill through an event that can arrive after
    /// the exit (seen on Docker 20.10 with cgroup v1: `OOMKilled=false`, peak usage at the
    /// limit), so: the peak memory at the limit (memory and swap are capped together, so
    /// reaching it means reclaim failed), else the flag read again a few times.
    async fn late_oom(&self, id: &str, peak: Option<u64>) -> bool {
        if reached_limit(peak, self.limits.memory_bytes) {
            return true;
        }
        for _ in 0..LATE_OOM_READS {
            tokio::time::sleep(LATE_OOM_WAIT).await;
            let Ok(inspect) = self.docker.inspect_container(id, None).await else {
                return false;
            };
            if inspect.state.and_then(|s| s.oom_killed).unwrap_or(false) {
                return true;
            }
        }
        false
    }
}

/// How many times, and how far apart, the engine's OOM flag is read again after an
/// unexplained SIGKILL.
const LATE_OOM_READS: u32 = 3;
const LATE_OOM_WAIT: Duration = Duration::from_millis(30);

/// Peak usage within one page-cache slack (1 MiB) of the memory limit.
fn reached_limit(peak: Option<u64>, limit: u64) -> bool {
    peak.is_some_and(|p| limit > 0 && p.saturating_add(1 << 20) >= limit)
}

/// The verdict from what happened: the supervisor's own kill reason first, then the engine's
/// OOM flag, then an exit status 137 with the CPU limit used up (the hard `RLIMIT_CPU` is a
/// SIGKILL), then the status itself (`128 + n` is signal `n`, as the engine reports it).
fn verdict(
    reason: Option<KillReason>,
    oom: bool,
    code: i64,
    cpu: Duration,
    wall: Duration,
    cpu_limit: Duration,
) -> Verdict {
    match reason {
        Some(KillReason::Cancel) => return Verdict::Cancelled,
        Some(KillReason::Timeout) => return Verdict::Timeout,
        Some(KillReason::Output) => return Verdict::OutputLimit,
        None => {}
    }
    if oom {
        return Verdict::MemoryLimit;
    }
    let limit_secs = Duration::from_secs(cpu_limit.as_secs().max(1));
    if code == 137 && (cpu >= limit_secs || (cpu.is_zero() && wall >= limit_secs)) {
        return Verdict::CpuLimit;
    }
    let code = i32::try_from(code).unwrap_or(i32::MAX);
    if (129..=128 + 64).contains(&code) {
        Verdict::Signaled { signal: code - 128 }
    } else {
        Verdict::Exited { code }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_at_the_limit_counts_as_reached() {
        let mib = 1u64 << 20;
        assert!(reached_limit(Some(64 * mib), 64 * mib));
        assert!(reached_limit(Some(63 * mib + 1), 64 * mib));
        assert!(!reached_limit(Some(60 * mib), 64 * mib));
        assert!(!reached_limit(None, 64 * mib));
        assert!(!reached_limit(Some(0), 0));
    }

    #[test]
    fn verdicts() {
        let s = Duration::from_secs;
        assert_eq!(
            verdict(None, false, 3, s(0), s(0), s(1)),
            Verdict::Exited { code: 3 }
        );
        assert_eq!(
            verdict(None, true, 137, s(0), s(0), s(1)),
            Verdict::MemoryLimit
        );
        assert_eq!(
            verdict(None, false, 137, s(2), s(2), s(2)),
            Verdict::CpuLimit
        );
        assert_eq!(
            verdict(None, false, 139, s(0), s(0), s(2)),
            Verdict::Signaled { signal: 11 }
        );
        assert_eq!(
            verdict(Some(KillReason::Timeout), true, 137, s(0), s(0), s(1)),
            Verdict::Timeout
        );
        assert_eq!(
            verdict(Some(KillReason::Output), false, 137, s(0), s(0), s(1)),
            Verdict::OutputLimit
        );
    }
}

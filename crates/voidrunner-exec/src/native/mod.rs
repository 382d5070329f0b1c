//! The native executor: compiles (if the language needs it) and runs a program in the Linux
//! sandbox, using the host's runtimes read-only.
//!
//! One execution = one workspace (a size-limited tmpfs mounted at `/work`) holding the source
//! file, shared by the compile phase and the run phase, each a separate sandboxed run with its
//! own limits.

mod limits;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use voidrunner_domain::{ResourceSample, Verdict};
use voidrunner_sandbox::{
    OutputChunk, RunSpec, Sandbox, SandboxVerdict, Stream, UsageSample, Workspace,
};

pub use limits::NativeConfig;

use crate::registry::{Availability, ExecutorKind, Language, LanguageRegistry, WORK_DIR};
use crate::{
    ExecOutcome, ExecRequest, Executor, OutputEvent, OutputStream, Phase, PhaseReport, StdinStream,
    env,
};

/// Capacity of the channel between the sandbox and the forwarding loop of one phase.
const CHUNK_CHANNEL: usize = 64;

/// Runs executions in the native sandbox (see the module doc).
#[derive(Debug, Clone)]
pub struct NativeExecutor {
    sandbox: Arc<Sandbox>,
    registry: Arc<LanguageRegistry>,
    config: NativeConfig,
    /// Languages whose host programs exist but are not bound into the sandbox, with why.
    hidden: BTreeMap<String, String>,
}

impl NativeExecutor {
    /// Builds the executor and detects every language's runtime now (blocking, at most
    /// [`crate::registry::VERSION_TIMEOUT`]), so executions never wait for detection.
    pub fn new(
        sandbox: Arc<Sandbox>,
        registry: Arc<LanguageRegistry>,
        config: NativeConfig,
    ) -> Self {
        registry.detect_all();
        let hidden = hidden_runtimes(&registry, &sandbox.config().ro_binds);
        for (language, reason) in &hidden {
            tracing::warn!(exec.language = %language, "language {language} cannot run natively: {reason}");
        }
        Self {
            sandbox,
            registry,
            config,
            hidden,
        }
    }

    /// The sandbox this executor runs in (for `doctor` and tests: mode, configuration).
    pub fn sandbox(&self) -> &Arc<Sandbox> {
        &self.sandbox
    }

    /// The registry this executor runs languages from.
    pub fn registry(&self) -> &Arc<LanguageRegistry> {
        &self.registry
    }

    /// Finds a runnable language or explains why not. A missing runtime is an infrastructure
    /// failure of this node (another node may have it), hence `SandboxError`.
    fn language(&self, name: &str) -> Result<&Language, Box<ExecOutcome>> {
        let lang = self
            .registry
            .get(name)
            .ok_or_else(|| ExecOutcome::boxed_error(format!("unknown language `{name}`")))?;
        if lang.executor != ExecutorKind::Native {
            return Err(ExecOutcome::boxed_error(format!(
                "language `{}` is configured for the docker executor",
                lang.name
            )));
        }
        if let Some(reason) = self.hidden.get(&lang.name) {
            return Err(ExecOutcome::boxed_error(format!(
                "language `{}` is unavailable in the sandbox: {reason}",
                lang.name
            )));
        }
        if let Availability::Unavailable { reason } = lang.availability() {
            return Err(ExecOutcome::boxed_error(format!(
                "language `{}` is unavailable on this host: {reason}",
                lang.name
            )));
        }
        Ok(lang)
    }

    async fn run_phase(
        &self,
        phase: Phase,
        spec: RunSpec,
        stdin: Option<mpsc::Receiver<Vec<u8>>>,
        io: &PhaseIo<'_>,
    ) -> PhaseReport {
        let (tx, mut rx) = mpsc::channel::<OutputChunk>(CHUNK_CHANNEL);
        let offset = io.started.elapsed();
        let sandbox_run = async {
            match stdin {
                Some(chunks) => {
                    (self.sandbox)
                        .run_with_stdin(spec, tx, chunks, io.cancel.clone())
                        .await
                }
                None => self.sandbox.run(spec, tx, io.cancel.clone()).await,
            }
        };
        let forward = async {
            let mut open = true;
            while let Some(chunk) = rx.recv().await {
                if !open {
                    continue; // keep draining so the sandbox never blocks on a dead receiver
                }
                let event = OutputEvent {
                    stream: match chunk.stream {
                        Stream::Stdout => OutputStream::Stdout,
                        Stream::Stderr => OutputStream::Stderr,
                    },
                    data: Bytes::from(chunk.data),
                    elapsed: offset + chunk.elapsed,
                    phase,
                };
                open = io.output.send(event).await.is_ok();
            }
        };
        let (result, ()) = tokio::join!(sandbox_run, forward);
        match result {
            Ok(r) => PhaseReport {
                phase,
                verdict: map_verdict(r.verdict),
                wall_time: r.wall_time,
                cpu_time: r.cpu_time,
                peak_memory_bytes: r.peak_memory_bytes,
                output_truncated: r.output_truncated,
                samples: r.samples.iter().map(to_sample).collect(),
            },
            Err(e) => {
                tracing::error!(exec.phase = phase.as_str(), error = %e, "sandbox run failed: {e}");
                PhaseReport {
                    phase,
                    verdict: Verdict::SandboxError {
                        reason: e.to_string(),
                    },
                    wall_time: Duration::ZERO,
                    cpu_time: Duration::ZERO,
                    peak_memory_bytes: None,
                    output_truncated: false,
                    samples: Vec::new(),
                }
            }
        }
    }
}

/// What every phase of one execution shares: the start time (output timestamps count from
/// it), the caller's output channel and the cancellation token.
struct PhaseIo<'a> {
    started: Instant,
    output: &'a mpsc::Sender<OutputEvent>,
    cancel: &'a CancellationToken,
}

/// Native languages whose host programs lie outside every read-only bind of the sandbox: they
/// exist on the host (so detection finds them) but a sandboxed `execve` would not.
fn hidden_runtimes(registry: &LanguageRegistry, ro_binds: &[PathBuf]) -> BTreeMap<String, String> {
    registry
        .iter()
        .filter(|lang| lang.executor == ExecutorKind::Native)
        .filter_map(|lang| {
            let outside = lang
                .host_programs()
                .into_iter()
                .find(|p| !ro_binds.iter().any(|bind| p.starts_with(bind)))?;
            Some((
                lang.name.clone(),
                format!(
                    "{} is outside the sandbox's read-only binds ({})",
                    outside.display(),
                    ro_binds
                        .iter()
                        .map(|b| b.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ))
        })
        .collect()
}

/// A sandbox timeline point in the domain's units (milliseconds).
fn to_sample(s: &UsageSample) -> ResourceSample {
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    ResourceSample {
        t_ms: ms(s.elapsed),
        memory_bytes: s.memory_bytes,
        cpu_ms: ms(s.cpu_time),
    }
}

/// The sandbox's verdict in the domain's words (one to one).
fn map_verdict(v: SandboxVerdict) -> Verdict {
    match v {
        SandboxVerdict::Exited(code) => Verdict::Exited { code },
        SandboxVerdict::Signaled(signal) => Verdict::Signaled { signal },
        SandboxVerdict::Timeout => Verdict::Timeout,
        SandboxVerdict::CpuLimit => Verdict::CpuLimit,
        SandboxVerdict::MemoryLimit => Verdict::MemoryLimit,
        SandboxVerdict::OutputLimit => Verdict::OutputLimit,
        SandboxVerdict::Cancelled => Verdict::Cancelled,
        SandboxVerdict::SandboxError(reason) => Verdict::SandboxError { reason },
    }
}

/// The verdict of an execution whose compile phase did not succeed: a compiler that exits
/// non-zero or dies of a signal is a `CompileError` (code 128 + signal for a signal); limits,
/// cancellation and sandbox failures keep their own verdict (the phase report says they
/// happened while compiling). `None` means the compile succeeded.
fn compile_failure(v: &Verdict) -> Option<Verdict> {
    match v {
        Verdict::Exited { code: 0 } => None,
        Verdict::Exited { code } => Some(Verdict::CompileError { code: *code }),
        Verdict::Signaled { signal } => Some(Verdict::CompileError { code: 128 + signal }),
        other => Some(other.clone()),
    }
}

/// Builds the outcome from the phases that ran; the last one decides the measurements.
fn outcome(verdict: Verdict, phases: Vec<PhaseReport>) -> ExecOutcome {
    let Some(last) = phases.last() else {
        return ExecOutcome {
            verdict,
            ..ExecOutcome::cancelled()
        };
    };
    let exit_code = match (&verdict, last.phase) {
        (Verdict::Exited { code }, Phase::Run) => Some(*code),
        _ => None,
    };
    ExecOutcome {
        verdict,
        exit_code,
        wall_time: last.wall_time,
        cpu_time: last.cpu_time,
        peak_memory_bytes: last.peak_memory_bytes,
        output_truncated: phases.iter().any(|p| p.output_truncated),
        samples: last.samples.clone(),
        phases,
    }
}

impl NativeExecutor {
    /// Creates the workspace and writes the source file, off the async threads (it mounts a
    /// tmpfs).
    async fn prepare_workspace(
        &self,
        lang: &Language,
        code: String,
    ) -> Result<Arc<Workspace>, Box<ExecOutcome>> {
        let sandbox = Arc::clone(&self.sandbox);
        let size = self.config.workspace_bytes;
        let file = lang.source_file.clone();
        let created = tokio::task::spawn_blocking(move || {
            let ws = sandbox
                .create_workspace(size)
                .map_err(|e| format!("workspace: {e}"))?;
            ws.write_file(&file, code.as_bytes(), 0o644)
                .map_err(|e| format!("writing {file}: {e}"))?;
            Ok::<_, String>(ws)
        })
        .await;
        match created {
            Ok(Ok(ws)) => Ok(Arc::new(ws)),
            Ok(Err(reason)) => Err(ExecOutcome::boxed_error(reason)),
            Err(e) => Err(ExecOutcome::boxed_error(format!("workspace task: {e}"))),
        }
    }

    /// The compile phase (if any) then the run phase, over one workspace.
    async fn run_phases(
        &self,
        lang: &Language,
        req: ExecRequest,
        workspace: &Arc<Workspace>,
        io: PhaseIo<'_>,
    ) -> ExecOutcome {
        let paths = lang.template_paths();
        let mut phases = Vec::with_capacity(2);
        if let Some(compile) = &lang.compile {
            let spec = RunSpec {
                argv: compile.command.expand(&paths),
                env: env::compose(&compile.env, None),
                cwd: WORK_DIR.to_owned(),
                stdin: None,
                workspace: Some(Arc::clone(workspace)),
                workspace_target: None,
                workspace_readonly: Vec::new(),
                limits: self.config.compile_limits(&compile.limits),
            };
            let report = self.run_phase(Phase::Compile, spec, None, &io).await;
            let failure = compile_failure(&report.verdict);
            phases.push(report);
            if let Some(verdict) = failure {
                return outcome(verdict, phases);
            }
            if io.cancel.is_cancelled() {
                return outcome(Verdict::Cancelled, phases);
            }
        }
        let spec = RunSpec {
            argv: lang.run.expand(&paths),
            env: env::compose(&lang.env, Some(&req.env)),
            cwd: WORK_DIR.to_owned(),
            stdin: req.stdin,
            workspace: Some(Arc::clone(workspace)),
            workspace_target: None,
            workspace_readonly: Vec::new(),
            limits: self.config.run_limits(&req.limits),
        };
        let stdin = req.stdin_stream.as_ref().and_then(StdinStream::take);
        let report = self.run_phase(Phase::Run, spec, stdin, &io).await;
        let verdict = report.verdict.clone();
        phases.push(report);
        outcome(verdict, phases)
    }
}

#[async_trait::async_trait]
impl Executor for NativeExecutor {
    async fn execute(
        &self,
        mut req: ExecRequest,
        output: mpsc::Sender<OutputEvent>,
        cancel: CancellationToken,
    ) -> ExecOutcome {
        let started = Instant::now();
        let lang = match self.language(&req.language) {
            Ok(l) => l,
            Err(outcome) => return *outcome,
        };
        if cancel.is_cancelled() {
            return ExecOutcome::cancelled();
        }
        let code = std::mem::take(&mut req.code);
        let workspace = match self.prepare_workspace(lang, code).await {
            Ok(ws) => ws,
            Err(outcome) => return *outcome,
        };
        let io = PhaseIo {
            started,
            output: &output,
            cancel: &cancel,
        };
        let outcome = self.run_phases(lang, req, &workspace, io).await;
        // Unmounting is blocking too; the runs holding clones have ended, so this drops the
        // last reference and nothing of the execution remains once we return.
        let _ = tokio::task::spawn_blocking(move || drop(workspace)).await;
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compile_outcomes() {
        assert_eq!(compile_failure(&Verdict::Exited { code: 0 }), None);
        assert_eq!(
            compile_failure(&Verdict::Exited { code: 1 }),
            Some(Verdict::CompileError { code: 1 })
        );
        assert_eq!(
            compile_failure(&Verdict::Signaled { signal: 9 }),
            Some(Verdict::CompileError { code: 137 })
        );
        assert_eq!(compile_failure(&Verdict::Timeout), Some(Verdict::Timeout));
    }

    #[test]
    fn runtimes_outside_the_binds_are_hidden() {
        let registry = LanguageRegistry::builtin()
            .merge_toml_str(
                "[languages.opt]\nsource_file = \"m\"\nrun = [\"/opt/rt/bin/x\", \"{file}\"]\n",
            )
            .expect("valid");
        let binds: Vec<PathBuf> = ["/usr", "/bin"].iter().map(PathBuf::from).collect();
        let hidden = hidden_runtimes(&registry, &binds);
        assert_eq!(hidden.keys().collect::<Vec<_>>(), ["opt"]);
        assert!(hidden["opt"].contains("/opt/rt/bin/x"), "{hidden:?}");
    }

    #[test]
    fn verdicts_map_one_to_one() {
        assert_eq!(
            map_verdict(SandboxVerdict::Exited(3)),
            Verdict::Exited { code: 3 }
        );
        assert_eq!(
            map_verdict(SandboxVerdict::SandboxError("x".into())),
            Verdict::SandboxError { reason: "x".into() }
        );
        assert_eq!(
            map_verdict(SandboxVerdict::MemoryLimit),
            Verdict::MemoryLimit
        );
    }
}

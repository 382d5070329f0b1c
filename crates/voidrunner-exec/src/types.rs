//! Request, output and outcome types shared by every executor (native today, Docker later), so
//! the worker pool records results the same way whatever ran the code.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use bytes::Bytes;
use voidrunner_domain::{ResourceLimits, ResourceSample, Verdict};

/// What to run: one program in one language, with the task's limits.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecRequest {
    /// Registry name or alias of the language (e.g. `python`, `py`, `c++`).
    pub language: String,
    /// The source code, written to the language's source file in the workspace.
    pub code: String,
    /// Bytes fed to the program's stdin (the compile phase never sees them).
    pub stdin: Option<Vec<u8>>,
    /// Extra environment of the run phase, on top of the safe base (see [`crate::env`]).
    pub env: BTreeMap<String, String>,
    /// Limits of the run phase (the compile phase has the language's own limits).
    pub limits: ResourceLimits,
    /// Interactive executions: more stdin for the run phase while it runs (after `stdin`);
    /// `None` = the program's stdin closes after `stdin`.
    pub stdin_stream: Option<StdinStream>,
}

/// Live stdin of an interactive run: chunks appended to the program's stdin as they arrive;
/// the sending side closing means EOF. Taken once by the executor (the request stays
/// `Clone` for retries of non-interactive work; a clone shares the one receiver).
#[derive(Debug, Clone)]
pub struct StdinStream(Arc<Mutex<Option<mpsc::Receiver<Vec<u8>>>>>);

impl StdinStream {
    /// Wraps the receiving end of the chunks.
    pub fn new(chunks: mpsc::Receiver<Vec<u8>>) -> Self {
        Self(Arc::new(Mutex::new(Some(chunks))))
    }

    /// The receiver, the first time only.
    pub fn take(&self) -> Option<mpsc::Receiver<Vec<u8>>> {
        self.0.lock().ok().and_then(|mut r| r.take())
    }
}

impl PartialEq for StdinStream {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputStream {
    /// The program's standard output.
    Stdout,
    /// The program's standard error.
    Stderr,
}

impl OutputStream {
    /// Stable lower-case name (`stdout`, `stderr`), used in log records and APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputStream::Stdout => "stdout",
            OutputStream::Stderr => "stderr",
        }
    }
}

/// The step of an execution a chunk of output or a report belongs to: compiled languages run
/// a compiler first, and its output (the error messages) is shown to the user like the
/// program's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// The compiler (only for languages with a compile command).
    Compile,
    /// The user's program.
    Run,
}

impl Phase {
    /// Stable lower-case name, used in logs and records.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Compile => "compile",
            Phase::Run => "run",
        }
    }
}

/// One chunk of output, forwarded as soon as the sandbox produced it so subscribers see live
/// logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputEvent {
    /// Stdout or stderr.
    pub stream: OutputStream,
    /// The bytes, as written (not necessarily UTF-8, not split on lines).
    pub data: Bytes,
    /// Time since the execution started (compile time included), for timestamps in logs.
    pub elapsed: Duration,
    /// Compile or run.
    pub phase: Phase,
}

/// Measurements and verdict of one phase.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseReport {
    /// Compile or run.
    pub phase: Phase,
    /// How the phase ended, in the domain's words (`Exited`, `Timeout`, …). For the compile
    /// phase this is the compiler's own outcome, e.g. `Exited { code: 1 }`.
    pub verdict: Verdict,
    /// Wall-clock time of the phase.
    pub wall_time: Duration,
    /// CPU time (user + system) of the phase.
    pub cpu_time: Duration,
    /// Peak memory, when the host can measure it (cgroups).
    pub peak_memory_bytes: Option<u64>,
    /// Whether the phase's output was cut at its limit.
    pub output_truncated: bool,
    /// Memory/CPU timeline of the phase (about every 100 ms, at most ~300 points); empty for
    /// phases under a second and for executors that cannot sample.
    pub samples: Vec<ResourceSample>,
}

/// The result of one execution, identical in shape whatever executor produced it.
///
/// The top-level measurements are those of the run phase when it started, otherwise those of
/// the compile phase (the phase that decided the verdict); every phase is in `phases`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecOutcome {
    /// Final verdict. `CompileError` when the compiler failed; `SandboxError` for
    /// infrastructure failures (retried by the queue), never for the program's own failures.
    pub verdict: Verdict,
    /// Exit code of the program when it exited on its own (`None` if it never ran or was
    /// killed).
    pub exit_code: Option<i32>,
    /// Wall-clock time of the deciding phase.
    pub wall_time: Duration,
    /// CPU time (user + system) of the deciding phase.
    pub cpu_time: Duration,
    /// Peak memory of the deciding phase, when measurable.
    pub peak_memory_bytes: Option<u64>,
    /// Whether any output was cut at the limit.
    pub output_truncated: bool,
    /// Resource timeline of the deciding phase (see [`PhaseReport::samples`]).
    pub samples: Vec<ResourceSample>,
    /// Every phase that started, in order.
    pub phases: Vec<PhaseReport>,
}

impl ExecOutcome {
    /// An outcome for a failure before anything ran (no phase), e.g. the language's runtime is
    /// missing on this host or the workspace could not be created. Such failures are
    /// infrastructure errors: the queue may retry them, possibly on another node.
    pub fn sandbox_error(reason: impl Into<String>) -> Self {
        Self::without_phases(Verdict::SandboxError {
            reason: reason.into(),
        })
    }

    /// [`ExecOutcome::sandbox_error`], boxed for `Result` error paths (the outcome is large).
    pub(crate) fn boxed_error(reason: impl Into<String>) -> Box<Self> {
        Box::new(Self::sandbox_error(reason))
    }

    /// An outcome for a run cancelled before any phase started.
    pub fn cancelled() -> Self {
        Self::without_phases(Verdict::Cancelled)
    }

    fn without_phases(verdict: Verdict) -> Self {
        Self {
            verdict,
            exit_code: None,
            wall_time: Duration::ZERO,
            cpu_time: Duration::ZERO,
            peak_memory_bytes: None,
            output_truncated: false,
            samples: Vec::new(),
            phases: Vec::new(),
        }
    }

    /// The report of one phase, if it started.
    pub fn phase(&self, phase: Phase) -> Option<&PhaseReport> {
        self.phases.iter().find(|p| p.phase == phase)
    }
}

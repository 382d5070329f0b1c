//! Executors for tests: the real native executor over the real sandbox, a counting wrapper
//! around it, and a fault executor for failures that cannot be caused for real.

use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use voidrunner_domain::Verdict;
use voidrunner_exec::{
    ExecOutcome, ExecRequest, Executor, LanguageRegistry, NativeConfig, NativeExecutor,
    OutputEvent, OutputStream, Phase, PhaseReport,
};
use voidrunner_sandbox::{HelperCommand, Sandbox, SandboxConfig};

/// The real native executor over a fresh real sandbox, with this crate's helper binary.
pub fn native() -> Arc<dyn Executor> {
    static REGISTRY: LazyLock<Arc<LanguageRegistry>> = LazyLock::new(|| {
        let registry = LanguageRegistry::builtin();
        registry.detect_all();
        Arc::new(registry)
    });
    let helper = HelperCommand {
        program: PathBuf::from(env!("CARGO_BIN_EXE_voidrunner-worker-helper")),
        args: Vec::new(),
    };
    let sandbox = Sandbox::new(SandboxConfig::new(helper)).expect("sandbox starts on this host");
    Arc::new(NativeExecutor::new(
        Arc::new(sandbox),
        Arc::clone(&REGISTRY),
        NativeConfig::default(),
    ))
}

/// Wraps an executor and records which code it was asked to run, to count runs.
#[derive(Debug)]
pub struct Counting {
    pub inner: Arc<dyn Executor>,
    pub runs: Mutex<Vec<String>>,
}

impl Counting {
    pub fn new(inner: Arc<dyn Executor>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            runs: Mutex::new(Vec::new()),
        })
    }

    pub fn runs(&self) -> Vec<String> {
        self.runs.lock().expect("runs").clone()
    }
}

#[async_trait::async_trait]
impl Executor for Counting {
    async fn execute(
        &self,
        req: ExecRequest,
        output: mpsc::Sender<OutputEvent>,
        cancel: CancellationToken,
    ) -> ExecOutcome {
        self.runs.lock().expect("runs").push(req.code.clone());
        self.inner.execute(req, output, cancel).await
    }
}

/// What the fault executor does with each run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Fails at once with a sandbox error (an infrastructure failure).
    SandboxError,
    /// Waits until [`FaultExecutor::open`] or a cancel; then prints the code and exits 0.
    BlockUntilOpened,
    /// Panics (a bug in an executor).
    Panic,
}

/// Causes faults that cannot be caused for real on demand, and records when it was called.
#[derive(Debug)]
pub struct FaultExecutor {
    fault: Fault,
    gate: Semaphore,
    pub calls: Mutex<Vec<Instant>>,
}

impl FaultExecutor {
    pub fn new(fault: Fault) -> Arc<Self> {
        Arc::new(Self {
            fault,
            gate: Semaphore::new(0),
            calls: Mutex::new(Vec::new()),
        })
    }

    /// Lets one blocked run finish.
    pub fn open(&self) {
        self.gate.add_permits(1);
    }

    pub fn calls(&self) -> Vec<Instant> {
        self.calls.lock().expect("calls").clone()
    }
}

#[async_trait::async_trait]
impl Executor for FaultExecutor {
    async fn execute(
        &self,
        req: ExecRequest,
        output: mpsc::Sender<OutputEvent>,
        cancel: CancellationToken,
    ) -> ExecOutcome {
        self.calls.lock().expect("calls").push(Instant::now());
        match self.fault {
            Fault::SandboxError => ExecOutcome::sandbox_error("injected sandbox failure"),
            Fault::Panic => panic!("injected executor panic"),
            Fault::BlockUntilOpened => {
                tokio::select! {
                    () = cancel.cancelled() => ExecOutcome::cancelled(),
                    permit = self.gate.acquire() => {
                        permit.expect("gate open").forget();
                        let _ = output
                            .send(OutputEvent {
                                stream: OutputStream::Stdout,
                                data: Bytes::from(req.code.into_bytes()),
                                elapsed: Duration::ZERO,
                                phase: Phase::Run,
                            })
                            .await;
                        exited_zero()
                    }
                }
            }
        }
    }
}

fn exited_zero() -> ExecOutcome {
    let verdict = Verdict::Exited { code: 0 };
    ExecOutcome {
        verdict: verdict.clone(),
        exit_code: Some(0),
        wall_time: Duration::from_millis(1),
        cpu_time: Duration::ZERO,
        peak_memory_bytes: None,
        output_truncated: false,
        samples: Vec::new(),
        phases: vec![PhaseReport {
            phase: Phase::Run,
            verdict,
            wall_time: Duration::from_millis(1),
            cpu_time: Duration::ZERO,
            peak_memory_bytes: None,
            output_truncated: false,
            samples: Vec::new(),
        }],
    }
}

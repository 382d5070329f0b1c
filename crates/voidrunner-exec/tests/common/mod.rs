//! Test helpers: a real native executor over the real sandbox (run as root on the test host),
//! and a runner that collects every output event.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use voidrunner_domain::ResourceLimits;
use voidrunner_exec::native::{NativeConfig, NativeExecutor};
use voidrunner_exec::{
    ExecOutcome, ExecRequest, Executor, LanguageRegistry, OutputEvent, OutputStream, Phase,
};
use voidrunner_sandbox::{HelperCommand, Sandbox, SandboxConfig};

/// Limits of most tests: generous enough for node and g++ on a loaded 2-core machine.
pub fn limits() -> ResourceLimits {
    ResourceLimits {
        timeout_secs: 20,
        memory_mb: 256,
        cpu_cores: 1.0,
        max_processes: 64,
        max_output_bytes: 1 << 20,
    }
}

/// The executor shared by the tests of one binary: one sandbox, languages detected once,
/// this crate's helper binary. Like the worker pool, it runs on one long-lived runtime
/// ([`execute`]): the sandbox's pooled helper processes belong to the runtime that started
/// them, and every `#[tokio::test]` has its own short-lived runtime.
pub fn executor() -> &'static NativeExecutor {
    static EXECUTOR: LazyLock<NativeExecutor> = LazyLock::new(|| {
        let helper = HelperCommand {
            program: PathBuf::from(env!("CARGO_BIN_EXE_voidrunner-exec-helper")),
            args: Vec::new(),
        };
        let sandbox =
            Sandbox::new(SandboxConfig::new(helper)).expect("sandbox starts on this host");
        NativeExecutor::new(
            Arc::new(sandbox),
            Arc::new(LanguageRegistry::builtin()),
            NativeConfig::default(),
        )
    });
    &EXECUTOR
}

/// Runs one execution on the shared runtime; the returned future can be awaited from any
/// runtime.
pub fn execute(
    req: ExecRequest,
    output: mpsc::Sender<OutputEvent>,
    cancel: CancellationToken,
) -> impl Future<Output = ExecOutcome> {
    static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("test runtime")
    });
    let task = RUNTIME.spawn(async move { executor().execute(req, output, cancel).await });
    async move { task.await.expect("execution task") }
}

/// A request with default limits and no env.
pub fn request(language: &str, code: &str, stdin: Option<&str>) -> ExecRequest {
    ExecRequest {
        language: language.to_owned(),
        code: code.to_owned(),
        stdin: stdin.map(|s| s.as_bytes().to_vec()),
        env: BTreeMap::new(),
        limits: limits(),
        stdin_stream: None,
    }
}

/// What one execution produced.
#[derive(Debug)]
pub struct Ran {
    pub outcome: ExecOutcome,
    pub events: Vec<OutputEvent>,
}

impl Ran {
    /// Concatenated output of one stream in one phase, lossily decoded.
    pub fn text(&self, phase: Phase, stream: OutputStream) -> String {
        let bytes: Vec<u8> = self
            .events
            .iter()
            .filter(|e| e.phase == phase && e.stream == stream)
            .flat_map(|e| e.data.iter().copied())
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Run-phase stdout.
    pub fn stdout(&self) -> String {
        self.text(Phase::Run, OutputStream::Stdout)
    }

    /// Run-phase stderr.
    pub fn stderr(&self) -> String {
        self.text(Phase::Run, OutputStream::Stderr)
    }
}

/// Runs `req` to its end, collecting every event.
pub async fn run_with(req: ExecRequest, cancel: CancellationToken) -> Ran {
    let (tx, mut rx) = mpsc::channel(16);
    let collector = tokio::spawn(async move {
        let mut events = Vec::new();
        while let Some(e) = rx.recv().await {
            events.push(e);
        }
        events
    });
    let outcome = execute(req, tx, cancel).await;
    let events = collector.await.expect("collector task");
    Ran { outcome, events }
}

/// Runs `req` with the shared executor and no cancellation.
pub async fn run(req: ExecRequest) -> Ran {
    run_with(req, CancellationToken::new()).await
}

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

/// The executor shared by the tests of one binary (runtime detection happens once).
pub fn executor() -> &'static NativeExecutor {
    static EXECUTOR: LazyLock<NativeExecutor> = LazyLock::new(new_executor);
    &EXECUTOR
}

/// A native executor with the built-in languages and this crate's helper binary.
pub fn new_executor() -> NativeExecutor {
    let helper = HelperCommand {
        program: PathBuf::from(env!("CARGO_BIN_EXE_voidrunner-exec-helper")),
        args: Vec::new(),
    };
    let sandbox = Sandbox::new(SandboxConfig::new(helper)).expect("sandbox starts on this host");
    NativeExecutor::new(
        Arc::new(sandbox),
        Arc::new(LanguageRegistry::builtin()),
        NativeConfig::default(),
    )
}

/// A request with default limits and no env.
pub fn request(language: &str, code: &str, stdin: Option<&str>) -> ExecRequest {
    ExecRequest {
        language: language.to_owned(),
        code: code.to_owned(),
        stdin: stdin.map(|s| s.as_bytes().to_vec()),
        env: BTreeMap::new(),
        limits: limits(),
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
pub async fn run_with(exec: &NativeExecutor, req: ExecRequest, cancel: CancellationToken) -> Ran {
    let (tx, mut rx) = mpsc::channel(16);
    let collector = tokio::spawn(async move {
        let mut events = Vec::new();
        while let Some(e) = rx.recv().await {
            events.push(e);
        }
        events
    });
    let outcome = exec.execute(req, tx, cancel).await;
    let events = collector.await.expect("collector task");
    Ran { outcome, events }
}

/// Runs `req` with a fresh executor and no cancellation.
pub async fn run(req: ExecRequest) -> Ran {
    run_with(executor(), req, CancellationToken::new()).await
}

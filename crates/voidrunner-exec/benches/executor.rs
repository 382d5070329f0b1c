//! End-to-end latency of trivial programs through the native executor and the real sandbox:
//! `cargo bench -p voidrunner-exec` prints p50/p95 per language (run as root).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use voidrunner_domain::{ResourceLimits, Verdict};
use voidrunner_exec::native::{NativeConfig, NativeExecutor};
use voidrunner_exec::{ExecRequest, Executor, LanguageRegistry};
use voidrunner_sandbox::{HelperCommand, RunSpec, Sandbox, SandboxConfig, SandboxVerdict};

const RUNS: usize = 100;
const WARMUP: usize = 5;

fn main() -> anyhow::Result<()> {
    let sandbox = Sandbox::new(SandboxConfig::new(helper()?))?;
    let exec = NativeExecutor::new(
        Arc::new(sandbox),
        Arc::new(LanguageRegistry::builtin()),
        NativeConfig::default(),
    );
    let rt = tokio::runtime::Runtime::new()?;
    report_baselines(exec.sandbox())?;
    report_raw_sandbox(&rt, exec.sandbox())?;
    println!(
        "end to end through NativeExecutor ({RUNS} sequential runs each, c: {}):",
        RUNS / 5
    );
    for (language, code) in [
        ("bash", "true\n"),
        ("python", "print('hello, world')\n"),
        ("javascript", "console.log('hello, world')\n"),
        (
            "c",
            "#include <stdio.h>\nint main(void) { puts(\"hello, world\"); return 0; }\n",
        ),
    ] {
        let runs = if language == "c" { RUNS / 5 } else { RUNS };
        let mut times = Vec::with_capacity(runs);
        for i in 0..WARMUP + runs {
            let started = Instant::now();
            let outcome = rt.block_on(execute(&exec, language, code));
            let took = started.elapsed();
            anyhow::ensure!(
                outcome == Verdict::Exited { code: 0 },
                "{language} run {i} ended with {outcome:?}"
            );
            if i >= WARMUP {
                times.push(took);
            }
        }
        times.sort();
        print_line(&format!("executor, {language} hello world"), &times);
    }
    Ok(())
}

/// The parts that are not the sandboxed run itself: a bare host spawn of the same programs
/// (no sandbox) and the workspace tmpfs each execution creates and removes.
fn report_baselines(sandbox: &Sandbox) -> anyhow::Result<()> {
    println!("baselines ({RUNS} runs each):");
    let dir = tempfile::tempdir()?;
    let script = dir.path().join("main.py");
    std::fs::write(&script, "print('hello, world')\n")?;
    for (name, argv) in [
        (
            "bash true",
            vec!["/bin/bash".into(), "-c".into(), "true".into()],
        ),
        (
            "python hello",
            vec!["/usr/bin/python3".into(), script.display().to_string()],
        ),
    ] {
        let argv: Vec<String> = argv;
        let times = measure(|| {
            let status = std::process::Command::new(&argv[0])
                .args(&argv[1..])
                .stdout(std::process::Stdio::null())
                .status()?;
            anyhow::ensure!(status.success(), "{name}: {status}");
            Ok(())
        })?;
        print_line(&format!("bare host spawn, {name}"), &times);
    }
    let times = measure(|| {
        let ws = sandbox.create_workspace(NativeConfig::default().workspace_bytes)?;
        ws.write_file("main.py", b"print('hello, world')\n", 0o644)?;
        drop(ws);
        Ok(())
    })?;
    print_line("workspace create + write + remove", &times);
    Ok(())
}

/// `Sandbox::run` directly (no executor): `/bin/true` without and with a workspace, to
/// separate the sandbox's cost from the executor's.
fn report_raw_sandbox(rt: &tokio::runtime::Runtime, sandbox: &Sandbox) -> anyhow::Result<()> {
    for with_workspace in [false, true] {
        let times = measure(|| {
            rt.block_on(async {
                let mut spec = RunSpec::new(["/bin/true"]);
                if with_workspace {
                    spec.workspace = Some(Arc::new(sandbox.create_workspace(64 << 20)?));
                }
                let (tx, mut rx) = mpsc::channel(16);
                let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
                let result = sandbox.run(spec, tx, CancellationToken::new()).await?;
                let _ = drain.await;
                anyhow::ensure!(
                    result.verdict == SandboxVerdict::Exited(0),
                    "{:?}",
                    result.verdict
                );
                Ok(())
            })
        })?;
        let what = if with_workspace {
            "Sandbox::run /bin/true + workspace"
        } else {
            "Sandbox::run /bin/true"
        };
        print_line(what, &times);
    }
    Ok(())
}

fn helper() -> anyhow::Result<HelperCommand> {
    Ok(HelperCommand {
        program: PathBuf::from(env!("CARGO_BIN_EXE_voidrunner-exec-helper")),
        args: Vec::new(),
    })
}

fn measure(mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(RUNS);
    for i in 0..WARMUP + RUNS {
        let started = Instant::now();
        f()?;
        if i >= WARMUP {
            times.push(started.elapsed());
        }
    }
    times.sort();
    Ok(times)
}

fn print_line(what: &str, sorted: &[Duration]) {
    println!(
        "  {what:<40} p50 {:>7.2} ms  p95 {:>7.2} ms  (n={})",
        ms(percentile(sorted, 50)),
        ms(percentile(sorted, 95)),
        sorted.len()
    );
}

async fn execute(exec: &NativeExecutor, language: &str, code: &str) -> Verdict {
    let (tx, mut rx) = mpsc::channel(16);
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let req = ExecRequest {
        language: language.to_owned(),
        code: code.to_owned(),
        stdin: None,
        env: BTreeMap::new(),
        limits: ResourceLimits {
            timeout_secs: 10,
            memory_mb: 256,
            cpu_cores: 1.0,
            max_processes: 64,
            max_output_bytes: 1 << 20,
        },
        stdin_stream: None,
    };
    let outcome = exec.execute(req, tx, CancellationToken::new()).await;
    let _ = drain.await;
    outcome.verdict
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let idx = (sorted.len() * p / 100).min(sorted.len().saturating_sub(1));
    sorted.get(idx).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

//! The Docker executor next to the native sandbox, same process, same run: per-execution
//! latency (sequential, p50/p95) and throughput (executions/s with 4 in flight) of a python
//! hello world and a shell `true`. Needs the engine and images of `scripts/docker-setup`;
//! run as root: `cargo bench -p voidrunner-exec --bench docker`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use voidrunner_domain::{ResourceLimits, Verdict};
use voidrunner_exec::docker::{DockerConfig, DockerExecutor};
use voidrunner_exec::native::{NativeConfig, NativeExecutor};
use voidrunner_exec::{ExecRequest, Executor, LanguageRegistry};
use voidrunner_sandbox::{HelperCommand, Sandbox, SandboxConfig};

const RUNS: usize = 40;
const WARMUP: usize = 3;
const CONCURRENCY: usize = 4;
const THROUGHPUT_RUNS: usize = 40;

/// Docker twins of two built-in languages, under other names.
const DOCKER_LANGUAGES: &str = r#"
[languages.docker-python]
source_file = "main.py"
run = ["/usr/bin/python3", "{file}"]
env = { PYTHONUNBUFFERED = "1", PYTHONDONTWRITEBYTECODE = "1" }
executor = "docker"
image = "voidrunner/python:3.11"

[languages.docker-sh]
source_file = "main.sh"
run = ["/bin/sh", "{file}"]
executor = "docker"
image = "voidrunner/busybox:test"
"#;

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    let registry = Arc::new(LanguageRegistry::builtin().merge_toml_str(DOCKER_LANGUAGES)?);
    let helper = HelperCommand {
        program: PathBuf::from(env!("CARGO_BIN_EXE_voidrunner-exec-helper")),
        args: Vec::new(),
    };
    let native: Arc<dyn Executor> = Arc::new(NativeExecutor::new(
        Arc::new(Sandbox::new(SandboxConfig::new(helper))?),
        Arc::clone(&registry),
        NativeConfig::default(),
    ));
    let config = DockerConfig {
        node_id: "bench".to_owned(),
        ..DockerConfig::default()
    };
    let docker: Arc<dyn Executor> =
        Arc::new(rt.block_on(DockerExecutor::connect(registry, config))?);
    let cases = [
        ("native", &native, "python", "print('hello, world')\n"),
        (
            "docker",
            &docker,
            "docker-python",
            "print('hello, world')\n",
        ),
        ("native", &native, "bash", "true\n"),
        ("docker", &docker, "docker-sh", "true\n"),
    ];
    println!(
        "sequential latency ({RUNS} runs each) and throughput ({THROUGHPUT_RUNS} runs, {CONCURRENCY} in flight):"
    );
    for (kind, exec, language, code) in cases {
        let mut times = Vec::with_capacity(RUNS);
        for i in 0..WARMUP + RUNS {
            let started = Instant::now();
            rt.block_on(execute(exec, language, code))?;
            if i >= WARMUP {
                times.push(started.elapsed());
            }
        }
        times.sort();
        let started = Instant::now();
        rt.block_on(async {
            let mut set = tokio::task::JoinSet::new();
            for lane in 0..CONCURRENCY {
                let exec = Arc::clone(exec);
                set.spawn(async move {
                    for _ in (lane..THROUGHPUT_RUNS).step_by(CONCURRENCY) {
                        execute(&exec, language, code).await?;
                    }
                    anyhow::Ok(())
                });
            }
            while let Some(r) = set.join_next().await {
                r??;
            }
            anyhow::Ok(())
        })?;
        #[expect(clippy::cast_precision_loss, reason = "small counts")]
        let per_sec = THROUGHPUT_RUNS as f64 / started.elapsed().as_secs_f64();
        println!(
            "  {kind:<7} {language:<14} p50 {:>7.1} ms  p95 {:>7.1} ms  {per_sec:>6.1} exec/s",
            ms(percentile(&times, 50)),
            ms(percentile(&times, 95)),
        );
    }
    Ok(())
}

async fn execute(exec: &Arc<dyn Executor>, language: &str, code: &str) -> anyhow::Result<()> {
    let (tx, mut rx) = mpsc::channel(16);
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let req = ExecRequest {
        language: language.to_owned(),
        code: code.to_owned(),
        stdin: None,
        env: BTreeMap::new(),
        limits: ResourceLimits {
            timeout_secs: 20,
            memory_mb: 256,
            cpu_cores: 1.0,
            max_processes: 64,
            max_output_bytes: 1 << 20,
        },
        stdin_stream: None,
    };
    let outcome = exec.execute(req, tx, CancellationToken::new()).await;
    let _ = drain.await;
    anyhow::ensure!(
        outcome.verdict == Verdict::Exited { code: 0 },
        "{language}: {:?}",
        outcome.verdict
    );
    Ok(())
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let idx = (sorted.len() * p / 100).min(sorted.len().saturating_sub(1));
    sorted.get(idx).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

//! Job overhead (issue 9): a job of 10 trivial steps against 10 bare sandbox runs of the same
//! command, and the time from handing a job to the runner until its first step starts.
//! Run with `cargo bench -p voidrunner-jobs --bench jobs` (root: the sandbox needs it).

#[path = "../tests/common/mod.rs"]
#[expect(dead_code, reason = "the benchmark uses a subset of the test helpers")]
mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use voidrunner_jobs::runner::{Events, JobEvent, JobRequest, RunnerConfig, run_job};
use voidrunner_jobs::source::SourcePolicy;
use voidrunner_jobs::{Format, parse};
use voidrunner_sandbox::{Limits, RunSpec};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn steps_yaml(chained: bool) -> String {
    let mut s = String::from("name: bench\nparallelism: 4\nsteps:\n");
    for i in 0..10 {
        if chained && i > 0 {
            s.push_str(&format!(
                "  - {{name: s{i}, command: \"true\", depends_on: [s{}]}}\n",
                i - 1
            ));
        } else {
            s.push_str(&format!("  - {{name: s{i}, command: \"true\"}}\n"));
        }
    }
    s
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (sandbox, _) = common::sandbox(dir.path());
    let limits = Limits {
        wall_timeout: Duration::from_secs(30),
        ..Limits::default()
    };
    let cfg = RunnerConfig {
        width: 4,
        sources: SourcePolicy::default(),
        step_limits: limits,
        job_timeout: Duration::from_secs(60),
        workspace_bytes: 16 << 20,
        allow_network: false,
        artifacts_dir: dir.path().join("artifacts"),
        max_artifact_bytes: 1 << 20,
        keep_failed_workspaces: None,
    };
    let rounds = 7;
    let mut bare = Vec::new();
    for _ in 0..rounds {
        let ws = Arc::new(sandbox.create_workspace(16 << 20).expect("workspace"));
        let t = Instant::now();
        for _ in 0..10 {
            let mut spec = RunSpec::new(["/bin/sh", "-c", "true"]);
            spec.workspace = Some(ws.clone());
            spec.limits = limits;
            let (tx, _rx) = mpsc::channel(8);
            sandbox
                .run(spec, tx, CancellationToken::new())
                .await
                .expect("run");
        }
        bare.push(t.elapsed().as_secs_f64() * 1e3);
    }
    for (label, chained) in [
        ("10 chained steps", true),
        ("10 independent steps (width 4)", false),
    ] {
        let definition = parse(&steps_yaml(chained), Format::Yaml).expect("valid");
        let (mut total, mut first) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let req = JobRequest {
                id: format!("bench-{round}"),
                definition: definition.clone(),
                secrets: BTreeMap::new(),
                tarball: None,
                base_dir: None,
                workflow: None,
                link: None,
            };
            let (tx, mut rx) = mpsc::unbounded_channel();
            let t = Instant::now();
            let watch = tokio::spawn(async move {
                while let Some(e) = rx.recv().await {
                    if matches!(e, JobEvent::StepStarted { .. }) {
                        return Some(t.elapsed());
                    }
                }
                None
            });
            let report = run_job(
                sandbox.clone(),
                &cfg,
                &req,
                Events::new(tx),
                CancellationToken::new(),
            )
            .await;
            assert_eq!(report.outcome, "succeeded", "{report:?}");
            total.push(t.elapsed().as_secs_f64() * 1e3);
            first.push(
                watch
                    .await
                    .expect("join")
                    .expect("a step started")
                    .as_secs_f64()
                    * 1e3,
            );
        }
        println!(
            "{label:<32} job {:>7.1} ms  vs 10 bare runs {:>7.1} ms  (overhead {:>+6.1} ms); submit→first step {:>5.1} ms   [median of {rounds}]",
            median(total.clone()),
            median(bare.clone()),
            median(total) - median(bare.clone()),
            median(first),
        );
    }
}

//! CI jobs through the server (issue 9): time from `POST /api/v1/jobs` to the first step
//! starting (the queue's claim, the job worker, workspace and sandbox start), and a job of 10
//! trivial steps against 10 one-shot executions of the same command, on `serve` with SQLite.
//! Run with `cargo bench -p voidrunner --bench jobs` (root: the sandbox needs it).

#[path = "../tests/common/mod.rs"]
#[expect(dead_code, reason = "the benchmark uses a subset of the test helpers")]
mod common;

use std::time::{Duration, Instant};

use common::{Api, cluster_env, spawn, wait_for};
use serde_json::{Value, json};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ts(v: &Value) -> chrono::DateTime<chrono::Utc> {
    v.as_str().and_then(|s| s.parse().ok()).expect("timestamp")
}

fn finished(api: &Api, id: &str) -> Value {
    wait_for(Duration::from_secs(60), "the job", || {
        let (_, j) = api.get(&format!("/api/v1/jobs/{id}"));
        (j["status"] != "queued" && j["status"] != "running").then_some(j)
    })
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let node = spawn(
        dir.path(),
        &["serve", "--workers", "2", "--listen", "127.0.0.1:0"],
        &cluster_env(),
    );
    let api = Api::register(&node.url, "bench-jobs@example.com");
    let rounds = 7;

    // Submit → first step started.
    let mut first = Vec::new();
    for _ in 0..rounds + 1 {
        let t = Instant::now();
        let (status, job) = api
            .post(
                "/api/v1/jobs",
                &json!({"definition": "name: one\nsteps:\n  - {name: s, command: \"true\"}\n"}),
            )
            .expect("submit");
        assert_eq!(status, 201, "{job}");
        let id = job["id"].as_str().expect("id").to_owned();
        let started = wait_for(Duration::from_secs(30), "the step to start", || {
            let (_, j) = api.get(&format!("/api/v1/jobs/{id}"));
            j["steps"][0]["started_at"].as_str().map(|_| t.elapsed())
        });
        let j = finished(&api, &id);
        // Server-side view too: created_at → the step's started_at.
        let server = (ts(&j["steps"][0]["started_at"]) - ts(&j["created_at"]))
            .num_microseconds()
            .unwrap_or(0) as f64
            / 1e3;
        let _ = started;
        first.push(server);
    }
    first.remove(0); // warm-up
    println!(
        "submit → first step started (server clock: created_at → step started_at): median {:.1} ms, max {:.1} ms [{rounds} jobs]",
        median(first.clone()),
        first.iter().copied().fold(0.0, f64::max)
    );

    // 10 trivial steps vs 10 one-shot executions.
    let mut steps_yaml = String::from("name: ten\nsteps:\n");
    for i in 0..10 {
        if i == 0 {
            steps_yaml.push_str("  - {name: s0, command: \"true\"}\n");
        } else {
            steps_yaml.push_str(&format!(
                "  - {{name: s{i}, command: \"true\", depends_on: [s{}]}}\n",
                i - 1
            ));
        }
    }
    let (mut job_ms, mut runs_ms) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        let (_, job) = api
            .post("/api/v1/jobs", &json!({"definition": steps_yaml}))
            .expect("submit");
        finished(&api, job["id"].as_str().expect("id"));
        job_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        for _ in 0..10 {
            let (status, e) = api
                .post(
                    "/api/v1/run?wait=true",
                    &json!({"language": "bash", "code": "true"}),
                )
                .expect("run");
            assert_eq!(status, 200, "{e}");
        }
        runs_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "10 chained trivial steps as one job: {:.1} ms; 10 one-shot bash executions (/run?wait): {:.1} ms [median of {rounds}, submit → finished seen by the client]",
        median(job_ms),
        median(runs_ms)
    );
}

//! Output throughput (issue 5): a program printing 50 MB through the whole pipeline — the
//! sandbox's pipes, the worker's streaming masker (with two task secrets, one of which occurs
//! in the output), the output cap, the batched event-log writes, and the stored result.
//!
//! Reported: the program alone (same output into `/dev/null` inside the sandbox), the full
//! run with output stored (enqueue → completed, and started → finished), and the resulting
//! throughput in MB/s; then the size read back through `GET /logs`. SQLite (`serve` with its
//! embedded pool) and, when `VOIDRUNNER_TEST_DATABASE_URL` is set, PostgreSQL with the API and
//! the worker as separate processes.
//! Run with `cargo bench -p voidrunner --bench output`.

#[path = "../tests/common/mod.rs"]
#[expect(dead_code, reason = "the benchmark uses a subset of the test helpers")]
mod common;

use std::time::{Duration, Instant};

use common::{Api, cluster_env, spawn, wait_for};
use serde_json::{Value, json};

const MB: usize = 1_000_000;
const TOTAL: usize = 50 * MB;
const SECRET: &str = "bench-secret-Xy7";

/// Prints `TOTAL` bytes in 1000-byte lines; every 100th line carries the secret.
fn program(sink: &str) -> String {
    format!(
        "import os, sys\n\
secret = os.environ['BENCH_TOKEN']\n\
plain = ('x' * 999 + '\\n').encode()\n\
marked = (secret + 'y' * (999 - len(secret)) + '\\n').encode()\n\
block = b''.join(marked if i % 100 == 0 else plain for i in range(1000))\n\
out = {sink}\n\
for _ in range({TOTAL} // len(block)):\n    out.write(block)\n\
out.flush()\n"
    )
}

fn run(api: &Api, task_id: &str) -> (Value, Duration) {
    let started = Instant::now();
    let (status, body) = api
        .post(&format!("/api/v1/tasks/{task_id}/executions"), &json!({}))
        .expect("enqueue");
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().expect("id").to_owned();
    let done = wait_for(Duration::from_secs(300), "the run", || {
        let (_, e) = api.get(&format!("/api/v1/executions/{id}"));
        (e["status"] != "queued" && e["status"] != "running").then_some(e)
    });
    (done, started.elapsed())
}

fn create(api: &Api, name: &str, code: &str) -> String {
    let (status, task) = api
        .post(
            "/api/v1/tasks",
            &json!({"name": name, "language": "python", "code": code,
                    "limits": {"max_output_bytes": 64 * 1024 * 1024, "timeout_secs": 120},
                    "secrets": {"BENCH_TOKEN": SECRET, "UNUSED_TOKEN": "never-printed-value"}}),
        )
        .expect("create");
    assert_eq!(status, 201, "{task}");
    task["id"].as_str().expect("id").to_owned()
}

#[expect(clippy::cast_precision_loss, reason = "megabytes for display")]
fn mbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

fn measure(label: &str, api: &Api) {
    let quiet = create(api, "quiet", &program("open(os.devnull, 'wb')"));
    let loud = create(api, "loud", &program("sys.stdout.buffer"));
    let (done, quiet_total) = run(api, &quiet);
    assert_eq!(done["status"], "completed", "{done}");
    let quiet_wall = done["wall_time_ms"].as_u64().unwrap_or(0);
    for round in 0..2 {
        let (done, total) = run(api, &loud);
        assert_eq!(done["status"], "completed", "{}", done["status"]);
        let stdout = done["stdout"].as_str().expect("stdout");
        assert!(!stdout.contains(SECRET), "the secret is masked");
        let masked = stdout.matches("***").count();
        let wall = done["wall_time_ms"].as_u64().unwrap_or(0);
        let id = done["id"].as_str().expect("id");
        let logs = reqwest::blocking::Client::new()
            .get(format!(
                "{}/api/v1/executions/{id}/logs?stream=stdout",
                api.base
            ))
            .bearer_auth(&api.token)
            .send()
            .expect("logs")
            .bytes()
            .expect("logs body");
        println!(
            "{label:<34} round {round}: {:.1} MB stored ({} secrets masked), enqueue→done {:>6.2} s = {:>6.1} MB/s; program wall {:>5.2} s (alone, output to /dev/null: {:>5.2} s, enqueue→done {:.2} s); /logs {:.1} MB",
            stdout.len() as f64 / 1e6,
            masked,
            total.as_secs_f64(),
            mbps(TOTAL, total),
            wall as f64 / 1e3,
            quiet_wall as f64 / 1e3,
            quiet_total.as_secs_f64(),
            logs.len() as f64 / 1e6,
        );
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = cluster_env();
    env.push((
        "VOIDRUNNER_API__LIMITS__MAXIMA__MAX_OUTPUT_BYTES",
        (64 * 1024 * 1024).to_string(),
    ));
    {
        let node = spawn(
            dir.path(),
            &["serve", "--workers", "1", "--listen", "127.0.0.1:0"],
            &env,
        );
        let api = Api::register(&node.url, "bench-output@example.com");
        measure("sqlite (serve, embedded pool)", &api);
    }
    match std::env::var("VOIDRUNNER_TEST_DATABASE_URL") {
        Ok(base) if !base.is_empty() => {
            let url = common::fresh_database(&base);
            let serve = [
                "serve",
                "--workers",
                "0",
                "--listen",
                "127.0.0.1:0",
                "--store",
                url.as_str(),
            ];
            let api_node = spawn(dir.path(), &serve, &env);
            let _worker = spawn(
                dir.path(),
                &["worker", "--workers", "1", "--store", url.as_str()],
                &env,
            );
            let api = Api::register(&api_node.url, "bench-output-pg@example.com");
            measure("postgres (API + worker processes)", &api);
        }
        _ => println!("postgres skipped: VOIDRUNNER_TEST_DATABASE_URL is not set"),
    }
}

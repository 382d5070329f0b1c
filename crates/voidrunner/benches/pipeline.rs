//! End-to-end pipeline benchmark (issue 4): a real `voidrunner serve` (release build, SQLite,
//! embedded pool with the default number of slots) driven over HTTP.
//!
//! Prints: enqueue→start latency p50/p99, `POST /api/v1/run?wait=true` of trivial python
//! p50/p99, sustained executions/s of a trivial bash program, and the wall time for 40 light
//! python runs submitted at once. Run with `cargo bench -p voidrunner --bench pipeline`.

#[path = "../tests/common/mod.rs"]
#[expect(dead_code, reason = "the benchmark uses a subset of the test helpers")]
mod common;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::{Api, cluster_env, spawn, wait_for};
use serde_json::{Value, json};

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "index of a small vector"
    )]
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx]
}

fn ts(row: &Value, key: &str) -> Option<DateTime<Utc>> {
    row[key].as_str().and_then(|s| s.parse().ok())
}

/// Milliseconds from enqueue to claim, from the row's own timestamps (microsecond precision).
fn queue_ms(row: &Value) -> Option<f64> {
    let q = ts(row, "queued_at")?;
    let s = ts(row, "started_at")?;
    #[expect(clippy::cast_precision_loss, reason = "microseconds of a short wait")]
    Some((s - q).num_microseconds()? as f64 / 1000.0)
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

fn run_wait(api: &Api, language: &str, code: &str) -> (f64, Value) {
    let started = Instant::now();
    let (status, row) = api
        .post(
            "/api/v1/run?wait=true&timeout_secs=30",
            &json!({"language": language, "code": code}),
        )
        .expect("POST /run");
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(status, 200, "{row}");
    assert_eq!(row["status"], "completed", "{row}");
    (ms, row)
}

/// Enqueues 2,000 trivial bash executions from 8 client threads and returns executions/s from
/// the first start to the last finish (the rows' own timestamps).
fn throughput(api: &Api) -> f64 {
    let (status, task) = api
        .post(
            "/api/v1/tasks",
            &json!({"name": "bench", "language": "bash", "code": "echo ok"}),
        )
        .expect("create task");
    assert_eq!(status, 201, "{task}");
    let path = format!(
        "/api/v1/tasks/{}/executions",
        task["id"].as_str().expect("id")
    );
    let n = 2000;
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let api = api.clone();
                let path = path.clone();
                s.spawn(move || {
                    (0..n / 8)
                        .map(|_| {
                            let (st, row) = api.post(&path, &json!({})).expect("enqueue");
                            assert_eq!(st, 202, "{row}");
                            row["id"].as_str().expect("id").to_owned()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("thread"))
            .collect()
    });
    let last = ids.last().expect("ids").clone();
    wait_for(Duration::from_secs(300), "the bash executions", || {
        let (_, row) = api.get(&format!("/api/v1/executions/{last}"));
        (!matches!(row["status"].as_str(), Some("queued" | "running"))).then_some(())
    });
    let rows: Vec<Value> = ids
        .iter()
        .map(|id| {
            let row = wait_for(Duration::from_secs(60), "one execution", || {
                let (_, row) = api.get(&format!("/api/v1/executions/{id}"));
                (!matches!(row["status"].as_str(), Some("queued" | "running"))).then_some(row)
            });
            assert_eq!(row["status"], "completed", "{row}");
            row
        })
        .collect();
    let first_start = rows
        .iter()
        .filter_map(|r| ts(r, "started_at"))
        .min()
        .expect("start");
    let last_finish = rows
        .iter()
        .filter_map(|r| ts(r, "finished_at"))
        .max()
        .expect("finish");
    #[expect(clippy::cast_precision_loss, reason = "counts and microseconds")]
    let per_sec =
        n as f64 / ((last_finish - first_start).num_microseconds().expect("us") as f64 / 1e6);
    per_sec
}

fn main() {
    if !common::can_sandbox() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut node = spawn(
        dir.path(),
        &["serve", "--listen", "127.0.0.1:0"],
        &cluster_env(),
    );
    let api = Api::register(&node.url, "bench@example.com");
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "pipeline benchmark, SQLite, embedded pool (default slots), load average at start: {}",
        loadavg.trim()
    );

    // Warm-up: helper pool, page cache, connections.
    for _ in 0..20 {
        run_wait(&api, "python", "print(1)");
    }

    // 1. Synchronous submit of trivial python, one at a time.
    let mut http = Vec::new();
    let mut queue = Vec::new();
    for _ in 0..200 {
        let (ms, row) = run_wait(&api, "python", "print(1)");
        http.push(ms);
        queue.extend(queue_ms(&row));
    }
    let (http, queue) = (sorted(http), sorted(queue));
    println!(
        "POST /api/v1/run?wait=true python print(1), n=200: p50 {:.1} ms  p99 {:.1} ms",
        pct(&http, 0.5),
        pct(&http, 0.99)
    );
    println!(
        "enqueue→start (idle pool), n=200: p50 {:.2} ms  p99 {:.2} ms",
        pct(&queue, 0.5),
        pct(&queue, 0.99)
    );

    // 2. Sustained throughput of trivial bash, default slots.
    println!(
        "sustained trivial bash (echo ok), default slots: {:.0} executions/s",
        throughput(&api)
    );

    // 3. 40 light python runs submitted at once.
    let started = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..40)
            .map(|i| {
                let api = api.clone();
                s.spawn(move || run_wait(&api, "python", &format!("print(sum(range({i} * 1000)))")))
            })
            .collect();
        for h in handles {
            h.join().expect("thread");
        }
    });
    println!(
        "40 light python runs submitted at once: all done in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    node.stop();

    // 4. The same throughput with two slots per core (a trivial program's runtime is short
    // next to the store round trips, so one slot per core leaves the CPU idle at times).
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    let slots = (2 * cores).to_string();
    let args = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--workers",
        slots.as_str(),
    ];
    let mut node = spawn(dir.path(), &args, &cluster_env());
    let api = api.at(&node.url);
    println!(
        "sustained trivial bash (echo ok), {slots} slots: {:.0} executions/s",
        throughput(&api)
    );
    node.stop();
}

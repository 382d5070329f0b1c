//! Live streaming latency (issue 5): from a program's `print` to an SSE client on the API
//! node, through the worker's batched log writes, the store, the log signal and the stream's
//! re-read. The program prints `time.time_ns()` on each line; the client subtracts it from
//! its own clock on arrival (same machine, same clock).
//!
//! Two output patterns: sparse (a line every 200 ms: each one is written at once) and chatty
//! (a line every 5 ms: lines are gathered, one write per 50 ms). On SQLite (`serve` with its
//! embedded pool) and, when `VOIDRUNNER_TEST_DATABASE_URL` is set, on PostgreSQL with the API
//! node (`serve --workers 0`) and a `voidrunner worker` as separate processes.
//! Run with `cargo bench -p voidrunner --bench stream`.
//!
//! Figures (2 shared cores, release, 2026-11-26): sparse output p50 0.8 ms / p99 11.5 ms on
//! SQLite, p50 1.5 ms / p99 9.9 ms on PostgreSQL across processes; chatty output p50 ~28 ms /
//! p99 ~55 ms on both (the one-write-per-50-ms batching, by design).

#[path = "../tests/common/mod.rs"]
#[expect(dead_code, reason = "the benchmark uses a subset of the test helpers")]
mod common;

use std::io::{BufRead, BufReader};
use std::time::{SystemTime, UNIX_EPOCH};

use common::{Api, cluster_env, spawn};
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

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

fn program(lines: u32, interval_s: f64) -> String {
    format!(
        "import time\nfor i in range({lines}):\n    print(time.time_ns(), flush=True)\n    time.sleep({interval_s})\n"
    )
}

/// Runs `code` once and returns the print→arrival latency (ms) of every line, read live from
/// the stream (connected right after the enqueue, so nothing is replayed late).
fn run_once(api: &Api, code: &str) -> (Vec<f64>, Vec<f64>) {
    let (status, body) = api
        .post("/api/v1/run", &json!({"language": "python", "code": code}))
        .expect("run");
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().expect("id");
    let res = reqwest::blocking::Client::builder()
        .timeout(None)
        .build()
        .expect("client")
        .get(format!("{}/api/v1/executions/{id}/stream", api.base))
        .bearer_auth(&api.token)
        .send()
        .expect("stream");
    assert_eq!(res.status(), 200);
    let mut out = Vec::new();
    let mut stored = Vec::new();
    let mut event = String::new();
    let mut carry = String::new();
    for line in BufReader::new(res).lines() {
        let line = line.expect("read");
        if let Some(e) = line.strip_prefix("event: ") {
            event = e.to_owned();
        } else if let Some(data) = line.strip_prefix("data: ") {
            let arrived = now_ns();
            let v: Value = serde_json::from_str(data).expect("json");
            if event == "stdout" {
                // A line may be split across chunks: it counts when its newline arrives.
                let stored_ns: u128 = v["created_at"]
                    .as_str()
                    .and_then(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok())
                    .and_then(|t| t.timestamp_nanos_opt())
                    .and_then(|n| u128::try_from(n).ok())
                    .expect("created_at");
                carry.push_str(v["data"].as_str().expect("utf8"));
                while let Some(nl) = carry.find('\n') {
                    let printed: u128 = carry[..nl].trim().parse().expect("a timestamp line");
                    carry.drain(..=nl);
                    #[expect(clippy::cast_precision_loss, reason = "nanoseconds of a short delay")]
                    out.push(arrived.saturating_sub(printed) as f64 / 1e6);
                    #[expect(clippy::cast_precision_loss, reason = "nanoseconds of a short delay")]
                    stored.push(stored_ns.saturating_sub(printed) as f64 / 1e6);
                }
            } else if event == "status" && v["status"] != "queued" && v["status"] != "running" {
                assert_eq!(v["status"], "completed", "{v}");
            }
        }
    }
    (out, stored)
}

fn measure(label: &str, api: &Api) {
    for (pattern, lines, interval, runs) in [
        ("sparse 200 ms", 20, 0.2, 3),
        ("chatty 5 ms", 200, 0.005, 3),
    ] {
        let code = program(lines, interval);
        run_once(api, &code); // warm-up (python start, caches)
        let (mut all, mut stored) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let (a, s) = run_once(api, &code);
            all.extend(a);
            stored.extend(s);
        }
        assert_eq!(all.len(), (lines * runs) as usize, "every line arrived");
        all.sort_by(f64::total_cmp);
        stored.sort_by(f64::total_cmp);
        println!(
            "{label:<34} {pattern:<14} lines={:<5} print→SSE p50={:>7.2} ms  p99={:>7.2} ms  max={:>7.2} ms  (print→stored p50={:>6.2} p99={:>6.2})",
            all.len(),
            pct(&all, 0.5),
            pct(&all, 0.99),
            all.last().copied().unwrap_or(f64::NAN),
            pct(&stored, 0.5),
            pct(&stored, 0.99),
        );
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let env = cluster_env();
    {
        let node = spawn(
            dir.path(),
            &["serve", "--workers", "2", "--listen", "127.0.0.1:0"],
            &env,
        );
        let api = Api::register(&node.url, "bench-stream@example.com");
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
                &["worker", "--workers", "2", "--store", url.as_str()],
                &env,
            );
            let api = Api::register(&api_node.url, "bench-stream-pg@example.com");
            measure("postgres (API + worker processes)", &api);
        }
        _ => println!("postgres skipped: VOIDRUNNER_TEST_DATABASE_URL is not set"),
    }
}

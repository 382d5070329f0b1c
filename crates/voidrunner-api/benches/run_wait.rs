//! The API's own share of `POST /api/v1/run?wait=true` (issue 4's hot path): a real server on
//! port 0 over a fresh SQLite store, and an in-process stand-in worker that claims and
//! completes each execution at once (no sandbox), so what is measured is HTTP + auth +
//! validation + enqueue + finished signal + re-read + the claim/complete round trips.
//!
//! Prints p50/p99 over 500 sequential requests after 50 warm-ups.
//! Run with `cargo bench -p voidrunner-api --bench run_wait`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use voidrunner_api::{ApiContext, ApiSettings, JwtSecret, PasswordHashSettings, RateLimitSettings};
use voidrunner_domain::Verdict;
use voidrunner_store::{ClaimRequest, ExecutionResult, Lease, Store};

const WARMUP: usize = 50;
const RUNS: usize = 500;

/// Claims and completes everything at once, following "subscribe, poll, wait".
async fn stand_in_worker(store: Arc<dyn Store>) {
    let mut work = store.queue_signals().subscribe_work();
    loop {
        work.borrow_and_update();
        let req = ClaimRequest {
            worker_id: "bench".into(),
            now: voidrunner_store::now(),
            lease: Duration::from_secs(60),
            per_user_running_limit: None,
        };
        match store.claim_next(&req).await.expect("claim") {
            Some(e) => {
                let lease = Lease::of(&e).expect("lease");
                let result = ExecutionResult {
                    verdict: Verdict::Exited { code: 0 },
                    exit_code: Some(0),
                    signal: None,
                    stdout: "ok\n".into(),
                    stderr: String::new(),
                    compile_output: None,
                    output_truncated: false,
                    wall_time_ms: 1,
                    cpu_time_ms: 1,
                    peak_memory_bytes: None,
                    resource_samples: Vec::new(),
                    finished_at: voidrunner_store::now(),
                };
                store
                    .complete_execution(&lease, result)
                    .await
                    .expect("complete");
            }
            None => {
                let _ = tokio::time::timeout(Duration::from_secs(1), work.changed()).await;
            }
        }
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "index of a small vector"
    )]
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (sqlite, _dir) = voidrunner_store_sqlite::testing::fresh_store().await;
    let store: Arc<dyn Store> = Arc::new(sqlite);
    let off = RateLimitSettings {
        enabled: false,
        requests_per_sec: 1.0,
        burst: 1,
    };
    let settings = ApiSettings {
        rate_limit_per_ip: off,
        rate_limit_per_user: off,
        password_hashing: PasswordHashSettings {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
        },
        ..ApiSettings::default()
    };
    let ctx =
        ApiContext::new(store.clone(), settings, JwtSecret::new(vec![7u8; 32])).expect("settings");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(voidrunner_api::serve(listener, ctx, std::future::pending()));
    tokio::spawn(stand_in_worker(store));

    let client = voidrunner_client::Client::new(base.clone()).expect("client");
    let tokens = client
        .register("bench@example.com", "bench-password")
        .await
        .expect("register");
    let http = reqwest::Client::new();
    let body = serde_json::json!({"language": "python", "code": "print('ok')"});
    let url = format!("{base}/api/v1/run?wait=true&timeout_secs=30");
    let mut samples = Vec::with_capacity(RUNS);
    for i in 0..WARMUP + RUNS {
        let started = Instant::now();
        let res = http
            .post(&url)
            .bearer_auth(&tokens.access_token)
            .json(&body)
            .send()
            .await
            .expect("send");
        let status = res.status();
        let _ = res.bytes().await.expect("body");
        assert_eq!(status, 200);
        if i >= WARMUP {
            samples.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    samples.sort_by(f64::total_cmp);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "POST /api/v1/run?wait=true, stand-in worker, SQLite: p50 {:.2} ms, p99 {:.2} ms ({RUNS} runs; loadavg {})",
        pct(&samples, 0.5),
        pct(&samples, 0.99),
        load.split_whitespace().next().unwrap_or("?")
    );
}

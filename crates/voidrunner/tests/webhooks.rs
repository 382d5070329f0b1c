//! Webhooks and execution metrics end to end: the real binary runs a real sandboxed program of
//! more than a second with a `callback_url`; a plain HTTP receiver on 127.0.0.1 answers 500
//! once and then 200 and checks every signature with the secret the API shows the user. The
//! delivery ends `delivered` after two attempts, `/metrics` counts both outcomes, the server
//! key file is private, and the execution's metrics carry its measurements and timeline.

#[expect(
    dead_code,
    reason = "helpers shared by several test binaries; this one uses some"
)]
mod common;

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::sync::mpsc;
use std::time::Duration;

use common::{Api, cluster_env, spawn, wait_for};
use serde_json::{Value, json};

/// One request as the receiver saw it.
#[derive(Debug)]
struct Received {
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

/// A minimal HTTP/1.1 receiver answering `script` in order (then 200).
fn receiver(script: Vec<u16>) -> (String, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "http://{}/hooks/voidrunner",
        listener.local_addr().expect("addr")
    );
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut script: VecDeque<u16> = script.into();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut headers = BTreeMap::new();
            let mut line = String::new();
            reader.read_line(&mut line).expect("request line");
            loop {
                line.clear();
                reader.read_line(&mut line).expect("header");
                let l = line.trim_end();
                if l.is_empty() {
                    break;
                }
                if let Some((k, v)) = l.split_once(':') {
                    headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
                }
            }
            let len: usize = headers
                .get("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; len];
            reader.read_exact(&mut body).expect("body");
            let status = script.pop_front().unwrap_or(200);
            let answer =
                format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = stream.write_all(answer.as_bytes());
            if tx.send(Received { headers, body }).is_err() {
                return;
            }
        }
    });
    (url, rx)
}

const PROGRAM: &str = "import time\n\
t = time.time()\n\
data = []\n\
while time.time() - t < 1.5:\n    data.append(bytearray(64 * 1024))\n    time.sleep(0.01)\n\
print('done', len(data))\n";

#[test]
fn callback_is_signed_retried_and_delivered() {
    if !common::can_sandbox() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let args = ["serve", "--workers", "1", "--listen", "127.0.0.1:0"];
    let node = spawn(dir.path(), &args, &webhook_env(true));
    let api = Api::register(&node.url, "hooks-e2e@example.com");
    run_and_check(&api, "sqlite");

    let scrape = reqwest::blocking::get(format!("{}/metrics", node.url))
        .expect("scrape")
        .text()
        .expect("text");
    for (outcome, n) in [("retried", 1), ("delivered", 1)] {
        let line = format!("voidrunner_webhook_deliveries_total{{outcome=\"{outcome}\"}} {n}");
        assert!(scrape.contains(&line), "missing {line}");
    }
    let key = dir.path().join("data").join("webhook.key");
    let mode = std::fs::metadata(&key)
        .expect("webhook.key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// API node and worker node as separate processes on PostgreSQL; the API node sends no
/// webhooks, so the worker node's dispatcher must (with the key file both share), and the
/// API node shows the secret that verifies it.
#[test]
fn worker_node_delivers_on_postgres() {
    let Ok(base) = std::env::var("VOIDRUNNER_TEST_DATABASE_URL") else {
        eprintln!("skipped: VOIDRUNNER_TEST_DATABASE_URL is not set");
        return;
    };
    if !common::can_sandbox() {
        return;
    }
    let url = common::fresh_database(&base);
    let dir = tempfile::tempdir().expect("tempdir");
    let api_args = [
        "serve",
        "--workers",
        "0",
        "--listen",
        "127.0.0.1:0",
        "--store",
        &url,
    ];
    let mut api_node = spawn(dir.path(), &api_args, &webhook_env(false));
    let mut worker = spawn(
        dir.path(),
        &["worker", "--workers", "1", "--store", &url],
        &webhook_env(true),
    );
    let api = Api::register(&api_node.url, "hooks-pg@example.com");
    run_and_check(&api, "postgres");
    api_node.stop();
    worker.stop();
}

/// The cluster settings plus webhooks reaching the local receiver quickly.
fn webhook_env(enabled: bool) -> Vec<(&'static str, String)> {
    let mut env = cluster_env();
    env.push(("VOIDRUNNER_WEBHOOKS__ENABLED", enabled.to_string()));
    env.push(("VOIDRUNNER_WEBHOOKS__ALLOW_PRIVATE", "true".to_owned()));
    env.push(("VOIDRUNNER_WEBHOOKS__INITIAL_BACKOFF_MS", "100".to_owned()));
    env.push(("VOIDRUNNER_WEBHOOKS__POLL_INTERVAL_MS", "200".to_owned()));
    env
}

/// Runs [`PROGRAM`] with a callback to a receiver that fails once; checks both signed
/// attempts, the recorded delivery, the execution's metrics and the dashboard stats.
fn run_and_check(api: &Api, label: &str) {
    let (status, s) = api.get("/api/v1/webhooks/signing-secret");
    assert_eq!(status, 200, "{s}");
    let secret = s["secret"].as_str().expect("secret").to_owned();
    let (url, seen) = receiver(vec![500]);
    let (status, exec) = api
        .post(
            "/api/v1/run",
            &json!({"language": "python", "code": PROGRAM, "callback_url": url}),
        )
        .expect("run");
    assert_eq!(status, 202, "{exec}");
    let id = exec["id"].as_str().expect("id").to_owned();

    let mut bodies = Vec::new();
    for attempt in 1..=2 {
        let r = seen
            .recv_timeout(Duration::from_secs(90))
            .unwrap_or_else(|e| panic!("attempt {attempt} not received: {e}"));
        let ts: i64 = r.headers["x-voidrunner-timestamp"].parse().expect("ts");
        let sig = &r.headers["x-voidrunner-signature"];
        assert!(
            voidrunner_webhooks::verify(&secret, ts, &r.body, sig),
            "attempt {attempt}: signature {sig} does not verify"
        );
        assert_eq!(r.headers["x-voidrunner-event"], "execution.finished");
        assert_eq!(r.headers["x-voidrunner-delivery"], id);
        assert_eq!(r.headers["content-type"], "application/json");
        let now = chrono::Utc::now().timestamp();
        assert!((now - ts).abs() < 60, "timestamp {ts} is current");
        bodies.push(serde_json::from_slice::<Value>(&r.body).expect("json body"));
    }
    let body = &bodies[1];
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["status"], "completed", "{body}");
    assert!(body["stdout"].as_str().expect("stdout").starts_with("done"));
    // The body is the execution as its owner reads it.
    let (_, read) = api.get(&format!("/api/v1/executions/{id}"));
    assert_eq!(body["finished_at"], read["finished_at"]);
    assert_eq!(body["wall_time_ms"], read["wall_time_ms"]);

    let delivery = wait_for(
        Duration::from_secs(30),
        "the delivery to be recorded",
        || {
            let (_, d) = api.get(&format!("/api/v1/executions/{id}/webhook"));
            (d["state"] == "delivered").then_some(d)
        },
    );
    assert_eq!(delivery["attempts"], 2, "{delivery}");
    assert_eq!(delivery["last_status"], 200);
    assert!(delivery["delivered_at"].is_string());

    let (status, m) = api.get(&format!("/api/v1/executions/{id}/metrics"));
    assert_eq!(status, 200, "{m}");
    assert!(m["wall_time_ms"].as_u64().expect("wall") >= 1_500, "{m}");
    assert!(m["peak_memory_bytes"].as_u64().is_some(), "{m}");
    assert!(m["queue_wait_ms"].as_u64().is_some(), "{m}");
    let samples = m["samples"].as_array().expect("samples");
    eprintln!("resource samples recorded: {}", samples.len());
    let times: Vec<u64> = samples
        .iter()
        .map(|s| s["t_ms"].as_u64().expect("t_ms"))
        .collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    // A run of more than a second has a timeline covering it; the program's memory grows.
    assert!(times.last().is_some_and(|t| *t >= 1_000), "{times:?}");
    let memory = |s: &Value| s["memory_bytes"].as_u64().expect("memory");
    let (first, peak) = (memory(&samples[0]), samples.iter().map(memory).max());
    assert!(peak.is_some_and(|p| p > first), "{samples:?}");
    assert!(samples.iter().all(|s| s["cpu_ms"].as_u64().is_some()));

    let (status, stats) = api.get("/api/v1/stats?window=5m");
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["finished"], 1, "{label}: {stats}");
    assert_eq!(stats["by_status"]["completed"], 1);
    assert_eq!(stats["by_language"]["python"], 1);
    assert_eq!(stats["duration_ms"]["p50"], m["wall_time_ms"]);
    assert_eq!(stats["queue_wait_ms"]["p50"], m["queue_wait_ms"]);
}

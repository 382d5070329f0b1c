//! Structured logs end to end: `serve --log-format json` with its embedded worker; the request
//! id of the API call that enqueued an execution appears on the worker's log lines for it
//! (the `execution` span carries it), and the other formats start. With the `otel` feature, a
//! local OTLP/HTTP receiver gets the spans.

#[expect(
    dead_code,
    reason = "helpers shared by several test binaries; this one uses some"
)]
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Api, BIN, cluster_env};
use serde_json::{Value, json};

/// A `serve` child whose stderr lines arrive on a channel.
struct Logged {
    child: Child,
    url: String,
    lines: mpsc::Receiver<String>,
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Logged {
    /// Waits for a line `pred` accepts; panics after `timeout`.
    fn line(&self, timeout: Duration, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if pred(&l) => return l,
                Ok(_) => {}
                Err(_) => panic!("no log line {what} within {timeout:?}"),
            }
        }
    }

    /// SIGTERM and wait for the exit.
    fn stop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let _ = self.child.wait();
    }
}

fn serve(dir: &std::path::Path, format: &str, extra: &[(&str, String)]) -> Logged {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .args([
            "serve",
            "--workers",
            "1",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            format,
        ])
        .env_remove("VOIDRUNNER_DATABASE_URL")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in cluster_env().iter().chain(extra) {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn voidrunner");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut node = Logged {
        child,
        url: String::new(),
        lines,
    };
    let ready = node.line(Duration::from_secs(60), "announcing the address", |l| {
        l.contains("listening on http://")
    });
    let addr = ready
        .split("http://")
        .nth(1)
        .and_then(|rest| {
            rest.split(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':'))
                .next()
        })
        .expect("address in the listening line");
    node.url = format!("http://{addr}");
    node
}

#[test]
fn worker_log_lines_carry_the_request_id_of_the_enqueuing_call() {
    if !common::can_sandbox() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let node = serve(dir.path(), "json", &[]);
    let api = Api::register(&node.url, "tracing@example.com");
    let res = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/run", node.url))
        .bearer_auth(&api.token)
        .header("x-request-id", "test-req-123")
        .json(&json!({"language": "python", "code": "print('traced')"}))
        .send()
        .expect("run");
    assert_eq!(res.status(), 202);
    let id = res.json::<Value>().expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let finished = node.line(Duration::from_secs(60), "for the finished execution", |l| {
        l.contains(&format!("execution {id} finished"))
    });
    assert!(
        finished.contains("\"request_id\":\"test-req-123\""),
        "the worker's line names the request: {finished}"
    );
    let v: Value = serde_json::from_str(&finished).expect("one JSON object per line");
    assert_eq!(v["span"]["name"], "execution", "{v}");
    assert_eq!(v["span"]["execution.id"], id.as_str(), "{v}");
    assert!(v["spans"].is_array(), "the span list is included: {v}");
}

#[test]
fn pretty_and_text_formats_start() {
    for format in ["pretty", "text"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut node = serve(
            dir.path(),
            format,
            &[("VOIDRUNNER_WORKER__CONCURRENCY", "0".into())],
        );
        let res = reqwest::blocking::get(format!("{}/health", node.url)).expect("health");
        assert!(res.status().is_success(), "{format}");
        node.stop();
    }
}

/// A one-connection-at-a-time HTTP receiver recording the request lines it gets.
#[cfg(feature = "otel")]
fn otlp_receiver() -> (String, mpsc::Receiver<String>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut length = 0usize;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
            let _ = tx.send(format!("{} {}", request_line.trim(), body.len()));
        }
    });
    (format!("http://{addr}"), rx)
}

#[cfg(feature = "otel")]
#[test]
fn spans_are_exported_over_otlp_http_when_configured() {
    let (endpoint, requests) = otlp_receiver();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut node = serve(
        dir.path(),
        "json",
        &[
            ("VOIDRUNNER_WORKER__CONCURRENCY", "0".into()),
            ("VOIDRUNNER_LOG__OTLP_ENDPOINT", endpoint),
        ],
    );
    let res = reqwest::blocking::get(format!("{}/health", node.url)).expect("health");
    assert!(res.status().is_success());
    // The batch is flushed at the latest when the process exits.
    node.stop();
    let got = requests
        .recv_timeout(Duration::from_secs(30))
        .expect("a POST to the OTLP receiver");
    assert!(got.starts_with("POST /v1/traces "), "{got}");
    let body_len: usize = got
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(body_len > 0, "a non-empty protobuf body: {got}");
}

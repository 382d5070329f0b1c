//! Task secrets end to end with real sandboxed runs (issue 5, masking acceptance): a secret
//! sent once through the API is injected into the program, and whatever the program does with
//! it (prints it whole, split across flushed writes, on stderr, inside an env dump, a
//! multi-line secret) only `***` reaches the stored result, the log endpoint, the SSE stream,
//! `/metrics` — and no file of the data directory (database, WAL, logs) holds the plaintext.

#[expect(
    dead_code,
    reason = "helpers shared by several test binaries; this one uses some"
)]
mod common;

use std::path::Path;
use std::time::Duration;

use common::{Api, cluster_env, spawn, wait_for};
use serde_json::json;

const TOKEN: &str = "tok-9f8e7d6c5b4a";
const MULTI: &str = "-----BEGIN KEY-----\nQUJDREVGR0hJSktMTU5P\n-----END KEY-----";
/// Appears in the task's code, so the data-dir scan must find it (proves the scan works).
const MARKER: &str = "PLAIN-MARKER-4242";

const PROGRAM: &str = "import os, sys, time\n\
# PLAIN-MARKER-4242\n\
t = os.environ['API_TOKEN']\n\
print('whole:', t, flush=True)\n\
for ch in t:\n    sys.stdout.write(ch); sys.stdout.flush(); time.sleep(0.01)\n\
print(flush=True)\n\
print('err:', t, file=sys.stderr, flush=True)\n\
print('env:', dict(os.environ), flush=True)\n\
print(os.environ['PEM'], flush=True)\n\
print('end', flush=True)\n";

#[test]
fn secrets_never_leave_the_sandbox_in_clear() {
    if !common::can_sandbox() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let args = ["serve", "--workers", "1", "--listen", "127.0.0.1:0"];
    // Logs over 1 byte are archived to <data_dir>/logs within a second, so the archived
    // object is scanned too.
    let mut env = cluster_env();
    env.push(("VOIDRUNNER_LOGS__ARCHIVE_THRESHOLD_BYTES", "1".to_owned()));
    env.push(("VOIDRUNNER_LOGS__ARCHIVE_INTERVAL_SECS", "1".to_owned()));
    let node = spawn(dir.path(), &args, &env);
    let api = Api::register(&node.url, "secrets-e2e@example.com");
    let (status, task) = api
        .post(
            "/api/v1/tasks",
            &json!({"name": "leaky", "language": "python", "code": PROGRAM,
                    "secrets": {"API_TOKEN": TOKEN, "PEM": MULTI}}),
        )
        .expect("create task");
    assert_eq!(status, 201, "{task}");
    assert_eq!(task["secret_names"], json!(["API_TOKEN", "PEM"]));
    let task_id = task["id"].as_str().expect("id");

    // One SSE client follows the whole run; its raw text is checked at the end.
    let (status, exec) = api
        .post(&format!("/api/v1/tasks/{task_id}/executions"), &json!({}))
        .expect("run");
    assert_eq!(status, 202, "{exec}");
    let id = exec["id"].as_str().expect("id").to_owned();
    let sse = std::thread::spawn({
        let api = api.clone();
        let id = id.clone();
        move || {
            reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client")
                .get(format!("{}/api/v1/executions/{id}/stream", api.base))
                .bearer_auth(&api.token)
                .send()
                .expect("stream")
                .text()
                .expect("stream body")
        }
    });
    let done = wait_for(Duration::from_secs(60), "the run to finish", || {
        let (_, e) = api.get(&format!("/api/v1/executions/{id}"));
        (e["status"] != "queued" && e["status"] != "running").then_some(e)
    });
    assert_eq!(done["status"], "completed", "{done}");
    let stdout = done["stdout"].as_str().expect("stdout");
    assert!(stdout.contains("whole: ***\n"), "{stdout}");
    assert!(
        stdout.contains("\n***\n"),
        "chunk-split secret masked: {stdout}"
    );
    assert!(
        stdout.contains("'API_TOKEN': '***'"),
        "env dump masked: {stdout}"
    );
    assert!(
        stdout.contains("***\nend\n"),
        "multi-line secret masked: {stdout}"
    );
    assert!(
        done["stderr"]
            .as_str()
            .expect("stderr")
            .contains("err: ***")
    );

    let sse = sse.join().expect("sse thread");
    assert!(
        sse.contains("event: result") || sse.contains("completed"),
        "{sse}"
    );
    let logs = reqwest::blocking::Client::new()
        .get(format!("{}/api/v1/executions/{id}/logs", api.base))
        .bearer_auth(&api.token)
        .send()
        .expect("logs")
        .text()
        .expect("logs body");
    assert!(logs.contains("whole: ***"), "{logs}");
    let metrics = reqwest::blocking::get(format!("{}/metrics", api.base))
        .expect("metrics")
        .text()
        .expect("metrics body");
    assert!(
        metrics.contains("voidrunner_"),
        "metrics scraped: {metrics:.200}"
    );
    for (what, text) in [
        ("result", done.to_string()),
        ("sse", sse),
        ("logs", logs),
        ("metrics", metrics),
    ] {
        assert_no_secret(what, text.as_bytes());
    }
    let (_, task) = api.get(&format!("/api/v1/tasks/{task_id}"));
    assert_no_secret("task", task.to_string().as_bytes());

    // Every file the service wrote: the database, its WAL, keys, archived logs.
    let archived = wait_for(Duration::from_secs(30), "the log to be archived", || {
        let mut files = Vec::new();
        scan(&dir.path().join("data/logs"), &mut |p, _| {
            files.push(p.to_path_buf())
        });
        (!files.is_empty()).then_some(files)
    });
    assert!(!archived.is_empty());
    let from_archive = reqwest::blocking::Client::new()
        .get(format!("{}/api/v1/executions/{id}/logs", api.base))
        .bearer_auth(&api.token)
        .send()
        .expect("logs")
        .text()
        .expect("logs body");
    assert!(from_archive.contains("whole: ***"), "{from_archive}");
    assert_no_secret("archived logs", from_archive.as_bytes());
    let mut found_marker = false;
    scan(dir.path(), &mut |path, bytes| {
        found_marker |= contains(bytes, MARKER.as_bytes());
        assert_no_secret(&path.display().to_string(), bytes);
    });
    assert!(
        found_marker,
        "the scan must see stored task code (is the database elsewhere?)"
    );
    drop(node);
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn assert_no_secret(what: &str, bytes: &[u8]) {
    for secret in [TOKEN, "QUJDREVGR0hJSktMTU5P"] {
        assert!(
            !contains(bytes, secret.as_bytes()),
            "{what} holds a secret in clear"
        );
    }
    // JSON-escaped forms too (a multi-line value inside a JSON string).
    let escaped = serde_json::to_string(MULTI).expect("json");
    assert!(
        !contains(bytes, escaped.trim_matches('"').as_bytes()),
        "{what}"
    );
}

fn scan(dir: &Path, f: &mut dyn FnMut(&Path, &[u8])) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            scan(&path, f);
        } else if let Ok(bytes) = std::fs::read(&path) {
            f(&path, &bytes);
        }
    }
}

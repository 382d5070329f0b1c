//! Live streaming end to end with real processes (issue 5 acceptance): a python program that
//! prints lines with flushes and sleeps, and SSE clients on the API node that see every chunk
//! in order exactly once and the final result — on SQLite (`serve` with its embedded pool)
//! and on PostgreSQL with the API (`serve --workers 0`) and the worker (`voidrunner worker`)
//! as separate processes, so the events cross processes through the database only.

#[expect(
    dead_code,
    reason = "helpers shared by several test binaries; this one uses some"
)]
mod common;

use std::io::{BufRead, BufReader};

use common::{Api, cluster_env, spawn};
use serde_json::{Value, json};

/// Prints 8 lines 0.3 s apart (flushed), then one line on stderr.
const PROGRAM: &str = "import sys, time\n\
for i in range(8):\n    print(f'line {i}', flush=True)\n    time.sleep(0.3)\n\
print('done', file=sys.stderr, flush=True)\n";

/// One Server-Sent Event.
#[derive(Debug, Clone, PartialEq)]
struct Sse {
    id: u64,
    event: String,
    data: Value,
}

/// A blocking SSE reader over the streaming response body.
struct SseReader {
    lines: std::io::Lines<BufReader<reqwest::blocking::Response>>,
}

impl SseReader {
    fn connect(api: &Api, id: &str, last_event_id: Option<u64>) -> SseReader {
        let mut rb = reqwest::blocking::Client::new()
            .get(format!("{}/api/v1/executions/{id}/stream", api.base))
            .bearer_auth(&api.token);
        if let Some(last) = last_event_id {
            rb = rb.header("Last-Event-ID", last.to_string());
        }
        let res = rb.send().expect("connect to the stream");
        assert_eq!(res.status(), 200);
        SseReader {
            lines: BufReader::new(res).lines(),
        }
    }

    /// The next event; `None` when the server ended the stream.
    fn next(&mut self) -> Option<Sse> {
        let (mut id, mut event, mut data) = (None, String::new(), String::new());
        loop {
            let line = match self.lines.next() {
                None => return None,
                Some(l) => l.expect("read stream"),
            };
            if line.is_empty() {
                if data.is_empty() {
                    continue; // a keep-alive comment block
                }
                return Some(Sse {
                    id: id.expect("event id"),
                    event,
                    data: serde_json::from_str(&data).expect("JSON data"),
                });
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((&line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => id = Some(value.parse::<u64>().expect("numeric id")),
                "event" => event = value.to_owned(),
                "data" => data.push_str(value),
                _ => {}
            }
        }
    }
}

/// Runs the program on the cluster behind `api` and checks what two SSE clients see: one
/// reading straight through, one that disconnects after the first output chunk and resumes
/// with `Last-Event-ID`.
fn stream_a_live_program(api: &Api) {
    let (status, body) = api
        .post(
            "/api/v1/run",
            &json!({"language": "python", "code": PROGRAM}),
        )
        .expect("run");
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().expect("id").to_owned();
    let mut reader = SseReader::connect(api, &id, None);
    let mut resumer = SseReader::connect(api, &id, None);
    let mut seen = Vec::new();
    let mut checked_live = false;
    while let Some(e) = reader.next() {
        if e.event == "stdout" && !checked_live {
            // The first chunk arrives while the program still runs (it sleeps 2 s more).
            let (_, row) = api.get(&format!("/api/v1/executions/{id}"));
            assert_eq!(row["status"], "running", "first chunk streamed live: {row}");
            checked_live = true;
        }
        seen.push(e);
    }
    assert!(checked_live, "some stdout was streamed: {seen:?}");
    let seqs: Vec<u64> = seen.iter().map(|e| e.id).collect();
    let expected: Vec<u64> = (1..=seen.len() as u64).collect();
    assert_eq!(seqs, expected, "every event exactly once, in order");
    assert_eq!(seen[0].data["status"], "queued");
    assert_eq!(seen[1].data["status"], "running");
    let text = |stream: &str| -> String {
        seen.iter()
            .filter(|e| e.event == stream)
            .map(|e| e.data["data"].as_str().expect("utf8 chunk").to_owned())
            .collect()
    };
    let lines: String = (0..8).map(|i| format!("line {i}\n")).collect();
    assert_eq!(text("stdout"), lines);
    assert_eq!(text("stderr"), "done\n");
    let last = seen.last().expect("events");
    assert_eq!(last.event, "status");
    assert_eq!(last.data["status"], "completed", "{}", last.data);
    assert_eq!(last.data["exit_code"], 0);

    // Disconnect after the first output chunk, resume with Last-Event-ID: same sequence.
    let mut resumed = Vec::new();
    while let Some(e) = resumer.next() {
        let first_output = e.event == "stdout";
        resumed.push(e);
        if first_output {
            break;
        }
    }
    drop(resumer);
    let mut again = SseReader::connect(api, &id, resumed.last().map(|e| e.id));
    while let Some(e) = again.next() {
        resumed.push(e);
    }
    assert_eq!(
        resumed, seen,
        "the resumed client saw the same events exactly once"
    );

    // The stored logs agree with the stream.
    let res = reqwest::blocking::Client::new()
        .get(format!(
            "{}/api/v1/executions/{id}/logs?stream=stdout",
            api.base
        ))
        .bearer_auth(&api.token)
        .send()
        .expect("logs");
    assert_eq!(res.text().expect("text"), lines);
}

#[test]
fn sqlite_serve_streams_a_live_program() {
    if !common::can_sandbox() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let args = ["serve", "--workers", "2", "--listen", "127.0.0.1:0"];
    let node = spawn(dir.path(), &args, &cluster_env());
    let api = Api::register(&node.url, "stream-sqlite@example.com");
    stream_a_live_program(&api);
}

#[test]
fn postgres_api_node_streams_a_program_run_by_a_separate_worker() {
    let Ok(base) = std::env::var("VOIDRUNNER_TEST_DATABASE_URL") else {
        eprintln!("skipped: VOIDRUNNER_TEST_DATABASE_URL is not set");
        return;
    };
    if !common::can_sandbox() {
        return;
    }
    let url = common::fresh_database(&base);
    let dir = tempfile::tempdir().expect("tempdir");
    let env = cluster_env();
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
    let api = Api::register(&api_node.url, "stream-pg@example.com");
    stream_a_live_program(&api);
}

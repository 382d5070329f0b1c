//! Log archiving and retention end to end with the real binary (SQLite, local filesystem
//! objects): a program printing more than the threshold gets archived, its rows leave the
//! database, and every way of reading the log (text, JSON, ranges, stream filter, SSE replay
//! with `Last-Event-ID`) answers byte for byte what it answered before; retention by age and
//! by total size then expire the right executions, which answer `410 logs_expired`.
//!
//! Each phase is a separate `serve` process on the same data directory, so "before" is
//! captured with the archiver off and nothing races it. On PostgreSQL, archivers of three
//! processes (an API node and two workers) race on one log and exactly one wins.

#[expect(
    dead_code,
    reason = "helpers shared by several test binaries; this one uses some"
)]
mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Api, Node, cluster_env, spawn, wait_for};
use serde_json::{Value, json};
use voidrunner_store::{LogArchiveStore, LogLocation, LogStore};

/// About 150 KB on stdout and a few stderr lines, flushed in bursts.
const BIG: &str = "import sys\n\
for i in range(3000):\n    print(f'line {i} ' + 'x' * 40, flush=(i % 100 == 0))\n    \
if i % 500 == 0:\n        print(f'err {i}', file=sys.stderr, flush=True)\n";

fn node(dir: &Path, extra: &[(&str, &str)]) -> Node {
    let mut env = cluster_env();
    env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    spawn(
        dir,
        &[
            "serve",
            "--workers",
            "1",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            "data",
        ],
        &env,
    )
}

/// Runs `code` and waits for the result; its id.
fn run(api: &Api, code: &str) -> String {
    let (status, body) = api
        .post("/api/v1/run", &json!({"language": "python", "code": code}))
        .expect("run");
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().expect("id").to_owned();
    wait_for(Duration::from_secs(60), "the execution to finish", || {
        let (_, row) = api.get(&format!("/api/v1/executions/{id}"));
        (row["status"] == "completed").then_some(())
    });
    id
}

/// What one read answered: status, selected headers, body bytes.
#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    content_range: Option<String>,
    body: Vec<u8>,
}

fn get(api: &Api, path: &str, headers: &[(&str, String)]) -> Answer {
    let mut rb = reqwest::blocking::Client::new()
        .get(format!("{}{path}", api.base))
        .bearer_auth(&api.token);
    for (k, v) in headers {
        rb = rb.header(*k, v);
    }
    let res = rb.send().expect("GET");
    Answer {
        status: res.status().as_u16(),
        content_range: res
            .headers()
            .get("content-range")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: res.bytes().expect("body").to_vec(),
    }
}

/// Every way of reading the log of `id`.
fn reads(api: &Api, id: &str) -> Vec<(String, Answer)> {
    let logs = format!("/api/v1/executions/{id}/logs");
    let stream = format!("/api/v1/executions/{id}/stream");
    let cases: Vec<(String, Vec<(&str, String)>)> = vec![
        (logs.clone(), vec![]),
        (format!("{logs}?format=json"), vec![]),
        (format!("{logs}?stream=stderr"), vec![]),
        (format!("{logs}?stream=stdout&format=json"), vec![]),
        (logs.clone(), vec![("range", "bytes=100-5099".into())]),
        (logs.clone(), vec![("range", "bytes=-300".into())]),
        (format!("{logs}?download=true"), vec![]),
        (stream.clone(), vec![]),
        (stream.clone(), vec![("last-event-id", "7".into())]),
        (stream.clone(), vec![("last-event-id", "3".into())]),
    ];
    cases
        .into_iter()
        .map(|(path, headers)| {
            let label = format!("{path} {headers:?}");
            (label, get(api, &path, &headers))
        })
        .collect()
}

fn vrlog_files(data: &Path) -> Vec<PathBuf> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(p) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|x| x == "vrlog") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&data.join("logs"), &mut out);
    out
}

/// Opens the node's SQLite database from the test (WAL: concurrent readers are fine).
fn with_store<T>(
    data: &Path,
    f: impl AsyncFnOnce(&voidrunner_store_sqlite::SqliteStore) -> T,
) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        let store = voidrunner_store_sqlite::SqliteStore::connect(
            &data.join("voidrunner.db"),
            voidrunner_store_sqlite::SqliteOptions::default(),
        )
        .await
        .expect("open the node's database");
        f(&store).await
    })
}

fn execution_id(id: &str) -> voidrunner_domain::ExecutionId {
    id.parse().expect("execution id")
}

fn expect_gone(api: &Api, id: &str) {
    for path in [
        format!("/api/v1/executions/{id}/logs"),
        format!("/api/v1/executions/{id}/stream"),
    ] {
        let a = get(api, &path, &[]);
        assert_eq!(a.status, 410, "{path}");
        let body: Value = serde_json::from_slice(&a.body).expect("error envelope");
        assert_eq!(body["error"]["code"], "logs_expired", "{body}");
    }
    let (_, row) = api.get(&format!("/api/v1/executions/{id}"));
    assert_eq!(
        row["stdout"], "",
        "the result's output is deleted too: {row}"
    );
    assert_eq!(row["status"], "completed", "the execution itself stays");
}

#[test]
fn archived_log_reads_back_identically_then_expires_by_age() {
    if !common::can_sandbox() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // Phase 1: archiver off; run a big and a small program and read everything.
    let mut a = node(dir.path(), &[("VOIDRUNNER_LOGS__ARCHIVE_ENABLED", "false")]);
    let api = Api::register(&a.url, "archive-e2e@example.com");
    let big = run(&api, BIG);
    let small = run(&api, "print('small')\n");
    let before = reads(&api, &big);
    let small_before = reads(&api, &small);
    assert!(
        before[0].1.body.len() > 100_000,
        "the program printed enough"
    );
    assert_eq!(before[4].1.status, 206);
    a.stop();
    assert!(vrlog_files(&data).is_empty());

    // Phase 2: archiver on (64 KiB threshold): the big log moves, the small one stays.
    let mut b = node(
        dir.path(),
        &[
            ("VOIDRUNNER_LOGS__ARCHIVE_THRESHOLD_BYTES", "65536"),
            ("VOIDRUNNER_LOGS__ARCHIVE_INTERVAL_SECS", "1"),
        ],
    );
    let api = api.at(&b.url);
    wait_for(
        Duration::from_secs(30),
        "the big log to be archived",
        || (vrlog_files(&data).len() == 1).then_some(()),
    );
    let (rows, location, small_rows) = with_store(&data, async |s| {
        let id = execution_id(&big);
        (
            s.read_logs(id, 0, 100_000).await.expect("rows").len(),
            s.log_location(id).await.expect("location"),
            s.read_logs(execution_id(&small), 0, 100)
                .await
                .expect("rows")
                .len(),
        )
    });
    assert_eq!(rows, 1, "only the last status event stays in the database");
    let LogLocation::Archived(archive) = location else {
        panic!("archived: {location:?}")
    };
    assert!(archive.events >= 4, "status events and output: {archive:?}");
    assert!(small_rows > 1, "under the threshold: not archived");
    let after = reads(&api, &big);
    for ((label, was), (_, now)) in before.iter().zip(&after) {
        assert_eq!(was, now, "{label}: same answer after archiving");
    }
    assert_eq!(reads(&api, &small), small_before);
    let metrics = reqwest::blocking::get(format!("{}/metrics", b.url))
        .expect("metrics")
        .text()
        .expect("text");
    assert!(
        metrics.contains("voidrunner_log_archive_total{outcome=\"archived\"} 1"),
        "{metrics}"
    );
    b.stop();

    // Phase 3: retention by age (1 s): both executions' output goes, objects included.
    let _c = node(
        dir.path(),
        &[
            ("VOIDRUNNER_LOGS__ARCHIVE_ENABLED", "false"),
            ("VOIDRUNNER_LOGS__RETENTION_MAX_AGE_SECS", "1"),
            ("VOIDRUNNER_LOGS__RETENTION_INTERVAL_SECS", "1"),
        ],
    );
    let api = api.at(&_c.url);
    wait_for(Duration::from_secs(30), "retention by age", || {
        (get(&api, &format!("/api/v1/executions/{small}/logs"), &[]).status == 410).then_some(())
    });
    wait_for(Duration::from_secs(30), "the object to be deleted", || {
        vrlog_files(&data).is_empty().then_some(())
    });
    expect_gone(&api, &big);
    expect_gone(&api, &small);
}

#[test]
fn retention_by_total_size_expires_the_oldest_archives() {
    if !common::can_sandbox() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut a = node(
        dir.path(),
        &[
            ("VOIDRUNNER_LOGS__ARCHIVE_THRESHOLD_BYTES", "1"),
            ("VOIDRUNNER_LOGS__ARCHIVE_INTERVAL_SECS", "1"),
        ],
    );
    let api = Api::register(&a.url, "archive-size@example.com");
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(run(&api, &format!("print('run {i} ' * 200)\n")));
        // Archived one after the other, so archived_at orders them.
        wait_for(Duration::from_secs(30), "archiving", || {
            (vrlog_files(&data).len() == i + 1).then_some(())
        });
    }
    let size_of = |id: &str| -> u64 {
        let f = vrlog_files(&data)
            .into_iter()
            .find(|p| p.to_string_lossy().contains(id))
            .expect("object of the execution");
        std::fs::metadata(f).expect("meta").len()
    };
    let keep = size_of(&ids[1]) + size_of(&ids[2]);
    let texts: Vec<Vec<u8>> = ids
        .iter()
        .map(|id| get(&api, &format!("/api/v1/executions/{id}/logs"), &[]).body)
        .collect();
    a.stop();

    let cap = keep.to_string();
    let b = node(
        dir.path(),
        &[
            ("VOIDRUNNER_LOGS__RETENTION_MAX_TOTAL_BYTES", cap.as_str()),
            ("VOIDRUNNER_LOGS__RETENTION_INTERVAL_SECS", "1"),
        ],
    );
    let api = api.at(&b.url);
    wait_for(Duration::from_secs(30), "retention by size", || {
        (vrlog_files(&data).len() == 2).then_some(())
    });
    expect_gone(&api, &ids[0]);
    for (id, text) in ids.iter().zip(&texts).skip(1) {
        let now = get(&api, &format!("/api/v1/executions/{id}/logs"), &[]);
        assert_eq!((now.status, &now.body), (200, text), "{id} is kept");
    }
}

#[test]
fn postgres_archivers_of_several_processes_archive_once() {
    let Ok(base) = std::env::var("VOIDRUNNER_TEST_DATABASE_URL") else {
        eprintln!("skipped: VOIDRUNNER_TEST_DATABASE_URL is not set");
        return;
    };
    if !common::can_sandbox() {
        return;
    }
    let url = common::fresh_database(&base);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let node_with = |args: &[&str], extra: &[(&str, &str)]| {
        let mut env = cluster_env();
        env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        let mut all = args.to_vec();
        all.extend(["--store", url.as_str(), "--data-dir", "data"]);
        spawn(dir.path(), &all, &env)
    };
    let off = [("VOIDRUNNER_LOGS__ARCHIVE_ENABLED", "false")];
    let mut api_node = node_with(
        &["serve", "--workers", "0", "--listen", "127.0.0.1:0"],
        &off,
    );
    let mut worker = node_with(&["worker", "--workers", "1"], &off);
    let api = Api::register(&api_node.url, "archive-pg@example.com");
    let big = run(&api, BIG);
    let before = reads(&api, &big);
    api_node.stop();
    worker.stop();

    // Three processes archive at once; the database lets one win.
    let on = [
        ("VOIDRUNNER_LOGS__ARCHIVE_THRESHOLD_BYTES", "65536"),
        ("VOIDRUNNER_LOGS__ARCHIVE_INTERVAL_SECS", "1"),
    ];
    let api_node = node_with(&["serve", "--workers", "0", "--listen", "127.0.0.1:0"], &on);
    let _w1 = node_with(&["worker", "--workers", "1"], &on);
    let _w2 = node_with(&["worker", "--workers", "1"], &on);
    let api = api.at(&api_node.url);
    wait_for(Duration::from_secs(30), "the log to be archived", || {
        let events = reads(&api, &big);
        (events == before && vrlog_files(&data).len() == 1).then_some(())
    });
    let location = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt")
        .block_on(async {
            let store = voidrunner_store_postgres::PostgresStore::connect(
                &url,
                voidrunner_store_postgres::PostgresOptions::default(),
            )
            .await
            .expect("connect");
            store
                .log_location(execution_id(&big))
                .await
                .expect("location")
        });
    assert!(matches!(location, LogLocation::Archived(_)), "{location:?}");
    assert_eq!(reads(&api, &big), before, "same answers after archiving");
}

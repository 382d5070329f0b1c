//! Live streams and stored logs through the API, with the test playing the worker through
//! the store trait (claim, batched appends under the lease, complete): SSE clients connected
//! before, during and after a run, a resume with `Last-Event-ID`, and the logs endpoint's
//! formats, filters, ranges and access rules.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use voidrunner_domain::{Execution, Verdict};
use voidrunner_store::{
    AppendOutcome, ClaimRequest, CompleteOutcome, ExecutionResult, Lease, LogChunk, LogStream,
};

use crate::helpers::{Backend, TestApp, TestUser, assert_error, backend_tests};
use crate::sse::{SseClient, SseEvent};

backend_tests!(
    clients_before_during_and_after_see_every_event_once,
    resume_with_last_event_id_continues_without_gap_or_duplicate,
    stream_of_someone_elses_execution_is_404,
    logs_formats_filters_and_downloads,
    logs_byte_ranges,
    user_stream_shows_my_status_changes_only,
);

/// Enqueues a one-shot run as `user`; returns its id.
async fn enqueue(app: &TestApp, user: &TestUser) -> uuid::Uuid {
    let (status, _, body) = app
        .call(
            Method::POST,
            "/api/v1/run",
            Some(user.token()),
            Some(json!({"language": "python", "code": "print(1)"})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    body["id"].as_str().expect("id").parse().expect("uuid")
}

/// Claims the next execution like a worker.
async fn claim(app: &TestApp) -> Execution {
    app.store
        .claim_next(&ClaimRequest {
            worker_id: "test-worker".into(),
            now: voidrunner_store::now(),
            lease: Duration::from_secs(60),
            per_user_running_limit: None,
        })
        .await
        .expect("claim")
        .expect("something to claim")
}

/// Appends one batch under the lease; returns the last seq.
async fn append(app: &TestApp, lease: &Lease, chunks: &[(LogStream, &[u8])]) -> u64 {
    let chunks: Vec<LogChunk> = chunks
        .iter()
        .map(|(stream, data)| LogChunk {
            stream: *stream,
            data: data.to_vec(),
        })
        .collect();
    match app
        .store
        .append_logs(lease, &chunks, voidrunner_store::now())
        .await
        .expect("append")
    {
        AppendOutcome::Appended { last_seq } => last_seq,
        AppendOutcome::LeaseLost => panic!("lease lost"),
    }
}

async fn complete(app: &TestApp, lease: &Lease) {
    let out = app
        .store
        .complete_execution(
            lease,
            ExecutionResult {
                verdict: Verdict::Exited { code: 0 },
                exit_code: Some(0),
                signal: None,
                stdout: String::new(),
                stderr: String::new(),
                compile_output: None,
                output_truncated: false,
                wall_time_ms: 5,
                cpu_time_ms: 3,
                peak_memory_bytes: None,
                resource_samples: Vec::new(),
                finished_at: voidrunner_store::now(),
            },
        )
        .await
        .expect("complete");
    assert!(matches!(out, CompleteOutcome::Completed(_)));
}

/// Reads events until one with `seq >= seq` arrived (the live part of a stream).
async fn read_until(client: &mut SseClient, seq: u64, into: &mut Vec<SseEvent>) {
    while into.last().is_none_or(|e| e.seq() < seq) {
        into.push(client.next().await.expect("stream still open"));
    }
}

/// The full, ordered sequence: queued, running, `n` stdout lines, completed.
#[track_caller]
fn assert_complete_sequence(events: &[SseEvent], lines: usize, who: &str) {
    let seqs: Vec<u64> = events.iter().map(SseEvent::seq).collect();
    let expected: Vec<u64> = (1..=(lines as u64 + 3)).collect();
    assert_eq!(seqs, expected, "{who}: every event exactly once, in order");
    assert_eq!(events[0].status(), Some("queued"), "{who}");
    assert_eq!(events[1].status(), Some("running"), "{who}");
    for (i, e) in events[2..2 + lines].iter().enumerate() {
        assert_eq!(e.event, "stdout", "{who}");
        assert_eq!(e.data["data"], format!("line {i}\n"), "{who}");
        assert_eq!(e.data["encoding"], "utf8", "{who}");
        assert_eq!(e.data["seq"], e.seq(), "{who}");
    }
    let last = events.last().expect("events");
    assert_eq!(last.status(), Some("completed"), "{who}");
    assert_eq!(last.data["exit_code"], 0, "{who}");
    assert!(!last.data["verdict"].is_null(), "{who}: {}", last.data);
}

async fn clients_before_during_and_after_see_every_event_once(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    let id = enqueue(&app, &user).await;
    let url = app.url(&format!("/api/v1/executions/{id}/stream"));
    let mut before = SseClient::connect(&url, user.token(), None).await;
    let mut seen_before = Vec::new();
    read_until(&mut before, 1, &mut seen_before).await;

    let running = claim(&app).await;
    let lease = Lease::of(&running).expect("lease");
    let mut during: Option<SseClient> = None;
    let mut last = 2;
    for i in 0..10 {
        let line = format!("line {i}\n");
        last = append(&app, &lease, &[(LogStream::Stdout, line.as_bytes())]).await;
        // The early client follows live: it has each chunk before the next is written.
        read_until(&mut before, last, &mut seen_before).await;
        if i == 4 {
            during = Some(SseClient::connect(&url, user.token(), None).await);
        }
    }
    assert_eq!(last, 12);
    complete(&app, &lease).await;
    seen_before.extend(before.rest().await);
    let seen_during = during.expect("connected").rest().await;
    let seen_after = SseClient::connect(&url, user.token(), None)
        .await
        .rest()
        .await;
    assert_complete_sequence(&seen_before, 10, "before");
    assert_complete_sequence(&seen_during, 10, "during");
    assert_complete_sequence(&seen_after, 10, "after");
}

async fn resume_with_last_event_id_continues_without_gap_or_duplicate(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    let id = enqueue(&app, &user).await;
    let url = app.url(&format!("/api/v1/executions/{id}/stream"));
    let running = claim(&app).await;
    let lease = Lease::of(&running).expect("lease");
    for i in 0..4 {
        append(
            &app,
            &lease,
            &[(LogStream::Stdout, format!("line {i}\n").as_bytes())],
        )
        .await;
    }
    // Read up to seq 4 (queued, running, line 0, line 1), then drop the connection.
    let mut first = SseClient::connect(&url, user.token(), None).await;
    let mut got = Vec::new();
    read_until(&mut first, 4, &mut got).await;
    drop(first);
    for i in 4..8 {
        append(
            &app,
            &lease,
            &[(LogStream::Stdout, format!("line {i}\n").as_bytes())],
        )
        .await;
    }
    let mut second =
        SseClient::connect(&url, user.token(), Some(got.last().expect("got").seq())).await;
    read_until(&mut second, 7, &mut got).await;
    drop(second);
    complete(&app, &lease).await;
    // A client that cannot send headers resumes with ?after=.
    let third = SseClient::connect(
        &format!("{url}?after={}", got.last().expect("got").seq()),
        user.token(),
        None,
    )
    .await;
    got.extend(third.rest().await);
    assert_complete_sequence(&got, 8, "resumed");
    // Resuming after the terminal event: the stream is empty and ends at once.
    let done = SseClient::connect(&url, user.token(), Some(11))
        .await
        .rest()
        .await;
    assert!(done.is_empty(), "{done:?}");
    let bad = app
        .http
        .get(&url)
        .bearer_auth(user.token())
        .header("Last-Event-ID", "x")
        .send()
        .await
        .expect("send");
    assert_eq!(bad.status(), 400);
}

async fn stream_of_someone_elses_execution_is_404(b: Backend) {
    let app = b.spawn_with(|s| s.first_user_admin = true).await;
    let admin = app.user().await;
    let owner = app.user().await;
    let other = app.user().await;
    let id = enqueue(&app, &owner).await;
    for path in [
        format!("/api/v1/executions/{id}/stream"),
        format!("/api/v1/executions/{id}/logs"),
    ] {
        let got = app
            .call(Method::GET, &path, Some(other.token()), None)
            .await;
        assert_error(&got, 404, "not_found", None);
        let anon = app.call(Method::GET, &path, None, None).await;
        assert_eq!(anon.0, 401);
    }
    // Admins may read anyone's.
    let logs = app
        .call(
            Method::GET,
            &format!("/api/v1/executions/{id}/logs?format=json"),
            Some(admin.token()),
            None,
        )
        .await;
    assert_eq!(logs.0, 200, "{}", logs.2);
    let url = app.url(&format!("/api/v1/executions/{id}/stream"));
    let mut s = SseClient::connect(&url, admin.token(), None).await;
    assert_eq!(
        s.next().await.expect("queued event").status(),
        Some("queued")
    );
}

/// Runs one execution with interleaved stdout/stderr/compile chunks and an invalid UTF-8
/// chunk, through two attempts (the first one's output must not show in the logs).
async fn run_with_output(app: &TestApp, user: &TestUser) -> uuid::Uuid {
    let id = enqueue(app, user).await;
    let first = claim(app).await;
    let first_lease = Lease::of(&first).expect("lease");
    append(
        app,
        &first_lease,
        &[(LogStream::Stdout, b"from the failed attempt\n")],
    )
    .await;
    app.store
        .release_execution(
            &first_lease,
            voidrunner_store::ReleaseReason::Failure {
                error: "sandbox died".into(),
                retry_at: voidrunner_store::now(),
            },
            voidrunner_store::now(),
        )
        .await
        .expect("release");
    let second = claim(app).await;
    let lease = Lease::of(&second).expect("lease");
    append(
        app,
        &lease,
        &[
            (LogStream::Compile, b"compiling\n"),
            (LogStream::Stdout, b"out 1\n"),
            (LogStream::Stderr, b"err 1\n"),
        ],
    )
    .await;
    append(app, &lease, &[(LogStream::Stdout, b"out 2 \xff\n")]).await;
    complete(app, &lease).await;
    id
}

async fn logs_formats_filters_and_downloads(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    let id = run_with_output(&app, &user).await;
    let base = format!("/api/v1/executions/{id}/logs");
    let get = |q: &str| {
        app.http
            .get(app.url(&format!("{base}{q}")))
            .bearer_auth(user.token())
            .send()
    };
    let text = get("").await.expect("send");
    assert_eq!(text.status(), 200);
    assert!(
        text.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain")
    );
    assert_eq!(text.headers()["accept-ranges"], "bytes");
    assert!(text.headers().get("content-disposition").is_none());
    assert_eq!(
        text.bytes().await.expect("body").as_ref(),
        b"out 1\nerr 1\nout 2 \xff\n",
        "stdout and stderr interleaved in order, current attempt only"
    );
    let stderr = get("?stream=stderr").await.expect("send");
    assert_eq!(stderr.bytes().await.expect("body").as_ref(), b"err 1\n");
    let compile = get("?stream=compile").await.expect("send");
    assert_eq!(
        compile.bytes().await.expect("body").as_ref(),
        b"compiling\n"
    );

    let json: serde_json::Value = get("?format=json")
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let items = json["items"].as_array().expect("items");
    let streams: Vec<&str> = items
        .iter()
        .map(|i| i["stream"].as_str().expect("s"))
        .collect();
    assert_eq!(streams, ["compile", "stdout", "stderr", "stdout"]);
    assert!(items.iter().all(|i| i["attempt"] == 2));
    let seqs: Vec<u64> = items
        .iter()
        .map(|i| i["seq"].as_u64().expect("seq"))
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert_eq!(items[1]["encoding"], "utf8");
    assert_eq!(items[1]["data"], "out 1\n");
    assert_eq!(items[3]["encoding"], "base64");
    assert_eq!(items[3]["data"], "b3V0IDIg/wo=");

    // The typed client reads the same.
    let typed = user
        .client
        .execution_logs(id, &voidrunner_api_types::LogsQuery::default())
        .await
        .expect("client json logs");
    assert_eq!(typed.items.len(), 4);
    let only_err = voidrunner_api_types::LogsQuery {
        stream: Some("stderr".into()),
        ..Default::default()
    };
    let text = user
        .client
        .execution_logs_text(id, &only_err)
        .await
        .expect("client text logs");
    assert_eq!(text, b"err 1\n");
    let dl = get("?download=true").await.expect("send");
    assert_eq!(
        dl.headers()["content-disposition"],
        format!("attachment; filename=\"execution-{id}.log\"").as_str()
    );
    for (q, field) in [
        ("?format=xml", "format"),
        ("?stream=status", "stream"),
        ("?download=yes", "download"),
    ] {
        let got = app
            .call(Method::GET, &format!("{base}{q}"), Some(user.token()), None)
            .await;
        assert_error(&got, 400, "invalid_query", Some(field));
    }
    // The SSE stream shows both attempts, the retry marked by its `queued` event.
    let url = app.url(&format!("/api/v1/executions/{id}/stream"));
    let events = SseClient::connect(&url, user.token(), None)
        .await
        .rest()
        .await;
    let kinds: Vec<String> = events
        .iter()
        .map(|e| e.status().map_or_else(|| e.event.clone(), str::to_owned))
        .collect();
    assert_eq!(
        kinds,
        [
            "queued",
            "running",
            "stdout",
            "queued",
            "running",
            "compile",
            "stdout",
            "stderr",
            "stdout",
            "completed"
        ]
    );
}

async fn logs_byte_ranges(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    let id = run_with_output(&app, &user).await;
    let url = app.url(&format!("/api/v1/executions/{id}/logs"));
    let range = |r: &'static str| {
        app.http
            .get(&url)
            .bearer_auth(user.token())
            .header("Range", r)
            .send()
    };
    // Body: "out 1\nerr 1\nout 2 \xff\n" = 20 bytes.
    let part = range("bytes=6-10").await.expect("send");
    assert_eq!(part.status(), 206);
    assert_eq!(part.headers()["content-range"], "bytes 6-10/20");
    assert_eq!(part.bytes().await.expect("body").as_ref(), b"err 1");
    let suffix = range("bytes=-3").await.expect("send");
    assert_eq!(suffix.headers()["content-range"], "bytes 17-19/20");
    assert_eq!(suffix.bytes().await.expect("body").as_ref(), b" \xff\n");
    let open = range("bytes=12-").await.expect("send");
    assert_eq!(open.status(), 206);
    assert_eq!(open.bytes().await.expect("body").len(), 8);
    let past = range("bytes=20-").await.expect("send");
    assert_eq!(past.status(), 416);
    assert_eq!(past.headers()["content-range"], "bytes */20");
    let body: serde_json::Value = past.json().await.expect("envelope");
    assert_eq!(body["error"]["code"], "range_not_satisfiable");
    let multi = range("bytes=0-1,4-5").await.expect("send");
    assert_eq!(multi.status(), 200, "several ranges: the whole body");
}

/// The user-level stream: the caller's status changes across executions, in order per
/// execution, nobody else's.
async fn user_stream_shows_my_status_changes_only(b: Backend) {
    let app = b.spawn().await;
    let me = app.user().await;
    let other = app.user().await;
    let mut s = SseClient::connect(&app.url("/api/v1/executions/stream"), me.token(), None).await;
    let mine_done = enqueue(&app, &me).await;
    let theirs = enqueue(&app, &other).await;
    let mine_cancelled = enqueue(&app, &me).await;
    let first = claim(&app).await;
    assert_eq!(first.id.as_uuid(), mine_done);
    let second = claim(&app).await;
    assert_eq!(second.id.as_uuid(), theirs);
    let lease = Lease::of(&first).expect("lease");
    append(&app, &lease, &[(LogStream::Stdout, b"not a status\n")]).await;
    complete(&app, &lease).await;
    let cancelled = app
        .call(
            Method::DELETE,
            &format!("/api/v1/executions/{mine_cancelled}"),
            Some(me.token()),
            None,
        )
        .await;
    assert_eq!(cancelled.0, 200, "{}", cancelled.2);
    let mut got: Vec<(String, String)> = Vec::new();
    while got.len() < 5 {
        let e = s.next().await.expect("stream open");
        assert_eq!(e.event, "status", "{e:?}");
        let id = e.data["execution_id"]
            .as_str()
            .expect("execution_id")
            .to_owned();
        assert_ne!(id, theirs.to_string(), "another user's execution leaked");
        got.push((id, e.data["status"].as_str().expect("status").to_owned()));
    }
    let of = |id: uuid::Uuid| -> Vec<&str> {
        got.iter()
            .filter(|(i, _)| *i == id.to_string())
            .map(|(_, s)| s.as_str())
            .collect()
    };
    assert_eq!(of(mine_done), ["queued", "running", "completed"]);
    assert_eq!(of(mine_cancelled), ["queued", "cancelled"]);
}

//! `GET /api/v1/stats` and `GET /api/v1/executions/{id}/metrics`: numbers computed from
//! executions the test enqueues through the API and finishes as a worker would (through the
//! store, with chosen queue waits, wall times and resource samples), scope isolation and
//! query validation.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use voidrunner_domain::{ExecutionId, ResourceSample, Verdict};
use voidrunner_store::{ClaimRequest, CompleteOutcome, ExecutionResult, Lease};

use crate::helpers::{Backend, TestApp, TestUser, assert_error, backend_tests};

backend_tests!(
    stats_count_runs_and_compute_percentiles,
    stats_scope_all_is_for_admins,
    stats_window_is_validated,
    execution_metrics_show_the_timeline,
);

/// Enqueues `/run` as `user` in `language`; returns the execution id.
async fn enqueue(app: &TestApp, user: &TestUser, language: &str) -> ExecutionId {
    let (status, _, body) = app
        .call(
            Method::POST,
            "/api/v1/run",
            Some(user.token()),
            Some(json!({"language": language, "code": "echo hi"})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().expect("id").parse().expect("uuid");
    ExecutionId(id)
}

/// Claims `id` (the only queued execution) `wait_ms` after it was enqueued and completes it
/// with `verdict`, `wall_ms` and `samples`.
async fn finish(
    app: &TestApp,
    id: ExecutionId,
    wait_ms: i64,
    wall_ms: u64,
    verdict: Verdict,
    samples: Vec<ResourceSample>,
) {
    let queued = app
        .store
        .get_execution(voidrunner_store::Scope::All, id)
        .await
        .expect("get");
    let claimed = app
        .store
        .claim_next(&ClaimRequest {
            worker_id: "stats-worker".into(),
            now: queued.created_at + chrono::Duration::milliseconds(wait_ms),
            lease: Duration::from_secs(60),
            per_user_running_limit: None,
        })
        .await
        .expect("claim")
        .expect("claimable");
    assert_eq!(claimed.id, id, "one queued execution at a time");
    let exit_code = match verdict {
        Verdict::Exited { code } => Some(code),
        _ => None,
    };
    let result = ExecutionResult {
        verdict,
        exit_code,
        signal: None,
        stdout: "hi\n".into(),
        stderr: String::new(),
        compile_output: None,
        output_truncated: false,
        wall_time_ms: wall_ms,
        cpu_time_ms: wall_ms / 2,
        peak_memory_bytes: Some(8 << 20),
        resource_samples: samples,
        finished_at: voidrunner_store::now(),
    };
    let lease = Lease::of(&claimed).expect("lease");
    match app
        .store
        .complete_execution(&lease, result)
        .await
        .expect("complete")
    {
        CompleteOutcome::Completed(_) => {}
        CompleteOutcome::LeaseLost => panic!("lease lost"),
    }
}

async fn stats(app: &TestApp, user: &TestUser, query: &str) -> Value {
    let (status, _, body) = app
        .call(
            Method::GET,
            &format!("/api/v1/stats{query}"),
            Some(user.token()),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn stats_count_runs_and_compute_percentiles(b: Backend) {
    let app = b.spawn().await;
    let alice = app.user().await;
    let bob = app.user().await;
    // Twenty runs: wall 10, 20, …, 200 ms; queue waits 0, 50, …, 950 ms; the last four fail.
    for i in 0..20_u64 {
        let language = if i < 5 { "python" } else { "bash" };
        let id = enqueue(&app, &alice, language).await;
        let verdict = if i < 16 {
            Verdict::Exited { code: 0 }
        } else {
            Verdict::Exited { code: 3 }
        };
        let wait = i64::try_from(i * 50).expect("small");
        finish(&app, id, wait, (i + 1) * 10, verdict, Vec::new()).await;
    }
    // One still queued.
    enqueue(&app, &alice, "bash").await;

    let s = stats(&app, &alice, "?window=15m").await;
    assert_eq!(s["scope"], "own");
    assert_eq!(s["window_secs"], 900);
    assert_eq!(s["by_status"]["completed"], 16, "{s}");
    assert_eq!(s["by_status"]["failed"], 4);
    assert_eq!(s["by_status"]["queued"], 1);
    assert_eq!(s["by_status"]["running"], 0);
    assert_eq!(s["by_language"]["python"], 5);
    assert_eq!(s["by_language"]["bash"], 16);
    assert_eq!(s["by_verdict"]["exited"], 20);
    assert_eq!(s["finished"], 20);
    // Nearest rank over 10..200: p50 = 100, p95 = 190, p99 = 200.
    assert_eq!(s["duration_ms"]["count"], 20);
    assert_eq!(s["duration_ms"]["p50"], 100);
    assert_eq!(s["duration_ms"]["p95"], 190);
    assert_eq!(s["duration_ms"]["p99"], 200);
    assert_eq!(s["duration_ms"]["max"], 200);
    // Waits 0..950 step 50: p50 = 450, p95 = 900.
    assert_eq!(s["queue_wait_ms"]["p50"], 450);
    assert_eq!(s["queue_wait_ms"]["p95"], 900);
    assert_eq!(s["sampling"]["rows"], 20);
    assert_eq!(s["sampling"]["capped"], false);
    assert_eq!(s["sampling"]["max_rows"], 100_000);
    assert_eq!(s["queue"]["queued"], 1);
    assert_eq!(s["queue"]["running"], 0);
    assert_eq!(s["throughput"]["bucket_ms"], 15_000);
    let points = s["throughput"]["points"].as_array().expect("points");
    assert_eq!(points.len(), 60);
    let total: u64 = points
        .iter()
        .map(|p| p["finished"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(total, 20);
    let last = points
        .iter()
        .rev()
        .find(|p| p["finished"].as_u64() > Some(0));
    let last = last.expect("a bucket with runs");
    let per_minute = last["per_minute"].as_f64().expect("f64");
    let finished = last["finished"].as_f64().expect("f64");
    assert!((per_minute - finished * 4.0).abs() < 1e-9, "{last}");

    // Bob sees none of it.
    let s = stats(&app, &bob, "").await;
    assert_eq!(s["window_secs"], 3600);
    assert_eq!(s["finished"], 0);
    assert_eq!(s["by_status"]["queued"], 0);
    assert_eq!(s["duration_ms"]["p50"], Value::Null);
    assert_eq!(s["queue"]["queued"], 0);
    assert_eq!(s["by_language"], json!({}));
}

async fn stats_scope_all_is_for_admins(b: Backend) {
    let app = b.spawn_with(|s| s.first_user_admin = true).await;
    let admin = app.user().await;
    let user = app.user().await;
    for who in [&admin, &user] {
        let id = enqueue(&app, who, "bash").await;
        finish(&app, id, 5, 40, Verdict::Timeout, Vec::new()).await;
    }
    let all = stats(&app, &admin, "?scope=all&window=5m").await;
    assert_eq!(all["scope"], "all");
    assert_eq!(all["finished"], 2);
    assert_eq!(all["by_status"]["timeout"], 2);
    assert_eq!(all["by_verdict"]["timeout"], 2);
    let own = stats(&app, &admin, "?scope=own").await;
    assert_eq!(own["finished"], 1);
    let got = app
        .call(
            Method::GET,
            "/api/v1/stats?scope=all",
            Some(user.token()),
            None,
        )
        .await;
    assert_error(&got, 403, "forbidden", Some("scope"));
    let got = app.call(Method::GET, "/api/v1/stats", None, None).await;
    assert_eq!(got.0, 401);
}

async fn stats_window_is_validated(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    for ok in ["5m", "300s", "1h", "24h", "7d", "168h"] {
        let s = stats(&app, &user, &format!("?window={ok}")).await;
        assert!(s["window_secs"].as_u64().is_some(), "{ok}");
    }
    for bad in [
        "4m", "299s", "8d", "169h", "1w", "abc", "", "-1h", "1.5h", "0m",
    ] {
        let got = app
            .call(
                Method::GET,
                &format!("/api/v1/stats?window={bad}"),
                Some(user.token()),
                None,
            )
            .await;
        assert_error(&got, 400, "invalid_query", Some("window"));
    }
    let got = app
        .call(
            Method::GET,
            "/api/v1/stats?scope=everyone",
            Some(user.token()),
            None,
        )
        .await;
    assert_error(&got, 400, "invalid_query", Some("scope"));
    let got = app
        .call(
            Method::GET,
            "/api/v1/stats?windows=1h",
            Some(user.token()),
            None,
        )
        .await;
    assert_eq!(got.0, 400);
    assert_eq!(got.2["error"]["code"], "invalid_query");
}

async fn execution_metrics_show_the_timeline(b: Backend) {
    let app = b.spawn().await;
    let owner = app.user().await;
    let other = app.user().await;
    let id = enqueue(&app, &owner, "bash").await;
    let path = format!("/api/v1/executions/{}/metrics", id.as_uuid());

    // Queued: no measurements yet.
    let (status, _, m) = app
        .call(Method::GET, &path, Some(owner.token()), None)
        .await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["status"], "queued");
    assert_eq!(m["wall_time_ms"], Value::Null);
    assert_eq!(m["queue_wait_ms"], Value::Null);
    assert_eq!(m["samples"], json!([]));

    let samples: Vec<ResourceSample> = (0..12)
        .map(|i| ResourceSample {
            t_ms: i * 100,
            memory_bytes: (i + 1) * 1_000_000,
            cpu_ms: i * 90,
        })
        .collect();
    finish(
        &app,
        id,
        250,
        1_200,
        Verdict::Exited { code: 0 },
        samples.clone(),
    )
    .await;

    let (status, _, m) = app
        .call(Method::GET, &path, Some(owner.token()), None)
        .await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["execution_id"], id.as_uuid().to_string());
    assert_eq!(m["status"], "completed");
    assert_eq!(m["wall_time_ms"], 1_200);
    assert_eq!(m["cpu_time_ms"], 600);
    assert_eq!(m["peak_memory_bytes"], 8 << 20);
    assert_eq!(m["queue_wait_ms"], 250);
    let got = m["samples"].as_array().expect("samples");
    assert_eq!(got.len(), 12);
    assert_eq!(
        got[3],
        json!({"t_ms": 300, "memory_bytes": 4_000_000, "cpu_ms": 270})
    );

    // Someone else's, a missing one and a bad id.
    let got = app
        .call(Method::GET, &path, Some(other.token()), None)
        .await;
    assert_error(&got, 404, "not_found", None);
    let missing = format!("/api/v1/executions/{}/metrics", uuid::Uuid::now_v7());
    let got = app
        .call(Method::GET, &missing, Some(owner.token()), None)
        .await;
    assert_error(&got, 404, "not_found", None);
    let got = app
        .call(
            Method::GET,
            "/api/v1/executions/nope/metrics",
            Some(owner.token()),
            None,
        )
        .await;
    assert_error(&got, 400, "invalid_path", Some("id"));
}

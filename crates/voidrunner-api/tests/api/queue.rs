//! The queue seen through the API: `wait=true` against the real finished-signal path (the
//! test plays the worker through the store trait), and the admin dead-letter endpoints.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use voidrunner_api_types::{ExecutionStatusDto, ListExecutionsQuery, RunRequest, WaitQuery};
use voidrunner_domain::{Execution, Verdict};
use voidrunner_store::{
    ClaimRequest, CompleteOutcome, ExecutionResult, Lease, ReleaseOutcome, ReleaseReason,
};

use crate::helpers::{
    Backend, TestApp, assert_client_error, assert_error, backend_tests, create_task,
};

backend_tests!(
    wait_returns_the_finished_execution,
    wait_without_completion_answers_202_after_the_timeout,
    get_with_wait_long_polls,
    dead_letters_are_listed_and_requeued_by_admins_only,
);

/// Claims the next execution as worker `test-worker`, like a worker would.
pub async fn claim(app: &TestApp) -> Option<Execution> {
    app.store
        .claim_next(&ClaimRequest {
            worker_id: "test-worker".into(),
            now: voidrunner_store::now(),
            lease: Duration::from_secs(60),
            per_user_running_limit: None,
        })
        .await
        .expect("claim")
}

/// A successful result with `stdout`.
fn exited_ok(stdout: &str) -> ExecutionResult {
    ExecutionResult {
        verdict: Verdict::Exited { code: 0 },
        exit_code: Some(0),
        signal: None,
        stdout: stdout.to_owned(),
        stderr: String::new(),
        compile_output: None,
        output_truncated: false,
        wall_time_ms: 12,
        cpu_time_ms: 7,
        peak_memory_bytes: Some(4096),
        resource_samples: Vec::new(),
        finished_at: voidrunner_store::now(),
    }
}

/// A worker in a task: waits for the enqueue's work signal ("subscribe, poll, wait"),
/// claims, and completes with `stdout`. Returns the completed row.
fn spawn_worker(app: &TestApp, stdout: &'static str) -> tokio::task::JoinHandle<Execution> {
    let store = app.store.clone();
    let mut work = store.queue_signals().subscribe_work();
    work.borrow_and_update();
    tokio::spawn(async move {
        let claimed = loop {
            let found = store
                .claim_next(&ClaimRequest {
                    worker_id: "test-worker".into(),
                    now: voidrunner_store::now(),
                    lease: Duration::from_secs(60),
                    per_user_running_limit: None,
                })
                .await
                .expect("claim");
            if let Some(e) = found {
                break e;
            }
            tokio::time::timeout(Duration::from_secs(30), work.changed())
                .await
                .expect("an enqueue signals work")
                .expect("signals alive");
        };
        let lease = Lease::of(&claimed).expect("claimed rows carry a lease");
        let outcome = store
            .complete_execution(&lease, exited_ok(stdout))
            .await
            .expect("complete");
        match outcome {
            CompleteOutcome::Completed(row) => *row,
            CompleteOutcome::LeaseLost => panic!("the lease was held"),
        }
    })
}

async fn wait_returns_the_finished_execution(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;

    // One-shot run. The answer must come from the finished signal, not from the timeout's
    // final re-read: it arrives long before the 60 s wait would end.
    let worker = spawn_worker(&app, "hi\n");
    let asked = std::time::Instant::now();
    let got = app
        .call(
            Method::POST,
            "/api/v1/run?wait=true&timeout_secs=60",
            Some(user.token()),
            Some(json!({"language": "python", "code": "print('hi')"})),
        )
        .await;
    let done = worker.await.expect("worker");
    assert_eq!(got.0, 200, "{}", got.2);
    assert!(
        asked.elapsed() < Duration::from_secs(30),
        "woken by the signal, not the timeout"
    );
    let body = &got.2;
    assert_eq!(body["id"], done.id.to_string());
    assert_eq!(body["status"], "completed");
    assert_eq!(body["verdict"], json!({"kind": "exited", "code": 0}));
    assert_eq!(body["exit_code"], 0);
    assert_eq!(body["stdout"], "hi\n");
    assert_eq!(body["task_id"], serde_json::Value::Null);
    assert_eq!(body["worker_id"], "test-worker");
    assert_eq!(body["attempt"], 1);
    assert_eq!(body["wall_time_ms"], 12);
    assert_eq!(body["cpu_time_ms"], 7);
    assert_eq!(body["peak_memory_bytes"], 4096);
    assert!(body["queue_wait_ms"].is_u64(), "{body}");
    assert!(body["finished_at"].is_string());

    // A task's run, through the typed client.
    let task = create_task(&user, "t").await;
    let worker = spawn_worker(&app, "task\n");
    let asked = std::time::Instant::now();
    let e = user
        .client
        .execute_task(
            task.id,
            &Default::default(),
            &WaitQuery {
                wait: Some(true),
                timeout_secs: Some(60),
            },
        )
        .await
        .expect("execute and wait");
    worker.await.expect("worker");
    assert!(
        asked.elapsed() < Duration::from_secs(30),
        "woken by the signal"
    );
    assert_eq!(e.status, ExecutionStatusDto::Completed);
    assert_eq!(e.stdout, "task\n");
    let t = user.client.get_task(task.id).await.expect("task");
    assert_eq!(t.last_execution_status, Some(ExecutionStatusDto::Completed));

    // Finished rows are final: cancelling is a conflict.
    let err = user
        .client
        .cancel_execution(e.id)
        .await
        .expect_err("finished");
    assert_client_error(&err, 409, "conflict", None);
}

async fn wait_without_completion_answers_202_after_the_timeout(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    let started = std::time::Instant::now();
    let got = app
        .call(
            Method::POST,
            "/api/v1/run?wait=true&timeout_secs=1",
            Some(user.token()),
            Some(json!({"language": "bash", "code": "echo hi"})),
        )
        .await;
    assert_eq!(got.0, 202, "{}", got.2);
    assert_eq!(got.2["status"], "queued");
    assert!(started.elapsed() >= Duration::from_secs(1), "it waited");
    // Without wait, the answer is immediate and the same shape.
    let e = user
        .client
        .run(&RunRequest::new("bash", "echo hi"), &WaitQuery::default())
        .await
        .expect("run");
    assert_eq!(e.status, ExecutionStatusDto::Queued);
}

async fn dead_letters_are_listed_and_requeued_by_admins_only(b: Backend) {
    let app = b
        .spawn_with(|s| {
            s.first_user_admin = true;
            s.execution_max_attempts = 2;
        })
        .await;
    let admin = app.user().await;
    let user = app.user().await;
    let e = user
        .client
        .run(
            &RunRequest::new("python", "print(1)"),
            &WaitQuery::default(),
        )
        .await
        .expect("run");
    assert_eq!(e.max_attempts, 2);

    // Two infrastructure failures use up the attempts.
    let mut outcomes = Vec::new();
    for _ in 0..2 {
        let claimed = claim(&app).await.expect("claimable again");
        let lease = Lease::of(&claimed).expect("lease");
        let now = voidrunner_store::now();
        let reason = ReleaseReason::Failure {
            error: "sandbox: cgroup vanished".into(),
            retry_at: now,
        };
        outcomes.push(
            app.store
                .release_execution(&lease, reason, now)
                .await
                .expect("release"),
        );
    }
    assert_eq!(
        outcomes,
        vec![ReleaseOutcome::Requeued, ReleaseOutcome::DeadLettered]
    );

    let seen = user.client.get_execution(e.id).await.expect("owner get");
    assert_eq!(seen.status, ExecutionStatusDto::Failed);
    assert_eq!(seen.last_error, None, "operator detail hidden from users");
    let raw = app
        .call(
            Method::GET,
            &format!("/api/v1/executions/{}", e.id),
            Some(admin.token()),
            None,
        )
        .await;
    assert_eq!(raw.2["last_error"], "sandbox: cgroup vanished");
    assert!(raw.2["dead_lettered_at"].is_string());

    // Users: 403 on both admin endpoints.
    let err = user
        .client
        .list_dead_letters(&ListExecutionsQuery::default())
        .await
        .expect_err("user list");
    assert_client_error(&err, 403, "forbidden", None);
    let err = user
        .client
        .requeue_dead_letter(e.id)
        .await
        .expect_err("user requeue");
    assert_client_error(&err, 403, "forbidden", None);
    let got = app
        .call(
            Method::GET,
            "/api/v1/admin/dead-letter?cursor=zzz",
            Some(admin.token()),
            None,
        )
        .await;
    assert_error(&got, 400, "invalid_query", Some("cursor"));

    let page = admin
        .client
        .list_dead_letters(&ListExecutionsQuery::default())
        .await
        .expect("admin list");
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].id, e.id);
    assert_eq!(
        page.items[0].last_error.as_deref(),
        Some("sandbox: cgroup vanished")
    );

    let requeued = admin
        .client
        .requeue_dead_letter(e.id)
        .await
        .expect("requeue");
    assert_eq!(requeued.status, ExecutionStatusDto::Queued);
    assert_eq!(requeued.attempt, 0, "attempts reset");
    let err = admin
        .client
        .requeue_dead_letter(e.id)
        .await
        .expect_err("no longer dead-lettered");
    assert_client_error(&err, 404, "not_found", None);
    let page = admin
        .client
        .list_dead_letters(&ListExecutionsQuery::default())
        .await
        .expect("admin list");
    assert!(page.items.is_empty());
    let claimed = claim(&app).await.expect("claimable after requeue");
    assert_eq!(claimed.id.as_uuid(), e.id);
}

async fn get_with_wait_long_polls(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    let e = user
        .client
        .run(
            &RunRequest::new("python", "print(1)"),
            &WaitQuery::default(),
        )
        .await
        .expect("run");
    let claimed = claim(&app).await.expect("claim");
    let path = format!("/api/v1/executions/{}", e.id);

    // Nothing finishes: 200 with the current (running) row once the time is up.
    let started = std::time::Instant::now();
    let got = app
        .call(
            Method::GET,
            &format!("{path}?wait=true&timeout_secs=1"),
            Some(user.token()),
            None,
        )
        .await;
    assert_eq!(got.0, 200, "{}", got.2);
    assert_eq!(got.2["status"], "running");
    assert!(started.elapsed() >= Duration::from_secs(1), "it waited");

    // Completed concurrently with a long poll: answered with the final row, promptly
    // (whichever of the completion and the poll's read comes first).
    let store = app.store.clone();
    let lease = Lease::of(&claimed).expect("lease");
    let completer =
        tokio::spawn(async move { store.complete_execution(&lease, exited_ok("1\n")).await });
    let asked = std::time::Instant::now();
    let got = app
        .call(
            Method::GET,
            &format!("{path}?wait=true&timeout_secs=60"),
            Some(user.token()),
            None,
        )
        .await;
    completer.await.expect("join").expect("complete");
    assert_eq!(got.0, 200, "{}", got.2);
    assert_eq!(got.2["status"], "completed");
    assert_eq!(got.2["stdout"], "1\n");
    assert!(
        asked.elapsed() < Duration::from_secs(30),
        "not held until the timeout"
    );

    // Already finished: immediate. Bad parameters: 400.
    let done = app
        .call(
            Method::GET,
            &format!("{path}?wait=true"),
            Some(user.token()),
            None,
        )
        .await;
    assert_eq!(done.2["status"], "completed");
    let bad = app
        .call(
            Method::GET,
            &format!("{path}?wait=soon"),
            Some(user.token()),
            None,
        )
        .await;
    assert_error(&bad, 400, "invalid_query", Some("wait"));
}

//! `GET /api/v1/webhooks/signing-secret` and `GET /api/v1/executions/{id}/webhook`: the
//! secret is per user and stable; a delivery appears when an execution with a callback
//! finishes, shows each recorded attempt, and is visible only to its owner (and admins).
//! Sending itself is tested in `voidrunner-webhooks` and end to end in the binary's tests.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use voidrunner_domain::{ExecutionId, Verdict};
use voidrunner_store::{AttemptOutcome, ClaimRequest, ExecutionResult, Lease};

use crate::helpers::{Backend, TestApp, TestUser, assert_error, backend_tests};

backend_tests!(
    signing_secret_is_per_user_and_stable,
    delivery_state_is_visible_to_its_owner,
);

async fn get(app: &TestApp, user: &TestUser, path: &str) -> (reqwest::StatusCode, Value) {
    let (s, _, body) = app.call(Method::GET, path, Some(user.token()), None).await;
    (s, body)
}

async fn signing_secret_is_per_user_and_stable(b: Backend) {
    let app = b.spawn().await;
    let (alice, bob) = (app.user().await, app.user().await);
    let path = "/api/v1/webhooks/signing-secret";
    let (s, a1) = get(&app, &alice, path).await;
    assert_eq!(s, 200, "{a1}");
    let secret = a1["secret"].as_str().expect("secret");
    assert!(
        secret.starts_with("whsec_") && secret.len() == 70,
        "{secret}"
    );
    assert_eq!(a1["algorithm"], "hmac-sha256");
    assert_eq!(a1["signature_header"], "X-VoidRunner-Signature");
    assert_eq!(a1["timestamp_header"], "X-VoidRunner-Timestamp");
    let (_, a2) = get(&app, &alice, path).await;
    assert_eq!(a1, a2, "stable");
    let (_, b1) = get(&app, &bob, path).await;
    assert_ne!(a1["secret"], b1["secret"], "per user");
    let got = app.call(Method::GET, path, None, None).await;
    assert_eq!(got.0, 401);
}

/// Enqueues `/run` with a callback (or none) and finishes it as a worker would.
async fn finished(app: &TestApp, user: &TestUser, callback: Option<&str>) -> ExecutionId {
    let mut body = json!({"language": "bash", "code": "echo hi"});
    if let Some(url) = callback {
        body["callback_url"] = json!(url);
    }
    let (status, _, e) = app
        .call(Method::POST, "/api/v1/run", Some(user.token()), Some(body))
        .await;
    assert_eq!(status, 202, "{e}");
    let id = ExecutionId(e["id"].as_str().expect("id").parse().expect("uuid"));
    let claimed = app
        .store
        .claim_next(&ClaimRequest {
            worker_id: "hook-worker".into(),
            now: voidrunner_store::now(),
            lease: Duration::from_secs(60),
            per_user_running_limit: None,
        })
        .await
        .expect("claim")
        .expect("claimable");
    assert_eq!(claimed.id, id);
    let result = ExecutionResult {
        verdict: Verdict::Exited { code: 0 },
        exit_code: Some(0),
        signal: None,
        stdout: "hi\n".into(),
        stderr: String::new(),
        compile_output: None,
        output_truncated: false,
        wall_time_ms: 3,
        cpu_time_ms: 1,
        peak_memory_bytes: None,
        resource_samples: Vec::new(),
        finished_at: voidrunner_store::now(),
    };
    app.store
        .complete_execution(&Lease::of(&claimed).expect("lease"), result)
        .await
        .expect("complete");
    id
}

async fn delivery_state_is_visible_to_its_owner(b: Backend) {
    let app = b.spawn_with(|s| s.first_user_admin = true).await;
    let admin = app.user().await;
    let owner = app.user().await;
    let other = app.user().await;
    let url = "https://hooks.example.com/voidrunner?token=abc";
    let id = finished(&app, &owner, Some(url)).await;
    let path = format!("/api/v1/executions/{}/webhook", id.as_uuid());

    let (s, d) = get(&app, &owner, &path).await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["execution_id"], id.as_uuid().to_string());
    assert_eq!(d["url"], url);
    assert_eq!(d["state"], "pending");
    assert_eq!(d["attempts"], 0);
    assert_eq!(d["last_status"], Value::Null);
    assert_eq!(d["delivered_at"], Value::Null);
    assert!(d["next_attempt_at"].is_string());

    // A dispatcher claims it and the receiver answers 503: visible as a pending retry.
    let now = voidrunner_store::now() + chrono::Duration::seconds(1);
    let claimed = app
        .store
        .claim_webhook_deliveries(now, Duration::from_secs(30), 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    let retry_at = now + chrono::Duration::seconds(8);
    let retry = AttemptOutcome::Retry {
        status: Some(503),
        error: "receiver answered 503".into(),
        retry_at,
    };
    assert!(
        app.store
            .record_webhook_attempt(id, 1, retry, now)
            .await
            .expect("record")
    );
    let (_, d) = get(&app, &owner, &path).await;
    assert_eq!(d["state"], "pending");
    assert_eq!(d["attempts"], 1);
    assert_eq!(d["last_status"], 503);
    assert_eq!(d["last_error"], "receiver answered 503");
    let next: chrono::DateTime<chrono::Utc> = d["next_attempt_at"]
        .as_str()
        .expect("ts")
        .parse()
        .expect("rfc3339");
    assert_eq!(next, retry_at);

    // Admins may read it too; others get 404 like a missing one.
    let (s, _) = get(&app, &admin, &path).await;
    assert_eq!(s, 200);
    let got = app
        .call(Method::GET, &path, Some(other.token()), None)
        .await;
    assert_error(&got, 404, "not_found", None);
    // No callback: no delivery.
    let silent = finished(&app, &owner, None).await;
    let got = app
        .call(
            Method::GET,
            &format!("/api/v1/executions/{}/webhook", silent.as_uuid()),
            Some(owner.token()),
            None,
        )
        .await;
    assert_error(&got, 404, "not_found", None);
    // A malformed callback is refused at enqueue.
    let got = app
        .call(
            Method::POST,
            "/api/v1/run",
            Some(owner.token()),
            Some(json!({"language": "bash", "code": "echo", "callback_url": "ftp://x"})),
        )
        .await;
    assert_error(&got, 422, "validation_failed", Some("callback_url"));
}

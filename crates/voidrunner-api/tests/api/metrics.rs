//! `GET /metrics` parsed by a strict Prometheus text-format parser: HTTP requests counted by
//! route template (never the raw path), queue depth and dead letters following executions
//! driven through the store trait (the test plays the worker), the optional scrape token.

use reqwest::Method;
use voidrunner_api_types::{RunRequest, WaitQuery};
use voidrunner_domain::Verdict;
use voidrunner_metrics::testing::{self, Scrape};
use voidrunner_store::{ExecutionResult, Lease, ReleaseOutcome, ReleaseReason};

use crate::helpers::{Backend, TestApp, backend_tests};
use crate::queue::claim;

backend_tests!(
    requests_and_queue_move_the_metrics,
    the_scrape_token_is_enforced_and_never_shown,
);

async fn scrape(app: &TestApp, token: Option<&str>) -> (u16, String) {
    let mut req = app.http.get(app.url("/metrics"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.expect("scrape");
    let status = res.status().as_u16();
    if status == 200 {
        let ct = res.headers()[reqwest::header::CONTENT_TYPE].to_str().ok();
        assert_eq!(ct, Some("text/plain; version=0.0.4; charset=utf-8"));
    }
    (status, res.text().await.expect("body"))
}

async fn parsed(app: &TestApp) -> (Scrape, String) {
    let (status, text) = scrape(app, None).await;
    assert_eq!(status, 200, "{text}");
    let s = testing::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    (s, text)
}

fn result() -> ExecutionResult {
    ExecutionResult {
        verdict: Verdict::Exited { code: 0 },
        exit_code: Some(0),
        signal: None,
        stdout: "private output".to_owned(),
        stderr: String::new(),
        compile_output: None,
        output_truncated: false,
        wall_time_ms: 5,
        cpu_time_ms: 3,
        peak_memory_bytes: None,
        resource_samples: Vec::new(),
        finished_at: voidrunner_store::now(),
    }
}

async fn requests_and_queue_move_the_metrics(b: Backend) {
    let app = b
        .spawn_with(|s| {
            s.execution_max_attempts = 1;
        })
        .await;
    let user = app.user().await;
    let (before, _) = parsed(&app).await;
    assert_eq!(before.value("voidrunner_queue_stats_up", &[]), Some(1.0));
    assert_eq!(
        before.value("voidrunner_queue_executions", &[("status", "queued")]),
        Some(0.0)
    );

    // Two lookups of unknown executions: one series under the route template.
    let id = uuid::Uuid::new_v4();
    for _ in 0..2 {
        let got = app
            .call(
                Method::GET,
                &format!("/api/v1/executions/{id}"),
                Some(user.token()),
                None,
            )
            .await;
        assert_eq!(got.0, 404);
    }
    let _ = app.call(Method::GET, "/no/such/route", None, None).await;

    let run = RunRequest::new("python", "print('secret-code-marker')");
    let first = user
        .client
        .run(&run, &WaitQuery::default())
        .await
        .expect("run");
    let second = user
        .client
        .run(&run, &WaitQuery::default())
        .await
        .expect("run");
    let (queued, _) = parsed(&app).await;
    let depth = |s: &Scrape, status| s.value("voidrunner_queue_executions", &[("status", status)]);
    assert_eq!(depth(&queued, "queued"), Some(2.0));
    assert_eq!(depth(&queued, "running"), Some(0.0));

    // Play the worker: one result, one infrastructure failure that dead-letters (1 attempt).
    let a = claim(&app).await.expect("claim");
    let b2 = claim(&app).await.expect("claim");
    let (running, _) = parsed(&app).await;
    assert_eq!(depth(&running, "queued"), Some(0.0));
    assert_eq!(depth(&running, "running"), Some(2.0));
    let mut claimed = [a.id.0, b2.id.0];
    claimed.sort();
    let mut enqueued = [first.id, second.id];
    enqueued.sort();
    assert_eq!(claimed, enqueued);
    app.store
        .complete_execution(&Lease::of(&a).expect("lease"), result())
        .await
        .expect("complete");
    let now = voidrunner_store::now();
    let reason = ReleaseReason::Failure {
        error: "sandbox: /secret/host/path vanished".into(),
        retry_at: now,
    };
    let released = app
        .store
        .release_execution(&Lease::of(&b2).expect("lease"), reason, now)
        .await
        .expect("release");
    assert_eq!(released, ReleaseOutcome::DeadLettered);

    let (after, text) = parsed(&app).await;
    assert_eq!(depth(&after, "queued"), Some(0.0));
    assert_eq!(depth(&after, "running"), Some(0.0));
    assert_eq!(
        after.value("voidrunner_dead_letter_executions", &[]),
        Some(1.0)
    );

    let route = |method, route, status| {
        after.value(
            "voidrunner_http_requests_total",
            &[("method", method), ("route", route), ("status", status)],
        )
    };
    assert_eq!(
        route("GET", "/api/v1/executions/{id}", "404"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(route("POST", "/api/v1/run", "202"), Some(2.0), "{text}");
    assert_eq!(route("GET", "unmatched", "404"), Some(1.0), "{text}");
    assert_eq!(
        route("GET", "/metrics", "200"),
        Some(3.0),
        "earlier scrapes counted"
    );
    assert_eq!(
        after.value(
            "voidrunner_http_request_duration_seconds",
            &[("method", "GET"), ("route", "/api/v1/executions/{id}")]
        ),
        Some(2.0)
    );
    assert!(after.value("process_resident_memory_bytes", &[]).is_some());
    for leak in [
        id.to_string(),
        first.id.to_string(),
        user.token().to_owned(),
        "secret-code-marker".to_owned(),
        "private output".to_owned(),
        "/secret/host/path".to_owned(),
        "/no/such/route".to_owned(),
    ] {
        assert!(!text.contains(&leak), "{leak} leaked into /metrics");
    }
}

async fn the_scrape_token_is_enforced_and_never_shown(b: Backend) {
    let token = "metrics-scrape-token-0123456789abcdef";
    let app = b
        .spawn_with(|s| {
            s.metrics.bearer_token = Some(voidrunner_api::MetricsToken::new(token));
        })
        .await;
    assert_eq!(scrape(&app, None).await.0, 401);
    assert_eq!(scrape(&app, Some("wrong")).await.0, 401);
    let (status, text) = scrape(&app, Some(token)).await;
    assert_eq!(status, 200);
    testing::parse(&text).expect("parses");
    assert!(!text.contains(token));
    assert!(
        text.contains("status=\"401\""),
        "refused scrapes are counted"
    );

    let off = b.spawn_with(|s| s.metrics.enabled = false).await;
    assert_eq!(scrape(&off, None).await.0, 404);
}

//! The rendered exposition parses with a real Prometheus text-format parser and carries what
//! was recorded.

use std::time::Duration;

use chrono::TimeDelta;
use voidrunner_domain::{Execution, ExecutionId, ExecutionStatus, UserId, Verdict};

use super::*;

pub(crate) fn finished_row(language: &str, verdict: Verdict) -> Execution {
    let created = chrono::Utc::now();
    let started = created + TimeDelta::milliseconds(40);
    Execution {
        id: ExecutionId::new(),
        task_id: None,
        owner_id: UserId::new(),
        status: ExecutionStatus::Completed,
        priority: 0,
        language: language.to_owned(),
        code: "secret code".to_owned(),
        stdin: None,
        env: std::collections::BTreeMap::new(),
        limits: voidrunner_domain::LimitBounds::default().defaults,
        interactive: false,
        callback_url: None,
        request_id: None,
        attempt: 1,
        max_attempts: 3,
        worker_id: Some("node/0".to_owned()),
        lease_owner: None,
        lease_until: None,
        run_after: created,
        cancel_requested_at: None,
        created_at: created,
        started_at: Some(started),
        finished_at: Some(started + TimeDelta::milliseconds(300)),
        verdict: Some(verdict),
        exit_code: None,
        signal: None,
        stdout: "user output".to_owned(),
        stderr: String::new(),
        compile_output: None,
        wall_time_ms: Some(200),
        cpu_time_ms: Some(150),
        peak_memory_bytes: None,
        output_truncated: false,
        last_error: None,
        dead_lettered_at: None,
    }
}

fn parse(text: &str) -> crate::testing::Scrape {
    crate::testing::parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[test]
fn exposition_parses_and_carries_the_records() {
    let m = Metrics::new();
    m.record_http_request(
        "GET",
        "/api/v1/executions/{id}",
        200,
        Duration::from_millis(3),
    );
    m.record_http_request(
        "GET",
        "/api/v1/executions/{id}",
        200,
        Duration::from_millis(30),
    );
    m.record_http_request("BREW", UNMATCHED_ROUTE, 404, Duration::from_millis(1));
    m.record_execution(&finished_row("python", Verdict::Exited { code: 0 }));
    m.record_execution(&finished_row(
        "python",
        Verdict::SandboxError {
            reason: "host /secret path".to_owned(),
        },
    ));
    m.record_release("dead_lettered");
    m.add_worker_source(|| Some(WorkerGauges { busy: 1, total: 4 }));
    m.add_worker_source(|| None);
    let text = m.render(Some(QueueDepth {
        queued: 5,
        running: 2,
        dead_lettered: 1,
    }));
    let s = parse(&text);

    let req = [
        ("method", "GET"),
        ("route", "/api/v1/executions/{id}"),
        ("status", "200"),
    ];
    assert_eq!(
        s.value("voidrunner_http_requests_total", &req),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        s.value(
            "voidrunner_http_requests_total",
            &[("method", "OTHER"), ("route", "unmatched")]
        ),
        Some(1.0)
    );
    assert_eq!(
        s.value(
            "voidrunner_http_request_duration_seconds",
            &[("route", "/api/v1/executions/{id}")]
        ),
        Some(2.0)
    );
    let ok = [("language", "python"), ("verdict", "exited_ok")];
    assert_eq!(
        s.value("voidrunner_executions_finished_total", &ok),
        Some(1.0)
    );
    assert_eq!(
        s.value(
            "voidrunner_execution_duration_seconds",
            &[("language", "python")]
        ),
        Some(2.0)
    );
    assert_eq!(
        s.value(
            "voidrunner_execution_queue_wait_seconds",
            &[("language", "python")]
        ),
        Some(2.0)
    );
    assert_eq!(
        s.value(
            "voidrunner_execution_releases_total",
            &[("outcome", "dead_lettered")]
        ),
        Some(1.0)
    );
    assert_eq!(s.value("voidrunner_workers_busy", &[]), Some(1.0));
    assert_eq!(s.value("voidrunner_workers_total", &[]), Some(4.0));
    assert_eq!(
        s.value("voidrunner_queue_executions", &[("status", "queued")]),
        Some(5.0)
    );
    assert_eq!(s.value("voidrunner_dead_letter_executions", &[]), Some(1.0));
    assert_eq!(s.value("voidrunner_queue_stats_up", &[]), Some(1.0));
    assert!(
        s.value("process_resident_memory_bytes", &[])
            .is_some_and(|v| v > 0.0)
    );

    // Histogram sums: 0.2 s wall per execution, 0.1 s overhead (0.3 s busy − 0.2 s wall).
    let python = [("language", "python")];
    let sum = |name| s.histogram_sum(name, &python).expect(name);
    assert!((sum("voidrunner_execution_duration_seconds") - 0.4).abs() < 1e-9);
    assert!((sum("voidrunner_execution_overhead_seconds") - 0.2).abs() < 1e-9);
    for leak in ["secret", "user output", "/secret path", "node/0"] {
        assert!(!text.contains(leak), "{leak} leaked into metrics");
    }
}

#[test]
fn store_failure_is_reported_not_hidden() {
    let text = Metrics::new().render(None);
    let s = parse(&text);
    assert_eq!(s.value("voidrunner_queue_stats_up", &[]), Some(0.0));
    assert_eq!(s.value("voidrunner_queue_executions", &[]), None);
    assert_eq!(s.value("voidrunner_workers_total", &[]), Some(0.0));
}

#[test]
fn clones_share_series() {
    let a = Metrics::new();
    let b = a.clone();
    b.record_execution(&finished_row("bash", Verdict::Timeout));
    let s = parse(&a.render(None));
    let labels = [("language", "bash"), ("verdict", "timeout")];
    assert_eq!(
        s.value("voidrunner_executions_finished_total", &labels),
        Some(1.0)
    );
}

#[test]
fn the_parser_is_strict() {
    for bad in [
        "m{a=\"x} 1\n",
        "m{a=\"x\"} one\n",
        "# TYPE m counter\nm{a=x} 1\n",
    ] {
        assert!(
            crate::testing::parse(bad).is_err(),
            "{bad:?} must not parse"
        );
    }
}

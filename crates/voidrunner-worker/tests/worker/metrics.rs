//! A pool started with a metrics registry counts real executions by language and verdict and
//! reports its slots.

use voidrunner_metrics::{Metrics, testing};
use voidrunner_worker::WorkerPool;

use crate::helpers::{Fault, FaultExecutor, Job, TestStore, both_backends, config, native};

both_backends!(
    executions_are_counted_by_language_and_verdict,
    retries_and_dead_letters_are_counted
);

async fn executions_are_counted_by_language_and_verdict(t: TestStore) {
    let owner = t.user().await;
    let metrics = Metrics::new();
    let pool = WorkerPool::start_with_metrics(
        t.store.clone(),
        native(),
        "metrics".to_owned(),
        config(2),
        metrics.clone(),
    );
    let scrape = || testing::parse(&metrics.render(None)).expect("exposition parses");
    assert_eq!(scrape().value("voidrunner_workers_total", &[]), Some(2.0));

    let ok = t.enqueue(Job::bash(owner, "echo hi\n")).await;
    let failing = t.enqueue(Job::bash(owner, "exit 3\n")).await;
    let py = t
        .enqueue(Job {
            language: "python",
            code: "print(1)\n",
            ..Job::bash(owner, "")
        })
        .await;
    for id in [ok.id, failing.id, py.id] {
        t.wait_finished(id).await;
    }
    // The counter moves right after the result is written; the drain waits for that.
    let report = pool.shutdown().await;
    assert!(report.released.is_empty(), "{}: {report:?}", t.backend);

    let s = scrape();
    let count = |language, verdict| {
        s.value(
            "voidrunner_executions_finished_total",
            &[("language", language), ("verdict", verdict)],
        )
    };
    assert_eq!(count("bash", "exited_ok"), Some(1.0), "{}", t.backend);
    assert_eq!(count("bash", "exited_error"), Some(1.0));
    assert_eq!(count("python", "exited_ok"), Some(1.0));
    assert_eq!(count("python", "exited_error"), None);
    let bash = [("language", "bash")];
    assert_eq!(
        s.value("voidrunner_execution_duration_seconds", &bash),
        Some(2.0)
    );
    assert_eq!(
        s.value("voidrunner_execution_queue_wait_seconds", &bash),
        Some(2.0)
    );
    assert_eq!(
        s.value("voidrunner_execution_overhead_seconds", &bash),
        Some(2.0)
    );
    assert_eq!(
        s.value("voidrunner_workers_total", &[]),
        Some(0.0),
        "a stopped pool no longer counts"
    );
}

async fn retries_and_dead_letters_are_counted(t: TestStore) {
    let owner = t.user().await;
    let metrics = Metrics::new();
    let pool = WorkerPool::start_with_metrics(
        t.store.clone(),
        FaultExecutor::new(Fault::SandboxError),
        "metrics-faulty".to_owned(),
        config(1),
        metrics.clone(),
    );
    let e = t
        .enqueue(Job {
            max_attempts: 2,
            ..Job::bash(owner, "echo never")
        })
        .await;
    t.wait_for(e.id, "dead-lettered", |e| e.dead_lettered_at.is_some())
        .await;
    pool.shutdown().await;
    let s = testing::parse(&metrics.render(None)).expect("exposition parses");
    let releases = |outcome| {
        s.value(
            "voidrunner_execution_releases_total",
            &[("outcome", outcome)],
        )
    };
    assert_eq!(releases("retried"), Some(1.0), "{}", t.backend);
    assert_eq!(releases("dead_lettered"), Some(1.0));
    assert_eq!(
        s.value("voidrunner_executions_finished_total", &[]),
        None,
        "no result was recorded"
    );
}

//! Programs run end to end through the pool: results, not retries.

use voidrunner_domain::{ExecutionStatus, Verdict};

use crate::helpers::{Job, TestStore, both_backends, config, native};

both_backends!(
    python_and_bash_complete_with_stdout,
    nonzero_exit_is_a_result_not_retried,
    runs_over_a_second_store_a_resource_timeline
);

async fn python_and_bash_complete_with_stdout(t: TestStore) {
    let owner = t.user().await;
    let pool = t.pool(native(), "e2e", config(2));
    let py = t
        .enqueue(Job {
            language: "python",
            code: "import sys\nprint(sys.stdin.read().strip() * 2)\n",
            stdin: Some("ab"),
            ..Job::bash(owner, "")
        })
        .await;
    let sh = t
        .enqueue(Job::bash(
            owner,
            "echo \"hello from $0\" | wc -w\necho warn >&2\n",
        ))
        .await;
    let py = t.wait_finished(py.id).await;
    let sh = t.wait_finished(sh.id).await;
    for e in [&py, &sh] {
        assert_eq!(e.status, ExecutionStatus::Completed, "{}: {e:?}", t.backend);
        assert_eq!(e.verdict, Some(Verdict::Exited { code: 0 }));
        assert_eq!(e.exit_code, Some(0));
        assert_eq!(e.attempt, 1);
        assert!(
            e.worker_id
                .as_deref()
                .is_some_and(|w| w.starts_with("e2e/")),
            "{e:?}"
        );
        assert!(e.lease_owner.is_none());
        assert!(e.started_at.is_some() && e.finished_at.is_some());
        assert!(e.wall_time_ms.is_some());
        assert!(!e.output_truncated);
    }
    assert_eq!(py.stdout, "abab\n");
    assert_eq!(sh.stdout, "3\n");
    assert_eq!(sh.stderr, "warn\n");
    let report = pool.shutdown().await;
    assert!(report.released.is_empty() && !report.grace_expired);
}

async fn nonzero_exit_is_a_result_not_retried(t: TestStore) {
    let owner = t.user().await;
    let pool = t.pool(native(), "e2e", config(1));
    let failing = t.enqueue(Job::bash(owner, "echo oops >&2\nexit 3\n")).await;
    // A real fault (the program may be pid 1 of its namespace, which ignores sent signals).
    let killed = t
        .enqueue(Job {
            language: "c",
            code: "int main(void) { volatile int *p = 0; return *p; }\n",
            ..Job::bash(owner, "")
        })
        .await;
    let failing = t.wait_finished(failing.id).await;
    assert_eq!(failing.status, ExecutionStatus::Failed);
    assert_eq!(failing.verdict, Some(Verdict::Exited { code: 3 }));
    assert_eq!(failing.exit_code, Some(3));
    assert_eq!(failing.stderr, "oops\n");
    assert_eq!(failing.attempt, 1, "a program failure is never retried");
    assert!(failing.last_error.is_none() && failing.dead_lettered_at.is_none());
    let killed = t.wait_finished(killed.id).await;
    assert_eq!(killed.status, ExecutionStatus::Failed);
    assert_eq!(killed.verdict, Some(Verdict::Signaled { signal: 11 }));
    assert_eq!((killed.signal, killed.exit_code), (Some(11), None));
    assert_eq!(killed.attempt, 1);
    assert_eq!(
        killed.compile_output.as_deref(),
        Some(""),
        "a compile phase ran"
    );
    let stats = pool.shutdown().await;
    assert!(stats.released.is_empty());
}

async fn runs_over_a_second_store_a_resource_timeline(t: TestStore) {
    let owner = t.user().await;
    let pool = t.pool(native(), "e2e", config(2));
    let long = t
        .enqueue(Job {
            language: "python",
            code: "import time\nkeep = []\nfor i in range(15):\n    keep.append(bytearray(4 << 20))\n    end = time.time() + 0.1\n    while time.time() < end: pass\n",
            ..Job::bash(owner, "")
        })
        .await;
    let short = t.enqueue(Job::bash(owner, "echo hi\n")).await;
    let long = t.wait_finished(long.id).await;
    assert_eq!(long.verdict, Some(Verdict::Exited { code: 0 }), "{long:?}");
    let samples = t.stored_samples(long.id).await;
    assert!(samples.len() >= 8, "{}: {samples:?}", t.backend);
    assert!(
        samples
            .windows(2)
            .all(|w| w[0].t_ms < w[1].t_ms && w[0].cpu_ms <= w[1].cpu_ms),
        "{samples:?}"
    );
    let (first, peak) = (
        samples[0],
        samples.iter().map(|p| p.memory_bytes).max().unwrap_or(0),
    );
    // The last point may come after the program freed its memory on exit.
    assert!(peak >= first.memory_bytes + (24 << 20), "{samples:?}");
    t.wait_finished(short.id).await;
    assert!(t.stored_samples(short.id).await.is_empty());
    pool.shutdown().await;
}

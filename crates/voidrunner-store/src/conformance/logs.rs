//! The execution event log: status events from every status change, chunk appends under the
//! lease with gap-free seqs, attempts across a retry, signals after commit.

use std::time::Duration;

use voidrunner_domain::{ExecutionId, Verdict};

use super::{TestHooks, claim, complete, create_user, lease_of, new_execution};
use crate::{AppendOutcome, LogChunk, LogEvent, LogStream, ReleaseReason, Scope};

fn chunk(stream: LogStream, data: &[u8]) -> LogChunk {
    LogChunk {
        stream,
        data: data.to_vec(),
    }
}

async fn all<S: TestHooks>(store: &S, id: ExecutionId) -> Vec<LogEvent> {
    store.read_logs(id, 0, 10_000).await.expect("read logs")
}

fn status_of(e: &LogEvent) -> String {
    let v: serde_json::Value = serde_json::from_slice(&e.data).expect("status json");
    v["status"].as_str().expect("status field").to_owned()
}

/// queued → running → chunks → completed: one gap-free sequence, the terminal event last with
/// the verdict; reads after a seq and with a limit page through it.
pub async fn log_records_status_and_chunks_in_order<S: TestHooks>(store: &S) {
    let owner = create_user(store, "log@example.com").await;
    let e = store
        .enqueue_execution(new_execution(owner.id, None, 5, crate::now()))
        .await
        .expect("enqueue");
    let running = claim(store, "w", crate::now()).await.expect("claim");
    let lease = lease_of(&running);
    let out = store
        .append_logs(
            &lease,
            &[
                chunk(LogStream::Stdout, b"a\n"),
                chunk(LogStream::Stderr, b"\xff\0"),
            ],
            crate::now(),
        )
        .await
        .expect("append");
    assert_eq!(out, AppendOutcome::Appended { last_seq: 4 });
    store
        .append_logs(&lease, &[chunk(LogStream::Stdout, b"b\n")], crate::now())
        .await
        .expect("append");
    complete(store, &running, Verdict::Exited { code: 0 }).await;
    let log = all(store, e.id).await;
    let seqs: Vec<u64> = log.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    assert_eq!(status_of(&log[0]), "queued");
    assert_eq!(status_of(&log[1]), "running");
    assert_eq!(
        (log[2].stream, log[2].data.as_slice()),
        (LogStream::Stdout, &b"a\n"[..])
    );
    assert_eq!(log[3].data, b"\xff\0", "bytes are kept as written");
    assert_eq!(log[3].attempt, 1);
    assert_eq!(status_of(&log[5]), "completed");
    let last: serde_json::Value = serde_json::from_slice(&log[5].data).expect("json");
    assert_eq!(last["exit_code"], 0);
    assert!(!last["verdict"].is_null(), "{last}");
    let tail = store.read_logs(e.id, 2, 2).await.expect("page");
    assert_eq!(tail.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4]);
    assert!(store.read_logs(e.id, 6, 10).await.expect("end").is_empty());
    assert!(
        store
            .read_logs(ExecutionId::new(), 0, 10)
            .await
            .expect("unknown")
            .is_empty()
    );
}

/// A stale lease appends nothing; status events are the store's, not the worker's.
pub async fn log_append_needs_the_lease<S: TestHooks>(store: &S) {
    let owner = create_user(store, "log-lease@example.com").await;
    let e = store
        .enqueue_execution(new_execution(owner.id, None, 5, crate::now()))
        .await
        .expect("enqueue");
    let queued_lease = crate::Lease {
        execution_id: e.id,
        worker_id: "w".into(),
        attempt: 1,
    };
    assert_eq!(
        store
            .append_logs(
                &queued_lease,
                &[chunk(LogStream::Stdout, b"x")],
                crate::now()
            )
            .await
            .expect("append"),
        AppendOutcome::LeaseLost
    );
    let running = claim(store, "w", crate::now()).await.expect("claim");
    let mut stale = lease_of(&running);
    stale.worker_id = "other".into();
    assert_eq!(
        store
            .append_logs(&stale, &[chunk(LogStream::Stdout, b"x")], crate::now())
            .await
            .expect("append"),
        AppendOutcome::LeaseLost
    );
    assert!(
        store
            .append_logs(
                &lease_of(&running),
                &[chunk(LogStream::Status, b"{}")],
                crate::now()
            )
            .await
            .is_err()
    );
    assert_eq!(all(store, e.id).await.len(), 2, "queued + running only");
}

/// A released attempt's chunks stay, followed by its `queued` event (the reset marker);
/// the next attempt's chunks carry attempt 2.
pub async fn log_keeps_attempts_apart_across_a_retry<S: TestHooks>(store: &S) {
    let owner = create_user(store, "log-retry@example.com").await;
    let mut n = new_execution(owner.id, None, 5, crate::now());
    n.max_attempts = 3;
    let e = store.enqueue_execution(n).await.expect("enqueue");
    let first = claim(store, "w1", crate::now()).await.expect("claim");
    store
        .append_logs(
            &lease_of(&first),
            &[chunk(LogStream::Stdout, b"one")],
            crate::now(),
        )
        .await
        .expect("append");
    store
        .release_execution(
            &lease_of(&first),
            ReleaseReason::Failure {
                error: "boom".into(),
                retry_at: crate::now(),
            },
            crate::now(),
        )
        .await
        .expect("release");
    let second = claim(store, "w2", crate::now()).await.expect("claim again");
    assert_eq!(second.attempt, 2);
    store
        .append_logs(
            &lease_of(&second),
            &[chunk(LogStream::Stdout, b"two")],
            crate::now(),
        )
        .await
        .expect("append");
    let log = all(store, e.id).await;
    let kinds: Vec<(String, u32)> = log
        .iter()
        .map(|e| match e.stream {
            LogStream::Status => (status_of(e), e.attempt),
            s => (s.as_str().to_owned(), e.attempt),
        })
        .collect();
    let expected = [
        ("queued", 0),
        ("running", 1),
        ("stdout", 1),
        ("queued", 1),
        ("running", 2),
        ("stdout", 2),
    ];
    assert_eq!(
        kinds,
        expected
            .iter()
            .map(|(k, a)| ((*k).to_owned(), *a))
            .collect::<Vec<_>>()
    );
    let row = store.get_execution(Scope::All, e.id).await.expect("get");
    assert_eq!(row.attempt, 2);
}

/// Each committed append and each status change is signalled (`notify_log`) to subscribers
/// of the same handle, with the last seq when the sender knows it.
pub async fn log_commits_are_signalled<S: TestHooks>(store: &S) {
    let owner = create_user(store, "log-signal@example.com").await;
    let mut rx = store.queue_signals().subscribe_logs();
    store
        .enqueue_execution(new_execution(owner.id, None, 5, crate::now()))
        .await
        .expect("enqueue");
    let running = claim(store, "w", crate::now()).await.expect("claim");
    store
        .append_logs(
            &lease_of(&running),
            &[chunk(LogStream::Stdout, b"x")],
            crate::now(),
        )
        .await
        .expect("append");
    // The append is the third event; wait until a signal names it (the status signals of
    // enqueue/claim may arrive first, on PostgreSQL through LISTEN).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let s = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("a log signal for the append")
            .expect("receiver open");
        assert_eq!(s.execution_id, running.id);
        if s.last_seq == 3 {
            break;
        }
    }
}

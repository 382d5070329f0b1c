//! Log archiving and retention: `log_bytes` kept by appends, archive candidates, the one
//! archive transaction (idempotent, only for terminal executions), retention by age and by
//! total archived size, and what expiry deletes.

use voidrunner_domain::{Execution, ExecutionId, Timestamp, UserId, Verdict};

use super::{TestHooks, at, claim, create_user, lease_of, new_execution, result};
use crate::{
    ArchiveOutcome, CompleteOutcome, ExpireOutcome, LogArchive, LogChunk, LogLocation, LogStream,
    Scope,
};

/// Runs one execution through the queue: appends `chunks` (stdout), completes it with
/// `finished_at`. Needs an otherwise empty queue.
async fn finished<S: TestHooks>(
    store: &S,
    owner: UserId,
    chunks: &[&[u8]],
    finished_at: Timestamp,
) -> Execution {
    let e = store
        .enqueue_execution(new_execution(owner, None, 5, crate::now()))
        .await
        .expect("enqueue");
    let running = claim(store, "archiver-test", crate::now())
        .await
        .expect("claim");
    assert_eq!(running.id, e.id, "needs an otherwise empty queue");
    let chunks: Vec<LogChunk> = chunks
        .iter()
        .map(|d| LogChunk {
            stream: LogStream::Stdout,
            data: d.to_vec(),
        })
        .collect();
    store
        .append_logs(&lease_of(&running), &chunks, crate::now())
        .await
        .expect("append");
    match store
        .complete_execution(
            &lease_of(&running),
            result(Verdict::Exited { code: 0 }, finished_at),
        )
        .await
        .expect("complete")
    {
        CompleteOutcome::Completed(done) => *done,
        CompleteOutcome::LeaseLost => panic!("lease lost"),
    }
}

fn archive_record(
    id: ExecutionId,
    last_seq: u64,
    bytes: u64,
    archived_at: Timestamp,
) -> LogArchive {
    LogArchive {
        execution_id: id,
        object_key: format!("logs/test/{id}.vrlog"),
        bytes,
        events: last_seq,
        last_seq,
        archived_at,
    }
}

async fn last_seq<S: TestHooks>(store: &S, id: ExecutionId) -> u64 {
    let log = store.read_logs(id, 0, 10_000).await.expect("read");
    log.last().expect("events").seq
}

/// Appends add their bytes to `log_bytes`; only terminal executions at or over the
/// threshold are candidates, oldest finish first.
pub async fn archive_candidates_by_log_bytes<S: TestHooks>(store: &S) {
    let owner = create_user(store, "archive-cand@example.com").await;
    let base = crate::now();
    let big = finished(
        store,
        owner.id,
        &[&[b'a'; 10], &[b'b'; 20]],
        at(base, -2_000),
    )
    .await;
    let small = finished(store, owner.id, &[b"tiny"], at(base, -1_000)).await;
    let queued = store
        .enqueue_execution(new_execution(owner.id, None, 5, crate::now()))
        .await
        .expect("enqueue");
    let running = claim(store, "w", crate::now()).await.expect("claim");
    store
        .append_logs(
            &lease_of(&running),
            &[LogChunk {
                stream: LogStream::Stdout,
                data: vec![b'x'; 100],
            }],
            crate::now(),
        )
        .await
        .expect("append");
    let c = store.list_archive_candidates(30, 10).await.expect("list");
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!((c[0].execution_id, c[0].log_bytes), (big.id, 30));
    assert_eq!(c[0].finished_at, at(base, -2_000));
    assert!(
        store
            .list_archive_candidates(31, 10)
            .await
            .expect("list")
            .is_empty()
    );
    let all = store.list_archive_candidates(0, 10).await.expect("list");
    let ids: Vec<_> = all.iter().map(|c| c.execution_id).collect();
    assert_eq!(
        ids,
        [big.id, small.id],
        "running {} is not a candidate",
        queued.id
    );
    assert_eq!(
        store
            .list_archive_candidates(0, 1)
            .await
            .expect("list")
            .len(),
        1
    );
}

/// The archive transaction records the archive and deletes every row but the last; a second
/// call (another archiver) is told who won; the log location follows.
pub async fn archive_mark_is_one_transaction_and_idempotent<S: TestHooks>(store: &S) {
    let owner = create_user(store, "archive-mark@example.com").await;
    let e = finished(store, owner.id, &[b"one", b"two"], crate::now()).await;
    assert_eq!(
        store.log_location(e.id).await.expect("loc"),
        LogLocation::Database
    );
    let last = last_seq(store, e.id).await;
    assert_eq!(last, 5, "queued, running, 2 chunks, completed");
    let record = archive_record(e.id, last, 1234, crate::now());
    assert_eq!(
        store.mark_logs_archived(&record).await.expect("mark"),
        ArchiveOutcome::Archived
    );
    let left = store.read_logs(e.id, 0, 100).await.expect("read");
    assert_eq!(
        left.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [last],
        "only the last event stays"
    );
    assert_eq!(
        store.log_location(e.id).await.expect("loc"),
        LogLocation::Archived(record.clone())
    );
    let mut other = record.clone();
    other.object_key = "logs/other".into();
    assert_eq!(
        store.mark_logs_archived(&other).await.expect("again"),
        ArchiveOutcome::AlreadyArchived(record.clone())
    );
    assert!(
        store
            .list_archive_candidates(0, 10)
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(store.archived_bytes_total().await.expect("total"), 1234);
    assert_eq!(
        store
            .mark_logs_archived(&archive_record(ExecutionId::new(), 1, 1, crate::now()))
            .await
            .expect("unknown"),
        ArchiveOutcome::NotEligible
    );
}

/// A running execution cannot be archived, nor one whose logs expired.
pub async fn archive_refuses_running_and_expired<S: TestHooks>(store: &S) {
    let owner = create_user(store, "archive-refuse@example.com").await;
    let done = finished(store, owner.id, &[b"x"], crate::now()).await;
    store
        .enqueue_execution(new_execution(owner.id, None, 5, crate::now()))
        .await
        .expect("enqueue");
    let running = claim(store, "w", crate::now()).await.expect("claim");
    let rec = archive_record(running.id, 2, 10, crate::now());
    assert_eq!(
        store.mark_logs_archived(&rec).await.expect("mark"),
        ArchiveOutcome::NotEligible
    );
    assert_eq!(
        store
            .read_logs(running.id, 0, 10)
            .await
            .expect("read")
            .len(),
        2
    );
    assert_eq!(
        store
            .expire_logs(running.id, crate::now())
            .await
            .expect("expire"),
        ExpireOutcome::Unchanged,
        "a running execution's logs never expire"
    );
    assert!(matches!(
        store
            .expire_logs(done.id, crate::now())
            .await
            .expect("expire"),
        ExpireOutcome::Expired { archive: None }
    ));
    assert_eq!(
        store
            .mark_logs_archived(&archive_record(done.id, 4, 10, crate::now()))
            .await
            .expect("mark"),
        ArchiveOutcome::NotEligible
    );
}

/// Retention by age lists terminal executions finished before the cutoff; expiry deletes
/// the output (rows, archive record, result stdout/stderr/compile output) but keeps the
/// execution and its last status event; a second expiry changes nothing.
pub async fn retention_by_age_expires_output<S: TestHooks>(store: &S) {
    let owner = create_user(store, "retention-age@example.com").await;
    let base = crate::now();
    let old = finished(store, owner.id, &[b"old output"], at(base, -10_000_000)).await;
    let archived_old = finished(store, owner.id, &[b"archived"], at(base, -9_000_000)).await;
    let fresh = finished(store, owner.id, &[b"fresh"], base).await;
    let rec = archive_record(archived_old.id, 4, 77, crate::now());
    store.mark_logs_archived(&rec).await.expect("mark");
    let due = store
        .list_expired_by_age(at(base, -1_000_000), 10)
        .await
        .expect("list");
    assert_eq!(
        due.iter().map(|d| d.execution_id).collect::<Vec<_>>(),
        [old.id, archived_old.id],
        "fresh {} is kept",
        fresh.id
    );
    assert_eq!(due[0].archive, None);
    assert_eq!(due[1].archive, Some(rec.clone()));
    let now = crate::now();
    assert_eq!(
        store
            .expire_logs(archived_old.id, now)
            .await
            .expect("expire"),
        ExpireOutcome::Expired { archive: Some(rec) }
    );
    store.expire_logs(old.id, now).await.expect("expire");
    for id in [old.id, archived_old.id] {
        assert_eq!(
            store.log_location(id).await.expect("loc"),
            LogLocation::Expired { at: now }
        );
        let left = store.read_logs(id, 0, 100).await.expect("read");
        assert_eq!(left.len(), 1, "only the last status event stays");
        assert_eq!(left[0].stream, LogStream::Status);
        let row = store.get_execution(Scope::All, id).await.expect("row kept");
        assert_eq!((row.stdout.as_str(), row.stderr.as_str()), ("", ""));
        assert_eq!(row.compile_output, None);
        assert!(row.verdict.is_some(), "the verdict stays");
    }
    assert_eq!(
        store
            .expire_logs(old.id, crate::now())
            .await
            .expect("again"),
        ExpireOutcome::Unchanged
    );
    assert_eq!(store.archived_bytes_total().await.expect("total"), 0);
    assert!(
        store
            .list_expired_by_age(at(base, -1_000_000), 10)
            .await
            .expect("list")
            .is_empty()
    );
    let row = store
        .get_execution(Scope::All, fresh.id)
        .await
        .expect("fresh");
    assert_eq!(row.stdout, "out ✓\n", "not due: untouched");
}

/// Retention by size lists the oldest archives until what remains fits the cap.
pub async fn retention_by_size_takes_oldest_archives<S: TestHooks>(store: &S) {
    let owner = create_user(store, "retention-size@example.com").await;
    let base = crate::now();
    let mut ids = Vec::new();
    for i in 0..3 {
        let e = finished(store, owner.id, &[b"x"], crate::now()).await;
        let rec = archive_record(e.id, 4, 100, at(base, i * 1_000));
        store.mark_logs_archived(&rec).await.expect("mark");
        ids.push(e.id);
    }
    assert_eq!(store.archived_bytes_total().await.expect("total"), 300);
    let listed = |cap: u64| async move {
        store
            .list_expired_by_size(cap, 10)
            .await
            .expect("list")
            .into_iter()
            .map(|d| d.execution_id)
            .collect::<Vec<_>>()
    };
    assert!(listed(300).await.is_empty());
    assert_eq!(listed(299).await, [ids[0]]);
    assert_eq!(listed(150).await, [ids[0], ids[1]]);
    assert_eq!(listed(0).await, ids);
    let due = store.list_expired_by_size(150, 1).await.expect("limit");
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].archive.as_ref().map(|a| a.bytes), Some(100));
    store
        .expire_logs(ids[0], crate::now())
        .await
        .expect("expire");
    assert_eq!(listed(150).await, [ids[1]]);
}

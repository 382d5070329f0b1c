//! The archiver, the retention cleaner and the reader against a real SQLite store and real
//! files (the local filesystem object store): the same events before and after archiving,
//! crash recovery, racing archivers, a cursor that survives archiving under it, retention.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use voidrunner_domain::{Execution, Verdict};
use voidrunner_logarchive::{
    Archived, Archiver, ArchiverSettings, LogReader, ObjectStore, ObjectStoreConfig, ReadError,
    RetentionCleaner, RetentionSettings,
};
use voidrunner_store::conformance::{claim, complete, create_user, lease_of, new_execution};
use voidrunner_store::{LogChunk, LogEvent, LogLocation, LogStream, Store};

struct Fixture {
    sqlite: voidrunner_store_sqlite::SqliteStore,
    store: Arc<dyn Store>,
    objects: Arc<dyn ObjectStore>,
    _db: tempfile::TempDir,
    dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let (store, db) = voidrunner_store_sqlite::testing::fresh_store().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let objects = ObjectStoreConfig::default()
        .build(dir.path())
        .expect("local object store");
    Fixture {
        sqlite: store.clone(),
        store: Arc::new(store),
        objects,
        _db: db,
        dir,
    }
}

impl Fixture {
    fn archiver(&self, threshold_bytes: u64) -> Archiver {
        Archiver::new(
            self.store.clone(),
            self.objects.clone(),
            ArchiverSettings {
                threshold_bytes,
                batch: 10,
                interval: Duration::from_secs(1),
            },
            Some(voidrunner_metrics::Metrics::new()),
        )
    }

    fn reader(&self) -> LogReader {
        LogReader::new(self.store.clone(), Some(self.objects.clone()))
    }

    /// Files under `<dir>/logs`.
    fn files(&self) -> Vec<std::path::PathBuf> {
        fn walk(p: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(p).expect("read_dir").flatten() {
                let path = e.path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.push(path);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.dir.path().join("logs"), &mut out);
        out
    }

    /// A finished execution whose log has `n` stdout/stderr chunks of `size` bytes.
    async fn finished(&self, email: &str, n: usize, size: usize) -> Execution {
        let owner = create_user(&self.sqlite, email).await;
        self.store
            .enqueue_execution(new_execution(owner.id, None, 5, voidrunner_store::now()))
            .await
            .expect("enqueue");
        let running = claim(&self.sqlite, "w", voidrunner_store::now())
            .await
            .expect("claim");
        let chunks: Vec<LogChunk> = (0..n)
            .map(|i| LogChunk {
                stream: if i % 3 == 0 {
                    LogStream::Stderr
                } else {
                    LogStream::Stdout
                },
                data: (0..size).map(|j| ((i * 7 + j) % 251) as u8).collect(),
            })
            .collect();
        for batch in chunks.chunks(100) {
            self.store
                .append_logs(&lease_of(&running), batch, voidrunner_store::now())
                .await
                .expect("append");
        }
        complete(&self.sqlite, &running, Verdict::Exited { code: 0 }).await
    }

    async fn all_rows(&self, e: &Execution) -> Vec<LogEvent> {
        self.store.read_logs(e.id, 0, 100_000).await.expect("rows")
    }

    async fn read_all(&self, e: &Execution, after: u64, page: u32) -> Vec<LogEvent> {
        let mut cursor = self.reader().cursor(e.id, after).await.expect("cursor");
        let mut out = Vec::new();
        loop {
            let p = cursor.next_page(page).await.expect("page");
            if p.is_empty() {
                return out;
            }
            out.extend(p);
        }
    }
}

#[tokio::test]
async fn big_log_is_archived_and_reads_back_identically() {
    let f = fixture().await;
    let big = f.finished("big@example.com", 1500, 700).await;
    let small = f.finished("small@example.com", 3, 10).await;
    let before = f.all_rows(&big).await;
    assert_eq!(before.len(), 1503);
    assert_eq!(f.archiver(100_000).run_pass().await, 1, "only the big one");
    let rows = f.all_rows(&big).await;
    assert_eq!(rows.len(), 1, "only the last event stays in the database");
    let LogLocation::Archived(rec) = f.store.log_location(big.id).await.expect("loc") else {
        panic!("archived")
    };
    assert_eq!(rec.last_seq, 1503);
    assert_eq!(rec.events, 1503);
    let files = f.files();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(
        std::fs::metadata(&files[0]).expect("meta").len(),
        rec.bytes,
        "the recorded size is the file's"
    );
    assert!(rec.object_key.ends_with(".vrlog"));
    assert!(rec.object_key.contains(&big.id.to_string()));
    for page in [1, 7, 512, 5000] {
        assert_eq!(f.read_all(&big, 0, page).await, before, "page {page}");
    }
    for after in [1, 499, 1502, 1503] {
        assert_eq!(
            f.read_all(&big, after, 64).await,
            before[after as usize..].to_vec(),
            "after {after}"
        );
    }
    assert_eq!(
        f.reader().read(big.id, 10, 5).await.expect("read"),
        before[10..15].to_vec()
    );
    assert_eq!(
        f.all_rows(&small).await.len(),
        6,
        "under the threshold: kept"
    );
    assert_eq!(f.archiver(100_000).run_pass().await, 0, "nothing left");
}

#[tokio::test]
async fn crash_before_the_commit_leaves_a_readable_log_and_rerun_converges() {
    let f = fixture().await;
    let e = f.finished("crash@example.com", 50, 100).await;
    let before = f.all_rows(&e).await;
    let candidates = f.store.list_archive_candidates(1, 10).await.expect("list");
    let archiver = f.archiver(1);
    // "Crash" after the object is written and verified, before the database transaction.
    let orphan = archiver.write_object(&candidates[0]).await.expect("write");
    assert_eq!(orphan.summary.events, before.len() as u64);
    assert_eq!(f.files().len(), 1);
    assert_eq!(f.all_rows(&e).await, before, "rows untouched");
    assert_eq!(
        f.read_all(&e, 0, 100).await,
        before,
        "read from the database"
    );
    // The next pass archives again (a new object) and removes the orphan.
    assert_eq!(archiver.run_pass().await, 1);
    assert_eq!(f.files().len(), 1, "the orphan is gone");
    let LogLocation::Archived(rec) = f.store.log_location(e.id).await.expect("loc") else {
        panic!("archived")
    };
    assert_ne!(rec.object_key, orphan.archive.object_key);
    assert_eq!(f.read_all(&e, 0, 100).await, before);
    // Committing the stale object now loses: the database already decided.
    assert_eq!(
        archiver
            .commit(&candidates[0], orphan)
            .await
            .expect("commit"),
        Archived::LostRace
    );
    assert_eq!(f.read_all(&e, 0, 100).await, before);
}

#[tokio::test]
async fn racing_archivers_have_one_winner_and_leave_one_object() {
    let f = fixture().await;
    let e = f.finished("race@example.com", 300, 200).await;
    let before = f.all_rows(&e).await;
    let candidates = f.store.list_archive_candidates(1, 10).await.expect("list");
    let (a, b) = (f.archiver(1), f.archiver(1));
    let (ra, rb) = tokio::join!(a.archive(&candidates[0]), b.archive(&candidates[0]));
    let outcomes = [ra, rb].map(|r| match r {
        Ok(Archived::Done { .. }) => "done",
        Ok(Archived::LostRace) => "lost",
        Ok(Archived::NotEligible) => "not eligible",
        // The loser may also see the rows vanish while it copies them.
        Err(voidrunner_logarchive::ArchiveError::Changed(_)) => "lost",
        Err(e) => panic!("unexpected error {e}"),
    });
    assert_eq!(
        outcomes.iter().filter(|o| **o == "done").count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(f.files().len(), 1);
    assert_eq!(f.read_all(&e, 0, 100).await, before);
}

#[tokio::test]
async fn cursor_continues_from_the_archive_when_rows_move_under_it() {
    let f = fixture().await;
    let e = f.finished("move@example.com", 40, 10).await;
    let before = f.all_rows(&e).await;
    let mut cursor = f.reader().cursor(e.id, 0).await.expect("cursor");
    let first = cursor.next_page(10).await.expect("page");
    assert_eq!(first, before[..10].to_vec());
    assert_eq!(f.archiver(1).run_pass().await, 1);
    let mut rest = Vec::new();
    loop {
        let p = cursor.next_page(7).await.expect("page");
        if p.is_empty() {
            break;
        }
        rest.extend(p);
    }
    assert_eq!(rest, before[10..].to_vec(), "no gap, no duplicate");
}

#[tokio::test]
async fn retention_by_age_and_size_deletes_objects_and_answers_expired() {
    let f = fixture().await;
    let a = f.finished("r1@example.com", 20, 50).await;
    let b = f.finished("r2@example.com", 20, 50).await;
    let c = f.finished("r3@example.com", 20, 50).await;
    let archiver = f.archiver(1);
    for _ in 0..3 {
        // one per pass, so archived_at follows a, b, c
        let cands = f.store.list_archive_candidates(1, 1).await.expect("list");
        archiver.archive(&cands[0]).await.expect("archive");
    }
    assert_eq!(f.files().len(), 3);
    let total = f.store.archived_bytes_total().await.expect("total");
    let one = total / 3;
    let cleaner = |max_age: Option<Duration>, cap: Option<u64>| {
        RetentionCleaner::new(
            f.store.clone(),
            f.objects.clone(),
            RetentionSettings {
                max_age,
                max_total_bytes: cap,
                batch: 2,
                interval: Duration::from_secs(1),
            },
            None,
        )
    };
    // A cap that fits two archives expires the oldest one only.
    let report = cleaner(None, Some(2 * one + one / 2)).run_pass().await;
    assert_eq!((report.by_size, report.failed), (1, 0));
    assert_eq!(f.files().len(), 2);
    let err = f.reader().read(a.id, 0, 10).await.expect_err("expired");
    assert!(matches!(err, ReadError::Expired { .. }), "{err}");
    assert!(f.reader().read(b.id, 0, 10).await.is_ok());
    // Age: everything finished before now goes (objects and rows).
    let report = cleaner(Some(Duration::ZERO), None).run_pass().await;
    assert_eq!((report.by_age, report.failed), (2, 0), "{report:?}");
    assert!(f.files().is_empty());
    for id in [b.id, c.id] {
        assert!(matches!(
            f.reader().read(id, 0, 10).await,
            Err(ReadError::Expired { .. })
        ));
    }
    assert_eq!(f.store.archived_bytes_total().await.expect("total"), 0);
    let listed: Vec<_> = f.objects.list(None).collect().await;
    assert!(listed.is_empty(), "{listed:?}");
}

#[tokio::test]
async fn archived_log_without_object_store_is_an_error_not_an_empty_log() {
    let f = fixture().await;
    let e = f.finished("noconf@example.com", 5, 10).await;
    f.archiver(1).run_pass().await;
    let reader = LogReader::new(f.store.clone(), None);
    assert!(matches!(
        reader.read(e.id, 0, 10).await,
        Err(ReadError::NotConfigured { .. })
    ));
    std::fs::remove_file(&f.files()[0]).expect("rm");
    assert!(matches!(
        f.reader().read(e.id, 0, 10).await,
        Err(ReadError::Object { .. })
    ));
}

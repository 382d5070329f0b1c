//! The job blob archiver and reader against a real SQLite store and real files (the local
//! filesystem object store): a finished job's blobs move out and read back identical, a
//! running job's never move, racing archivers leave one intact object, a refused upload is
//! removed, and objects of jobs deleted by retention are deleted.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use sha2::{Digest, Sha256};
use voidrunner_logarchive::{
    BlobArchived, JobBlobArchiver, JobBlobBody, JobBlobPass, JobBlobReader, JobBlobSettings,
    ObjectStore, ObjectStoreConfig,
};
use voidrunner_store::conformance::{create_user, new_job};
use voidrunner_store::{
    JobBlobLocation, JobCompleteOutcome, JobId, JobLease, JobResult, JobStatus, Scope, Store,
    StoreError,
};

struct Fixture {
    sqlite: voidrunner_store_sqlite::SqliteStore,
    store: Arc<dyn Store>,
    objects: Arc<dyn ObjectStore>,
    db: tempfile::TempDir,
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
        db,
        dir,
    }
}

/// Bytes that differ at every offset (so a shifted or truncated copy is noticed).
fn payload(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}

impl Fixture {
    fn archiver(&self, min_bytes: u64) -> JobBlobArchiver {
        JobBlobArchiver::new(
            self.store.clone(),
            self.objects.clone(),
            JobBlobSettings {
                archive: true,
                min_bytes,
                batch: 10,
                interval: Duration::from_secs(1),
            },
        )
    }

    fn reader(&self) -> JobBlobReader {
        JobBlobReader::new(self.store.clone(), Some(self.objects.clone()))
    }

    /// The file of a job's blob in the local object store.
    fn file(&self, job: JobId, name: &str) -> PathBuf {
        self.dir
            .path()
            .join("logs/jobs")
            .join(job.to_string())
            .join(name)
    }

    /// Bytes of `data` in the database row (raw SQL: what no trait method shows).
    async fn raw_len(&self, job: JobId, name: &str) -> i64 {
        let url = format!(
            "sqlite://{}",
            self.db.path().join("voidrunner.db").display()
        );
        let mut conn: sqlx::SqliteConnection =
            sqlx::Connection::connect(&url).await.expect("connect");
        sqlx::query_scalar("SELECT length(data) FROM job_blobs WHERE job_id = ? AND name = ?")
            .bind(job.to_string())
            .bind(name)
            .fetch_one(&mut conn)
            .await
            .expect("raw length")
    }

    /// A job with `source.tar` (`tar` bytes), claimed; answers its lease.
    async fn running(&self, email: &str, tar: &[u8]) -> JobLease {
        let owner = create_user(&self.sqlite, email).await;
        let job = new_job(owner.id, "blobs", 5, voidrunner_store::now());
        let id = job.id;
        self.store
            .create_job(job, BTreeMap::new())
            .await
            .expect("create");
        self.store
            .put_job_blob(id, "source.tar", tar, voidrunner_store::now())
            .await
            .expect("tarball");
        let now = voidrunner_store::now();
        let claimed = self
            .store
            .claim_next_job("w", now + chrono::Duration::seconds(30), now, None)
            .await
            .expect("claim")
            .expect("queued job");
        assert_eq!(claimed.id, id);
        JobLease::of(&claimed).expect("lease")
    }

    /// A succeeded job with `source.tar` and `artifacts/dist/app.bin`; answers its id.
    async fn finished(&self, email: &str, tar: &[u8], app: &[u8]) -> JobId {
        let lease = self.running(email, tar).await;
        self.store
            .put_job_blob(
                lease.job_id,
                "artifacts/dist/app.bin",
                app,
                voidrunner_store::now(),
            )
            .await
            .expect("artifact");
        let result = JobResult {
            status: JobStatus::Succeeded,
            steps: Vec::new(),
            failures: Vec::new(),
            outputs: BTreeMap::new(),
            finished_at: voidrunner_store::now(),
        };
        assert!(matches!(
            self.store
                .complete_job(&lease, result)
                .await
                .expect("complete"),
            JobCompleteOutcome::Completed(_)
        ));
        lease.job_id
    }

    async fn read_all(&self, job: JobId, name: &str) -> Vec<u8> {
        match self
            .reader()
            .open(Scope::All, job, name)
            .await
            .expect("open")
        {
            JobBlobBody::Bytes(b) => b,
            JobBlobBody::Stream { size, mut stream } => {
                let mut out = Vec::new();
                while let Some(chunk) = stream.next().await {
                    out.extend_from_slice(&chunk.expect("chunk"));
                }
                assert_eq!(out.len() as u64, size);
                out
            }
        }
    }
}

#[tokio::test]
async fn finished_job_blobs_move_out_and_read_back_identical() {
    let f = fixture().await;
    let tar = payload(300_000, 1);
    let app = payload(5_000, 2);
    let small = b"tiny".to_vec();
    let done = f.finished("blobs-done@example.com", &tar, &app).await;
    f.store
        .put_job_blob(done, "artifacts/small.txt", &small, voidrunner_store::now())
        .await
        .expect("small");
    let running = f.running("blobs-running@example.com", &tar).await;

    let pass = f.archiver(100).run_pass().await;
    assert_eq!(
        pass,
        JobBlobPass {
            archived: 2,
            bytes: 305_000,
            deleted: 0,
            failed: 0
        }
    );
    for (name, bytes) in [("source.tar", &tar), ("artifacts/dist/app.bin", &app)] {
        assert_eq!(
            &std::fs::read(f.file(done, name)).expect("object file"),
            bytes
        );
        assert_eq!(
            f.raw_len(done, name).await,
            0,
            "{name}: database row emptied"
        );
        match f
            .store
            .job_blob_location(Scope::All, done, name)
            .await
            .expect("location")
        {
            JobBlobLocation::Archived(a) => {
                assert_eq!(a.size, bytes.len() as u64);
                assert_eq!(a.sha256, hex::encode(Sha256::digest(bytes)));
                assert_eq!(a.object_key, format!("jobs/{done}/{name}"));
            }
            JobBlobLocation::Stored(_) => panic!("{name} still stored"),
        }
        assert_eq!(&f.read_all(done, name).await, bytes, "{name} reads back");
    }
    assert!(matches!(
        f.reader()
            .open(Scope::All, done, "source.tar")
            .await
            .expect("open"),
        JobBlobBody::Stream { size: 300_000, .. }
    ));
    // Below the threshold: stays in the database.
    assert_eq!(f.raw_len(done, "artifacts/small.txt").await, 4);
    assert_eq!(f.read_all(done, "artifacts/small.txt").await, small);
    // The running job's blob never moves.
    assert_eq!(
        f.raw_len(running.job_id, "source.tar").await,
        tar.len() as i64
    );
    assert!(!f.file(running.job_id, "source.tar").exists());
    assert_eq!(
        f.store
            .job_blob(Scope::All, running.job_id, "source.tar")
            .await
            .expect("worker reads the tarball"),
        tar
    );
    // A second pass has nothing left to do.
    assert_eq!(f.archiver(100).run_pass().await, JobBlobPass::default());
}

#[tokio::test]
async fn racing_archivers_leave_one_intact_object() {
    let f = fixture().await;
    let tar = payload(200_000, 3);
    let app = payload(70_000, 4);
    let done = f.finished("blobs-race@example.com", &tar, &app).await;
    let candidates = f
        .store
        .list_job_blob_candidates(1, 10)
        .await
        .expect("candidates");
    assert_eq!(candidates.len(), 2);
    let (a, b) = (f.archiver(1), f.archiver(1));
    for c in &candidates {
        let (ra, rb) = tokio::join!(a.archive(c), b.archive(c));
        let mut outcomes = [ra.expect("a"), rb.expect("b")];
        outcomes.sort_by_key(|o| matches!(o, BlobArchived::LostRace));
        assert!(
            matches!(
                outcomes,
                [BlobArchived::Done { .. }, BlobArchived::LostRace]
            ),
            "{}: {outcomes:?}",
            c.name
        );
    }
    // A late third archiver with the stale candidates changes nothing.
    for c in &candidates {
        assert_eq!(
            f.archiver(1).archive(c).await.expect("late"),
            BlobArchived::LostRace
        );
    }
    assert_eq!(f.read_all(done, "source.tar").await, tar);
    assert_eq!(f.read_all(done, "artifacts/dist/app.bin").await, app);
    let files: Vec<_> = walk(&f.dir.path().join("logs"));
    assert_eq!(files.len(), 2, "{files:?}");
}

#[tokio::test]
async fn retention_deletes_the_objects_and_a_refused_upload_is_removed() {
    let f = fixture().await;
    let tar = payload(10_000, 5);
    let app = payload(20_000, 6);
    let archived = f.finished("blobs-purge@example.com", &tar, &app).await;
    assert_eq!(f.archiver(1).run_pass().await.archived, 2);
    assert_eq!(walk(&f.dir.path().join("logs")).len(), 2);

    // A second job is listed, then purged before its upload is recorded.
    let late = f.finished("blobs-late@example.com", &tar, &app).await;
    let candidates = f
        .store
        .list_job_blob_candidates(1, 10)
        .await
        .expect("candidates");
    assert!(candidates.iter().all(|c| c.job_id == late));
    let future = voidrunner_store::now() + chrono::Duration::hours(1);
    assert_eq!(f.store.purge_jobs(future, 100).await.expect("purge"), 2);
    for c in &candidates {
        assert_eq!(
            f.archiver(1).archive(c).await.expect("archive"),
            BlobArchived::NotEligible
        );
        assert!(!f.file(late, &c.name).exists(), "{}", c.name);
    }
    // The purged job's archived objects are still there until the next pass deletes them.
    assert!(f.file(archived, "source.tar").exists());
    assert!(matches!(
        f.reader().open(Scope::All, archived, "source.tar").await,
        Err(voidrunner_logarchive::JobBlobError::Store(
            StoreError::NotFound
        ))
    ));
    let pass = f.archiver(1).run_pass().await;
    assert_eq!(pass.deleted, 2);
    assert_eq!(pass.failed, 0);
    assert!(
        walk(&f.dir.path().join("logs")).is_empty(),
        "every object deleted"
    );
    assert!(
        f.store
            .deleted_job_blob_objects(10)
            .await
            .expect("deleted")
            .is_empty()
    );
    assert_eq!(f.archiver(1).run_pass().await, JobBlobPass::default());
}

/// Files under `dir`.
fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

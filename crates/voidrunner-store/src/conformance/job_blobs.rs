//! Job blobs in object storage ([`crate::JobBlobArchiveStore`]): only blobs of jobs finished
//! for good are candidates, the archive mark is a compare-and-set with one winner, the read
//! path tells bytes from an object key, and deleting an archived row leaves its key behind
//! for the object to be deleted.

use std::collections::BTreeMap;

use voidrunner_domain::{Timestamp, UserId};

use super::{TestHooks, at, create_user, new_job};
use crate::{
    ArchivedJobBlob, JobBlobArchiveOutcome, JobBlobCandidate, JobBlobLocation, JobCompleteOutcome,
    JobId, JobLease, JobResult, JobStatus, Scope, StoreError,
};

/// A queued job of `owner` with `source.tar` of `size` bytes.
async fn queued_job<S: TestHooks>(store: &S, owner: UserId, size: usize) -> JobId {
    let job = new_job(owner, "blob-archive", 5, crate::now());
    let id = job.id;
    store
        .create_job(job, BTreeMap::new())
        .await
        .expect("create job");
    let tar = vec![7u8; size];
    store
        .put_job_blob(id, "source.tar", &tar, crate::now())
        .await
        .expect("tarball");
    id
}

/// Claims the next job (which must be `id`).
async fn claim_exact<S: TestHooks>(store: &S, id: JobId) -> JobLease {
    let now = crate::now();
    let job = store
        .claim_next_job("blob-worker", at(now, 30_000_000), now, None)
        .await
        .expect("claim")
        .expect("a queued job");
    assert_eq!(job.id, id, "claimed the expected job");
    JobLease::of(&job).expect("lease")
}

/// Completes a claimed job with `status`.
async fn finish<S: TestHooks>(store: &S, lease: &JobLease, status: JobStatus) {
    let result = JobResult {
        status,
        steps: Vec::new(),
        failures: Vec::new(),
        outputs: BTreeMap::new(),
        finished_at: crate::now(),
    };
    assert!(matches!(
        store.complete_job(lease, result).await.expect("complete"),
        JobCompleteOutcome::Completed(_)
    ));
}

/// A finished (succeeded) job with `source.tar` of `size` bytes and `artifacts/out.bin`.
async fn finished_job<S: TestHooks>(store: &S, owner: UserId, size: usize) -> JobId {
    let id = queued_job(store, owner, size).await;
    let lease = claim_exact(store, id).await;
    store
        .put_job_blob(id, "artifacts/out.bin", &vec![1u8; size], crate::now())
        .await
        .expect("artifact");
    finish(store, &lease, JobStatus::Succeeded).await;
    id
}

/// The archive record the archiver would write for `c`.
fn archive_of(c: &JobBlobCandidate, at: Timestamp) -> ArchivedJobBlob {
    ArchivedJobBlob {
        object_key: format!("jobs/{}/{}", c.job_id, c.name),
        size: c.size,
        sha256: "cd".repeat(32),
        archived_at: at,
    }
}

/// Candidates of `job` among the first 100 of at least `min` bytes, by name.
async fn candidates_of<S: TestHooks>(store: &S, job: JobId, min: u64) -> Vec<JobBlobCandidate> {
    let mut out: Vec<_> = store
        .list_job_blob_candidates(min, 100)
        .await
        .expect("candidates")
        .into_iter()
        .filter(|c| c.job_id == job)
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Only blobs of succeeded, failed (not dead-lettered) and cancelled jobs over the size
/// are candidates; queued and running jobs' blobs never are. An archived blob reads as its
/// key (in scope only), no longer as bytes, and is no longer a candidate.
pub async fn job_blob_archive_takes_finished_jobs_only<S: TestHooks>(store: &S) {
    let owner = create_user(store, "blob-archive@example.com").await;
    let other = create_user(store, "blob-archive-other@example.com").await;
    let done = finished_job(store, owner.id, 4096).await;
    let running = queued_job(store, owner.id, 4096).await;
    let _lease = claim_exact(store, running).await;
    let queued = queued_job(store, owner.id, 4096).await;
    let cancelled = queued_job(store, owner.id, 4096).await;
    store
        .request_job_cancel(Scope::All, cancelled, crate::now())
        .await
        .expect("cancel queued");

    let found = candidates_of(store, done, 100).await;
    let names: Vec<&str> = found.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["artifacts/out.bin", "source.tar"]);
    assert!(found.iter().all(|c| c.size == 4096));
    assert!(
        candidates_of(store, done, 4097).await.is_empty(),
        "too small"
    );
    assert!(candidates_of(store, running, 1).await.is_empty(), "running");
    assert!(candidates_of(store, queued, 1).await.is_empty(), "queued");
    assert_eq!(
        candidates_of(store, cancelled, 1).await.len(),
        1,
        "cancelled"
    );

    let tar = found[1].clone();
    let record = archive_of(&tar, crate::now());
    assert_eq!(
        store
            .mark_job_blob_archived(&tar, &record)
            .await
            .expect("mark"),
        JobBlobArchiveOutcome::Archived
    );
    assert_eq!(
        store
            .job_blob_location(Scope::Owner(owner.id), done, "source.tar")
            .await
            .expect("location"),
        JobBlobLocation::Archived(record.clone())
    );
    assert!(matches!(
        store
            .job_blob_location(Scope::Owner(other.id), done, "source.tar")
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.job_blob(Scope::All, done, "source.tar").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store
            .job_blob_location(Scope::All, done, "artifacts/out.bin")
            .await
            .expect("location"),
        JobBlobLocation::Stored(vec![1u8; 4096]),
        "the other blob stays"
    );
    let left = candidates_of(store, done, 1).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].name, "artifacts/out.bin");
    assert!(matches!(
        store.job_blob_location(Scope::All, done, "nope").await,
        Err(StoreError::NotFound)
    ));

    // A running job's blob is refused even when the candidate matches its row exactly.
    let t = crate::now();
    store
        .put_job_blob(running, "artifacts/x", &[3u8; 10], t)
        .await
        .expect("running artifact");
    let forged = JobBlobCandidate {
        job_id: running,
        name: "artifacts/x".into(),
        size: 10,
        created_at: t,
    };
    assert_eq!(
        store
            .mark_job_blob_archived(&forged, &archive_of(&forged, crate::now()))
            .await
            .expect("mark running"),
        JobBlobArchiveOutcome::NotEligible
    );
    assert!(matches!(
        store
            .job_blob_location(Scope::All, running, "artifacts/x")
            .await
            .expect("location"),
        JobBlobLocation::Stored(_)
    ));
}

/// The mark is a compare-and-set: a second mark answers the winner's key, a stale
/// `created_at` or size is refused, and of many concurrent marks exactly one wins.
pub async fn job_blob_archive_mark_has_one_winner<S: TestHooks>(store: &S) {
    let owner = create_user(store, "blob-race@example.com").await;
    let done = finished_job(store, owner.id, 1000).await;
    let found = candidates_of(store, done, 1).await;
    let (art, tar) = (found[0].clone(), found[1].clone());

    let mut stale = art.clone();
    stale.created_at = at(art.created_at, -1);
    let mut resized = art.clone();
    resized.size += 1;
    for c in [&stale, &resized] {
        assert_eq!(
            store
                .mark_job_blob_archived(c, &archive_of(c, crate::now()))
                .await
                .expect("mark stale"),
            JobBlobArchiveOutcome::NotEligible
        );
    }

    let racers: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            let c = tar.clone();
            tokio::spawn(async move {
                let mut record = archive_of(&c, crate::now());
                record.object_key = format!("{}#{i}", record.object_key);
                let outcome = store
                    .mark_job_blob_archived(&c, &record)
                    .await
                    .expect("mark");
                (record.object_key, outcome)
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut answered = Vec::new();
    for r in racers {
        match r.await.expect("join") {
            (key, JobBlobArchiveOutcome::Archived) => winners.push(key),
            (_, JobBlobArchiveOutcome::AlreadyArchived(k)) => answered.push(k),
            (key, JobBlobArchiveOutcome::NotEligible) => panic!("{key}: not eligible"),
        }
    }
    assert_eq!(winners.len(), 1, "one winner: {winners:?}");
    assert_eq!(answered.len(), 7);
    assert!(answered.iter().all(|k| k == &winners[0]), "{answered:?}");
    match store
        .job_blob_location(Scope::All, done, "source.tar")
        .await
        .expect("location")
    {
        JobBlobLocation::Archived(a) => assert_eq!(a.object_key, winners[0]),
        JobBlobLocation::Stored(_) => panic!("still stored"),
    }
}

/// Deleting archived rows (here: retention purging the job) leaves their object keys in the
/// work list, in the same transaction; unarchived rows leave nothing; forgetting is
/// idempotent.
pub async fn deleted_archived_blobs_leave_their_keys<S: TestHooks>(store: &S) {
    let owner = create_user(store, "blob-deleted@example.com").await;
    let done = finished_job(store, owner.id, 64).await;
    assert!(
        store
            .deleted_job_blob_objects(100)
            .await
            .expect("deleted")
            .is_empty()
    );
    let found = candidates_of(store, done, 1).await;
    let tar = found[1].clone();
    let record = archive_of(&tar, crate::now());
    assert_eq!(
        store
            .mark_job_blob_archived(&tar, &record)
            .await
            .expect("mark"),
        JobBlobArchiveOutcome::Archived
    );
    let purged = store
        .purge_jobs(at(crate::now(), 3_600_000_000), 100)
        .await
        .expect("purge");
    assert_eq!(purged, 1);
    let keys = store.deleted_job_blob_objects(100).await.expect("deleted");
    assert_eq!(
        keys,
        vec![record.object_key.clone()],
        "only the archived one"
    );
    // Marking after the row is gone is refused (the uploader deletes its object).
    assert_eq!(
        store
            .mark_job_blob_archived(&found[0], &archive_of(&found[0], crate::now()))
            .await
            .expect("mark gone"),
        JobBlobArchiveOutcome::NotEligible
    );
    store
        .forget_deleted_job_blob_objects(&keys)
        .await
        .expect("forget");
    store
        .forget_deleted_job_blob_objects(&keys)
        .await
        .expect("forget again");
    store
        .forget_deleted_job_blob_objects(&[])
        .await
        .expect("forget nothing");
    assert!(
        store
            .deleted_job_blob_objects(100)
            .await
            .expect("deleted")
            .is_empty()
    );
}

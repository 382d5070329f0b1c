//! CI job signals between two handles of one schema (two nodes): creation, cancel requests,
//! events and finishes on one node reach the other through `LISTEN/NOTIFY`. Runs only when
//! `VOIDRUNNER_TEST_DATABASE_URL` is set.

use std::collections::BTreeMap;
use std::time::Duration;

use voidrunner_store::conformance::{create_user, new_job};
use voidrunner_store::{
    ExecutionStore as _, JobCompleteOutcome, JobLease, JobResult, JobSignal, JobStatus, JobStore,
    JobStream, NewJobEvent, Scope, now,
};

/// Waits (bounded) for the first job signal equal to `want`.
async fn expect_signal(rx: &mut tokio::sync::broadcast::Receiver<JobSignal>, want: JobSignal) {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match rx.recv().await {
                Ok(s) if s == want => return,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("signals closed: {e}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{want:?} within 10 s"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_signals_cross_handles_of_one_schema() {
    let Ok(url) = std::env::var("VOIDRUNNER_TEST_DATABASE_URL") else {
        return;
    };
    let a = voidrunner_store_postgres::testing::fresh_store(&url).await;
    let b = voidrunner_store_postgres::testing::another_handle(&url, &a).await;
    let owner = create_user(&a, "job-nodes@example.com").await;
    let mut work = b.queue_signals().subscribe_work();
    let mut on_b = b.queue_signals().subscribe_jobs();
    let mut on_a = a.queue_signals().subscribe_jobs();
    work.borrow_and_update();

    let job = a
        .create_job(new_job(owner.id, "nodes", 1, now()), BTreeMap::new())
        .await
        .expect("create on a");
    tokio::time::timeout(Duration::from_secs(10), work.changed())
        .await
        .expect("work on b")
        .expect("sender alive");
    let t = now();
    let running = b
        .claim_next_job("node-b", t + chrono::Duration::seconds(30), t, None)
        .await
        .expect("claim")
        .expect("b claims a's job");
    let lease = JobLease::of(&running).expect("lease");
    b.append_job_events(
        &lease,
        &[NewJobEvent {
            step: None,
            stream: JobStream::Phase,
            data: b"pre_execution".to_vec(),
        }],
        now(),
    )
    .await
    .expect("append on b");
    expect_signal(
        &mut on_a,
        JobSignal::Events {
            job_id: job.id,
            last_seq: 3,
        },
    )
    .await;
    a.request_job_cancel(Scope::All, job.id, now())
        .await
        .expect("cancel on a");
    expect_signal(&mut on_b, JobSignal::Cancel(job.id)).await;
    let done = b
        .complete_job(
            &lease,
            JobResult {
                status: JobStatus::Cancelled,
                steps: Vec::new(),
                failures: Vec::new(),
                outputs: BTreeMap::new(),
                finished_at: now(),
            },
        )
        .await
        .expect("complete on b");
    assert!(matches!(done, JobCompleteOutcome::Completed(_)));
    expect_signal(&mut on_a, JobSignal::Finished(job.id)).await;
    a.close().await;
    b.close().await;
}

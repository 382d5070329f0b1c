//! Commit statuses to report: recorded with the delivery (and not for a duplicate), claimed
//! when the workflow's `(status, run)` differs from the last posted one, compare-and-set
//! (one claimer per row, a lost claim records nothing), retried with the caller's backoff,
//! given up (row kept, later transitions tried afresh), and never shared by racing claimers.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use voidrunner_domain::{Timestamp, UserId};

use super::repos::{delivery_workflow, new_delivery, new_repository};
use super::{TestHooks, at, create_user};
use crate::{
    DeliveryOutcome, NewCommitStatus, RepositoryId, Scope, StatusReport, StatusReportOutcome,
    WorkflowId, WorkflowState,
};

/// A claim lease.
const LEASE: Duration = Duration::from_secs(30);

/// A repository of a new user and a delivery `id` that started `n` workflows, each with a
/// status to report.
async fn delivered<S: TestHooks>(
    store: &S,
    email: &str,
    id: &str,
    n: usize,
) -> (UserId, RepositoryId, Vec<WorkflowId>) {
    let owner = create_user(store, email).await;
    let repo = store
        .create_repository(
            new_repository(owner.id, &format!("acme/{id}")),
            vec![1],
            BTreeMap::new(),
        )
        .await
        .expect("repository");
    let workflows: Vec<_> = (0..n)
        .map(|i| delivery_workflow(owner.id, &format!("ci-{i}")))
        .collect();
    let ids: Vec<_> = workflows.iter().map(|w| w.workflow.id).collect();
    let statuses = statuses_for(repo.id, &ids);
    let out = store
        .record_delivery_with_statuses(new_delivery(repo.id, id), workflows, statuses)
        .await
        .expect("record");
    assert_eq!(out, DeliveryOutcome::Created(ids.clone()));
    (owner.id, repo.id, ids)
}

/// One status per workflow, on commit `abc…`.
fn statuses_for(repo: RepositoryId, ids: &[WorkflowId]) -> Vec<NewCommitStatus> {
    ids.iter()
        .map(|id| NewCommitStatus {
            workflow_id: *id,
            repository_id: repo,
            sha: "abc123".into(),
            context: format!("voidrunner/{id}"),
        })
        .collect()
}

/// The claimed workflow ids with their `(state, run)`.
fn transitions(c: &[StatusReport]) -> BTreeSet<(WorkflowId, &'static str, u32)> {
    c.iter()
        .map(|r| (r.workflow_id, r.state.as_str(), r.run))
        .collect()
}

/// Finishes a claimed row as posted.
async fn post<S: TestHooks>(store: &S, r: &StatusReport, now: Timestamp) {
    let done = store
        .finish_status_report(
            r.workflow_id,
            r.claim,
            StatusReportOutcome::Posted {
                state: r.state,
                run: r.run,
            },
            now,
        )
        .await
        .expect("finish");
    assert!(done, "the claim is held");
}

/// Rows come with the delivery (not with a duplicate); each transition of the workflow is
/// claimed once (a claimed row is not claimable again until posted or the lease ends; a
/// stale claim records nothing), posted transitions are not due, a re-run is a new one.
pub async fn status_claims_follow_the_workflow_state<S: TestHooks>(store: &S) {
    let (owner, repo, ids) = delivered(store, "status-follow@example.com", "st-1", 2).await;
    let row = store
        .get_commit_status(ids[0])
        .await
        .expect("read")
        .expect("a row");
    assert_eq!(
        (
            row.repository_id,
            row.sha.as_str(),
            row.posted,
            row.attempts
        ),
        (repo, "abc123", None, 0)
    );
    let again = delivery_workflow(owner, "dup");
    let dup_id = again.workflow.id;
    let dup = store
        .record_delivery_with_statuses(
            new_delivery(repo, "st-1"),
            vec![again],
            statuses_for(repo, &[dup_id]),
        )
        .await
        .expect("duplicate");
    assert!(matches!(dup, DeliveryOutcome::Duplicate(_)), "{dup:?}");
    assert_eq!(store.get_commit_status(dup_id).await.expect("read"), None);

    let t0 = crate::now();
    let claimed = store
        .claim_status_reports("n1", t0, LEASE, 10)
        .await
        .expect("claim");
    let running: BTreeSet<_> = ids.iter().map(|i| (*i, "running", 1)).collect();
    assert_eq!(transitions(&claimed), running);
    assert!(claimed.iter().all(|r| r.attempts == 0 && r.sha == "abc123"));
    let held = store
        .get_commit_status(ids[0])
        .await
        .expect("read")
        .expect("row");
    assert_eq!(held.claimed_by.as_deref(), Some("n1"));
    assert!(
        store
            .claim_status_reports("n2", t0, LEASE, 10)
            .await
            .expect("claim")
            .is_empty(),
        "claimed rows are not claimable"
    );
    // The lease of the second row ends: another node takes it; the first claim is stale.
    let (first, second) = (&claimed[0], &claimed[1]);
    post(store, first, t0).await;
    let late = at(t0, 31_000_000);
    let retaken = store
        .claim_status_reports("n2", late, LEASE, 10)
        .await
        .expect("reclaim");
    assert_eq!(
        transitions(&retaken),
        transitions(std::slice::from_ref(second))
    );
    let stale = store
        .finish_status_report(
            second.workflow_id,
            second.claim,
            StatusReportOutcome::Posted {
                state: second.state,
                run: second.run,
            },
            late,
        )
        .await
        .expect("stale finish");
    assert!(!stale, "a stale claim records nothing");
    post(store, &retaken[0], late).await;
    assert!(
        store
            .claim_status_reports("n1", at(late, 1), LEASE, 10)
            .await
            .expect("claim")
            .is_empty(),
        "posted transitions are not due"
    );
    let posted = store
        .get_commit_status(first.workflow_id)
        .await
        .expect("read")
        .expect("row");
    assert_eq!(
        (posted.posted, posted.claimed_by, posted.claimed_until),
        (Some((WorkflowState::Running, 1)), None, None)
    );

    // The workflow fails: its final state is due; after a re-run, the new run is.
    let wf = ids[0];
    let now = crate::now();
    assert!(
        store
            .finish_workflow(wf, WorkflowState::Failed, BTreeMap::new(), None, now)
            .await
            .expect("finish")
    );
    let due = store
        .claim_status_reports("n1", at(now, 1), LEASE, 10)
        .await
        .expect("claim");
    assert_eq!(transitions(&due), BTreeSet::from([(wf, "failed", 1)]));
    post(store, &due[0], at(now, 2)).await;
    store
        .rerun_workflow(Scope::All, wf, at(now, 3))
        .await
        .expect("rerun");
    let due = store
        .claim_status_reports("n1", at(now, 4), LEASE, 10)
        .await
        .expect("claim");
    assert_eq!(transitions(&due), BTreeSet::from([(wf, "running", 2)]));
}

/// A failure is retried no earlier than the caller's time, with `attempts` counted; giving
/// up keeps the row with the error and stops claims of that transition, not of the next.
pub async fn status_retry_backoff_and_give_up<S: TestHooks>(store: &S) {
    let (_, _, ids) = delivered(store, "status-retry@example.com", "st-2", 1).await;
    let wf = ids[0];
    let t0 = crate::now();
    let c = store
        .claim_status_reports("n1", t0, LEASE, 10)
        .await
        .expect("claim");
    let retry_at = at(t0, 10_000_000);
    let outcome = StatusReportOutcome::Retry {
        error: "HTTP 502".into(),
        at: retry_at,
    };
    assert!(
        store
            .finish_status_report(wf, c[0].claim, outcome, t0)
            .await
            .expect("retry")
    );
    let row = store
        .get_commit_status(wf)
        .await
        .expect("read")
        .expect("row");
    assert_eq!(
        (row.attempts, row.last_error.as_deref(), row.next_attempt_at),
        (1, Some("HTTP 502"), retry_at)
    );
    assert!(
        store
            .claim_status_reports("n1", at(t0, 5_000_000), LEASE, 10)
            .await
            .expect("claim")
            .is_empty(),
        "not before the backoff"
    );
    let c = store
        .claim_status_reports("n1", retry_at, LEASE, 10)
        .await
        .expect("claim");
    assert_eq!((c.len(), c[0].attempts), (1, 1));
    let give_up = StatusReportOutcome::GiveUp {
        state: WorkflowState::Running,
        run: 1,
        error: "the host refused it: HTTP 422".into(),
    };
    assert!(
        store
            .finish_status_report(wf, c[0].claim, give_up, retry_at)
            .await
            .expect("give up")
    );
    let row = store
        .get_commit_status(wf)
        .await
        .expect("read")
        .expect("row");
    assert_eq!(
        (row.gave_up, row.posted, row.attempts),
        (Some((WorkflowState::Running, 1)), None, 0)
    );
    assert!(row.last_error.as_deref().is_some_and(|e| e.contains("422")));
    let later = at(retry_at, 3_600_000_000);
    assert!(
        store
            .claim_status_reports("n1", later, LEASE, 10)
            .await
            .expect("claim")
            .is_empty(),
        "a given-up transition is not claimed again"
    );
    assert!(
        store
            .finish_workflow(wf, WorkflowState::Succeeded, BTreeMap::new(), None, later)
            .await
            .expect("finish")
    );
    let c = store
        .claim_status_reports("n1", at(later, 1), LEASE, 10)
        .await
        .expect("claim");
    assert_eq!(transitions(&c), BTreeSet::from([(wf, "succeeded", 1)]));
    assert_eq!(c[0].attempts, 0, "a later transition starts afresh");
}

/// Racing claimers (as on several API nodes) never get the same row, and together get all.
pub async fn concurrent_status_claimers_never_share<S: TestHooks>(store: &S) {
    let (_, _, ids) = delivered(store, "status-race@example.com", "st-3", 12).await;
    let now = crate::now();
    let gate = std::sync::Arc::new(tokio::sync::Barrier::new(4));
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let (s, gate) = (store.clone(), std::sync::Arc::clone(&gate));
            tokio::spawn(async move {
                gate.wait().await;
                let mut got = Vec::new();
                loop {
                    let c = s
                        .claim_status_reports(&format!("node-{i}"), now, LEASE, 2)
                        .await
                        .expect("claim");
                    if c.is_empty() {
                        return got;
                    }
                    got.extend(c.into_iter().map(|r| r.workflow_id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("join"));
    }
    let distinct: BTreeSet<_> = all.iter().copied().collect();
    assert_eq!(all.len(), distinct.len(), "a row was claimed twice");
    assert_eq!(distinct, ids.into_iter().collect::<BTreeSet<_>>());
}

//! Retention of workflows: an old finished workflow goes with its nodes, secrets, triggers,
//! commit status and jobs; recent, running and still-busy ones stay.

use std::collections::BTreeMap;

use voidrunner_domain::UserId;

use super::super::workflows::{fan_nodes, new_node, new_workflow, start_node};
use super::super::{TestHooks, at, create_user, new_delivery, new_repository};
use super::{
    HOUR, RetentionHooks, WORKFLOW_TABLES, claim_exact, fill_running_job, job_rows, rows_of,
};
use crate::{
    DeliveryWorkflow, JobId, JobResult, JobStatus, NewCommitStatus, WorkflowId, WorkflowState,
};

/// A workflow started by a hook delivery, with a secret, a commit status, a run node (job
/// with output, artifact, blobs) and an applied trigger, finished at `finished_at`.
async fn finished_workflow<S: TestHooks>(
    store: &S,
    owner: UserId,
    name: &str,
    finished_at: voidrunner_domain::Timestamp,
) -> (WorkflowId, JobId) {
    // Started by a hook delivery with a commit status to report, as a git event does.
    let repo = store
        .create_repository(
            new_repository(owner, &format!("acme/{name}")),
            vec![1],
            BTreeMap::new(),
        )
        .await
        .expect("repo");
    let wf = new_workflow(owner, name, crate::now());
    let status = NewCommitStatus {
        workflow_id: wf.id,
        repository_id: repo.id,
        sha: "abc123".into(),
        context: "voidrunner/ci".into(),
    };
    let started = DeliveryWorkflow {
        workflow: wf,
        nodes: fan_nodes(),
        sealed_secrets: BTreeMap::from([("DEPLOY".to_owned(), vec![4, 2])]),
    };
    let wf = started.workflow.clone();
    store
        .record_delivery_with_statuses(new_delivery(repo.id, name), vec![started], vec![status])
        .await
        .expect("delivery");
    let job = start_node(store, wf.id, owner, "prepare").await;
    store
        .put_job_blob(job, "source.tar", b"tarball", crate::now())
        .await
        .expect("tarball");
    let lease = claim_exact(store, job).await;
    fill_running_job(store, &lease).await;
    let added = vec![new_node("lint", "lint", &["prepare"])];
    store
        .add_workflow_nodes(wf.id, job, "op-1", added, crate::now())
        .await
        .expect("trigger");
    let result = JobResult {
        status: JobStatus::Succeeded,
        steps: Vec::new(),
        failures: Vec::new(),
        outputs: BTreeMap::new(),
        finished_at,
    };
    store.complete_job(&lease, result).await.expect("complete");
    let done = store
        .finish_workflow(
            wf.id,
            WorkflowState::Succeeded,
            BTreeMap::new(),
            None,
            finished_at,
        )
        .await
        .expect("finish");
    assert!(done, "finished");
    (wf.id, job)
}

/// Old finished workflows go with their nodes, secrets, triggers and jobs (and what those
/// jobs own); recent and running workflows, and a finished one whose job still runs, stay.
pub async fn retention_purges_finished_workflows_with_jobs<S: RetentionHooks>(store: &S) {
    let a = create_user(store, "retention-wf@example.com").await;
    let now = crate::now();
    let (old, old_job) = finished_workflow(store, a.id, "old", at(now, -3 * HOUR)).await;
    let (recent, _) = finished_workflow(store, a.id, "recent", now).await;
    let wf_rows =
        |id: WorkflowId| async move { rows_of(store, &WORKFLOW_TABLES, &id.to_string()).await };
    for (table, n) in wf_rows(old)
        .await
        .into_iter()
        .chain(job_rows(store, old_job).await)
    {
        // A workflow's job reads the workflow's secrets: it has none of its own.
        assert!(
            n > 0 || table == "job_secrets.job_id",
            "the fixture fills {table}"
        );
    }
    // Running for hours: never deleted.
    let running = store
        .create_workflow(
            new_workflow(a.id, "running", at(now, -5 * HOUR)),
            fan_nodes(),
            BTreeMap::new(),
        )
        .await
        .expect("workflow");
    // Cancelled long ago, but its job is still running.
    let lingering = store
        .create_workflow(
            new_workflow(a.id, "lingering", now),
            fan_nodes(),
            BTreeMap::new(),
        )
        .await
        .expect("workflow");
    let lingering_job = start_node(store, lingering.id, a.id, "prepare").await;
    claim_exact(store, lingering_job).await;
    let cancelled = store
        .finish_workflow(
            lingering.id,
            WorkflowState::Cancelled,
            BTreeMap::new(),
            None,
            at(now, -3 * HOUR),
        )
        .await
        .expect("finish");
    assert!(cancelled, "cancelled");
    let kept = [recent, running.id, lingering.id];
    let mut before = Vec::new();
    for id in kept {
        before.push(wf_rows(id).await);
    }

    let cutoff = at(now, -HOUR);
    assert_eq!(
        store.purge_jobs(cutoff, 10).await.expect("jobs"),
        0,
        "workflow jobs stay"
    );
    assert_eq!(store.purge_workflows(cutoff, 10).await.expect("purge"), 1);
    assert_eq!(
        store.purge_workflows(cutoff, 10).await.expect("purge"),
        0,
        "idempotent"
    );
    let gone = wf_rows(old).await;
    assert!(gone.values().all(|n| *n == 0), "{gone:?}");
    let gone = job_rows(store, old_job).await;
    assert!(gone.values().all(|n| *n == 0), "{gone:?}");
    let mut after = Vec::new();
    for id in kept {
        after.push(wf_rows(id).await);
    }
    assert_eq!(after, before, "the rest is kept");
}

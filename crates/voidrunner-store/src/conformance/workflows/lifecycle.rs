//! Workflows after the start: cancel requests, the final status and re-runs.

use std::collections::BTreeMap;

use super::{failure, fan_nodes, new_workflow, nodes_by_name, run_job, start_node};
use crate::conformance::{TestHooks, create_user};
use crate::{JobStatus, NodeStatus, Scope, StoreError, WorkflowState};

/// A cancel request skips every pending node in the same write, keeps the first time and
/// error, and is refused once the workflow finished or out of scope; started nodes keep
/// their job (the scheduler cancels it).
pub async fn workflow_cancel_skips_pending_nodes<S: TestHooks>(store: &S) {
    let a = create_user(store, "wf-cancel@example.com").await;
    let b = create_user(store, "wf-cancel-b@example.com").await;
    let wf = store
        .create_workflow(
            new_workflow(a.id, "cancel", crate::now()),
            fan_nodes(),
            BTreeMap::new(),
        )
        .await
        .expect("create");
    let job = start_node(store, wf.id, a.id, "prepare").await;
    let hidden = store
        .request_workflow_cancel(Scope::Owner(b.id), wf.id, None, crate::now())
        .await;
    assert!(matches!(hidden, Err(StoreError::NotFound)), "{hidden:?}");
    let first = crate::now();
    let c = store
        .request_workflow_cancel(
            Scope::Owner(a.id),
            wf.id,
            Some("outputs conflict".into()),
            first,
        )
        .await
        .expect("cancel");
    assert_eq!(
        (c.status, c.cancel_requested_at),
        (WorkflowState::Running, Some(first))
    );
    assert_eq!(c.error.as_deref(), Some("outputs conflict"));
    let n = nodes_by_name(store, wf.id).await;
    assert_eq!(
        (n["prepare"].status, n["prepare"].job_id),
        (NodeStatus::Queued, Some(job))
    );
    for name in ["build[0]", "build[1]", "publish"] {
        assert_eq!(n[name].status, NodeStatus::Skipped);
        assert_eq!(n[name].reason.as_deref(), Some("workflow cancelled"));
        assert_eq!(n[name].finished_at, Some(first));
    }
    let second = store
        .request_workflow_cancel(Scope::All, wf.id, None, super::super::at(first, 5_000_000))
        .await
        .expect("cancel again");
    assert_eq!(second.cancel_requested_at, Some(first));
    assert_eq!(second.error.as_deref(), Some("outputs conflict"));
    store
        .request_job_cancel(Scope::All, job, crate::now())
        .await
        .expect("cancel job");
    let done_at = crate::now();
    assert!(
        store
            .finish_workflow(wf.id, WorkflowState::Failed, BTreeMap::new(), None, done_at)
            .await
            .expect("finish")
    );
    let f = store.get_workflow(Scope::All, wf.id).await.expect("get");
    assert_eq!(
        (f.status, f.finished_at),
        (WorkflowState::Failed, Some(done_at))
    );
    assert_eq!(
        f.error.as_deref(),
        Some("outputs conflict"),
        "finish keeps the stored error"
    );
    let late = store
        .request_workflow_cancel(Scope::All, wf.id, None, crate::now())
        .await;
    assert!(matches!(late, Err(StoreError::Conflict(_))), "{late:?}");
    let ghost = store
        .request_workflow_cancel(Scope::All, crate::WorkflowId::new(), None, crate::now())
        .await;
    assert!(matches!(ghost, Err(StoreError::NotFound)), "{ghost:?}");
}

/// The final status is written once, only from `running`; outputs and error are recorded;
/// a finished workflow leaves the scheduler's sweep.
pub async fn workflow_finish_only_from_running<S: TestHooks>(store: &S) {
    let a = create_user(store, "wf-finish@example.com").await;
    let wf = store
        .create_workflow(
            new_workflow(a.id, "fin", crate::now()),
            Vec::new(),
            BTreeMap::new(),
        )
        .await
        .expect("create");
    assert_eq!(store.running_workflows(10).await.expect("sweep"), [wf.id]);
    let bad = store
        .finish_workflow(
            wf.id,
            WorkflowState::Running,
            BTreeMap::new(),
            None,
            crate::now(),
        )
        .await;
    assert!(matches!(bad, Err(StoreError::Conflict(_))), "{bad:?}");
    let outputs = BTreeMap::from([("build.version".to_owned(), "2".to_owned())]);
    let at = crate::now();
    assert!(
        store
            .finish_workflow(wf.id, WorkflowState::Succeeded, outputs.clone(), None, at)
            .await
            .expect("finish")
    );
    assert!(
        !store
            .finish_workflow(
                wf.id,
                WorkflowState::Failed,
                BTreeMap::new(),
                Some("x".into()),
                crate::now()
            )
            .await
            .expect("finish twice")
    );
    let f = store.get_workflow(Scope::All, wf.id).await.expect("get");
    assert_eq!(
        (f.status, f.outputs, f.error, f.finished_at),
        (WorkflowState::Succeeded, outputs, None, Some(at))
    );
    assert!(store.running_workflows(10).await.expect("sweep").is_empty());
    let rerun = store.rerun_workflow(Scope::All, wf.id, crate::now()).await;
    assert!(
        matches!(rerun, Err(StoreError::Conflict(_))),
        "succeeded cannot re-run: {rerun:?}"
    );
}

/// A re-run puts failed, timed-out, cancelled and skipped nodes back to `pending` (old job
/// kept in `previous_job_ids`), keeps succeeded nodes and their job, clears the final fields
/// and counts the run; only a failed or cancelled workflow re-runs.
pub async fn workflow_rerun_resets_unsuccessful_nodes<S: TestHooks>(store: &S) {
    let a = create_user(store, "wf-rerun@example.com").await;
    let b = create_user(store, "wf-rerun-b@example.com").await;
    let wf = store
        .create_workflow(
            new_workflow(a.id, "rerun", crate::now()),
            fan_nodes(),
            BTreeMap::new(),
        )
        .await
        .expect("create");
    let running = store.rerun_workflow(Scope::All, wf.id, crate::now()).await;
    assert!(
        matches!(running, Err(StoreError::Conflict(_))),
        "{running:?}"
    );
    let prep = start_node(store, wf.id, a.id, "prepare").await;
    run_job(
        store,
        prep,
        JobStatus::Succeeded,
        Vec::new(),
        BTreeMap::new(),
    )
    .await;
    let b0 = start_node(store, wf.id, a.id, "build[0]").await;
    run_job(
        store,
        b0,
        JobStatus::Failed,
        vec![failure("timeout")],
        BTreeMap::new(),
    )
    .await;
    let b1 = start_node(store, wf.id, a.id, "build[1]").await;
    run_job(store, b1, JobStatus::Succeeded, Vec::new(), BTreeMap::new()).await;
    assert!(
        store
            .skip_workflow_node(wf.id, "publish", "dependency failed", crate::now())
            .await
            .expect("skip")
    );
    let outputs = BTreeMap::from([("k".to_owned(), "v".to_owned())]);
    assert!(
        store
            .finish_workflow(
                wf.id,
                WorkflowState::Failed,
                outputs,
                Some("why".into()),
                crate::now()
            )
            .await
            .expect("finish")
    );
    let hidden = store
        .rerun_workflow(Scope::Owner(b.id), wf.id, crate::now())
        .await;
    assert!(matches!(hidden, Err(StoreError::NotFound)), "{hidden:?}");

    let r = store
        .rerun_workflow(Scope::Owner(a.id), wf.id, crate::now())
        .await
        .expect("rerun");
    assert_eq!((r.status, r.run), (WorkflowState::Running, 2));
    assert!(r.outputs.is_empty() && r.error.is_none() && r.finished_at.is_none());
    assert!(r.cancel_requested_at.is_none());
    assert_eq!(store.get_workflow(Scope::All, wf.id).await.expect("get"), r);
    let n = nodes_by_name(store, wf.id).await;
    assert_eq!(
        (n["prepare"].status, n["prepare"].job_id),
        (NodeStatus::Succeeded, Some(prep))
    );
    assert_eq!(
        (n["build[1]"].status, n["build[1]"].job_id),
        (NodeStatus::Succeeded, Some(b1))
    );
    assert_eq!(
        (n["build[0]"].status, n["build[0]"].job_id),
        (NodeStatus::Pending, None)
    );
    assert_eq!(n["build[0]"].previous_job_ids, [b0]);
    assert!(n["build[0]"].started_at.is_none() && n["build[0]"].finished_at.is_none());
    assert_eq!(
        (n["publish"].status, n["publish"].reason.clone()),
        (NodeStatus::Pending, None)
    );
    assert!(n["publish"].previous_job_ids.is_empty() && n["publish"].finished_at.is_none());
    assert_eq!(store.running_workflows(10).await.expect("sweep"), [wf.id]);

    // Second run: the node fails again, then a cancel; the re-run appends the second job.
    let b0_again = start_node(store, wf.id, a.id, "build[0]").await;
    store
        .request_workflow_cancel(Scope::All, wf.id, None, crate::now())
        .await
        .expect("cancel");
    store
        .request_job_cancel(Scope::All, b0_again, crate::now())
        .await
        .expect("cancel job");
    assert!(
        store
            .finish_workflow(
                wf.id,
                WorkflowState::Cancelled,
                BTreeMap::new(),
                None,
                crate::now()
            )
            .await
            .expect("finish")
    );
    let r = store
        .rerun_workflow(Scope::All, wf.id, crate::now())
        .await
        .expect("rerun 2");
    assert_eq!((r.run, r.cancel_requested_at), (3, None));
    let n = nodes_by_name(store, wf.id).await;
    assert_eq!(n["build[0]"].previous_job_ids, [b0, b0_again]);
    assert_eq!(n["publish"].status, NodeStatus::Pending);
    assert!(
        store
            .start_workflow_node(
                wf.id,
                "build[0]",
                super::node_job(a.id, "b"),
                serde_json::Value::Null
            )
            .await
            .expect("start")
    );
}

//! Starting nodes: the job a start inserts, the node status derived from it, skips, and the
//! compare-and-set that lets exactly one of racing schedulers start a node.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{fan_nodes, new_node, new_workflow, node_job, nodes_by_name, run_job, start_node};
use crate::conformance::{TestHooks, at, create_user, new_job};
use crate::{
    JobCompleteOutcome, JobFailure, JobId, JobLease, JobResult, JobStatus, JobStream, NodeStatus,
    Scope, StepState, StoreError, WorkflowId, WorkflowState,
};

/// Starting a node inserts its job exactly like `create_job` (steps, secrets none, first
/// status event, work signal) plus the workflow link; the node's status, outputs and times
/// come from its job (`failed` by a timeout reads `timed_out`); plain jobs have no link.
pub async fn workflow_node_status_derived_from_job<S: TestHooks>(store: &S) {
    let a = create_user(store, "wf-derive@example.com").await;
    let nodes = vec![
        new_node("ok", "ok", &[]),
        new_node("bad", "bad", &[]),
        new_node("slow", "slow", &[]),
        new_node("stop", "stop", &[]),
        new_node("later", "later", &["ok"]),
        new_node("never", "never", &["bad"]),
    ];
    let wf = store
        .create_workflow(
            new_workflow(a.id, "derive", crate::now()),
            nodes,
            BTreeMap::new(),
        )
        .await
        .expect("create");
    let plain = store
        .create_job(new_job(a.id, "plain", 5, crate::now()), BTreeMap::new())
        .await
        .expect("plain");
    assert_eq!(plain.workflow, None);
    let mut work = store.queue_signals().subscribe_work();
    work.borrow_and_update();

    let ok = node_job(a.id, "ok");
    let ok_id = ok.id;
    let ok_created = ok.created_at;
    let ctx = serde_json::json!({"vars": {"TARGET": "x86_64"}, "trusted": true});
    assert!(
        store
            .start_workflow_node(wf.id, "ok", ok, ctx.clone())
            .await
            .expect("start")
    );
    tokio::time::timeout(std::time::Duration::from_secs(5), work.changed())
        .await
        .expect("work signalled within 5 s")
        .expect("signals open");
    let job = store
        .get_job(Scope::Owner(a.id), ok_id)
        .await
        .expect("node job");
    assert_eq!(job.status, JobStatus::Queued);
    let link = job.workflow.clone().expect("linked");
    assert_eq!(
        (link.workflow_id, link.node.as_str(), &link.context),
        (wf.id, "ok", &ctx)
    );
    let steps = store.job_steps(Scope::All, ok_id).await.expect("steps");
    assert_eq!(steps.len(), 3);
    assert!(steps.iter().all(|s| s.state == StepState::Pending));
    let events = store.read_job_events(ok_id, 0, 10).await.expect("events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].stream, JobStream::Status);
    let listed = store
        .list_jobs(Scope::All, None, None, 10)
        .await
        .expect("jobs");
    assert!(
        listed
            .items
            .iter()
            .any(|j| j.id == ok_id && j.workflow == Some(link.clone()))
    );

    let n = nodes_by_name(store, wf.id).await;
    assert_eq!(
        (n["ok"].status, n["ok"].job_id),
        (NodeStatus::Queued, Some(ok_id))
    );
    assert_eq!(n["ok"].started_at, Some(ok_created));
    assert_eq!(n["ok"].finished_at, None);

    // The plain job was queued first: claim and finish it out of the way.
    let now = crate::now();
    let first = store
        .claim_next_job("w", at(now, 30_000_000), now, None)
        .await
        .expect("claim")
        .expect("job");
    assert_eq!(first.id, plain.id);
    assert_eq!(first.workflow, None);
    let claimed = store
        .claim_next_job("w", at(now, 30_000_000), now, None)
        .await
        .expect("claim")
        .expect("job");
    assert_eq!((claimed.id, claimed.workflow.clone()), (ok_id, Some(link)));
    assert_eq!(
        nodes_by_name(store, wf.id).await["ok"].status,
        NodeStatus::Running
    );
    let outputs = BTreeMap::from([("version".to_owned(), "1.0".to_owned())]);
    let result = JobResult {
        status: JobStatus::Succeeded,
        steps: Vec::new(),
        failures: Vec::new(),
        outputs: outputs.clone(),
        finished_at: crate::now(),
    };
    let done = match store
        .complete_job(&JobLease::of(&claimed).expect("lease"), result)
        .await
        .expect("complete")
    {
        JobCompleteOutcome::Completed(j) => *j,
        JobCompleteOutcome::LeaseLost => panic!("lease lost"),
    };

    let bad = start_node(store, wf.id, a.id, "bad").await;
    run_job(
        store,
        bad,
        JobStatus::Failed,
        vec![failure("post_execution")],
        BTreeMap::new(),
    )
    .await;
    let slow = start_node(store, wf.id, a.id, "slow").await;
    run_job(
        store,
        slow,
        JobStatus::Failed,
        vec![failure("timeout")],
        BTreeMap::new(),
    )
    .await;
    let stop = start_node(store, wf.id, a.id, "stop").await;
    store
        .request_job_cancel(Scope::All, stop, crate::now())
        .await
        .expect("cancel job");
    let skip_at = at(crate::now(), 1);
    assert!(
        store
            .skip_workflow_node(wf.id, "never", "dependency bad failed", skip_at)
            .await
            .expect("skip")
    );
    assert!(
        !store
            .skip_workflow_node(wf.id, "never", "again", skip_at)
            .await
            .expect("skip twice")
    );
    assert!(
        !store
            .skip_workflow_node(wf.id, "ok", "started", skip_at)
            .await
            .expect("skip started")
    );

    let n = nodes_by_name(store, wf.id).await;
    assert_eq!(n["ok"].status, NodeStatus::Succeeded);
    assert_eq!(n["ok"].outputs, outputs);
    assert_eq!(n["ok"].finished_at, done.finished_at);
    assert_eq!(n["bad"].status, NodeStatus::Failed);
    assert_eq!(n["slow"].status, NodeStatus::TimedOut);
    assert_eq!(n["stop"].status, NodeStatus::Cancelled);
    assert_eq!(n["later"].status, NodeStatus::Pending);
    assert_eq!(n["never"].status, NodeStatus::Skipped);
    assert_eq!(n["never"].reason.as_deref(), Some("dependency bad failed"));
    assert_eq!(
        (n["never"].finished_at, n["never"].job_id),
        (Some(skip_at), None)
    );
    assert!(
        n.values()
            .all(|x| x.status.is_terminal() == (x.name != "later"))
    );
}

/// A failure of `phase`.
pub fn failure(phase: &str) -> JobFailure {
    JobFailure {
        phase: phase.to_owned(),
        reason: format!("{phase} went wrong"),
    }
}

/// A node starts once: a started or skipped node, a cancel request or a finished workflow
/// answer `false` and write nothing; an unknown node is `NotFound`; another owner's job is a
/// conflict.
pub async fn workflow_start_is_compare_and_set<S: TestHooks>(store: &S) {
    let a = create_user(store, "wf-cas@example.com").await;
    let b = create_user(store, "wf-cas-b@example.com").await;
    let wf = store
        .create_workflow(
            new_workflow(a.id, "cas", crate::now()),
            fan_nodes(),
            BTreeMap::new(),
        )
        .await
        .expect("create");
    let unknown = store
        .start_workflow_node(
            wf.id,
            "nope",
            node_job(a.id, "nope"),
            serde_json::Value::Null,
        )
        .await;
    assert!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");
    let ghost = store
        .start_workflow_node(
            WorkflowId::new(),
            "prepare",
            node_job(a.id, "x"),
            serde_json::Value::Null,
        )
        .await;
    assert!(matches!(ghost, Err(StoreError::NotFound)), "{ghost:?}");
    let foreign = store
        .start_workflow_node(
            wf.id,
            "prepare",
            node_job(b.id, "prepare"),
            serde_json::Value::Null,
        )
        .await;
    assert!(
        matches!(foreign, Err(StoreError::Conflict(_))),
        "{foreign:?}"
    );
    let first = start_node(store, wf.id, a.id, "prepare").await;
    let again = node_job(a.id, "prepare");
    let again_id = again.id;
    assert!(
        !store
            .start_workflow_node(wf.id, "prepare", again, serde_json::Value::Null)
            .await
            .expect("again")
    );
    assert!(
        store
            .skip_workflow_node(wf.id, "build[0]", "no", crate::now())
            .await
            .expect("skip")
    );
    let skipped = node_job(a.id, "build[0]");
    let skipped_id = skipped.id;
    assert!(
        !store
            .start_workflow_node(wf.id, "build[0]", skipped, serde_json::Value::Null)
            .await
            .expect("skipped")
    );
    store
        .request_workflow_cancel(Scope::All, wf.id, None, crate::now())
        .await
        .expect("cancel");
    let wf2 = store
        .create_workflow(
            new_workflow(a.id, "done", crate::now()),
            fan_nodes(),
            BTreeMap::new(),
        )
        .await
        .expect("create 2");
    assert!(
        store
            .finish_workflow(
                wf2.id,
                WorkflowState::Skipped,
                BTreeMap::new(),
                None,
                crate::now()
            )
            .await
            .expect("finish")
    );
    let late = node_job(a.id, "prepare");
    let late_id = late.id;
    assert!(
        !store
            .start_workflow_node(wf2.id, "prepare", late, serde_json::Value::Null)
            .await
            .expect("finished")
    );
    for id in [again_id, skipped_id, late_id] {
        assert!(
            matches!(
                store.get_job(Scope::All, id).await,
                Err(StoreError::NotFound)
            ),
            "no job written"
        );
    }
    let jobs = store
        .list_jobs(Scope::All, None, None, 10)
        .await
        .expect("jobs");
    assert_eq!(jobs.items.iter().map(|j| j.id).collect::<Vec<_>>(), [first]);
    assert_eq!(
        nodes_by_name(store, wf2.id).await["prepare"].status,
        NodeStatus::Pending
    );
}

/// Two schedulers start the same node at once: exactly one wins and exactly one job exists.
pub async fn workflow_start_race_one_winner<S: TestHooks>(store: &S) {
    let a = create_user(store, "wf-race@example.com").await;
    for round in 0..5 {
        let wf = store
            .create_workflow(
                new_workflow(a.id, &format!("race{round}"), crate::now()),
                fan_nodes(),
                BTreeMap::new(),
            )
            .await
            .expect("create");
        let gate = Arc::new(tokio::sync::Barrier::new(2));
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let s = store.clone();
                let job = node_job(a.id, "prepare");
                let gate = Arc::clone(&gate);
                tokio::spawn(async move {
                    gate.wait().await;
                    s.start_workflow_node(wf.id, "prepare", job, serde_json::Value::Null)
                        .await
                })
            })
            .collect();
        let mut wins = 0;
        for t in tasks {
            if t.await.expect("join").expect("start") {
                wins += 1;
            }
        }
        assert_eq!(wins, 1, "round {round}: exactly one start wins");
        let jobs = store
            .list_jobs(Scope::All, None, None, 100)
            .await
            .expect("jobs");
        let of_wf = jobs
            .items
            .iter()
            .filter(|j| j.workflow.as_ref().is_some_and(|l| l.workflow_id == wf.id));
        let ids: Vec<JobId> = of_wf.map(|j| j.id).collect();
        assert_eq!(ids.len(), 1, "round {round}: one job");
        assert_eq!(
            nodes_by_name(store, wf.id).await["prepare"].job_id,
            Some(ids[0])
        );
    }
}

//! Workflows: creation and scope, the node status derived from its job, the compare-and-set
//! start (and its race), skips, triggers, cancel, finish and re-run (the last ones in
//! `workflows/lifecycle.rs`).

mod lifecycle;

use std::collections::BTreeMap;

use voidrunner_domain::{Timestamp, UserId};

use super::{TestHooks, at, create_user};
use crate::conformance::new_job;
use crate::{
    Job, JobCompleteOutcome, JobFailure, JobId, JobLease, JobResult, JobStatus, JobStream, NewJob,
    NewWorkflow, NewWorkflowNode, NodeStatus, Scope, StepState, StoreError, WorkflowId,
    WorkflowNode, WorkflowState,
};
pub use lifecycle::*;

/// A workflow of `owner` named `name` (no nodes: pass them to `create_workflow`).
pub fn new_workflow(owner: UserId, name: &str, created_at: Timestamp) -> NewWorkflow {
    NewWorkflow {
        id: WorkflowId::new(),
        owner_id: owner,
        name: name.to_owned(),
        definition: serde_json::json!({"name": name, "jobs": {"a": {}, "b": {}}}),
        vars: BTreeMap::from([("TARGET".to_owned(), "x86_64".to_owned())]),
        trusted: true,
        files: BTreeMap::from([("jobs/a.yaml".to_owned(), "name: a\n".to_owned())]),
        origin: serde_json::json!({"kind": "api"}),
        request_id: Some("req-wf".into()),
        created_at,
    }
}

/// A node named `name` of group `group` depending on `deps`.
pub fn new_node(name: &str, group: &str, deps: &[&str]) -> NewWorkflowNode {
    NewWorkflowNode {
        name: name.to_owned(),
        group: group.to_owned(),
        definition: serde_json::json!({"name": name, "steps": [{"name": "run", "command": "true"}]}),
        depends_on: deps.iter().map(|d| (*d).to_owned()).collect(),
        condition: "all_success".to_owned(),
        parent_job_id: None,
    }
}

/// `prepare → build[0], build[1] → publish`.
pub fn fan_nodes() -> Vec<NewWorkflowNode> {
    vec![
        new_node("prepare", "prepare", &[]),
        new_node("build[0]", "build", &["prepare"]),
        new_node("build[1]", "build", &["prepare"]),
        new_node("publish", "publish", &["build[0]", "build[1]"]),
    ]
}

/// A job for node `node` of a workflow owned by `owner`.
pub fn node_job(owner: UserId, node: &str) -> NewJob {
    new_job(owner, node, 5, crate::now())
}

/// Starts `node` with a fresh job (panics unless it started); returns the job id.
pub async fn start_node<S: TestHooks>(
    store: &S,
    wf: WorkflowId,
    owner: UserId,
    node: &str,
) -> JobId {
    let job = node_job(owner, node);
    let id = job.id;
    let started = store
        .start_workflow_node(wf, node, job, serde_json::json!({"node": node}))
        .await
        .expect("start node");
    assert!(started, "{node} started");
    id
}

/// Claims the next job (it must be `id`) and completes it with `status`, `failures` and
/// `outputs`; returns the final job.
pub async fn run_job<S: TestHooks>(
    store: &S,
    id: JobId,
    status: JobStatus,
    failures: Vec<JobFailure>,
    outputs: BTreeMap<String, String>,
) -> Job {
    let now = crate::now();
    let job = store
        .claim_next_job("wf-worker", at(now, 30_000_000), now)
        .await
        .expect("claim")
        .expect("a queued job");
    assert_eq!(job.id, id, "the claimed job is the node's");
    let lease = JobLease::of(&job).expect("lease");
    let result = JobResult {
        status,
        steps: Vec::new(),
        failures,
        outputs,
        finished_at: crate::now(),
    };
    match store.complete_job(&lease, result).await.expect("complete") {
        JobCompleteOutcome::Completed(j) => *j,
        JobCompleteOutcome::LeaseLost => panic!("lease lost"),
    }
}

/// The nodes of `wf` by name.
pub async fn nodes_by_name<S: TestHooks>(
    store: &S,
    wf: WorkflowId,
) -> BTreeMap<String, WorkflowNode> {
    store
        .workflow_nodes(Scope::All, wf)
        .await
        .expect("nodes")
        .into_iter()
        .map(|n| (n.name.clone(), n))
        .collect()
}

/// Everything given at creation reads back; nodes start `pending` in order; secrets stay
/// sealed; scope hides other owners' workflows; duplicates and unknown owners conflict.
pub async fn workflow_round_trip_and_scope<S: TestHooks>(store: &S) {
    let a = create_user(store, "wf-a@example.com").await;
    let b = create_user(store, "wf-b@example.com").await;
    let new = new_workflow(a.id, "ci", crate::now());
    let secrets = BTreeMap::from([("TOKEN".to_owned(), vec![7, 8, 9])]);
    let wf = store
        .create_workflow(new.clone(), fan_nodes(), secrets.clone())
        .await
        .expect("create");
    assert_eq!((wf.id, wf.owner_id, wf.name.as_str()), (new.id, a.id, "ci"));
    assert_eq!(wf.definition, new.definition);
    assert_eq!(
        (&wf.vars, &wf.files, &wf.origin),
        (&new.vars, &new.files, &new.origin)
    );
    assert!(wf.trusted);
    assert_eq!((wf.status, wf.run), (WorkflowState::Running, 1));
    assert!(wf.outputs.is_empty() && wf.error.is_none() && wf.finished_at.is_none());
    assert_eq!(wf.cancel_requested_at, None);
    assert_eq!(wf.request_id.as_deref(), Some("req-wf"));
    assert_eq!(wf.created_at, new.created_at);
    assert_eq!(
        store.get_workflow(Scope::All, wf.id).await.expect("get"),
        wf
    );
    assert_eq!(
        store
            .get_workflow(Scope::Owner(a.id), wf.id)
            .await
            .expect("own"),
        wf
    );
    let nodes = store
        .workflow_nodes(Scope::Owner(a.id), wf.id)
        .await
        .expect("nodes");
    let want = fan_nodes();
    assert_eq!(nodes.len(), want.len());
    for (i, (n, w)) in nodes.iter().zip(&want).enumerate() {
        assert_eq!(n.idx as usize, i);
        assert_eq!(
            (&n.name, &n.group, &n.definition),
            (&w.name, &w.group, &w.definition)
        );
        assert_eq!((&n.depends_on, &n.condition), (&w.depends_on, &w.condition));
        assert_eq!(n.status, NodeStatus::Pending);
        assert!(n.job_id.is_none() && n.previous_job_ids.is_empty() && n.parent_job_id.is_none());
        assert!(n.outputs.is_empty() && n.started_at.is_none() && n.finished_at.is_none());
    }
    assert_eq!(
        store.workflow_secrets(wf.id).await.expect("secrets"),
        secrets
    );
    let hidden = Scope::Owner(b.id);
    assert!(matches!(
        store.get_workflow(hidden, wf.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.workflow_nodes(hidden, wf.id).await,
        Err(StoreError::NotFound)
    ));
    let page = store
        .list_workflows(hidden, None, None, 10)
        .await
        .expect("list b");
    assert!(page.items.is_empty());
    let page = store
        .list_workflows(Scope::Owner(a.id), None, None, 10)
        .await
        .expect("list a");
    assert_eq!(page.items, vec![wf.clone()]);

    let again = store
        .create_workflow(new.clone(), Vec::new(), BTreeMap::new())
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let dup = vec![new_node("x", "x", &[]), new_node("x", "x", &[])];
    let twice = store
        .create_workflow(
            new_workflow(a.id, "dup", crate::now()),
            dup,
            BTreeMap::new(),
        )
        .await;
    assert!(
        matches!(&twice, Err(StoreError::Conflict(m)) if m.contains("\"x\"")),
        "{twice:?}"
    );
    let ghost = store
        .create_workflow(
            new_workflow(UserId::new(), "ghost", crate::now()),
            fan_nodes(),
            BTreeMap::new(),
        )
        .await;
    assert!(matches!(ghost, Err(StoreError::Conflict(_))), "{ghost:?}");
    let all = store
        .list_workflows(Scope::All, None, None, 10)
        .await
        .expect("list");
    assert_eq!(all.items.len(), 1, "failed creations wrote nothing");
}

/// Listing: newest first, keyset pages without gaps, status filter.
pub async fn workflow_listing_pages_and_filters<S: TestHooks>(store: &S) {
    let a = create_user(store, "wf-list@example.com").await;
    let base = crate::now();
    let mut ids = Vec::new();
    for i in 0..5 {
        let wf = store
            .create_workflow(
                new_workflow(a.id, &format!("w{i}"), at(base, i)),
                Vec::new(),
                BTreeMap::new(),
            )
            .await
            .expect("create");
        ids.push(wf.id);
    }
    store
        .finish_workflow(
            ids[1],
            WorkflowState::Succeeded,
            BTreeMap::new(),
            None,
            crate::now(),
        )
        .await
        .expect("finish");
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_workflows(Scope::All, None, after, 2)
            .await
            .expect("page");
        seen.extend(page.items.iter().map(|w| w.id));
        match page.next {
            Some(c) => after = Some(c),
            None => break,
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);
    let done = store
        .list_workflows(Scope::All, Some(WorkflowState::Succeeded), None, 10)
        .await
        .expect("filter");
    assert_eq!(
        done.items.iter().map(|w| w.id).collect::<Vec<_>>(),
        [ids[1]]
    );
    assert_eq!(
        store.running_workflows(10).await.expect("sweep"),
        [ids[0], ids[2], ids[3], ids[4]]
    );
    assert_eq!(
        store.running_workflows(2).await.expect("sweep"),
        [ids[0], ids[2]]
    );
}

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
        .claim_next_job("w", at(now, 30_000_000), now)
        .await
        .expect("claim")
        .expect("job");
    assert_eq!(first.id, plain.id);
    assert_eq!(first.workflow, None);
    let claimed = store
        .claim_next_job("w", at(now, 30_000_000), now)
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
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let s = store.clone();
                let job = node_job(a.id, "prepare");
                tokio::spawn(async move {
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

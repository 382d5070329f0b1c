//! Workflows: fixtures, creation, scope and listing here; the node status derived from its
//! job, the compare-and-set start and its race in `workflows/start.rs`; triggers in
//! `workflows/triggers.rs`; cancel, finish and re-run in `workflows/lifecycle.rs`.

mod lifecycle;
mod start;
mod triggers;

use std::collections::BTreeMap;

use voidrunner_domain::{Timestamp, UserId};

use super::{TestHooks, at, create_user};
use crate::conformance::new_job;
use crate::{
    Job, JobCompleteOutcome, JobFailure, JobId, JobLease, JobResult, JobStatus, NewJob,
    NewWorkflow, NewWorkflowNode, NodeStatus, Scope, StoreError, WorkflowId, WorkflowNode,
    WorkflowState,
};
pub use lifecycle::*;
pub use start::*;
pub use triggers::*;

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
        .claim_next_job("wf-worker", at(now, 30_000_000), now, None)
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

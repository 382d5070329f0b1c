//! Triggered nodes (follow-up jobs from inside a job): added after the existing nodes,
//! idempotent by `(workflow, parent job, operation id)`, also when replays race.

use std::collections::BTreeMap;

use super::{fan_nodes, new_node, new_workflow, start_node};
use crate::conformance::{TestHooks, create_user};
use crate::{JobId, NodeStatus, Scope, StoreError, TriggerOutcome};

/// Triggered nodes: added after the existing ones with their parent; a replay of the same
/// operation answers the first names and adds nothing; a taken name, an unknown dependency,
/// a foreign parent or a workflow that is not running is a conflict that adds nothing.
pub async fn workflow_triggers_are_idempotent<S: TestHooks>(store: &S) {
    let a = create_user(store, "wf-trigger@example.com").await;
    let wf = store
        .create_workflow(
            new_workflow(a.id, "trig", crate::now()),
            fan_nodes(),
            BTreeMap::new(),
        )
        .await
        .expect("create");
    let parent = start_node(store, wf.id, a.id, "prepare").await;
    let batch = vec![
        new_node("lint", "lint", &["prepare"]),
        new_node("docs", "docs", &["lint"]),
    ];
    let added = store
        .add_workflow_nodes(wf.id, parent, "op-1", batch.clone(), crate::now())
        .await
        .expect("add");
    assert_eq!(
        added,
        TriggerOutcome::Added(vec!["lint".into(), "docs".into()])
    );
    let replay = vec![new_node("other", "other", &[])];
    let again = store
        .add_workflow_nodes(wf.id, parent, "op-1", replay, crate::now())
        .await
        .expect("replay");
    assert_eq!(
        again,
        TriggerOutcome::Duplicate(vec!["lint".into(), "docs".into()])
    );
    let n = store
        .workflow_nodes(Scope::All, wf.id)
        .await
        .expect("nodes");
    let names: Vec<(u32, &str)> = n.iter().map(|x| (x.idx, x.name.as_str())).collect();
    assert_eq!(
        names,
        [
            (0, "prepare"),
            (1, "build[0]"),
            (2, "build[1]"),
            (3, "publish"),
            (4, "lint"),
            (5, "docs")
        ]
    );
    assert_eq!(n[4].parent_job_id, Some(parent));
    assert_eq!(
        (n[4].status, &n[5].depends_on),
        (NodeStatus::Pending, &vec!["lint".to_owned()])
    );

    let taken = store
        .add_workflow_nodes(
            wf.id,
            parent,
            "op-2",
            vec![new_node("publish", "p", &[])],
            crate::now(),
        )
        .await;
    assert!(
        matches!(&taken, Err(StoreError::Conflict(m)) if m.contains("publish")),
        "{taken:?}"
    );
    let unknown = vec![
        new_node("ok", "ok", &[]),
        new_node("deploy", "deploy", &["missing"]),
    ];
    let unknown = store
        .add_workflow_nodes(wf.id, parent, "op-3", unknown, crate::now())
        .await;
    assert!(
        matches!(&unknown, Err(StoreError::Conflict(m)) if m.contains("deploy")),
        "{unknown:?}"
    );
    let twice = vec![new_node("t", "t", &[]), new_node("t", "t", &[])];
    let twice = store
        .add_workflow_nodes(wf.id, parent, "op-4", twice, crate::now())
        .await;
    assert!(
        matches!(&twice, Err(StoreError::Conflict(m)) if m.contains("\"t\"")),
        "{twice:?}"
    );
    let foreign = store
        .add_workflow_nodes(
            wf.id,
            JobId::new(),
            "op-5",
            vec![new_node("f", "f", &[])],
            crate::now(),
        )
        .await;
    assert!(
        matches!(foreign, Err(StoreError::Conflict(_))),
        "{foreign:?}"
    );
    // A failed operation id is not burnt: it can be applied once corrected.
    let fixed = store
        .add_workflow_nodes(
            wf.id,
            parent,
            "op-3",
            vec![new_node("deploy", "deploy", &["docs"])],
            crate::now(),
        )
        .await
        .expect("corrected");
    assert_eq!(fixed, TriggerOutcome::Added(vec!["deploy".into()]));
    assert_eq!(
        store
            .workflow_nodes(Scope::All, wf.id)
            .await
            .expect("nodes")
            .len(),
        7
    );

    store
        .request_workflow_cancel(Scope::All, wf.id, None, crate::now())
        .await
        .expect("cancel");
    let late = store
        .add_workflow_nodes(
            wf.id,
            parent,
            "op-6",
            vec![new_node("late", "late", &[])],
            crate::now(),
        )
        .await;
    assert!(matches!(late, Err(StoreError::Conflict(_))), "{late:?}");
    let replay_after = store
        .add_workflow_nodes(wf.id, parent, "op-1", Vec::new(), crate::now())
        .await
        .expect("replay after cancel");
    assert!(matches!(replay_after, TriggerOutcome::Duplicate(_)));
    let missing = store
        .add_workflow_nodes(
            crate::WorkflowId::new(),
            parent,
            "op-7",
            Vec::new(),
            crate::now(),
        )
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
}

/// The same trigger sent twice at once (a retried socket call): one adds the nodes, the
/// other answers the same names, and the nodes exist once.
pub async fn concurrent_trigger_replays_add_once<S: TestHooks>(store: &S) {
    let a = create_user(store, "wf-trigger-race@example.com").await;
    let wf = store
        .create_workflow(
            new_workflow(a.id, "trace", crate::now()),
            fan_nodes(),
            BTreeMap::new(),
        )
        .await
        .expect("create");
    let parent = start_node(store, wf.id, a.id, "prepare").await;
    for round in 0..5 {
        let op = format!("op-{round}");
        let name = format!("follow[{round}]");
        let gate = std::sync::Arc::new(tokio::sync::Barrier::new(2));
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let s = store.clone();
                let (op, gate) = (op.clone(), std::sync::Arc::clone(&gate));
                let nodes = vec![new_node(&name, "follow", &["prepare"])];
                tokio::spawn(async move {
                    gate.wait().await;
                    s.add_workflow_nodes(wf.id, parent, &op, nodes, crate::now())
                        .await
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for t in tasks {
            outcomes.push(t.await.expect("join").expect("trigger"));
        }
        let names = vec![name.clone()];
        assert!(
            outcomes.contains(&TriggerOutcome::Added(names.clone())),
            "round {round}"
        );
        assert!(
            outcomes.contains(&TriggerOutcome::Duplicate(names)),
            "round {round}"
        );
    }
    let nodes = store
        .workflow_nodes(Scope::All, wf.id)
        .await
        .expect("nodes");
    assert_eq!(nodes.len(), 4 + 5, "each trigger added its node once");
    let idx: Vec<u32> = nodes.iter().map(|n| n.idx).collect();
    assert_eq!(idx, (0..9).collect::<Vec<u32>>());
}

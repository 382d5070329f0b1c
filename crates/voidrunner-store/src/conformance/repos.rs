//! Registered repositories (scope, unscoped lookup by the hook, secrets patch) and hook
//! deliveries (a delivery creates its workflows at most once, even when two arrive at once).

use std::collections::BTreeMap;

use voidrunner_domain::UserId;

use super::workflows::{fan_nodes, new_workflow};
use super::{TestHooks, create_user};
use crate::{
    DeliveryOutcome, DeliveryWorkflow, NewDelivery, NewRepository, NodeStatus, RepositoryId, Scope,
    StoreError, WorkflowId,
};

/// A GitHub repository `full_name` of `owner`.
pub fn new_repository(owner: UserId, full_name: &str) -> NewRepository {
    NewRepository {
        id: RepositoryId::new(),
        owner_id: owner,
        provider: "github".to_owned(),
        full_name: full_name.to_owned(),
        clone_url: format!("file:///srv/git/{full_name}.git"),
        ci_dir: ".voidrunner".to_owned(),
        fork_secrets: false,
        status_reporting: serde_json::Value::Null,
        created_at: crate::now(),
    }
}

/// A delivery `id` for `repo`.
pub fn new_delivery(repo: RepositoryId, id: &str) -> NewDelivery {
    NewDelivery {
        provider: "github".to_owned(),
        delivery_id: id.to_owned(),
        body_sha256: format!("body-of-{id}"),
        repository_id: repo,
        event: "push".to_owned(),
        summary: serde_json::json!({"ref": "refs/heads/main", "matched": ["ci"]}),
        received_at: crate::now(),
    }
}

/// A workflow of `owner` started by a delivery, with one secret.
pub fn delivery_workflow(owner: UserId, name: &str) -> DeliveryWorkflow {
    DeliveryWorkflow {
        workflow: new_workflow(owner, name, crate::now()),
        nodes: fan_nodes(),
        sealed_secrets: BTreeMap::from([("DEPLOY".to_owned(), vec![4, 2])]),
    }
}

/// Round trip, listing without sealed values, the hook's unscoped lookup with the webhook
/// secret, scope (out of scope is `NotFound`), uniqueness by `(provider, full_name)`, delete.
pub async fn repository_round_trip_and_scope<S: TestHooks>(store: &S) {
    let a = create_user(store, "repo-a@example.com").await;
    let b = create_user(store, "repo-b@example.com").await;
    let new = new_repository(a.id, "acme/widgets");
    let secrets = BTreeMap::from([("B".to_owned(), vec![2]), ("A".to_owned(), vec![1])]);
    let repo = store
        .create_repository(new.clone(), vec![9, 9], secrets.clone())
        .await
        .expect("create");
    assert_eq!((repo.id, repo.owner_id), (new.id, a.id));
    assert_eq!(
        (repo.provider.as_str(), repo.full_name.as_str()),
        ("github", "acme/widgets")
    );
    assert_eq!(
        (&repo.clone_url, &repo.ci_dir),
        (&new.clone_url, &new.ci_dir)
    );
    assert_eq!(
        (repo.fork_secrets, &repo.status_reporting),
        (false, &serde_json::Value::Null)
    );
    assert_eq!(repo.secret_names, ["A", "B"]);
    assert_eq!(repo.created_at, new.created_at);
    assert_eq!(
        store
            .get_repository(Scope::Owner(a.id), repo.id)
            .await
            .expect("get"),
        repo
    );
    let mut other = new_repository(a.id, "acme/gadgets");
    other.provider = "gitlab".into();
    other.fork_secrets = true;
    other.status_reporting = serde_json::json!({"api_url": "https://git.example.com"});
    let other = store
        .create_repository(other, vec![1], BTreeMap::new())
        .await
        .expect("other");
    assert_eq!(
        store
            .list_repositories(Scope::Owner(a.id))
            .await
            .expect("list"),
        [other.clone(), repo.clone()]
    );
    assert!(
        store
            .list_repositories(Scope::Owner(b.id))
            .await
            .expect("list b")
            .is_empty()
    );
    let (found, sealed) = store
        .find_repository("github", "acme/widgets")
        .await
        .expect("find")
        .expect("found");
    assert_eq!((found, sealed), (repo.clone(), vec![9, 9]));
    assert!(
        store
            .find_repository("gitlab", "acme/widgets")
            .await
            .expect("find")
            .is_none()
    );
    assert_eq!(
        store.repository_secrets(repo.id).await.expect("secrets"),
        secrets
    );

    let hidden = Scope::Owner(b.id);
    assert!(matches!(
        store.get_repository(hidden, repo.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.delete_repository(hidden, repo.id).await,
        Err(StoreError::NotFound)
    ));
    let patch = store
        .update_repository_secrets(hidden, repo.id, Some(vec![0]), BTreeMap::new())
        .await;
    assert!(matches!(patch, Err(StoreError::NotFound)), "{patch:?}");
    assert!(matches!(
        store.list_deliveries(hidden, repo.id, 10).await,
        Err(StoreError::NotFound)
    ));

    let taken = store
        .create_repository(
            new_repository(b.id, "acme/widgets"),
            vec![1],
            BTreeMap::new(),
        )
        .await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    let ghost = store
        .create_repository(
            new_repository(UserId::new(), "ghost/repo"),
            vec![1],
            BTreeMap::new(),
        )
        .await;
    assert!(matches!(ghost, Err(StoreError::Conflict(_))), "{ghost:?}");

    store
        .delete_repository(Scope::Owner(a.id), repo.id)
        .await
        .expect("delete");
    assert!(matches!(
        store.get_repository(Scope::All, repo.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(
        store
            .find_repository("github", "acme/widgets")
            .await
            .expect("find")
            .is_none()
    );
    assert!(
        store
            .repository_secrets(repo.id)
            .await
            .expect("secrets")
            .is_empty()
    );
    assert!(matches!(
        store.delete_repository(Scope::All, repo.id).await,
        Err(StoreError::NotFound)
    ));
}

/// The secrets patch sets, replaces and removes by name and keeps the rest; a new webhook
/// secret replaces the old one, none keeps it.
pub async fn repository_secrets_patch<S: TestHooks>(store: &S) {
    let a = create_user(store, "repo-patch@example.com").await;
    let secrets = BTreeMap::from([
        ("KEEP".to_owned(), vec![1]),
        ("DROP".to_owned(), vec![2]),
        ("SWAP".to_owned(), vec![3]),
    ]);
    let repo = store
        .create_repository(new_repository(a.id, "acme/patch"), vec![5], secrets)
        .await
        .expect("create");
    let patch = BTreeMap::from([
        ("DROP".to_owned(), None),
        ("SWAP".to_owned(), Some(vec![30])),
        ("NEW".to_owned(), Some(vec![4])),
        ("ABSENT".to_owned(), None),
    ]);
    let r = store
        .update_repository_secrets(Scope::Owner(a.id), repo.id, None, patch)
        .await
        .expect("patch");
    assert_eq!(r.secret_names, ["KEEP", "NEW", "SWAP"]);
    let want = BTreeMap::from([
        ("KEEP".to_owned(), vec![1]),
        ("NEW".to_owned(), vec![4]),
        ("SWAP".to_owned(), vec![30]),
    ]);
    assert_eq!(
        store.repository_secrets(repo.id).await.expect("secrets"),
        want
    );
    let (_, hook) = store
        .find_repository("github", "acme/patch")
        .await
        .expect("find")
        .expect("some");
    assert_eq!(hook, vec![5], "no new webhook secret keeps the old one");
    store
        .update_repository_secrets(Scope::All, repo.id, Some(vec![6, 6]), BTreeMap::new())
        .await
        .expect("rotate");
    let (_, hook) = store
        .find_repository("github", "acme/patch")
        .await
        .expect("find")
        .expect("some");
    assert_eq!(hook, vec![6, 6]);
    assert_eq!(
        store.repository_secrets(repo.id).await.expect("secrets"),
        want
    );
}

/// A delivery creates its workflows (nodes, secrets) once; the same delivery again writes
/// nothing and answers the first ids; a failing delivery writes nothing at all.
pub async fn delivery_creates_workflows_once<S: TestHooks>(store: &S) {
    let a = create_user(store, "deliver@example.com").await;
    let repo = store
        .create_repository(
            new_repository(a.id, "acme/deliver"),
            vec![1],
            BTreeMap::new(),
        )
        .await
        .expect("repo");
    let w1 = delivery_workflow(a.id, "ci");
    let w2 = delivery_workflow(a.id, "lint");
    let ids = vec![w1.workflow.id, w2.workflow.id];
    let first = store
        .record_delivery(new_delivery(repo.id, "d-1"), vec![w1.clone(), w2])
        .await
        .expect("record");
    assert_eq!(first, DeliveryOutcome::Created(ids.clone()));
    for id in &ids {
        let wf = store
            .get_workflow(Scope::Owner(a.id), *id)
            .await
            .expect("workflow");
        assert_eq!(wf.origin, serde_json::json!({"kind": "api"}));
        let nodes = store.workflow_nodes(Scope::All, *id).await.expect("nodes");
        assert_eq!(nodes.len(), 4);
        assert!(nodes.iter().all(|n| n.status == NodeStatus::Pending));
        assert_eq!(
            store.workflow_secrets(*id).await.expect("secrets"),
            w1.sealed_secrets
        );
    }
    let again = store
        .record_delivery(
            new_delivery(repo.id, "d-1"),
            vec![delivery_workflow(a.id, "ci")],
        )
        .await
        .expect("again");
    assert_eq!(again, DeliveryOutcome::Duplicate(ids.clone()));
    // The same signed body under a new delivery id is a replay: nothing either.
    let mut replay = new_delivery(repo.id, "d-1-replayed");
    replay.body_sha256 = new_delivery(repo.id, "d-1").body_sha256;
    let replayed = store
        .record_delivery(replay, vec![delivery_workflow(a.id, "ci")])
        .await
        .expect("replay");
    assert_eq!(replayed, DeliveryOutcome::Duplicate(ids.clone()));
    let all = store
        .list_workflows(Scope::All, None, None, 10)
        .await
        .expect("list");
    assert_eq!(all.items.len(), 2, "a redelivery creates nothing");

    let empty = store
        .record_delivery(new_delivery(repo.id, "d-2"), Vec::new())
        .await
        .expect("no match");
    assert_eq!(empty, DeliveryOutcome::Created(Vec::new()));
    let broken = vec![
        delivery_workflow(a.id, "fine"),
        delivery_workflow(UserId::new(), "unknown owner"),
    ];
    let failed = store
        .record_delivery(new_delivery(repo.id, "d-3"), broken)
        .await;
    assert!(matches!(failed, Err(StoreError::Conflict(_))), "{failed:?}");
    assert_eq!(
        store
            .list_workflows(Scope::All, None, None, 10)
            .await
            .expect("list")
            .items
            .len(),
        2
    );
    let retry = delivery_workflow(a.id, "retry");
    let retry_id = retry.workflow.id;
    let retried = store
        .record_delivery(new_delivery(repo.id, "d-3"), vec![retry])
        .await
        .expect("retry");
    assert_eq!(
        retried,
        DeliveryOutcome::Created(vec![retry_id]),
        "a failed delivery left no row"
    );

    let listed = store
        .list_deliveries(Scope::Owner(a.id), repo.id, 10)
        .await
        .expect("deliveries");
    let got: Vec<(&str, &[WorkflowId])> = listed
        .iter()
        .map(|d| (d.delivery_id.as_str(), d.workflow_ids.as_slice()))
        .collect();
    assert_eq!(got.len(), 3);
    assert!(got.contains(&("d-1", ids.as_slice())));
    assert!(got.contains(&("d-3", [retry_id].as_slice())));
    let d1 = listed.iter().find(|d| d.delivery_id == "d-1").expect("d-1");
    assert_eq!(
        (d1.provider.as_str(), d1.event.as_str(), d1.repository_id),
        ("github", "push", repo.id)
    );
    assert_eq!(d1.summary, new_delivery(repo.id, "d-1").summary);
    assert!(
        listed
            .windows(2)
            .all(|w| w[0].received_at >= w[1].received_at),
        "newest first"
    );
    assert_eq!(
        store
            .list_deliveries(Scope::All, repo.id, 1)
            .await
            .expect("limit")
            .len(),
        1
    );
}

/// The same delivery posted twice at once: one creates its workflows, the other answers the
/// same ids, and only one set of workflows exists.
pub async fn concurrent_deliveries_create_once<S: TestHooks>(store: &S) {
    let a = create_user(store, "deliver-race@example.com").await;
    let repo = store
        .create_repository(new_repository(a.id, "acme/race"), vec![1], BTreeMap::new())
        .await
        .expect("repo");
    for round in 0..5 {
        let delivery = format!("race-{round}");
        let gate = std::sync::Arc::new(tokio::sync::Barrier::new(2));
        let tasks: Vec<_> = (0..2)
            .map(|i| {
                let s = store.clone();
                let d = new_delivery(repo.id, &delivery);
                let w = delivery_workflow(a.id, &format!("ci-{round}-{i}"));
                let gate = std::sync::Arc::clone(&gate);
                tokio::spawn(async move {
                    gate.wait().await;
                    s.record_delivery(d, vec![w]).await
                })
            })
            .collect();
        let mut created = Vec::new();
        let mut duplicate = Vec::new();
        for t in tasks {
            match t.await.expect("join").expect("record") {
                DeliveryOutcome::Created(ids) => created.push(ids),
                DeliveryOutcome::Duplicate(ids) => duplicate.push(ids),
            }
        }
        assert_eq!((created.len(), duplicate.len()), (1, 1), "round {round}");
        assert_eq!(
            created[0], duplicate[0],
            "round {round}: the duplicate names the first's ids"
        );
    }
    let all = store
        .list_workflows(Scope::All, None, None, 100)
        .await
        .expect("list");
    assert_eq!(all.items.len(), 5, "one workflow per delivery");
}

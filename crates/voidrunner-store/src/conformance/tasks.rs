//! Task CRUD, scopes, soft delete and list filters.

use std::collections::BTreeMap;

use voidrunner_domain::{ResourceLimits, Task, TaskId, TaskPatch};

use super::{TestHooks, at, create_user, limits, new_task};
use crate::{PageRequest, Scope, StoreError, TaskFilter};

/// Lists everything matching `filter` in one page of 100 and returns the names.
pub(super) async fn names<S: TestHooks>(
    store: &S,
    scope: Scope,
    filter: TaskFilter,
) -> Vec<String> {
    let page = store
        .list_tasks(
            scope,
            &filter,
            PageRequest {
                after: None,
                limit: 100,
            },
        )
        .await
        .expect("list");
    page.items.into_iter().map(|t| t.name).collect()
}

/// Every field survives a write and a read, by get and by list.
pub async fn task_round_trip_every_field<S: TestHooks>(store: &S) {
    let owner = create_user(store, "rt@example.com").await;
    let mut new = new_task(owner.id, "Round trip ✓", crate::now());
    new.description = Some("Ünïcode description with 'quotes' and \"dq\"".to_owned());
    new.language = "javascript".to_owned();
    new.code = "console.log('x');\n\0-free but\ttabbed\r\n".replace('\0', "");
    new.stdin = Some("line 1\nline 2\n".to_owned());
    new.env = BTreeMap::from([
        ("A".to_owned(), "1".to_owned()),
        ("EMPTY".to_owned(), String::new()),
        ("UNICODE".to_owned(), "ß→✓".to_owned()),
    ]);
    new.limits = ResourceLimits {
        timeout_secs: 300,
        memory_mb: 4096,
        cpu_cores: 0.25,
        max_processes: 1,
        max_output_bytes: 16 * 1024 * 1024,
    };
    new.priority = 10;
    new.tags = vec!["b".to_owned(), "a".to_owned(), "with space".to_owned()];
    new.metadata = serde_json::json!({
        "nested": {"list": [1, 2.5, -3, true, null, "s"]},
        "big": 9_007_199_254_740_991_i64,
        "unicode": "✓",
    });
    let created = store.create_task(new.clone()).await.expect("create");
    let expected = Task {
        id: new.id,
        owner_id: owner.id,
        name: new.name,
        description: new.description,
        language: new.language,
        code: new.code,
        stdin: new.stdin,
        env: new.env,
        limits: new.limits,
        priority: new.priority,
        tags: new.tags,
        metadata: new.metadata,
        last_execution_status: None,
        created_at: new.created_at,
        updated_at: new.created_at,
    };
    assert_eq!(created, expected);
    let got = store
        .get_task(Scope::Owner(owner.id), created.id)
        .await
        .expect("get");
    assert_eq!(got, expected);
    let listed = store
        .list_tasks(
            Scope::Owner(owner.id),
            &TaskFilter::default(),
            PageRequest {
                after: None,
                limit: 10,
            },
        )
        .await
        .expect("list");
    assert_eq!(listed.items, vec![expected.clone()]);
    assert_eq!(listed.next, None);

    // Priority 0 and empty collections round-trip too.
    let mut minimal = new_task(owner.id, "min", crate::now());
    minimal.priority = 0;
    let created = store.create_task(minimal).await.expect("create min");
    assert_eq!(
        store.get_task(Scope::All, created.id).await.expect("get"),
        created
    );
}

/// Inserting the same id twice is a conflict.
pub async fn task_duplicate_id_conflicts<S: TestHooks>(store: &S) {
    let owner = create_user(store, "dupt@example.com").await;
    let t = new_task(owner.id, "t", crate::now());
    store.create_task(t.clone()).await.expect("create");
    assert!(matches!(
        store.create_task(t).await,
        Err(StoreError::Conflict(_))
    ));
}

/// Another owner's task is indistinguishable from a missing one; admins reach it.
pub async fn task_cross_owner_is_not_found<S: TestHooks>(store: &S) {
    let alice = create_user(store, "alice@example.com").await;
    let bob = create_user(store, "bob@example.com").await;
    let task = store
        .create_task(new_task(alice.id, "alice's", crate::now()))
        .await
        .expect("create");
    let bob_scope = Scope::Owner(bob.id);
    let patch = TaskPatch {
        name: Some("stolen".to_owned()),
        ..TaskPatch::default()
    };
    for id in [task.id, TaskId::new()] {
        assert!(matches!(
            store.get_task(bob_scope, id).await,
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            store.update_task(bob_scope, id, patch.clone()).await,
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            store.delete_task(bob_scope, id, crate::now()).await,
            Err(StoreError::NotFound)
        ));
    }
    assert!(
        names(store, bob_scope, TaskFilter::default())
            .await
            .is_empty()
    );
    // Untouched, and visible to the owner and to admins.
    assert_eq!(
        store
            .get_task(Scope::Owner(alice.id), task.id)
            .await
            .expect("own"),
        task
    );
    assert_eq!(
        store.get_task(Scope::All, task.id).await.expect("admin"),
        task
    );
}

/// Every patch field is applied, `Some(None)` clears, absent fields stay.
pub async fn task_update_applies_patch<S: TestHooks>(store: &S) {
    let owner = create_user(store, "upd@example.com").await;
    let scope = Scope::Owner(owner.id);
    let mut new = new_task(owner.id, "before", crate::now());
    new.description = Some("desc".to_owned());
    new.stdin = Some("in".to_owned());
    new.tags = vec!["old".to_owned()];
    let task = store.create_task(new).await.expect("create");

    let updated_at = at(task.created_at, 1_000);
    let new_limits = ResourceLimits {
        memory_mb: 512,
        ..limits()
    };
    let patch = TaskPatch {
        name: Some("after".to_owned()),
        description: Some(None),
        language: Some("bash".to_owned()),
        code: Some("echo hi".to_owned()),
        stdin: Some(None),
        env: Some(BTreeMap::from([("K".to_owned(), "v".to_owned())])),
        limits: Some(new_limits),
        priority: Some(9),
        tags: Some(vec!["new".to_owned()]),
        metadata: Some(serde_json::json!({"k": "v"})),
        updated_at: Some(updated_at),
    };
    let updated = store
        .update_task(scope, task.id, patch)
        .await
        .expect("update");
    let expected = Task {
        name: "after".to_owned(),
        description: None,
        language: "bash".to_owned(),
        code: "echo hi".to_owned(),
        stdin: None,
        env: BTreeMap::from([("K".to_owned(), "v".to_owned())]),
        limits: new_limits,
        priority: 9,
        tags: vec!["new".to_owned()],
        metadata: serde_json::json!({"k": "v"}),
        updated_at,
        ..task.clone()
    };
    assert_eq!(updated, expected);
    assert_eq!(store.get_task(scope, task.id).await.expect("get"), expected);

    // An empty patch changes nothing but the update time.
    let later = at(updated_at, 1);
    let same = store
        .update_task(
            scope,
            task.id,
            TaskPatch {
                updated_at: Some(later),
                ..TaskPatch::default()
            },
        )
        .await
        .expect("noop");
    assert_eq!(
        same,
        Task {
            updated_at: later,
            ..expected
        }
    );
    // Filters see the new values.
    let by_search = TaskFilter {
        search: Some("AFTER".to_owned()),
        ..TaskFilter::default()
    };
    assert_eq!(names(store, scope, by_search).await, vec!["after"]);
    let by_tag = TaskFilter {
        tag: Some("old".to_owned()),
        ..TaskFilter::default()
    };
    assert!(names(store, scope, by_tag).await.is_empty());
}

/// Deleted tasks disappear from get, list, update and a second delete.
pub async fn task_soft_delete_hides_everywhere<S: TestHooks>(store: &S) {
    let owner = create_user(store, "del@example.com").await;
    let scope = Scope::Owner(owner.id);
    let keep = store
        .create_task(new_task(owner.id, "keep", crate::now()))
        .await
        .expect("keep");
    let gone = store
        .create_task(new_task(owner.id, "gone", crate::now()))
        .await
        .expect("gone");
    store
        .delete_task(scope, gone.id, crate::now())
        .await
        .expect("delete");
    for s in [scope, Scope::All] {
        assert!(matches!(
            store.get_task(s, gone.id).await,
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            store.delete_task(s, gone.id, crate::now()).await,
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            store.update_task(s, gone.id, TaskPatch::default()).await,
            Err(StoreError::NotFound)
        ));
        assert_eq!(names(store, s, TaskFilter::default()).await, vec!["keep"]);
    }
    assert_eq!(store.get_task(scope, keep.id).await.expect("kept"), keep);
    // Admins delete anyone's task.
    store
        .delete_task(Scope::All, keep.id, crate::now())
        .await
        .expect("admin delete");
    assert!(names(store, scope, TaskFilter::default()).await.is_empty());
}

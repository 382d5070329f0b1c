//! Task CRUD, scopes, soft delete and list filters.

use std::collections::BTreeMap;

use voidrunner_domain::{ExecutionStatus, ResourceLimits, Task, TaskId, TaskPatch};

use super::{TestHooks, at, create_user, limits, new_task};
use crate::{PageRequest, Scope, StoreError, TaskFilter};

/// Lists everything matching `filter` in one page of 100 and returns the names.
async fn names<S: TestHooks>(store: &S, scope: Scope, filter: TaskFilter) -> Vec<String> {
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

/// Exact language, last execution status and exact tag filters.
pub async fn filter_by_language_status_and_tag<S: TestHooks>(store: &S) {
    let owner = create_user(store, "f@example.com").await;
    let scope = Scope::Owner(owner.id);
    let base = crate::now();
    let specs = [
        (
            "py-done",
            "python",
            Some(ExecutionStatus::Completed),
            vec!["ci", "nightly"],
        ),
        (
            "py-fail",
            "python",
            Some(ExecutionStatus::Failed),
            vec!["ci"],
        ),
        (
            "js-done",
            "javascript",
            Some(ExecutionStatus::Completed),
            vec!["CI"],
        ),
        ("sh-none", "bash", None, vec!["ci-extra"]),
    ];
    for (i, (name, lang, status, tags)) in specs.into_iter().enumerate() {
        let mut t = new_task(owner.id, name, at(base, i64::try_from(i).expect("small")));
        t.language = lang.to_owned();
        t.tags = tags.into_iter().map(str::to_owned).collect();
        let t = store.create_task(t).await.expect("create");
        store
            .set_last_execution_status(t.id, status)
            .await
            .expect("set status");
    }
    let f = |language: Option<&str>, status, tag: Option<&str>| TaskFilter {
        language: language.map(str::to_owned),
        status,
        tag: tag.map(str::to_owned),
        ..TaskFilter::default()
    };
    assert_eq!(
        names(store, scope, f(Some("python"), None, None)).await,
        vec!["py-fail", "py-done"]
    );
    assert!(
        names(store, scope, f(Some("Python"), None, None))
            .await
            .is_empty()
    );
    assert_eq!(
        names(
            store,
            scope,
            f(None, Some(ExecutionStatus::Completed), None)
        )
        .await,
        vec!["js-done", "py-done"]
    );
    assert!(
        names(store, scope, f(None, Some(ExecutionStatus::Running), None))
            .await
            .is_empty()
    );
    assert_eq!(
        names(store, scope, f(None, None, Some("ci"))).await,
        vec!["py-fail", "py-done"],
        "tags match exactly: not CI, not ci-extra"
    );
    assert_eq!(
        names(store, scope, f(None, None, Some("nightly"))).await,
        vec!["py-done"]
    );
    assert!(
        names(store, scope, f(None, None, Some("c%")))
            .await
            .is_empty()
    );
}

/// Search is a case-insensitive (Unicode) substring of name or description, `%`/`_` literal.
pub async fn filter_search_is_literal_and_case_insensitive<S: TestHooks>(store: &S) {
    let owner = create_user(store, "s@example.com").await;
    let scope = Scope::Owner(owner.id);
    let base = crate::now();
    let specs = [
        ("Hello World", None),
        ("100% sure", None),
        ("snake_case", None),
        ("snakeXcase", None),
        ("plain", Some("Ünïcode STRASSE in the description")),
        ("endsab", Some("cdstart")),
    ];
    for (i, (name, desc)) in specs.into_iter().enumerate() {
        let mut t = new_task(owner.id, name, at(base, i64::try_from(i).expect("small")));
        t.description = desc.map(str::to_owned);
        store.create_task(t).await.expect("create");
    }
    let search = |s: &str| TaskFilter {
        search: Some(s.to_owned()),
        ..TaskFilter::default()
    };
    assert_eq!(
        names(store, scope, search("hello")).await,
        vec!["Hello World"]
    );
    assert_eq!(
        names(store, scope, search("WORLD")).await,
        vec!["Hello World"]
    );
    assert_eq!(names(store, scope, search("%")).await, vec!["100% sure"]);
    assert_eq!(names(store, scope, search("e_c")).await, vec!["snake_case"]);
    assert_eq!(names(store, scope, search("_")).await, vec!["snake_case"]);
    assert_eq!(names(store, scope, search("ünï")).await, vec!["plain"]);
    assert_eq!(names(store, scope, search("ÜNÏCODE")).await, vec!["plain"]);
    assert_eq!(names(store, scope, search("strasse")).await, vec!["plain"]);
    assert!(
        names(store, scope, search("abcd")).await.is_empty(),
        "never matches across name and description"
    );
    assert!(names(store, scope, search("absent")).await.is_empty());
}

/// `created_before` and `created_after` are strict bounds.
pub async fn filter_created_before_after_strict<S: TestHooks>(store: &S) {
    let owner = create_user(store, "c@example.com").await;
    let scope = Scope::Owner(owner.id);
    let base = crate::now();
    for (i, name) in ["t0", "t1", "t2"].into_iter().enumerate() {
        let created = at(base, 1_000 * i64::try_from(i).expect("small"));
        store
            .create_task(new_task(owner.id, name, created))
            .await
            .expect("create");
    }
    let window = |before: Option<i64>, after: Option<i64>| TaskFilter {
        created_before: before.map(|m| at(base, m)),
        created_after: after.map(|m| at(base, m)),
        ..TaskFilter::default()
    };
    assert_eq!(
        names(store, scope, window(Some(1_000), None)).await,
        vec!["t0"]
    );
    assert_eq!(
        names(store, scope, window(None, Some(1_000))).await,
        vec!["t2"]
    );
    assert_eq!(
        names(store, scope, window(Some(2_000), Some(0))).await,
        vec!["t1"]
    );
    assert_eq!(
        names(store, scope, window(Some(2_001), Some(-1))).await,
        vec!["t2", "t1", "t0"]
    );
    assert!(names(store, scope, window(Some(0), None)).await.is_empty());
}

/// All present filters must match; admins filter across owners, users only see theirs.
pub async fn filters_combine_and_respect_scope<S: TestHooks>(store: &S) {
    let alice = create_user(store, "alice@example.com").await;
    let bob = create_user(store, "bob@example.com").await;
    let base = crate::now();
    let mut n = 0;
    for (owner, name, lang, tag) in [
        (alice.id, "alice py x", "python", "x"),
        (alice.id, "alice js x", "javascript", "x"),
        (alice.id, "alice py y", "python", "y"),
        (bob.id, "bob py x", "python", "x"),
    ] {
        n += 1;
        let mut t = new_task(owner, name, at(base, n));
        t.language = lang.to_owned();
        t.tags = vec![tag.to_owned()];
        store.create_task(t).await.expect("create");
    }
    let filter = TaskFilter {
        language: Some("python".to_owned()),
        tag: Some("x".to_owned()),
        search: Some("PY".to_owned()),
        created_after: Some(at(base, 0)),
        ..TaskFilter::default()
    };
    assert_eq!(
        names(store, Scope::Owner(alice.id), filter.clone()).await,
        vec!["alice py x"]
    );
    assert_eq!(
        names(store, Scope::Owner(bob.id), filter.clone()).await,
        vec!["bob py x"]
    );
    assert_eq!(
        names(store, Scope::All, filter).await,
        vec!["bob py x", "alice py x"]
    );
    assert_eq!(
        names(store, Scope::All, TaskFilter::default()).await.len(),
        4
    );
}

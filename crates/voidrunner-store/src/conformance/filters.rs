//! List filters: language, last status, tag, text search, creation window, scope.

use voidrunner_domain::ExecutionStatus;

use super::tasks::names;
use super::{TestHooks, at, create_user, new_task, run_to_status};
use crate::{Scope, TaskFilter};

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
        if let Some(status) = status {
            run_to_status(store, &t, status).await;
        }
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

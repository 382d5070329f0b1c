//! Keyset pagination: order, completeness, stability under concurrent inserts.

use std::collections::HashSet;

use voidrunner_domain::{Task, TaskId, UserId};

use super::{TestHooks, at, create_user, new_task};
use crate::{PageRequest, Scope, TaskCursor, TaskFilter};

/// Reads every page of `scope` with `limit`, checking each page's size and cursor.
async fn read_all<S: TestHooks>(store: &S, scope: Scope, limit: u32) -> Vec<Task> {
    let mut out: Vec<Task> = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_tasks(scope, &TaskFilter::default(), PageRequest { after, limit })
            .await
            .expect("list page");
        assert!(page.items.len() <= limit as usize);
        if let Some(next) = page.next {
            assert_eq!(
                page.items.len(),
                limit as usize,
                "only full pages have a next"
            );
            let last = page.items.last().expect("non-empty page with next");
            assert_eq!(
                next,
                TaskCursor {
                    created_at: last.created_at,
                    id: last.id
                }
            );
        }
        out.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => return out,
        }
    }
}

/// Strictly descending by `(created_at, id)`: implies no duplicates.
fn assert_strictly_newest_first(tasks: &[Task]) {
    for w in tasks.windows(2) {
        assert!(
            (w[0].created_at, w[0].id) > (w[1].created_at, w[1].id),
            "order broken between {} and {}",
            w[0].id,
            w[1].id
        );
    }
}

async fn seed<S: TestHooks>(store: &S, owner: UserId, n: i64, spacing: i64) -> Vec<TaskId> {
    let base = at(crate::now(), -10_000_000);
    let mut ids = Vec::new();
    for i in 0..n {
        let t = new_task(owner, &format!("t{i}"), at(base, i * spacing));
        ids.push(store.create_task(t).await.expect("create").id);
    }
    ids
}

/// Rows sharing one `created_at` are ordered by id descending and all returned once.
pub async fn paging_equal_created_at_uses_id_order<S: TestHooks>(store: &S) {
    let owner = create_user(store, "eq@example.com").await;
    let mut ids = seed(store, owner.id, 25, 0).await;
    let all = read_all(store, Scope::Owner(owner.id), 7).await;
    assert_strictly_newest_first(&all);
    ids.sort();
    ids.reverse();
    assert_eq!(all.iter().map(|t| t.id).collect::<Vec<_>>(), ids);
}

/// When the rows fill the page exactly, there is no next page.
pub async fn paging_exact_limit_has_no_next<S: TestHooks>(store: &S) {
    let owner = create_user(store, "exact@example.com").await;
    seed(store, owner.id, 5, 1).await;
    let page = store
        .list_tasks(
            Scope::Owner(owner.id),
            &TaskFilter::default(),
            PageRequest {
                after: None,
                limit: 5,
            },
        )
        .await
        .expect("list");
    assert_eq!(page.items.len(), 5);
    assert_eq!(page.next, None);
    let page = store
        .list_tasks(
            Scope::Owner(owner.id),
            &TaskFilter::default(),
            PageRequest {
                after: None,
                limit: 4,
            },
        )
        .await
        .expect("list");
    assert_eq!(page.items.len(), 4);
    assert!(page.next.is_some());
}

/// While another task inserts rows (newer ones and ones between existing rows), paging sees
/// every pre-existing row exactly once, in order.
pub async fn paging_stable_under_concurrent_inserts<S: TestHooks>(store: &S) {
    let owner = create_user(store, "conc@example.com").await;
    let original: HashSet<TaskId> = seed(store, owner.id, 40, 1_000).await.into_iter().collect();
    let base = store
        .list_tasks(
            Scope::Owner(owner.id),
            &TaskFilter::default(),
            PageRequest {
                after: None,
                limit: 100,
            },
        )
        .await
        .expect("list")
        .items;
    let inserter = {
        let store = store.clone();
        let existing: Vec<_> = base.iter().map(|t| t.created_at).collect();
        tokio::spawn(async move {
            for (i, created) in existing.into_iter().enumerate() {
                // One row in the gap after an existing row, one brand new row.
                let mid = new_task(owner.id, &format!("mid{i}"), at(created, 500));
                store.create_task(mid).await.expect("insert mid");
                let newest = new_task(owner.id, &format!("new{i}"), crate::now());
                store.create_task(newest).await.expect("insert new");
                tokio::task::yield_now().await;
            }
        })
    };
    let seen = read_all(store, Scope::Owner(owner.id), 3).await;
    inserter.await.expect("inserter");
    assert_strictly_newest_first(&seen);
    let seen_ids: HashSet<TaskId> = seen.iter().map(|t| t.id).collect();
    assert_eq!(seen_ids.len(), seen.len(), "no duplicates");
    assert!(
        original.is_subset(&seen_ids),
        "no gaps among pre-existing rows"
    );
    // Afterwards, everything is there exactly once.
    let total = read_all(store, Scope::Owner(owner.id), 7).await;
    assert_strictly_newest_first(&total);
    assert_eq!(total.len(), 40 * 3);
}

/// A cursor stays valid after its anchor row is deleted.
pub async fn paging_cursor_survives_deleted_anchor<S: TestHooks>(store: &S) {
    let owner = create_user(store, "anchor@example.com").await;
    let scope = Scope::Owner(owner.id);
    seed(store, owner.id, 6, 1).await;
    let first = store
        .list_tasks(
            scope,
            &TaskFilter::default(),
            PageRequest {
                after: None,
                limit: 3,
            },
        )
        .await
        .expect("page 1");
    let next = first.next.expect("has next");
    store
        .delete_task(scope, next.id, crate::now())
        .await
        .expect("delete anchor");
    let second = store
        .list_tasks(
            scope,
            &TaskFilter::default(),
            PageRequest {
                after: Some(next),
                limit: 3,
            },
        )
        .await
        .expect("page 2");
    let names: Vec<_> = second.items.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, vec!["t2", "t1", "t0"]);
    assert_eq!(second.next, None);
}

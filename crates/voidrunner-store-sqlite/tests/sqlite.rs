//! SQLite-specific behaviour: file handling, migrations, and several handles on one file.

use std::time::Duration;

use sqlx::Connection as _;
use voidrunner_store::conformance::{create_user, new_task, new_user};
use voidrunner_store::{Scope, Store, StoreError, TaskStore, UserStore, now};
use voidrunner_store_sqlite::{SqliteOptions, SqliteStore};

#[tokio::test]
async fn open_creates_parent_directories_and_uses_wal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested/deeper/voidrunner.db");
    let store = SqliteStore::open(&path, SqliteOptions::default())
        .await
        .expect("open");
    create_user(&store, "wal@example.com").await;
    assert!(path.exists());
    let mut raw = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("raw connection");
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut raw)
        .await
        .expect("journal mode");
    assert_eq!(mode, "wal");
    store.close().await;
}

#[tokio::test]
async fn connect_does_not_migrate_and_migrate_is_idempotent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("vr.db");
    let store = SqliteStore::connect(&path, SqliteOptions::default())
        .await
        .expect("connect");
    store.ping().await.expect("ping without schema");
    assert!(matches!(
        store.create_user(new_user("early@example.com")).await,
        Err(StoreError::Unavailable(_))
    ));
    store.migrate().await.expect("migrate");
    store.migrate().await.expect("migrate again");
    let user = create_user(&store, "later@example.com").await;
    store.close().await;

    // Data survives reopening, and opening an up-to-date database migrates nothing.
    let reopened = SqliteStore::open(&path, SqliteOptions::default())
        .await
        .expect("reopen");
    assert_eq!(reopened.get_user(user.id).await.expect("get"), user);
}

/// Two handles on one file stand in for two processes (e.g. `voidrunner migrate` next to a
/// running server): writes wait on the lock instead of failing with SQLITE_BUSY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_on_one_file_never_report_busy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("shared.db");
    let opts = SqliteOptions {
        busy_timeout: Duration::from_secs(10),
        ..SqliteOptions::default()
    };
    let a = SqliteStore::open(&path, opts.clone()).await.expect("a");
    let b = SqliteStore::open(&path, opts).await.expect("b");
    let owner = create_user(&a, "owner@example.com").await;
    let mut handles = Vec::new();
    for i in 0..200 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        handles.push(tokio::spawn(async move {
            let task = store
                .create_task(new_task(
                    owner.id,
                    &format!("t{i}"),
                    voidrunner_store::now(),
                ))
                .await?;
            let patch = voidrunner_domain::TaskPatch {
                code: Some(format!("print({i})")),
                ..Default::default()
            };
            store
                .update_task(Scope::Owner(owner.id), task.id, patch)
                .await
        }));
    }
    for h in handles {
        h.await.expect("join").expect("write under contention");
    }
    let page = b
        .list_tasks(
            Scope::Owner(owner.id),
            &Default::default(),
            voidrunner_store::PageRequest {
                after: None,
                limit: 100,
            },
        )
        .await
        .expect("list");
    assert_eq!(page.items.len(), 100);
    assert!(page.next.is_some());
}

/// First-user-admin decided across two handles (two processes on one file): the
/// `BEGIN IMMEDIATE` transaction makes check-then-insert atomic and never fails on lock
/// upgrade.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_admin_across_two_handles_has_one_winner() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("race.db");
    let a = SqliteStore::open(&path, SqliteOptions::default())
        .await
        .expect("a");
    let b = SqliteStore::open(&path, SqliteOptions::default())
        .await
        .expect("b");
    let handles: Vec<_> = (0..16)
        .map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                let mut new = new_user(&format!("u{i}@example.com"));
                new.admin_if_first = true;
                store.create_user(new).await
            })
        })
        .collect();
    let mut admins = 0;
    for h in handles {
        let user = h.await.expect("join").expect("create under contention");
        if user.role == voidrunner_domain::Role::Admin {
            admins += 1;
        }
    }
    assert_eq!(admins, 1);
}

/// Claimers on two handles of one file (two pools, two writer connections) never claim the
/// same row: `BEGIN IMMEDIATE` serializes them through SQLite's file lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_across_two_handles_never_share_a_row() {
    use voidrunner_store::ExecutionStore;
    let (a, dir) = voidrunner_store_sqlite::testing::fresh_store().await;
    let b = SqliteStore::open(&dir.path().join("voidrunner.db"), SqliteOptions::default())
        .await
        .expect("second handle");
    let owner = create_user(&a, "two@example.com").await;
    let mut all = std::collections::HashSet::new();
    for _ in 0..100 {
        let n = voidrunner_store::conformance::new_execution(owner.id, None, 5, now());
        all.insert(a.enqueue_execution(n).await.expect("enqueue").id);
    }
    let claimers: Vec<_> = (0..4)
        .map(|w| {
            let store = if w % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                let req = voidrunner_store::conformance::claim_at(&format!("w{w}"), now());
                let mut got = Vec::new();
                while let Some(e) = store.claim_next(&req).await.expect("claim") {
                    got.push(e.id);
                }
                got
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for c in claimers {
        claimed.extend(c.await.expect("join"));
    }
    assert_eq!(claimed.len(), all.len());
    assert_eq!(
        claimed
            .into_iter()
            .collect::<std::collections::HashSet<_>>(),
        all
    );
}

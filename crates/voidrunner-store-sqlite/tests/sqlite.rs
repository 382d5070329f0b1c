//! SQLite-specific behaviour: file handling, migrations, and several handles on one file.

use std::time::Duration;

use sqlx::Connection as _;
use voidrunner_store::conformance::{create_user, new_task, new_user};
use voidrunner_store::{Scope, Store, StoreError, TaskStore, UserStore};
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

/// The executions schema supports the queue of issue 4 as designed: claim order is priority
/// then FIFO, `run_after` hides backed-off rows, and a claim is one conditional UPDATE.
#[tokio::test]
async fn executions_schema_serves_priority_fifo_claims() {
    let (store, _dir) = voidrunner_store_sqlite::testing::fresh_store().await;
    let owner = create_user(&store, "q@example.com").await;
    let task = store
        .create_task(new_task(owner.id, "q", voidrunner_store::now()))
        .await
        .expect("task");
    let pool = voidrunner_store_sqlite::testing::writer_pool(&store);
    let now = voidrunner_store::now().timestamp_micros();
    // (name, priority, created offset, run_after offset)
    let rows = [
        ("low-old", 1, 0, 0),
        ("high-new", 9, 30, 0),
        ("high-old", 9, 10, 0),
        ("high-backoff", 10, 5, 1_000_000_000),
        ("mid", 5, 20, 0),
    ];
    for (name, priority, created, run_after) in rows {
        sqlx::query(
            "INSERT INTO executions (id, task_id, owner_id, status, priority, language, code, \
             env, limits, max_attempts, run_after, created_at) \
             VALUES (?, ?, ?, 'queued', ?, 'bash', ?, '{}', '{}', 3, ?, ?)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(task.id.to_string())
        .bind(owner.id.to_string())
        .bind(priority)
        .bind(name)
        .bind(now + run_after)
        .bind(now + created)
        .execute(pool)
        .await
        .expect("insert execution");
    }
    let mut order = Vec::new();
    loop {
        let claimed: Option<String> = sqlx::query_scalar(
            "UPDATE executions SET status = 'running', attempt = attempt + 1, \
                 lease_owner = 'w1', worker_id = 'w1', lease_until = ?1 + 30000000, \
                 started_at = ?1 \
             WHERE id = (SELECT id FROM executions \
                         WHERE status = 'queued' AND run_after <= ?1 \
                         ORDER BY priority DESC, created_at, id LIMIT 1) \
             RETURNING code",
        )
        .bind(now + 100)
        .fetch_optional(pool)
        .await
        .expect("claim");
        match claimed {
            Some(code) => order.push(code),
            None => break,
        }
    }
    assert_eq!(order, ["high-old", "high-new", "mid", "low-old"]);
}

//! PostgreSQL-specific behaviour: connection failures, concurrent migrations by several
//! nodes, and queue notifications between nodes. Cases needing a server run only when `VOIDRUNNER_TEST_DATABASE_URL` is set.

use std::time::Duration;

use sqlx::Connection as _;
use voidrunner_domain::Verdict;
use voidrunner_store::conformance::{claim, complete, create_user, new_execution};
use voidrunner_store::{ExecutionStore, Scope, Store, StoreError, UserStore, now};
use voidrunner_store_postgres::{PostgresOptions, PostgresStore};

fn database_url() -> Option<String> {
    std::env::var("VOIDRUNNER_TEST_DATABASE_URL").ok()
}

#[tokio::test]
async fn unreachable_server_is_unavailable() {
    let opts = PostgresOptions {
        acquire_timeout: Duration::from_secs(2),
        ..PostgresOptions::default()
    };
    let err = PostgresStore::connect("postgres://nobody:x@127.0.0.1:1/none", opts)
        .await
        .expect_err("nothing listens on port 1");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let err = PostgresStore::connect("not a url", PostgresOptions::default())
        .await
        .expect_err("bad url");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

/// Several nodes starting at once create and migrate the same (missing) schema without errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_open_migrates_once() {
    let Some(url) = database_url() else {
        return;
    };
    let schema = format!("vr_test_mig_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&url).await.expect("connect");
    let opts = PostgresOptions {
        max_connections: 2,
        schema: Some(schema.clone()),
        ..PostgresOptions::default()
    };
    let opens: Vec<_> = (0..3)
        .map(|_| {
            let (url, opts) = (url.clone(), opts.clone());
            tokio::spawn(async move { PostgresStore::open(&url, opts).await })
        })
        .collect();
    let mut stores = Vec::new();
    for h in opens {
        stores.push(h.await.expect("join").expect("open"));
    }
    let user = create_user(&stores[0], "node@example.com").await;
    assert_eq!(stores[2].get_user(user.id).await.expect("get"), user);
    stores[1].ping().await.expect("ping");
    for s in &stores {
        s.close().await;
    }
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&mut admin)
        .await
        .expect("drop schema");
}

/// Two handles on one schema (two nodes): enqueue, cancel and finish on A wake subscribers
/// on B through `LISTEN/NOTIFY`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_cross_handles_of_one_schema() {
    let Some(url) = database_url() else {
        return;
    };
    let a = voidrunner_store_postgres::testing::fresh_store(&url).await;
    let b = voidrunner_store_postgres::testing::another_handle(&url, &a).await;
    let owner = create_user(&a, "nodes@example.com").await;
    let mut work = b.queue_signals().subscribe_work();
    let mut cancels = b.queue_signals().subscribe_cancels();
    work.borrow_and_update();

    a.enqueue_execution(new_execution(owner.id, None, 5, now()))
        .await
        .expect("enqueue on a");
    within(work.changed()).await.expect("work on b");
    let running = claim(&b, "node-b", now()).await.expect("b claims a's row");
    a.request_cancel(Scope::All, running.id, now())
        .await
        .expect("cancel on a");
    assert_eq!(
        within(cancels.recv()).await.expect("cancel on b"),
        running.id
    );
    complete(&b, &running, Verdict::Cancelled).await;
    let mut finished = b.queue_signals().subscribe_finished();
    let queued = a
        .enqueue_execution(new_execution(owner.id, None, 5, now()))
        .await
        .expect("enqueue");
    a.request_cancel(Scope::All, queued.id, now())
        .await
        .expect("cancel queued on a");
    assert_eq!(
        within(finished.recv()).await.expect("finished on b"),
        queued.id
    );
    a.close().await;
    b.close().await;
}

/// Notifications never cross schemas: C (schema T) sees D's event (schema T) first even
/// though A's event (schema S) was committed before it, and PostgreSQL delivers to each
/// listener in commit order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_stay_within_their_schema() {
    let Some(url) = database_url() else {
        return;
    };
    let a = voidrunner_store_postgres::testing::fresh_store(&url).await;
    let c = voidrunner_store_postgres::testing::fresh_store(&url).await;
    let d = voidrunner_store_postgres::testing::another_handle(&url, &c).await;
    let mut finished = c.queue_signals().subscribe_finished();
    let alice = create_user(&a, "s@example.com").await;
    let dave = create_user(&d, "t@example.com").await;
    let x = a
        .enqueue_execution(new_execution(alice.id, None, 5, now()))
        .await
        .expect("x");
    a.request_cancel(Scope::All, x.id, now())
        .await
        .expect("cancel x");
    let y = d
        .enqueue_execution(new_execution(dave.id, None, 5, now()))
        .await
        .expect("y");
    d.request_cancel(Scope::All, y.id, now())
        .await
        .expect("cancel y");
    assert_eq!(within(finished.recv()).await.expect("finished"), y.id);
}

/// Dropping every clone of a store stops its listener task: the signal hub it fed goes away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_stops_when_store_is_dropped() {
    let Some(url) = database_url() else {
        return;
    };
    let store = voidrunner_store_postgres::testing::fresh_store(&url).await;
    let clone = store.clone();
    let mut work = store.queue_signals().subscribe_work();
    drop(store);
    drop(clone);
    within(async { while work.changed().await.is_ok() {} }).await;
}

/// When the listener's connection is killed, it reconnects, wakes workers once (events may
/// have been missed), and hears other nodes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_reconnects_and_wakes_workers() {
    let Some(url) = database_url() else {
        return;
    };
    let a = voidrunner_store_postgres::testing::fresh_store(&url).await;
    let b = voidrunner_store_postgres::testing::another_handle(&url, &a).await;
    let owner = create_user(&a, "reconnect@example.com").await;
    let mut work = b.queue_signals().subscribe_work();
    work.borrow_and_update();
    let mut admin = sqlx::PgConnection::connect(&url).await.expect("connect");
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(b.listener_application_name())
    .fetch_all(&mut admin)
    .await
    .expect("terminate");
    assert_eq!(killed, vec![true], "exactly one listener connection");
    within(work.changed())
        .await
        .expect("wake-up after reconnect");
    // The new connection listens again: a cancel on A reaches B.
    let mut cancels = b.queue_signals().subscribe_cancels();
    a.enqueue_execution(new_execution(owner.id, None, 5, now()))
        .await
        .expect("enqueue");
    let running = claim(&a, "a", now()).await.expect("claim");
    a.request_cancel(Scope::All, running.id, now())
        .await
        .expect("cancel");
    assert_eq!(
        within(cancels.recv()).await.expect("cancel on b"),
        running.id
    );
}

/// Bounded wait: a missing signal fails the test instead of hanging it.
async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("signal within 10 s")
}

//! PostgreSQL-specific behaviour: connection failures and concurrent migrations by several
//! nodes. Cases needing a server run only when `VOIDRUNNER_TEST_DATABASE_URL` is set.

use std::time::Duration;

use sqlx::Connection as _;
use voidrunner_store::conformance::create_user;
use voidrunner_store::{Store, StoreError, UserStore};
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

/// The executions schema supports the queue of issue 4 as designed: concurrent claimers with
/// `FOR UPDATE SKIP LOCKED` each get a distinct row, in priority-then-FIFO order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executions_schema_serves_skip_locked_claims() {
    use voidrunner_store::TaskStore;
    let Some(url) = database_url() else {
        return;
    };
    let store = voidrunner_store_postgres::testing::fresh_store(&url).await;
    let owner = create_user(&store, "q@example.com").await;
    let task = store
        .create_task(voidrunner_store::conformance::new_task(
            owner.id,
            "q",
            voidrunner_store::now(),
        ))
        .await
        .expect("task");
    let pool = voidrunner_store_postgres::testing::pool(&store);
    let now = voidrunner_store::now();
    for i in 0..20_i64 {
        sqlx::query(
            "INSERT INTO executions (id, task_id, owner_id, status, priority, language, code, \
             env, limits, max_attempts, run_after, created_at) \
             VALUES ($1, $2, $3, 'queued', $4, 'bash', $5, '{}', '{}', 3, $6, $6)",
        )
        .bind(uuid::Uuid::now_v7())
        .bind(task.id.as_uuid())
        .bind(owner.id.as_uuid())
        .bind(i16::try_from(i % 3).expect("small"))
        .bind(format!("{i}"))
        .bind(now + chrono::Duration::microseconds(i))
        .execute(pool)
        .await
        .expect("insert execution");
    }
    let claim = "UPDATE executions SET status = 'running', attempt = attempt + 1, \
                     lease_owner = $1, worker_id = $1, started_at = now(), \
                     lease_until = now() + interval '30 seconds' \
                 WHERE id = (SELECT id FROM executions \
                             WHERE status = 'queued' AND run_after <= now() \
                             ORDER BY priority DESC, created_at, id \
                             LIMIT 1 FOR UPDATE SKIP LOCKED) \
                 RETURNING code";
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                while let Some(code) = sqlx::query_scalar::<_, String>(claim)
                    .bind(format!("w{w}"))
                    .fetch_optional(&pool)
                    .await
                    .expect("claim")
                {
                    got.push(code.parse::<i64>().expect("code is the index"));
                }
                got
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in workers {
        let got = w.await.expect("join");
        // Each worker sees non-increasing priority: claims follow the queue order.
        assert!(got.windows(2).all(|p| p[0] % 3 >= p[1] % 3), "{got:?}");
        all.extend(got);
    }
    all.sort_unstable();
    assert_eq!(
        all,
        (0..20).collect::<Vec<_>>(),
        "every row claimed exactly once"
    );
}

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

//! Queue figures on PostgreSQL (`VOIDRUNNER_TEST_DATABASE_URL=… cargo bench -p
//! voidrunner-store-postgres`): enqueue and claim latency, enqueue→claim through the work
//! signal, claims/s with concurrent claimers.

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Ok(url) = std::env::var("VOIDRUNNER_TEST_DATABASE_URL") else {
        eprintln!("SKIPPED: set VOIDRUNNER_TEST_DATABASE_URL to run the PostgreSQL queue bench");
        return;
    };
    let store = voidrunner_store_postgres::testing::fresh_store(&url).await;
    voidrunner_store::conformance::bench::queue_figures(&store, "postgres", 2000, 8).await;
    store.close().await;
}

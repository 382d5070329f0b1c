//! Queue figures on SQLite (`cargo bench -p voidrunner-store-sqlite`): enqueue and claim
//! latency, enqueue→claim through the work signal, claims/s with concurrent claimers.

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (store, _dir) = voidrunner_store_sqlite::testing::fresh_store().await;
    voidrunner_store::conformance::bench::queue_figures(&store, "sqlite", 2000, 8).await;
}

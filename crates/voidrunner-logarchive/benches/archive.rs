//! Archive and read-back throughput on the local filesystem backend with a real SQLite store:
//! one execution with 50 MB of output in 64 KiB chunks (the worker's largest batch unit).
//! `cargo bench -p voidrunner-logarchive --bench archive`

use std::sync::Arc;
use std::time::{Duration, Instant};

use voidrunner_domain::Verdict;
use voidrunner_logarchive::{Archiver, ArchiverSettings, LogReader, ObjectStoreConfig};
use voidrunner_store::conformance::{claim, complete, create_user, lease_of, new_execution};
use voidrunner_store::{LogChunk, LogStream, Store};

const TOTAL: usize = 50 << 20;
const CHUNK: usize = 64 << 10;

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let (sqlite, _db) = voidrunner_store_sqlite::testing::fresh_store().await;
        let store: Arc<dyn Store> = Arc::new(sqlite.clone());
        let dir = tempfile::tempdir().expect("tempdir");
        let objects = ObjectStoreConfig::default()
            .build(dir.path())
            .expect("objects");
        let owner = create_user(&sqlite, "bench@example.com").await;
        store
            .enqueue_execution(new_execution(owner.id, None, 5, voidrunner_store::now()))
            .await
            .expect("enqueue");
        let running = claim(&sqlite, "w", voidrunner_store::now())
            .await
            .expect("claim");
        let chunk: Vec<u8> = (0..CHUNK).map(|i| b'a' + (i % 26) as u8).collect();
        for _ in 0..TOTAL / CHUNK / 16 {
            let batch: Vec<LogChunk> = (0..16)
                .map(|_| LogChunk {
                    stream: LogStream::Stdout,
                    data: chunk.clone(),
                })
                .collect();
            store
                .append_logs(&lease_of(&running), &batch, voidrunner_store::now())
                .await
                .expect("append");
        }
        let done = complete(&sqlite, &running, Verdict::Exited { code: 0 }).await;
        let archiver = Archiver::new(
            store.clone(),
            objects.clone(),
            ArchiverSettings {
                threshold_bytes: 1,
                batch: 1,
                interval: Duration::from_secs(1),
            },
            None,
        );
        let t = Instant::now();
        assert_eq!(archiver.run_pass().await, 1);
        let archive = t.elapsed();
        let reader = LogReader::new(store, Some(objects));
        let t = Instant::now();
        let mut cursor = reader.cursor(done.id, 0).await.expect("cursor");
        let mut bytes = 0usize;
        loop {
            let page = cursor.next_page(512).await.expect("page");
            if page.is_empty() {
                break;
            }
            bytes += page
                .iter()
                .filter(|e| e.stream == LogStream::Stdout)
                .map(|e| e.data.len())
                .sum::<usize>();
        }
        let read = t.elapsed();
        assert_eq!(bytes, TOTAL);
        let mbps = |d: Duration| TOTAL as f64 / 1e6 / d.as_secs_f64();
        println!(
            "archive 50 MB (copy rows → object, verify, commit): {:.2} s ({:.0} MB/s)",
            archive.as_secs_f64(),
            mbps(archive)
        );
        println!(
            "read back from the archive (cursor, 512-event pages): {:.2} s ({:.0} MB/s)",
            read.as_secs_f64(),
            mbps(read)
        );
    });
}

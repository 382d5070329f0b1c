//! [`RetentionStore`] on sqlite (placeholder: deletes nothing yet).

use voidrunner_domain::Timestamp;
use voidrunner_store::{RetentionStore, StoreResult};

use crate::SqliteStore;

#[async_trait::async_trait]
impl RetentionStore for SqliteStore {
    async fn purge_jobs(&self, _finished_before: Timestamp, _limit: u32) -> StoreResult<u64> {
        Ok(0)
    }

    async fn purge_workflows(&self, _finished_before: Timestamp, _limit: u32) -> StoreResult<u64> {
        Ok(0)
    }

    async fn purge_hook_deliveries(
        &self,
        _received_before: Timestamp,
        _limit: u32,
    ) -> StoreResult<u64> {
        Ok(0)
    }
}

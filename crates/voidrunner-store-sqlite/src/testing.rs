//! Helpers for tests in other crates (feature `testing`).

use tempfile::TempDir;

use crate::{SqliteOptions, SqliteStore};

/// A migrated store in a fresh temporary directory. Keep the [`TempDir`] alive for as long as
/// the store is used: dropping it deletes the database.
///
/// # Panics
/// When the temporary directory or the database cannot be created (a broken test host).
pub async fn fresh_store() -> (SqliteStore, TempDir) {
    let dir = tempfile::tempdir().expect("create temp dir for sqlite test store");
    let opts = SqliteOptions {
        max_read_connections: 4,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open(&dir.path().join("voidrunner.db"), opts)
        .await
        .expect("open sqlite test store");
    (store, dir)
}

#[async_trait::async_trait]
impl voidrunner_store::conformance::TestHooks for SqliteStore {
    async fn set_last_execution_status(
        &self,
        task: voidrunner_domain::TaskId,
        status: Option<voidrunner_domain::ExecutionStatus>,
    ) -> voidrunner_store::StoreResult<()> {
        sqlx::query("UPDATE tasks SET last_execution_status = ? WHERE id = ?")
            .bind(status.map(|s| s.as_str()))
            .bind(crate::convert::text(task.as_uuid()))
            .execute(&self.writer)
            .await
            .map_err(crate::error::map_sqlx)?;
        Ok(())
    }
}

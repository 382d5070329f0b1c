//! [`voidrunner_store::LogArchiveStore`] for sqlite.

use voidrunner_store::LogArchiveStore;

use crate::SqliteStore;

#[async_trait::async_trait]
impl LogArchiveStore for SqliteStore {}

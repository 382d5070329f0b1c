//! [`voidrunner_store::StatsStore`] for sqlite.

use voidrunner_store::StatsStore;

use crate::SqliteStore;

#[async_trait::async_trait]
impl StatsStore for SqliteStore {}

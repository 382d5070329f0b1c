//! [`voidrunner_store::StatsStore`] for postgres.

use voidrunner_store::StatsStore;

use crate::PostgresStore;

#[async_trait::async_trait]
impl StatsStore for PostgresStore {}

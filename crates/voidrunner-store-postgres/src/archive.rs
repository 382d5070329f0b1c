//! [`voidrunner_store::LogArchiveStore`] for postgres.

use voidrunner_store::LogArchiveStore;

use crate::PostgresStore;

#[async_trait::async_trait]
impl LogArchiveStore for PostgresStore {}

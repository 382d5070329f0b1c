//! [`voidrunner_store::InputStore`] for postgres.

use voidrunner_store::InputStore;

use crate::PostgresStore;

#[async_trait::async_trait]
impl InputStore for PostgresStore {}

//! [`voidrunner_store::InputStore`] for sqlite.

use voidrunner_store::InputStore;

use crate::SqliteStore;

#[async_trait::async_trait]
impl InputStore for SqliteStore {}

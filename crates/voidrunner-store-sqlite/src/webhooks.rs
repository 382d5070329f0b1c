//! [`voidrunner_store::WebhookStore`] for sqlite.

use voidrunner_store::WebhookStore;

use crate::SqliteStore;

#[async_trait::async_trait]
impl WebhookStore for SqliteStore {}

//! [`voidrunner_store::WebhookStore`] for postgres.

use voidrunner_store::WebhookStore;

use crate::PostgresStore;

#[async_trait::async_trait]
impl WebhookStore for PostgresStore {}

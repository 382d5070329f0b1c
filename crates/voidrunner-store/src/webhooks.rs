//! Webhook deliveries: one row per execution with a `callback_url`, created by the database
//! when the execution becomes terminal, claimed and recorded by the webhook dispatcher.

/// Durable webhook delivery state.
#[async_trait::async_trait]
pub trait WebhookStore {}

//! Webhooks: `GET /api/v1/webhooks/signing-secret` and `GET /api/v1/executions/{id}/webhook`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `GET /api/v1/webhooks/signing-secret`: what a receiver needs to check signatures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SigningSecretResponse {
    /// The caller's signing secret (`whsec_…`); its UTF-8 bytes are the HMAC key.
    pub secret: String,
    /// Always `hmac-sha256`.
    pub algorithm: String,
    /// The header carrying `sha256=<hex>` (`X-VoidRunner-Signature`).
    pub signature_header: String,
    /// The header carrying the signed unix timestamp (`X-VoidRunner-Timestamp`).
    pub timestamp_header: String,
    /// What is signed: `<timestamp>.<body>`.
    pub signed_payload: String,
}

/// `GET /api/v1/executions/{id}/webhook`: the delivery of an execution's final result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookDeliveryResponse {
    /// The execution (also the `X-VoidRunner-Delivery` header).
    pub execution_id: uuid::Uuid,
    /// Target.
    pub url: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    /// Attempts started so far.
    pub attempts: u32,
    /// HTTP status of the last answer.
    pub last_status: Option<u16>,
    /// Why the last attempt did not deliver (refused target, status, timeout, …).
    pub last_error: Option<String>,
    /// When a pending delivery is (re)tried next.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When the execution finished and the delivery was created.
    pub created_at: DateTime<Utc>,
    /// When the receiver answered 2xx.
    pub delivered_at: Option<DateTime<Utc>>,
}

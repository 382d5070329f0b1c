//! Webhook deliveries: one row per execution with a `callback_url`, created by the database
//! when the execution becomes terminal, claimed and recorded by the webhook dispatcher.
//!
//! Protocol (every backend):
//! - The row is inserted `pending` with `next_attempt_at = now` by a trigger, in the same
//!   transaction that makes the execution terminal, whatever path did it (result, cancel,
//!   dead letter). So a finished execution with a callback always has exactly one delivery.
//! - [`WebhookStore::claim_webhook_deliveries`] takes due `pending` rows (`next_attempt_at <=
//!   now`), oldest due first, and in the same statement sets `attempts + 1` and
//!   `next_attempt_at = now + lease`: the row is invisible to other claimers until the lease
//!   runs out (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: the single writer). A
//!   dispatcher that dies mid-send loses only that attempt; the row is claimed again later.
//! - [`WebhookStore::record_webhook_attempt`] writes the outcome only when the row is still
//!   `pending` with the claimed attempt number (the fencing token), so a slow dispatcher whose
//!   lease ran out cannot overwrite the outcome of a later attempt.

use std::time::Duration;

use voidrunner_domain::{ExecutionId, Timestamp, UserId};

use crate::{Scope, StoreResult};

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    /// Not delivered yet; will be (re)tried at `next_attempt_at`.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up: refused target, a 4xx answer, or attempts used up.
    Failed,
}

impl DeliveryState {
    /// Stable storage / wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    /// Parses the storage / wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|st| st.as_str() == s)
    }
}

/// One execution's webhook delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    /// The execution whose final state is delivered (also the delivery id).
    pub execution_id: ExecutionId,
    /// Its owner (whose signing key signs it).
    pub owner_id: UserId,
    /// Target URL, as given at enqueue.
    pub url: String,
    /// Current state.
    pub state: DeliveryState,
    /// Attempts started so far (a claim counts as an attempt).
    pub attempts: u32,
    /// When a pending delivery is due (or its current lease ends).
    pub next_attempt_at: Option<Timestamp>,
    /// HTTP status of the last answer, if any.
    pub last_status: Option<u16>,
    /// Why the last attempt did not deliver (operator- and user-facing, no secrets).
    pub last_error: Option<String>,
    /// When the delivery was created (the execution became terminal).
    pub created_at: Timestamp,
    /// When a 2xx was received.
    pub delivered_at: Option<Timestamp>,
    /// Last change.
    pub updated_at: Timestamp,
}

/// What one attempt achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// 2xx.
    Delivered {
        /// The status received.
        status: u16,
    },
    /// Try again at `retry_at` (5xx, 408, 429, timeout, connection error).
    Retry {
        /// The status received, if any.
        status: Option<u16>,
        /// What went wrong.
        error: String,
        /// Earliest next attempt.
        retry_at: Timestamp,
    },
    /// Give up (refused target, other 4xx, attempts used up).
    Failed {
        /// The status received, if any.
        status: Option<u16>,
        /// Why.
        error: String,
    },
}

/// Durable webhook delivery state.
#[async_trait::async_trait]
pub trait WebhookStore {
    /// Claims up to `limit` due pending deliveries with a lease of `lease` (see the module
    /// docs); each returned row carries the attempt number this claim started.
    async fn claim_webhook_deliveries(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> StoreResult<Vec<WebhookDelivery>>;

    /// Records the outcome of attempt `attempt`; `Ok(false)` (nothing written) when the row
    /// is no longer pending at that attempt.
    async fn record_webhook_attempt(
        &self,
        execution_id: ExecutionId,
        attempt: u32,
        outcome: AttemptOutcome,
        now: Timestamp,
    ) -> StoreResult<bool>;

    /// The delivery of an execution within scope; `NotFound` when the execution is missing,
    /// out of scope, or has no delivery (no callback, or not finished yet).
    async fn get_webhook_delivery(
        &self,
        scope: Scope,
        execution_id: ExecutionId,
    ) -> StoreResult<WebhookDelivery>;
}

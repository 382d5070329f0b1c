//! [`voidrunner_store::WebhookStore`] for sqlite. A claim is one `UPDATE … RETURNING` on the
//! single writer connection, so two claimers can never take the same due row.

use std::time::Duration;

use uuid::fmt::Hyphenated;
use voidrunner_domain::{ExecutionId, Timestamp, UserId};
use voidrunner_store::{
    AttemptOutcome, DeliveryState, Scope, StoreError, StoreResult, WebhookDelivery, WebhookStore,
};

use crate::SqliteStore;
use crate::convert::{micros, opt_micros, opt_ts, text, ts};
use crate::error::{corrupt, map_sqlx};

const COLUMNS: &str = "execution_id, owner_id, url, state, attempts, next_attempt_at, \
    last_status, last_error, created_at, delivered_at, updated_at";

/// A `webhook_deliveries` row.
#[derive(Debug, sqlx::FromRow)]
struct DeliveryRow {
    execution_id: Hyphenated,
    owner_id: Hyphenated,
    url: String,
    state: String,
    attempts: i64,
    next_attempt_at: Option<i64>,
    last_status: Option<i64>,
    last_error: Option<String>,
    created_at: i64,
    delivered_at: Option<i64>,
    updated_at: i64,
}

impl DeliveryRow {
    fn into_delivery(self) -> StoreResult<WebhookDelivery> {
        Ok(WebhookDelivery {
            execution_id: ExecutionId(self.execution_id.into_uuid()),
            owner_id: UserId(self.owner_id.into_uuid()),
            state: DeliveryState::parse(&self.state)
                .ok_or_else(|| corrupt("webhook_deliveries.state", &self.state))?,
            url: self.url,
            attempts: u32::try_from(self.attempts)
                .map_err(|_| corrupt("webhook_deliveries.attempts", self.attempts))?,
            next_attempt_at: opt_ts("webhook_deliveries.next_attempt_at", self.next_attempt_at)?,
            last_status: self.last_status.and_then(|s| u16::try_from(s).ok()),
            last_error: self.last_error,
            created_at: ts("webhook_deliveries.created_at", self.created_at)?,
            delivered_at: opt_ts("webhook_deliveries.delivered_at", self.delivered_at)?,
            updated_at: ts("webhook_deliveries.updated_at", self.updated_at)?,
        })
    }
}

/// Columns an outcome writes: state, last_status, last_error, next_attempt_at, delivered_at.
type OutcomeColumns = (
    DeliveryState,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<i64>,
);

/// The column values an outcome writes.
pub(crate) fn outcome_columns(outcome: AttemptOutcome, now: Timestamp) -> OutcomeColumns {
    match outcome {
        AttemptOutcome::Delivered { status } => (
            DeliveryState::Delivered,
            Some(i64::from(status)),
            None,
            None,
            Some(micros(now)),
        ),
        AttemptOutcome::Retry {
            status,
            error,
            retry_at,
        } => (
            DeliveryState::Pending,
            status.map(i64::from),
            Some(error),
            opt_micros(Some(retry_at)),
            None,
        ),
        AttemptOutcome::Failed { status, error } => (
            DeliveryState::Failed,
            status.map(i64::from),
            Some(error),
            None,
            None,
        ),
    }
}

#[async_trait::async_trait]
impl WebhookStore for SqliteStore {
    async fn claim_webhook_deliveries(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> StoreResult<Vec<WebhookDelivery>> {
        let lease = chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let sql = format!(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = ?1, \
                 updated_at = ?2 \
             WHERE execution_id IN (SELECT execution_id FROM webhook_deliveries \
                 WHERE state = 'pending' AND next_attempt_at <= ?2 \
                 ORDER BY next_attempt_at, execution_id LIMIT ?3) \
             RETURNING {COLUMNS}"
        );
        let rows = sqlx::query_as::<_, DeliveryRow>(&sql)
            .bind(micros(now.checked_add_signed(lease).unwrap_or(now)))
            .bind(micros(now))
            .bind(i64::from(limit))
            .fetch_all(&self.writer)
            .await
            .map_err(map_sqlx)?;
        let mut out = rows
            .into_iter()
            .map(DeliveryRow::into_delivery)
            .collect::<StoreResult<Vec<_>>>()?;
        out.sort_by_key(|d| (d.created_at, d.execution_id));
        Ok(out)
    }

    async fn record_webhook_attempt(
        &self,
        execution_id: ExecutionId,
        attempt: u32,
        outcome: AttemptOutcome,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let (state, status, error, next, delivered) = outcome_columns(outcome, now);
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET state = ?, last_status = ?, last_error = ?, \
                 next_attempt_at = ?, delivered_at = ?, updated_at = ? \
             WHERE execution_id = ? AND state = 'pending' AND attempts = ?",
        )
        .bind(state.as_str())
        .bind(status)
        .bind(error)
        .bind(next)
        .bind(delivered)
        .bind(micros(now))
        .bind(text(execution_id.as_uuid()))
        .bind(i64::from(attempt))
        .execute(&self.writer)
        .await
        .map_err(map_sqlx)?;
        Ok(done.rows_affected() == 1)
    }

    async fn get_webhook_delivery(
        &self,
        scope: Scope,
        execution_id: ExecutionId,
    ) -> StoreResult<WebhookDelivery> {
        let owner = match scope {
            Scope::Owner(o) => Some(text(o.as_uuid())),
            Scope::All => None,
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM webhook_deliveries \
             WHERE execution_id = ? AND (?2 IS NULL OR owner_id = ?2)"
        );
        sqlx::query_as::<_, DeliveryRow>(&sql)
            .bind(text(execution_id.as_uuid()))
            .bind(owner)
            .fetch_optional(&self.reader)
            .await
            .map_err(map_sqlx)?
            .ok_or(StoreError::NotFound)?
            .into_delivery()
    }
}

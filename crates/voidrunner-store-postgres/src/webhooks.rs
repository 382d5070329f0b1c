//! [`voidrunner_store::WebhookStore`] for postgres. A claim locks due rows with
//! `FOR UPDATE SKIP LOCKED` and pushes their `next_attempt_at` to the lease end in the same
//! statement, so concurrent dispatchers (any process) never take the same attempt.

use std::time::Duration;

use voidrunner_domain::{ExecutionId, Timestamp, UserId};
use voidrunner_store::{
    AttemptOutcome, DeliveryState, Scope, StoreError, StoreResult, WebhookDelivery, WebhookStore,
};

use crate::PostgresStore;
use crate::error::{corrupt, map_sqlx};

const COLUMNS: &str = "execution_id, owner_id, url, state, attempts, next_attempt_at, \
    last_status, last_error, created_at, delivered_at, updated_at";

/// A `webhook_deliveries` row.
#[derive(Debug, sqlx::FromRow)]
struct DeliveryRow {
    execution_id: uuid::Uuid,
    owner_id: uuid::Uuid,
    url: String,
    state: String,
    attempts: i32,
    next_attempt_at: Option<Timestamp>,
    last_status: Option<i32>,
    last_error: Option<String>,
    created_at: Timestamp,
    delivered_at: Option<Timestamp>,
    updated_at: Timestamp,
}

impl DeliveryRow {
    fn into_delivery(self) -> StoreResult<WebhookDelivery> {
        Ok(WebhookDelivery {
            execution_id: ExecutionId(self.execution_id),
            owner_id: UserId(self.owner_id),
            state: DeliveryState::parse(&self.state)
                .ok_or_else(|| corrupt("webhook_deliveries.state", &self.state))?,
            url: self.url,
            attempts: u32::try_from(self.attempts)
                .map_err(|_| corrupt("webhook_deliveries.attempts", self.attempts))?,
            next_attempt_at: self.next_attempt_at,
            last_status: self.last_status.and_then(|s| u16::try_from(s).ok()),
            last_error: self.last_error,
            created_at: self.created_at,
            delivered_at: self.delivered_at,
            updated_at: self.updated_at,
        })
    }
}

#[async_trait::async_trait]
impl WebhookStore for PostgresStore {
    async fn claim_webhook_deliveries(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> StoreResult<Vec<WebhookDelivery>> {
        let lease = chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let sql = format!(
            "UPDATE webhook_deliveries d SET attempts = d.attempts + 1, next_attempt_at = $1, \
                 updated_at = $2 \
             FROM (SELECT execution_id FROM webhook_deliveries \
                   WHERE state = 'pending' AND next_attempt_at <= $2 \
                   ORDER BY next_attempt_at, execution_id LIMIT $3 \
                   FOR UPDATE SKIP LOCKED) due \
             WHERE d.execution_id = due.execution_id \
             RETURNING {}",
            COLUMNS
                .split(", ")
                .map(|c| format!("d.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let rows = sqlx::query_as::<_, DeliveryRow>(&sql)
            .bind(now.checked_add_signed(lease).unwrap_or(now))
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
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
        let (state, status, error, next, delivered) = match outcome {
            AttemptOutcome::Delivered { status } => (
                DeliveryState::Delivered,
                Some(status),
                None,
                None,
                Some(now),
            ),
            AttemptOutcome::Retry {
                status,
                error,
                retry_at,
            } => (
                DeliveryState::Pending,
                status,
                Some(error),
                Some(retry_at),
                None,
            ),
            AttemptOutcome::Failed { status, error } => {
                (DeliveryState::Failed, status, Some(error), None, None)
            }
        };
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET state = $1, last_status = $2, last_error = $3, \
                 next_attempt_at = $4, delivered_at = $5, updated_at = $6 \
             WHERE execution_id = $7 AND state = 'pending' AND attempts = $8",
        )
        .bind(state.as_str())
        .bind(status.map(i32::from))
        .bind(error)
        .bind(next)
        .bind(delivered)
        .bind(now)
        .bind(execution_id.as_uuid())
        .bind(i32::try_from(attempt).unwrap_or(i32::MAX))
        .execute(&self.pool)
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
            Scope::Owner(o) => Some(o.as_uuid()),
            Scope::All => None,
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM webhook_deliveries \
             WHERE execution_id = $1 AND ($2::uuid IS NULL OR owner_id = $2)"
        );
        sqlx::query_as::<_, DeliveryRow>(&sql)
            .bind(execution_id.as_uuid())
            .bind(owner)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_sqlx)?
            .ok_or(StoreError::NotFound)?
            .into_delivery()
    }
}

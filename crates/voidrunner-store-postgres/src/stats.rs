//! [`voidrunner_store::StatsStore`] for postgres: grouped counts and bucketing in SQL,
//! percentiles in Rust (shared with SQLite, see the trait module) so both backends agree.

use sqlx::types::Json;
use voidrunner_domain::{ExecutionId, ResourceSample};
use voidrunner_store::{
    ExecutionStats, Scope, StatsRequest, StatsRows, StatsStore, StoreError, StoreResult,
};

use crate::PostgresStore;
use crate::error::map_sqlx;

/// The owner filter as a nullable parameter (`$n::uuid IS NULL OR owner_id = $n`).
fn owner(scope: Scope) -> Option<uuid::Uuid> {
    match scope {
        Scope::Owner(o) => Some(o.as_uuid()),
        Scope::All => None,
    }
}

/// Counts from `i64` (never negative in practice).
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl PostgresStore {
    /// `(key, count)` rows grouped by `key` over the window on `time_column`.
    async fn grouped(
        &self,
        req: &StatsRequest,
        key: &str,
        time_column: &str,
    ) -> StoreResult<Vec<(Option<String>, u64)>> {
        let sql = format!(
            "SELECT {key} AS k, count(*) FROM executions \
             WHERE {time_column} >= $1 AND {time_column} <= $2 \
               AND ($3::uuid IS NULL OR owner_id = $3) GROUP BY k"
        );
        let rows = sqlx::query_as::<_, (Option<String>, i64)>(&sql)
            .bind(req.since)
            .bind(req.until)
            .bind(owner(req.scope))
            .fetch_all(&self.pool)
            .await
            .map_err(map_sqlx)?;
        Ok(rows.into_iter().map(|(k, n)| (k, count(n))).collect())
    }
}

#[async_trait::async_trait]
impl StatsStore for PostgresStore {
    async fn execution_stats(&self, req: &StatsRequest) -> StoreResult<ExecutionStats> {
        let keyed = |rows: Vec<(Option<String>, u64)>| {
            rows.into_iter()
                .filter_map(|(k, n)| Some((k?, n)))
                .collect::<Vec<_>>()
        };
        let status_counts = keyed(self.grouped(req, "status", "created_at").await?);
        let language_counts = keyed(self.grouped(req, "language", "created_at").await?);
        let verdict_counts = self
            .grouped(req, "verdict ->> 'kind'", "finished_at")
            .await?;

        let bucket_counts = sqlx::query_as::<_, (i64, i64)>(
            "SELECT floor(extract(epoch FROM finished_at - $1) * 1000000 / $4)::bigint AS b, \
                    count(*) FROM executions \
             WHERE finished_at >= $1 AND finished_at <= $2 \
               AND ($3::uuid IS NULL OR owner_id = $3) GROUP BY b",
        )
        .bind(req.since)
        .bind(req.until)
        .bind(owner(req.scope))
        .bind(req.bucket_width_micros())
        .fetch_all(&self.pool)
        .await
        .map_err(map_sqlx)?
        .into_iter()
        .map(|(b, n)| (b, count(n)))
        .collect();

        let samples = sqlx::query_as::<_, (Option<i64>, Option<i64>)>(
            "SELECT wall_time_ms, \
                    (extract(epoch FROM started_at - created_at) * 1000000)::bigint \
             FROM executions \
             WHERE finished_at >= $1 AND finished_at <= $2 \
               AND ($3::uuid IS NULL OR owner_id = $3) \
             ORDER BY finished_at DESC LIMIT $4",
        )
        .bind(req.since)
        .bind(req.until)
        .bind(owner(req.scope))
        .bind(i64::from(req.max_samples) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(map_sqlx)?;

        let (queued, running, dead) = sqlx::query_as::<_, (i64, i64, i64)>(
            "SELECT count(*) FILTER (WHERE status = 'queued'), \
                    count(*) FILTER (WHERE status = 'running'), \
                    count(*) FILTER (WHERE dead_lettered_at IS NOT NULL) \
             FROM executions \
             WHERE (status IN ('queued', 'running') OR dead_lettered_at IS NOT NULL) \
               AND ($1::uuid IS NULL OR owner_id = $1)",
        )
        .bind(owner(req.scope))
        .fetch_one(&self.pool)
        .await
        .map_err(map_sqlx)?;

        Ok(ExecutionStats::assemble(
            req,
            StatsRows {
                status_counts,
                language_counts,
                verdict_counts,
                bucket_counts,
                samples,
                queued_now: count(queued),
                running_now: count(running),
                dead_lettered: count(dead),
            },
        ))
    }

    async fn resource_samples(
        &self,
        scope: Scope,
        id: ExecutionId,
    ) -> StoreResult<Vec<ResourceSample>> {
        let (samples,) = sqlx::query_as::<_, (Option<Json<Vec<ResourceSample>>>,)>(
            "SELECT resource_samples FROM executions \
             WHERE id = $1 AND ($2::uuid IS NULL OR owner_id = $2)",
        )
        .bind(id.as_uuid())
        .bind(owner(scope))
        .fetch_optional(&self.pool)
        .await
        .map_err(map_sqlx)?
        .ok_or(StoreError::NotFound)?;
        Ok(samples.map(|j| j.0).unwrap_or_default())
    }
}

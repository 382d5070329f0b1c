//! [`voidrunner_store::StatsStore`] for sqlite: grouped counts and bucketing in SQL over the
//! integer microsecond timestamps, percentiles in Rust (see the trait module).

use sqlx::types::Json;
use voidrunner_domain::{ExecutionId, ResourceSample};
use voidrunner_store::{
    ExecutionStats, Scope, StatsRequest, StatsRows, StatsStore, StoreError, StoreResult,
};

use crate::SqliteStore;
use crate::convert::{micros, text};
use crate::error::map_sqlx;

/// `AND owner_id = ?` when the scope is one user (bound by [`bind_scope`]).
fn scope_sql(scope: Scope) -> &'static str {
    match scope {
        Scope::Owner(_) => " AND owner_id = ?",
        Scope::All => "",
    }
}

/// Counts from `i64` (never negative in practice).
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl SqliteStore {
    /// `(key, count)` rows of a grouped query over the window `[since, until]` on `column`.
    async fn grouped(
        &self,
        req: &StatsRequest,
        key: &str,
        time_column: &str,
    ) -> StoreResult<Vec<(Option<String>, u64)>> {
        let sql = format!(
            "SELECT {key} AS k, count(*) FROM executions \
             WHERE {time_column} >= ? AND {time_column} <= ?{} GROUP BY k",
            scope_sql(req.scope)
        );
        let mut q = sqlx::query_as::<_, (Option<String>, i64)>(&sql)
            .bind(micros(req.since))
            .bind(micros(req.until));
        if let Scope::Owner(owner) = req.scope {
            q = q.bind(text(owner.as_uuid()));
        }
        let rows = q.fetch_all(&self.reader).await.map_err(map_sqlx)?;
        Ok(rows.into_iter().map(|(k, n)| (k, count(n))).collect())
    }
}

#[async_trait::async_trait]
impl StatsStore for SqliteStore {
    async fn execution_stats(&self, req: &StatsRequest) -> StoreResult<ExecutionStats> {
        let scope = scope_sql(req.scope);
        let owner = match req.scope {
            Scope::Owner(o) => Some(text(o.as_uuid())),
            Scope::All => None,
        };
        let keyed = |rows: Vec<(Option<String>, u64)>| {
            rows.into_iter()
                .filter_map(|(k, n)| Some((k?, n)))
                .collect::<Vec<_>>()
        };
        let status_counts = keyed(self.grouped(req, "status", "created_at").await?);
        let language_counts = keyed(self.grouped(req, "language", "created_at").await?);
        let verdict_counts = self
            .grouped(req, "json_extract(verdict, '$.kind')", "finished_at")
            .await?;

        let width = req.bucket_width_micros();
        let sql = format!(
            "SELECT (finished_at - ?) / ? AS b, count(*) FROM executions \
             WHERE finished_at >= ? AND finished_at <= ?{scope} GROUP BY b"
        );
        let mut q = sqlx::query_as::<_, (i64, i64)>(&sql)
            .bind(micros(req.since))
            .bind(width)
            .bind(micros(req.since))
            .bind(micros(req.until));
        if let Some(o) = owner {
            q = q.bind(o);
        }
        let bucket_counts = q
            .fetch_all(&self.reader)
            .await
            .map_err(map_sqlx)?
            .into_iter()
            .map(|(b, n)| (b, count(n)))
            .collect();

        let sql = format!(
            "SELECT wall_time_ms, started_at - created_at FROM executions \
             WHERE finished_at >= ? AND finished_at <= ?{scope} \
             ORDER BY finished_at DESC LIMIT ?"
        );
        let mut q = sqlx::query_as::<_, (Option<i64>, Option<i64>)>(&sql)
            .bind(micros(req.since))
            .bind(micros(req.until));
        if let Some(o) = owner {
            q = q.bind(o);
        }
        let samples = q
            .bind(i64::from(req.max_samples) + 1)
            .fetch_all(&self.reader)
            .await
            .map_err(map_sqlx)?;

        let sql = format!(
            "SELECT coalesce(sum(status = 'queued'), 0), coalesce(sum(status = 'running'), 0), \
                    coalesce(sum(dead_lettered_at IS NOT NULL), 0) \
             FROM executions WHERE (status IN ('queued', 'running') \
                 OR dead_lettered_at IS NOT NULL){scope}"
        );
        let mut q = sqlx::query_as::<_, (i64, i64, i64)>(&sql);
        if let Some(o) = owner {
            q = q.bind(o);
        }
        let (queued, running, dead) = q.fetch_one(&self.reader).await.map_err(map_sqlx)?;

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
        let sql = format!(
            "SELECT resource_samples FROM executions WHERE id = ?{}",
            scope_sql(scope)
        );
        let mut q = sqlx::query_as::<_, (Option<Json<Vec<ResourceSample>>>,)>(&sql)
            .bind(text(id.as_uuid()));
        if let Scope::Owner(owner) = scope {
            q = q.bind(text(owner.as_uuid()));
        }
        let (samples,) = q
            .fetch_optional(&self.reader)
            .await
            .map_err(map_sqlx)?
            .ok_or(StoreError::NotFound)?;
        Ok(samples.map(|j| j.0).unwrap_or_default())
    }
}

//! Registered repositories and hook deliveries on PostgreSQL (see
//! [`voidrunner_store::RepositoryStore`]). A delivery row and the workflows it starts are
//! inserted in one transaction, the delivery first with `ON CONFLICT DO NOTHING`: a concurrent
//! redelivery waits on the primary key until the first commits, then finds its row.

use std::collections::BTreeMap;

use sqlx::types::Json;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;
use voidrunner_domain::{Timestamp, UserId};
use voidrunner_store::{
    CommitStatus, Delivery, DeliveryOutcome, DeliveryWorkflow, NewCommitStatus, NewDelivery,
    NewRepository, Repository, RepositoryId, RepositoryStore, Scope, StatusReport,
    StatusReportOutcome, StoreError, StoreResult, WorkflowId,
};

use super::rows::insert_workflow;
use super::statuses::insert_statuses;
use crate::PostgresStore;
use crate::error::map_sqlx;

/// Columns of [`RepoRow`].
const REPO_COLUMNS: &str = "id, owner_id, provider, full_name, clone_url, ci_dir, \
    fork_secrets, status_reporting, created_at";

/// A `repositories` row without its sealed webhook secret.
#[derive(Debug, sqlx::FromRow)]
struct RepoRow {
    id: Uuid,
    owner_id: Uuid,
    provider: String,
    full_name: String,
    clone_url: String,
    ci_dir: String,
    fork_secrets: bool,
    status_reporting: Json<serde_json::Value>,
    created_at: Timestamp,
}

impl RepoRow {
    /// Converts with the repository's secret names.
    fn into_repository(self, secret_names: Vec<String>) -> StoreResult<Repository> {
        Ok(Repository {
            id: RepositoryId(self.id),
            owner_id: UserId(self.owner_id),
            provider: self.provider,
            full_name: self.full_name,
            clone_url: self.clone_url,
            ci_dir: self.ci_dir,
            fork_secrets: self.fork_secrets,
            status_reporting: self.status_reporting.0,
            secret_names,
            created_at: self.created_at,
        })
    }
}

/// The scoped `WHERE` of a repository lookup.
fn scoped(qb: &mut QueryBuilder<'_, Postgres>, scope: Scope, id: RepositoryId) {
    qb.push(" WHERE id = ").push_bind(id.0);
    if let Scope::Owner(owner) = scope {
        qb.push(" AND owner_id = ").push_bind(owner.as_uuid());
    }
}

/// Secret names of a repository, sorted.
async fn secret_names<'e, E: sqlx::PgExecutor<'e>>(exec: E, id: Uuid) -> StoreResult<Vec<String>> {
    sqlx::query_scalar("SELECT name FROM repository_secrets WHERE repository_id = $1 ORDER BY name")
        .bind(id)
        .fetch_all(exec)
        .await
        .map_err(map_sqlx)
}

/// A repository within scope on `conn` (inside the caller's transaction).
async fn repo_in(
    conn: &mut PgConnection,
    scope: Scope,
    id: RepositoryId,
) -> StoreResult<Repository> {
    let mut qb = QueryBuilder::<Postgres>::new(format!("SELECT {REPO_COLUMNS} FROM repositories"));
    scoped(&mut qb, scope, id);
    let row = qb
        .build_query_as::<RepoRow>()
        .fetch_one(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    let names = secret_names(&mut *conn, id.0).await?;
    row.into_repository(names)
}

/// A stored JSON list of workflow ids.
fn workflow_ids(ids: Vec<Uuid>) -> Vec<WorkflowId> {
    ids.into_iter().map(WorkflowId).collect()
}

#[async_trait::async_trait]
impl RepositoryStore for PostgresStore {
    async fn create_repository(
        &self,
        new: NewRepository,
        sealed_webhook_secret: Vec<u8>,
        sealed_secrets: BTreeMap<String, Vec<u8>>,
    ) -> StoreResult<Repository> {
        let id = new.id.0;
        let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
        sqlx::query(
            "INSERT INTO repositories (id, owner_id, provider, full_name, clone_url, ci_dir, \
                 fork_secrets, status_reporting, webhook_secret, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(id)
        .bind(new.owner_id.as_uuid())
        .bind(&new.provider)
        .bind(&new.full_name)
        .bind(&new.clone_url)
        .bind(&new.ci_dir)
        .bind(new.fork_secrets)
        .bind(Json(&new.status_reporting))
        .bind(&sealed_webhook_secret)
        .bind(new.created_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| match map_sqlx(e) {
            StoreError::Conflict(m) if m == "already exists" => StoreError::Conflict(format!(
                "repository {}/{} is already registered",
                new.provider, new.full_name
            )),
            other => other,
        })?;
        for (name, sealed) in &sealed_secrets {
            sqlx::query(
                "INSERT INTO repository_secrets (repository_id, name, sealed) \
                 VALUES ($1, $2, $3)",
            )
            .bind(id)
            .bind(name)
            .bind(sealed)
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        }
        let repo = repo_in(&mut tx, Scope::All, new.id).await?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(repo)
    }

    async fn get_repository(&self, scope: Scope, id: RepositoryId) -> StoreResult<Repository> {
        let mut qb =
            QueryBuilder::<Postgres>::new(format!("SELECT {REPO_COLUMNS} FROM repositories"));
        scoped(&mut qb, scope, id);
        let row = qb
            .build_query_as::<RepoRow>()
            .fetch_one(&self.pool)
            .await
            .map_err(map_sqlx)?;
        row.into_repository(secret_names(&self.pool, id.0).await?)
    }

    async fn list_repositories(&self, scope: Scope) -> StoreResult<Vec<Repository>> {
        let mut qb =
            QueryBuilder::<Postgres>::new(format!("SELECT {REPO_COLUMNS} FROM repositories"));
        if let Scope::Owner(owner) = scope {
            qb.push(" WHERE owner_id = ").push_bind(owner.as_uuid());
        }
        qb.push(" ORDER BY full_name, provider");
        let rows = qb
            .build_query_as::<RepoRow>()
            .fetch_all(&self.pool)
            .await
            .map_err(map_sqlx)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let names = secret_names(&self.pool, row.id).await?;
            out.push(row.into_repository(names)?);
        }
        Ok(out)
    }

    async fn delete_repository(&self, scope: Scope, id: RepositoryId) -> StoreResult<()> {
        let mut qb = QueryBuilder::<Postgres>::new("DELETE FROM repositories");
        scoped(&mut qb, scope, id);
        let done = qb.build().execute(&self.pool).await.map_err(map_sqlx)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn update_repository_secrets(
        &self,
        scope: Scope,
        id: RepositoryId,
        webhook_secret: Option<Vec<u8>>,
        secrets: BTreeMap<String, Option<Vec<u8>>>,
    ) -> StoreResult<Repository> {
        let key = id.0;
        let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
        let mut qb = QueryBuilder::<Postgres>::new("SELECT id FROM repositories");
        scoped(&mut qb, scope, id);
        qb.push(" FOR NO KEY UPDATE");
        qb.build().fetch_one(&mut *tx).await.map_err(map_sqlx)?;
        if let Some(sealed) = webhook_secret {
            sqlx::query("UPDATE repositories SET webhook_secret = $1 WHERE id = $2")
                .bind(sealed)
                .bind(key)
                .execute(&mut *tx)
                .await
                .map_err(map_sqlx)?;
        }
        for (name, value) in &secrets {
            let q = match value {
                Some(sealed) => sqlx::query(
                    "INSERT INTO repository_secrets (repository_id, name, sealed) \
                     VALUES ($1, $2, $3) ON CONFLICT (repository_id, name) \
                     DO UPDATE SET sealed = excluded.sealed",
                )
                .bind(key)
                .bind(name)
                .bind(sealed),
                None => sqlx::query(
                    "DELETE FROM repository_secrets WHERE repository_id = $1 AND name = $2",
                )
                .bind(key)
                .bind(name),
            };
            q.execute(&mut *tx).await.map_err(map_sqlx)?;
        }
        let repo = repo_in(&mut tx, Scope::All, id).await?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(repo)
    }

    async fn find_repository(
        &self,
        provider: &str,
        full_name: &str,
    ) -> StoreResult<Option<(Repository, Vec<u8>)>> {
        let row: Option<(Uuid, Vec<u8>)> = sqlx::query_as(
            "SELECT id, webhook_secret FROM repositories WHERE provider = $1 AND full_name = $2",
        )
        .bind(provider)
        .bind(full_name)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_sqlx)?;
        let Some((id, secret)) = row else {
            return Ok(None);
        };
        let repo = self.get_repository(Scope::All, RepositoryId(id)).await?;
        Ok(Some((repo, secret)))
    }

    async fn repository_secrets(&self, id: RepositoryId) -> StoreResult<BTreeMap<String, Vec<u8>>> {
        let rows: Vec<(String, Vec<u8>)> =
            sqlx::query_as("SELECT name, sealed FROM repository_secrets WHERE repository_id = $1")
                .bind(id.0)
                .fetch_all(&self.pool)
                .await
                .map_err(map_sqlx)?;
        Ok(rows.into_iter().collect())
    }

    async fn record_delivery(
        &self,
        delivery: NewDelivery,
        workflows: Vec<DeliveryWorkflow>,
    ) -> StoreResult<DeliveryOutcome> {
        self.record_delivery_with_statuses(delivery, workflows, Vec::new())
            .await
    }

    async fn record_delivery_with_statuses(
        &self,
        delivery: NewDelivery,
        workflows: Vec<DeliveryWorkflow>,
        statuses: Vec<NewCommitStatus>,
    ) -> StoreResult<DeliveryOutcome> {
        let ids: Vec<Uuid> = workflows.iter().map(|w| w.workflow.id.0).collect();
        let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
        // A concurrent insert of the same key waits here until the first commits (then does
        // nothing) or rolls back (then inserts).
        let inserted: Option<i32> = sqlx::query_scalar(
            "INSERT INTO hook_deliveries (provider, delivery_id, repository_id, event, summary, \
                 workflow_ids, received_at, body_sha256) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT DO NOTHING RETURNING 1",
        )
        .bind(&delivery.provider)
        .bind(&delivery.delivery_id)
        .bind(delivery.repository_id.0)
        .bind(&delivery.event)
        .bind(Json(&delivery.summary))
        .bind(Json(&ids))
        .bind(delivery.received_at)
        .bind(&delivery.body_sha256)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        if inserted.is_none() {
            // Statements see rows committed before they start: the first delivery's row.
            let first: Json<Vec<Uuid>> = sqlx::query_scalar(
                "SELECT workflow_ids FROM hook_deliveries \
                 WHERE provider = $1 AND (delivery_id = $2 OR body_sha256 = $3) LIMIT 1",
            )
            .bind(&delivery.provider)
            .bind(&delivery.delivery_id)
            .bind(&delivery.body_sha256)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_sqlx)?;
            return Ok(DeliveryOutcome::Duplicate(workflow_ids(first.0)));
        }
        for w in &workflows {
            insert_workflow(&mut tx, &w.workflow, &w.nodes, &w.sealed_secrets).await?;
        }
        insert_statuses(&mut tx, &statuses, delivery.received_at).await?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(DeliveryOutcome::Created(workflow_ids(ids)))
    }

    async fn list_deliveries(
        &self,
        scope: Scope,
        id: RepositoryId,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        self.get_repository(scope, id).await?;
        type Row = (
            String,
            String,
            Uuid,
            String,
            Json<serde_json::Value>,
            Json<Vec<Uuid>>,
            Timestamp,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT provider, delivery_id, repository_id, event, summary, workflow_ids, \
                 received_at FROM hook_deliveries WHERE repository_id = $1 \
             ORDER BY received_at DESC, delivery_id DESC LIMIT $2",
        )
        .bind(id.0)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_sqlx)?;
        rows.into_iter()
            .map(
                |(provider, delivery_id, repo, event, summary, ids, received_at)| {
                    Ok(Delivery {
                        provider,
                        delivery_id,
                        repository_id: RepositoryId(repo),
                        event,
                        summary: summary.0,
                        workflow_ids: workflow_ids(ids.0),
                        received_at,
                    })
                },
            )
            .collect()
    }

    async fn claim_status_reports(
        &self,
        node: &str,
        now: Timestamp,
        lease: std::time::Duration,
        limit: u32,
    ) -> StoreResult<Vec<StatusReport>> {
        self.claim_statuses(node, now, lease, limit).await
    }

    async fn finish_status_report(
        &self,
        workflow_id: WorkflowId,
        claim: Uuid,
        outcome: StatusReportOutcome,
        now: Timestamp,
    ) -> StoreResult<bool> {
        self.finish_status(workflow_id, claim, outcome, now).await
    }

    async fn get_commit_status(
        &self,
        workflow_id: WorkflowId,
    ) -> StoreResult<Option<CommitStatus>> {
        self.commit_status(workflow_id).await
    }
}

//! Registered repositories and hook deliveries on SQLite (see
//! [`voidrunner_store::RepositoryStore`]). A delivery and the workflows it starts are written
//! under one `BEGIN IMMEDIATE`, so a redelivery (even a concurrent one) finds the first row.

use std::collections::BTreeMap;

use sqlx::types::Json;
use sqlx::{QueryBuilder, Sqlite, Transaction};
use uuid::Uuid;
use uuid::fmt::Hyphenated;
use voidrunner_domain::{Timestamp, UserId};
use voidrunner_store::{
    CommitStatus, Delivery, DeliveryOutcome, DeliveryWorkflow, NewCommitStatus, NewDelivery,
    NewRepository, Repository, RepositoryId, RepositoryStore, Scope, StatusReport,
    StatusReportOutcome, StoreError, StoreResult, WorkflowId,
};

use super::rows::insert_workflow;
use super::statuses::insert_statuses;
use crate::SqliteStore;
use crate::convert::{micros, text, ts};
use crate::error::map_sqlx;

/// Columns of [`RepoRow`].
const REPO_COLUMNS: &str = "id, owner_id, provider, full_name, clone_url, ci_dir, \
    fork_secrets, status_reporting, created_at";

/// A `repositories` row without its sealed webhook secret.
#[derive(Debug, sqlx::FromRow)]
struct RepoRow {
    id: Hyphenated,
    owner_id: Hyphenated,
    provider: String,
    full_name: String,
    clone_url: String,
    ci_dir: String,
    fork_secrets: bool,
    status_reporting: Json<serde_json::Value>,
    created_at: i64,
}

impl RepoRow {
    /// Converts with the repository's secret names.
    fn into_repository(self, secret_names: Vec<String>) -> StoreResult<Repository> {
        Ok(Repository {
            id: RepositoryId(self.id.into_uuid()),
            owner_id: UserId(self.owner_id.into_uuid()),
            provider: self.provider,
            full_name: self.full_name,
            clone_url: self.clone_url,
            ci_dir: self.ci_dir,
            fork_secrets: self.fork_secrets,
            status_reporting: self.status_reporting.0,
            secret_names,
            created_at: ts("repositories.created_at", self.created_at)?,
        })
    }
}

/// The scoped `WHERE` of a repository lookup.
fn scoped(qb: &mut QueryBuilder<'_, Sqlite>, scope: Scope, id: RepositoryId) {
    qb.push(" WHERE id = ").push_bind(text(id.0));
    if let Scope::Owner(owner) = scope {
        qb.push(" AND owner_id = ").push_bind(text(owner.as_uuid()));
    }
}

/// Secret names of a repository, sorted.
async fn secret_names<'e, E: sqlx::SqliteExecutor<'e>>(
    exec: E,
    id: Hyphenated,
) -> StoreResult<Vec<String>> {
    sqlx::query_scalar("SELECT name FROM repository_secrets WHERE repository_id = ? ORDER BY name")
        .bind(id)
        .fetch_all(exec)
        .await
        .map_err(map_sqlx)
}

/// A repository within scope inside `tx`.
async fn repo_in(
    tx: &mut Transaction<'static, Sqlite>,
    scope: Scope,
    id: RepositoryId,
) -> StoreResult<Repository> {
    let mut qb = QueryBuilder::<Sqlite>::new(format!("SELECT {REPO_COLUMNS} FROM repositories"));
    scoped(&mut qb, scope, id);
    let row = qb
        .build_query_as::<RepoRow>()
        .fetch_one(&mut **tx)
        .await
        .map_err(map_sqlx)?;
    let names = secret_names(&mut **tx, text(id.0)).await?;
    row.into_repository(names)
}

/// A stored JSON list of workflow ids.
fn workflow_ids(ids: Vec<Uuid>) -> Vec<WorkflowId> {
    ids.into_iter().map(WorkflowId).collect()
}

#[async_trait::async_trait]
impl RepositoryStore for SqliteStore {
    async fn create_repository(
        &self,
        new: NewRepository,
        sealed_webhook_secret: Vec<u8>,
        sealed_secrets: BTreeMap<String, Vec<u8>>,
    ) -> StoreResult<Repository> {
        let id = text(new.id.0);
        let mut tx = self.begin_immediate().await?;
        sqlx::query(
            "INSERT INTO repositories (id, owner_id, provider, full_name, clone_url, ci_dir, \
                 fork_secrets, status_reporting, webhook_secret, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(text(new.owner_id.as_uuid()))
        .bind(&new.provider)
        .bind(&new.full_name)
        .bind(&new.clone_url)
        .bind(&new.ci_dir)
        .bind(new.fork_secrets)
        .bind(Json(&new.status_reporting))
        .bind(&sealed_webhook_secret)
        .bind(micros(new.created_at))
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
                "INSERT INTO repository_secrets (repository_id, name, sealed) VALUES (?, ?, ?)",
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
            QueryBuilder::<Sqlite>::new(format!("SELECT {REPO_COLUMNS} FROM repositories"));
        scoped(&mut qb, scope, id);
        let row = qb
            .build_query_as::<RepoRow>()
            .fetch_one(&self.reader)
            .await
            .map_err(map_sqlx)?;
        row.into_repository(secret_names(&self.reader, text(id.0)).await?)
    }

    async fn list_repositories(&self, scope: Scope) -> StoreResult<Vec<Repository>> {
        let mut qb =
            QueryBuilder::<Sqlite>::new(format!("SELECT {REPO_COLUMNS} FROM repositories"));
        if let Scope::Owner(owner) = scope {
            qb.push(" WHERE owner_id = ")
                .push_bind(text(owner.as_uuid()));
        }
        qb.push(" ORDER BY full_name, provider");
        let rows = qb
            .build_query_as::<RepoRow>()
            .fetch_all(&self.reader)
            .await
            .map_err(map_sqlx)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let names = secret_names(&self.reader, row.id).await?;
            out.push(row.into_repository(names)?);
        }
        Ok(out)
    }

    async fn delete_repository(&self, scope: Scope, id: RepositoryId) -> StoreResult<()> {
        let mut qb = QueryBuilder::<Sqlite>::new("DELETE FROM repositories");
        scoped(&mut qb, scope, id);
        let done = qb.build().execute(&self.writer).await.map_err(map_sqlx)?;
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
        let key = text(id.0);
        let mut tx = self.begin_immediate().await?;
        repo_in(&mut tx, scope, id).await?;
        if let Some(sealed) = webhook_secret {
            sqlx::query("UPDATE repositories SET webhook_secret = ? WHERE id = ?")
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
                     VALUES (?, ?, ?) ON CONFLICT (repository_id, name) \
                     DO UPDATE SET sealed = excluded.sealed",
                )
                .bind(key)
                .bind(name)
                .bind(sealed),
                None => sqlx::query(
                    "DELETE FROM repository_secrets WHERE repository_id = ? AND name = ?",
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
        let row: Option<(Hyphenated, Vec<u8>)> = sqlx::query_as(
            "SELECT id, webhook_secret FROM repositories WHERE provider = ? AND full_name = ?",
        )
        .bind(provider)
        .bind(full_name)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_sqlx)?;
        let Some((id, secret)) = row else {
            return Ok(None);
        };
        let repo = self
            .get_repository(Scope::All, RepositoryId(id.into_uuid()))
            .await?;
        Ok(Some((repo, secret)))
    }

    async fn repository_secrets(&self, id: RepositoryId) -> StoreResult<BTreeMap<String, Vec<u8>>> {
        let rows: Vec<(String, Vec<u8>)> =
            sqlx::query_as("SELECT name, sealed FROM repository_secrets WHERE repository_id = ?")
                .bind(text(id.0))
                .fetch_all(&self.reader)
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
        let mut tx = self.begin_immediate().await?;
        let first: Option<Json<Vec<Uuid>>> = sqlx::query_scalar(
            "SELECT workflow_ids FROM hook_deliveries \
             WHERE provider = ? AND (delivery_id = ? OR body_sha256 = ?) LIMIT 1",
        )
        .bind(&delivery.provider)
        .bind(&delivery.delivery_id)
        .bind(&delivery.body_sha256)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        if let Some(ids) = first {
            return Ok(DeliveryOutcome::Duplicate(workflow_ids(ids.0)));
        }
        let ids: Vec<Uuid> = workflows.iter().map(|w| w.workflow.id.0).collect();
        sqlx::query(
            "INSERT INTO hook_deliveries (provider, delivery_id, body_sha256, repository_id, \
                 event, summary, workflow_ids, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&delivery.provider)
        .bind(&delivery.delivery_id)
        .bind(&delivery.body_sha256)
        .bind(text(delivery.repository_id.0))
        .bind(&delivery.event)
        .bind(Json(&delivery.summary))
        .bind(Json(&ids))
        .bind(micros(delivery.received_at))
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?;
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
            Hyphenated,
            String,
            Json<serde_json::Value>,
            Json<Vec<Uuid>>,
            i64,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT provider, delivery_id, repository_id, event, summary, workflow_ids, \
                 received_at FROM hook_deliveries WHERE repository_id = ? \
             ORDER BY received_at DESC, delivery_id DESC LIMIT ?",
        )
        .bind(text(id.0))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(map_sqlx)?;
        rows.into_iter()
            .map(
                |(provider, delivery_id, repo, event, summary, ids, received_at)| {
                    Ok(Delivery {
                        provider,
                        delivery_id,
                        repository_id: RepositoryId(repo.into_uuid()),
                        event,
                        summary: summary.0,
                        workflow_ids: workflow_ids(ids.0),
                        received_at: ts("hook_deliveries.received_at", received_at)?,
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

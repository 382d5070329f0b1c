//! Tasks on PostgreSQL: CRUD within a scope, soft delete, filtered keyset pagination.

use std::collections::BTreeMap;

use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder};
use voidrunner_domain::{NewTask, Task, TaskId, TaskPatch, Timestamp};
use voidrunner_store::{
    Page, PageRequest, Scope, StoreError, StoreResult, TaskCursor, TaskFilter, TaskStore,
};

use crate::PostgresStore;
use crate::convert::{TaskRow, search_text};
use crate::error::map_sqlx;

/// Appends `AND owner_id = $n` when the scope is one user.
fn push_scope(qb: &mut QueryBuilder<'_, Postgres>, scope: Scope) {
    if let Scope::Owner(owner) = scope {
        qb.push(" AND owner_id = ").push_bind(owner.as_uuid());
    }
}

/// Selects one live task within scope.
fn select_one(scope: Scope, id: TaskId) -> QueryBuilder<'static, Postgres> {
    let mut qb = QueryBuilder::new(format!(
        "SELECT {} FROM tasks WHERE deleted_at IS NULL AND id = ",
        TaskRow::COLUMNS
    ));
    qb.push_bind(id.as_uuid());
    push_scope(&mut qb, scope);
    qb
}

#[async_trait::async_trait]
impl TaskStore for PostgresStore {
    async fn create_task(&self, t: NewTask) -> StoreResult<Task> {
        sqlx::query(
            "INSERT INTO tasks (id, owner_id, name, description, language, code, stdin, env, \
             limits, priority, tags, metadata, search_text, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(t.id.as_uuid())
        .bind(t.owner_id.as_uuid())
        .bind(&t.name)
        .bind(&t.description)
        .bind(&t.language)
        .bind(&t.code)
        .bind(&t.stdin)
        .bind(Json(&t.env))
        .bind(Json(&t.limits))
        .bind(i16::from(t.priority))
        .bind(&t.tags)
        .bind(Json(&t.metadata))
        .bind(search_text(&t.name, t.description.as_deref()))
        .bind(t.created_at)
        .bind(t.created_at)
        .execute(&self.pool)
        .await
        .map_err(map_sqlx)?;
        Ok(Task {
            id: t.id,
            owner_id: t.owner_id,
            name: t.name,
            description: t.description,
            language: t.language,
            code: t.code,
            stdin: t.stdin,
            env: t.env,
            limits: t.limits,
            priority: t.priority,
            tags: t.tags,
            metadata: t.metadata,
            last_execution_status: None,
            created_at: t.created_at,
            updated_at: t.created_at,
        })
    }

    async fn set_task_secrets(
        &self,
        scope: Scope,
        id: TaskId,
        sealed: BTreeMap<String, Vec<u8>>,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
        // Locks the task row, so concurrent replacements do not interleave.
        let mut qb =
            QueryBuilder::<Postgres>::new("SELECT 1 FROM tasks WHERE deleted_at IS NULL AND id = ");
        qb.push_bind(id.as_uuid());
        push_scope(&mut qb, scope);
        qb.push(" FOR UPDATE");
        let live: Option<i32> = qb
            .build_query_scalar()
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        if live.is_none() {
            return Err(StoreError::NotFound);
        }
        sqlx::query("DELETE FROM task_secrets WHERE task_id = $1")
            .bind(id.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        let (names, values): (Vec<String>, Vec<Vec<u8>>) = sealed.into_iter().unzip();
        sqlx::query(
            "INSERT INTO task_secrets (task_id, name, sealed) \
             SELECT $1, * FROM UNNEST($2::text[], $3::bytea[])",
        )
        .bind(id.as_uuid())
        .bind(names)
        .bind(values)
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        tx.commit().await.map_err(map_sqlx)
    }

    async fn patch_task_secrets(
        &self,
        scope: Scope,
        id: TaskId,
        set: BTreeMap<String, Vec<u8>>,
        remove: &[String],
    ) -> StoreResult<Vec<String>> {
        let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
        // Locks the task row, so concurrent changes do not interleave.
        let mut qb =
            QueryBuilder::<Postgres>::new("SELECT 1 FROM tasks WHERE deleted_at IS NULL AND id = ");
        qb.push_bind(id.as_uuid());
        push_scope(&mut qb, scope);
        qb.push(" FOR UPDATE");
        let live: Option<i32> = qb
            .build_query_scalar()
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        if live.is_none() {
            return Err(StoreError::NotFound);
        }
        sqlx::query("DELETE FROM task_secrets WHERE task_id = $1 AND name = ANY($2::text[])")
            .bind(id.as_uuid())
            .bind(remove)
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        let (names, values): (Vec<String>, Vec<Vec<u8>>) = set.into_iter().unzip();
        sqlx::query(
            "INSERT INTO task_secrets (task_id, name, sealed) \
             SELECT $1, * FROM UNNEST($2::text[], $3::bytea[]) \
             ON CONFLICT (task_id, name) DO UPDATE SET sealed = excluded.sealed",
        )
        .bind(id.as_uuid())
        .bind(names)
        .bind(values)
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        let names =
            sqlx::query_scalar("SELECT name FROM task_secrets WHERE task_id = $1 ORDER BY name")
                .bind(id.as_uuid())
                .fetch_all(&mut *tx)
                .await
                .map_err(map_sqlx)?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(names)
    }

    async fn task_secret_names(&self, scope: Scope, id: TaskId) -> StoreResult<Vec<String>> {
        let mut qb =
            QueryBuilder::<Postgres>::new("SELECT 1 FROM tasks WHERE deleted_at IS NULL AND id = ");
        qb.push_bind(id.as_uuid());
        push_scope(&mut qb, scope);
        let live: Option<i32> = qb
            .build_query_scalar()
            .fetch_optional(&self.pool)
            .await
            .map_err(map_sqlx)?;
        if live.is_none() {
            return Err(StoreError::NotFound);
        }
        sqlx::query_scalar("SELECT name FROM task_secrets WHERE task_id = $1 ORDER BY name")
            .bind(id.as_uuid())
            .fetch_all(&self.pool)
            .await
            .map_err(map_sqlx)
    }

    async fn get_task(&self, scope: Scope, id: TaskId) -> StoreResult<Task> {
        select_one(scope, id)
            .build_query_as::<TaskRow>()
            .fetch_one(&self.pool)
            .await
            .map_err(map_sqlx)?
            .into_task()
    }

    async fn update_task(&self, scope: Scope, id: TaskId, patch: TaskPatch) -> StoreResult<Task> {
        let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
        // Row lock: concurrent patches of one task apply one after the other, none is lost.
        let mut select = select_one(scope, id);
        select.push(" FOR UPDATE");
        let mut task = select
            .build_query_as::<TaskRow>()
            .fetch_one(&mut *tx)
            .await
            .map_err(map_sqlx)?
            .into_task()?;
        patch.apply_to(&mut task, voidrunner_store::now());
        sqlx::query(
            "UPDATE tasks SET name = $1, description = $2, language = $3, code = $4, \
             stdin = $5, env = $6, limits = $7, priority = $8, tags = $9, metadata = $10, \
             search_text = $11, updated_at = $12 WHERE id = $13",
        )
        .bind(&task.name)
        .bind(&task.description)
        .bind(&task.language)
        .bind(&task.code)
        .bind(&task.stdin)
        .bind(Json(&task.env))
        .bind(Json(&task.limits))
        .bind(i16::from(task.priority))
        .bind(&task.tags)
        .bind(Json(&task.metadata))
        .bind(search_text(&task.name, task.description.as_deref()))
        .bind(task.updated_at)
        .bind(id.as_uuid())
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(task)
    }

    async fn delete_task(&self, scope: Scope, id: TaskId, now: Timestamp) -> StoreResult<()> {
        let mut qb = QueryBuilder::<Postgres>::new("UPDATE tasks SET deleted_at = ");
        qb.push_bind(now)
            .push(" WHERE deleted_at IS NULL AND id = ")
            .push_bind(id.as_uuid());
        push_scope(&mut qb, scope);
        let done = qb.build().execute(&self.pool).await.map_err(map_sqlx)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn list_tasks(
        &self,
        scope: Scope,
        filter: &TaskFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Task>> {
        let limit = page.limit.max(1);
        let mut qb = QueryBuilder::<Postgres>::new(format!(
            "SELECT {} FROM tasks WHERE deleted_at IS NULL",
            TaskRow::COLUMNS
        ));
        push_scope(&mut qb, scope);
        if let Some(language) = &filter.language {
            qb.push(" AND language = ").push_bind(language.clone());
        }
        if let Some(status) = filter.status {
            qb.push(" AND last_execution_status = ")
                .push_bind(status.as_str());
        }
        if let Some(tag) = &filter.tag {
            qb.push(" AND tags @> ").push_bind(vec![tag.clone()]);
        }
        if let Some(search) = &filter.search {
            // strpos() matches literally: `%` and `_` have no special meaning.
            qb.push(" AND strpos(search_text, ")
                .push_bind(search.to_lowercase())
                .push(") > 0");
        }
        if let Some(before) = filter.created_before {
            qb.push(" AND created_at < ").push_bind(before);
        }
        if let Some(after) = filter.created_after {
            qb.push(" AND created_at > ").push_bind(after);
        }
        if let Some(cursor) = page.after {
            qb.push(" AND (created_at, id) < (")
                .push_bind(cursor.created_at)
                .push(", ")
                .push_bind(cursor.id.as_uuid())
                .push(")");
        }
        qb.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(i64::from(limit) + 1);
        let rows = qb
            .build_query_as::<TaskRow>()
            .fetch_all(&self.pool)
            .await
            .map_err(map_sqlx)?;
        let mut items = rows
            .into_iter()
            .map(TaskRow::into_task)
            .collect::<StoreResult<Vec<_>>>()?;
        let next = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|t| TaskCursor {
                created_at: t.created_at,
                id: t.id,
            })
        } else {
            None
        };
        Ok(Page { items, next })
    }
}

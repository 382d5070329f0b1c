//! Tasks on SQLite: CRUD within a scope, soft delete, filtered keyset pagination.

use std::collections::BTreeMap;

use sqlx::types::Json;
use sqlx::{QueryBuilder, Sqlite};
use voidrunner_domain::{NewTask, Task, TaskId, TaskPatch, Timestamp};
use voidrunner_store::{
    Page, PageRequest, Scope, StoreError, StoreResult, TaskCursor, TaskFilter, TaskStore,
};

use crate::SqliteStore;
use crate::convert::{TaskRow, micros, search_text, text};
use crate::error::map_sqlx;

/// Appends `AND owner_id = ?` when the scope is one user.
fn push_scope(qb: &mut QueryBuilder<'_, Sqlite>, scope: Scope) {
    if let Scope::Owner(owner) = scope {
        qb.push(" AND owner_id = ").push_bind(text(owner.as_uuid()));
    }
}

/// Selects one live task within scope.
fn select_one(scope: Scope, id: TaskId) -> QueryBuilder<'static, Sqlite> {
    let mut qb = QueryBuilder::new(format!(
        "SELECT {} FROM tasks WHERE deleted_at IS NULL AND id = ",
        TaskRow::COLUMNS
    ));
    qb.push_bind(text(id.as_uuid()));
    push_scope(&mut qb, scope);
    qb
}

#[async_trait::async_trait]
impl TaskStore for SqliteStore {
    async fn create_task(&self, t: NewTask) -> StoreResult<Task> {
        sqlx::query(
            "INSERT INTO tasks (id, owner_id, name, description, language, code, stdin, env, \
             limits, priority, tags, metadata, search_text, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(text(t.id.as_uuid()))
        .bind(text(t.owner_id.as_uuid()))
        .bind(&t.name)
        .bind(&t.description)
        .bind(&t.language)
        .bind(&t.code)
        .bind(&t.stdin)
        .bind(Json(&t.env))
        .bind(Json(&t.limits))
        .bind(i64::from(t.priority))
        .bind(Json(&t.tags))
        .bind(Json(&t.metadata))
        .bind(search_text(&t.name, t.description.as_deref()))
        .bind(micros(t.created_at))
        .bind(micros(t.created_at))
        .execute(&self.writer)
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
        let mut tx = self.begin_immediate().await?;
        let mut qb =
            QueryBuilder::<Sqlite>::new("SELECT 1 FROM tasks WHERE deleted_at IS NULL AND id = ");
        qb.push_bind(text(id.as_uuid()));
        push_scope(&mut qb, scope);
        let live: Option<i64> = qb
            .build_query_scalar()
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        if live.is_none() {
            return Err(StoreError::NotFound);
        }
        sqlx::query("DELETE FROM task_secrets WHERE task_id = ?")
            .bind(text(id.as_uuid()))
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        for (name, value) in &sealed {
            sqlx::query("INSERT INTO task_secrets (task_id, name, sealed) VALUES (?, ?, ?)")
                .bind(text(id.as_uuid()))
                .bind(name)
                .bind(value)
                .execute(&mut *tx)
                .await
                .map_err(map_sqlx)?;
        }
        tx.commit().await.map_err(map_sqlx)
    }

    async fn patch_task_secrets(
        &self,
        scope: Scope,
        id: TaskId,
        set: BTreeMap<String, Vec<u8>>,
        remove: &[String],
    ) -> StoreResult<Vec<String>> {
        let mut tx = self.begin_immediate().await?;
        let mut qb =
            QueryBuilder::<Sqlite>::new("SELECT 1 FROM tasks WHERE deleted_at IS NULL AND id = ");
        qb.push_bind(text(id.as_uuid()));
        push_scope(&mut qb, scope);
        let live: Option<i64> = qb
            .build_query_scalar()
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        if live.is_none() {
            return Err(StoreError::NotFound);
        }
        for name in remove {
            sqlx::query("DELETE FROM task_secrets WHERE task_id = ? AND name = ?")
                .bind(text(id.as_uuid()))
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err(map_sqlx)?;
        }
        for (name, value) in &set {
            sqlx::query(
                "INSERT INTO task_secrets (task_id, name, sealed) VALUES (?, ?, ?) \
                 ON CONFLICT (task_id, name) DO UPDATE SET sealed = excluded.sealed",
            )
            .bind(text(id.as_uuid()))
            .bind(name)
            .bind(value)
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        }
        let names =
            sqlx::query_scalar("SELECT name FROM task_secrets WHERE task_id = ? ORDER BY name")
                .bind(text(id.as_uuid()))
                .fetch_all(&mut *tx)
                .await
                .map_err(map_sqlx)?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(names)
    }

    async fn task_secret_names(&self, scope: Scope, id: TaskId) -> StoreResult<Vec<String>> {
        let mut qb =
            QueryBuilder::<Sqlite>::new("SELECT 1 FROM tasks WHERE deleted_at IS NULL AND id = ");
        qb.push_bind(text(id.as_uuid()));
        push_scope(&mut qb, scope);
        let live: Option<i64> = qb
            .build_query_scalar()
            .fetch_optional(&self.reader)
            .await
            .map_err(map_sqlx)?;
        if live.is_none() {
            return Err(StoreError::NotFound);
        }
        sqlx::query_scalar("SELECT name FROM task_secrets WHERE task_id = ? ORDER BY name")
            .bind(text(id.as_uuid()))
            .fetch_all(&self.reader)
            .await
            .map_err(map_sqlx)
    }

    async fn get_task(&self, scope: Scope, id: TaskId) -> StoreResult<Task> {
        select_one(scope, id)
            .build_query_as::<TaskRow>()
            .fetch_one(&self.reader)
            .await
            .map_err(map_sqlx)?
            .into_task()
    }

    async fn update_task(&self, scope: Scope, id: TaskId, patch: TaskPatch) -> StoreResult<Task> {
        let mut tx = self.begin_immediate().await?;
        let mut task = select_one(scope, id)
            .build_query_as::<TaskRow>()
            .fetch_one(&mut *tx)
            .await
            .map_err(map_sqlx)?
            .into_task()?;
        patch.apply_to(&mut task, voidrunner_store::now());
        sqlx::query(
            "UPDATE tasks SET name = ?, description = ?, language = ?, code = ?, stdin = ?, \
             env = ?, limits = ?, priority = ?, tags = ?, metadata = ?, search_text = ?, \
             updated_at = ? WHERE id = ?",
        )
        .bind(&task.name)
        .bind(&task.description)
        .bind(&task.language)
        .bind(&task.code)
        .bind(&task.stdin)
        .bind(Json(&task.env))
        .bind(Json(&task.limits))
        .bind(i64::from(task.priority))
        .bind(Json(&task.tags))
        .bind(Json(&task.metadata))
        .bind(search_text(&task.name, task.description.as_deref()))
        .bind(micros(task.updated_at))
        .bind(text(id.as_uuid()))
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(task)
    }

    async fn delete_task(&self, scope: Scope, id: TaskId, now: Timestamp) -> StoreResult<()> {
        let mut qb = QueryBuilder::<Sqlite>::new("UPDATE tasks SET deleted_at = ");
        qb.push_bind(micros(now))
            .push(" WHERE deleted_at IS NULL AND id = ")
            .push_bind(text(id.as_uuid()));
        push_scope(&mut qb, scope);
        let done = qb.build().execute(&self.writer).await.map_err(map_sqlx)?;
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
        let mut qb = QueryBuilder::<Sqlite>::new(format!(
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
            qb.push(" AND EXISTS (SELECT 1 FROM json_each(tasks.tags) AS t WHERE t.value = ")
                .push_bind(tag.clone())
                .push(")");
        }
        if let Some(search) = &filter.search {
            // instr() matches literally: `%` and `_` have no special meaning.
            qb.push(" AND instr(search_text, ")
                .push_bind(search.to_lowercase())
                .push(") > 0");
        }
        if let Some(before) = filter.created_before {
            qb.push(" AND created_at < ").push_bind(micros(before));
        }
        if let Some(after) = filter.created_after {
            qb.push(" AND created_at > ").push_bind(micros(after));
        }
        if let Some(cursor) = page.after {
            qb.push(" AND (created_at, id) < (")
                .push_bind(micros(cursor.created_at))
                .push(", ")
                .push_bind(text(cursor.id.as_uuid()))
                .push(")");
        }
        qb.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(i64::from(limit) + 1);
        let rows = qb
            .build_query_as::<TaskRow>()
            .fetch_all(&self.reader)
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

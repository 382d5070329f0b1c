//! Task handlers. Every read and write is scoped to the caller; another user's task is a 404
//! exactly like a missing one, because the store answers `NotFound` for out-of-scope rows.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use std::collections::BTreeMap;

use voidrunner_api_types::{
    CreateTaskRequest, ErrorBody, ListTasksQuery, SecretValue, TaskListResponse, TaskResponse,
    UpdateTaskRequest,
};
use voidrunner_domain::TaskId;
use voidrunner_store::Scope;

use crate::auth::AuthUser;
use crate::context::ApiContext;
use crate::cursor;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, PathId};
use crate::tasks::{input, query, secrets};

fn own(auth: &AuthUser) -> Scope {
    Scope::Owner(auth.id)
}

/// Creates a task.
#[utoipa::path(post, path = "/api/v1/tasks", tag = "tasks",
    security(("bearer" = [])),
    request_body = CreateTaskRequest,
    responses(
        (status = 201, description = "Created", body = TaskResponse),
        (status = 422, description = "A field is invalid (`field` names it)", body = ErrorBody),
    ))]
pub(crate) async fn create_task(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
    ApiJson(mut req): ApiJson<CreateTaskRequest>,
) -> ApiResult<(StatusCode, Json<TaskResponse>)> {
    let change: BTreeMap<String, Option<SecretValue>> = req
        .secrets
        .take()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, Some(v)))
        .collect();
    let new = input::new_task(ctx.settings(), auth.id, req, voidrunner_store::now())?;
    let sealed = secrets::seal(&ctx, new.id, &change, &new.env, &[])?;
    let task = ctx.store().create_task(new).await?;
    let mut names = Vec::new();
    if !sealed.is_empty() {
        match ctx
            .store()
            .set_task_secrets(own(&auth), task.id, sealed.set)
            .await
        {
            Ok(()) => names = change.into_keys().collect(),
            Err(e) => {
                // No half-created task: without its secrets it would run wrongly.
                let _ = ctx
                    .store()
                    .delete_task(own(&auth), task.id, voidrunner_store::now())
                    .await;
                return Err(e.into());
            }
        }
    }
    tracing::info!(task.id = %task.id, "created task {}", task.id);
    let body = TaskResponse::from(task).with_secret_names(names);
    Ok((StatusCode::CREATED, Json(body)))
}

/// Lists the caller's tasks newest first (admins: everyone's with `all=true`).
#[utoipa::path(get, path = "/api/v1/tasks", tag = "tasks",
    security(("bearer" = [])),
    params(ListTasksQuery),
    responses(
        (status = 200, description = "One page", body = TaskListResponse),
        (status = 400, description = "Bad query parameter (`field` names it)", body = ErrorBody),
        (status = 403, description = "`all=true` without the admin role", body = ErrorBody),
    ))]
pub(crate) async fn list_tasks(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<TaskListResponse>> {
    let q = query::parse(raw.as_deref())?;
    let scope = if q.all {
        if !auth.is_admin() {
            return Err(ApiError::forbidden("only admins may list all tasks").with_field("all"));
        }
        Scope::All
    } else {
        own(&auth)
    };
    let page = ctx.store().list_tasks(scope, &q.filter, q.page).await?;
    Ok(Json(TaskListResponse {
        items: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next.as_ref().map(cursor::encode_task),
    }))
}

/// Gets one of the caller's tasks.
#[utoipa::path(get, path = "/api/v1/tasks/{id}", tag = "tasks",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Task id")),
    responses(
        (status = 200, description = "The task", body = TaskResponse),
        (status = 404, description = "No such task of yours", body = ErrorBody),
    ))]
pub(crate) async fn get_task(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
    PathId(id): PathId<TaskId>,
) -> ApiResult<Json<TaskResponse>> {
    let scope = if auth.is_admin() {
        Scope::All
    } else {
        own(&auth)
    };
    let task = ctx.store().get_task(scope, id).await?;
    let names = ctx.store().task_secret_names(scope, id).await?;
    Ok(Json(TaskResponse::from(task).with_secret_names(names)))
}

/// Partially updates a task: absent fields are unchanged (see `UpdateTaskRequest`).
#[utoipa::path(put, path = "/api/v1/tasks/{id}", tag = "tasks",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Task id")),
    request_body = UpdateTaskRequest,
    responses(
        (status = 200, description = "The updated task", body = TaskResponse),
        (status = 404, description = "No such task of yours", body = ErrorBody),
        (status = 422, description = "A field is invalid", body = ErrorBody),
    ))]
pub(crate) async fn update_task(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
    PathId(id): PathId<TaskId>,
    ApiJson(mut req): ApiJson<UpdateTaskRequest>,
) -> ApiResult<Json<TaskResponse>> {
    let change = req.secrets.take();
    let patch = input::task_patch(ctx.settings(), req, voidrunner_store::now())?;
    let mut sealed = secrets::SealedChange::default();
    if change.is_some() || patch.env.is_some() {
        let current = ctx.store().get_task(own(&auth), id).await?;
        let existing = ctx.store().task_secret_names(own(&auth), id).await?;
        let env = patch.env.as_ref().unwrap_or(&current.env);
        secrets::check_env_against(env, &existing, change.as_ref())?;
        if let Some(change) = &change {
            sealed = secrets::seal(&ctx, id, change, env, &existing)?;
        }
    }
    let task = ctx.store().update_task(own(&auth), id, patch).await?;
    let names = if sealed.is_empty() {
        ctx.store().task_secret_names(own(&auth), id).await?
    } else {
        ctx.store()
            .patch_task_secrets(own(&auth), id, sealed.set, &sealed.remove)
            .await?
    };
    Ok(Json(TaskResponse::from(task).with_secret_names(names)))
}

/// Soft-deletes a task.
#[utoipa::path(delete, path = "/api/v1/tasks/{id}", tag = "tasks",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Task id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such task of yours", body = ErrorBody),
    ))]
pub(crate) async fn delete_task(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
    PathId(id): PathId<TaskId>,
) -> ApiResult<StatusCode> {
    ctx.store()
        .delete_task(own(&auth), id, voidrunner_store::now())
        .await?;
    tracing::info!(task.id = %id, "deleted task {id}");
    Ok(StatusCode::NO_CONTENT)
}

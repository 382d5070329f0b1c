//! `/api/v1/tasks/{id}/executions`, `/api/v1/executions/{id}`, `/api/v1/run` and
//! `/api/v1/languages`.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use voidrunner_api_types::{
    Audience, ErrorBody, ExecuteTaskRequest, ExecutionListResponse, ExecutionResponse,
    ExecutionSummaryResponse, LanguageListResponse, LanguageResponse, ListExecutionsQuery,
    RunRequest, WaitQuery,
};
use voidrunner_domain::{ExecutionId, TaskId};
use voidrunner_store::{Scope, StoreError};

use crate::auth::AuthUser;
use crate::context::ApiContext;
use crate::cursor;
use crate::error::{ApiError, ApiResult};
use crate::executions::{input, query, wait};
use crate::extract::{ApiJson, OptionalJson, PathId};

/// Reads may see everything for admins, only their own rows for users.
pub(crate) fn read_scope(auth: &AuthUser) -> Scope {
    if auth.is_admin() {
        Scope::All
    } else {
        Scope::Owner(auth.id)
    }
}

/// Admins also see operator-facing fields.
pub(crate) fn audience(auth: &AuthUser) -> Audience {
    if auth.is_admin() {
        Audience::Admin
    } else {
        Audience::User
    }
}

/// Enqueues a run of one of the caller's tasks, in any task state, as often as wanted.
#[utoipa::path(post, path = "/api/v1/tasks/{id}/executions", tag = "executions",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Task id"), WaitQuery),
    request_body(content = Option<ExecuteTaskRequest>,
        description = "Optional overrides for this run; the body may be empty"),
    responses(
        (status = 202, description = "Queued (or not finished within the wait)", body = ExecutionResponse),
        (status = 200, description = "`wait=true`: finished within the wait", body = ExecutionResponse),
        (status = 400, description = "Bad query parameter (`field` names it)", body = ErrorBody),
        (status = 404, description = "No such task of yours", body = ErrorBody),
        (status = 422, description = "An override is invalid (`field` names it)", body = ErrorBody),
    ))]
pub(crate) async fn create_task_execution(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
    PathId(id): PathId<TaskId>,
    RawQuery(raw): RawQuery,
    headers: axum::http::HeaderMap,
    OptionalJson(req): OptionalJson<ExecuteTaskRequest>,
) -> ApiResult<Response> {
    let wait = query::parse_wait(raw.as_deref(), ctx.settings().max_wait_secs)?;
    let task = ctx.store().get_task(Scope::Owner(auth.id), id).await?;
    let new = input::for_task(
        ctx.settings(),
        task,
        req,
        request_id(&headers),
        voidrunner_store::now(),
    )?;
    wait::enqueue(&ctx, new, wait, audience(&auth)).await
}

/// Runs code once without storing a task: same validation as tasks, same `wait` semantics.
#[utoipa::path(post, path = "/api/v1/run", tag = "executions",
    security(("bearer" = [])),
    params(WaitQuery),
    request_body = RunRequest,
    responses(
        (status = 202, description = "Queued (or not finished within the wait)", body = ExecutionResponse),
        (status = 200, description = "`wait=true`: finished within the wait", body = ExecutionResponse),
        (status = 400, description = "Bad query parameter (`field` names it)", body = ErrorBody),
        (status = 422, description = "A field is invalid (`field` names it)", body = ErrorBody),
    ))]
pub(crate) async fn run_code(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
    RawQuery(raw): RawQuery,
    headers: axum::http::HeaderMap,
    ApiJson(req): ApiJson<RunRequest>,
) -> ApiResult<Response> {
    let wait = query::parse_wait(raw.as_deref(), ctx.settings().max_wait_secs)?;
    let new = input::one_shot(
        ctx.settings(),
        auth.id,
        req,
        request_id(&headers),
        voidrunner_store::now(),
    )?;
    wait::enqueue(&ctx, new, wait, audience(&auth)).await
}

/// Lists a task's executions newest first (the caller's tasks; admins: any task).
#[utoipa::path(get, path = "/api/v1/tasks/{id}/executions", tag = "executions",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Task id"), ListExecutionsQuery),
    responses(
        (status = 200, description = "One page", body = ExecutionListResponse),
        (status = 400, description = "Bad query parameter (`field` names it)", body = ErrorBody),
        (status = 404, description = "No such task of yours", body = ErrorBody),
    ))]
pub(crate) async fn list_task_executions(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
    PathId(id): PathId<TaskId>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<ExecutionListResponse>> {
    let q = query::parse_page(raw.as_deref())?;
    let page = ctx
        .store()
        .list_task_executions(read_scope(&auth), id, q.after, q.limit)
        .await?;
    let who = audience(&auth);
    Ok(Json(ExecutionListResponse {
        items: page
            .items
            .into_iter()
            .map(|e| ExecutionSummaryResponse::from_execution(e, who))
            .collect(),
        next_cursor: page.next.as_ref().map(cursor::encode_execution),
    }))
}

/// Gets one execution with its output (the caller's; admins: any). With `wait=true` it
/// long-polls: answers as soon as the execution finishes, or with its current state when
/// `timeout_secs` is up (always `200`; look at `status`).
#[utoipa::path(get, path = "/api/v1/executions/{id}", tag = "executions",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Execution id"), WaitQuery),
    responses(
        (status = 200, description = "The execution", body = ExecutionResponse),
        (status = 400, description = "Bad query parameter (`field` names it)", body = ErrorBody),
        (status = 404, description = "No such execution of yours", body = ErrorBody),
    ))]
pub(crate) async fn get_execution(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
    PathId(id): PathId<ExecutionId>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<ExecutionResponse>> {
    let wait = query::parse_wait(raw.as_deref(), ctx.settings().max_wait_secs)?;
    let scope = read_scope(&auth);
    let store = ctx.store();
    let e = match wait {
        None => store.get_execution(scope, id).await?,
        Some(timeout) => {
            let mut rx = store.queue_signals().subscribe_finished();
            let current = store.get_execution(scope, id).await?;
            wait::until_finished(&ctx, scope, current, &mut rx, timeout).await?
        }
    };
    Ok(Json(ExecutionResponse::from_execution(e, audience(&auth))))
}

/// Cancels one of the caller's executions: a queued one is `cancelled` at once and never
/// runs (200); a running one is marked `cancel_requested` and killed by its worker (202).
#[utoipa::path(delete, path = "/api/v1/executions/{id}", tag = "executions",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Execution id")),
    responses(
        (status = 200, description = "Cancelled (it was still queued)", body = ExecutionResponse),
        (status = 202, description = "Running: cancel requested, its worker kills it", body = ExecutionResponse),
        (status = 404, description = "No such execution of yours", body = ErrorBody),
        (status = 409, description = "Already finished", body = ErrorBody),
    ))]
pub(crate) async fn cancel_execution(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
    PathId(id): PathId<ExecutionId>,
) -> ApiResult<Response> {
    let e = ctx
        .store()
        .request_cancel(Scope::Owner(auth.id), id, voidrunner_store::now())
        .await
        .map_err(|err| match err {
            StoreError::Conflict(_) => ApiError::new(
                StatusCode::CONFLICT,
                voidrunner_api_types::ErrorCode::Conflict,
                "execution already finished",
            ),
            other => other.into(),
        })?;
    tracing::info!(execution.id = %id, status = e.status.as_str(), "cancel requested for execution {id}");
    let status = if e.status.is_terminal() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok(wait::respond(status, e, audience(&auth)))
}

/// The languages `language` may name, with versions and aliases when configured.
#[utoipa::path(get, path = "/api/v1/languages", tag = "executions",
    responses((status = 200, description = "Enabled languages", body = LanguageListResponse)))]
pub(crate) async fn list_languages(State(ctx): State<ApiContext>) -> Json<LanguageListResponse> {
    let s = ctx.settings();
    let items = s
        .allowed_languages
        .iter()
        .map(|name| LanguageResponse {
            name: name.clone(),
            version: s.language_versions.get(name).cloned(),
            aliases: s
                .language_aliases
                .iter()
                .filter(|(_, target)| *target == name)
                .map(|(alias, _)| alias.clone())
                .collect(),
        })
        .collect();
    Json(LanguageListResponse {
        items,
        limits: s.limits.into(),
    })
}

/// The request id the edge middleware assigned (or accepted), stored with the execution so the
/// worker's spans carry it.
fn request_id(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get(crate::edge::middleware::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

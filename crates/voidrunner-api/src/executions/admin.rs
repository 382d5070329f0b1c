//! `/api/v1/admin/dead-letter`: executions that used up their attempts on infrastructure
//! failures, for operators to inspect and requeue. Admins only (403 otherwise).

use axum::Json;
use axum::extract::{RawQuery, State};
use voidrunner_api_types::{
    Audience, ErrorBody, ExecutionListResponse, ExecutionResponse, ExecutionSummaryResponse,
    ListExecutionsQuery,
};
use voidrunner_domain::ExecutionId;

use crate::auth::AuthUser;
use crate::context::ApiContext;
use crate::cursor;
use crate::error::{ApiError, ApiResult};
use crate::executions::query;
use crate::extract::PathId;

fn require_admin(auth: &AuthUser) -> ApiResult<()> {
    if auth.is_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden("admins only"))
    }
}

/// Lists dead-lettered executions newest first, with `last_error`.
#[utoipa::path(get, path = "/api/v1/admin/dead-letter", tag = "admin",
    security(("bearer" = [])),
    params(ListExecutionsQuery),
    responses(
        (status = 200, description = "One page", body = ExecutionListResponse),
        (status = 400, description = "Bad query parameter (`field` names it)", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    ))]
pub(crate) async fn list_dead_letters(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<ExecutionListResponse>> {
    require_admin(&auth)?;
    let q = query::parse_page(raw.as_deref())?;
    let page = ctx.store().list_dead_letters(q.after, q.limit).await?;
    Ok(Json(ExecutionListResponse {
        items: page
            .items
            .into_iter()
            .map(|e| ExecutionSummaryResponse::from_execution(e, Audience::Admin))
            .collect(),
        next_cursor: page.next.as_ref().map(cursor::encode_execution),
    }))
}

/// Puts a dead-lettered execution back in the queue with its attempts reset.
#[utoipa::path(post, path = "/api/v1/admin/dead-letter/{id}/requeue", tag = "admin",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Execution id")),
    responses(
        (status = 200, description = "Queued again", body = ExecutionResponse),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such dead-lettered execution", body = ErrorBody),
    ))]
pub(crate) async fn requeue_dead_letter(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
    PathId(id): PathId<ExecutionId>,
) -> ApiResult<Json<ExecutionResponse>> {
    require_admin(&auth)?;
    let e = ctx
        .store()
        .requeue_dead_letter(id, voidrunner_store::now())
        .await?;
    tracing::info!(execution.id = %id, "requeued dead-lettered execution {id}");
    Ok(Json(ExecutionResponse::from_execution(e, Audience::Admin)))
}

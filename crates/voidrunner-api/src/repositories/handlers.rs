//! Repository handlers. Reads are scoped to the caller (admins: every repository); changes
//! are the owner's. Another user's repository is a 404 exactly like a missing one. Secrets
//! are write-only: responses show their names.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use serde::Deserialize;
use voidrunner_api_types::{
    CreateRepositoryRequest, DeliveryListResponse, DeliveryResponse, ErrorBody,
    RepositoryListResponse, RepositoryResponse, UpdateRepositorySecretsRequest,
};
use voidrunner_store::{RepositoryId, Scope};

use super::input::{registration, response, seal_webhook_secret, secrets_change};
use crate::auth::AuthUser;
use crate::context::ApiContext;
use crate::error::ApiResult;
use crate::executions::handlers::read_scope;
use crate::extract::{ApiJson, PathId};
use crate::jobs::handlers::{limit, query};

/// Default and largest page of `GET /api/v1/repositories/{id}/deliveries`.
const DELIVERIES_DEFAULT: u32 = 50;
const DELIVERIES_MAX: u32 = 200;

/// Registers a git repository: its events (`POST /api/v1/hooks/{provider}`, signed with the
/// webhook secret) start the workflows of its CI directory. Secrets are sealed, never echoed.
#[utoipa::path(post, path = "/api/v1/repositories", tag = "repositories",
    security(("bearer" = [])),
    request_body = CreateRepositoryRequest,
    responses(
        (status = 201, description = "Registered", body = RepositoryResponse),
        (status = 409, description = "This provider and full_name are already registered", body = ErrorBody),
        (status = 422, description = "Invalid field (`field` names it; `clone_url` for a protocol the operator does not allow)", body = ErrorBody),
        (status = 503, description = "This node has no secrets key", body = ErrorBody),
    ))]
pub(crate) async fn create_repository(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
    ApiJson(req): ApiJson<CreateRepositoryRequest>,
) -> ApiResult<(StatusCode, Json<RepositoryResponse>)> {
    let reg = registration(&ctx, auth.id, &req)?;
    let repo = ctx
        .store()
        .create_repository(reg.new, reg.sealed_webhook_secret, reg.sealed_secrets)
        .await?;
    tracing::info!(repository.id = %repo.id, "registered repository {}", repo.full_name);
    Ok((StatusCode::CREATED, Json(response(repo))))
}

/// Lists the caller's repositories by `full_name`.
#[utoipa::path(get, path = "/api/v1/repositories", tag = "repositories",
    security(("bearer" = [])),
    responses((status = 200, description = "Repositories", body = RepositoryListResponse)))]
pub(crate) async fn list_repositories(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
) -> ApiResult<Json<RepositoryListResponse>> {
    let items = ctx.store().list_repositories(read_scope(&auth)).await?;
    Ok(Json(RepositoryListResponse {
        items: items.into_iter().map(response).collect(),
    }))
}

/// One repository.
#[utoipa::path(get, path = "/api/v1/repositories/{id}", tag = "repositories",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Repository id")),
    responses(
        (status = 200, description = "The repository", body = RepositoryResponse),
        (status = 404, description = "Unknown or not yours", body = ErrorBody),
    ))]
pub(crate) async fn get_repository(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
    PathId(id): PathId<RepositoryId>,
) -> ApiResult<Json<RepositoryResponse>> {
    let repo = ctx.store().get_repository(read_scope(&auth), id).await?;
    Ok(Json(response(repo)))
}

/// Unregisters a repository (its deliveries go with it; its workflows stay).
#[utoipa::path(delete, path = "/api/v1/repositories/{id}", tag = "repositories",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Repository id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "Unknown or not yours", body = ErrorBody),
    ))]
pub(crate) async fn delete_repository(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
    PathId(id): PathId<RepositoryId>,
) -> ApiResult<StatusCode> {
    ctx.store()
        .delete_repository(Scope::Owner(auth.id), id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Rotates the webhook secret and/or sets (`value`) and removes (`null`) job secrets.
#[utoipa::path(patch, path = "/api/v1/repositories/{id}/secrets", tag = "repositories",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Repository id")),
    request_body = UpdateRepositorySecretsRequest,
    responses(
        (status = 200, description = "Updated", body = RepositoryResponse),
        (status = 404, description = "Unknown or not yours", body = ErrorBody),
        (status = 422, description = "Invalid secret (`field` names it)", body = ErrorBody),
    ))]
pub(crate) async fn update_repository_secrets(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
    PathId(id): PathId<RepositoryId>,
    ApiJson(req): ApiJson<UpdateRepositorySecretsRequest>,
) -> ApiResult<Json<RepositoryResponse>> {
    let scope = Scope::Owner(auth.id);
    let repo = ctx.store().get_repository(scope, id).await?;
    let webhook = req
        .webhook_secret
        .as_ref()
        .map(|v| seal_webhook_secret(&ctx, id, v, "webhook_secret"))
        .transpose()?;
    let change = secrets_change(&ctx, id, &req.secrets, &repo.secret_names)?;
    let repo = ctx
        .store()
        .update_repository_secrets(scope, id, webhook, change)
        .await?;
    Ok(Json(response(repo)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimit {
    limit: Option<String>,
}

/// The repository's recorded deliveries, newest first (`?limit=`, default 50, at most 200).
#[utoipa::path(get, path = "/api/v1/repositories/{id}/deliveries", tag = "repositories",
    security(("bearer" = [])),
    params(
        ("id" = uuid::Uuid, Path, description = "Repository id"),
        ("limit" = Option<u32>, Query, description = "1–200, default 50"),
    ),
    responses(
        (status = 200, description = "Deliveries", body = DeliveryListResponse),
        (status = 400, description = "Bad query parameter", body = ErrorBody),
        (status = 404, description = "Unknown or not yours", body = ErrorBody),
    ))]
pub(crate) async fn list_deliveries(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
    PathId(id): PathId<RepositoryId>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<DeliveryListResponse>> {
    let q: RawLimit = query(raw.as_deref())?;
    let limit = limit(q.limit.as_deref(), DELIVERIES_DEFAULT, DELIVERIES_MAX)?;
    let items = ctx
        .store()
        .list_deliveries(read_scope(&auth), id, limit)
        .await?;
    Ok(Json(DeliveryListResponse {
        items: items
            .into_iter()
            .map(|d| DeliveryResponse {
                provider: d.provider,
                delivery_id: d.delivery_id,
                event: d.event,
                summary: d.summary,
                workflow_ids: d.workflow_ids.into_iter().map(|w| w.0).collect(),
                received_at: d.received_at,
            })
            .collect(),
    }))
}

//! `/api/v1/auth/api-keys`: long-lived keys for machine clients, shown once, stored hashed.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use voidrunner_api_types::{
    ApiKeyListResponse, ApiKeyResponse, CreateApiKeyRequest, CreatedApiKeyResponse, ErrorBody,
};
use voidrunner_domain::ApiKeyId;
use voidrunner_domain::validation::check_api_key_name;
use voidrunner_store::{ApiKey, NewApiKey};

use crate::auth::AuthUser;
use crate::auth::tokens::{hash_secret, new_api_key};
use crate::context::ApiContext;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, PathId};

/// Characters of the key kept for display (`vr_` + 8).
const DISPLAY_PREFIX_CHARS: usize = 11;

fn to_dto(k: ApiKey) -> ApiKeyResponse {
    ApiKeyResponse {
        id: k.id.as_uuid(),
        name: k.name,
        prefix: k.prefix,
        created_at: k.created_at,
        expires_at: k.expires_at,
        last_used_at: k.last_used_at,
        revoked_at: k.revoked_at,
    }
}

/// Creates a key; the secret is in this response only.
#[utoipa::path(post, path = "/api/v1/auth/api-keys", tag = "auth",
    security(("bearer" = [])),
    request_body = CreateApiKeyRequest,
    responses(
        (status = 201, description = "Key created; `key` is shown only now", body = CreatedApiKeyResponse),
        (status = 422, description = "Invalid name or expiry", body = ErrorBody),
    ))]
pub(crate) async fn create_api_key(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
    ApiJson(req): ApiJson<CreateApiKeyRequest>,
) -> ApiResult<(StatusCode, Json<CreatedApiKeyResponse>)> {
    check_api_key_name(&req.name)?;
    let now = voidrunner_store::now();
    let expires_at = req.expires_at.map(voidrunner_store::truncate_to_micros);
    if expires_at.is_some_and(|t| t <= now) {
        return Err(ApiError::validation("expires_at", "must be in the future"));
    }
    let key = new_api_key();
    let stored = ctx
        .store()
        .create_api_key(NewApiKey {
            id: ApiKeyId::new(),
            user_id: auth.id,
            name: req.name,
            prefix: key.chars().take(DISPLAY_PREFIX_CHARS).collect(),
            key_hash: hash_secret(&key),
            created_at: now,
            expires_at,
        })
        .await?;
    tracing::info!(api_key.id = %stored.id, "created API key {}", stored.id);
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKeyResponse {
            key,
            api_key: to_dto(stored),
        }),
    ))
}

/// Lists the caller's keys (never the secrets).
#[utoipa::path(get, path = "/api/v1/auth/api-keys", tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller's keys", body = ApiKeyListResponse)))]
pub(crate) async fn list_api_keys(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
) -> ApiResult<Json<ApiKeyListResponse>> {
    let items = ctx.store().list_api_keys(auth.id).await?;
    Ok(Json(ApiKeyListResponse {
        items: items.into_iter().map(to_dto).collect(),
    }))
}

/// Revokes one of the caller's keys; someone else's key is a 404.
#[utoipa::path(delete, path = "/api/v1/auth/api-keys/{id}", tag = "auth",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "API key id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such key of yours", body = ErrorBody),
    ))]
pub(crate) async fn revoke_api_key(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
    PathId(id): PathId<ApiKeyId>,
) -> ApiResult<StatusCode> {
    ctx.store()
        .revoke_api_key(auth.id, id, voidrunner_store::now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

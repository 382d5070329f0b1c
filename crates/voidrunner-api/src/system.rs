//! Probes and the OpenAPI document.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use voidrunner_api_types::{ErrorBody, HealthResponse, ReadyResponse};

use crate::context::ApiContext;
use crate::error::{ApiError, ApiResult};

/// Liveness: answers while the process serves requests; never touches the store.
#[utoipa::path(get, path = "/health", tag = "system",
    responses((status = 200, description = "Alive", body = HealthResponse)))]
pub(crate) async fn check_health() -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "ok".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    })
}

/// Readiness: the store answers a ping; 503 envelope otherwise.
#[utoipa::path(get, path = "/ready", tag = "system",
    responses(
        (status = 200, description = "Ready to serve", body = ReadyResponse),
        (status = 503, description = "Store unreachable", body = ErrorBody),
    ))]
pub(crate) async fn check_ready(State(ctx): State<ApiContext>) -> ApiResult<Json<ReadyResponse>> {
    ctx.store()
        .ping()
        .await
        .map_err(|e| ApiError::unavailable(format!("store ping: {e}")))?;
    Ok(Json(ReadyResponse {
        status: "ready".to_owned(),
        store: ctx.store().backend_name().to_owned(),
    }))
}

/// Path of the served OpenAPI document.
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

/// The OpenAPI 3.1 document of this server, generated from the route table.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "system",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json")))]
pub(crate) async fn get_openapi(State(ctx): State<ApiContext>) -> impl IntoResponse {
    let body: Bytes = ctx.inner.openapi_json.clone();
    ([(header::CONTENT_TYPE, "application/json")], body)
}

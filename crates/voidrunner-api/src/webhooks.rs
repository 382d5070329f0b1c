//! Webhooks as users see them: their signing secret, and the delivery state of an
//! execution's callback. Sending is done by `voidrunner-webhooks`' dispatcher.

use axum::Json;
use axum::extract::State;
use voidrunner_api_types::{ErrorBody, SigningSecretResponse, WebhookDeliveryResponse};
use voidrunner_domain::ExecutionId;

use crate::auth::AuthUser;
use crate::context::ApiContext;
use crate::error::ApiResult;
use crate::executions::handlers::read_scope;
use crate::extract::PathId;

/// Gets the caller's webhook signing secret, to verify `X-VoidRunner-Signature` on the
/// callbacks of their executions.
#[utoipa::path(get, path = "/api/v1/webhooks/signing-secret", tag = "webhooks",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's signing secret", body = SigningSecretResponse),
    ))]
pub(crate) async fn get_signing_secret(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
) -> Json<SigningSecretResponse> {
    Json(SigningSecretResponse {
        secret: ctx.webhook_key().user_secret(auth.id),
        algorithm: "hmac-sha256".to_owned(),
        signature_header: "X-VoidRunner-Signature".to_owned(),
        timestamp_header: "X-VoidRunner-Timestamp".to_owned(),
        signed_payload: "<timestamp>.<body>".to_owned(),
    })
}

/// Gets the delivery state of an execution's callback (the caller's; admins: any). `404`
/// when the execution is not yours, had no `callback_url`, or has not finished yet.
#[utoipa::path(get, path = "/api/v1/executions/{id}/webhook", tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Execution id")),
    responses(
        (status = 200, description = "The delivery", body = WebhookDeliveryResponse),
        (status = 404, description = "No delivery for an execution of yours", body = ErrorBody),
    ))]
pub(crate) async fn get_execution_webhook(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
    PathId(id): PathId<ExecutionId>,
) -> ApiResult<Json<WebhookDeliveryResponse>> {
    let d = ctx
        .store()
        .get_webhook_delivery(read_scope(&auth), id)
        .await?;
    Ok(Json(WebhookDeliveryResponse {
        execution_id: d.execution_id.as_uuid(),
        url: d.url,
        state: d.state.as_str().to_owned(),
        attempts: d.attempts,
        last_status: d.last_status,
        last_error: d.last_error,
        next_attempt_at: d.next_attempt_at,
        created_at: d.created_at,
        delivered_at: d.delivered_at,
    }))
}

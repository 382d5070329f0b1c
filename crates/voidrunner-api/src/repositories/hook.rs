//! `POST /api/v1/hooks/{source}`: no user authentication; the payload names the repository
//! and the request must carry that repository's webhook secret (GitHub: `X-Hub-Signature-256`,
//! the HMAC-SHA256 of the raw body; GitLab: `X-Gitlab-Token`), both checked in constant
//! time. An unknown repository and a wrong signature get the same `401`, and nothing starts.

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use voidrunner_api_types::{ErrorBody, ErrorCode, HookResponse};

use super::event::{Parsed, normalize, repository_name};
use super::input::PROVIDERS;
use crate::context::ApiContext;
use crate::error::{ApiError, ApiResult};
use crate::extract::payload_too_large;

type HmacSha256 = Hmac<Sha256>;

/// Key of the HMAC computed when the repository is unknown, so that answer takes about as
/// long as a wrong signature.
const DUMMY_KEY: &[u8] = b"voidrunner-unknown-repository-key";

/// GitHub's check: `sha256=<hex>` of HMAC-SHA256(secret, body), compared in constant time.
pub(crate) fn github_signature_ok(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    let Some(sig) = header
        .and_then(|h| h.trim().strip_prefix("sha256="))
        .and_then(|h| hex::decode(h).ok())
    else {
        return false;
    };
    mac.verify_slice(&sig).is_ok()
}

/// GitLab's check: the token equals the secret, compared in constant time (HMACs of both
/// under a fixed key, so lengths do not leak either).
pub(crate) fn gitlab_token_ok(secret: &[u8], header: Option<&str>) -> bool {
    let Some(token) = header else {
        return false;
    };
    let digest = |v: &[u8]| {
        let mut mac = HmacSha256::new_from_slice(DUMMY_KEY).ok()?;
        mac.update(v);
        Some(mac)
    };
    match (digest(secret), digest(token.as_bytes())) {
        (Some(a), Some(b)) => b.verify_slice(&a.finalize().into_bytes()).is_ok(),
        _ => false,
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn bad_request(field: &str, message: &'static str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        ErrorCode::ValidationFailed,
        message,
    )
    .with_field(field)
}

/// Receives a git host's event (see `docs/GIT.md`): verifies the signature against the named
/// repository's webhook secret, normalizes the event, reads the workflows from the trusted
/// commit of the registered clone URL, starts those whose `on:` filter matches, and records
/// the delivery so that the same delivery id never starts anything twice.
#[utoipa::path(post, path = "/api/v1/hooks/{source}", tag = "repositories",
    params(("source" = String, Path, description = "`github` or `gitlab`")),
    request_body(content = Object, description = "The git host's JSON payload, as sent"),
    responses(
        (status = 200, description = "Nothing started (ping, deleted ref, unhandled event) or a duplicate delivery (`duplicate: true`, the first delivery's workflows)", body = HookResponse),
        (status = 202, description = "Recorded; `workflow_ids` were started", body = HookResponse),
        (status = 400, description = "Missing delivery id or event header", body = ErrorBody),
        (status = 401, description = "Unknown repository or wrong signature (the same answer)", body = ErrorBody),
        (status = 413, description = "Body larger than `[hooks] max_body_bytes`", body = ErrorBody),
        (status = 422, description = "The payload's commits cannot be verified or read (nothing recorded)", body = ErrorBody),
    ))]
pub(crate) async fn receive_hook(
    State(ctx): State<ApiContext>,
    Path(source): Path<String>,
    req: Request,
) -> ApiResult<(StatusCode, Json<HookResponse>)> {
    if !PROVIDERS.contains(&source.as_str()) {
        return Err(ApiError::not_found());
    }
    let headers = req.headers().clone();
    if header_str(&headers, header::CONTENT_TYPE.as_str())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"))
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            "configure the webhook with content type application/json",
        ));
    }
    let limit = ctx.settings().hooks.max_body_bytes;
    let body = axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| payload_too_large())?;
    let payload: serde_json::Value =
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    let found = match repository_name(&source, &payload) {
        Some(name) => ctx.store().find_repository(&source, name).await?,
        None => None,
    };
    let Some((repo, sealed)) = found else {
        let _ = github_signature_ok(DUMMY_KEY, &body, None);
        return Err(ApiError::unauthorized());
    };
    let Some(secret_box) = ctx.secret_box() else {
        return Err(ApiError::unavailable(
            "a hook arrived but this API node has no secrets key",
        ));
    };
    let secret = secret_box
        .open_with_context(&sealed, format!("{}/webhook", repo.id).as_bytes())
        .map_err(|e| {
            ApiError::internal(format!("opening the webhook secret of {}: {e}", repo.id))
        })?;
    let ok = match source.as_str() {
        "github" => {
            github_signature_ok(&secret, &body, header_str(&headers, "x-hub-signature-256"))
        }
        _ => gitlab_token_ok(&secret, header_str(&headers, "x-gitlab-token")),
    };
    if !ok {
        tracing::warn!(repository.id = %repo.id, "hook with a wrong signature refused");
        return Err(ApiError::unauthorized());
    }
    let (kind_header, id_header) = match source.as_str() {
        "github" => ("x-github-event", "x-github-delivery"),
        _ => ("x-gitlab-event", "x-gitlab-event-uuid"),
    };
    let delivery_id = header_str(&headers, id_header)
        .map(str::trim)
        .filter(|d| (1..=200).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| bad_request(id_header, "the delivery id header is required"))?
        .to_owned();
    let kind = header_str(&headers, kind_header)
        .ok_or_else(|| bad_request(kind_header, "the event header is required"))?;
    let event = match normalize(&source, kind, &payload) {
        Ok(Parsed::Event(e)) => e,
        Ok(Parsed::Ignored(why)) => {
            return Ok((
                StatusCode::OK,
                Json(HookResponse {
                    delivery_id,
                    event: None,
                    duplicate: false,
                    workflow_ids: Vec::new(),
                    summary: serde_json::json!({"ignored": why}),
                }),
            ));
        }
        Err(why) => return Err(ApiError::validation("payload", why)),
    };
    let request_id = header_str(&headers, crate::edge::middleware::REQUEST_ID).map(str::to_owned);
    // The delivery id header is not signed: a captured body replayed under a new id must not
    // start anything again, so the body's digest is a second key of the delivery.
    let body_sha256 = hex::encode(<Sha256 as sha2::Digest>::digest(&body));
    super::start::start(&ctx, repo, delivery_id, body_sha256, event, request_id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_and_tokens() {
        let body = b"{\"zen\":\"x\"}";
        let mut mac = HmacSha256::new_from_slice(b"s3cret").expect("key");
        mac.update(body);
        let good = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert!(github_signature_ok(b"s3cret", body, Some(&good)));
        assert!(!github_signature_ok(b"other", body, Some(&good)));
        assert!(!github_signature_ok(b"s3cret", b"{}", Some(&good)));
        assert!(!github_signature_ok(b"s3cret", body, None));
        assert!(!github_signature_ok(b"s3cret", body, Some("sha1=00")));
        assert!(!github_signature_ok(b"s3cret", body, Some("sha256=zz")));
        assert!(gitlab_token_ok(b"tok-123", Some("tok-123")));
        assert!(!gitlab_token_ok(b"tok-123", Some("tok-124")));
        assert!(!gitlab_token_ok(b"tok-123", Some("tok-1234")));
        assert!(!gitlab_token_ok(b"tok-123", None));
    }
}

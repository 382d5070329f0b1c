//! Middleware: request id + one log line per request (with the 5xx cause), per-IP rate
//! limit, and the JSON 404/405 fallbacks.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument as _;
use voidrunner_api_types::ErrorCode;

use crate::context::ApiContext;
use crate::edge::client_ip::client_ip;
use crate::error::{ApiError, InternalCause};

/// Header carrying the request id in both directions.
pub(crate) const REQUEST_ID: &str = "x-request-id";

/// A propagated id is kept only when short and plain, so logs cannot be polluted.
fn acceptable_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    ok.then(|| s.to_owned())
}

/// Assigns (or propagates) the request id, runs the request inside a span carrying it, sets
/// it on the response and logs one line; a 5xx's cause is logged here, once.
pub(crate) async fn trace_request(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(acceptable_id)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let header = HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
    req.headers_mut().insert(REQUEST_ID, header.clone());
    let span = tracing::info_span!(
        "http.request",
        request_id = %id,
        http.method = %req.method(),
        http.path = %req.uri().path(),
        user.id = tracing::field::Empty,
    );
    let probe = matches!(req.uri().path(), "/health" | "/ready");
    let started = Instant::now();
    let mut res = next.run(req).instrument(span.clone()).await;
    res.headers_mut().insert(REQUEST_ID, header);
    let status = res.status().as_u16();
    let latency_ms = started.elapsed().as_millis();
    span.in_scope(|| {
        if let Some(InternalCause(cause)) = res.extensions().get::<InternalCause>() {
            tracing::error!(
                http.status = status,
                latency_ms,
                error.cause = %cause,
                "request {id} failed: {cause}"
            );
        } else if probe {
            // Orchestrators poll the probes every few seconds; keep them out of info logs.
            tracing::debug!(http.status = status, latency_ms, "request {id} finished");
        } else {
            tracing::info!(http.status = status, latency_ms, "request {id} finished");
        }
    });
    res
}

/// Per-IP token bucket on everything but the probes.
pub(crate) async fn limit_per_ip(
    State(ctx): State<ApiContext>,
    req: Request,
    next: Next,
) -> Response {
    let Some(limiter) = &ctx.inner.ip_limiter else {
        return next.run(req).await;
    };
    let path = req.uri().path();
    if path == "/health" || path == "/ready" {
        return next.run(req).await;
    }
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let ip = client_ip(peer, req.headers(), &ctx.settings().trusted_proxies);
    match limiter.check(ip) {
        Ok(()) => next.run(req).await,
        Err(retry_after_secs) => ApiError::rate_limited(retry_after_secs).into_response(),
    }
}

/// 404 for unknown routes.
pub(crate) async fn route_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::RouteNotFound,
        "no such route",
    )
}

/// 405 for known routes with another method.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        "method not allowed on this route",
    )
}

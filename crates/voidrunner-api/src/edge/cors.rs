//! CORS from the configured origin list.

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::context::ContextError;

/// Checks every configured origin is a valid header value (at startup, not per request).
pub(crate) fn check_origins(origins: &[String]) -> Result<(), ContextError> {
    for o in origins {
        if o != "*" && HeaderValue::from_str(o).is_err() {
            return Err(ContextError::CorsOrigin { origin: o.clone() });
        }
    }
    Ok(())
}

/// The CORS layer, or `None` when no origin is configured (same-origin only).
pub(crate) fn layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::DELETE,
                Method::OPTIONS,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("x-api-key"),
                HeaderName::from_static("x-request-id"),
            ])
            .expose_headers([HeaderName::from_static("x-request-id"), header::RETRY_AFTER])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

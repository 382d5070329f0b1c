//! Prometheus metrics at the HTTP edge: the request-recording middleware (route templates,
//! never raw paths) and `GET /metrics`, which adds the queue depth read from the store at
//! scrape time (cluster-wide on PostgreSQL). The registry itself is `voidrunner_metrics`.

use std::fmt;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use voidrunner_api_types::ErrorCode;
use voidrunner_metrics::{CONTENT_TYPE, QueueDepth, UNMATCHED_ROUTE};

use crate::context::ApiContext;
use crate::error::ApiError;

/// Who may read `GET /metrics`. By default anyone who can reach the port (restrict it at the
/// network or proxy, or set a token): the output holds no user data, ids or secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// Off switch: `false` answers 404.
    pub enabled: bool,
    /// When set, scrapes must send `Authorization: Bearer <token>` (Prometheus
    /// `authorization.credentials`).
    pub bearer_token: Option<MetricsToken>,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            bearer_token: None,
        }
    }
}

/// The scrape token. `Debug` and serialization never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct MetricsToken(String);

impl MetricsToken {
    /// Wraps a token (use at least 32 random characters).
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// Compares in constant time (digests of equal length, whatever was sent).
    fn matches(&self, sent: &str) -> bool {
        let a = Sha256::digest(self.0.as_bytes());
        let b = Sha256::digest(sent.as_bytes());
        a.iter()
            .zip(b.iter())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
    }
}

impl fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MetricsToken([redacted])")
    }
}

impl Serialize for MetricsToken {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}

impl<'de> Deserialize<'de> for MetricsToken {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self)
    }
}

/// Records every request by method, matched route template and status. Requests that
/// matched no route are counted under `unmatched`, so unknown paths create no series.
pub(crate) async fn record_request(
    State(ctx): State<ApiContext>,
    req: Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED_ROUTE.to_owned(), |m| m.as_str().to_owned());
    let method = req.method().clone();
    let started = Instant::now();
    let res = next.run(req).await;
    ctx.inner.metrics.record_http_request(
        method.as_str(),
        &route,
        res.status().as_u16(),
        started.elapsed(),
    );
    res
}

/// Prometheus metrics in the text exposition format 0.0.4: HTTP requests, executions,
/// worker slots, queue depth (read from the store now), process figures.
#[utoipa::path(get, path = "/metrics", tag = "system",
    responses(
        (status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain"),
        (status = 401, description = "A metrics token is configured and was not sent", body = voidrunner_api_types::ErrorBody),
        (status = 404, description = "Metrics are disabled", body = voidrunner_api_types::ErrorBody),
    ))]
pub(crate) async fn get_metrics(
    State(ctx): State<ApiContext>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let settings = &ctx.settings().metrics;
    if !settings.enabled {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::RouteNotFound,
            "no such route",
        ));
    }
    if let Some(token) = &settings.bearer_token {
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !token.matches(sent) {
            return Err(ApiError::unauthorized());
        }
    }
    let queue = match ctx.store().queue_stats().await {
        Ok(q) => Some(QueueDepth {
            queued: q.queued,
            running: q.running,
            dead_lettered: q.dead_lettered,
        }),
        Err(e) => {
            tracing::warn!(error = %e, "metrics scrape: queue statistics unavailable: {e}");
            None
        }
    };
    let body = ctx.inner.metrics.render(queue);
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_redacted_and_compared_exactly() {
        let t = MetricsToken::new("scrape-token-0123456789");
        assert_eq!(format!("{t:?}"), "MetricsToken([redacted])");
        assert_eq!(
            serde_json::to_string(&t).expect("serializes"),
            "\"[redacted]\""
        );
        assert!(t.matches("scrape-token-0123456789"));
        assert!(!t.matches("scrape-token-012345678"));
        assert!(!t.matches(""));
    }

    #[test]
    fn settings_parse_from_configuration() {
        let s: MetricsSettings =
            serde_json::from_value(serde_json::json!({"bearer_token": "abc"})).expect("valid");
        assert!(s.enabled);
        assert_eq!(s.bearer_token, Some(MetricsToken::new("abc")));
        assert!(serde_json::from_value::<MetricsSettings>(serde_json::json!({"tok": 1})).is_err());
    }
}

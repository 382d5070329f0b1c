//! The one error envelope every API error uses: `{"error":{"code","message","field"?,"problems"?}}`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// A machine-readable code, a safe human message and, for input errors, the offending field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable code clients can branch on (see [`ErrorCode`]).
    pub code: String,
    /// Human-readable message; never contains internal details.
    pub message: String,
    /// Offending field (`name`, `limits.memory_mb`, `env.PATH`, `tags[2]`, `cursor`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Every problem found, when there can be several at once (a job definition): each with
    /// its path; `field` then names the first. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problems: Option<Vec<ProblemDto>>,
}

/// One of several input problems: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProblemDto {
    /// Path of the problem (`definition.steps[2].depends_on[0]`, `definition.network`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// Every error code the API emits, so server and clients agree on the spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: the body is not valid JSON.
    MalformedJson,
    /// 400: a query parameter is invalid (`field` names it).
    InvalidQuery,
    /// 400: a path parameter is invalid (e.g. not a UUID).
    InvalidPath,
    /// 401: missing, invalid or expired credentials.
    Unauthorized,
    /// 401: wrong email or password.
    InvalidCredentials,
    /// 401: the refresh token is unknown, expired or revoked.
    InvalidRefreshToken,
    /// 401: an already-used refresh token was presented; its whole family is now revoked.
    RefreshTokenReused,
    /// 403: authenticated but not allowed.
    Forbidden,
    /// 404: no such resource (or not yours).
    NotFound,
    /// 404: no such route.
    RouteNotFound,
    /// 405: the route exists but not with this method.
    MethodNotAllowed,
    /// 409: conflicts with existing state (e.g. email taken).
    Conflict,
    /// 413: the body exceeds the configured limit.
    PayloadTooLarge,
    /// 415: the body is not `application/json`.
    UnsupportedMediaType,
    /// 422: the JSON is well-formed but a field is invalid, missing or unknown.
    ValidationFailed,
    /// 416: the `Range` asks for bytes past the end; `Content-Range: bytes */<length>`.
    RangeNotSatisfiable,
    /// 410: retention deleted this execution's output (logs and result stdout/stderr).
    LogsExpired,
    /// 429: rate limit exceeded; see `Retry-After`.
    RateLimited,
    /// 500: something failed on our side; details are in the server log.
    Internal,
    /// 503: a dependency (the store) is unavailable.
    Unavailable,
}

impl ErrorCode {
    /// The wire spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::MalformedJson => "malformed_json",
            Self::InvalidQuery => "invalid_query",
            Self::InvalidPath => "invalid_path",
            Self::Unauthorized => "unauthorized",
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidRefreshToken => "invalid_refresh_token",
            Self::RefreshTokenReused => "refresh_token_reused",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::RouteNotFound => "route_not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict => "conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::ValidationFailed => "validation_failed",
            Self::RangeNotSatisfiable => "range_not_satisfiable",
            Self::LogsExpired => "logs_expired",
            Self::RateLimited => "rate_limited",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
        }
    }
}

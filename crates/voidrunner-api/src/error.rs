//! The one error type of the HTTP edge. Every failure becomes the JSON envelope
//! `{"error":{"code","message","field"?}}`; 5xx answers say only "internal error" while the
//! real cause travels in a response extension to the request logger, which logs it once.

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use voidrunner_api_types::{ErrorBody, ErrorCode, ErrorDetail, ProblemDto};
use voidrunner_domain::{LimitError, ValidationError};
use voidrunner_store::StoreError;

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;

/// An error answer: status, stable code, safe message, optional field and, for 5xx, the
/// cause to log.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    message: Cow<'static, str>,
    field: Option<String>,
    problems: Option<Vec<(String, String)>>,
    retry_after_secs: Option<u64>,
    cause: Option<String>,
}

/// The logged cause of a 5xx, attached to the response for the logging middleware.
#[derive(Debug, Clone)]
pub struct InternalCause(pub String);

impl ApiError {
    /// Builds an error with a safe message.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            problems: None,
            retry_after_secs: None,
            cause: None,
        }
    }

    /// Names the offending field.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Lists every problem (`(path, message)`, at least one) and names the first as `field`.
    pub fn with_problems(mut self, problems: Vec<(String, String)>) -> Self {
        if let Some((path, _)) = problems.first() {
            self.field = Some(path.clone());
        }
        self.problems = Some(problems);
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The offending field, if any.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// 400 for a query parameter.
    pub fn invalid_query(field: &str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidQuery, message).with_field(field)
    }

    /// 401 with the generic message (never says which check failed).
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "missing or invalid credentials",
        )
    }

    /// 403.
    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, message)
    }

    /// 404 for a resource that does not exist or is not the caller's.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "not found")
    }

    /// 422 for a body field.
    pub fn validation(field: impl Into<String>, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::ValidationFailed,
            message,
        )
        .with_field(field)
    }

    /// 429 with `Retry-After`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            "rate limit exceeded",
        );
        e.retry_after_secs = Some(retry_after_secs.max(1));
        e
    }

    /// 500; `cause` goes to the log only.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "internal error",
        );
        e.cause = Some(cause.to_string());
        e
    }

    /// 503; `cause` goes to the log only.
    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            "service temporarily unavailable",
        );
        e.cause = Some(cause.to_string());
        e
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::not_found(),
            StoreError::Conflict(msg) => Self::new(StatusCode::CONFLICT, ErrorCode::Conflict, msg),
            StoreError::Unavailable(source) => Self::unavailable(format!("store: {source}")),
        }
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        Self::validation(e.field, e.message)
    }
}

impl From<LimitError> for ApiError {
    fn from(e: LimitError) -> Self {
        Self::validation(e.field, e.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.as_str().to_owned(),
                message: self.message.into_owned(),
                field: self.field,
                problems: self.problems.map(|p| {
                    p.into_iter()
                        .map(|(path, message)| ProblemDto { path, message })
                        .collect()
                }),
            },
        };
        let mut res = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(cause) = self.cause {
            res.extensions_mut().insert(InternalCause(cause));
        }
        res
    }
}

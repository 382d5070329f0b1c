//! Extractors that answer in our error envelope: JSON bodies (415 / 400 / 413 / 422 with the
//! offending field) and UUID path parameters (400).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use voidrunner_api_types::ErrorCode;

use crate::error::ApiError;

/// A JSON body deserialized with field-precise errors.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// `missing field `x`` / `unknown field `x`, expected …` → `x`.
fn named_field(message: &str) -> Option<&str> {
    let rest = message
        .strip_prefix("missing field `")
        .or_else(|| message.strip_prefix("unknown field `"))?;
    rest.split('`').next()
}

/// Joins the serde path with a field named inside the message.
fn field_of(path: &str, message: &str) -> String {
    let parent = if path == "." { "" } else { path };
    match named_field(message) {
        Some(name) if parent.is_empty() => name.to_owned(),
        Some(name) if parent == name || parent.ends_with(&format!(".{name}")) => parent.to_owned(),
        Some(name) => format!("{parent}.{name}"),
        None if parent.is_empty() => "body".to_owned(),
        None => parent.to_owned(),
    }
}

/// Deserializes JSON bytes into `T`, mapping errors to our envelope.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize::<_, T>(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let message = inner.to_string();
                let message = message
                    .split(" at line ")
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                ApiError::validation(field_of(&path, &message), message)
            }
            _ => malformed(),
        }
    })?;
    de.end().map_err(|_| malformed())?;
    Ok(value)
}

fn malformed() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        ErrorCode::MalformedJson,
        "request body is not valid JSON",
    )
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                "expected Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                payload_too_large()
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::MalformedJson,
                    "could not read the request body",
                )
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// An optional JSON body: an empty body (with or without a content type) is `T::default()`;
/// anything else must be JSON like [`ApiJson`].
#[derive(Debug, Clone)]
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = is_json(req.headers());
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                payload_too_large()
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::MalformedJson,
                    "could not read the request body",
                )
            }
        })?;
        if bytes.is_empty() {
            return Ok(OptionalJson(T::default()));
        }
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                "expected Content-Type: application/json",
            ));
        }
        parse_json(&bytes).map(OptionalJson)
    }
}

/// A JSON body like [`ApiJson`] but with its own size limit instead of the router's default
/// (job submissions carry an archive).
pub(crate) async fn json_body_with_limit<T: DeserializeOwned>(
    req: Request,
    limit: usize,
) -> Result<T, ApiError> {
    if !is_json(req.headers()) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            "expected Content-Type: application/json",
        ));
    }
    let bytes = axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|e| {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if too_large {
                payload_too_large()
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::MalformedJson,
                    "could not read the request body",
                )
            }
        })?;
    parse_json(&bytes)
}

/// 413 in the envelope.
pub(crate) fn payload_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::PayloadTooLarge,
        "request body too large",
    )
}

/// A UUID path parameter named `id`, converted to a typed id; 400 when not a UUID.
#[derive(Debug, Clone, Copy)]
pub struct PathId<T>(pub T);

impl<T, S> FromRequestParts<S> for PathId<T>
where
    T: From<uuid::Uuid> + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let bad = || {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidPath,
                "must be a UUID",
            )
            .with_field("id")
        };
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| bad())?;
        let id = uuid::Uuid::parse_str(&raw).map_err(|_| bad())?;
        Ok(PathId(T::from(id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "fields exist only to be deserialized")]
    struct Inner {
        x: u8,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "fields exist only to be deserialized")]
    struct Outer {
        name: String,
        inner: Option<Inner>,
    }

    fn field(json: &str) -> (StatusCode, Option<String>) {
        let e = parse_json::<Outer>(json.as_bytes()).expect_err("must fail");
        (e.status(), e.field().map(str::to_owned))
    }

    #[test]
    fn errors_name_fields() {
        assert_eq!(field("{").0, StatusCode::BAD_REQUEST);
        assert_eq!(field(r#"{"name":"a"} x"#).0, StatusCode::BAD_REQUEST);
        let unprocessable = |f: &str| (StatusCode::UNPROCESSABLE_ENTITY, Some(f.to_owned()));
        assert_eq!(field("{}"), unprocessable("name"));
        assert_eq!(field(r#"{"name":"a","extra":1}"#), unprocessable("extra"));
        assert_eq!(
            field(r#"{"name":"a","inner":{"x":300}}"#),
            unprocessable("inner.x")
        );
        assert_eq!(
            field(r#"{"name":"a","inner":{"y":1}}"#),
            unprocessable("inner.y")
        );
        assert_eq!(field(r#"{"name":1}"#), unprocessable("name"));
        assert_eq!(field("[]"), unprocessable("body"));
    }
}

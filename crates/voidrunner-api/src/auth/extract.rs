//! The `AuthUser` extractor: a handler that takes one is authenticated, and the per-user rate
//! limit has been applied. Accepts `Authorization: Bearer <jwt | vr_key>` or `X-API-Key`.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use voidrunner_domain::{Role, UserId};

use crate::auth::tokens::{API_KEY_PREFIX, hash_secret};
use crate::context::ApiContext;
use crate::error::ApiError;

/// How the caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// An access JWT.
    AccessToken,
    /// An API key.
    ApiKey,
}

/// The authenticated caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthUser {
    /// Account id.
    pub id: UserId,
    /// Role at the time the credential was issued (JWT) or checked (API key).
    pub role: Role,
    /// Credential kind.
    pub method: AuthMethod,
}

impl AuthUser {
    /// True for admins.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// The credential in the request, if any; never logged.
fn credential(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(axum::http::header::AUTHORIZATION) {
        let v = v.to_str().ok()?;
        let (scheme, token) = v.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim())
            .filter(|t| !t.is_empty());
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<ApiContext> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ctx: &ApiContext) -> Result<Self, ApiError> {
        let token = credential(&parts.headers).ok_or_else(ApiError::unauthorized)?;
        let user = if token.starts_with(API_KEY_PREFIX) {
            let found = ctx
                .store()
                .authenticate_api_key(&hash_secret(token), voidrunner_store::now())
                .await?
                .ok_or_else(ApiError::unauthorized)?;
            AuthUser {
                id: found.id,
                role: found.role,
                method: AuthMethod::ApiKey,
            }
        } else {
            let (id, role) = ctx
                .inner
                .jwt
                .verify(token)
                .ok_or_else(ApiError::unauthorized)?;
            AuthUser {
                id,
                role,
                method: AuthMethod::AccessToken,
            }
        };
        tracing::Span::current().record("user.id", tracing::field::display(user.id));
        if let Some(limiter) = &ctx.inner.user_limiter {
            limiter.check(user.id).map_err(ApiError::rate_limited)?;
        }
        Ok(user)
    }
}

//! `/api/v1/auth/*`: register, login, refresh, logout, me.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use voidrunner_api_types::{
    ErrorBody, ErrorCode, LoginRequest, LogoutRequest, RefreshRequest, RegisterRequest,
    TokenResponse, UserResponse,
};
use voidrunner_domain::validation::{check_password, normalize_email};
use voidrunner_domain::{Role, User, UserId};
use voidrunner_store::{NewRefreshToken, NewUser, RefreshOutcome, RefreshTokenSeed, StoreError};

use crate::auth::AuthUser;
use crate::auth::tokens::{hash_secret, random_secret};
use crate::context::ApiContext;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;

/// The replacement refresh token of a rotation or a new session: (secret, seed).
fn new_refresh(ctx: &ApiContext) -> (String, RefreshTokenSeed) {
    let secret = random_secret();
    let now = voidrunner_store::now();
    let ttl = i64::try_from(ctx.settings().refresh_token_ttl_secs).unwrap_or(i64::MAX / 1000);
    let seed = RefreshTokenSeed {
        id: uuid::Uuid::now_v7(),
        token_hash: hash_secret(&secret),
        created_at: now,
        expires_at: now + chrono::Duration::seconds(ttl),
    };
    (secret, seed)
}

fn token_response(
    ctx: &ApiContext,
    user: User,
    refresh_token: String,
    seed: &RefreshTokenSeed,
) -> ApiResult<TokenResponse> {
    let access_token = ctx
        .inner
        .jwt
        .issue(user.id, user.role, seed.created_at)
        .map_err(|e| ApiError::internal(format!("sign access token: {e}")))?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer".to_owned(),
        expires_in_secs: ctx.inner.jwt.ttl_secs(),
        refresh_token,
        refresh_expires_at: seed.expires_at,
        user: user.into(),
    })
}

/// Starts a new refresh family for `user` and returns both tokens.
async fn start_session(ctx: &ApiContext, user: User) -> ApiResult<TokenResponse> {
    let (secret, seed) = new_refresh(ctx);
    ctx.store()
        .insert_refresh_token(NewRefreshToken {
            id: seed.id,
            user_id: user.id,
            family_id: uuid::Uuid::now_v7(),
            token_hash: seed.token_hash.clone(),
            created_at: seed.created_at,
            expires_at: seed.expires_at,
        })
        .await?;
    token_response(ctx, user, secret, &seed)
}

/// Creates an account and signs it in.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Account created, tokens issued", body = TokenResponse),
        (status = 409, description = "Email already registered", body = ErrorBody),
        (status = 422, description = "Invalid email or password", body = ErrorBody),
    ))]
pub(crate) async fn register_user(
    State(ctx): State<ApiContext>,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<TokenResponse>)> {
    let email = normalize_email(&req.email)?;
    check_password(&req.password)?;
    let password_hash = ctx.inner.passwords.hash(req.password).await?;
    let user = ctx
        .store()
        .create_user(NewUser {
            id: UserId::new(),
            email,
            password_hash,
            role: Role::User,
            admin_if_first: ctx.settings().first_user_admin,
            created_at: voidrunner_store::now(),
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::Conflict,
                "email already registered",
            )
            .with_field("email"),
            other => other.into(),
        })?;
    tracing::info!(user.id = %user.id, "registered user {}", user.id);
    Ok((StatusCode::CREATED, Json(start_session(&ctx, user).await?)))
}

/// Exchanges email and password for tokens. Unknown emails cost the same argon2 work as
/// wrong passwords and get the same answer.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 401, description = "Wrong email or password", body = ErrorBody),
    ))]
pub(crate) async fn log_in(
    State(ctx): State<ApiContext>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Json<TokenResponse>> {
    let creds = match normalize_email(&req.email) {
        Ok(email) => ctx.store().find_credentials(&email).await?,
        Err(_) => None,
    };
    let (hash, user) = match creds {
        Some(c) => (Some(c.password_hash), Some(c.user)),
        None => (None, None),
    };
    let ok = ctx.inner.passwords.verify(hash, req.password).await?;
    match user {
        Some(user) if ok => Ok(Json(start_session(&ctx, user).await?)),
        _ => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidCredentials,
            "wrong email or password",
        )),
    }
}

/// Rotates a refresh token: the presented one is used up and a new pair is issued. Presenting
/// a used token again revokes the whole family.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens", body = TokenResponse),
        (status = 401, description = "Unknown, expired, revoked or reused token", body = ErrorBody),
    ))]
pub(crate) async fn refresh_session(
    State(ctx): State<ApiContext>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> ApiResult<Json<TokenResponse>> {
    let (secret, seed) = new_refresh(&ctx);
    let outcome = ctx
        .store()
        .rotate_refresh_token(&hash_secret(&req.refresh_token), seed.clone())
        .await?;
    match outcome {
        RefreshOutcome::Rotated { user, .. } => {
            Ok(Json(token_response(&ctx, user, secret, &seed)?))
        }
        RefreshOutcome::Reused => {
            tracing::warn!("refresh token reuse detected; family revoked");
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::RefreshTokenReused,
                "refresh token already used; the session has been revoked",
            ))
        }
        RefreshOutcome::Expired | RefreshOutcome::Unknown => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidRefreshToken,
            "invalid or expired refresh token",
        )),
    }
}

/// Revokes the session (the refresh token's family). Always 204, so it reveals nothing.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    request_body = LogoutRequest,
    responses((status = 204, description = "Session revoked")))]
pub(crate) async fn log_out(
    State(ctx): State<ApiContext>,
    ApiJson(req): ApiJson<LogoutRequest>,
) -> ApiResult<StatusCode> {
    ctx.store()
        .revoke_refresh_family(&hash_secret(&req.refresh_token), voidrunner_store::now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's account.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = UserResponse),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    ))]
pub(crate) async fn get_current_user(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
) -> ApiResult<Json<UserResponse>> {
    let user = ctx.store().get_user(auth.id).await.map_err(|e| match e {
        StoreError::NotFound => ApiError::unauthorized(),
        other => other.into(),
    })?;
    Ok(Json(user.into()))
}

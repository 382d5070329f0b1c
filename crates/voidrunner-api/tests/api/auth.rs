//! Registration, login, refresh rotation and reuse detection, logout.

use reqwest::Method;
use serde_json::json;
use voidrunner_api_types::RoleDto;

use crate::helpers::{Backend, assert_client_error, assert_error, backend_tests};

backend_tests!(
    register_login_and_me,
    duplicate_email_is_409_case_insensitively,
    wrong_password_and_unknown_email_look_the_same,
    registration_validation_names_the_field,
    first_user_is_admin_only_when_configured,
    refresh_rotates_and_reuse_revokes_the_family,
    logout_revokes_the_session,
    expired_refresh_token_is_rejected,
    me_requires_authentication,
);

async fn register_login_and_me(b: Backend) {
    let app = b.spawn().await;
    let reg = app
        .client
        .register("  Alice@Example.COM ", "s3cret-password")
        .await
        .expect("register");
    assert_eq!(reg.user.email, "alice@example.com");
    assert_eq!(reg.user.role, RoleDto::User);
    assert_eq!(reg.token_type, "Bearer");
    assert_eq!(reg.expires_in_secs, 15 * 60);
    assert!(!reg.refresh_token.is_empty());

    let login = app
        .client
        .login("ALICE@example.com", "s3cret-password")
        .await
        .expect("login");
    assert_eq!(login.user.id, reg.user.id);
    let me = app
        .client
        .with_token(&login.access_token)
        .me()
        .await
        .expect("me");
    assert_eq!(me.id, reg.user.id);
    assert_eq!(me.email, "alice@example.com");
}

async fn duplicate_email_is_409_case_insensitively(b: Backend) {
    let app = b.spawn().await;
    app.client
        .register("bob@example.com", "password-1")
        .await
        .expect("first");
    let err = app
        .client
        .register("BOB@example.com", "password-2")
        .await
        .expect_err("duplicate");
    assert_client_error(&err, 409, "conflict", Some("email"));
}

async fn wrong_password_and_unknown_email_look_the_same(b: Backend) {
    let app = b.spawn().await;
    app.client
        .register("carol@example.com", "password-1")
        .await
        .expect("register");
    let body = |email: &str, password: &str| json!({"email": email, "password": password});
    let wrong = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(body("carol@example.com", "password-2")),
        )
        .await;
    let unknown = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(body("nobody@example.com", "password-1")),
        )
        .await;
    assert_error(&wrong, 401, "invalid_credentials", None);
    assert_error(&unknown, 401, "invalid_credentials", None);
    assert_eq!(wrong.2, unknown.2, "identical bodies");
}

async fn registration_validation_names_the_field(b: Backend) {
    let app = b.spawn().await;
    let cases = [
        ("not-an-email", "password-1", "email"),
        ("a@b", "password-1", "email"),
        ("ok@example.com", "short", "password"),
        ("ok@example.com", &"x".repeat(129), "password"),
    ];
    for (email, password, field) in cases {
        let err = app
            .client
            .register(email, password)
            .await
            .expect_err("invalid");
        assert_client_error(&err, 422, "validation_failed", Some(field));
    }
    // 128 characters is fine even when it is 256 bytes (no 72-byte truncation surprise)...
    let long = "é".repeat(128);
    app.client
        .register("long@example.com", &long)
        .await
        .expect("128 chars");
    app.client
        .login("long@example.com", &long)
        .await
        .expect("login with 128 chars");
    // ...and a password differing only after byte 72 is a different password.
    let mut other = "é".repeat(127);
    other.push('x');
    let err = app
        .client
        .login("long@example.com", &other)
        .await
        .expect_err("differs after byte 72");
    assert_client_error(&err, 401, "invalid_credentials", None);
}

async fn first_user_is_admin_only_when_configured(b: Backend) {
    let app = b.spawn().await;
    assert_eq!(app.user().await.tokens.user.role, RoleDto::User);

    let app = b.spawn_with(|s| s.first_user_admin = true).await;
    let first = app.user().await;
    let second = app.user().await;
    assert_eq!(first.tokens.user.role, RoleDto::Admin);
    assert_eq!(second.tokens.user.role, RoleDto::User);
    assert_eq!(first.client.me().await.expect("me").role, RoleDto::Admin);
}

async fn refresh_rotates_and_reuse_revokes_the_family(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    let r0 = user.tokens.refresh_token.clone();

    let t1 = app.client.refresh(&r0).await.expect("first refresh");
    assert_ne!(t1.refresh_token, r0, "rotated");
    assert_eq!(t1.user.id, user.id());
    app.client
        .with_token(&t1.access_token)
        .me()
        .await
        .expect("new access token works");
    let t2 = app
        .client
        .refresh(&t1.refresh_token)
        .await
        .expect("second refresh");

    // Presenting an already-used token is theft: the whole family dies.
    let err = app.client.refresh(&r0).await.expect_err("reuse");
    assert_client_error(&err, 401, "refresh_token_reused", None);
    let err = app
        .client
        .refresh(&t2.refresh_token)
        .await
        .expect_err("family revoked");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(401));

    // Another session of the same user (another family) is unaffected.
    let other = app
        .client
        .login(&user.email, &user.password)
        .await
        .expect("login");
    app.client
        .refresh(&other.refresh_token)
        .await
        .expect("other family still works");

    let err = app.client.refresh("garbage").await.expect_err("unknown");
    assert_client_error(&err, 401, "invalid_refresh_token", None);
}

async fn logout_revokes_the_session(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    let t1 = app
        .client
        .refresh(&user.tokens.refresh_token)
        .await
        .expect("refresh");
    app.client.logout(&t1.refresh_token).await.expect("logout");
    let err = app
        .client
        .refresh(&t1.refresh_token)
        .await
        .expect_err("revoked");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(401));
    // Logging out with an unknown token reveals nothing.
    app.client.logout("unknown").await.expect("204 anyway");
}

async fn expired_refresh_token_is_rejected(b: Backend) {
    let app = b.spawn_with(|s| s.refresh_token_ttl_secs = 0).await;
    let user = app.user().await;
    let err = app
        .client
        .refresh(&user.tokens.refresh_token)
        .await
        .expect_err("expired at birth");
    assert_client_error(&err, 401, "invalid_refresh_token", None);
}

async fn me_requires_authentication(b: Backend) {
    let app = b.spawn().await;
    let got = app.call(Method::GET, "/api/v1/auth/me", None, None).await;
    assert_error(&got, 401, "unauthorized", None);
}

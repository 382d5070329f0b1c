//! API keys: create (shown once), list, use, revoke.

use reqwest::Method;
use serde_json::json;
use voidrunner_api_types::CreateApiKeyRequest;

use crate::helpers::{Backend, assert_client_error, assert_error, backend_tests};

backend_tests!(api_key_lifecycle, api_key_validation_and_ownership);

fn req(name: &str) -> CreateApiKeyRequest {
    CreateApiKeyRequest {
        name: name.to_owned(),
        expires_at: None,
    }
}

async fn api_key_lifecycle(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    let created = user
        .client
        .create_api_key(&req("ci"))
        .await
        .expect("create");
    assert!(created.key.starts_with("vr_"), "{}", created.key);
    assert!(created.key.starts_with(&created.api_key.prefix));
    assert!(created.api_key.prefix.len() < created.key.len());
    assert_eq!(created.api_key.name, "ci");

    // The key authenticates as Bearer and as X-API-Key.
    let as_bearer = app.client.with_token(&created.key);
    assert_eq!(as_bearer.me().await.expect("bearer key").id, user.id());
    let res = app
        .http
        .get(app.url("/api/v1/auth/me"))
        .header("x-api-key", &created.key)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 200);

    // Listed without the secret; last use recorded.
    let listed = user.client.list_api_keys().await.expect("list");
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].id, created.api_key.id);
    assert!(listed.items[0].last_used_at.is_some());
    let raw = app
        .call(
            Method::GET,
            "/api/v1/auth/api-keys",
            Some(user.token()),
            None,
        )
        .await;
    assert!(
        !raw.2.to_string().contains(&created.key),
        "secret never listed"
    );

    // Revoked keys stop working.
    user.client
        .revoke_api_key(created.api_key.id)
        .await
        .expect("revoke");
    let err = as_bearer.me().await.expect_err("revoked");
    assert_client_error(&err, 401, "unauthorized", None);
    let listed = user.client.list_api_keys().await.expect("list");
    assert!(listed.items[0].revoked_at.is_some());

    // A made-up key never works.
    let err = app
        .client
        .with_token("vr_not-a-real-key")
        .me()
        .await
        .expect_err("unknown key");
    assert_client_error(&err, 401, "unauthorized", None);
}

async fn api_key_validation_and_ownership(b: Backend) {
    let app = b.spawn().await;
    let alice = app.user().await;
    let bob = app.user().await;

    let err = alice
        .client
        .create_api_key(&req(""))
        .await
        .expect_err("empty");
    assert_client_error(&err, 422, "validation_failed", Some("name"));
    let err = alice
        .client
        .create_api_key(&req(&"n".repeat(101)))
        .await
        .expect_err("long");
    assert_client_error(&err, 422, "validation_failed", Some("name"));
    let past = CreateApiKeyRequest {
        name: "old".into(),
        expires_at: Some(chrono::Utc::now() - chrono::Duration::hours(1)),
    };
    let err = alice.client.create_api_key(&past).await.expect_err("past");
    assert_client_error(&err, 422, "validation_failed", Some("expires_at"));

    let got = app
        .call(
            Method::POST,
            "/api/v1/auth/api-keys",
            None,
            Some(json!({"name": "x"})),
        )
        .await;
    assert_error(&got, 401, "unauthorized", None);

    // Bob cannot see or revoke Alice's key: 404 exactly like a missing key.
    let key = alice
        .client
        .create_api_key(&req("a"))
        .await
        .expect("create");
    assert!(
        bob.client
            .list_api_keys()
            .await
            .expect("list")
            .items
            .is_empty()
    );
    let theirs = app
        .call(
            Method::DELETE,
            &format!("/api/v1/auth/api-keys/{}", key.api_key.id),
            Some(bob.token()),
            None,
        )
        .await;
    let missing = app
        .call(
            Method::DELETE,
            &format!("/api/v1/auth/api-keys/{}", uuid::Uuid::new_v4()),
            Some(bob.token()),
            None,
        )
        .await;
    assert_error(&theirs, 404, "not_found", None);
    assert_eq!(theirs.2, missing.2);
    alice
        .client
        .with_token(&key.key)
        .me()
        .await
        .expect("still valid");
}

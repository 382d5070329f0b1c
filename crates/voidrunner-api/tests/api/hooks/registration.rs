//! The repositories API: registration checks, scope, secrets never echoed, rotation, delete.

use super::*;
use crate::helpers::{assert_error, backend_tests};

backend_tests!(repositories_are_registered_scoped_and_never_echo_secrets,);

async fn repositories_are_registered_scoped_and_never_echo_secrets(b: Backend) {
    let app = spawn(&b).await;
    let user = app.user().await;
    let other = app.user().await;
    let repo = Repo::new();
    let v = register(&app, &user, "github", "acme/app", &repo.url, false).await;
    let text = v.to_string();
    assert!(!text.contains(SECRET) && !text.contains(TOKEN), "{text}");
    assert_eq!(v["ci_dir"], ".voidrunner");
    assert_eq!(v["hook_path"], "/api/v1/hooks/github");
    assert_eq!(v["secret_names"], json!(["DEPLOY_TOKEN"]));
    let id = v["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/repositories/{id}");

    let body = |over: Value| {
        let mut b = json!({"provider": "github", "full_name": "acme/other", "clone_url": repo.url,
            "webhook_secret": SECRET});
        for (k, v) in over.as_object().expect("obj") {
            b[k] = v.clone();
        }
        b
    };
    for (over, field) in [
        (json!({"provider": "bitbucket"}), "provider"),
        (json!({"full_name": "noslash"}), "full_name"),
        (
            json!({"clone_url": "https://example.com/r.git"}),
            "clone_url",
        ),
        (json!({"clone_url": "ext::sh -c x"}), "clone_url"),
        (json!({"clone_url": "/tmp/local"}), "clone_url"),
        (json!({"webhook_secret": "short"}), "webhook_secret"),
        (json!({"ci_dir": "../up"}), "ci_dir"),
        (
            json!({"secrets": {"bad name": "value-1234"}}),
            "secrets.bad name",
        ),
        (
            json!({"status_reporting": {"api_url": "ftp://x", "token": "t"}}),
            "status_reporting.api_url",
        ),
    ] {
        let got = app
            .call(
                Method::POST,
                "/api/v1/repositories",
                Some(user.token()),
                Some(body(over.clone())),
            )
            .await;
        assert_error(&got, 422, "validation_failed", Some(field));
    }
    let dup = app
        .call(
            Method::POST,
            "/api/v1/repositories",
            Some(user.token()),
            Some(body(json!({"full_name": "acme/app"}))),
        )
        .await;
    assert_eq!(dup.0, 409, "{}", dup.2);
    // file:// only where the operator allows it: not by default.
    let strict = b.spawn().await;
    let u = strict.user().await;
    let got = strict
        .call(
            Method::POST,
            "/api/v1/repositories",
            Some(u.token()),
            Some(body(json!({}))),
        )
        .await;
    assert_error(&got, 422, "validation_failed", Some("clone_url"));

    let (s, _, list) = app
        .call(
            Method::GET,
            "/api/v1/repositories",
            Some(user.token()),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(list["items"].as_array().expect("items").len(), 1);
    let (s, _, mine) = app.call(Method::GET, &path, Some(user.token()), None).await;
    assert_eq!(
        (s.as_u16(), mine["full_name"].as_str()),
        (200, Some("acme/app"))
    );
    for (m, p) in [(Method::GET, path.clone()), (Method::DELETE, path.clone())] {
        let got = app.call(m, &p, Some(other.token()), None).await;
        assert_error(&got, 404, "not_found", None);
    }
    let (s, _, v) = app
        .call(
            Method::PATCH,
            &format!("{path}/secrets"),
            Some(user.token()),
            Some(json!({"webhook_secret": "rotated-secret-0123456789",
                "secrets": {"DEPLOY_TOKEN": null, "NPM_TOKEN": "npm-token-value"}})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["secret_names"], json!(["NPM_TOKEN"]));
    assert!(!v.to_string().contains("npm-token-value"));
    // The old webhook secret no longer signs.
    let after = repo.head();
    let (s, _) = github(
        &app,
        "push",
        "d-rot",
        &push_body(
            "acme/app",
            "refs/heads/main",
            "0000000000000000000000000000000000000000",
            &after,
        ),
        SECRET,
    )
    .await;
    assert_eq!(s, 401);
    let (s, v) = github(
        &app,
        "ping",
        "d-ping",
        &json!({"zen": "x", "repository": {"full_name": "acme/app"}}),
        "rotated-secret-0123456789",
    )
    .await;
    assert_eq!((s, v["event"].clone()), (200, Value::Null), "{v}");
    let (s, _, v) = app
        .call(
            Method::GET,
            &format!("{path}/deliveries"),
            Some(user.token()),
            None,
        )
        .await;
    assert_eq!(
        (s.as_u16(), v["items"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{v}"
    );
    let (s, _, _) = app
        .call(Method::DELETE, &path, Some(user.token()), None)
        .await;
    assert_eq!(s, 204);
    let (s, _, _) = app.call(Method::GET, &path, Some(user.token()), None).await;
    assert_eq!(s, 404);
}

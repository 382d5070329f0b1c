//! Write-only task secrets: accepted on create and update, never returned, stored sealed
//! (ciphertext bound to the task and name), validated with the field named and the value
//! never echoed.

use reqwest::Method;
use serde_json::json;
use voidrunner_domain::ExecutionId;
use voidrunner_store::Scope;

use crate::helpers::{Backend, assert_error, backend_tests, test_secret_box};

backend_tests!(
    secrets_are_write_only_and_sealed,
    secrets_update_sets_and_removes_one_by_one,
    bad_secrets_name_the_field_and_never_echo_the_value,
);

const VALUE: &str = "s3cr3t-value-Zq9";

async fn secrets_are_write_only_and_sealed(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    let body = json!({
        "name": "with secrets", "language": "python",
        "code": "import os; print(os.environ['API_TOKEN'])",
        "secrets": {"API_TOKEN": VALUE, "OTHER": "another-one"},
    });
    let (status, _, created) = app
        .call(
            Method::POST,
            "/api/v1/tasks",
            Some(user.token()),
            Some(body),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["secret_names"], json!(["API_TOKEN", "OTHER"]));
    assert!(!created.to_string().contains(VALUE), "{created}");
    let id = created["id"].as_str().expect("id").to_owned();

    let (status, _, got) = app
        .call(
            Method::GET,
            &format!("/api/v1/tasks/{id}"),
            Some(user.token()),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(got["secret_names"], json!(["API_TOKEN", "OTHER"]));
    assert!(!got.to_string().contains(VALUE), "{got}");

    // What the store holds is ciphertext that opens only with the task/name context.
    let (status, _, exec) = app
        .call(
            Method::POST,
            &format!("/api/v1/tasks/{id}/executions"),
            Some(user.token()),
            None,
        )
        .await;
    assert_eq!(status, 202, "{exec}");
    assert!(!exec.to_string().contains(VALUE), "{exec}");
    let exec_id: ExecutionId = exec["id"].as_str().expect("id").parse().expect("uuid");
    let sealed = app.store.execution_secrets(exec_id).await.expect("sealed");
    let token = &sealed["API_TOKEN"];
    assert!(
        !token.windows(VALUE.len()).any(|w| w == VALUE.as_bytes()),
        "the store must not hold the plaintext"
    );
    let secret_box = test_secret_box();
    let opened = secret_box
        .open_with_context(token, format!("{id}/API_TOKEN").as_bytes())
        .expect("opens with its own context");
    assert_eq!(opened.as_slice(), VALUE.as_bytes());
    assert!(
        secret_box
            .open_with_context(token, format!("{id}/OTHER").as_bytes())
            .is_err(),
        "a sealed value moved to another name does not open"
    );

    // Another user cannot see the names either.
    let other = app.user().await;
    let (status, _, _) = app
        .call(
            Method::GET,
            &format!("/api/v1/tasks/{id}"),
            Some(other.token()),
            None,
        )
        .await;
    assert_eq!(status, 404);
}

async fn secrets_update_sets_and_removes_one_by_one(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    let body = json!({
        "name": "t", "language": "python", "code": "print(1)",
        "secrets": {"A_ONE": "aaaa-1111", "B_TWO": "bbbb-2222"},
    });
    let (_, _, created) = app
        .call(
            Method::POST,
            "/api/v1/tasks",
            Some(user.token()),
            Some(body),
        )
        .await;
    let id = created["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/tasks/{id}");
    let (status, _, updated) = app
        .call(
            Method::PUT,
            &path,
            Some(user.token()),
            Some(json!({"secrets": {"A_ONE": null, "C_THREE": "cccc-3333"}})),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["secret_names"], json!(["B_TWO", "C_THREE"]));
    // An update without `secrets` keeps them and still lists them.
    let (status, _, renamed) = app
        .call(
            Method::PUT,
            &path,
            Some(user.token()),
            Some(json!({"name": "renamed"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(renamed["secret_names"], json!(["B_TWO", "C_THREE"]));
    // An env variable may not shadow a secret that stays…
    let (status, _, err) = app
        .call(
            Method::PUT,
            &path,
            Some(user.token()),
            Some(json!({"env": {"B_TWO": "plain"}})),
        )
        .await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["error"]["field"], "env.B_TWO");
    // …but may take the name of one removed in the same request.
    let (status, _, ok) = app
        .call(
            Method::PUT,
            &path,
            Some(user.token()),
            Some(json!({"env": {"B_TWO": "plain"}, "secrets": {"B_TWO": null}})),
        )
        .await;
    assert_eq!(status, 200, "{ok}");
    assert_eq!(ok["secret_names"], json!(["C_THREE"]));
    assert_eq!(ok["env"]["B_TWO"], "plain");
    let names = app
        .store
        .task_secret_names(
            Scope::Owner(voidrunner_domain::UserId(user.id())),
            id.parse().expect("id"),
        )
        .await
        .expect("names");
    assert_eq!(names, ["C_THREE"]);
}

async fn bad_secrets_name_the_field_and_never_echo_the_value(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    let create = |secrets: serde_json::Value, env: serde_json::Value| json!({"name": "t", "language": "python", "code": "print(1)", "secrets": secrets, "env": env});
    let cases = [
        (create(json!({"SHORT": "abc"}), json!({})), "secrets.SHORT"),
        (create(json!({"1BAD": "abcdef"}), json!({})), "secrets.1BAD"),
        (
            create(json!({"HOME_X": "abcdef"}), json!({"HOME_X": "v"})),
            "secrets.HOME_X",
        ),
        (
            create(json!({"NUL": "ab\u{0}cdef"}), json!({})),
            "secrets.NUL",
        ),
    ];
    for (body, field) in cases {
        let got = app
            .call(
                Method::POST,
                "/api/v1/tasks",
                Some(user.token()),
                Some(body),
            )
            .await;
        assert_error(&got, 422, "validation_failed", Some(field));
        let text = got.2.to_string();
        assert!(
            !text.contains("abcdef") && !text.contains("\"abc\""),
            "{text}"
        );
    }
    let (status, _, list) = app
        .call(Method::GET, "/api/v1/tasks", Some(user.token()), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        list["items"],
        json!([]),
        "no task was created by a refused request"
    );
}

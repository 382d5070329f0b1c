//! `POST /api/v1/run` validation, language aliases, `GET /api/v1/languages`, and NUL
//! rejection on every text field of tasks and runs.

use reqwest::Method;
use serde_json::{Value, json};
use voidrunner_api_types::{LanguageResponse, LimitsResponse, RunRequest, WaitQuery};

use crate::helpers::{Backend, assert_error, backend_tests, create_task};

backend_tests!(
    run_rules_name_the_field,
    aliases_resolve_and_languages_are_listed,
    nul_is_rejected_in_every_task_text_field,
);

fn run_body(pairs: &[(&str, Value)]) -> Value {
    let mut v = json!({"language": "python", "code": "print(1)"});
    for (k, val) in pairs {
        v[*k] = val.clone();
    }
    v
}

async fn run_rules_name_the_field(b: Backend) {
    let app = b
        .spawn_with(|s| {
            s.max_code_bytes = 100;
            s.max_stdin_bytes = 10;
        })
        .await;
    let user = app.user().await;
    let cases = [
        (run_body(&[("language", json!("cobol"))]), "language"),
        (run_body(&[("language", json!("python\u{0}"))]), "language"),
        (run_body(&[("code", json!(" "))]), "code"),
        (run_body(&[("code", json!("x".repeat(101)))]), "code"),
        (run_body(&[("code", json!("print(1)\u{0}"))]), "code"),
        (run_body(&[("stdin", json!("s".repeat(11)))]), "stdin"),
        (run_body(&[("stdin", json!("\u{0}"))]), "stdin"),
        (run_body(&[("env", json!({"1A": "v"}))]), "env.1A"),
        (run_body(&[("env", json!({"A": "v\u{0}"}))]), "env.A"),
        (
            run_body(&[("limits", json!({"memory_mb": 4097}))]),
            "limits.memory_mb",
        ),
        (run_body(&[("priority", json!(11))]), "priority"),
        (run_body(&[("name", json!("x"))]), "name"),
        (json!({"code": "print(1)"}), "language"),
    ];
    for (body, field) in cases {
        let got = app
            .call(Method::POST, "/api/v1/run", Some(user.token()), Some(body))
            .await;
        assert_error(&got, 422, "validation_failed", Some(field));
    }
    let got = app
        .call(Method::POST, "/api/v1/run", None, Some(run_body(&[])))
        .await;
    assert_error(&got, 401, "unauthorized", None);

    let e = user
        .client
        .run(
            &RunRequest {
                stdin: Some("in".into()),
                ..RunRequest::new("bash", "cat")
            },
            &WaitQuery::default(),
        )
        .await
        .expect("valid run");
    assert_eq!(e.task_id, None);
    assert_eq!(e.priority, 5, "default priority");
    assert_eq!(e.limits, app.settings.limits.defaults.into());
    assert_eq!(e.stdin.as_deref(), Some("in"));
    assert_eq!(e.owner_id, user.id());
}

async fn aliases_resolve_and_languages_are_listed(b: Backend) {
    let app = b
        .spawn_with(|s| {
            s.language_aliases.insert("py".into(), "python".into());
            s.language_aliases.insert("python3".into(), "python".into());
            s.language_aliases.insert("rb".into(), "ruby".into());
            s.language_versions.insert("python".into(), "3.11.2".into());
        })
        .await;
    let user = app.user().await;
    let e = user
        .client
        .run(&RunRequest::new("py", "print(1)"), &WaitQuery::default())
        .await
        .expect("alias");
    assert_eq!(e.language, "python", "stored under the canonical name");
    let got = app
        .call(
            Method::POST,
            "/api/v1/run",
            Some(user.token()),
            Some(run_body(&[("language", json!("rb"))])),
        )
        .await;
    assert_error(&got, 422, "validation_failed", Some("language"));
    let mut req = crate::helpers::task_req("aliased");
    req.language = "python3".into();
    let task = user.client.create_task(&req).await.expect("task alias");
    assert_eq!(task.language, "python");

    // Public: no credential needed.
    let langs = app.client.list_languages().await.expect("languages");
    assert_eq!(
        langs.items[0],
        LanguageResponse {
            name: "python".into(),
            version: Some("3.11.2".into()),
            aliases: vec!["py".into(), "python3".into()],
        }
    );
    let names: Vec<_> = langs.items.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, app.settings.allowed_languages);
    assert_eq!(langs.items[1].version, None);
    let (defaults, maxima): (LimitsResponse, LimitsResponse) = (
        app.settings.limits.defaults.into(),
        app.settings.limits.maxima.into(),
    );
    assert_eq!(
        (langs.limits.defaults, langs.limits.maxima),
        (defaults, maxima)
    );
}

async fn nul_is_rejected_in_every_task_text_field(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    let base = json!({"name": "t", "language": "python", "code": "print(1)"});
    let cases = [
        ("name", json!("a\u{0}b"), "name"),
        ("description", json!("d\u{0}"), "description"),
        ("code", json!("print(1)\u{0}"), "code"),
        ("stdin", json!("\u{0}"), "stdin"),
        ("env", json!({"A": "\u{0}"}), "env.A"),
        ("env", json!({"A\u{0}": "v"}), "env.A\u{0}"),
        ("tags", json!(["a\u{0}"]), "tags[0]"),
        ("metadata", json!({"k": "v\u{0}"}), "metadata"),
        ("metadata", json!({"k\u{0}": 1}), "metadata"),
        ("metadata", json!({"k": [{"deep": "\u{0}"}]}), "metadata"),
        ("language", json!("python\u{0}"), "language"),
    ];
    let task = create_task(&user, "existing").await;
    for (key, value, field) in cases {
        let mut body = base.clone();
        body[key] = value.clone();
        let got = app
            .call(
                Method::POST,
                "/api/v1/tasks",
                Some(user.token()),
                Some(body),
            )
            .await;
        assert_error(&got, 422, "validation_failed", Some(field));
        let got = app
            .call(
                Method::PUT,
                &format!("/api/v1/tasks/{}", task.id),
                Some(user.token()),
                Some(json!({ key: value })),
            )
            .await;
        assert_error(&got, 422, "validation_failed", Some(field));
    }
    for query in ["q=a%00", "tag=%00", "language=py%00"] {
        let got = app
            .call(
                Method::GET,
                &format!("/api/v1/tasks?{query}"),
                Some(user.token()),
                None,
            )
            .await;
        assert_eq!(got.0, 400, "{query}: {}", got.2);
    }
    let unchanged = user.client.get_task(task.id).await.expect("get");
    assert_eq!(unchanged, task, "no partial writes");
}

//! Every task validation rule answers 422 naming its field.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, assert_error, backend_tests, create_task};

backend_tests!(
    create_rules_name_the_field,
    update_rules_name_the_field,
    boundaries_are_accepted
);

fn base() -> Value {
    json!({"name": "t", "language": "python", "code": "print(1)"})
}

fn with(pairs: &[(&str, Value)]) -> Value {
    let mut v = base();
    for (k, val) in pairs {
        v[*k] = val.clone();
    }
    v
}

fn env_of(n: usize, value_len: usize) -> Value {
    let map: serde_json::Map<String, Value> = (0..n)
        .map(|i| (format!("V{i}"), json!("x".repeat(value_len))))
        .collect();
    Value::Object(map)
}

/// Small caps so oversize cases stay small.
fn small(s: &mut voidrunner_api::ApiSettings) {
    s.max_code_bytes = 1000;
    s.max_stdin_bytes = 100;
    s.max_env_vars = 3;
    s.max_env_value_bytes = 50;
    s.max_env_total_bytes = 120;
    s.max_tags = 3;
    s.max_tag_chars = 10;
    s.max_metadata_bytes = 100;
}

fn cases() -> Vec<(&'static str, Value, &'static str)> {
    vec![
        ("empty name", with(&[("name", json!(""))]), "name"),
        ("blank name", with(&[("name", json!("   "))]), "name"),
        (
            "long name",
            with(&[("name", json!("n".repeat(256)))]),
            "name",
        ),
        ("name type", with(&[("name", json!(5))]), "name"),
        (
            "long description",
            with(&[("description", json!("d".repeat(1001)))]),
            "description",
        ),
        (
            "unknown language",
            with(&[("language", json!("cobol"))]),
            "language",
        ),
        ("empty code", with(&[("code", json!(""))]), "code"),
        (
            "big code",
            with(&[("code", json!("x".repeat(1001)))]),
            "code",
        ),
        (
            "big stdin",
            with(&[("stdin", json!("x".repeat(101)))]),
            "stdin",
        ),
        (
            "env name digit",
            with(&[("env", json!({"1X": "v"}))]),
            "env.1X",
        ),
        (
            "env name dash",
            with(&[("env", json!({"A-B": "v"}))]),
            "env.A-B",
        ),
        ("env name empty", with(&[("env", json!({"": "v"}))]), "env."),
        ("env count", with(&[("env", env_of(4, 1))]), "env"),
        ("env value size", with(&[("env", env_of(1, 51))]), "env.V0"),
        ("env total size", with(&[("env", env_of(3, 45))]), "env"),
        ("env value type", with(&[("env", json!({"A": 1}))]), "env.A"),
        (
            "timeout zero",
            with(&[("limits", json!({"timeout_secs": 0}))]),
            "limits.timeout_secs",
        ),
        (
            "timeout max",
            with(&[("limits", json!({"timeout_secs": 301}))]),
            "limits.timeout_secs",
        ),
        (
            "memory max",
            with(&[("limits", json!({"memory_mb": 4097}))]),
            "limits.memory_mb",
        ),
        (
            "memory min",
            with(&[("limits", json!({"memory_mb": 1}))]),
            "limits.memory_mb",
        ),
        (
            "cpu max",
            with(&[("limits", json!({"cpu_cores": 4.5}))]),
            "limits.cpu_cores",
        ),
        (
            "cpu zero",
            with(&[("limits", json!({"cpu_cores": 0}))]),
            "limits.cpu_cores",
        ),
        (
            "procs max",
            with(&[("limits", json!({"max_processes": 513}))]),
            "limits.max_processes",
        ),
        (
            "output max",
            with(&[("limits", json!({"max_output_bytes": 17_000_000}))]),
            "limits.max_output_bytes",
        ),
        (
            "negative limit",
            with(&[("limits", json!({"memory_mb": -1}))]),
            "limits.memory_mb",
        ),
        (
            "unknown limit",
            with(&[("limits", json!({"disk_mb": 1}))]),
            "limits.disk_mb",
        ),
        ("priority 11", with(&[("priority", json!(11))]), "priority"),
        (
            "priority 300",
            with(&[("priority", json!(300))]),
            "priority",
        ),
        (
            "priority negative",
            with(&[("priority", json!(-1))]),
            "priority",
        ),
        (
            "tag charset",
            with(&[("tags", json!(["ok", "not ok"]))]),
            "tags[1]",
        ),
        ("tag empty", with(&[("tags", json!([""]))]), "tags[0]"),
        (
            "tag long",
            with(&[("tags", json!(["t".repeat(11)]))]),
            "tags[0]",
        ),
        (
            "tag count",
            with(&[("tags", json!(["a", "b", "c", "d"]))]),
            "tags",
        ),
        (
            "metadata array",
            with(&[("metadata", json!([1]))]),
            "metadata",
        ),
        (
            "metadata string",
            with(&[("metadata", json!("x"))]),
            "metadata",
        ),
        (
            "metadata size",
            with(&[("metadata", json!({"k": "v".repeat(100)}))]),
            "metadata",
        ),
        (
            "unknown field",
            with(&[("owner_id", json!("x"))]),
            "owner_id",
        ),
        (
            "missing code",
            json!({"name": "t", "language": "python"}),
            "code",
        ),
        (
            "missing language",
            json!({"name": "t", "code": "x"}),
            "language",
        ),
        ("not an object", json!([]), "body"),
    ]
}

async fn create_rules_name_the_field(b: Backend) {
    let app = b.spawn_with(small).await;
    let user = app.user().await;
    for (what, body, field) in cases() {
        let got = app
            .call(
                Method::POST,
                "/api/v1/tasks",
                Some(user.token()),
                Some(body),
            )
            .await;
        assert_eq!(got.0, 422, "{what}: {}", got.2);
        assert_error(&got, 422, "validation_failed", Some(field));
    }
    let page = user
        .client
        .list_tasks(&Default::default())
        .await
        .expect("list");
    assert!(page.items.is_empty(), "nothing invalid was stored");
}

async fn update_rules_name_the_field(b: Backend) {
    let app = b.spawn_with(small).await;
    let user = app.user().await;
    let task = create_task(&user, "t").await;
    let path = format!("/api/v1/tasks/{}", task.id);
    for (what, body, field) in cases() {
        // Updates are partial: the "missing field" cases are valid there.
        if what.starts_with("missing") || what == "not an object" {
            continue;
        }
        let got = app
            .call(Method::PUT, &path, Some(user.token()), Some(body))
            .await;
        assert_eq!(got.0, 422, "{what}: {}", got.2);
        assert_error(&got, 422, "validation_failed", Some(field));
    }
    let unchanged = user.client.get_task(task.id).await.expect("get");
    assert_eq!(unchanged, task, "no partial writes");
}

async fn boundaries_are_accepted(b: Backend) {
    let app = b.spawn_with(small).await;
    let user = app.user().await;
    let body = with(&[
        ("name", json!("n".repeat(255))),
        ("description", json!("d".repeat(1000))),
        ("code", json!("x".repeat(1000))),
        ("stdin", json!("s".repeat(100))),
        ("env", json!({"_A1": "v", "b": "w"})),
        (
            "limits",
            json!({"timeout_secs": 300, "memory_mb": 4096, "cpu_cores": 0.5, "max_processes": 512, "max_output_bytes": 16_777_216}),
        ),
        ("priority", json!(0)),
        ("tags", json!(["a.b", "c:d", "e_f-g"])),
        ("metadata", json!({})),
    ]);
    let got = app
        .call(
            Method::POST,
            "/api/v1/tasks",
            Some(user.token()),
            Some(body),
        )
        .await;
    assert_eq!(got.0, 201, "{}", got.2);
    assert_eq!(got.2["priority"], 0);
    assert_eq!(got.2["limits"]["cpu_cores"], 0.5);
    for lang in ["javascript", "bash"] {
        let got = app
            .call(
                Method::POST,
                "/api/v1/tasks",
                Some(user.token()),
                Some(with(&[("language", json!(lang))])),
            )
            .await;
        assert_eq!(got.0, 201, "{lang}");
    }
}

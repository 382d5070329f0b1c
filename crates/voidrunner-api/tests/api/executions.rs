//! Executions: enqueue with snapshot and overrides, re-runs, listing, access, cancel, PUT
//! policy. No worker runs in these tests: rows stay where the API (or the test, acting as a
//! worker through the store trait) puts them.

use std::collections::{BTreeMap, HashSet};

use reqwest::Method;
use serde_json::{Value, json};
use voidrunner_api_types::{
    ExecuteTaskRequest, ExecutionStatusDto, LimitsRequest, ListExecutionsQuery, UpdateTaskRequest,
    WaitQuery,
};
use voidrunner_domain::ExecutionStatus;

use crate::helpers::{
    Backend, assert_client_error, assert_error, backend_tests, create_task, task_req,
};

backend_tests!(
    enqueue_returns_the_queued_snapshot,
    overrides_are_validated_against_the_maxima,
    task_executions_page_newest_first,
    other_users_executions_are_404_like_missing,
    tasks_rerun_any_number_of_times_in_any_state,
);

fn exec_path(task: uuid::Uuid) -> String {
    format!("/api/v1/tasks/{task}/executions")
}

async fn enqueue_returns_the_queued_snapshot(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    let mut req = task_req("snap");
    req.stdin = Some("task stdin".into());
    req.env = Some(BTreeMap::from([("K".into(), "v".into())]));
    req.priority = Some(7);
    let task = user.client.create_task(&req).await.expect("task");

    // No body at all (no content type either).
    let res = app
        .http
        .post(app.url(&exec_path(task.id)))
        .bearer_auth(user.token())
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 202);
    let location = res.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let body: Value = res.json().await.expect("json");
    assert_eq!(
        location,
        format!("/api/v1/executions/{}", body["id"].as_str().expect("id"))
    );
    assert_eq!(body["status"], "queued");
    assert_eq!(body["task_id"], task.id.to_string());
    assert_eq!(body["owner_id"], user.id().to_string());
    assert_eq!(body["language"], "python");
    assert_eq!(body["code"], task.code);
    assert_eq!(body["stdin"], "task stdin");
    assert_eq!(body["env"], json!({"K": "v"}));
    assert_eq!(body["priority"], 7);
    assert_eq!(
        body["limits"],
        serde_json::to_value(task.limits).expect("limits")
    );
    assert_eq!(body["attempt"], 0);
    assert_eq!(body["max_attempts"], 3, "execution_max_attempts default");
    assert_eq!(body["verdict"], Value::Null);
    assert_eq!(body["started_at"], Value::Null);
    assert_eq!(body["queue_wait_ms"], Value::Null);
    assert_eq!(body["cancel_requested"], false);
    assert_eq!(body["stdout"], "");
    assert!(
        body.get("last_error").is_none(),
        "operator field hidden from users"
    );
    let queued_at = body["queued_at"].as_str().expect("queued_at");
    assert!(queued_at.ends_with('Z'), "{queued_at}");

    // Overrides: stdin, some limits (the rest from the task), priority.
    let with = user
        .client
        .execute_task(
            task.id,
            &ExecuteTaskRequest {
                stdin: Some("override".into()),
                limits: Some(LimitsRequest {
                    memory_mb: Some(64),
                    ..Default::default()
                }),
                priority: Some(0),
                ..Default::default()
            },
            &WaitQuery::default(),
        )
        .await
        .expect("with overrides");
    assert_eq!(with.stdin.as_deref(), Some("override"));
    assert_eq!(with.limits.memory_mb, 64);
    assert_eq!(
        with.limits.timeout_secs, task.limits.timeout_secs,
        "from the task"
    );
    assert_eq!(with.priority, 0);

    // The task records the last status; later task edits never change the snapshot.
    let t = user.client.get_task(task.id).await.expect("task");
    assert_eq!(t.last_execution_status, Some(ExecutionStatusDto::Queued));
    user.client
        .update_task(
            task.id,
            &UpdateTaskRequest {
                code: Some("print('changed')".into()),
                ..Default::default()
            },
        )
        .await
        .expect("edit");
    let again = user.client.get_execution(with.id).await.expect("get");
    assert_eq!(again.code, task.code, "snapshot kept");
    assert_eq!(again, with, "reads return what the enqueue returned");
}

async fn overrides_are_validated_against_the_maxima(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    let task = create_task(&user, "t").await;
    let path = exec_path(task.id);
    let cases = [
        (json!({"limits": {"memory_mb": 4097}}), "limits.memory_mb"),
        (
            json!({"limits": {"timeout_secs": 0}}),
            "limits.timeout_secs",
        ),
        (json!({"limits": {"cpu_cores": 9.0}}), "limits.cpu_cores"),
        (json!({"limits": {"disk_mb": 1}}), "limits.disk_mb"),
        (json!({"priority": 11}), "priority"),
        (json!({"stdin": "a\u{0}b"}), "stdin"),
        (json!({"exit_code": 0}), "exit_code"),
        (json!({"stdout": "forged"}), "stdout"),
    ];
    for (body, field) in cases {
        let got = app
            .call(Method::POST, &path, Some(user.token()), Some(body))
            .await;
        assert_error(&got, 422, "validation_failed", Some(field));
    }
    for (query, field) in [
        ("wait=maybe", "wait"),
        ("wait=true&timeout_secs=0", "timeout_secs"),
        ("timeout=5", "timeout"),
    ] {
        let got = app
            .call(
                Method::POST,
                &format!("{path}?{query}"),
                Some(user.token()),
                None,
            )
            .await;
        assert_error(&got, 400, "invalid_query", Some(field));
    }
    let got = app
        .http
        .post(app.url(&path))
        .bearer_auth(user.token())
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .expect("send");
    assert_eq!(got.status(), 415);
    let page = user
        .client
        .list_task_executions(task.id, &ListExecutionsQuery::default())
        .await
        .expect("list");
    assert!(page.items.is_empty(), "nothing invalid was enqueued");
}

async fn task_executions_page_newest_first(b: Backend) {
    let app = b.spawn_with(|s| s.first_user_admin = true).await;
    let admin = app.user().await;
    let user = app.user().await;
    let task = create_task(&user, "t").await;
    let mut ids = Vec::new();
    for _ in 0..7 {
        let e = user
            .client
            .execute_task(
                task.id,
                &ExecuteTaskRequest::default(),
                &WaitQuery::default(),
            )
            .await
            .expect("enqueue");
        ids.push(e.id);
    }
    ids.reverse();

    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = user
            .client
            .list_task_executions(
                task.id,
                &ListExecutionsQuery {
                    limit: Some(3),
                    cursor,
                },
            )
            .await
            .expect("page");
        assert!(page.items.len() <= 3);
        seen.extend(page.items.iter().map(|e| e.id));
        pages += 1;
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, ids, "every execution once, newest first");
    assert_eq!(pages, 3);

    // Summaries leave out code, input and output.
    let raw = app
        .call(Method::GET, &exec_path(task.id), Some(user.token()), None)
        .await;
    assert_eq!(raw.0, 200);
    let first = &raw.2["items"][0];
    for absent in ["code", "stdin", "env", "stdout", "stderr", "compile_output"] {
        assert!(first.get(absent).is_none(), "{absent} in {first}");
    }
    assert_eq!(first["status"], "queued");

    for (query, field) in [("cursor=zzz", "cursor"), ("limit=0", "limit"), ("x=1", "x")] {
        let got = app
            .call(
                Method::GET,
                &format!("{}?{query}", exec_path(task.id)),
                Some(user.token()),
                None,
            )
            .await;
        assert_error(&got, 400, "invalid_query", Some(field));
    }

    // Someone else's task: 404; admins may read it.
    let other = app.user().await;
    let err = other
        .client
        .list_task_executions(task.id, &ListExecutionsQuery::default())
        .await
        .expect_err("not theirs");
    assert_client_error(&err, 404, "not_found", None);
    let page = admin
        .client
        .list_task_executions(task.id, &ListExecutionsQuery::default())
        .await
        .expect("admin reads any");
    assert_eq!(page.items.len(), 7);
}

async fn other_users_executions_are_404_like_missing(b: Backend) {
    let app = b.spawn_with(|s| s.first_user_admin = true).await;
    let admin = app.user().await;
    let owner = app.user().await;
    let other = app.user().await;
    let task = create_task(&owner, "mine").await;
    let e = owner
        .client
        .execute_task(
            task.id,
            &ExecuteTaskRequest::default(),
            &WaitQuery::default(),
        )
        .await
        .expect("enqueue");

    let missing = uuid::Uuid::now_v7();
    for id in [e.id, missing] {
        let err = other.client.get_execution(id).await.expect_err("get");
        assert_client_error(&err, 404, "not_found", None);
        let err = other.client.cancel_execution(id).await.expect_err("cancel");
        assert_client_error(&err, 404, "not_found", None);
    }
    // Nobody may enqueue runs of someone else's task, admins included.
    for who in [&other, &admin] {
        let err = who
            .client
            .execute_task(
                task.id,
                &ExecuteTaskRequest::default(),
                &WaitQuery::default(),
            )
            .await
            .expect_err("not theirs");
        assert_client_error(&err, 404, "not_found", None);
    }
    // Admins read any execution; cancel stays owner-only.
    let seen = admin.client.get_execution(e.id).await.expect("admin get");
    assert_eq!(seen.id, e.id);
    let err = admin
        .client
        .cancel_execution(e.id)
        .await
        .expect_err("cancel");
    assert_client_error(&err, 404, "not_found", None);

    let got = app
        .call(
            Method::GET,
            "/api/v1/executions/nope",
            Some(owner.token()),
            None,
        )
        .await;
    assert_error(&got, 400, "invalid_path", Some("id"));
    let got = app
        .call(
            Method::GET,
            &format!("/api/v1/executions/{}", e.id),
            None,
            None,
        )
        .await;
    assert_error(&got, 401, "unauthorized", None);
    let still = owner.client.get_execution(e.id).await.expect("owner get");
    assert_eq!(still.status, ExecutionStatusDto::Queued, "untouched");
}

async fn tasks_rerun_any_number_of_times_in_any_state(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    let task = create_task(&user, "again").await;
    let mut ids = HashSet::new();
    let states = [
        None,
        Some(ExecutionStatus::Running),
        Some(ExecutionStatus::Completed),
        Some(ExecutionStatus::Failed),
        Some(ExecutionStatus::Timeout),
        Some(ExecutionStatus::Cancelled),
    ];
    for state in states {
        app.set_status(task.id, state).await;
        for _ in 0..2 {
            let got = app
                .call(
                    Method::POST,
                    &exec_path(task.id),
                    Some(user.token()),
                    Some(json!({})),
                )
                .await;
            assert_eq!(got.0, 202, "{state:?}: {}", got.2);
            ids.insert(got.2["id"].as_str().expect("id").to_owned());
        }
    }
    assert_eq!(ids.len(), 12, "a new execution each time");
    let page = user
        .client
        .list_task_executions(
            task.id,
            &ListExecutionsQuery {
                limit: Some(100),
                cursor: None,
            },
        )
        .await
        .expect("list");
    assert_eq!(page.items.len(), 12);
    assert!(page.next_cursor.is_none());
}

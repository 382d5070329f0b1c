//! Task CRUD, access control and filters.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::json;
use voidrunner_api_types::{ExecutionStatusDto, LimitsRequest, ListTasksQuery, UpdateTaskRequest};
use voidrunner_domain::ExecutionStatus;

use crate::helpers::{
    Backend, assert_client_error, assert_error, backend_tests, create_task, task_req,
};

backend_tests!(
    create_get_update_delete,
    update_is_partial_and_can_clear,
    other_users_tasks_are_404_like_missing,
    admins_list_all_with_all_true,
    list_filters,
    task_routes_require_authentication,
);

async fn create_get_update_delete(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    let mut req = task_req("hello");
    req.description = Some("says hi".into());
    req.stdin = Some("input".into());
    req.env = Some(BTreeMap::from([("GREETING".into(), "hi".into())]));
    req.limits = Some(LimitsRequest {
        memory_mb: Some(128),
        ..Default::default()
    });
    req.tags = Some(vec!["demo".into(), "v1.0".into(), "demo".into()]);
    req.metadata = Some(json!({"source": "test"}));
    let created = user.client.create_task(&req).await.expect("create");
    assert_eq!(created.name, "hello");
    assert_eq!(created.owner_id, user.id());
    assert_eq!(created.priority, 5, "default priority");
    assert_eq!(created.limits.memory_mb, 128);
    let d = app.settings.limits.defaults;
    assert_eq!(
        created.limits.timeout_secs, d.timeout_secs,
        "default filled"
    );
    assert_eq!(created.tags, vec!["demo", "v1.0"], "deduplicated");
    assert_eq!(created.metadata, json!({"source": "test"}));
    assert_eq!(created.env["GREETING"], "hi");
    assert_eq!(created.last_execution_status, None);

    let got = user.client.get_task(created.id).await.expect("get");
    assert_eq!(got, created);

    // Raw JSON: RFC 3339 UTC timestamps.
    let raw = app
        .call(
            Method::GET,
            &format!("/api/v1/tasks/{}", created.id),
            Some(user.token()),
            None,
        )
        .await;
    let ts = raw.2["created_at"].as_str().expect("string");
    assert!(ts.ends_with('Z'), "{ts}");
    assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok());

    let updated = user
        .client
        .update_task(
            created.id,
            &UpdateTaskRequest {
                name: Some("renamed".into()),
                priority: Some(9),
                ..Default::default()
            },
        )
        .await
        .expect("update");
    assert_eq!(updated.name, "renamed");
    assert_eq!(updated.priority, 9);
    assert_eq!(updated.code, created.code, "untouched fields kept");
    assert!(updated.updated_at >= created.updated_at);

    let res = app
        .call(
            Method::DELETE,
            &format!("/api/v1/tasks/{}", created.id),
            Some(user.token()),
            None,
        )
        .await;
    assert_eq!(res.0, 204);
    assert_eq!(res.2, serde_json::Value::Null, "no body");
    let err = user.client.get_task(created.id).await.expect_err("deleted");
    assert_client_error(&err, 404, "not_found", None);
    let err = user
        .client
        .delete_task(created.id)
        .await
        .expect_err("twice");
    assert_client_error(&err, 404, "not_found", None);
    let page = user
        .client
        .list_tasks(&ListTasksQuery::default())
        .await
        .expect("list");
    assert!(page.items.is_empty(), "soft-deleted tasks are not listed");
}

async fn update_is_partial_and_can_clear(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    let mut req = task_req("t");
    req.description = Some("d".into());
    req.stdin = Some("s".into());
    req.limits = Some(LimitsRequest {
        timeout_secs: Some(30),
        memory_mb: Some(64),
        ..Default::default()
    });
    let t = user.client.create_task(&req).await.expect("create");

    // null clears; limits replace the whole object (missing fields back to defaults).
    let (status, _, body) = app
        .call(
            Method::PUT,
            &format!("/api/v1/tasks/{}", t.id),
            Some(user.token()),
            Some(json!({"description": null, "limits": {"timeout_secs": 5}, "tags": ["x"]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["description"], serde_json::Value::Null);
    assert_eq!(body["stdin"], "s", "absent field unchanged");
    assert_eq!(body["limits"]["timeout_secs"], 5);
    assert_eq!(
        body["limits"]["memory_mb"],
        app.settings.limits.defaults.memory_mb
    );
    assert_eq!(body["tags"], json!(["x"]));

    let cleared = user
        .client
        .update_task(
            t.id,
            &UpdateTaskRequest {
                stdin: Some(None),
                ..Default::default()
            },
        )
        .await
        .expect("clear stdin");
    assert_eq!(cleared.stdin, None);

    // An empty update changes nothing but is valid.
    let same = user
        .client
        .update_task(t.id, &UpdateTaskRequest::default())
        .await
        .expect("empty update");
    assert_eq!(same.name, "t");
}

async fn other_users_tasks_are_404_like_missing(b: Backend) {
    let app = b.spawn().await;
    let alice = app.user().await;
    let bob = app.user().await;
    let task = create_task(&alice, "alice's").await;
    let missing = uuid::Uuid::new_v4();
    let body = json!({"name": "mine now"});
    for (method, body) in [
        (Method::GET, None),
        (Method::PUT, Some(body)),
        (Method::DELETE, None),
    ] {
        let theirs = app
            .call(
                method.clone(),
                &format!("/api/v1/tasks/{}", task.id),
                Some(bob.token()),
                body.clone(),
            )
            .await;
        let nothing = app
            .call(
                method.clone(),
                &format!("/api/v1/tasks/{missing}"),
                Some(bob.token()),
                body,
            )
            .await;
        assert_error(&theirs, 404, "not_found", None);
        assert_eq!(theirs.2, nothing.2, "{method}: identical to a missing task");
    }
    let page = bob
        .client
        .list_tasks(&ListTasksQuery::default())
        .await
        .expect("list");
    assert!(page.items.is_empty());
    // Untouched for its owner.
    assert_eq!(
        alice.client.get_task(task.id).await.expect("get").name,
        "alice's"
    );
}

async fn admins_list_all_with_all_true(b: Backend) {
    let app = b.spawn_with(|s| s.first_user_admin = true).await;
    let admin = app.user().await;
    let user = app.user().await;
    let a = create_task(&admin, "admin's").await;
    let u = create_task(&user, "user's").await;

    let all = ListTasksQuery {
        all: Some(true),
        ..Default::default()
    };
    let page = admin.client.list_tasks(&all).await.expect("admin list");
    let ids: Vec<_> = page.items.iter().map(|t| t.id).collect();
    assert_eq!(ids, vec![u.id, a.id], "newest first, everyone's");
    let own = admin
        .client
        .list_tasks(&ListTasksQuery::default())
        .await
        .expect("own");
    assert_eq!(own.items.len(), 1, "without all=true only own tasks");
    assert_eq!(
        admin
            .client
            .get_task(u.id)
            .await
            .expect("admin reads any")
            .id,
        u.id
    );

    let err = user.client.list_tasks(&all).await.expect_err("not admin");
    assert_client_error(&err, 403, "forbidden", Some("all"));
}

async fn list_filters(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    let mut py = task_req("Fibonacci numbers");
    py.tags = Some(vec!["math".into()]);
    let py = user.client.create_task(&py).await.expect("py");
    let mut js = task_req("web scraper");
    js.language = "javascript".into();
    js.description = Some("Fetches 100%_of pages".into());
    js.tags = Some(vec!["net".into(), "math".into()]);
    let js = user.client.create_task(&js).await.expect("js");
    let mut sh = task_req("backup");
    sh.language = "bash".into();
    let sh = user.client.create_task(&sh).await.expect("sh");
    app.set_status(sh.id, Some(ExecutionStatus::Failed)).await;
    app.set_status(js.id, Some(ExecutionStatus::Completed))
        .await;

    let ids = |q: ListTasksQuery| {
        let c = user.client.clone();
        async move {
            c.list_tasks(&q)
                .await
                .expect("list")
                .items
                .into_iter()
                .map(|t| t.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        ids(ListTasksQuery::default()).await,
        vec![sh.id, js.id, py.id]
    );
    let q = |f: fn(&mut ListTasksQuery)| {
        let mut q = ListTasksQuery::default();
        f(&mut q);
        q
    };
    assert_eq!(
        ids(q(|q| q.language = Some("javascript".into()))).await,
        vec![js.id]
    );
    assert_eq!(
        ids(q(|q| q.tag = Some("math".into()))).await,
        vec![js.id, py.id]
    );
    assert_eq!(
        ids(q(|q| q.q = Some("fibonacci".into()))).await,
        vec![py.id],
        "case-insensitive"
    );
    assert_eq!(
        ids(q(|q| q.q = Some("100%_".into()))).await,
        vec![js.id],
        "description, literal % _"
    );
    assert_eq!(
        ids(q(|q| q.q = Some("%".into()))).await,
        vec![js.id],
        "% is literal"
    );
    assert_eq!(
        ids(q(|q| q.status = Some(ExecutionStatusDto::Failed))).await,
        vec![sh.id]
    );
    assert_eq!(
        ids(q(|q| q.status = Some(ExecutionStatusDto::Completed))).await,
        vec![js.id]
    );
    assert!(
        ids(q(|q| q.status = Some(ExecutionStatusDto::Running)))
            .await
            .is_empty()
    );

    let before_js = ListTasksQuery {
        created_before: Some(js.created_at),
        ..Default::default()
    };
    assert_eq!(ids(before_js).await, vec![py.id], "strictly before");
    let after_js = ListTasksQuery {
        created_after: Some(js.created_at),
        ..Default::default()
    };
    assert_eq!(ids(after_js).await, vec![sh.id], "strictly after");
    let combined = ListTasksQuery {
        tag: Some("math".into()),
        language: Some("python".into()),
        ..Default::default()
    };
    assert_eq!(ids(combined).await, vec![py.id]);
}

async fn task_routes_require_authentication(b: Backend) {
    let app = b.spawn().await;
    let id = uuid::Uuid::new_v4();
    for (method, path) in [
        (Method::POST, "/api/v1/tasks".to_owned()),
        (Method::GET, "/api/v1/tasks".to_owned()),
        (Method::GET, format!("/api/v1/tasks/{id}")),
        (Method::PUT, format!("/api/v1/tasks/{id}")),
        (Method::DELETE, format!("/api/v1/tasks/{id}")),
    ] {
        let got = app.call(method, &path, None, Some(json!({}))).await;
        assert_error(&got, 401, "unauthorized", None);
    }
}

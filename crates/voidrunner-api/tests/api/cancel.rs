//! Cancel semantics and the PUT policy: users (and admins) never write results.

use reqwest::Method;
use serde_json::json;
use voidrunner_api_types::{ExecuteTaskRequest, ExecutionStatusDto, WaitQuery};

use crate::helpers::{Backend, assert_error, backend_tests, create_task};
use crate::queue::claim;

backend_tests!(
    cancel_queued_never_runs_and_twice_is_409,
    put_never_writes_results
);

async fn cancel_queued_never_runs_and_twice_is_409(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    let task = create_task(&user, "t").await;
    let e = user
        .client
        .execute_task(
            task.id,
            &ExecuteTaskRequest::default(),
            &WaitQuery::default(),
        )
        .await
        .expect("enqueue");
    let path = format!("/api/v1/executions/{}", e.id);
    let got = app
        .call(Method::DELETE, &path, Some(user.token()), None)
        .await;
    assert_eq!(got.0, 200, "{}", got.2);
    assert_eq!(got.2["status"], "cancelled");
    assert!(got.2["finished_at"].is_string());
    let got = app
        .call(Method::DELETE, &path, Some(user.token()), None)
        .await;
    assert_error(&got, 409, "conflict", None);

    // A worker finds nothing to claim: the cancelled row never runs.
    assert!(
        claim(&app).await.is_none(),
        "cancelled executions are not claimable"
    );
    let row = user.client.get_execution(e.id).await.expect("get");
    assert_eq!(row.status, ExecutionStatusDto::Cancelled);
    assert_eq!(row.attempt, 0);
    let t = user.client.get_task(task.id).await.expect("task");
    assert_eq!(t.last_execution_status, Some(ExecutionStatusDto::Cancelled));

    // A running execution: 202, cancel requested, still running until its worker stops it.
    let e2 = user
        .client
        .execute_task(
            task.id,
            &ExecuteTaskRequest::default(),
            &WaitQuery::default(),
        )
        .await
        .expect("enqueue");
    let claimed = claim(&app).await.expect("claimable");
    assert_eq!(claimed.id.as_uuid(), e2.id);
    let got = app
        .call(
            Method::DELETE,
            &format!("/api/v1/executions/{}", e2.id),
            Some(user.token()),
            None,
        )
        .await;
    assert_eq!(got.0, 202, "{}", got.2);
    assert_eq!(got.2["status"], "running");
    assert_eq!(got.2["cancel_requested"], true);
}

async fn put_never_writes_results(b: Backend) {
    let app = b.spawn_with(|s| s.first_user_admin = true).await;
    let admin = app.user().await;
    let user = app.user().await;
    let task = create_task(&user, "t").await;
    let e = user
        .client
        .execute_task(
            task.id,
            &ExecuteTaskRequest::default(),
            &WaitQuery::default(),
        )
        .await
        .expect("enqueue");
    let path = format!("/api/v1/executions/{}", e.id);
    let forged = json!({"status": "completed", "stdout": "forged", "exit_code": 0});
    for who in [&user, &admin] {
        let got = app
            .call(Method::PUT, &path, Some(who.token()), Some(forged.clone()))
            .await;
        assert_error(&got, 405, "method_not_allowed", None);
        let allow = got.1["allow"].to_str().expect("allow");
        assert!(allow.contains("GET") && allow.contains("DELETE"), "{allow}");
        assert!(!allow.contains("PUT"), "{allow}");
    }
    let row = user.client.get_execution(e.id).await.expect("get");
    assert_eq!(row, e, "unchanged");
}

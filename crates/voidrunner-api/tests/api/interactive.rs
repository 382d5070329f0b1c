//! `interactive: true` is refused up front for languages whose executor cannot feed live
//! stdin (Docker), instead of failing on a worker and being retried into the dead letter.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Backend, assert_error, backend_tests, create_task};

backend_tests!(interactive_is_refused_for_docker_languages);

async fn interactive_is_refused_for_docker_languages(b: Backend) {
    let app = b
        .spawn_with(|s| {
            s.non_interactive_languages.insert("python".to_owned());
        })
        .await;
    let user = app.user().await;
    let refused = app
        .call(
            Method::POST,
            "/api/v1/run",
            Some(user.token()),
            Some(json!({"language": "python", "code": "input()", "interactive": true})),
        )
        .await;
    assert_error(&refused, 422, "validation_failed", Some("interactive"));
    let (status, _, body) = app
        .call(
            Method::POST,
            "/api/v1/run",
            Some(user.token()),
            Some(json!({"language": "bash", "code": "read x", "interactive": true})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["interactive"], true);
    let (status, _, body) = app
        .call(
            Method::POST,
            "/api/v1/run",
            Some(user.token()),
            Some(json!({"language": "python", "code": "print(1)"})),
        )
        .await;
    assert_eq!(status, 202, "non-interactive runs are unaffected: {body}");
    let task = create_task(&user, "py").await;
    let refused = app
        .call(
            Method::POST,
            &format!("/api/v1/tasks/{}/executions", task.id),
            Some(user.token()),
            Some(json!({"interactive": true})),
        )
        .await;
    assert_error(&refused, 422, "validation_failed", Some("interactive"));
}

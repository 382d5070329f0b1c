//! The served OpenAPI document matches the router exactly.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{Backend, backend_tests};

backend_tests!(served_spec_matches_the_routes);

/// The public API, as the seed lists it plus API keys, one-shot runs, languages, the admin
/// dead letter and the spec itself. The seed's `PUT /api/v1/executions/{id}` is deliberately
/// absent: results are written only by workers (405).
const EXPECTED: &[(&str, &str)] = &[
    ("get", "/health"),
    ("get", "/ready"),
    ("get", "/api/v1/openapi.json"),
    ("get", "/metrics"),
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/refresh"),
    ("post", "/api/v1/auth/logout"),
    ("get", "/api/v1/auth/me"),
    ("post", "/api/v1/auth/api-keys"),
    ("get", "/api/v1/auth/api-keys"),
    ("delete", "/api/v1/auth/api-keys/{id}"),
    ("post", "/api/v1/tasks"),
    ("get", "/api/v1/tasks"),
    ("get", "/api/v1/tasks/{id}"),
    ("put", "/api/v1/tasks/{id}"),
    ("delete", "/api/v1/tasks/{id}"),
    ("post", "/api/v1/tasks/{id}/executions"),
    ("get", "/api/v1/tasks/{id}/executions"),
    ("get", "/api/v1/executions/{id}"),
    ("delete", "/api/v1/executions/{id}"),
    ("get", "/api/v1/executions/{id}/logs"),
    ("get", "/api/v1/executions/{id}/metrics"),
    ("get", "/api/v1/stats"),
    ("get", "/api/v1/webhooks/signing-secret"),
    ("get", "/api/v1/executions/{id}/webhook"),
    ("get", "/api/v1/executions/{id}/stream"),
    ("get", "/api/v1/executions/{id}/ws"),
    ("get", "/api/v1/executions/stream"),
    ("post", "/api/v1/run"),
    ("get", "/api/v1/languages"),
    ("get", "/api/v1/admin/dead-letter"),
    ("post", "/api/v1/admin/dead-letter/{id}/requeue"),
    ("post", "/api/v1/jobs"),
    ("get", "/api/v1/jobs"),
    ("get", "/api/v1/jobs/schema"),
    ("get", "/api/v1/jobs/{id}"),
    ("delete", "/api/v1/jobs/{id}"),
    ("get", "/api/v1/jobs/{id}/events"),
    ("get", "/api/v1/jobs/{id}/stream"),
    ("get", "/api/v1/jobs/{id}/artifacts/{path}"),
    ("post", "/api/v1/workflows"),
    ("get", "/api/v1/workflows"),
    ("get", "/api/v1/workflows/schema"),
    ("get", "/api/v1/workflows/{id}"),
    ("post", "/api/v1/workflows/{id}/cancel"),
    ("post", "/api/v1/workflows/{id}/rerun"),
    ("post", "/api/v1/repositories"),
    ("get", "/api/v1/repositories"),
    ("get", "/api/v1/repositories/{id}"),
    ("delete", "/api/v1/repositories/{id}"),
    ("patch", "/api/v1/repositories/{id}/secrets"),
    ("get", "/api/v1/repositories/{id}/deliveries"),
    ("post", "/api/v1/hooks/{source}"),
];

const METHODS: &[&str] = &["get", "post", "put", "delete", "patch"];

async fn served_spec_matches_the_routes(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    let spec: Value = app
        .http
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .expect("spec")
        .json()
        .await
        .expect("json");
    assert!(
        spec["openapi"]
            .as_str()
            .expect("version")
            .starts_with("3.1")
    );

    let paths = spec["paths"].as_object().expect("paths");
    let documented: BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(move |m| ((*m).to_owned(), path.clone()))
        })
        .collect();
    let expected: BTreeSet<(String, String)> = EXPECTED
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(documented, expected, "documented operations");

    // Every documented operation is routed, every other method on a documented path is 405.
    let id = uuid::Uuid::new_v4().to_string();
    for path in paths.keys() {
        let concrete = path.replace("{id}", &id);
        for m in METHODS {
            if *m == "get" && path == "/api/v1/executions/stream" {
                // An endless event stream (its own tests cover it); reading it here would hang.
                continue;
            }
            let method = Method::from_bytes(m.to_uppercase().as_bytes()).expect("method");
            let got = app
                .call(
                    method,
                    &concrete,
                    Some(user.token()),
                    Some(serde_json::json!({})),
                )
                .await;
            let code = got.2["error"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if documented.contains(&((*m).to_owned(), path.clone())) {
                assert_ne!(code, "route_not_found", "{m} {path} must be routed");
                assert_ne!(code, "method_not_allowed", "{m} {path} must be routed");
            } else {
                assert_eq!(
                    got.0, 405,
                    "{m} {path} is not documented so must not be routed"
                );
            }
        }
    }

    // Operations declare their responses and schemas resolve.
    let schemas = spec["components"]["schemas"].as_object().expect("schemas");
    for name in [
        "ErrorBody",
        "TaskResponse",
        "CreateTaskRequest",
        "TokenResponse",
        "ExecutionResponse",
        "ExecutionSummaryResponse",
        "VerdictDto",
        "RunRequest",
        "ProblemDto",
        "CreateJobRequest",
        "JobResponse",
        "JobListResponse",
        "JobEventListResponse",
    ] {
        assert!(schemas.contains_key(name), "{name}");
    }
    assert!(
        schemas["ErrorDetail"]["properties"]["problems"].is_object(),
        "the error envelope documents `problems`"
    );
    assert!(spec["components"]["securitySchemes"]["bearer"].is_object());
    let execute = &spec["paths"]["/api/v1/tasks/{id}/executions"]["post"];
    assert_ne!(
        execute["requestBody"]["required"], true,
        "the overrides body is optional"
    );
    let params: Vec<&str> = execute["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(params, ["id", "wait", "timeout_secs"]);
    let run = &spec["paths"]["/api/v1/run"]["post"]["responses"];
    for status in ["200", "202", "400", "401", "422", "429"] {
        assert!(
            run.get(status).is_some(),
            "POST /api/v1/run documents {status}"
        );
    }
    let create = &spec["paths"]["/api/v1/tasks"]["post"]["responses"];
    for status in ["201", "400", "401", "413", "415", "422", "429"] {
        assert!(
            create.get(status).is_some(),
            "POST /api/v1/tasks documents {status}"
        );
    }
}

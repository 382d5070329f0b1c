//! A job's life as its owner sees it while a worker (driven here through the store) runs it:
//! cancel, the event log (JSON and SSE, step filters, resume) and artifact downloads.

use reqwest::Method;
use serde_json::{Value, json};
use voidrunner_store::{JobArtifact, JobStatus, JobStream, StepState};

use crate::helpers::{Backend, assert_error, backend_tests};
use crate::jobs::{TWO_STEPS, claim, complete, create, job_id, output, step};
use crate::sse::SseClient;

backend_tests!(
    cancel_queued_and_running,
    events_filter_by_step_and_stream_replays_then_follows,
    artifact_download_is_byte_identical,
);

async fn cancel_queued_and_running(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    let running = create(&app, &user, TWO_STEPS).await;
    let lease = claim(&app).await;
    assert_eq!(lease.job_id, job_id(&running));
    step(&app, &lease, 0, StepState::Running, None).await;
    let queued = create(&app, &user, TWO_STEPS).await;

    let (s, _, v) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/jobs/{queued}"),
            Some(user.token()),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "cancelled");
    assert_eq!(v["steps"][0]["state"], "skipped");
    let again = app
        .call(
            Method::DELETE,
            &format!("/api/v1/jobs/{queued}"),
            Some(user.token()),
            None,
        )
        .await;
    assert_error(&again, 409, "conflict", None);

    let (s, h, v) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/jobs/{running}"),
            Some(user.token()),
            None,
        )
        .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(h["location"], format!("/api/v1/jobs/{running}").as_str());
    assert_eq!(v["status"], "running");
    assert!(v["cancel_requested_at"].is_string(), "{v}");
    assert_eq!(v["steps"][0]["state"], "running");
    // The worker sees the request and finishes the job cancelled; then cancel is a 409.
    step(&app, &lease, 0, StepState::Cancelled, None).await;
    complete(&app, &lease, JobStatus::Cancelled).await;
    let done = app
        .call(
            Method::DELETE,
            &format!("/api/v1/jobs/{running}"),
            Some(user.token()),
            None,
        )
        .await;
    assert_error(&done, 409, "conflict", None);
}

async fn events_filter_by_step_and_stream_replays_then_follows(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    let id = create(&app, &user, TWO_STEPS).await;
    let lease = claim(&app).await;
    step(&app, &lease, 0, StepState::Running, None).await;
    output(&app, &lease, "build", JobStream::Stdout, b"compiling\n").await;

    // A client connected mid-run replays what is stored, then follows.
    let url = app.url(&format!("/api/v1/jobs/{id}/stream"));
    let mut live = SseClient::connect(&url, user.token(), None).await;
    let mut seen = Vec::new();
    while seen.len() < 4 {
        seen.push(live.next().await.expect("replayed event"));
    }
    let first: Value =
        serde_json::from_str(seen[0].data["data"].as_str().expect("text")).expect("json");
    assert_eq!(
        (seen[0].event.as_str(), &first["status"]),
        ("status", &json!("queued"))
    );
    assert_eq!(seen[3].event, "stdout");
    assert_eq!(seen[3].data["data"], "compiling\n");

    step(&app, &lease, 0, StepState::Succeeded, Some(0)).await;
    step(&app, &lease, 1, StepState::Running, None).await;
    output(&app, &lease, "test", JobStream::Stderr, &[0xff, 0xfe, b'x']).await;
    step(&app, &lease, 1, StepState::Succeeded, Some(0)).await;
    complete(&app, &lease, JobStatus::Succeeded).await;
    let rest = live.rest().await;
    seen.extend(rest);
    let seqs: Vec<u64> = seen.iter().map(|e| e.seq()).collect();
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "every event once, in order");
    let last = seen.last().expect("last");
    assert_eq!(last.event, "status");
    assert!(last.data["step"].is_null());
    assert!(
        last.data["data"]
            .as_str()
            .expect("json")
            .contains("succeeded")
    );
    let binary = seen
        .iter()
        .find(|e| e.event == "stderr")
        .expect("stderr event");
    assert_eq!(binary.data["encoding"], "base64");
    assert_eq!(binary.data["data"], "//54");

    // Resuming after the end gives an empty stream that closes.
    let after = SseClient::connect(&url, user.token(), Some(*seqs.last().expect("seq"))).await;
    assert!(after.rest().await.is_empty());
    // One step's events, plus the job's status events (so the stream still ends).
    let only_test = SseClient::connect(&format!("{url}?step=test"), user.token(), None)
        .await
        .rest()
        .await;
    assert!(
        only_test
            .iter()
            .all(|e| e.data["step"] == "test" || (e.data["step"].is_null() && e.event == "status"))
    );
    assert!(only_test.iter().any(|e| e.event == "stderr"));

    // The JSON list with a step filter and paging.
    let path = format!("/api/v1/jobs/{id}/events?step=build");
    let (s, _, v) = app.call(Method::GET, &path, Some(user.token()), None).await;
    assert_eq!(s, 200, "{v}");
    let items = v["items"].as_array().expect("items");
    assert!(items.iter().all(|e| e["step"] == "build"));
    assert_eq!(items.iter().filter(|e| e["stream"] == "stdout").count(), 1);
    assert_eq!(v["next_after"], seqs.len());
    let (_, _, page) = app
        .call(
            Method::GET,
            &format!("/api/v1/jobs/{id}/events?after=2&limit=2"),
            Some(user.token()),
            None,
        )
        .await;
    let page_seqs: Vec<u64> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(page_seqs, [3, 4]);
    assert_eq!(page["next_after"], 4);
    let got = app
        .call(
            Method::GET,
            &format!("/api/v1/jobs/{id}/events?after=x"),
            Some(user.token()),
            None,
        )
        .await;
    assert_error(&got, 400, "invalid_query", Some("after"));

    // The job shows per-step results and outputs.
    let (_, _, job) = app
        .call(
            Method::GET,
            &format!("/api/v1/jobs/{id}"),
            Some(user.token()),
            None,
        )
        .await;
    assert_eq!(job["status"], "succeeded");
    assert_eq!(job["steps"][0]["exit_code"], 0);
    assert_eq!(job["steps"][1]["wall_ms"], 12);
    assert_eq!(job["outputs"]["version"], "1.2");
}

async fn artifact_download_is_byte_identical(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    let other = app.user().await;
    let id = create(&app, &user, TWO_STEPS).await;
    let lease = claim(&app).await;
    let bytes: Vec<u8> = (0..70_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let path = "artifacts/out dir/app.bin";
    app.store
        .put_job_blob(
            lease.job_id,
            &format!("artifacts/{path}"),
            &bytes,
            voidrunner_store::now(),
        )
        .await
        .expect("blob");
    use sha2::Digest as _;
    let sha = hex::encode(sha2::Sha256::digest(&bytes));
    app.store
        .record_job_artifact(
            &lease,
            JobArtifact {
                path: path.to_owned(),
                size: bytes.len() as u64,
                sha256: sha.clone(),
                object_key: format!("db:artifacts/{path}"),
            },
        )
        .await
        .expect("record");
    complete(&app, &lease, JobStatus::Succeeded).await;

    let (_, _, job) = app
        .call(
            Method::GET,
            &format!("/api/v1/jobs/{id}"),
            Some(user.token()),
            None,
        )
        .await;
    let a = &job["artifacts"][0];
    assert_eq!(a["path"], path);
    assert_eq!(a["size"], bytes.len());
    assert_eq!(a["sha256"], sha.as_str());
    let url = a["download_url"].as_str().expect("url");
    assert_eq!(
        url,
        format!("/api/v1/jobs/{id}/artifacts/artifacts/out%20dir/app.bin")
    );
    let res = app
        .http
        .get(app.url(url))
        .bearer_auth(user.token())
        .send()
        .await
        .expect("download");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/octet-stream");
    assert_eq!(
        res.headers()["content-disposition"],
        "attachment; filename=\"app.bin\""
    );
    let headers = res.headers().clone();
    let got = res.bytes().await.expect("body");
    assert!(got[..] == bytes[..], "byte-identical");

    // Once archived, the same request streams the object: same headers, same bytes.
    let archiver = voidrunner_logarchive::JobBlobArchiver::new(
        app.store.clone(),
        app.objects.clone(),
        voidrunner_logarchive::JobBlobSettings {
            archive: true,
            min_bytes: 1,
            batch: 10,
            interval: std::time::Duration::from_secs(1),
        },
    );
    assert!(archiver.run_pass().await.archived >= 1);
    assert!(matches!(
        app.store
            .job_blob_location(
                voidrunner_store::Scope::All,
                lease.job_id,
                &format!("artifacts/{path}")
            )
            .await
            .expect("location"),
        voidrunner_store::JobBlobLocation::Archived(a) if a.sha256 == sha
    ));
    let res = app
        .http
        .get(app.url(url))
        .bearer_auth(user.token())
        .send()
        .await
        .expect("download archived");
    assert_eq!(res.status(), 200);
    for h in [
        "content-type",
        "content-disposition",
        "content-length",
        "x-content-type-options",
    ] {
        assert_eq!(res.headers().get(h), headers.get(h), "{h}");
    }
    let archived = res.bytes().await.expect("archived body");
    assert!(archived[..] == bytes[..], "byte-identical from the archive");
    assert_eq!(hex::encode(sha2::Sha256::digest(&archived)), sha);

    let missing = app
        .call(
            Method::GET,
            &format!("/api/v1/jobs/{id}/artifacts/artifacts/nope"),
            Some(user.token()),
            None,
        )
        .await;
    assert_error(&missing, 404, "not_found", None);
    let climb = app
        .call(
            Method::GET,
            &format!("/api/v1/jobs/{id}/artifacts/artifacts/..%2Fx"),
            Some(user.token()),
            None,
        )
        .await;
    assert_error(&climb, 400, "invalid_path", Some("path"));
    let theirs = app.call(Method::GET, url, Some(other.token()), None).await;
    assert_error(&theirs, 404, "not_found", None);
}

//! `GET /api/v1/jobs/{id}/artifacts/{*path}`: the bytes of a collected artifact, and the
//! artifact's entry (with its download URL) in a job response.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use voidrunner_api_types::{ErrorBody, ErrorCode, JobArtifactResponse};
use voidrunner_logarchive::{JobBlobBody, JobBlobError};
use voidrunner_store::{Job, JobArtifact};

use crate::auth::AuthUser;
use crate::context::ApiContext;
use crate::error::{ApiError, ApiResult};
use crate::executions::handlers::read_scope;
use crate::jobs::JobPath;

/// Percent-encodes one path segment (unreserved characters stay).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(crate) fn artifact_response(job: &Job, a: JobArtifact) -> JobArtifactResponse {
    let path: Vec<String> = a.path.split('/').map(encode_segment).collect();
    JobArtifactResponse {
        download_url: format!("/api/v1/jobs/{}/artifacts/{}", job.id, path.join("/")),
        path: a.path,
        size: a.size,
        sha256: a.sha256,
    }
}

/// Checks an artifact path: relative, no `..` or empty segment, no NUL or backslash.
fn artifact_path(raw: &str) -> ApiResult<&str> {
    let bad = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidPath,
            "must be a relative artifact path without `..`",
        )
        .with_field("path")
    };
    if raw.is_empty()
        || raw.len() > 1024
        || raw.starts_with('/')
        || raw.contains(['\0', '\\'])
        || raw
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(bad());
    }
    Ok(raw)
}

/// Downloads an artifact's bytes (`application/octet-stream`, as an attachment), from the
/// database or, once the job's blobs were archived, streamed from the object store.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/artifacts/{*path}", tag = "jobs",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Job id"),
        ("path" = String, Path, description = "The artifact's `path` (relative to `/job`)")),
    responses(
        (status = 200, description = "The bytes", content_type = "application/octet-stream"),
        (status = 400, description = "Bad id or path", body = ErrorBody),
        (status = 404, description = "No such job of yours, or no such artifact", body = ErrorBody),
    ))]
pub(crate) async fn download_job_artifact(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
    path: JobPath,
) -> ApiResult<Response> {
    let rel = artifact_path(path.rest.as_deref().unwrap_or_default())?;
    let scope = read_scope(&auth);
    let known = ctx.store().job_artifacts(scope, path.id).await?;
    if !known.iter().any(|a| a.path == rel) {
        return Err(ApiError::not_found());
    }
    let blob = ctx
        .log_reader()
        .job_blobs()
        .open(scope, path.id, &format!("artifacts/{rel}"))
        .await
        .map_err(|e| match e {
            JobBlobError::Store(e) => ApiError::from(e),
            other => ApiError::internal(format!(
                "reading artifact {rel} of job {}: {other}",
                path.id
            )),
        })?;
    let file = rel.rsplit('/').next().unwrap_or("artifact");
    let safe: String = file
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    // Same headers either way: an archived artifact streams with its recorded length.
    let (body, length) = match blob {
        JobBlobBody::Bytes(b) => {
            let n = b.len() as u64;
            (Body::from(b), n)
        }
        JobBlobBody::Stream { size, stream } => (Body::from_stream(stream), size),
    };
    let mut res = Response::new(body);
    let h = res.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_paths_stay_relative() {
        assert!(artifact_path("artifacts/app.tgz").is_ok());
        for bad in ["", "/etc/passwd", "a/../b", "..", "a//b", "./a", "a\\b"] {
            assert!(artifact_path(bad).is_err(), "{bad}");
        }
        assert_eq!(encode_segment("a b%.tgz"), "a%20b%25.tgz");
    }
}

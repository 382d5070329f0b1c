//! `/api/v1/jobs`: CI jobs (see `docs/JOBS.md`). Submission validates the definition (every
//! problem at once), applies the operator's policy, seals the secrets and stores the job,
//! its steps and the uploaded archive; reads show the job with its steps and artifacts, its
//! event log (JSON pages and a resumable SSE stream) and the artifacts' bytes. A job worker
//! (not here) claims and runs what this queues.

use axum::extract::{FromRequestParts, Path};
use axum::http::StatusCode;
use axum::http::request::Parts;
use voidrunner_api_types::ErrorCode;
use voidrunner_store::JobId;

use crate::error::ApiError;

pub(crate) mod artifacts;
pub(crate) mod handlers;
pub(crate) mod input;
pub(crate) mod stream;

fn bad_id() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        ErrorCode::InvalidPath,
        "must be a UUID",
    )
    .with_field("id")
}

/// The `{id}` of a job route (and, for the artifact route, the rest of the path); `400
/// invalid_path` when the id is not a UUID.
#[derive(Debug, Clone)]
pub(crate) struct JobPath {
    /// The job.
    pub id: JobId,
    /// `{*path}` when the route has it.
    pub rest: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for JobPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(params) = Path::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|_| bad_id())?;
        let mut id = None;
        let mut rest = None;
        for (name, value) in params {
            match name.as_str() {
                "id" => id = Some(value.parse::<JobId>().map_err(|_| bad_id())?),
                "path" => rest = Some(value),
                _ => {}
            }
        }
        Ok(JobPath {
            id: id.ok_or_else(bad_id)?,
            rest,
        })
    }
}

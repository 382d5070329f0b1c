//! A job submission turned into what the store takes: the definition parsed and validated
//! (every problem at once), the operator's policy applied, the archive decoded and capped,
//! the secrets checked against the definition and sealed. Secret values never reach an
//! error message or a log line.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use base64::Engine as _;
use voidrunner_api_types::{CreateJobRequest, ErrorCode, SecretValue};
use voidrunner_domain::validation::check_secrets;
use voidrunner_domain::{Timestamp, UserId};
use voidrunner_jobs::{JobDefinition, Source};
use voidrunner_store::{JobId, NewJob};

use crate::context::ApiContext;
use crate::definition::{parse_document, problems_error};
use crate::error::{ApiError, ApiResult};
use crate::settings::ApiSettings;

/// Default priority of a job.
const DEFAULT_PRIORITY: u8 = 5;

/// A validated submission, ready for the store.
pub(crate) struct Submission {
    /// The job row to create.
    pub new: NewJob,
    /// Sealed secrets (name → ciphertext bound to `"<job_id>/<NAME>"`).
    pub sealed: BTreeMap<String, Vec<u8>>,
    /// The decoded archive, when one was uploaded.
    pub tarball: Option<Vec<u8>>,
}

/// Parses the definition: a string is YAML or JSON text, an object is the document itself.
pub(crate) fn definition(value: &serde_json::Value) -> ApiResult<JobDefinition> {
    parse_document("job", value, voidrunner_jobs::parse)
}

fn uses_tarball(def: &JobDefinition) -> bool {
    matches!(def.source, Source::Tarball) || matches!(def.ci_source, Some(Source::Tarball))
}

/// What the server refuses even in a valid definition (all problems at once).
fn policy(def: &JobDefinition, settings: &ApiSettings) -> ApiResult<()> {
    let mut problems = Vec::new();
    let local_only = "copy sources are for the local runner only (voidrunner job run)";
    if matches!(def.source, Source::Copy { .. }) {
        problems.push(("definition.source".to_owned(), local_only.to_owned()));
    }
    if matches!(def.ci_source, Some(Source::Copy { .. })) {
        problems.push(("definition.ci_source".to_owned(), local_only.to_owned()));
    }
    if def.network && !settings.jobs_allow_network {
        problems.push((
            "definition.network".to_owned(),
            "network access is not allowed by this server's policy".to_owned(),
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems_error("job", problems))
    }
}

/// Decodes and caps the archive; it must come exactly with a `tarball` source.
fn tarball(
    def: &JobDefinition,
    encoded: Option<&str>,
    max_bytes: usize,
) -> ApiResult<Option<Vec<u8>>> {
    const FIELD: &str = "tarball_base64";
    match (uses_tarball(def), encoded) {
        (false, None) => Ok(None),
        (true, None) => Err(ApiError::validation(
            FIELD,
            "the definition has a tarball source: upload the archive",
        )),
        (false, Some(_)) => Err(ApiError::validation(
            FIELD,
            "an archive was uploaded but the definition has no tarball source",
        )),
        (true, Some(text)) => {
            let too_large = || {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    ErrorCode::PayloadTooLarge,
                    format!("the archive is larger than {max_bytes} bytes"),
                )
                .with_field(FIELD)
            };
            if text.len() / 4 * 3 > max_bytes.saturating_add(3) {
                return Err(too_large());
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| ApiError::validation(FIELD, "must be standard base64"))?;
            if bytes.len() > max_bytes {
                return Err(too_large());
            }
            if bytes.is_empty() {
                return Err(ApiError::validation(FIELD, "the archive is empty"));
            }
            Ok(Some(bytes))
        }
    }
}

/// Checks the given secrets against the names the definition declares and seals them.
fn seal_secrets(
    ctx: &ApiContext,
    id: JobId,
    def: &JobDefinition,
    given: &BTreeMap<String, SecretValue>,
) -> ApiResult<BTreeMap<String, Vec<u8>>> {
    for name in &def.secrets {
        if !given.contains_key(name) {
            return Err(ApiError::validation(
                format!("secrets.{name}"),
                "the definition declares this secret: give its value",
            ));
        }
    }
    if let Some(name) = given.keys().find(|n| !def.secrets.contains(n)) {
        return Err(ApiError::validation(
            format!("secrets.{name}"),
            "not declared in the definition's `secrets`",
        ));
    }
    check_secrets(given.iter().map(|(k, v)| (k, Some(&v.0))), &def.env)?;
    crate::tasks::secrets::seal_values(ctx, "job", &id, given)
}

/// Validates a submission of `owner` and builds what the store takes.
pub(crate) fn submission(
    ctx: &ApiContext,
    owner: UserId,
    req: CreateJobRequest,
    request_id: Option<String>,
    now: Timestamp,
) -> ApiResult<Submission> {
    let settings = ctx.settings();
    let priority = req.priority.unwrap_or(DEFAULT_PRIORITY);
    if priority > 10 {
        return Err(ApiError::validation("priority", "must be between 0 and 10"));
    }
    let def = definition(&req.definition)?;
    policy(&def, settings)?;
    let tarball = tarball(
        &def,
        req.tarball_base64.as_deref(),
        settings.job_tarball_max_bytes,
    )?;
    let id = JobId::new();
    let sealed = seal_secrets(ctx, id, &def, &req.secrets.unwrap_or_default())?;
    let definition = serde_json::to_value(&def)
        .map_err(|e| ApiError::internal(format!("serializing a job definition: {e}")))?;
    let new = NewJob {
        id,
        owner_id: owner,
        name: def.name.clone(),
        definition,
        steps: def.steps.iter().map(|s| s.name.clone()).collect(),
        priority,
        max_attempts: settings.execution_max_attempts.max(1),
        request_id,
        has_tarball: tarball.is_some(),
        created_at: now,
    };
    Ok(Submission {
        new,
        sealed,
        tarball,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_from_text_and_objects() {
        let yaml = serde_json::json!("name: a\nsteps:\n  - {name: s, command: 'true'}\n");
        assert_eq!(definition(&yaml).expect("yaml").name, "a");
        let json = serde_json::json!(r#"{"name":"b","steps":[{"name":"s","command":"true"}]}"#);
        assert_eq!(definition(&json).expect("json text").name, "b");
        let obj = serde_json::json!({"name":"c","steps":[{"name":"s","command":"true"}]});
        assert_eq!(definition(&obj).expect("object").name, "c");
        let e = definition(&serde_json::json!(3)).expect_err("number");
        assert_eq!(e.field(), Some("definition"));
    }

    #[test]
    fn every_problem_is_listed_with_the_first_as_field() {
        let bad = serde_json::json!({"name":"bad name!","steps":[
            {"name":"a","command":"x","depends_on":["ghost"]},
            {"name":"a","command":"y"}],"bogus":1});
        let e = definition(&bad).expect_err("invalid");
        assert_eq!(e.status(), axum::http::StatusCode::UNPROCESSABLE_ENTITY);
        let f = e.field().expect("field");
        assert!(f.starts_with("definition"), "{f}");
    }
}

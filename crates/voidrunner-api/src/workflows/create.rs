//! A workflow submission turned into what the store takes: the definition parsed and
//! validated (every problem at once), the nodes instantiated (fan-out, job files, env), the
//! operator's policy applied to every node's job, the CI files capped and the secrets sealed
//! to the new workflow. Shared by `POST /api/v1/workflows` and the git hooks, so both refuse
//! exactly the same things. Secret values never reach an error message or a log line.

use std::collections::{BTreeMap, BTreeSet};

use axum::http::StatusCode;
use voidrunner_api_types::{ErrorCode, SecretValue};
use voidrunner_domain::validation::check_secrets;
use voidrunner_domain::{Timestamp, UserId};
use voidrunner_jobs::workflow::{WorkflowDefinition, instantiate, parse_workflow};
use voidrunner_jobs::{JobDefinition, Source};
use voidrunner_store::{DeliveryWorkflow, NewWorkflow, WorkflowId};

use crate::context::ApiContext;
use crate::definition::{from_problems, parse_document, problems_error};
use crate::error::{ApiError, ApiResult};
use crate::settings::ApiSettings;

/// At most this many CI files per workflow.
pub(crate) const FILES_MAX: usize = 256;
/// At most this many bytes per CI file.
pub(crate) const FILE_MAX_BYTES: usize = 256 * 1024;
/// At most this many bytes of CI files (paths and contents) per workflow.
pub(crate) const FILES_TOTAL_MAX_BYTES: usize = 2 * 1024 * 1024;
/// At most this many workflow variables (definition and overrides merged).
pub(crate) const VARS_MAX: usize = 100;
/// At most this many bytes per variable value.
pub(crate) const VAR_VALUE_MAX_BYTES: usize = 4096;

/// Everything a new workflow is made of, from whichever caller (API or git hook).
#[derive(Debug, Clone)]
pub(crate) struct WorkflowInput {
    /// The validated definition (see [`parse_definition`]).
    pub definition: WorkflowDefinition,
    /// The CI files `job_file`s are read from (path relative to the CI root → text).
    pub files: BTreeMap<String, String>,
    /// Workflow-wide environment under each node's own (e.g. the git event's).
    pub env: BTreeMap<String, String>,
    /// Variables overriding the definition's `vars`.
    pub vars: BTreeMap<String, String>,
    /// Secret values, sealed to the workflow when `trusted` (dropped otherwise).
    pub secrets: BTreeMap<String, SecretValue>,
    /// Secrets may reach its jobs.
    pub trusted: bool,
    /// Where it came from (`{"kind":"api"}`, `{"kind":"hook", …}`).
    pub origin: serde_json::Value,
    /// The owner.
    pub owner: UserId,
    /// Request id of the creating call.
    pub request_id: Option<String>,
}

/// Parses and validates a definition: a string is YAML or JSON text, an object is the
/// document itself. Every problem at once (`422` with `problems`, paths under `definition`).
pub(crate) fn parse_definition(value: &serde_json::Value) -> ApiResult<WorkflowDefinition> {
    parse_document("workflow", value, parse_workflow)
}

/// What the server refuses in a node's job, under `definition.jobs.<group>.job`.
fn policy(
    group: &str,
    def: &JobDefinition,
    settings: &ApiSettings,
    out: &mut Vec<(String, String)>,
) {
    let at = format!("definition.jobs.{group}.job");
    for (field, source) in [
        ("source", Some(&def.source)),
        ("ci_source", def.ci_source.as_ref()),
    ] {
        match source {
            Some(Source::Copy { .. }) => out.push((
                format!("{at}.{field}"),
                "copy sources are for the local runner only (voidrunner job run)".to_owned(),
            )),
            Some(Source::Tarball) => out.push((
                format!("{at}.{field}"),
                "tarball sources cannot be used in a workflow (no archive is uploaded with it)"
                    .to_owned(),
            )),
            _ => {}
        }
    }
    if def.network && !settings.jobs_allow_network {
        out.push((
            format!("{at}.network"),
            "network access is not allowed by this server's policy".to_owned(),
        ));
    }
}

/// Caps the CI files (count, per-file and total bytes); `413` for size, `422` otherwise.
pub(crate) fn check_files(files: &BTreeMap<String, String>) -> ApiResult<()> {
    if files.len() > FILES_MAX {
        return Err(ApiError::validation(
            "files",
            format!("at most {FILES_MAX} files"),
        ));
    }
    let too_large = |field: String, msg: String| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            msg,
        )
        .with_field(field)
    };
    let mut total = 0usize;
    for (path, text) in files {
        if path.is_empty() || path.len() > 1024 || path.contains('\0') {
            return Err(ApiError::validation(
                "files",
                "file paths are 1–1024 bytes, no NUL",
            ));
        }
        if text.len() > FILE_MAX_BYTES {
            return Err(too_large(
                format!("files.{path}"),
                format!("a CI file is at most {FILE_MAX_BYTES} bytes"),
            ));
        }
        total = total.saturating_add(path.len() + text.len());
    }
    if total > FILES_TOTAL_MAX_BYTES {
        return Err(too_large(
            "files".to_owned(),
            format!("the CI files are at most {FILES_TOTAL_MAX_BYTES} bytes in all"),
        ));
    }
    Ok(())
}

fn merged_vars(
    def: &BTreeMap<String, String>,
    over: &BTreeMap<String, String>,
) -> ApiResult<BTreeMap<String, String>> {
    for (k, v) in over {
        let ok_name = (1..=100).contains(&k.len())
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !ok_name {
            return Err(ApiError::validation(
                format!("vars.{k}"),
                "variable names are 1–100 characters of [A-Za-z0-9_.-]",
            ));
        }
        if v.len() > VAR_VALUE_MAX_BYTES || v.contains('\0') {
            return Err(ApiError::validation(
                format!("vars.{k}"),
                format!("at most {VAR_VALUE_MAX_BYTES} bytes, no NUL"),
            ));
        }
    }
    let mut vars = def.clone();
    vars.extend(over.clone());
    if vars.len() > VARS_MAX {
        return Err(ApiError::validation(
            "vars",
            format!("at most {VARS_MAX} variables"),
        ));
    }
    Ok(vars)
}

/// Builds a new workflow from `input`: instantiates the nodes (a missing or invalid job file
/// is a 422 at `definition.jobs.<node>.job_file`), applies the policy to every node's job (no
/// `copy` or `tarball` sources, `network` only where allowed; every problem at once), caps
/// the files and vars, checks the secrets and seals them bound to `"<workflow_id>/<NAME>"`
/// (only when `trusted`; an untrusted workflow gets none). Nothing is stored.
pub(crate) fn prepare_workflow(
    ctx: &ApiContext,
    input: WorkflowInput,
    now: Timestamp,
) -> ApiResult<DeliveryWorkflow> {
    let WorkflowInput {
        definition,
        files,
        env,
        vars,
        secrets,
        trusted,
        origin,
        owner,
        request_id,
    } = input;
    check_files(&files)?;
    let vars = merged_vars(&definition.vars, &vars)?;
    let specs = instantiate(&definition, &files, &env).map_err(|p| from_problems("workflow", p))?;
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for spec in &specs {
        if seen.insert(spec.group.as_str()) {
            policy(&spec.group, &spec.job, ctx.settings(), &mut problems);
        }
    }
    if !problems.is_empty() {
        return Err(problems_error("workflow", problems));
    }
    check_secrets(secrets.iter().map(|(k, v)| (k, Some(&v.0))), &env)?;
    let id = WorkflowId::new();
    let sealed_secrets = if trusted {
        crate::tasks::secrets::seal_values(ctx, "workflow", &id, &secrets)?
    } else {
        BTreeMap::new()
    };
    let nodes = specs
        .into_iter()
        .map(|spec| spec.into_new_node(None))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::internal(format!("serializing a node's job: {e}")))?;
    let definition_json = serde_json::to_value(&definition)
        .map_err(|e| ApiError::internal(format!("serializing a workflow definition: {e}")))?;
    Ok(DeliveryWorkflow {
        workflow: NewWorkflow {
            id,
            owner_id: owner,
            name: definition.name,
            definition: definition_json,
            vars,
            trusted,
            files,
            origin,
            request_id,
            created_at: now,
        },
        nodes,
        sealed_secrets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_from_text_and_objects() {
        let yaml = serde_json::json!(
            "name: w\njobs:\n  a: {job: {name: a, steps: [{name: s, command: 'true'}]}}\n"
        );
        assert_eq!(parse_definition(&yaml).expect("yaml").name, "w");
        let obj = serde_json::json!({"name":"o","jobs":{"a":{"job_file":"a.yaml"}}});
        assert_eq!(parse_definition(&obj).expect("object").name, "o");
        let e = parse_definition(&serde_json::json!(3)).expect_err("number");
        assert_eq!(e.field(), Some("definition"));
    }

    #[test]
    fn cycles_and_unknown_dependencies_name_the_nodes() {
        let bad = serde_json::json!({"name":"w","jobs":{
            "a":{"job_file":"a.yaml","depends_on":["b"]},
            "b":{"job_file":"b.yaml","depends_on":["a"]},
            "c":{"job_file":"c.yaml","depends_on":["ghost"]}}});
        let e = parse_definition(&bad).expect_err("invalid");
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn files_and_vars_are_capped() {
        let mut files = BTreeMap::new();
        files.insert("a".to_owned(), "x".repeat(FILE_MAX_BYTES + 1));
        assert_eq!(
            check_files(&files).expect_err("big").status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        let many: BTreeMap<String, String> = (0..=FILES_MAX)
            .map(|i| (format!("f{i}"), String::new()))
            .collect();
        assert!(check_files(&many).is_err());
        let over = BTreeMap::from([("bad name".to_owned(), "v".to_owned())]);
        assert!(merged_vars(&BTreeMap::new(), &over).is_err());
        let base = BTreeMap::from([("a".to_owned(), "1".to_owned())]);
        let over = BTreeMap::from([("a".to_owned(), "2".to_owned())]);
        assert_eq!(merged_vars(&base, &over).expect("ok")["a"], "2");
    }
}

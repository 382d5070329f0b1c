//! Follow-up jobs from inside a job: checking a trigger payload (socket `trigger_jobs` or
//! `/job/triggers.json`) and turning its entries into workflow nodes.
//!
//! Rules (the runnerlib shape, see [`crate::link`]):
//! - `type` must be `trigger_job`; a `version` field is refused; the legacy `workflow:
//!   {name, vars}` object is accepted and ignored (the jobs join the caller's workflow); `operation_id` is 1–128
//!   printable characters (the idempotency key); between 1 and [`MAX_TRIGGERED_JOBS`] jobs,
//!   counting `jobs` and every `workflows[].jobs` (flattened into the parent's workflow).
//! - Each entry becomes a node named `job_name` (and grouped under it): its job is the inline
//!   `job`, else the CI file `job_file`, else `jobs/<job_name>.yaml` (or `.yml`).
//! - Environment: the parent's env < the job's own < the entry's. A job that names no
//!   `source` (or no `ci_source`) takes the parent's (a git event's pinned commits).
//! - Trust, never more than the parent: `network: true` only if the parent has it, `secrets`
//!   a subset of the parent's. Executor and limits are the definition's; the operator's caps
//!   still apply when it runs.
//!
//! Every message names the entry (`jobs[1].job_name: …`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::definition::{JobDefinition, Source};
use crate::link::{TriggerJob, TriggerPayload};
use crate::path::workspace_relative;
use crate::validate::{Problems, check_rules, from_value};
use crate::workflow::{NodeCondition, NodeSpec, job_from_files, valid_node_name};

/// Most jobs one trigger may add.
pub const MAX_TRIGGERED_JOBS: usize = 64;
/// Longest operation id.
pub const MAX_OPERATION_ID: usize = 128;

/// Checks the shape of a trigger payload. `Err` says what is wrong, naming the field.
pub fn parse_trigger(value: &Value) -> Result<TriggerPayload, String> {
    let obj = value
        .as_object()
        .ok_or("a trigger payload is a JSON object")?;
    if obj.contains_key("version") {
        return Err("version: not accepted in a trigger payload".into());
    }
    match obj.get("type") {
        Some(Value::String(t)) if t == "trigger_job" => {}
        Some(other) => return Err(format!("type: must be \"trigger_job\", not {other}")),
        None => return Err("type: missing (must be \"trigger_job\")".into()),
    }
    let mut value = value.clone();
    if let Some(obj) = value.as_object_mut() {
        // runnerlib's legacy form carries `workflow: {name, vars}` next to `jobs`: the jobs
        // join the caller's own workflow, so it is informational only.
        match obj.remove("workflow") {
            None | Some(Value::Object(_)) => {}
            Some(_) => return Err("workflow: must be an object {name, vars}".into()),
        }
    }
    let payload: TriggerPayload =
        serde_json::from_value(value).map_err(|e| format!("bad trigger payload: {e}"))?;
    let id = &payload.operation_id;
    if id.is_empty() || id.chars().count() > MAX_OPERATION_ID || id.chars().any(char::is_control) {
        return Err(format!(
            "operation_id: 1–{MAX_OPERATION_ID} characters without control characters"
        ));
    }
    let count = entries(&payload).len();
    if count == 0 {
        return Err("jobs: at least one job to trigger".into());
    }
    if count > MAX_TRIGGERED_JOBS {
        return Err(format!(
            "jobs: at most {MAX_TRIGGERED_JOBS} jobs per trigger, not {count}"
        ));
    }
    Ok(payload)
}

/// Every job entry of a payload with its path (`jobs[0]`, `workflows[1].jobs[0]`).
pub fn entries(payload: &TriggerPayload) -> Vec<(String, &TriggerJob)> {
    let mut out: Vec<(String, &TriggerJob)> = payload
        .jobs
        .iter()
        .enumerate()
        .map(|(i, j)| (format!("jobs[{i}]"), j))
        .collect();
    for (w, wf) in payload.workflows.iter().enumerate() {
        out.extend(
            wf.jobs
                .iter()
                .enumerate()
                .map(|(i, j)| (format!("workflows[{w}].jobs[{i}]"), j)),
        );
    }
    out
}

fn problems_at(at: &str, Problems(ps): Problems) -> Vec<String> {
    ps.into_iter()
        .map(|p| {
            if p.path.is_empty() {
                format!("{at}: {}", p.message)
            } else {
                format!("{at}.{}: {}", p.path, p.message)
            }
        })
        .collect()
}

/// Resolves every entry of `payload` into a node, checked against the parent job (the job
/// that triggers, with its environment assembled) and the workflow's CI files. Every problem
/// is reported at once, one per line; nothing is resolved then.
pub fn resolve_trigger(
    payload: &TriggerPayload,
    parent: &JobDefinition,
    files: &BTreeMap<String, String>,
) -> Result<Vec<NodeSpec>, String> {
    let mut problems = Vec::new();
    let mut specs = Vec::new();
    let mut names = BTreeSet::new();
    for (at, entry) in entries(payload) {
        match resolve_entry(&at, entry, parent, files, &mut names) {
            Ok(spec) => specs.push(spec),
            Err(mut ps) => problems.append(&mut ps),
        }
    }
    if problems.is_empty() {
        Ok(specs)
    } else {
        Err(problems.join("\n"))
    }
}

fn resolve_entry(
    at: &str,
    entry: &TriggerJob,
    parent: &JobDefinition,
    files: &BTreeMap<String, String>,
    names: &mut BTreeSet<String>,
) -> Result<NodeSpec, Vec<String>> {
    let name = &entry.job_name;
    if !valid_node_name(name) {
        return Err(vec![format!(
            "{at}.job_name: node names are 1–64 characters of [A-Za-z0-9_-]"
        )]);
    }
    if !names.insert(name.clone()) {
        return Err(vec![format!(
            "{at}.job_name: {name:?} is triggered twice in one payload"
        )]);
    }
    let mut problems = Vec::new();
    let condition = match entry.condition.as_deref().map(NodeCondition::parse) {
        None => NodeCondition::AllSuccess,
        Some(Some(c)) => c,
        Some(None) => {
            problems.push(format!(
                "{at}.condition: unsupported condition {:?} (all_success, any_failed, always)",
                entry.condition.as_deref().unwrap_or_default()
            ));
            NodeCondition::AllSuccess
        }
    };
    let mut deps = BTreeSet::new();
    for (i, dep) in entry.depends_on.iter().enumerate() {
        let path = format!("{at}.depends_on[{i}]");
        if dep == name {
            problems.push(format!("{path}: a node cannot depend on itself"));
        } else if !valid_dependency(dep) {
            problems.push(format!("{path}: {dep:?} is not a node name"));
        } else if !deps.insert(dep) {
            problems.push(format!("{path}: {dep:?} is listed twice"));
        }
    }
    let job = match (&entry.job, &entry.job_file) {
        (Some(_), Some(_)) => Err(vec![format!("{at}: give at most one of job and job_file")]),
        (Some(job), None) => from_value(job).map_err(|p| problems_at(&format!("{at}.job"), p)),
        (None, Some(file)) => match workspace_relative(file) {
            Err(e) => Err(vec![format!("{at}.job_file: {e}")]),
            Ok(file) => job_from_files(files, &file, &format!("{at}.job_file")).map_err(flat),
        },
        (None, None) => {
            let found = [format!("jobs/{name}.yaml"), format!("jobs/{name}.yml")]
                .into_iter()
                .find(|p| files.contains_key(p));
            match found {
                Some(file) => job_from_files(files, &file, at).map_err(flat),
                None => Err(vec![format!(
                    "{at}: no job, no job_file, and no jobs/{name}.yaml in the CI files"
                )]),
            }
        }
    };
    let mut job = match job {
        Ok(job) => job,
        Err(mut ps) => {
            problems.append(&mut ps);
            return Err(problems);
        }
    };
    if job.network && !parent.network {
        problems.push(format!(
            "{at}: network: true is more than the triggering job has"
        ));
    }
    for (i, secret) in job.secrets.iter().enumerate() {
        if !parent.secrets.contains(secret) {
            problems.push(format!(
                "{at}: secrets[{i}]: {secret} is not a secret of the triggering job"
            ));
        }
    }
    let mut env = parent.env.clone();
    env.extend(std::mem::take(&mut job.env));
    env.extend(entry.env.clone());
    job.env = env;
    // Sources: a child that names none works on the parent's code and CI code (for a git
    // event: the event's pinned commits), never on nothing by surprise.
    if job.source == Source::None && !matches!(parent.source, Source::Tarball) {
        job.source = parent.source.clone();
    }
    if job.ci_source.is_none() {
        job.ci_source = parent.ci_source.clone();
    }
    let mut rules = Vec::new();
    check_rules(&job, &mut rules);
    problems.extend(problems_at(at, Problems(rules)));
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(NodeSpec {
        name: name.clone(),
        group: name.clone(),
        job,
        depends_on: deps.into_iter().cloned().collect(),
        condition,
    })
}

/// Problems already carrying their full path, one line each.
fn flat(Problems(ps): Problems) -> Vec<String> {
    ps.into_iter()
        .map(|p| format!("{}: {}", p.path, p.message))
        .collect()
}

/// A node name, or a fan-out instance (`build[1]`).
fn valid_dependency(dep: &str) -> bool {
    match dep.strip_suffix(']').and_then(|d| d.split_once('[')) {
        Some((group, index)) => {
            valid_node_name(group) && !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit())
        }
        None => valid_node_name(dep),
    }
}

#[cfg(test)]
mod tests;

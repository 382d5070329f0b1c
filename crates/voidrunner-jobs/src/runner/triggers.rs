//! The workflow side of a run: `/job/workflow.json` written before the steps, and
//! `/job/triggers.json` read after them (and after the `post_execution` hooks) and handed to
//! the job's [`crate::link::WorkflowLink`].

use voidrunner_sandbox::Workspace;

use super::{Job, JobFailure, JobReport, JobRequest};
use crate::trigger::parse_trigger;

/// Largest `/job/triggers.json` read.
pub const MAX_TRIGGERS_FILE: u64 = 8 * 1024 * 1024;

/// Writes the workflow context (when the job is a workflow node) as `/job/workflow.json`.
pub(super) fn write_context(ws: &Workspace, req: &JobRequest) -> Result<(), String> {
    let Some(context) = &req.workflow else {
        return Ok(());
    };
    let bytes = serde_json::to_vec_pretty(context).map_err(|e| format!("workflow.json: {e}"))?;
    ws.write_file("workflow.json", &bytes, 0o644)
        .map_err(|e| format!("writing workflow.json: {e}"))
}

/// Reads `/job/triggers.json` if the job wrote one and applies it through the link. A bad
/// file (too big, a symlink or not a regular file, not a valid payload) or a refusal by the
/// link is a failure of phase `triggers`.
pub(super) async fn apply_file(job: &Job<'_>, report: &mut JobReport) {
    let Some(link) = &job.req.link else {
        return;
    };
    // Only the existence is checked through the path; the read itself opens the file
    // without following any link.
    if job
        .workspace
        .path()
        .join("triggers.json")
        .symlink_metadata()
        .is_err()
    {
        return;
    }
    let fail = |report: &mut JobReport, reason: String| {
        report.failures.push(JobFailure {
            phase: "triggers".into(),
            reason: String::from_utf8_lossy(&job.registry.snapshot().mask_all(reason.as_bytes()))
                .into_owned(),
        });
    };
    let bytes = match job
        .workspace
        .read_file("triggers.json", MAX_TRIGGERS_FILE + 1)
    {
        Ok(b) => b,
        Err(e) => return fail(report, format!("triggers.json: {e}")),
    };
    if bytes.len() as u64 > MAX_TRIGGERS_FILE {
        return fail(
            report,
            format!("triggers.json is larger than {MAX_TRIGGERS_FILE} bytes"),
        );
    }
    let payload = serde_json::from_slice(&bytes)
        .map_err(|e| format!("triggers.json is not valid JSON: {e}"))
        .and_then(|v| parse_trigger(&v).map_err(|e| format!("triggers.json: {e}")));
    let payload = match payload {
        Ok(p) => p,
        Err(e) => return fail(report, e),
    };
    if let Err(e) = link.trigger(payload).await {
        fail(report, format!("triggers.json: {e}"));
    }
}

//! What local workflow runs print: node marks, the summary, the JSON report, and for `job
//! run` the triggered jobs that would run next with the command to run each.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use voidrunner_jobs::runner::local::LocalWorkflow;
use voidrunner_jobs::runner::{JobEvent, JobReport};
use voidrunner_jobs::workflow::{NodeState, WorkflowStatus};

use crate::job::RunArgs;

/// The wire name of a node state.
pub(super) fn state_name(s: NodeState) -> &'static str {
    match s {
        NodeState::Pending => "pending",
        NodeState::Running => "running",
        NodeState::Succeeded => "succeeded",
        NodeState::Failed => "failed",
        NodeState::TimedOut => "timed_out",
        NodeState::Cancelled => "cancelled",
        NodeState::Skipped => "skipped",
    }
}

/// The wire name of a workflow status.
pub(super) fn status_name(s: WorkflowStatus) -> &'static str {
    match s {
        WorkflowStatus::Running => "running",
        WorkflowStatus::Succeeded => "succeeded",
        WorkflowStatus::Failed => "failed",
        WorkflowStatus::Cancelled => "cancelled",
        WorkflowStatus::Skipped => "skipped",
    }
}

/// The process exit code of a workflow's status: 0 only when it succeeded.
pub(super) fn exit_code(s: WorkflowStatus) -> u8 {
    match s {
        WorkflowStatus::Succeeded => 0,
        WorkflowStatus::Cancelled => 130,
        _ => 1,
    }
}

/// A terminal mark of a node state.
pub(super) fn mark(s: NodeState) -> &'static str {
    match s {
        NodeState::Succeeded => "✔",
        NodeState::Skipped => "⏭",
        NodeState::Pending | NodeState::Running => "…",
        _ => "✘",
    }
}

/// A non-root node's job event with `node/` before the step name (phases left out).
pub(super) fn prefixed(node: &str, e: JobEvent) -> Option<JobEvent> {
    Some(match e {
        JobEvent::Phase(_) => return None,
        JobEvent::StepStarted { step } => JobEvent::StepStarted {
            step: format!("{node}/{step}"),
        },
        JobEvent::Output { step, stream, data } => JobEvent::Output {
            step: format!("{node}/{step}"),
            stream,
            data,
        },
        JobEvent::StepFinished(mut r) => {
            r.name = format!("{node}/{}", r.name);
            JobEvent::StepFinished(r)
        }
        JobEvent::Artifact(mut a) => {
            a.path = format!("{node}: {}", a.path);
            JobEvent::Artifact(a)
        }
    })
}

/// Prints every node with its state (and why), then the merged outputs, on stderr.
pub(super) fn print_summary(wf: &LocalWorkflow, status: WorkflowStatus, took: Duration) {
    let nodes = wf.nodes();
    let width = nodes.iter().map(|n| n.spec.name.len()).max().unwrap_or(0);
    let mut text = String::new();
    let _ = write!(text, "workflow {}", status_name(status));
    if !took.is_zero() {
        let _ = write!(text, " in {:.1} s", took.as_secs_f64());
    }
    let _ = writeln!(text, " ({} nodes)", nodes.len());
    for n in &nodes {
        let _ = write!(
            text,
            "  {} {:width$}  {}",
            mark(n.state),
            n.spec.name,
            state_name(n.state)
        );
        if let Some(r) = &n.reason {
            let _ = write!(text, ": {r}");
        }
        if let Some(by) = &n.triggered_by {
            let _ = write!(
                text,
                " (triggered by {}, operation {})",
                by.node, by.operation_id
            );
        }
        text.push('\n');
    }
    if let Some(e) = wf.error() {
        let _ = writeln!(text, "error: {e}");
    }
    let outputs = wf.outputs();
    if !outputs.is_empty() {
        let _ = writeln!(text, "outputs:");
        for (k, v) in outputs {
            let _ = writeln!(text, "  {k}={v}");
        }
    }
    eprint!("{text}");
}

/// The JSON report of a local workflow run.
pub(super) fn workflow_json(
    wf: &LocalWorkflow,
    status: WorkflowStatus,
    reports: &BTreeMap<String, JobReport>,
) -> serde_json::Value {
    let nodes: Vec<serde_json::Value> = wf
        .nodes()
        .into_iter()
        .map(|n| {
            serde_json::json!({
                "name": n.spec.name,
                "group": n.spec.group,
                "status": state_name(n.state),
                "reason": n.reason,
                "job_id": n.job_id,
                "depends_on": n.spec.depends_on,
                "condition": n.spec.condition.as_str(),
                "triggered_by": n.triggered_by.as_ref().map(|b| &b.node),
                "operation_id": n.triggered_by.as_ref().map(|b| &b.operation_id),
                "outputs": n.outputs,
                "report": reports.get(&n.spec.name),
            })
        })
        .collect();
    serde_json::json!({
        "id": wf.id(),
        "status": status_name(status),
        "error": wf.error(),
        "outputs": wf.outputs(),
        "nodes": nodes,
    })
}

/// A triggered job that did not run, why, and how to run it.
#[derive(Debug, Serialize)]
pub(super) struct NextJob {
    name: String,
    triggered_by: Option<String>,
    operation_id: Option<String>,
    reason: String,
    command: String,
}

/// Quotes `s` for a POSIX shell when it needs it.
fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=@,+".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The pending nodes of a `job run` (jobs triggered but not run), with the command that
/// runs each on its own: its job file with the env it would get, or the parent with
/// `--follow` for an inline job.
pub(super) fn next_jobs(wf: &LocalWorkflow, args: &RunArgs, dir: &Path) -> Vec<NextJob> {
    let nodes = wf.nodes();
    let mut flags = String::new();
    for p in &args.local.allow_protocols {
        let _ = write!(flags, " --allow-protocol {}", quote(p));
    }
    if let Some(f) = &args.local.secret_file {
        let _ = write!(flags, " --secret-file {}", quote(&f.display().to_string()));
    }
    wf.pending()
        .into_iter()
        .filter_map(|(name, reason)| {
            let node = nodes.iter().find(|n| n.spec.name == name)?;
            let command = match &node.job_file {
                Some(file) => {
                    let mut cmd = format!("voidrunner job run{flags}");
                    let own = wf_file_env(wf, file);
                    for (k, v) in &node.spec.job.env {
                        if own.get(k) != Some(v) {
                            let _ = write!(cmd, " --env {}", quote(&format!("{k}={v}")));
                        }
                    }
                    let path = dir.join(file);
                    let _ = write!(cmd, " {}", quote(&path.display().to_string()));
                    cmd
                }
                None => format!(
                    "voidrunner job run{flags} --follow {}",
                    quote(&args.file.display().to_string())
                ),
            };
            Some(NextJob {
                name,
                triggered_by: node.triggered_by.as_ref().map(|b| b.node.clone()),
                operation_id: node.triggered_by.as_ref().map(|b| b.operation_id.clone()),
                reason,
                command,
            })
        })
        .collect()
}

/// The env a job file sets itself.
fn wf_file_env(wf: &LocalWorkflow, file: &str) -> BTreeMap<String, String> {
    let format = if file.ends_with(".json") {
        voidrunner_jobs::Format::Json
    } else {
        voidrunner_jobs::Format::Yaml
    };
    wf.file(file)
        .and_then(|text| voidrunner_jobs::parse(&text, format).ok())
        .map(|d| d.env)
        .unwrap_or_default()
}

/// Prints the jobs a `job run` triggered and did not run.
pub(super) fn print_next(next: &[NextJob]) {
    if next.is_empty() {
        return;
    }
    let mut text = format!(
        "{} triggered job{} would run next (--follow runs them here):\n",
        next.len(),
        if next.len() == 1 { "" } else { "s" }
    );
    for n in next {
        let _ = write!(text, "  {}: ", n.name);
        if let (Some(by), Some(op)) = (&n.triggered_by, &n.operation_id) {
            let _ = write!(text, "triggered by {by} (operation {op}); ");
        }
        let _ = writeln!(text, "{}", n.reason);
        let _ = writeln!(text, "    {}", n.command);
    }
    eprint!("{text}");
}

//! `voidrunner workflow …` (validate, run locally; submit, list, show, cancel and re-run on a
//! server) and the local
//! workflow machinery `voidrunner job run` shares: a job and the jobs it triggers run as an
//! in-memory workflow ([`LocalWorkflow`]) with the same decision rules as the server.
//!
//! The CI files of a local run (what `job_file`s and triggered jobs name) are the YAML and
//! JSON files under the directory of the workflow or job file, keyed by their path relative
//! to it; hidden entries and symlinks are left out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use voidrunner_jobs::JobDefinition;
use voidrunner_jobs::runner::JobReport;
use voidrunner_jobs::runner::local::{LocalEvent, LocalRun, LocalWorkflow, run_workflow};
use voidrunner_jobs::workflow::{NodeCondition, NodeSpec};
use voidrunner_sandbox::Sandbox;

use crate::job::{LocalArgs, RunArgs, invalid, print_event, read_document};

mod output;
pub(crate) mod remote;
pub(crate) mod submit;

pub use submit::SubmitArgs;

/// `workflow` subcommands.
#[derive(Debug, Subcommand)]
pub enum WorkflowCommand {
    /// Check a workflow definition and list every problem with its path.
    Validate {
        /// YAML or JSON file (`.json` is read as JSON).
        file: PathBuf,
    },
    /// Run a workflow on this machine, without a server.
    Run(WorkflowRunArgs),
    /// Submit a workflow to a server (`POST /api/v1/workflows`) and, with `--wait`, follow it
    /// to its end.
    Submit(SubmitArgs),
    /// List your workflows on a server, newest first.
    List(remote::ListArgs),
    /// Show a workflow of a server: status, nodes, outputs (exit code: its result; 2 while
    /// running).
    Show(remote::IdArgs),
    /// Cancel a workflow on a server (pending nodes skipped, running jobs cancelled).
    Cancel(remote::IdArgs),
    /// Re-run the failed and skipped nodes of a failed or cancelled workflow; `--wait`
    /// follows it to its end.
    Rerun(remote::IdArgs),
}

/// `workflow run` flags.
#[derive(Debug, Args)]
pub struct WorkflowRunArgs {
    /// YAML or JSON file; `job_file`s are relative to its directory.
    pub file: PathBuf,
    /// Variable override `NAME=VALUE` (repeatable; beats the definition's `vars`).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Local-run flags (`--width` also bounds the jobs running at once).
    #[command(flatten)]
    pub local: LocalArgs,
}

/// `workflow validate`.
pub fn validate(file: &Path) -> anyhow::Result<()> {
    let (text, format) = read_document(file)?;
    let def = voidrunner_jobs::workflow::parse_workflow(&text, format)
        .map_err(|p| invalid(file, "workflow", &p))?;
    let plan = voidrunner_jobs::workflow::WorkflowPlan::new(&def);
    println!(
        "{}: valid workflow {:?} with {} node{} ({} after fan-out)",
        file.display(),
        def.name,
        def.jobs.len(),
        if def.jobs.len() == 1 { "" } else { "s" },
        plan.len()
    );
    Ok(())
}

/// Most CI files, largest file and total bytes (the server's limits).
const MAX_FILES: usize = 256;
const MAX_FILE_BYTES: u64 = 256 * 1024;
const MAX_TOTAL_BYTES: u64 = 2 * 1024 * 1024;

/// The CI files under `dir` (see the module docs). `strict` (submission) refuses what
/// exceeds the server's limits; otherwise such files are left out with a warning.
pub(crate) fn ci_files(dir: &Path, strict: bool) -> anyhow::Result<BTreeMap<String, String>> {
    let mut files = BTreeMap::new();
    let mut total = 0u64;
    let mut stack = vec![PathBuf::new()];
    let skip = |why: String| -> anyhow::Result<()> {
        if strict {
            anyhow::bail!("{why}");
        }
        eprintln!("warning: {why}; left out of the CI files");
        Ok(())
    };
    while let Some(rel) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(dir.join(&rel))
            .with_context(|| format!("reading {}", dir.join(&rel).display()))?
            .flatten()
            .collect();
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if name.starts_with('.') || kind.is_symlink() {
                continue;
            }
            let path = rel.join(&name);
            if kind.is_dir() {
                stack.push(path);
                continue;
            }
            let key = path.to_string_lossy().replace('\\', "/");
            if !kind.is_file()
                || !(key.ends_with(".yaml") || key.ends_with(".yml") || key.ends_with(".json"))
            {
                continue;
            }
            let size = entry.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
            if size > MAX_FILE_BYTES {
                skip(format!("{key} is larger than {MAX_FILE_BYTES} bytes"))?;
                continue;
            }
            if files.len() >= MAX_FILES || total + size > MAX_TOTAL_BYTES {
                skip(format!(
                    "more than {MAX_FILES} files or {MAX_TOTAL_BYTES} bytes of CI files (at {key})"
                ))?;
                continue;
            }
            let Ok(text) = std::fs::read_to_string(dir.join(&path)) else {
                skip(format!("{key} is not UTF-8 text"))?;
                continue;
            };
            total += size;
            files.insert(key, text);
        }
    }
    Ok(files)
}

/// The directory a definition file's relative paths start from.
fn dir_of(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A job name as a node name (`[A-Za-z0-9_-]{1,64}`).
fn node_name(job: &str) -> String {
    let mut name: String = job
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if name.is_empty() {
        name.push_str("job");
    }
    name
}

/// Cancels on Ctrl-C.
fn cancel_on_ctrl_c(what: &'static str) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let cancel = CancellationToken::new();
    let task = tokio::spawn({
        let cancel = cancel.clone();
        async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("cancelling the {what}…");
                cancel.cancel();
            }
        }
    });
    (cancel, task)
}

/// Prints a local run's events on stderr: the root node's job like a plain `job run`
/// (`[step] …`), every other node's prefixed with its name, and node state changes. Answers
/// each node's report.
fn spawn_printer(
    mut rx: mpsc::UnboundedReceiver<LocalEvent>,
    root: Option<String>,
) -> tokio::task::JoinHandle<BTreeMap<String, JobReport>> {
    tokio::spawn(async move {
        let mut partial = BTreeMap::new();
        let mut reports = BTreeMap::new();
        let mut err = std::io::stderr();
        while let Some(e) = rx.recv().await {
            let is_root = |node: &str| root.as_deref() == Some(node);
            match e {
                LocalEvent::Job { node, event } if is_root(&node) => {
                    print_event(&event, &mut partial, &mut err);
                }
                LocalEvent::Job { node, event } => {
                    if let Some(event) = output::prefixed(&node, event) {
                        print_event(&event, &mut partial, &mut err);
                    }
                }
                LocalEvent::Started { node, job_id } if !is_root(&node) => {
                    eprintln!("▶ node {node} started (job {job_id})");
                }
                LocalEvent::Started { .. } => {}
                LocalEvent::Skipped { node, reason } => {
                    eprintln!("⏭ node {node} skipped: {reason}");
                }
                LocalEvent::Finished {
                    node,
                    state,
                    report,
                } => {
                    if is_root(&node) {
                        for f in &report.failures {
                            eprintln!("✘ {}: {}", f.phase, f.reason);
                        }
                        eprintln!("job {}", report.outcome);
                    } else {
                        for f in &report.failures {
                            eprintln!("✘ {node}: {}: {}", f.phase, f.reason);
                        }
                        eprintln!(
                            "{} node {node} {}",
                            output::mark(state),
                            output::state_name(state)
                        );
                    }
                    reports.insert(node, *report);
                }
            }
        }
        reports
    })
}

/// `job run [--follow]`: the job as the root node of a local workflow; without `--follow`
/// only it runs and the jobs it triggered are listed with how to run them.
pub async fn run_job_file(
    args: &RunArgs,
    def: JobDefinition,
    secrets: BTreeMap<String, String>,
    sandbox: Arc<Sandbox>,
) -> anyhow::Result<u8> {
    let dir = dir_of(&args.file);
    let files = ci_files(&dir, false)?;
    let root = node_name(&def.name);
    let id = format!("local-{}", uuid::Uuid::new_v4().simple());
    let wf = LocalWorkflow::new(
        id,
        BTreeMap::new(),
        files,
        vec![NodeSpec {
            name: root.clone(),
            group: root.clone(),
            job: def,
            depends_on: Vec::new(),
            condition: NodeCondition::AllSuccess,
        }],
    );
    let run = LocalRun {
        sandbox,
        cfg: crate::job::local_config(&args.local),
        secrets,
        base_dir: Some(dir.clone()),
        tarball: args.tarball.clone(),
        width: args.local.width.max(1),
        max_jobs: if args.follow { None } else { Some(1) },
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let printer = spawn_printer(rx, Some(root.clone()));
    let (cancel, on_signal) = cancel_on_ctrl_c("job");
    let status = run_workflow(&wf, &run, &tx, &cancel).await;
    on_signal.abort();
    drop(tx);
    let reports = printer.await.context("printing the run")?;
    let report = reports.get(&root).context("the job did not run (a bug)")?;
    let next = output::next_jobs(&wf, args, &dir);
    if args.follow {
        output::print_summary(&wf, status, Duration::ZERO);
    } else {
        output::print_next(&next);
    }
    if args.local.json {
        let mut json = serde_json::to_value(report)?;
        json["next"] = serde_json::to_value(&next)?;
        if args.follow {
            json["workflow"] = output::workflow_json(&wf, status, &reports);
        }
        println!("{}", serde_json::to_string_pretty(&json)?);
    }
    let code = match report.outcome {
        "succeeded" => 0,
        "cancelled" => 130,
        _ => 1,
    };
    Ok(if code == 0 && args.follow {
        output::exit_code(status)
    } else {
        code
    })
}

/// `workflow run`: answers the exit code (0 succeeded, 130 cancelled, 1 otherwise).
pub async fn run(
    args: WorkflowRunArgs,
    sandbox: &crate::engine::SandboxSection,
) -> anyhow::Result<u8> {
    let (text, format) = read_document(&args.file)?;
    let mut def = voidrunner_jobs::workflow::parse_workflow(&text, format)
        .map_err(|p| invalid(&args.file, "workflow", &p))?;
    def.vars
        .extend(crate::job::parse_pairs(args.vars.iter().cloned(), "--var")?);
    let dir = dir_of(&args.file);
    let files = ci_files(&dir, false)?;
    let mut specs = voidrunner_jobs::workflow::instantiate(&def, &files, &BTreeMap::new())
        .map_err(|p| invalid(&args.file, "workflow", &p))?;
    let process_env: BTreeMap<String, String> = std::env::vars().collect();
    let overrides = crate::job::env_overrides(&args.local, &process_env)?;
    let mut names: Vec<String> = Vec::new();
    for spec in &mut specs {
        spec.job.env.extend(overrides.clone());
        names.extend(spec.job.secrets.iter().cloned());
    }
    names.sort();
    names.dedup();
    let secrets =
        crate::job::secrets_named(&names, args.local.secret_file.as_deref(), &process_env)?;
    let sandbox = crate::engine::build_sandbox(sandbox)?;
    let id = format!("local-{}", uuid::Uuid::new_v4().simple());
    eprintln!(
        "workflow {} ({id}): {} node{}",
        def.name,
        specs.len(),
        if specs.len() == 1 { "" } else { "s" }
    );
    let wf = LocalWorkflow::new(id, def.vars.clone(), files, specs);
    let run = LocalRun {
        sandbox,
        cfg: crate::job::local_config(&args.local),
        secrets,
        base_dir: Some(dir),
        tarball: None,
        width: args.local.width.max(1),
        max_jobs: None,
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let printer = spawn_printer(rx, None);
    let (cancel, on_signal) = cancel_on_ctrl_c("workflow");
    let started = Instant::now();
    let status = run_workflow(&wf, &run, &tx, &cancel).await;
    on_signal.abort();
    drop(tx);
    let reports = printer.await.context("printing the run")?;
    output::print_summary(&wf, status, started.elapsed());
    if args.local.json {
        let json = output::workflow_json(&wf, status, &reports);
        println!("{}", serde_json::to_string_pretty(&json)?);
    }
    Ok(output::exit_code(status))
}

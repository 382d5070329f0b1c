//! `voidrunner job …`: validate a job definition, run a job on this machine without a server
//! (same sandbox, same masking as the service; step-scoped live output; exit code = job
//! result), and `ctl`, the in-job client of the job socket.
//!
//! Precedence of a local run's inputs: flags (`--env K=V`) > `VOIDRUNNER_ENV_<K>` /
//! `VOIDRUNNER_SECRET_<K>` environment variables > files (the definition's `env`,
//! `--secret-file`) > defaults.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use voidrunner_jobs::runner::{JobEvent, RunnerConfig};
use voidrunner_jobs::source::SourcePolicy;
use voidrunner_jobs::{Format, JobDefinition, parse};
use voidrunner_sandbox::Limits;

/// `job` subcommands.
#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Check a job definition and list every problem with its path.
    Validate {
        /// YAML or JSON file (`.json` is read as JSON).
        file: PathBuf,
    },
    /// Run a job on this machine, without a server.
    Run(RunArgs),
    /// Submit a job to a server (`POST /api/v1/jobs`) and, with `--wait`, follow it to its end.
    Submit(SubmitArgs),
    /// Talk to the job socket from inside a job (uses `VOIDRUNNER_JOB_SOCKET`/`_TOKEN`).
    #[command(subcommand)]
    Ctl(CtlCommand),
}

/// Flags of local runs shared by `job run` and `workflow run`.
#[derive(Debug, Args)]
pub struct LocalArgs {
    /// Environment override `NAME=VALUE` (repeatable; beats the definition and
    /// `VOIDRUNNER_ENV_NAME`).
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// File of `NAME=VALUE` lines with secret values (`VOIDRUNNER_SECRET_NAME` beats it).
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,
    /// Where artifacts are copied.
    #[arg(long, value_name = "DIR", default_value = "artifacts")]
    pub artifacts_dir: PathBuf,
    /// Most steps at once (and, for workflows, most jobs at once).
    #[arg(long, default_value_t = 4)]
    pub width: usize,
    /// Extra git protocol to allow (repeatable), e.g. `file`.
    #[arg(long = "allow-protocol", value_name = "PROTO")]
    pub allow_protocols: Vec<String>,
    /// Allow jobs that ask for `network: true`.
    #[arg(long)]
    pub allow_network: bool,
    /// Print the final report as JSON on stdout (progress goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Copy the workspace of a failed job into DIR/<job id> for debugging.
    #[arg(long, value_name = "DIR")]
    pub keep_failed_workspace: Option<PathBuf>,
}

/// `job run` flags.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// YAML or JSON file.
    pub file: PathBuf,
    /// Local-run flags.
    #[command(flatten)]
    pub local: LocalArgs,
    /// Archive for a `tarball` source.
    #[arg(long, value_name = "FILE")]
    pub tarball: Option<PathBuf>,
    /// Also run the jobs it triggers (and theirs), with the job files of its directory.
    #[arg(long)]
    pub follow: bool,
}

/// `job submit` flags.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// YAML or JSON file.
    pub file: PathBuf,
    /// The server.
    #[command(flatten)]
    pub remote: crate::remote::ServerArgs,
    /// File of `NAME=VALUE` lines with secret values (`VOIDRUNNER_SECRET_NAME` beats it).
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,
    /// Archive for a `tarball` source.
    #[arg(long, value_name = "FILE")]
    pub tarball: Option<PathBuf>,
    /// Follow the job to its end (exit code = result) and print each step's output.
    #[arg(long)]
    pub wait: bool,
}

/// `job ctl` subcommands.
#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// Mask values from now on (`-` reads one value per line from stdin).
    RegisterSecret {
        /// Values, or `-`.
        values: Vec<String>,
    },
    /// Record an output.
    SetOutput {
        /// Key.
        key: String,
        /// Value.
        value: String,
    },
    /// Print an output recorded earlier.
    GetOutput {
        /// Key.
        key: String,
    },
    /// Keep a file (relative to /job) as an artifact.
    Attach {
        /// Path.
        path: String,
    },
    /// Add a follow-up job to this job's workflow (prints the nodes added).
    Trigger {
        /// The new node's name.
        name: String,
        /// Extra environment `NAME=VALUE` (repeatable).
        #[arg(long = "env", value_name = "NAME=VALUE")]
        env: Vec<String>,
        /// A node that must finish first (repeatable).
        #[arg(long = "depends-on", value_name = "NODE")]
        depends_on: Vec<String>,
        /// `all_success` (default), `any_failed` or `always`.
        #[arg(long)]
        condition: Option<String>,
        /// The job file (default `jobs/<name>.yaml` of the CI files).
        #[arg(long, value_name = "PATH")]
        job_file: Option<String>,
        /// Idempotency key (default: a fresh UUID); the same id again adds nothing.
        #[arg(long, value_name = "ID")]
        operation_id: Option<String>,
    },
    /// Print the status of a node of this job's workflow (`none` when there is none).
    JobStatus {
        /// Node name.
        name: String,
    },
}

/// The text of a definition file and its format (`.json` is JSON, anything else YAML).
pub(crate) fn read_document(file: &Path) -> anyhow::Result<(String, Format)> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let format = if file.extension().is_some_and(|e| e == "json") {
        Format::Json
    } else {
        Format::Yaml
    };
    Ok((text, format))
}

/// The error listing every problem of an invalid `kind` (job, workflow) file.
pub(crate) fn invalid(
    file: &Path,
    kind: &str,
    problems: &voidrunner_jobs::Problems,
) -> anyhow::Error {
    anyhow::anyhow!(
        "{} is not a valid {kind} ({} problem{}):\n{problems}",
        file.display(),
        problems.0.len(),
        if problems.0.len() == 1 { "" } else { "s" }
    )
}

/// Reads and validates a job file; answers its text too (what `submit` sends).
fn read_definition(file: &Path) -> anyhow::Result<(String, JobDefinition)> {
    let (text, format) = read_document(file)?;
    let def = parse(&text, format).map_err(|p| invalid(file, "job", &p))?;
    Ok((text, def))
}

/// `job validate`.
pub fn validate(file: &Path) -> anyhow::Result<()> {
    let (_, def) = read_definition(file)?;
    println!(
        "{}: valid job {:?} with {} step{}",
        file.display(),
        def.name,
        def.steps.len(),
        if def.steps.len() == 1 { "" } else { "s" }
    );
    Ok(())
}

pub(crate) fn parse_pairs(
    lines: impl IntoIterator<Item = String>,
    what: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for line in lines {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .with_context(|| format!("{what}: expected NAME=VALUE"))?;
        out.push((k.trim().to_owned(), v.to_owned()));
    }
    Ok(out)
}

/// The env overrides of a local run by precedence: `--env` over `VOIDRUNNER_ENV_<NAME>`
/// (both over the definitions).
pub(crate) fn env_overrides(
    args: &LocalArgs,
    process_env: &BTreeMap<String, String>,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut env = BTreeMap::new();
    for (k, v) in process_env {
        if let Some(name) = k.strip_prefix("VOIDRUNNER_ENV_") {
            env.insert(name.to_owned(), v.clone());
        }
    }
    env.extend(parse_pairs(args.env.iter().cloned(), "--env")?);
    Ok(env)
}

/// Secret values by precedence: `VOIDRUNNER_SECRET_<NAME>` (for the names the job declares)
/// over the `--secret-file` lines.
fn secrets_of(
    def: &JobDefinition,
    secret_file: Option<&Path>,
    process_env: &BTreeMap<String, String>,
) -> anyhow::Result<BTreeMap<String, String>> {
    secrets_named(&def.secrets, secret_file, process_env)
}

/// [`secrets_of`] for a set of secret names (every job of a workflow).
pub(crate) fn secrets_named(
    names: &[String],
    secret_file: Option<&Path>,
    process_env: &BTreeMap<String, String>,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut secrets = BTreeMap::new();
    if let Some(file) = secret_file {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        secrets.extend(parse_pairs(
            text.lines().map(str::to_owned),
            "--secret-file",
        )?);
    }
    for name in names {
        if let Some(v) = process_env.get(&format!("VOIDRUNNER_SECRET_{name}")) {
            secrets.insert(name.clone(), v.clone());
        }
    }
    Ok(secrets)
}

/// Prints events with the step's name before each line.
pub(crate) fn print_event(
    e: &JobEvent,
    partial: &mut BTreeMap<String, Vec<u8>>,
    out: &mut dyn Write,
) {
    let _ = match e {
        JobEvent::Phase(p) => writeln!(out, "── {}", p.as_str()),
        JobEvent::StepStarted { step } => writeln!(out, "▶ {step}"),
        JobEvent::Output { step, data, .. } => {
            let buf = partial.entry(step.clone()).or_default();
            buf.extend_from_slice(data);
            while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buf.drain(..=nl).collect();
                let _ = write!(out, "[{step}] {}", String::from_utf8_lossy(&line));
            }
            Ok(())
        }
        JobEvent::StepFinished(r) => {
            if let Some(rest) = partial.remove(&r.name).filter(|b| !b.is_empty()) {
                let _ = writeln!(out, "[{}] {}", r.name, String::from_utf8_lossy(&rest));
            }
            let mark = match r.state {
                "succeeded" => "✔",
                "skipped" => "⏭",
                _ => "✘",
            };
            let mut line = format!("{mark} {} {} ({} ms)", r.name, r.state, r.wall_ms);
            if let Some(code) = r.exit_code.filter(|c| *c != 0) {
                line.push_str(&format!(", exit {code}"));
            }
            if let Some(d) = &r.detail {
                line.push_str(&format!(": {d}"));
            }
            writeln!(out, "{line}")
        }
        JobEvent::Artifact(a) => writeln!(
            out,
            "artifact {} ({} bytes, sha256 {})",
            a.path, a.size, a.sha256
        ),
    };
}

/// The runner settings of a local run.
pub(crate) fn local_config(args: &LocalArgs) -> RunnerConfig {
    let mut sources = SourcePolicy {
        allow_copy: true,
        // The local runner fetches as its user from their own network.
        allow_private_hosts: true,
        ..SourcePolicy::default()
    };
    sources
        .git_protocols
        .extend(args.allow_protocols.iter().cloned());
    RunnerConfig {
        width: args.width.max(1),
        sources,
        step_limits: Limits {
            wall_timeout: Duration::from_secs(600),
            memory_bytes: 1 << 30,
            max_processes: 256,
            ..Limits::default()
        },
        job_timeout: Duration::from_secs(3600),
        workspace_bytes: 1 << 30,
        allow_network: args.allow_network,
        artifacts_dir: args.artifacts_dir.clone(),
        max_artifact_bytes: 1 << 30,
        keep_failed_workspaces: args.keep_failed_workspace.clone(),
    }
}

/// `job run`: answers the process exit code (0 succeeded, 1 failed, 130 cancelled).
pub async fn run(args: RunArgs, sandbox: &crate::engine::SandboxSection) -> anyhow::Result<u8> {
    let (_, mut def) = read_definition(&args.file)?;
    let env: BTreeMap<String, String> = std::env::vars().collect();
    def.env.extend(env_overrides(&args.local, &env)?);
    let secrets = secrets_of(&def, args.local.secret_file.as_deref(), &env)?;
    let sandbox = crate::engine::build_sandbox(sandbox)?;
    crate::workflow::run_job_file(&args, def, secrets, sandbox).await
}

/// `job ctl`.
pub async fn ctl(cmd: CtlCommand) -> anyhow::Result<()> {
    let socket = std::env::var("VOIDRUNNER_JOB_SOCKET")
        .unwrap_or_else(|_| "/job/.voidrunner/control.sock".to_owned());
    let token = std::env::var("VOIDRUNNER_JOB_TOKEN")
        .context("VOIDRUNNER_JOB_TOKEN is not set: `job ctl` runs inside a job")?;
    let op = match cmd {
        CtlCommand::RegisterSecret { values } => {
            let values: Vec<String> = if values.iter().any(|v| v == "-") {
                std::io::stdin()
                    .lines()
                    .map_while(Result::ok)
                    .map(|l| l.trim().to_owned())
                    .filter(|l| !l.is_empty())
                    .collect()
            } else {
                values
            };
            serde_json::json!({"op": "register_secret", "values": values})
        }
        CtlCommand::SetOutput { key, value } => {
            serde_json::json!({"op": "set_output", "key": key, "value": value})
        }
        CtlCommand::GetOutput { key } => serde_json::json!({"op": "get_output", "key": key}),
        CtlCommand::Attach { path } => serde_json::json!({"op": "attach_artifact", "path": path}),
        CtlCommand::Trigger {
            name,
            env,
            depends_on,
            condition,
            job_file,
            operation_id,
        } => {
            let mut entry = serde_json::json!({"job_name": name, "depends_on": depends_on});
            let env: BTreeMap<String, String> = parse_pairs(env, "--env")?.into_iter().collect();
            entry["env"] = serde_json::to_value(env)?;
            if let Some(c) = condition {
                entry["condition"] = c.into();
            }
            if let Some(f) = job_file {
                entry["job_file"] = f.into();
            }
            let operation_id = operation_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            serde_json::json!({"op": "trigger_jobs", "payload": {
                "type": "trigger_job", "operation_id": operation_id,
                "trigger_type": "cli", "jobs": [entry],
            }})
        }
        CtlCommand::JobStatus { name } => {
            serde_json::json!({"op": "get_job_result", "job_name": name})
        }
    };
    let answer = voidrunner_jobs::control::request(Path::new(&socket), &token, op)
        .await
        .with_context(|| format!("talking to the job socket {socket}"))?;
    if answer["ok"] != true {
        anyhow::bail!("{}", answer["error"].as_str().unwrap_or("refused"));
    }
    match answer.get("value") {
        Some(serde_json::Value::String(v)) => println!("{v}"),
        Some(serde_json::Value::Null) => anyhow::bail!("no such output"),
        _ => {}
    }
    if let Some(nodes) = answer.get("nodes").and_then(|n| n.as_array()) {
        let dup = if answer["duplicate"] == true {
            " (duplicate: already applied)"
        } else {
            ""
        };
        let names: Vec<&str> = nodes.iter().filter_map(|n| n.as_str()).collect();
        println!("{}{dup}", names.join(" "));
    }
    if answer.get("found").is_some() {
        println!("{}", answer["status"].as_str().unwrap_or("none"));
    }
    Ok(())
}

/// `job submit`: answers the process exit code (0 submitted or succeeded, 1 failed, 130
/// cancelled).
pub async fn submit(args: SubmitArgs) -> anyhow::Result<u8> {
    use base64::Engine as _;
    // Validate locally first: the same rules, every problem at once.
    let (text, def) = read_definition(&args.file)?;
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let mut secrets = secrets_of(&def, args.secret_file.as_deref(), &env)?;
    // Only the secrets the job declares leave this machine (a shared file may hold more).
    secrets.retain(|name, _| def.secrets.contains(name));
    let mut body = serde_json::json!({"definition": text, "secrets": secrets});
    if let Some(t) = &args.tarball {
        let bytes = std::fs::read(t).with_context(|| format!("reading {}", t.display()))?;
        body["tarball_base64"] = base64::engine::general_purpose::STANDARD
            .encode(bytes)
            .into();
    }
    let remote = crate::remote::Remote::new(&args.remote);
    let job = remote
        .call(
            reqwest::Method::POST,
            "/api/v1/jobs",
            Some(&body),
            "submitting the job",
        )
        .await?;
    let id = job["id"]
        .as_str()
        .context("the answer has no job id")?
        .to_owned();
    println!("{id}");
    if !args.wait {
        return Ok(0);
    }
    let mut partial = BTreeMap::new();
    let mut after = 0u64;
    let mut err = std::io::stderr();
    loop {
        let events = remote
            .call(
                reqwest::Method::GET,
                &format!("/api/v1/jobs/{id}/events?after={after}&limit=500"),
                None,
                "reading the job's events",
            )
            .await?;
        let items = events["items"].as_array().cloned().unwrap_or_default();
        for e in &items {
            after = after.max(e["seq"].as_u64().unwrap_or(after));
            let (Some(step), Some(stream)) = (e["step"].as_str(), e["stream"].as_str()) else {
                continue;
            };
            if stream == "stdout" || stream == "stderr" {
                let data = match e["encoding"].as_str() {
                    Some("base64") => base64::engine::general_purpose::STANDARD
                        .decode(e["data"].as_str().unwrap_or(""))
                        .unwrap_or_default(),
                    _ => e["data"].as_str().unwrap_or("").as_bytes().to_vec(),
                };
                let event = JobEvent::Output {
                    step: step.to_owned(),
                    stream: if stream == "stderr" {
                        "stderr"
                    } else {
                        "stdout"
                    },
                    data,
                };
                print_event(&event, &mut partial, &mut err);
            }
        }
        if !items.is_empty() {
            continue;
        }
        let job = remote
            .call(
                reqwest::Method::GET,
                &format!("/api/v1/jobs/{id}"),
                None,
                "reading the job",
            )
            .await?;
        let status = job["status"].as_str().unwrap_or("");
        if !matches!(status, "queued" | "running") {
            for s in job["steps"].as_array().cloned().unwrap_or_default() {
                eprintln!(
                    "{} {}{}",
                    s["name"].as_str().unwrap_or("?"),
                    s["state"].as_str().unwrap_or("?"),
                    s["exit_code"]
                        .as_i64()
                        .map(|c| format!(" (exit {c})"))
                        .unwrap_or_default()
                );
            }
            eprintln!("job {status}");
            return Ok(match status {
                "succeeded" => 0,
                "cancelled" => 130,
                _ => 1,
            });
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

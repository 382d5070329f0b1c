//! `workflow submit`: validates locally, sends the definition with its CI files, variables
//! and the secrets its jobs declare to `POST /api/v1/workflows`, and with `--wait` follows
//! the workflow (node states as they change) to its end.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::{ci_files, dir_of};
use crate::job::{invalid, parse_pairs, read_document, secrets_named};

/// `workflow submit` flags.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// YAML or JSON file; `job_file`s are relative to its directory (the YAML and JSON
    /// files under it are sent as the CI files).
    pub file: PathBuf,
    /// Server base URL, e.g. `http://127.0.0.1:8080`.
    #[arg(long, env = "VOIDRUNNER_SERVER", value_name = "URL")]
    pub server: String,
    /// API key (or access token); prefer the environment variable.
    #[arg(
        long,
        alias = "token",
        env = "VOIDRUNNER_API_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub api_key: String,
    /// Variable override `NAME=VALUE` (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// File of `NAME=VALUE` lines with secret values (`VOIDRUNNER_SECRET_NAME` beats it);
    /// only the secrets the workflow's jobs declare are sent.
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,
    /// Follow the workflow to its end (exit code = result), printing node states.
    #[arg(long)]
    pub wait: bool,
}

fn terminal(status: &str) -> bool {
    matches!(status, "succeeded" | "failed" | "cancelled" | "skipped")
}

/// `workflow submit`: answers the exit code (0 submitted or succeeded, 130 cancelled, 1
/// otherwise).
pub async fn submit(args: SubmitArgs) -> anyhow::Result<u8> {
    let (text, format) = read_document(&args.file)?;
    let def = voidrunner_jobs::workflow::parse_workflow(&text, format)
        .map_err(|p| invalid(&args.file, "workflow", &p))?;
    let files = ci_files(&dir_of(&args.file), true)?;
    let specs = voidrunner_jobs::workflow::instantiate(&def, &files, &BTreeMap::new())
        .map_err(|p| invalid(&args.file, "workflow", &p))?;
    let mut names: Vec<String> = specs
        .iter()
        .flat_map(|s| s.job.secrets.iter().cloned())
        .collect();
    names.sort();
    names.dedup();
    let process_env: BTreeMap<String, String> = std::env::vars().collect();
    let mut secrets = secrets_named(&names, args.secret_file.as_deref(), &process_env)?;
    secrets.retain(|name, _| names.contains(name));
    let vars: BTreeMap<String, String> = parse_pairs(args.vars.iter().cloned(), "--var")?
        .into_iter()
        .collect();
    let body = serde_json::json!({
        "definition": text, "files": files, "vars": vars, "secrets": secrets,
    });
    let base = args.server.trim_end_matches('/');
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{base}/api/v1/workflows"))
        .bearer_auth(&args.api_key)
        .json(&body)
        .send()
        .await
        .context("submitting the workflow")?;
    let status = res.status();
    let answer: serde_json::Value = res.json().await.context("reading the answer")?;
    if !status.is_success() {
        anyhow::bail!("the server refused the workflow ({status}): {answer}");
    }
    let id = answer["id"]
        .as_str()
        .context("the answer has no workflow id")?
        .to_owned();
    println!("{id}");
    if !args.wait {
        return Ok(0);
    }
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut workflow = answer;
    loop {
        for n in workflow["nodes"].as_array().cloned().unwrap_or_default() {
            let name = n["name"].as_str().unwrap_or("?").to_owned();
            let state = n["status"].as_str().unwrap_or("?").to_owned();
            if seen.get(&name) != Some(&state) {
                let mut line = format!("node {name} {state}");
                if let Some(job) = n["job_id"].as_str() {
                    line.push_str(&format!(" (job {job})"));
                }
                if let Some(r) = n["reason"].as_str() {
                    line.push_str(&format!(": {r}"));
                }
                eprintln!("{line}");
                seen.insert(name, state);
            }
        }
        let status = workflow["status"].as_str().unwrap_or("").to_owned();
        if terminal(&status) {
            if let Some(e) = workflow["error"].as_str() {
                eprintln!("error: {e}");
            }
            eprintln!("workflow {status}");
            return Ok(match status.as_str() {
                "succeeded" => 0,
                "cancelled" => 130,
                _ => 1,
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let res = http
            .get(format!("{base}/api/v1/workflows/{id}"))
            .bearer_auth(&args.api_key)
            .send()
            .await
            .context("reading the workflow")?;
        let code = res.status();
        workflow = res.json().await.context("reading the workflow")?;
        if !code.is_success() {
            anyhow::bail!("reading workflow {id} failed ({code}): {workflow}");
        }
    }
}

//! `workflow submit`: validates locally, sends the definition with its CI files, variables
//! and the secrets its jobs declare to `POST /api/v1/workflows`, and with `--wait` follows
//! the workflow (node states as they change) to its end.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::remote::follow;
use super::{ci_files, dir_of};
use crate::job::{invalid, parse_pairs, read_document, secrets_named};
use crate::remote::{Remote, ServerArgs};

/// `workflow submit` flags.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// YAML or JSON file; `job_file`s are relative to its directory (the YAML and JSON
    /// files under it are sent as the CI files).
    pub file: PathBuf,
    /// The server.
    #[command(flatten)]
    pub remote: ServerArgs,
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
    let remote = Remote::new(&args.remote);
    let answer = remote
        .call(
            reqwest::Method::POST,
            "/api/v1/workflows",
            Some(&body),
            "submitting the workflow",
        )
        .await?;
    let id = answer["id"]
        .as_str()
        .context("the answer has no workflow id")?
        .to_owned();
    println!("{id}");
    if !args.wait {
        return Ok(0);
    }
    follow(&remote, &id, answer).await
}

//! Workflows on a server: `workflow list`, `show`, `cancel` and `rerun`, and the follow loop
//! `submit --wait` and `rerun --wait` share (node states as they change, exit code = result).

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Args;
use serde_json::Value;

use crate::remote::{Remote, ServerArgs};

/// `workflow list` flags.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only workflows of this status (`running`, `succeeded`, `failed`, `cancelled`,
    /// `skipped`).
    #[arg(long)]
    pub status: Option<String>,
    /// At most this many, newest first.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// The server.
    #[command(flatten)]
    pub remote: ServerArgs,
}

/// `workflow show|cancel|rerun` flags.
#[derive(Debug, Args)]
pub struct IdArgs {
    /// The workflow's id.
    pub id: String,
    /// `rerun`: follow the workflow to its end (exit code = result).
    #[arg(long)]
    pub wait: bool,
    /// The server.
    #[command(flatten)]
    pub remote: ServerArgs,
}

fn terminal(status: &str) -> bool {
    matches!(status, "succeeded" | "failed" | "cancelled" | "skipped")
}

/// The exit code of a finished workflow: 0 succeeded (or skipped), 130 cancelled, 1 else.
fn exit_code(status: &str) -> u8 {
    match status {
        "succeeded" | "skipped" => 0,
        "cancelled" => 130,
        _ => 1,
    }
}

/// One line per node: name, status, job, reason.
fn node_line(n: &Value) -> String {
    let mut line = format!(
        "node {} {}",
        n["name"].as_str().unwrap_or("?"),
        n["status"].as_str().unwrap_or("?")
    );
    if let Some(job) = n["job_id"].as_str() {
        line.push_str(&format!(" (job {job})"));
    }
    if let Some(r) = n["reason"].as_str() {
        line.push_str(&format!(": {r}"));
    }
    line
}

/// Follows workflow `id` (starting from `workflow`, its last answer) to its end, printing
/// node states as they change on stderr; answers the exit code.
pub(crate) async fn follow(remote: &Remote, id: &str, mut workflow: Value) -> anyhow::Result<u8> {
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    loop {
        for n in workflow["nodes"].as_array().cloned().unwrap_or_default() {
            let name = n["name"].as_str().unwrap_or("?").to_owned();
            let state = n["status"].as_str().unwrap_or("?").to_owned();
            if seen.get(&name) != Some(&state) {
                eprintln!("{}", node_line(&n));
                seen.insert(name, state);
            }
        }
        let status = workflow["status"].as_str().unwrap_or("").to_owned();
        if terminal(&status) {
            if let Some(e) = workflow["error"].as_str() {
                eprintln!("error: {e}");
            }
            eprintln!("workflow {status}");
            return Ok(exit_code(&status));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        workflow = remote
            .call(
                reqwest::Method::GET,
                &format!("/api/v1/workflows/{id}"),
                None,
                "reading the workflow",
            )
            .await?;
    }
}

/// `workflow list`: one line per workflow, newest first.
pub async fn list(args: ListArgs) -> anyhow::Result<u8> {
    let remote = Remote::new(&args.remote);
    let mut path = format!("/api/v1/workflows?limit={}", args.limit);
    if let Some(s) = &args.status {
        path.push_str(&format!("&status={s}"));
    }
    let page = remote
        .call(reqwest::Method::GET, &path, None, "listing workflows")
        .await?;
    for w in page["items"].as_array().cloned().unwrap_or_default() {
        println!(
            "{}  {:<9}  run {}  {}  {}",
            w["id"].as_str().unwrap_or("?"),
            w["status"].as_str().unwrap_or("?"),
            w["run"],
            w["created_at"].as_str().unwrap_or(""),
            w["name"].as_str().unwrap_or("?"),
        );
    }
    Ok(0)
}

/// `workflow show`: the workflow, its nodes, outputs and error; the exit code says its
/// status (as `--wait` would, 2 while running).
pub async fn show(args: IdArgs) -> anyhow::Result<u8> {
    let remote = Remote::new(&args.remote);
    let w = remote
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/workflows/{}", args.id),
            None,
            "reading the workflow",
        )
        .await?;
    let status = w["status"].as_str().unwrap_or("?");
    println!(
        "workflow {} {} {status} (run {})",
        w["id"].as_str().unwrap_or("?"),
        w["name"].as_str().unwrap_or("?"),
        w["run"]
    );
    for n in w["nodes"].as_array().cloned().unwrap_or_default() {
        println!("{}", node_line(&n));
    }
    for (k, v) in w["outputs"].as_object().cloned().unwrap_or_default() {
        println!("output {k}={}", v.as_str().unwrap_or(""));
    }
    if let Some(e) = w["error"].as_str() {
        println!("error: {e}");
    }
    Ok(if terminal(status) {
        exit_code(status)
    } else {
        2
    })
}

/// `workflow cancel`: asks the server to cancel; prints the status it answered.
pub async fn cancel(args: IdArgs) -> anyhow::Result<u8> {
    let remote = Remote::new(&args.remote);
    let w = remote
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/workflows/{}/cancel", args.id),
            None,
            "cancelling the workflow",
        )
        .await?;
    println!(
        "workflow {} {}",
        args.id,
        w["status"].as_str().unwrap_or("?")
    );
    Ok(0)
}

/// `workflow rerun`: re-runs the failed and skipped nodes of a failed or cancelled workflow;
/// with `--wait`, follows it to its end.
pub async fn rerun(args: IdArgs) -> anyhow::Result<u8> {
    let remote = Remote::new(&args.remote);
    let w = remote
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/workflows/{}/rerun", args.id),
            None,
            "re-running the workflow",
        )
        .await?;
    println!("workflow {} run {}", args.id, w["run"]);
    if !args.wait {
        return Ok(0);
    }
    follow(&remote, &args.id, w).await
}

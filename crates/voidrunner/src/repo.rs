//! `voidrunner repo …`: the git repositories of a server whose events start workflows
//! (`/api/v1/repositories`, see `docs/GIT.md`): register, list, show, rotate secrets, delete,
//! and the recorded hook deliveries.
//!
//! Secrets never come from a plain flag value (it would land in the shell history and in
//! `ps`): the webhook secret is read from a file (`-` for stdin) or an environment variable,
//! job secrets from a `NAME=VALUE` file or `VOIDRUNNER_SECRET_<NAME>`. The server never
//! answers them and nothing here prints them: a secret shows as "set".

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::remote::{Remote, ServerArgs};

mod output;
mod secrets;

/// `repo` subcommands.
#[derive(Debug, Subcommand)]
pub enum RepoCommand {
    /// Register a repository: its signed events (`POST /api/v1/hooks/<provider>`) start the
    /// workflows of its CI directory.
    Add(AddArgs),
    /// List your repositories (admins: every repository), by full name.
    List(ListArgs),
    /// Show a repository's settings (secrets only as names).
    Show(TargetArgs),
    /// Rotate the webhook secret and set or remove job secrets.
    Update(UpdateArgs),
    /// Unregister a repository (its deliveries go with it; its workflows stay).
    Delete(DeleteArgs),
    /// The repository's recent hook deliveries, newest first: event, ref, outcome and the
    /// workflows each started.
    Deliveries(DeliveriesArgs),
}

/// Output flags shared by every `repo` command.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Print the server's JSON answer instead of the human view.
    #[arg(long)]
    pub json: bool,
    /// The server.
    #[command(flatten)]
    pub remote: ServerArgs,
}

/// Where a webhook secret comes from (never a plain flag value).
#[derive(Debug, Args)]
pub struct WebhookSecretArgs {
    /// Read the webhook secret from FILE (`-`: stdin); one trailing newline is dropped.
    #[arg(long, value_name = "FILE", conflicts_with = "webhook_secret_env")]
    pub webhook_secret_file: Option<PathBuf>,
    /// Read the webhook secret from the environment variable VAR (`add` reads
    /// `VOIDRUNNER_WEBHOOK_SECRET` when neither flag is given).
    #[arg(long, value_name = "VAR")]
    pub webhook_secret_env: Option<String>,
}

/// Where job secrets come from.
#[derive(Debug, Args)]
pub struct JobSecretArgs {
    /// File of `NAME=VALUE` lines with job secret values.
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,
    /// A job secret whose value is the environment variable `VOIDRUNNER_SECRET_<NAME>`
    /// (repeatable; beats `--secret-file`).
    #[arg(long = "secret", value_name = "NAME")]
    pub secrets: Vec<String>,
}

/// `repo add` flags.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// `github` or `gitlab`.
    pub provider: String,
    /// `owner/name` as the host writes it in payloads (GitLab: `path_with_namespace`).
    pub full_name: String,
    /// Where the server clones from (https or ssh; `file` only where the operator allows it).
    pub clone_url: String,
    /// The CI directory in the repository (server default `.voidrunner`).
    #[arg(long, value_name = "DIR")]
    pub ci_dir: Option<String>,
    /// Give the job secrets to pull requests from forks too (default: no).
    #[arg(long)]
    pub fork_secrets: bool,
    /// Report commit statuses to this API base URL (e.g. `https://api.github.com`); the token
    /// comes from `--status-token-file` or `VOIDRUNNER_STATUS_TOKEN`.
    #[arg(long, value_name = "URL")]
    pub status_api_url: Option<String>,
    /// Read the status reporting token from FILE (`-`: stdin).
    #[arg(long, value_name = "FILE", requires = "status_api_url")]
    pub status_token_file: Option<PathBuf>,
    /// The webhook secret.
    #[command(flatten)]
    pub webhook: WebhookSecretArgs,
    /// Job secrets.
    #[command(flatten)]
    pub job_secrets: JobSecretArgs,
    /// Output and server.
    #[command(flatten)]
    pub out: OutputArgs,
}

/// `repo list` flags.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output and server.
    #[command(flatten)]
    pub out: OutputArgs,
}

/// `repo show` flags.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// The repository: its id, or its full name (`owner/name`, with `--provider` when both
    /// hosts have one of that name).
    pub repo: String,
    /// `github` or `gitlab`, to pick a repository by full name.
    #[arg(long)]
    pub provider: Option<String>,
    /// Output and server.
    #[command(flatten)]
    pub out: OutputArgs,
}

/// `repo update` flags.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The repository.
    #[command(flatten)]
    pub target: TargetArgs,
    /// A new webhook secret (nothing given: unchanged).
    #[command(flatten)]
    pub webhook: WebhookSecretArgs,
    /// Job secrets to set.
    #[command(flatten)]
    pub job_secrets: JobSecretArgs,
    /// Remove this job secret (repeatable).
    #[arg(long = "remove-secret", value_name = "NAME")]
    pub remove: Vec<String>,
}

/// `repo delete` flags.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The repository.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Delete without asking (needed when stdin is not a terminal).
    #[arg(long)]
    pub yes: bool,
}

/// `repo deliveries` flags.
#[derive(Debug, Args)]
pub struct DeliveriesArgs {
    /// The repository.
    #[command(flatten)]
    pub target: TargetArgs,
    /// At most this many, newest first (server maximum 200).
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
}

/// Runs a `repo` command; answers the exit code.
pub async fn run(cmd: RepoCommand) -> anyhow::Result<u8> {
    match cmd {
        RepoCommand::Add(args) => add(args).await,
        RepoCommand::List(args) => list(args).await,
        RepoCommand::Show(args) => show(args).await,
        RepoCommand::Update(args) => update(args).await,
        RepoCommand::Delete(args) => delete(args).await,
        RepoCommand::Deliveries(args) => deliveries(args).await,
    }
}

/// Prints `answer` as JSON, or with `human`.
fn print(json: bool, answer: &Value, human: impl FnOnce(&Value) -> String) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(answer)?);
    } else {
        print!("{}", human(answer));
    }
    Ok(())
}

async fn add(args: AddArgs) -> anyhow::Result<u8> {
    let stdin = |f: &Option<PathBuf>| f.as_deref() == Some(std::path::Path::new("-"));
    if stdin(&args.webhook.webhook_secret_file) && stdin(&args.status_token_file) {
        anyhow::bail!("only one secret can come from stdin: give the status token as a file");
    }
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let webhook = secrets::webhook_secret(&args.webhook, &env, true)?
        .ok_or_else(|| anyhow::anyhow!("no webhook secret"))?;
    let job_secrets = secrets::job_secrets(&args.job_secrets, &env)?;
    let mut body = json!({
        "provider": args.provider,
        "full_name": args.full_name,
        "clone_url": args.clone_url,
        "webhook_secret": webhook,
    });
    if let Some(dir) = &args.ci_dir {
        body["ci_dir"] = json!(dir);
    }
    if args.fork_secrets {
        body["fork_secrets"] = json!(true);
    }
    if !job_secrets.is_empty() {
        body["secrets"] = json!(job_secrets);
    }
    if let Some(url) = &args.status_api_url {
        let token = secrets::status_token(args.status_token_file.as_deref(), &env)?;
        body["status_reporting"] = json!({"api_url": url, "token": token});
    }
    let remote = Remote::new(&args.out.remote);
    let repo = remote
        .call(
            reqwest::Method::POST,
            "/api/v1/repositories",
            Some(&body),
            "registering the repository",
        )
        .await?;
    print(args.out.json, &repo, |r| {
        format!(
            "registered {}\n{}",
            r["full_name"].as_str().unwrap_or("?"),
            output::repository(r)
        )
    })?;
    Ok(0)
}

async fn list(args: ListArgs) -> anyhow::Result<u8> {
    let remote = Remote::new(&args.out.remote);
    let page = list_all(&remote).await?;
    print(args.out.json, &page, output::repository_table)?;
    Ok(0)
}

async fn list_all(remote: &Remote) -> anyhow::Result<Value> {
    remote
        .call(
            reqwest::Method::GET,
            "/api/v1/repositories",
            None,
            "listing repositories",
        )
        .await
}

/// The id of the repository `target` names (an id as is; a full name looked up).
async fn resolve(remote: &Remote, target: &TargetArgs) -> anyhow::Result<String> {
    if uuid::Uuid::parse_str(&target.repo).is_ok() {
        return Ok(target.repo.clone());
    }
    let page = list_all(remote).await?;
    let items = page["items"].as_array().cloned().unwrap_or_default();
    let found: Vec<&Value> = items
        .iter()
        .filter(|r| r["full_name"] == target.repo.as_str())
        .filter(|r| {
            target
                .provider
                .as_deref()
                .is_none_or(|p| r["provider"] == p)
        })
        .collect();
    match found.as_slice() {
        [one] => Ok(one["id"].as_str().unwrap_or_default().to_owned()),
        [] => anyhow::bail!("no repository named {}", target.repo),
        _ => anyhow::bail!(
            "{} is registered for several providers: add --provider",
            target.repo
        ),
    }
}

async fn show(args: TargetArgs) -> anyhow::Result<u8> {
    let remote = Remote::new(&args.out.remote);
    let id = resolve(&remote, &args).await?;
    let repo = remote
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/repositories/{id}"),
            None,
            "reading the repository",
        )
        .await?;
    print(args.out.json, &repo, output::repository)?;
    Ok(0)
}

async fn update(args: UpdateArgs) -> anyhow::Result<u8> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let webhook = secrets::webhook_secret(&args.webhook, &env, false)?;
    let mut change: BTreeMap<String, Value> = secrets::job_secrets(&args.job_secrets, &env)?
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    for name in &args.remove {
        if change.insert(name.clone(), Value::Null).is_some() {
            anyhow::bail!("job secret {name} is both set and removed");
        }
    }
    if webhook.is_none() && change.is_empty() {
        anyhow::bail!(
            "nothing to change: give --webhook-secret-file/--webhook-secret-env, --secret-file, --secret or --remove-secret"
        );
    }
    let mut body = json!({"secrets": change});
    if let Some(w) = webhook {
        body["webhook_secret"] = json!(w);
    }
    let remote = Remote::new(&args.target.out.remote);
    let id = resolve(&remote, &args.target).await?;
    let repo = remote
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/repositories/{id}/secrets"),
            Some(&body),
            "updating the repository's secrets",
        )
        .await?;
    print(args.target.out.json, &repo, |r| {
        format!(
            "updated {}\n{}",
            r["full_name"].as_str().unwrap_or("?"),
            output::repository(r)
        )
    })?;
    Ok(0)
}

async fn delete(args: DeleteArgs) -> anyhow::Result<u8> {
    let remote = Remote::new(&args.target.out.remote);
    let id = resolve(&remote, &args.target).await?;
    if !args.yes && !secrets::confirm(&format!("delete repository {}?", args.target.repo))? {
        eprintln!("not deleted");
        return Ok(1);
    }
    remote
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/repositories/{id}"),
            None,
            "deleting the repository",
        )
        .await?;
    if args.target.out.json {
        println!("{}", json!({"deleted": id}));
    } else {
        println!("deleted repository {} ({id})", args.target.repo);
    }
    Ok(0)
}

async fn deliveries(args: DeliveriesArgs) -> anyhow::Result<u8> {
    let remote = Remote::new(&args.target.out.remote);
    let id = resolve(&remote, &args.target).await?;
    let page = remote
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/repositories/{id}/deliveries?limit={}", args.limit),
            None,
            "listing deliveries",
        )
        .await?;
    print(args.target.out.json, &page, output::delivery_table)?;
    Ok(0)
}

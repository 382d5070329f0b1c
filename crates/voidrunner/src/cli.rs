//! Command-line interface. Flags are the top configuration layer; see [`crate::config`].

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use toml::Value;

use crate::config::LogFormat;

/// VoidRunner: run untrusted code safely and fast.
#[derive(Debug, Parser)]
#[command(name = "voidrunner", version, about, propagate_version = true)]
pub struct Cli {
    /// TOML configuration file (see `voidrunner config example`).
    #[arg(long, global = true, env = "VOIDRUNNER_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log format (overrides `log.format`).
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log filter, e.g. `debug` (overrides `log.level`).
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API with an embedded worker pool (`--workers 0` for an API-only node).
    Serve(StoreArgs),
    /// Run a standalone worker node (no HTTP API), normally against PostgreSQL.
    Worker(StoreArgs),
    /// Apply database migrations and exit.
    Migrate(StoreArgs),
    /// Configuration helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Report what this host supports (namespaces, cgroups, seccomp, runtimes).
    Doctor,
    /// Print the API's OpenAPI 3.1 document (JSON) without starting a server; the web UI
    /// generates its TypeScript types from it.
    Openapi,
    /// CI jobs: validate a definition, run one locally (no server), talk to the job socket.
    #[command(subcommand)]
    Job(crate::job::JobCommand),
    /// Workflows (graphs of jobs): validate, run locally (no server), submit to a server.
    #[command(subcommand)]
    Workflow(crate::workflow::WorkflowCommand),
    /// Git repositories of a server whose events start workflows: add, list, show, update
    /// secrets, delete, and their hook deliveries.
    #[command(subcommand)]
    Repo(crate::repo::RepoCommand),
}

/// `config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print a commented example configuration file.
    Example,
    /// Print the effective configuration after all layers (secrets redacted).
    Show(StoreArgs),
}

/// Flags shared by commands that open the store.
#[derive(Debug, Args, Default)]
pub struct StoreArgs {
    /// Listen address (overrides `server.listen`).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Store URL: `postgres://…` or `sqlite://path` (overrides `store.url`; also
    /// `VOIDRUNNER_DATABASE_URL`).
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// Data directory (overrides `server.data_dir`).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Concurrent executions of this node's worker pool; 0 = no pool (overrides
    /// `worker.concurrency`; default: number of cores).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
}

impl Cli {
    /// The flags that were given, as dotted configuration keys.
    pub fn flag_layer(&self) -> Vec<(&'static str, Value)> {
        let mut flags = Vec::new();
        if let Some(f) = self.log_format {
            let name = match f {
                LogFormat::Text => "text",
                LogFormat::Pretty => "pretty",
                LogFormat::Json => "json",
            };
            flags.push(("log.format", Value::String(name.into())));
        }
        if let Some(l) = &self.log_level {
            flags.push(("log.level", Value::String(l.clone())));
        }
        let store_args = match &self.command {
            Command::Serve(a)
            | Command::Worker(a)
            | Command::Migrate(a)
            | Command::Config(ConfigCommand::Show(a)) => Some(a),
            _ => None,
        };
        if let Some(a) = store_args {
            if let Some(l) = a.listen {
                flags.push(("server.listen", Value::String(l.to_string())));
            }
            if let Some(s) = &a.store {
                flags.push(("store.url", Value::String(s.clone())));
            }
            if let Some(d) = &a.data_dir {
                flags.push(("server.data_dir", Value::String(d.display().to_string())));
            }
            if let Some(n) = a.workers {
                let n = i64::try_from(n).unwrap_or(i64::MAX);
                flags.push(("worker.concurrency", Value::Integer(n)));
            }
        }
        flags
    }
}

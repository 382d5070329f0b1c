//! The `voidrunner` binary: parses flags, loads configuration, initialises tracing and hands
//! over to the library crates. Kept thin on purpose.

mod cli;
mod config;
mod doctor;
mod engine;
mod job;
mod remote;
mod repo;
mod secret;
mod serve;
mod telemetry;
mod workflow;

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use voidrunner_exec::LanguageRegistry;

use cli::{Cli, Command, ConfigCommand};

/// Hidden subcommand that runs the sandbox helper. Checked before anything else so the helper
/// process stays single-threaded (no async runtime, no logging threads).
const SANDBOX_HELPER: &str = "__sandbox-helper";

fn main() -> std::process::ExitCode {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == SANDBOX_HELPER)
    {
        let code = voidrunner_sandbox::helper_main();
        return std::process::ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("voidrunner: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Config(ConfigCommand::Example) = cli.command {
        print!("{}", config::EXAMPLE);
        return Ok(());
    }
    if let Command::Openapi = cli.command {
        println!("{}", voidrunner_api::openapi().to_pretty_json()?);
        return Ok(());
    }
    if let Command::Job(job::JobCommand::Validate { file }) = &cli.command {
        return job::validate(file);
    }
    if let Command::Workflow(workflow::WorkflowCommand::Validate { file }) = &cli.command {
        return workflow::validate(file);
    }
    if let Command::Workflow(
        workflow::WorkflowCommand::Submit(_)
        | workflow::WorkflowCommand::List(_)
        | workflow::WorkflowCommand::Show(_)
        | workflow::WorkflowCommand::Cancel(_)
        | workflow::WorkflowCommand::Rerun(_),
    ) = &cli.command
    {
        use workflow::{WorkflowCommand as W, remote};
        let Command::Workflow(cmd) = cli.command else {
            return Ok(());
        };
        let rt = runtime()?;
        let code = match cmd {
            W::Submit(args) => rt.block_on(workflow::submit::submit(args))?,
            W::List(args) => rt.block_on(remote::list(args))?,
            W::Show(args) => rt.block_on(remote::show(args))?,
            W::Cancel(args) => rt.block_on(remote::cancel(args))?,
            W::Rerun(args) => rt.block_on(remote::rerun(args))?,
            W::Validate { .. } | W::Run(_) => 0,
        };
        if code != 0 {
            std::process::exit(i32::from(code));
        }
        return Ok(());
    }
    if let Command::Repo(_) = &cli.command {
        let Command::Repo(cmd) = cli.command else {
            return Ok(());
        };
        let code = runtime()?.block_on(repo::run(cmd))?;
        if code != 0 {
            std::process::exit(i32::from(code));
        }
        return Ok(());
    }
    if let Command::Job(job::JobCommand::Submit(_)) = &cli.command {
        let Command::Job(job::JobCommand::Submit(args)) = cli.command else {
            return Ok(());
        };
        let code = runtime()?.block_on(job::submit(args))?;
        if code != 0 {
            std::process::exit(i32::from(code));
        }
        return Ok(());
    }
    if let Command::Job(job::JobCommand::Ctl(_)) = &cli.command {
        let Command::Job(job::JobCommand::Ctl(cmd)) = cli.command else {
            return Ok(());
        };
        return runtime()?.block_on(job::ctl(cmd));
    }
    let layers = config::Layers {
        file: cli.config.clone(),
        env: std::env::vars().collect(),
        flags: cli.flag_layer(),
    };
    let cfg = config::load(&layers)?;
    let _telemetry = telemetry::init(&cfg.log)?;
    let registry = match &cfg.languages.file {
        Some(path) => LanguageRegistry::with_overrides(path)?,
        None => LanguageRegistry::builtin(),
    };
    match cli.command {
        Command::Config(ConfigCommand::Show(_)) => {
            println!("{cfg:#?}");
            Ok(())
        }
        Command::Config(ConfigCommand::Example) | Command::Openapi => Ok(()),
        Command::Job(job::JobCommand::Run(args)) => {
            let code = runtime()?.block_on(job::run(args, &cfg.sandbox))?;
            if code != 0 {
                std::process::exit(i32::from(code));
            }
            Ok(())
        }
        Command::Workflow(workflow::WorkflowCommand::Run(args)) => {
            let code = runtime()?.block_on(workflow::run(args, &cfg.sandbox))?;
            if code != 0 {
                std::process::exit(i32::from(code));
            }
            Ok(())
        }
        Command::Job(_) | Command::Workflow(_) | Command::Repo(_) => Ok(()),
        Command::Doctor => runtime()?.block_on(doctor::run(&registry, &cfg)),
        Command::Migrate(_) => runtime()?.block_on(serve::migrate(&cfg)),
        Command::Serve(_) => {
            serve::ensure_data_dir(&cfg.server.data_dir)?;
            runtime()?.block_on(async {
                let shutdown = serve::shutdown_signal()?;
                serve::serve(cfg, Arc::new(registry), shutdown).await
            })
        }
        Command::Worker(_) => runtime()?.block_on(async {
            let shutdown = serve::shutdown_signal()?;
            serve::worker(cfg, Arc::new(registry), shutdown).await
        }),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("starting the async runtime")
}

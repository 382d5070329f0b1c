//! The `voidrunner` binary: parses flags, loads configuration, initialises tracing and hands
//! over to the library crates. Kept thin on purpose.

mod cli;
mod config;
mod secret;
mod telemetry;

use anyhow::Context;
use clap::Parser;

use cli::{Cli, Command, ConfigCommand};

fn main() -> std::process::ExitCode {
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
    let layers = config::Layers {
        file: cli.config.clone(),
        env: std::env::vars().collect(),
        flags: cli.flag_layer(),
    };
    let cfg = config::load(&layers)?;
    telemetry::init(&cfg.log)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    match cli.command {
        Command::Config(ConfigCommand::Show(_)) => {
            println!("{cfg:#?}");
            Ok(())
        }
        Command::Config(ConfigCommand::Example) => Ok(()),
        Command::Serve(_) | Command::Migrate(_) | Command::Doctor => {
            runtime.block_on(async { anyhow::bail!("not wired yet") })
        }
    }
}

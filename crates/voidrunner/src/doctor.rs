//! `voidrunner doctor`: what this host can guarantee, in plain words.

use voidrunner_exec::{Availability, LanguageRegistry};

use crate::engine::DockerSection;
use voidrunner_sandbox::{CgroupVersion, HelperCommand, Mode, Sandbox, SandboxConfig};

/// Prints the host report, the sandbox mode, the language runtimes and the Docker engine.
/// Fails (exit 1) when the sandbox cannot provide full isolation, or when Docker is enabled but
/// unreachable, so scripts can gate on it.
pub async fn run(registry: &LanguageRegistry, docker: &DockerSection) -> anyhow::Result<()> {
    println!("== host\n{}", Sandbox::host_report());
    let helper = HelperCommand::current_exe()?;
    let full = match Sandbox::new(SandboxConfig::new(helper)) {
        Ok(sandbox) => match sandbox.mode() {
            Mode::Full { cgroup } => {
                let v = match cgroup {
                    CgroupVersion::V1 => "v1",
                    CgroupVersion::V2 => "v2",
                };
                println!("== sandbox\nmode: full (cgroup {v} enforces memory, pids and CPU)");
                true
            }
            Mode::Degraded { reason } => {
                println!("== sandbox\nmode: DEGRADED, rlimits only: {reason}");
                false
            }
        },
        Err(e) => {
            println!("== sandbox\nunavailable: {e}");
            false
        }
    };
    println!("== languages");
    for (lang, availability) in registry.report() {
        match availability {
            Availability::Available { version } => println!("{:<12} {version}", lang.name),
            Availability::Unavailable { reason } => {
                println!("{:<12} unavailable: {reason}", lang.name);
            }
        }
    }
    let report = voidrunner_exec::doctor_report(registry, &docker.socket).await;
    let enabled = if docker.enabled {
        "enabled"
    } else {
        "disabled in [docker]"
    };
    println!("== docker ({enabled})\n{report}");
    if docker.enabled && report.engine.is_err() {
        anyhow::bail!(
            "docker.enabled is set but the Docker engine at {} does not answer",
            docker.socket
        );
    }
    if full {
        println!("\nall isolation guarantees hold on this host");
        Ok(())
    } else {
        anyhow::bail!("the sandbox cannot give full isolation on this host (see above)")
    }
}

//! `voidrunner doctor`: what this host can guarantee, in plain words.

use voidrunner_exec::{Availability, LanguageRegistry};
use voidrunner_sandbox::{CgroupVersion, HelperCommand, Mode, Sandbox, SandboxConfig};

/// Prints the host report, the sandbox mode and the language runtimes. Fails (exit 1) when the
/// sandbox cannot provide full isolation, so scripts can gate on it.
pub fn run(registry: &LanguageRegistry) -> anyhow::Result<()> {
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
    if full {
        println!("\nall isolation guarantees hold on this host");
        Ok(())
    } else {
        anyhow::bail!("the sandbox cannot give full isolation on this host (see above)")
    }
}

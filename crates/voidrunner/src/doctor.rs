//! `voidrunner doctor`: what this host can guarantee, in plain words.

use voidrunner_exec::{Availability, LanguageRegistry};

use crate::config::Config;
use voidrunner_sandbox::{CgroupVersion, HelperCommand, Mode, Sandbox, SandboxConfig};

/// Prints the host report, the sandbox mode, the language runtimes, the Docker engine, and
/// what CI jobs and git events need (git, the mirror directory). Fails (exit 1) when the
/// sandbox cannot provide full isolation, or when Docker is enabled but unreachable, so
/// scripts can gate on it; a missing git is reported, not fatal (jobs from tarballs still run).
pub async fn run(registry: &LanguageRegistry, cfg: &Config) -> anyhow::Result<()> {
    let docker = &cfg.docker;
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
    println!("== CI jobs and git events\n{}", ci_report(cfg));
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

/// The job worker's settings, the `git` that sources and git events run (found the way they
/// find it: the fixed `PATH` of a cleared environment), and whether the hook's mirror
/// directory can be written.
fn ci_report(cfg: &Config) -> String {
    let jobs = &cfg.jobs;
    let mut out = Vec::new();
    if jobs.concurrency == 0 {
        out.push("job worker: disabled ([jobs] concurrency = 0)".to_owned());
    } else {
        let per_user = match jobs.per_user_concurrency {
            0 => "no per-user limit".to_owned(),
            n => format!("at most {n} per user"),
        };
        out.push(format!(
            "job worker: {} jobs at once on this node, {per_user}; git protocols {:?}",
            jobs.concurrency, jobs.git_protocols
        ));
    }
    let git = std::process::Command::new("git")
        .arg("--version")
        .env_clear()
        .env("PATH", voidrunner_jobs::source::GIT_PATH)
        .output();
    out.push(match git {
        Ok(o) if o.status.success() => {
            format!("git: {}", String::from_utf8_lossy(&o.stdout).trim())
        }
        Ok(o) => format!(
            "git: UNUSABLE ({}): git sources and git events fail",
            o.status
        ),
        Err(e) => format!("git: NOT FOUND ({e}): git sources and git events fail"),
    });
    let mirrors = cfg
        .hooks
        .mirror_dir
        .clone()
        .unwrap_or_else(|| cfg.server.data_dir.join("git-mirrors"));
    // Probed where `serve` would create it: in the directory, or its nearest existing
    // ancestor when it does not exist yet (the doctor creates nothing).
    let existing = mirrors
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(std::path::Path::new("."));
    let probe = existing.join(format!(".voidrunner-doctor-{}", std::process::id()));
    let writable = if existing.is_dir() {
        std::fs::write(&probe, b"probe").and_then(|()| std::fs::remove_file(&probe))
    } else {
        Err(std::io::Error::other(format!(
            "{} is not a directory",
            existing.display()
        )))
    };
    out.push(match writable {
        Ok(()) => format!("git mirrors: {} (writable)", mirrors.display()),
        Err(e) => format!(
            "git mirrors: {} NOT WRITABLE ({e}): git events fail",
            mirrors.display()
        ),
    });
    out.join("\n")
}

//! Linux sandbox for untrusted programs.
//!
//! Every run gets new user, PID, mount, network, IPC, UTS and cgroup namespaces, a
//! `pivot_root` into a fresh read-only root, an unprivileged uid without capabilities,
//! `no_new_privs`, a seccomp deny list, Landlock (when the kernel has it), cgroup limits
//! (v2 or v1, detected at start; explicit degraded mode without them) and rlimits.
//!
//! The async service never forks a sandbox itself: [`Sandbox::run`] starts a small
//! single-threaded helper process ([`helper_main`], normally the binary's hidden
//! `__sandbox-helper` subcommand) that builds the sandbox, supervises the program and
//! streams its output back. See `docs/SECURITY.md` for the threat model.
#![expect(
    unsafe_code,
    reason = "the sandbox must call clone, mount, pivot_root, seccomp and landlock syscalls; \
              every unsafe block carries a SAFETY comment"
)]

mod cgroup;
mod config;
mod error;
mod helper;
mod host;
mod limits;
mod protocol;
mod run;
mod sandbox;
mod sys;
mod workspace;

pub use config::{HelperCommand, SandboxConfig};
pub use error::SandboxError;
pub use helper::helper_main;
pub use host::HostReport;
pub use limits::Limits;
pub use protocol::{OutputChunk, RunResult, SandboxVerdict, Stream, UsageSample};
pub use run::RunSpec;
pub use sandbox::{CgroupVersion, Mode, Sandbox};
pub use workspace::Workspace;

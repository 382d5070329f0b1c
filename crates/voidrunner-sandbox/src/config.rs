//! Operator configuration of the sandbox.

use crate::limits::Limits;
use std::path::PathBuf;

/// How to start the single-threaded helper process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelperCommand {
    /// Program to execute (normally the `voidrunner` binary itself).
    pub program: PathBuf,
    /// Leading arguments (normally `["__sandbox-helper"]`).
    pub args: Vec<String>,
}

impl HelperCommand {
    /// The current executable with the hidden `__sandbox-helper` subcommand, which is how the
    /// `voidrunner` binary ships the helper.
    pub fn current_exe() -> std::io::Result<Self> {
        Ok(Self {
            program: std::env::current_exe()?,
            args: vec!["__sandbox-helper".to_owned()],
        })
    }
}

/// Operator settings, built once at start. Nothing here can turn isolation off.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// How to start the helper process.
    pub helper: HelperCommand,
    /// Host uid that sandboxed programs run as (also their uid inside the sandbox).
    pub uid: u32,
    /// Host gid that sandboxed programs run as.
    pub gid: u32,
    /// Host paths bound read-only at the same place (symlinks are recreated as symlinks).
    pub ro_binds: Vec<PathBuf>,
    /// Entries of the host `/etc` made visible read-only (never shadow, ssl/private, …).
    pub etc_files: Vec<String>,
    /// Name of the sandbox subtree in each cgroup hierarchy.
    pub cgroup_parent: String,
    /// Private (0700) directory for workspaces and the per-run root mount point.
    pub workspace_root: PathBuf,
    /// Hard maxima: requested limits above these are clamped.
    pub max: Limits,
}

impl SandboxConfig {
    /// Safe defaults: helper = current executable, uid/gid 65534, `/usr /bin /lib /lib64 /sbin`,
    /// a minimal `/etc`, cgroup subtree `voidrunner`, workspaces under `/run/voidrunner`.
    pub fn new(helper: HelperCommand) -> Self {
        Self {
            helper,
            uid: 65534,
            gid: 65534,
            ro_binds: [
                "/usr", "/bin", "/lib", "/lib32", "/lib64", "/libx32", "/sbin",
            ]
            .into_iter()
            .map(PathBuf::from)
            .collect(),
            etc_files: [
                "ld.so.cache",
                "ld.so.conf",
                "ld.so.conf.d",
                "alternatives",
                "ssl/certs",
                "ssl/openssl.cnf",
                "localtime",
                "nsswitch.conf",
            ]
            .into_iter()
            .map(str::to_owned)
            .collect(),
            cgroup_parent: "voidrunner".to_owned(),
            workspace_root: PathBuf::from("/run/voidrunner"),
            max: Limits::default_max(),
        }
    }
}

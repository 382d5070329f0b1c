//! [`Sandbox`]: detected host capabilities plus configuration; entry point for runs.

use crate::cgroup;
use crate::config::SandboxConfig;
use crate::error::SandboxError;
use crate::host::HostReport;
use crate::protocol::{CgroupPlan, RootEntry};
use crate::workspace::Workspace;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Numbers workspaces process-wide: two `Sandbox` values in one process must never pick the
/// same `ws-<pid>-<n>` directory.
static WORKSPACE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Cgroup version in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// Legacy per-controller hierarchies.
    V1,
    /// Unified hierarchy.
    V2,
}

/// What the sandbox can enforce on this host. Never silent: degraded mode says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Namespaces, seccomp, rlimits and cgroup limits (memory, pids, cpu).
    Full {
        /// Which cgroup backend enforces the limits.
        cgroup: CgroupVersion,
    },
    /// No writable cgroup hierarchy: memory and process limits are rlimits only
    /// (RLIMIT_AS / RLIMIT_NPROC), no OOM detection, no CPU quota, no peak memory.
    Degraded {
        /// Why cgroups cannot be used.
        reason: String,
    },
}

/// The sandbox: create once at start, share (`Arc`) between workers.
#[derive(Debug)]
pub struct Sandbox {
    pub(crate) config: SandboxConfig,
    pub(crate) mode: Mode,
    pub(crate) cgroup: CgroupPlan,
    pub(crate) root: Vec<RootEntry>,
    pub(crate) root_mount: PathBuf,
    pub(crate) landlock: bool,
    pub(crate) helpers: std::sync::Mutex<Vec<crate::run::HelperProc>>,
}

impl Sandbox {
    /// Checks privileges, prepares the private directory and detects cgroup v1/v2/none.
    pub fn new(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        if crate::sys::geteuid() != 0 {
            return Err(SandboxError::Invalid(
                "the sandbox needs root (it creates mount/pid/net namespaces and cgroups, then drops to an unprivileged uid)".into(),
            ));
        }
        if config.uid == 0 || config.gid == 0 {
            return Err(SandboxError::Invalid(
                "sandboxed programs must not run as uid or gid 0".into(),
            ));
        }
        let cg = &config.cgroup_parent;
        if cg.is_empty() || cg.contains('/') || cg.starts_with('.') {
            return Err(SandboxError::Invalid(format!(
                "cgroup_parent {cg:?} must be a plain directory name"
            )));
        }
        for name in &config.etc_files {
            let p = Path::new(name);
            if p.is_absolute() || p.components().any(|c| !matches!(c, Component::Normal(_))) {
                return Err(SandboxError::Invalid(format!(
                    "etc entry {name:?} must be a plain relative path"
                )));
            }
            if ["shadow", "gshadow", "sudoers", "ssh", "ssl/private"]
                .iter()
                .any(|bad| name.starts_with(bad))
            {
                return Err(SandboxError::Invalid(format!(
                    "etc entry {name:?} is secret and is never exposed"
                )));
            }
        }
        let ws = &config.workspace_root;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(ws)
            .map_err(|e| SandboxError::file("mkdir", ws, e))?;
        std::fs::set_permissions(ws, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| SandboxError::file("chmod", ws, e))?;
        let root_mount = ws.join(".root");
        match std::fs::create_dir(&root_mount) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(SandboxError::file("mkdir", root_mount, e));
            }
            _ => {}
        }
        let (mode, cgroup) = match cgroup::detect(&config.cgroup_parent) {
            Ok(plan @ CgroupPlan::V1 { .. }) => (
                Mode::Full {
                    cgroup: CgroupVersion::V1,
                },
                plan,
            ),
            Ok(plan @ CgroupPlan::V2 { .. }) => (
                Mode::Full {
                    cgroup: CgroupVersion::V2,
                },
                plan,
            ),
            Ok(CgroupPlan::None) => (
                Mode::Degraded {
                    reason: "no cgroup".into(),
                },
                CgroupPlan::None,
            ),
            Err(reason) => (Mode::Degraded { reason }, CgroupPlan::None),
        };
        if let Mode::Degraded { reason } = &mode {
            tracing::warn!(sandbox.degraded_reason = %reason, "sandbox runs in DEGRADED mode: rlimits only, no cgroup limits");
        }
        Ok(Sandbox {
            root: resolve_root(&config),
            landlock: crate::helper::landlock_abi().is_some(),
            root_mount,
            mode,
            cgroup,
            config,
            helpers: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// What this sandbox enforces (full with cgroup v1/v2, or degraded with the reason).
    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// The configuration in use.
    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// What the host supports, for `voidrunner doctor`.
    pub fn host_report() -> HostReport {
        HostReport::probe()
    }

    /// A writable work directory for one or more runs (compile then run, CI steps): a size-
    /// and inode-limited tmpfs under the private workspace root, owned by the sandbox uid,
    /// mounted at `/work` by runs that use it; unmounted and removed on drop.
    pub fn create_workspace(&self, size_bytes: u64) -> Result<Workspace, SandboxError> {
        self.create_workspace_with(size_bytes, None)
    }

    /// Like [`Sandbox::create_workspace`] with an explicit cap on files and directories
    /// (tmpfs inodes; by default one per 8 KiB of size, between 1024 and 2^20).
    pub fn create_workspace_with(
        &self,
        size_bytes: u64,
        max_inodes: Option<u64>,
    ) -> Result<Workspace, SandboxError> {
        let n = WORKSPACE_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = self
            .config
            .workspace_root
            .join(format!("ws-{}-{n}", std::process::id()));
        Workspace::create(
            path,
            size_bytes,
            max_inodes,
            self.config.uid,
            self.config.gid,
        )
    }
}

/// Resolves the configured read-only paths once: symlinks become symlinks, missing paths
/// are skipped; generated `/etc/passwd`, `group`, `hostname`, `hosts` are added.
fn resolve_root(config: &SandboxConfig) -> Vec<RootEntry> {
    let etc = config.etc_files.iter().map(|f| Path::new("/etc").join(f));
    let mut out: Vec<RootEntry> = config
        .ro_binds
        .iter()
        .cloned()
        .chain(etc)
        .filter_map(|path| {
            let meta = std::fs::symlink_metadata(&path).ok()?;
            Some(if meta.file_type().is_symlink() {
                RootEntry::Symlink {
                    target: std::fs::read_link(&path).ok()?,
                    path,
                }
            } else {
                RootEntry::Bind {
                    dir: meta.is_dir(),
                    path,
                }
            })
        })
        .collect();
    let (uid, gid) = (config.uid, config.gid);
    let files = [
        (
            "/etc/passwd",
            format!("root:x:0:0:root:/root:/bin/sh\nsandbox:x:{uid}:{gid}:sandbox:/work:/bin/sh\n"),
        ),
        ("/etc/group", format!("root:x:0:\nsandbox:x:{gid}:\n")),
        ("/etc/hostname", "sandbox\n".to_owned()),
        (
            "/etc/hosts",
            "127.0.0.1 localhost sandbox\n::1 localhost\n".to_owned(),
        ),
    ];
    out.extend(files.into_iter().map(|(p, contents)| RootEntry::File {
        path: PathBuf::from(p),
        contents,
    }));
    out
}

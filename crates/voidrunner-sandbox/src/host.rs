//! [`HostReport`]: what this host supports, in plain words, for `voidrunner doctor`.

use std::fmt;
use std::path::Path;

/// Host capabilities relevant to the sandbox. Probing has no side effects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostReport {
    /// Kernel release.
    pub kernel: String,
    /// The service runs as root (required).
    pub root: bool,
    /// Namespace kinds and whether the kernel has them.
    pub namespaces: Vec<(String, bool)>,
    /// Cgroup layout in plain words (e.g. "v1: memory pids cpu cpuacct").
    pub cgroup: String,
    /// seccomp filter mode is available.
    pub seccomp: bool,
    /// Landlock ABI version, `None` when unavailable.
    pub landlock_abi: Option<u32>,
}

impl HostReport {
    pub(crate) fn probe() -> Self {
        let namespaces = ["user", "pid", "mnt", "net", "ipc", "uts", "cgroup"]
            .into_iter()
            .map(|n| (n.to_owned(), Path::new("/proc/self/ns").join(n).exists()))
            .collect();
        // SAFETY: PR_GET_SECCOMP takes no pointers.
        let seccomp = unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) } >= 0
            && std::fs::read_to_string("/proc/self/status")
                .is_ok_and(|s| s.contains("Seccomp_filters"));
        Self {
            kernel: crate::sys::kernel_release(),
            root: crate::sys::geteuid() == 0,
            namespaces,
            cgroup: cgroup_summary(),
            seccomp,
            landlock_abi: crate::helper::landlock_abi(),
        }
    }
}

fn cgroup_summary() -> String {
    let root = Path::new("/sys/fs/cgroup");
    let list = |p: &Path| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    if root.join("cgroup.controllers").exists() {
        format!(
            "v2 (unified); root controllers: {}",
            list(&root.join("cgroup.controllers"))
        )
    } else {
        let v1: Vec<&str> = ["memory", "pids", "cpu", "cpuacct"]
            .into_iter()
            .filter(|c| root.join(c).join("cgroup.procs").exists())
            .collect();
        if v1.is_empty() {
            "none usable".to_owned()
        } else {
            format!("v1 (legacy/hybrid): {}", v1.join(" "))
        }
    }
}

impl fmt::Display for HostReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let yes = |b: bool| if b { "yes" } else { "NO" };
        writeln!(f, "kernel: {}", self.kernel)?;
        writeln!(
            f,
            "running as root: {} (needed to build sandboxes)",
            yes(self.root)
        )?;
        let ns: Vec<String> = self
            .namespaces
            .iter()
            .map(|(n, ok)| format!("{n}={}", yes(*ok)))
            .collect();
        writeln!(f, "namespaces: {}", ns.join(" "))?;
        writeln!(f, "cgroups: {}", self.cgroup)?;
        writeln!(f, "seccomp filters: {}", yes(self.seccomp))?;
        match self.landlock_abi {
            Some(v) => writeln!(
                f,
                "landlock: ABI {v} (writes limited to /work, /tmp, /dev nodes)"
            )?,
            None => writeln!(
                f,
                "landlock: not available (mount layout and seccomp still apply)"
            )?,
        }
        let cg = self.cgroup.starts_with("v1") || self.cgroup.starts_with("v2");
        writeln!(
            f,
            "guarantees: isolation by namespaces + read-only root + seccomp: {}; memory/pids/cpu limits by cgroups: {}",
            yes(self.root && self.namespaces.iter().all(|(_, ok)| *ok) && self.seccomp),
            if cg {
                "yes"
            } else {
                "NO (degraded: rlimits only)"
            }
        )
    }
}

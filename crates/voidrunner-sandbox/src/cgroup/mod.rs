//! Cgroup backends (v1 and v2) behind one trait, detection and the pure parsing helpers.
//!
//! The service detects the layout once ([`detect`], which also prepares the parent
//! subtree); the helper creates one leaf per run through [`create_run_cgroup`].

mod v1;
mod v2;

use crate::error::SandboxError;
use crate::limits::Limits;
use crate::protocol::CgroupPlan;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Counters read from a run's cgroup after the program ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CgroupStats {
    /// OOM kills inside the cgroup.
    pub oom_kills: u64,
    /// Peak memory usage, when the kernel reports it.
    pub peak_memory_bytes: Option<u64>,
    /// Total CPU time of every process of the run, when accounted.
    pub cpu_time: Option<Duration>,
}

/// One run's cgroup (a leaf under the sandbox parent), whatever the version.
pub(crate) trait RunCgroup {
    /// Moves process `pid` into the cgroup (before it runs untrusted code).
    fn add_process(&self, pid: i32) -> Result<(), SandboxError>;
    /// Kills every process of the cgroup (best effort; PID-namespace teardown does the rest).
    fn kill_all(&self);
    /// Reads the counters.
    fn stats(&self) -> CgroupStats;
    /// Current memory usage and CPU time consumed so far, for the resource timeline
    /// (`None` for a counter the kernel does not expose).
    fn usage(&self) -> (Option<u64>, Option<Duration>);
    /// Removes the cgroup directories (after every process has exited).
    fn remove(&mut self) -> Result<(), SandboxError>;
}

/// Creates the leaf `name` for a run with `limits` according to `plan`.
/// `Ok(None)` for [`CgroupPlan::None`] (degraded mode).
pub(crate) fn create_run_cgroup(
    plan: &CgroupPlan,
    name: &str,
    limits: &Limits,
) -> Result<Option<Box<dyn RunCgroup>>, SandboxError> {
    Ok(match plan {
        CgroupPlan::V1 {
            memory,
            pids,
            cpu,
            cpuacct,
        } => Some(Box::new(v1::V1Cgroup::create(
            v1::V1Parents {
                memory,
                pids,
                cpu: cpu.as_deref(),
                cpuacct: cpuacct.as_deref(),
            },
            name,
            limits,
        )?)),
        CgroupPlan::V2 { parent, cpu } => {
            Some(Box::new(v2::V2Cgroup::create(parent, *cpu, name, limits)?))
        }
        CgroupPlan::None => None,
    })
}

/// Detects the cgroup layout with `statfs(/sys/fs/cgroup)` and prepares the parent subtree
/// `parent_name` under the service's own cgroup. `Err(reason)` means degraded mode.
pub(crate) fn detect(parent_name: &str) -> Result<CgroupPlan, String> {
    detect_at(Path::new("/sys/fs/cgroup"), parent_name)
}

fn detect_at(root: &Path, parent_name: &str) -> Result<CgroupPlan, String> {
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
    match fs_magic(root).map_err(|e| format!("statfs({}) failed: {e}", root.display()))? {
        CGROUP2_SUPER_MAGIC => {
            let rel = parse_v2_own_path(&own).ok_or("no 0:: line in /proc/self/cgroup")?;
            v2::prepare_parent(root, &rel, parent_name)
        }
        TMPFS_MAGIC => v1::prepare_parents(root, &own, parent_name),
        other => Err(format!(
            "{} is neither cgroup2 nor a tmpfs of v1 hierarchies (magic {other:#x})",
            root.display()
        )),
    }
}

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
const TMPFS_MAGIC: i64 = 0x0102_1994;

fn fs_magic(path: &Path) -> std::io::Result<i64> {
    let c = crate::sys::cstring(path.as_os_str()).map_err(std::io::Error::other)?;
    // SAFETY: statfs is plain zeroable data; `c` is a valid NUL-terminated path.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` and `st` are valid for the duration of the call.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(st.f_type)
}

/// The service's own v2 path from `/proc/self/cgroup` (`0::/a/b` → `a/b`).
pub(crate) fn parse_v2_own_path(proc_self_cgroup: &str) -> Option<PathBuf> {
    proc_self_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| PathBuf::from(p.trim_start_matches('/')))
}

/// The service's own path in the v1 hierarchy that has `controller` (`4:memory:/x` → `x`).
pub(crate) fn parse_v1_own_path(proc_self_cgroup: &str, controller: &str) -> Option<PathBuf> {
    proc_self_cgroup.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let _id = parts.next()?;
        let ctrls = parts.next()?;
        let path = parts.next()?;
        ctrls
            .split(',')
            .any(|c| c == controller)
            .then(|| PathBuf::from(path.trim_start_matches('/')))
    })
}

/// Value of `key` in a flat-keyed file such as v1 `memory.oom_control` or v2 `memory.events`.
pub(crate) fn parse_keyed(contents: &str, key: &str) -> Option<u64> {
    contents.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// CFS period used for CPU quotas (100 ms, the kernel default).
pub(crate) const CPU_PERIOD_US: u64 = 100_000;

/// Quota in µs per [`CPU_PERIOD_US`] for `cores` (at least 1 ms).
pub(crate) fn cpu_quota_us(cores: f64) -> u64 {
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "clamped positive"
    )]
    let q = (cores.max(0.0) * CPU_PERIOD_US as f64).round() as u64;
    q.max(1000)
}

/// v2 `cpu.max` contents for `cores`.
pub(crate) fn format_cpu_max(cores: f64) -> String {
    format!("{} {}", cpu_quota_us(cores), CPU_PERIOD_US)
}

/// Writes `value` to `path`, naming both on failure.
pub(crate) fn write_file(path: &Path, value: &str) -> Result<(), SandboxError> {
    std::fs::write(path, value).map_err(|e| SandboxError::file("write", path, e))
}

/// Reads `path` to a string, `None` when unreadable (counters are best effort).
pub(crate) fn read_opt(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// Creates `dir`; a leftover of a crashed helper with the same name is removed first.
pub(crate) fn mkdir_fresh(dir: &Path) -> Result<(), SandboxError> {
    match std::fs::create_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let _ = std::fs::remove_dir(dir);
            std::fs::create_dir(dir).map_err(|e| SandboxError::file("mkdir", dir, e))
        }
        other => other.map_err(|e| SandboxError::file("mkdir", dir, e)),
    }
}

/// Removes a cgroup directory, retrying briefly while the kernel finishes tearing down
/// exiting tasks (rmdir reports EBUSY until then).
pub(crate) fn rmdir_retry(dir: &Path, kill: &dyn Fn()) -> Result<(), SandboxError> {
    let mut last = None;
    for attempt in 0..200u32 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => last = Some(e),
        }
        kill();
        std::thread::sleep(Duration::from_micros(200 * u64::from(attempt.min(25) + 1)));
    }
    Err(SandboxError::file(
        "rmdir",
        dir,
        last.unwrap_or_else(|| std::io::Error::other("busy")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_v1_and_v2_own_paths() {
        let s =
            "9:name=systemd:/\n4:memory:/process_api/abc\n2:cpu,cpuacct:/x\n0::/svc/a.service\n";
        assert_eq!(
            parse_v1_own_path(s, "memory"),
            Some(PathBuf::from("process_api/abc"))
        );
        assert_eq!(parse_v1_own_path(s, "cpuacct"), Some(PathBuf::from("x")));
        assert_eq!(parse_v1_own_path(s, "pids"), None);
        assert_eq!(parse_v2_own_path(s), Some(PathBuf::from("svc/a.service")));
        assert_eq!(parse_v2_own_path("0::/\n"), Some(PathBuf::new()));
    }

    #[test]
    fn parses_oom_counters() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(parse_keyed(v1, "oom_kill"), Some(3));
        let v2 = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 1\n";
        assert_eq!(parse_keyed(v2, "oom_kill"), Some(1));
        assert_eq!(parse_keyed(v2, "oom_group_kill"), Some(1));
        assert_eq!(parse_keyed(v2, "missing"), None);
        let stat = "usage_usec 15000\nuser_usec 10000\nsystem_usec 5000\n";
        assert_eq!(parse_keyed(stat, "usage_usec"), Some(15000));
    }

    #[test]
    fn formats_cpu_max() {
        assert_eq!(format_cpu_max(1.0), "100000 100000");
        assert_eq!(format_cpu_max(0.5), "50000 100000");
        assert_eq!(format_cpu_max(2.0), "200000 100000");
        assert_eq!(format_cpu_max(0.0), "1000 100000");
    }
}

//! cgroup v1: one directory per controller (memory, pids, cpu, cpuacct).
//!
//! OOM kills are read from `memory.oom_control` (`oom_kill`): `memory.failcnt` stays 0 on
//! OOM on current kernels. Swap is forbidden by setting memsw equal to the memory limit.

use super::{
    CPU_PERIOD_US, CgroupStats, RunCgroup, cpu_quota_us, mkdir_fresh, parse_keyed,
    parse_v1_own_path, read_opt, rmdir_retry, write_file,
};
use crate::error::SandboxError;
use crate::limits::Limits;
use crate::protocol::CgroupPlan;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Parent directories (one per controller) under which run leaves are created.
pub(super) struct V1Parents<'a> {
    pub memory: &'a Path,
    pub pids: &'a Path,
    pub cpu: Option<&'a Path>,
    pub cpuacct: Option<&'a Path>,
}

/// A run's leaves in each v1 hierarchy.
pub(super) struct V1Cgroup {
    memory: PathBuf,
    pids: PathBuf,
    cpu: Option<PathBuf>,
    cpuacct: Option<PathBuf>,
}

/// Prepares `<root>/<ctrl>/<own path>/<name>` for each controller. memory and pids are
/// required; cpu and cpuacct are used when present.
pub(super) fn prepare_parents(root: &Path, own: &str, name: &str) -> Result<CgroupPlan, String> {
    let parent = |ctrl: &str| -> Result<PathBuf, String> {
        let rel = parse_v1_own_path(own, ctrl)
            .ok_or_else(|| format!("cgroup v1 controller {ctrl} is not mounted"))?;
        let dir = root.join(ctrl).join(rel).join(name);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create cgroup {}: {e}", dir.display()))?;
        // Co-mounted hierarchies (`cpu,cpuacct` with `cpu` and `cpuacct` symlinks) must be
        // recognised as one directory.
        std::fs::canonicalize(&dir).map_err(|e| format!("cannot resolve {}: {e}", dir.display()))
    };
    let memory = parent("memory")?;
    let pids = parent("pids")?;
    Ok(CgroupPlan::V1 {
        memory,
        pids,
        cpu: parent("cpu").ok(),
        cpuacct: parent("cpuacct").ok(),
    })
}

impl V1Cgroup {
    /// Creates the leaves and writes the limits (memory before memsw: memsw ≥ memory).
    pub(super) fn create(
        parents: V1Parents<'_>,
        name: &str,
        limits: &Limits,
    ) -> Result<Self, SandboxError> {
        let mut cg = Self {
            memory: parents.memory.join(name),
            pids: parents.pids.join(name),
            cpu: parents.cpu.map(|p| p.join(name)),
            cpuacct: parents.cpuacct.map(|p| p.join(name)),
        };
        let setup = |cg: &Self| -> Result<(), SandboxError> {
            mkdir_fresh(&cg.memory)?;
            let mem = limits.memory_bytes.to_string();
            write_file(&cg.memory.join("memory.limit_in_bytes"), &mem)?;
            let memsw = cg.memory.join("memory.memsw.limit_in_bytes");
            if memsw.exists() {
                write_file(&memsw, &mem)?;
            } else {
                write_file(&cg.memory.join("memory.swappiness"), "0")?;
            }
            mkdir_fresh(&cg.pids)?;
            write_file(&cg.pids.join("pids.max"), &limits.max_processes.to_string())?;
            if let Some(cpu) = &cg.cpu {
                mkdir_fresh(cpu)?;
                write_file(&cpu.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
                write_file(
                    &cpu.join("cpu.cfs_quota_us"),
                    &cpu_quota_us(limits.cpu_cores).to_string(),
                )?;
            }
            if let Some(acct) = cg.cpuacct.as_ref().filter(|a| Some(*a) != cg.cpu.as_ref()) {
                mkdir_fresh(acct)?;
            }
            Ok(())
        };
        if let Err(e) = setup(&cg) {
            let _ = cg.remove();
            return Err(e);
        }
        Ok(cg)
    }

    fn dirs(&self) -> impl Iterator<Item = &PathBuf> {
        [
            Some(&self.memory),
            Some(&self.pids),
            self.cpu.as_ref(),
            self.cpuacct
                .as_ref()
                .filter(|a| Some(*a) != self.cpu.as_ref()),
        ]
        .into_iter()
        .flatten()
    }
}

impl RunCgroup for V1Cgroup {
    fn add_process(&self, pid: i32) -> Result<(), SandboxError> {
        let pid = pid.to_string();
        for dir in self.dirs() {
            write_file(&dir.join("cgroup.procs"), &pid)?;
        }
        Ok(())
    }

    fn kill_all(&self) {
        kill_listed(&self.pids.join("cgroup.procs"));
    }

    fn stats(&self) -> CgroupStats {
        let oom = read_opt(&self.memory.join("memory.oom_control"));
        CgroupStats {
            oom_kills: oom
                .as_deref()
                .and_then(|s| parse_keyed(s, "oom_kill"))
                .unwrap_or(0),
            peak_memory_bytes: read_opt(&self.memory.join("memory.max_usage_in_bytes"))
                .and_then(|s| s.trim().parse().ok()),
            cpu_time: self
                .cpuacct
                .as_ref()
                .and_then(|d| read_opt(&d.join("cpuacct.usage")))
                .and_then(|s| s.trim().parse().ok())
                .map(Duration::from_nanos),
        }
    }

    fn usage(&self) -> (Option<u64>, Option<Duration>) {
        let memory = read_opt(&self.memory.join("memory.usage_in_bytes"))
            .and_then(|s| s.trim().parse().ok());
        let cpu = self
            .cpuacct
            .as_ref()
            .and_then(|d| read_opt(&d.join("cpuacct.usage")))
            .and_then(|s| s.trim().parse().ok())
            .map(Duration::from_nanos);
        (memory, cpu)
    }

    fn remove(&mut self) -> Result<(), SandboxError> {
        let procs = self.pids.join("cgroup.procs");
        let kill = move || kill_listed(&procs);
        let mut first_err = None;
        for dir in self.dirs() {
            if let Err(e) = rmdir_retry(dir, &kill) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// SIGKILLs every pid listed in a `cgroup.procs` file.
pub(super) fn kill_listed(procs: &Path) {
    if let Some(list) = read_opt(procs) {
        for pid in list.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            crate::sys::kill(pid, libc::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn co_mounted_cpu_and_cpuacct_are_one_directory() {
        let root = tempfile::tempdir().expect("tempdir");
        for d in ["memory", "pids", "cpu,cpuacct"] {
            std::fs::create_dir(root.path().join(d)).expect("mkdir");
        }
        std::os::unix::fs::symlink("cpu,cpuacct", root.path().join("cpu")).expect("symlink");
        std::os::unix::fs::symlink("cpu,cpuacct", root.path().join("cpuacct")).expect("symlink");
        let own = "4:memory:/svc\n3:pids:/svc\n2:cpu,cpuacct:/svc\n";
        let CgroupPlan::V1 {
            memory,
            pids,
            cpu,
            cpuacct,
        } = prepare_parents(root.path(), own, "vr").expect("plan")
        else {
            panic!("not v1");
        };
        assert!(memory.ends_with("memory/svc/vr") && pids.ends_with("pids/svc/vr"));
        assert_eq!(cpu, cpuacct);
        let cg = V1Cgroup {
            memory: memory.join("run-1"),
            pids: pids.join("run-1"),
            cpu: cpu.map(|p| p.join("run-1")),
            cpuacct: cpuacct.map(|p| p.join("run-1")),
        };
        assert_eq!(cg.dirs().count(), 3);
    }
}

//! cgroup v2: one leaf per run under a delegated parent.
//!
//! Not testable on the development host (its cgroup2 mount has no controllers); the pure
//! parts are unit-tested in `cgroup/mod.rs`, the rest follows the kernel's cgroup-v2 docs.

use super::{
    CgroupStats, RunCgroup, format_cpu_max, mkdir_fresh, parse_keyed, read_opt, rmdir_retry,
    write_file,
};
use crate::error::SandboxError;
use crate::limits::Limits;
use crate::protocol::CgroupPlan;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A run's leaf.
pub(super) struct V2Cgroup {
    dir: PathBuf,
}

/// Controllers of `dir/cgroup.controllers`.
fn controllers(dir: &Path) -> Vec<String> {
    read_opt(&dir.join("cgroup.controllers"))
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Enables `ctrls` for the children of `dir`.
fn enable(dir: &Path, ctrls: &[&str]) -> std::io::Result<()> {
    let line: Vec<String> = ctrls.iter().map(|c| format!("+{c}")).collect();
    std::fs::write(dir.join("cgroup.subtree_control"), line.join(" "))
}

/// Prepares `<own cgroup>/<name>` with memory, pids (and cpu) enabled for its children.
///
/// The "no internal processes" rule forbids enabling controllers in a cgroup that has
/// processes (except the real root): on EBUSY the service's processes are first moved into a
/// `supervisor` leaf next to the sandbox subtree. This also covers containers, where the
/// cgroup-namespace root (`0::/`) is not the real root.
pub(super) fn prepare_parent(
    root: &Path,
    own_rel: &Path,
    name: &str,
) -> Result<CgroupPlan, String> {
    let base = root.join(own_rel);
    let available = controllers(&base);
    for needed in ["memory", "pids"] {
        if !available.iter().any(|c| c == needed) {
            return Err(format!(
                "cgroup v2 controller {needed} not delegated to {} (have: {})",
                base.display(),
                available.join(" ")
            ));
        }
    }
    let cpu = available.iter().any(|c| c == "cpu");
    let ctrls: Vec<&str> = if cpu {
        vec!["memory", "pids", "cpu"]
    } else {
        vec!["memory", "pids"]
    };
    if let Err(e) = enable(&base, &ctrls) {
        if e.raw_os_error() != Some(libc::EBUSY) {
            return Err(format!(
                "cannot enable controllers in {}: {e}",
                base.display()
            ));
        }
        let leaf = base.join("supervisor");
        std::fs::create_dir_all(&leaf).map_err(|e| format!("mkdir {}: {e}", leaf.display()))?;
        let procs = read_opt(&base.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines() {
            std::fs::write(leaf.join("cgroup.procs"), pid)
                .map_err(|e| format!("cannot move pid {pid} into {}: {e}", leaf.display()))?;
        }
        enable(&base, &ctrls)
            .map_err(|e| format!("cannot enable controllers in {}: {e}", base.display()))?;
    }
    let parent = base.join(name);
    std::fs::create_dir_all(&parent).map_err(|e| format!("mkdir {}: {e}", parent.display()))?;
    enable(&parent, &ctrls)
        .map_err(|e| format!("cannot enable controllers in {}: {e}", parent.display()))?;
    Ok(CgroupPlan::V2 { parent, cpu })
}

impl V2Cgroup {
    /// Creates the leaf with `memory.max`, `memory.swap.max=0`, `memory.oom.group=1`,
    /// `pids.max` and `cpu.max`.
    pub(super) fn create(
        parent: &Path,
        cpu: bool,
        name: &str,
        limits: &Limits,
    ) -> Result<Self, SandboxError> {
        let mut cg = Self {
            dir: parent.join(name),
        };
        mkdir_fresh(&cg.dir)?;
        let setup = |d: &Path| -> Result<(), SandboxError> {
            write_file(&d.join("memory.max"), &limits.memory_bytes.to_string())?;
            let swap = d.join("memory.swap.max");
            if swap.exists() {
                write_file(&swap, "0")?;
            }
            write_file(&d.join("memory.oom.group"), "1")?;
            write_file(&d.join("pids.max"), &limits.max_processes.to_string())?;
            if cpu {
                write_file(&d.join("cpu.max"), &format_cpu_max(limits.cpu_cores))?;
            }
            Ok(())
        };
        if let Err(e) = setup(&cg.dir) {
            let _ = cg.remove();
            return Err(e);
        }
        Ok(cg)
    }
}

impl RunCgroup for V2Cgroup {
    fn add_process(&self, pid: i32) -> Result<(), SandboxError> {
        write_file(&self.dir.join("cgroup.procs"), &pid.to_string())
    }

    fn kill_all(&self) {
        let kill = self.dir.join("cgroup.kill");
        if std::fs::write(&kill, "1").is_err() {
            // Kernels before 5.14 have no cgroup.kill.
            super::v1::kill_listed(&self.dir.join("cgroup.procs"));
        }
    }

    fn stats(&self) -> CgroupStats {
        let events = read_opt(&self.dir.join("memory.events")).unwrap_or_default();
        let oom = parse_keyed(&events, "oom_kill").unwrap_or(0)
            + parse_keyed(&events, "oom_group_kill").unwrap_or(0);
        CgroupStats {
            oom_kills: oom,
            peak_memory_bytes: read_opt(&self.dir.join("memory.peak"))
                .and_then(|s| s.trim().parse().ok()),
            cpu_time: read_opt(&self.dir.join("cpu.stat"))
                .and_then(|s| parse_keyed(&s, "usage_usec"))
                .map(Duration::from_micros),
        }
    }

    fn usage(&self) -> (Option<u64>, Option<Duration>) {
        let memory = read_opt(&self.dir.join("memory.current")).and_then(|s| s.trim().parse().ok());
        let cpu = read_opt(&self.dir.join("cpu.stat"))
            .and_then(|s| parse_keyed(&s, "usage_usec"))
            .map(Duration::from_micros);
        (memory, cpu)
    }

    fn remove(&mut self) -> Result<(), SandboxError> {
        let dir = self.dir.clone();
        let kill = move || {
            let _ = std::fs::write(dir.join("cgroup.kill"), "1");
        };
        rmdir_retry(&self.dir, &kill)
    }
}

#[cfg(test)]
mod tests {
    //! The kernel side cannot run here (no v2 controllers); these tests drive the file logic
    //! against a plain directory laid out like a delegated cgroup2 subtree.
    use super::*;

    fn fake_root(controllers: &str) -> tempfile::TempDir {
        let root = tempfile::tempdir().expect("tempdir");
        let own = root.path().join("svc");
        std::fs::create_dir_all(&own).expect("mkdir");
        std::fs::write(own.join("cgroup.controllers"), controllers).expect("write");
        root
    }

    #[test]
    fn prepare_parent_enables_controllers_and_creates_the_subtree() {
        let root = fake_root("cpuset cpu io memory pids\n");
        let plan = prepare_parent(root.path(), Path::new("svc"), "voidrunner").expect("prepare");
        let parent = root.path().join("svc/voidrunner");
        assert_eq!(
            plan,
            CgroupPlan::V2 {
                parent: parent.clone(),
                cpu: true
            }
        );
        let enabled =
            std::fs::read_to_string(root.path().join("svc/cgroup.subtree_control")).expect("read");
        assert_eq!(enabled, "+memory +pids +cpu");
        assert_eq!(
            std::fs::read_to_string(parent.join("cgroup.subtree_control")).expect("read"),
            "+memory +pids +cpu"
        );
    }

    #[test]
    fn prepare_parent_requires_memory_and_pids() {
        let root = fake_root("cpu io\n");
        let err =
            prepare_parent(root.path(), Path::new("svc"), "voidrunner").expect_err("must fail");
        assert!(err.contains("memory"), "{err}");
    }

    #[test]
    fn run_leaf_gets_every_limit_and_reads_counters() {
        let root = fake_root("memory pids\n");
        let parent = root.path().join("svc");
        std::fs::create_dir_all(parent.join("run-1")).expect("mkdir");
        std::fs::write(parent.join("run-1/memory.swap.max"), "max").expect("write");
        // mkdir_fresh removes a leftover only when it is empty: start from a fresh name.
        let limits = Limits {
            memory_bytes: 64 << 20,
            max_processes: 32,
            cpu_cores: 0.5,
            ..Limits::default()
        };
        let cg = V2Cgroup::create(&parent, true, "run-2", &limits).expect("create");
        let read = |f: &str| std::fs::read_to_string(parent.join("run-2").join(f)).expect(f);
        assert_eq!(read("memory.max"), "67108864");
        assert_eq!(read("memory.oom.group"), "1");
        assert_eq!(read("pids.max"), "32");
        assert_eq!(read("cpu.max"), "50000 100000");
        std::fs::write(
            parent.join("run-2/memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n",
        )
        .expect("w");
        std::fs::write(parent.join("run-2/memory.peak"), "1048576\n").expect("w");
        std::fs::write(
            parent.join("run-2/cpu.stat"),
            "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n",
        )
        .expect("w");
        let stats = cg.stats();
        assert_eq!(stats.oom_kills, 1);
        assert_eq!(stats.peak_memory_bytes, Some(1 << 20));
        assert_eq!(stats.cpu_time, Some(Duration::from_micros(2500)));
        std::fs::write(parent.join("run-2/memory.current"), "4096\n").expect("w");
        assert_eq!(cg.usage(), (Some(4096), Some(Duration::from_micros(2500))));
        cg.add_process(42).expect("add");
        assert_eq!(read("cgroup.procs"), "42");
    }
}

//! Per-run resource limits.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Resource limits of one run. Every field is enforced for every run; the operator's
/// [`crate::SandboxConfig::max`] clamps what a request may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Wall-clock time from start to kill (whole sandbox).
    pub wall_timeout: Duration,
    /// CPU time of the main process (RLIMIT_CPU, rounded up to whole seconds).
    pub cpu_time: Duration,
    /// Memory of the whole sandbox (cgroup; swap is never allowed on top of it).
    pub memory_bytes: u64,
    /// Processes and threads alive at once in the sandbox (cgroup pids).
    pub max_processes: u32,
    /// CPU bandwidth in cores (cgroup quota), e.g. 0.5 = half a core.
    pub cpu_cores: f64,
    /// Largest file a process may write (RLIMIT_FSIZE).
    pub max_file_size_bytes: u64,
    /// Open file descriptors per process (RLIMIT_NOFILE).
    pub max_open_files: u64,
    /// Size of the `/tmp` tmpfs (and of the `/work` tmpfs when no workspace is given).
    pub tmpfs_bytes: u64,
    /// stdout+stderr bytes forwarded; the program is stopped when it writes more.
    pub max_output_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            wall_timeout: Duration::from_secs(10),
            cpu_time: Duration::from_secs(5),
            memory_bytes: 256 << 20,
            max_processes: 64,
            cpu_cores: 1.0,
            max_file_size_bytes: 64 << 20,
            max_open_files: 256,
            tmpfs_bytes: 64 << 20,
            max_output_bytes: 1 << 20,
        }
    }
}

impl Limits {
    /// Operator maxima used when the configuration gives none.
    pub fn default_max() -> Self {
        Self {
            wall_timeout: Duration::from_secs(3600),
            cpu_time: Duration::from_secs(3600),
            memory_bytes: 8 << 30,
            max_processes: 4096,
            cpu_cores: 64.0,
            max_file_size_bytes: 8 << 30,
            max_open_files: 65536,
            tmpfs_bytes: 8 << 30,
            max_output_bytes: 256 << 20,
        }
    }

    /// Each field of `self` lowered to `max` (requests above the operator maxima are clamped).
    pub fn clamped_to(&self, max: &Limits) -> Limits {
        Limits {
            wall_timeout: self.wall_timeout.min(max.wall_timeout),
            cpu_time: self.cpu_time.min(max.cpu_time),
            memory_bytes: self.memory_bytes.min(max.memory_bytes),
            max_processes: self.max_processes.min(max.max_processes).max(1),
            cpu_cores: self.cpu_cores.min(max.cpu_cores).max(0.01),
            max_file_size_bytes: self.max_file_size_bytes.min(max.max_file_size_bytes),
            max_open_files: self.max_open_files.min(max.max_open_files).max(8),
            tmpfs_bytes: self.tmpfs_bytes.min(max.tmpfs_bytes),
            max_output_bytes: self.max_output_bytes.min(max.max_output_bytes),
        }
    }

    /// RLIMIT_CPU soft limit in whole seconds (at least 1); the hard limit is one more so
    /// that the kernel's SIGXCPU at the soft limit tells a CPU kill apart.
    pub(crate) fn cpu_soft_secs(&self) -> u64 {
        let secs = self.cpu_time.as_secs() + u64::from(self.cpu_time.subsec_nanos() > 0);
        secs.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamps_every_field_to_the_max() {
        let big = Limits {
            wall_timeout: Duration::from_secs(10_000),
            memory_bytes: u64::MAX,
            max_processes: 0,
            ..Limits::default()
        };
        let max = Limits {
            wall_timeout: Duration::from_secs(5),
            memory_bytes: 1 << 20,
            ..Limits::default()
        };
        let c = big.clamped_to(&max);
        assert_eq!(c.wall_timeout, Duration::from_secs(5));
        assert_eq!(c.memory_bytes, 1 << 20);
        assert_eq!(c.max_processes, 1);
    }

    #[test]
    fn cpu_soft_limit_rounds_up() {
        let l = Limits {
            cpu_time: Duration::from_millis(1500),
            ..Limits::default()
        };
        assert_eq!(l.cpu_soft_secs(), 2);
        let l = Limits {
            cpu_time: Duration::ZERO,
            ..Limits::default()
        };
        assert_eq!(l.cpu_soft_secs(), 1);
    }
}

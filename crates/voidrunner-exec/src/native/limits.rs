//! Converting the domain's per-task limits (and a language's compile limits) into the
//! sandbox's per-run limits, with the parts a task does not choose taken from the executor
//! configuration.

use std::time::Duration;

use voidrunner_domain::ResourceLimits;
use voidrunner_sandbox::Limits;

use crate::registry::CompileLimits;

/// Operator settings of the native executor: what a task's limits do not say.
#[derive(Debug, Clone, PartialEq)]
pub struct NativeConfig {
    /// Size of the `/work` tmpfs shared by the compile and run phases (source, binary, files
    /// the program writes).
    pub workspace_bytes: u64,
    /// Size of each run's `/tmp` tmpfs.
    pub tmp_bytes: u64,
    /// Largest file a program may write (RLIMIT_FSIZE).
    pub max_file_size_bytes: u64,
    /// Open file descriptors per process (RLIMIT_NOFILE).
    pub max_open_files: u64,
    /// Lower bound of the CPU-time limit, so very short timeouts on fractional cores still
    /// let an interpreter start.
    pub min_cpu_time: Duration,
}

impl Default for NativeConfig {
    fn default() -> Self {
        Self {
            workspace_bytes: 64 << 20,
            tmp_bytes: 64 << 20,
            max_file_size_bytes: 32 << 20,
            max_open_files: 256,
            min_cpu_time: Duration::from_secs(1),
        }
    }
}

impl NativeConfig {
    /// Limits of the run phase: wall timeout from the task, CPU time = timeout × cores (at
    /// least [`NativeConfig::min_cpu_time`]), memory/processes/cores/output from the task,
    /// file size, open files and `/tmp` size from this configuration.
    pub fn run_limits(&self, task: &ResourceLimits) -> Limits {
        let wall = Duration::from_secs(task.timeout_secs.into());
        Limits {
            wall_timeout: wall,
            cpu_time: cpu_time(wall, task.cpu_cores, self.min_cpu_time),
            memory_bytes: u64::from(task.memory_mb) << 20,
            max_processes: task.max_processes,
            cpu_cores: task.cpu_cores,
            max_file_size_bytes: self.max_file_size_bytes,
            max_open_files: self.max_open_files,
            tmpfs_bytes: self.tmp_bytes,
            max_output_bytes: task.max_output_bytes,
        }
    }

    /// Limits of the compile phase, from the language's compile limits (same rules).
    pub fn compile_limits(&self, compile: &CompileLimits) -> Limits {
        let wall = Duration::from_secs(compile.timeout_secs.into());
        Limits {
            wall_timeout: wall,
            cpu_time: cpu_time(wall, compile.cpu_cores, self.min_cpu_time),
            memory_bytes: u64::from(compile.memory_mb) << 20,
            max_processes: compile.max_processes,
            cpu_cores: compile.cpu_cores,
            max_file_size_bytes: self.max_file_size_bytes,
            max_open_files: self.max_open_files,
            tmpfs_bytes: self.tmp_bytes,
            max_output_bytes: compile.max_output_bytes,
        }
    }
}

fn cpu_time(wall: Duration, cores: f64, floor: Duration) -> Duration {
    let cores = if cores.is_finite() && cores > 0.0 {
        cores
    } else {
        1.0
    };
    wall.mul_f64(cores).max(floor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_limits_become_sandbox_limits() {
        let cfg = NativeConfig::default();
        let l = cfg.run_limits(&ResourceLimits {
            timeout_secs: 10,
            memory_mb: 128,
            cpu_cores: 0.5,
            max_processes: 16,
            max_output_bytes: 4096,
        });
        assert_eq!(l.wall_timeout, Duration::from_secs(10));
        assert_eq!(l.cpu_time, Duration::from_secs(5));
        assert_eq!(l.memory_bytes, 128 << 20);
        assert_eq!(l.max_processes, 16);
        assert!((l.cpu_cores - 0.5).abs() < f64::EPSILON);
        assert_eq!(l.max_output_bytes, 4096);
        assert_eq!(l.max_file_size_bytes, cfg.max_file_size_bytes);
        assert_eq!(l.max_open_files, cfg.max_open_files);
        assert_eq!(l.tmpfs_bytes, cfg.tmp_bytes);
    }

    #[test]
    fn cpu_time_has_a_floor_and_scales_with_cores() {
        let floor = Duration::from_secs(1);
        assert_eq!(cpu_time(Duration::from_secs(1), 0.1, floor), floor);
        assert_eq!(
            cpu_time(Duration::from_secs(3), 2.0, floor),
            Duration::from_secs(6)
        );
        assert_eq!(
            cpu_time(Duration::from_secs(3), f64::NAN, floor),
            Duration::from_secs(3)
        );
    }

    #[test]
    fn compile_limits_use_the_language_values() {
        let l = NativeConfig::default().compile_limits(&CompileLimits::default());
        assert_eq!(l.memory_bytes, 512 << 20);
        assert_eq!(l.wall_timeout, Duration::from_secs(30));
        assert_eq!(l.max_output_bytes, 64 * 1024);
    }
}

//! Result types and the wire protocol between the service and the helper process.
//!
//! Service → helper (helper stdin): one line of JSON ([`HelperRequest`]), then exactly
//! `stdin_len` raw bytes for the program's stdin, then commands: [`CMD_CANCEL`], and for
//! runs with `stdin_open` [`CMD_STDIN`] (`u32 LE` length + bytes, appended to the program's
//! stdin) and [`CMD_STDIN_EOF`] (close it). EOF on the helper's stdin means the service is
//! gone: the helper kills the sandbox, cleans up and exits.
//!
//! Helper → service (helper stdout): frames of `[tag u8][elapsed_us u64 LE][len u32 LE][data]`,
//! tags [`TAG_STDOUT`], [`TAG_STDERR`] and finally [`TAG_RESULT`] (JSON [`RunResult`]).

use crate::limits::Limits;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// Which stream of the program a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// A piece of program output, as it was produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputChunk {
    /// stdout or stderr.
    pub stream: Stream,
    /// The bytes (never more than what is left of `max_output_bytes`).
    pub data: Vec<u8>,
    /// Time since the sandboxed program was started.
    pub elapsed: Duration,
}

/// How a run ended: the program's outcome, or why the sandbox stopped it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SandboxVerdict {
    /// The program exited with this code.
    Exited(i32),
    /// The program was killed by this signal (not by the sandbox).
    Signaled(i32),
    /// The wall-clock timeout fired; the sandbox was killed.
    Timeout,
    /// The CPU time limit was reached.
    CpuLimit,
    /// The memory limit was reached (OOM kill in the sandbox's cgroup).
    MemoryLimit,
    /// The program wrote more than `max_output_bytes`; output was cut and the program stopped.
    OutputLimit,
    /// The run was cancelled by the caller.
    Cancelled,
    /// The sandbox itself failed (setup error, missing program, …); not the program's fault.
    SandboxError(String),
}

/// Outcome and measurements of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunResult {
    /// Why the run ended.
    pub verdict: SandboxVerdict,
    /// Wall time from start of the sandboxed process to its end.
    pub wall_time: Duration,
    /// User+system CPU time of the whole sandbox (cgroup) or of the main process (rusage).
    pub cpu_time: Duration,
    /// Peak memory of the sandbox when the cgroup reports it.
    pub peak_memory_bytes: Option<u64>,
    /// Output was cut at `max_output_bytes`.
    pub output_truncated: bool,
    /// Memory/CPU timeline sampled about every 100 ms while the program ran (at most 300
    /// points, evenly spaced); empty for runs under a second or without a cgroup.
    #[serde(default)]
    pub samples: Vec<UsageSample>,
}

/// One point of a run's resource timeline, read from the run's cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageSample {
    /// Time since the sandboxed program was started.
    pub elapsed: Duration,
    /// Memory charged to the cgroup at that moment (page cache included, like the limit).
    pub memory_bytes: u64,
    /// CPU time (user + system) of the whole sandbox so far.
    pub cpu_time: Duration,
}

/// One entry of the sandbox's root filesystem, resolved once on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum RootEntry {
    /// Read-only bind of a host directory or file at the same path.
    Bind { path: PathBuf, dir: bool },
    /// A symlink (e.g. `/bin -> usr/bin` on merged-/usr hosts).
    Symlink { path: PathBuf, target: PathBuf },
    /// A generated file (e.g. `/etc/passwd`).
    File { path: PathBuf, contents: String },
}

/// Which cgroup layout the helper must use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum CgroupPlan {
    /// cgroup v1: parent directories per controller (`cpu`/`cpuacct` optional).
    V1 {
        memory: PathBuf,
        pids: PathBuf,
        cpu: Option<PathBuf>,
        cpuacct: Option<PathBuf>,
    },
    /// cgroup v2: the delegated parent with memory, pids (and cpu) enabled for children.
    V2 { parent: PathBuf, cpu: bool },
    /// No writable cgroups: rlimits only.
    None,
}

/// Everything the helper needs for one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct HelperRequest {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: String,
    pub stdin_len: Option<u64>,
    /// Keep the program's stdin open after `stdin_len` bytes for [`CMD_STDIN`] commands.
    #[serde(default)]
    pub stdin_open: bool,
    pub workspace: Option<PathBuf>,
    /// Where the workspace is mounted (`/work` when absent; `/job` for CI jobs).
    #[serde(default)]
    pub workspace_target: Option<String>,
    /// Subdirectories of the workspace mounted read-only (e.g. `ci` of a job).
    #[serde(default)]
    pub workspace_readonly: Vec<String>,
    pub limits: Limits,
    pub uid: u32,
    pub gid: u32,
    pub root_mount: PathBuf,
    pub root: Vec<RootEntry>,
    pub cgroup: CgroupPlan,
    pub landlock: bool,
}

/// Frame tag: program stdout bytes.
pub(crate) const TAG_STDOUT: u8 = 1;
/// Frame tag: program stderr bytes.
pub(crate) const TAG_STDERR: u8 = 2;
/// Frame tag: final JSON result.
pub(crate) const TAG_RESULT: u8 = 3;
/// Frame header length.
pub(crate) const HEADER_LEN: usize = 13;
/// Command byte: cancel the run.
pub(crate) const CMD_CANCEL: u8 = b'c';
/// Command byte: program stdin bytes follow (`u32 LE` length, then the bytes).
pub(crate) const CMD_STDIN: u8 = b'i';
/// Command byte: close the program's stdin once the bytes sent before are written.
pub(crate) const CMD_STDIN_EOF: u8 = b'e';
/// Largest payload of one [`CMD_STDIN`] command.
pub(crate) const MAX_STDIN_COMMAND: usize = 64 << 10;

/// Appends one frame to `out`.
pub(crate) fn encode_frame(out: &mut Vec<u8>, tag: u8, elapsed: Duration, data: &[u8]) {
    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    out.push(tag);
    out.extend_from_slice(&micros.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&data[..len as usize]);
}

/// Decodes a frame header into (tag, elapsed, payload length).
pub(crate) fn decode_header(h: &[u8; HEADER_LEN]) -> (u8, Duration, usize) {
    let mut micros = [0u8; 8];
    micros.copy_from_slice(&h[1..9]);
    let mut len = [0u8; 4];
    len.copy_from_slice(&h[9..13]);
    (
        h[0],
        Duration::from_micros(u64::from_le_bytes(micros)),
        u32::from_le_bytes(len) as usize,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trip() {
        let mut buf = Vec::new();
        encode_frame(&mut buf, TAG_STDERR, Duration::from_micros(1234), b"hello");
        let mut h = [0u8; HEADER_LEN];
        h.copy_from_slice(&buf[..HEADER_LEN]);
        assert_eq!(
            decode_header(&h),
            (TAG_STDERR, Duration::from_micros(1234), 5)
        );
        assert_eq!(&buf[HEADER_LEN..], b"hello");
    }
}

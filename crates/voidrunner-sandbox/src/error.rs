//! Errors of the sandbox crate.

use std::path::PathBuf;

/// Why the sandbox could not do what was asked (infrastructure, not the program).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A system call failed; names the call and its arguments.
    #[error("{call} failed: {source}")]
    Syscall {
        /// The call with its arguments, e.g. `mount(tmpfs, /run/voidrunner/ws-1, size=…)`.
        call: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file under a cgroup or proc directory could not be read or written.
    #[error("{op} {path}: {source}")]
    File {
        /// What was attempted (`write`, `read`, `mkdir`, `rmdir`).
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The helper process could not be started.
    #[error("cannot start sandbox helper {program}: {source}")]
    SpawnHelper {
        /// Helper program path.
        program: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The helper broke the protocol or died without a result.
    #[error("sandbox helper failed: {0}")]
    Helper(String),
    /// The request is invalid (e.g. relative argv[0], bad workspace path).
    #[error("invalid sandbox request: {0}")]
    Invalid(String),
}

impl SandboxError {
    /// Builds a [`SandboxError::Syscall`] from `errno` for the call described by `call`.
    pub(crate) fn last_os(call: impl Into<String>) -> Self {
        Self::Syscall {
            call: call.into(),
            source: std::io::Error::last_os_error(),
        }
    }

    /// Builds a [`SandboxError::File`].
    pub(crate) fn file(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::File {
            op,
            path: path.into(),
            source,
        }
    }
}

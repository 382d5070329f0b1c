//! Source preparation, done by the service outside the sandbox and therefore defensively:
//! `git` with validated refs and an allow-list of protocols, tarball extraction that refuses
//! anything that could land outside the destination, and a `copy` that never follows a
//! symlink out of the source tree. Every kind stops at a size and an entry-count cap, and
//! every failure is a [`SourceError`] with a reason fit for the job's result — never a panic.

mod copy;
mod git;
mod host;
mod mirror;
mod submodule;
mod tarball;
mod walk;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::definition::Source;

pub use git::{check_git_ref, check_git_url};

/// The `PATH` every git command of the service runs with (its environment is cleared), so a
/// `git_program` of `git` is found the same way everywhere (`voidrunner doctor` included).
pub const GIT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
pub use host::check_git_host;
pub use mirror::{GitMirror, TreeFile};

/// What the operator allows and how much.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePolicy {
    /// URL schemes `git` may use (`https`, `ssh`; `file` only when configured, `http`
    /// discouraged). `git@host:path` counts as `ssh`.
    pub git_protocols: Vec<String>,
    /// Time allowed for all git commands of one source.
    pub git_timeout: Duration,
    /// Total bytes of the prepared tree (files' sizes).
    pub max_bytes: u64,
    /// Files, directories and links of the prepared tree.
    pub max_entries: u64,
    /// `copy` sources are allowed (the local runner only; never through the API).
    pub allow_copy: bool,
    /// Network repository hosts may resolve to loopback, private, link-local or other
    /// non-public addresses (off on servers: a user's URL must not reach the server's own
    /// network; on for the local runner).
    pub allow_private_hosts: bool,
    /// The `git` executable.
    pub git_program: PathBuf,
}

impl Default for SourcePolicy {
    fn default() -> Self {
        SourcePolicy {
            git_protocols: vec!["https".into(), "ssh".into()],
            git_timeout: Duration::from_secs(300),
            max_bytes: 1024 * 1024 * 1024,
            max_entries: 200_000,
            allow_copy: false,
            allow_private_hosts: false,
            git_program: PathBuf::from("git"),
        }
    }
}

/// Why a source could not be prepared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The definition asks for something the policy or the safety rules refuse.
    #[error("refused: {0}")]
    Refused(String),
    /// Over a cap.
    #[error("too large: {0}")]
    TooLarge(String),
    /// Took longer than allowed.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The tool or the input failed (bad archive, unknown ref, unreachable repository).
    #[error("failed: {0}")]
    Failed(String),
}

/// What was prepared.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Prepared {
    /// Bytes of regular files written.
    pub bytes: u64,
    /// Entries written.
    pub entries: u64,
    /// The commit checked out, for git sources.
    pub commit: Option<String>,
}

/// Inputs that do not come from the definition.
#[derive(Debug, Clone, Copy, Default)]
pub struct SourceInputs<'a> {
    /// The archive uploaded with the job, for `tarball` sources.
    pub tarball: Option<&'a Path>,
    /// Directory relative `copy` paths are resolved against (the job file's directory).
    pub base_dir: Option<&'a Path>,
}

/// Prepares `source` into `dest`, an existing empty directory.
pub fn prepare(
    source: &Source,
    dest: &Path,
    inputs: SourceInputs<'_>,
    policy: &SourcePolicy,
) -> Result<Prepared, SourceError> {
    let dest = dest
        .canonicalize()
        .map_err(|e| SourceError::Failed(format!("destination {}: {e}", dest.display())))?;
    match source {
        Source::None => Ok(Prepared::default()),
        Source::Git {
            url,
            git_ref,
            depth,
            submodules,
        } => git::clone(
            &git::GitSource {
                url,
                git_ref: git_ref.as_deref(),
                depth: *depth,
                submodules: *submodules,
            },
            &dest,
            policy,
        ),
        Source::Tarball => {
            let Some(archive) = inputs.tarball else {
                return Err(SourceError::Refused(
                    "a tarball source needs an archive uploaded with the job".into(),
                ));
            };
            tarball::extract(archive, &dest, policy)
        }
        Source::Copy { path } => {
            if !policy.allow_copy {
                return Err(SourceError::Refused(
                    "copy sources are for the local runner only".into(),
                ));
            }
            let path = Path::new(path);
            let from = match (path.is_absolute(), inputs.base_dir) {
                (true, _) | (false, None) => path.to_path_buf(),
                (false, Some(base)) => base.join(path),
            };
            copy::copy_tree(&from, &dest, policy)
        }
    }
}

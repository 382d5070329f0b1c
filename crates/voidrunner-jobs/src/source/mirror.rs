//! [`GitMirror`]: a bare copy of a repository that the service itself reads (the git hook
//! reads the workflow files of a trusted commit and the changed paths), under the same rules
//! as a source clone.

use std::path::Path;
use std::time::Instant;

use super::git::{Git, OUTPUT_CAP, check_git_ref, check_git_url, is_commit_id, redact};
use super::host::{Pin, check_and_pin};
use super::walk::{Budget, measure};
use super::{SourceError, SourcePolicy};

/// A bare copy of a repository that the service reads commits from (the git hook's view of
/// a repository: which files a commit has, what changed between two commits), with the same
/// safety rules as a source clone: allowed protocols only, `--` before positional arguments,
/// a clean environment, hooks off, one deadline for every command.
pub struct GitMirror {
    policy: SourcePolicy,
    dir: std::path::PathBuf,
    deadline: Instant,
    url: String,
    pin: Option<Pin>,
}

impl std::fmt::Debug for GitMirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitMirror")
            .field("dir", &self.dir)
            .field("url", &redact(&self.url))
            .finish_non_exhaustive()
    }
}

/// One file of a commit's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeFile {
    /// Path from the repository root.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Blob id.
    pub blob: String,
}

impl GitMirror {
    /// Creates an empty bare repository in `dir` (an existing empty directory) whose
    /// `origin` is `url`; every later command must finish before `policy.git_timeout` from now.
    pub fn init(url: &str, dir: &Path, policy: &SourcePolicy) -> Result<GitMirror, SourceError> {
        let mirror = GitMirror::checked(url, dir, policy)?;
        mirror.init_bare()?;
        Ok(mirror)
    }

    /// Opens the mirror of `url` kept in `dir` from earlier events, so a fetch brings only
    /// what is new; creates it when `dir` is missing, and re-creates it when `dir` is not a
    /// bare repository whose `origin` is `url`. The caller holds a lock on `dir` (one user
    /// at a time: a fetch moves its refs). Same checks and deadline as [`GitMirror::init`].
    pub fn open(url: &str, dir: &Path, policy: &SourcePolicy) -> Result<GitMirror, SourceError> {
        let mirror = GitMirror::checked(url, dir, policy)?;
        let kept = dir.join("HEAD").is_file()
            && mirror
                .git()
                .run(&["config", "--get", "remote.origin.url"])
                .is_ok_and(|origin| origin == url);
        if !kept {
            mirror.recreate()?;
        }
        Ok(mirror)
    }

    /// Empties the directory and initialises it again (a kept mirror that is damaged or
    /// belongs to another URL).
    pub fn recreate(&self) -> Result<(), SourceError> {
        let io = |what: &str, e: std::io::Error| {
            SourceError::Failed(format!("{what} {}: {e}", self.dir.display()))
        };
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("removing", e)),
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| io("creating", e))?;
        self.init_bare()
    }

    /// The mirror of `url` in `dir` once the URL passed the policy (protocol, host, pin);
    /// nothing is written yet. The deadline starts now.
    fn checked(url: &str, dir: &Path, policy: &SourcePolicy) -> Result<GitMirror, SourceError> {
        let protocol = check_git_url(url, &policy.git_protocols)?;
        let pin = check_and_pin(url, &protocol, policy.allow_private_hosts)?;
        Ok(GitMirror {
            policy: policy.clone(),
            dir: dir.to_path_buf(),
            deadline: Instant::now() + policy.git_timeout,
            url: url.to_owned(),
            pin,
        })
    }

    /// `git init --bare` with `origin` set to the URL.
    fn init_bare(&self) -> Result<(), SourceError> {
        self.git().run(&["init", "-q", "--bare"])?;
        self.git()
            .run(&["remote", "add", "origin", "--", &self.url])?;
        Ok(())
    }

    fn git(&self) -> Git<'_> {
        Git {
            policy: &self.policy,
            dir: &self.dir,
            deadline: self.deadline,
            url: &self.url,
            pin: self.pin.as_ref(),
        }
    }

    /// Fetches refspecs from `origin` (each checked: no option, no revision syntax beyond
    /// `+src:dst` and `*`); local refs the remote no longer has are pruned (a kept mirror
    /// must not see deleted branches). The repository is then measured against the
    /// policy's caps.
    pub fn fetch(&self, refspecs: &[&str]) -> Result<(), SourceError> {
        for spec in refspecs {
            let plain = spec.trim_start_matches('+');
            for part in plain.split(':') {
                check_git_ref(&part.replace('*', "x"))?;
            }
        }
        let mut args = vec![
            "fetch",
            "-q",
            "--no-tags",
            "--prune",
            "--no-recurse-submodules",
            "origin",
            "--",
        ];
        args.extend_from_slice(refspecs);
        self.git().run(&args)?;
        let mut budget = Budget::new(&self.policy);
        measure(&self.dir, &mut budget)
    }

    /// The commit id `rev` (a full commit id or a ref name) resolves to, if it is a commit
    /// of this repository.
    pub fn commit(&self, rev: &str) -> Option<String> {
        check_git_ref(rev).ok()?;
        self.git()
            .run(&[
                "rev-parse",
                "-q",
                "--verify",
                "--end-of-options",
                &format!("{rev}^{{commit}}"),
            ])
            .ok()
            .filter(|s| s.len() == 40 || s.len() == 64)
    }

    /// True when commit `a` is an ancestor of (or equal to) commit `b`.
    pub fn is_ancestor(&self, a: &str, b: &str) -> bool {
        check_git_ref(a).is_ok()
            && check_git_ref(b).is_ok()
            && self
                .git()
                .run(&["merge-base", "--is-ancestor", "--end-of-options", a, b])
                .is_ok()
    }

    /// The best common ancestor of two commits.
    pub fn merge_base(&self, a: &str, b: &str) -> Result<String, SourceError> {
        check_git_ref(a)?;
        check_git_ref(b)?;
        self.git().run(&["merge-base", "--end-of-options", a, b])
    }

    /// Paths changed between commits `from` and `to` (`git diff --name-only`), at most
    /// `max` (`None` when there are more).
    pub fn changed_files(
        &self,
        from: &str,
        to: &str,
        max: usize,
    ) -> Result<Option<Vec<String>>, SourceError> {
        check_git_ref(from)?;
        check_git_ref(to)?;
        let out = self.git().run_raw(&[
            "diff",
            "--name-only",
            "-z",
            "--no-renames",
            "--end-of-options",
            from,
            to,
            "--",
        ])?;
        Ok(split_paths(&out, max))
    }

    /// Paths changed by the commits of `tip` that no ref under `refs/heads/` other than
    /// `branch` has (the commits a new branch brings), at most `max`.
    pub fn new_branch_files(
        &self,
        tip: &str,
        branch: &str,
        max: usize,
    ) -> Result<Option<Vec<String>>, SourceError> {
        check_git_ref(tip)?;
        check_git_ref(branch)?;
        // Patterns of `--exclude` before `--branches` are relative to refs/heads/.
        let exclude = format!("--exclude={branch}");
        let out = self.git().run_raw(&[
            "log",
            "-z",
            "--format=",
            "--name-only",
            "--no-renames",
            "--not",
            &exclude,
            "--branches",
            "--not",
            tip,
            "--",
        ])?;
        let Some(mut files) = split_paths(&out, usize::MAX) else {
            return Ok(None);
        };
        files.sort();
        files.dedup();
        Ok((files.len() <= max).then_some(files))
    }

    /// The regular files under `dir` (relative to the repository root) in commit `rev`'s
    /// tree; links and submodules are left out.
    pub fn list_files(&self, rev: &str, dir: &str) -> Result<Vec<TreeFile>, SourceError> {
        check_git_ref(rev)?;
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        let out = self.git().run_raw(&[
            "ls-tree",
            "-r",
            "-z",
            "-l",
            "--full-tree",
            "--end-of-options",
            rev,
            "--",
            &prefix,
        ])?;
        if out.len() >= OUTPUT_CAP {
            return Err(SourceError::TooLarge(format!(
                "the listing of {dir} is over {OUTPUT_CAP} bytes"
            )));
        }
        let mut files = Vec::new();
        for entry in out.split(|b| *b == 0).filter(|e| !e.is_empty()) {
            let entry = String::from_utf8_lossy(entry);
            let Some((meta, path)) = entry.split_once('\t') else {
                continue;
            };
            let meta: Vec<&str> = meta.split_whitespace().collect();
            if let [mode, "blob", blob, size] = meta.as_slice()
                && (*mode == "100644" || *mode == "100755")
            {
                files.push(TreeFile {
                    path: path.to_owned(),
                    size: size.parse().unwrap_or(u64::MAX),
                    blob: (*blob).to_owned(),
                });
            }
        }
        Ok(files)
    }

    /// The bytes of a blob (at most 1 MiB are read).
    pub fn read_blob(&self, blob: &str) -> Result<Vec<u8>, SourceError> {
        if !is_commit_id(blob) {
            return Err(SourceError::Refused("not an object id".into()));
        }
        self.git().run_raw(&["cat-file", "blob", blob])
    }
}

/// NUL-separated paths; `None` when there are more than `max` or the output was cut at
/// [`OUTPUT_CAP`] (the list would be incomplete).
fn split_paths(out: &[u8], max: usize) -> Option<Vec<String>> {
    if out.len() >= OUTPUT_CAP {
        return None;
    }
    let files: Vec<String> = out
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).trim_matches('\n').to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    (files.len() <= max).then_some(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_lists_are_none_when_too_many_or_cut() {
        assert_eq!(
            split_paths(b"a/b\0c\0", 5),
            Some(vec!["a/b".to_owned(), "c".to_owned()])
        );
        assert_eq!(split_paths(b"a\0b\0c\0", 2), None);
        assert_eq!(split_paths(b"", 2), Some(Vec::new()));
        assert_eq!(split_paths(&vec![b'x'; OUTPUT_CAP], usize::MAX), None);
    }
}

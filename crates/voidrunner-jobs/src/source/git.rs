//! `git` sources: the URL's protocol must be on the policy's allow-list, the ref may not look
//! like an option and is always passed after `--`, git runs with a clean environment (no
//! system or global config, no prompts, no hooks, no redirects) under a deadline, its
//! connection is held to the repository address that was checked (`host.rs`),
//! submodules pass the same checks (`submodule.rs`), and the checkout is measured
//! against the caps.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::host::{PLAIN_SSH, Pin, check_and_pin};
use super::walk::{Budget, measure};
use super::{Prepared, SourceError, SourcePolicy};

/// A git source of the definition.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GitSource<'a> {
    pub url: &'a str,
    pub git_ref: Option<&'a str>,
    pub depth: Option<u32>,
    pub submodules: bool,
}

/// Checks `url` against the allowed protocols and answers its protocol. `user@host:path` is
/// ssh; local paths and transports like `ext::` are refused whatever the policy says.
pub fn check_git_url(url: &str, protocols: &[String]) -> Result<String, SourceError> {
    if url.starts_with('-') || url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(SourceError::Refused(
            "the repository URL must not start with '-' or contain spaces".into(),
        ));
    }
    let protocol = if let Some((scheme, _)) = url.split_once("://") {
        scheme.to_ascii_lowercase()
    } else if url.contains("::") {
        return Err(SourceError::Refused(
            "git remote helpers (`transport::address`) are not allowed".into(),
        ));
    } else if url
        .split_once(':')
        .is_some_and(|(host, _)| !host.is_empty() && !host.contains('/'))
    {
        "ssh".to_owned()
    } else {
        return Err(SourceError::Refused(
            "local paths are not allowed as repository URLs (use file:// where the operator allows it)"
                .into(),
        ));
    };
    if matches!(protocol.as_str(), "ext" | "fd") || !protocols.contains(&protocol) {
        return Err(SourceError::Refused(format!(
            "protocol {protocol:?} is not allowed (allowed: {})",
            protocols.join(", ")
        )));
    }
    Ok(protocol)
}

/// Checks a branch, tag or commit name: not an option, no revision syntax, no path tricks.
pub fn check_git_ref(r: &str) -> Result<(), SourceError> {
    let bad = |why: &str| Err(SourceError::Refused(format!("invalid ref: {why}")));
    if r.is_empty() || r.len() > 255 {
        return bad("must be 1–255 characters");
    }
    if r.starts_with('-') {
        return bad("must not start with '-'");
    }
    if !r
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | '+'))
    {
        return bad("only letters, digits and . _ - / + are allowed");
    }
    if r.contains("..") || r.contains("//") || r.starts_with('/') || r.ends_with('/') {
        return bad("no '..', '//' or leading/trailing '/'");
    }
    if r.ends_with(".lock") || r.ends_with('.') || r.split('/').any(|p| p.starts_with('.')) {
        return bad("no component starting with '.' and no '.lock' or '.' ending");
    }
    Ok(())
}

pub(super) fn is_commit_id(r: &str) -> bool {
    (7..=40).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `https://user:token@host/x` → `https://***@host/x`, for messages.
pub(super) fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
        if let Some(at) = authority.rfind('@') {
            return format!("{scheme}://***@{}", &rest[at + 1..]);
        }
    }
    url.to_owned()
}

/// Most bytes of a git command's output kept (the rest is read and dropped, so the command
/// never blocks on a full pipe).
pub(super) const OUTPUT_CAP: usize = 1 << 20;

/// Reads a child's pipe to the end on a thread, keeping the first [`OUTPUT_CAP`] bytes.
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = (&mut p).take(OUTPUT_CAP as u64).read_to_end(&mut buf);
            let _ = std::io::copy(&mut p, &mut std::io::sink());
        }
        buf
    })
}

pub(super) struct Git<'a> {
    pub(super) policy: &'a SourcePolicy,
    pub(super) dir: &'a Path,
    pub(super) deadline: Instant,
    pub(super) url: &'a str,
    /// How the connection to the checked repository host is held to the checked address
    /// ([`check_and_pin`]).
    pub(super) pin: Option<&'a Pin>,
}

impl Git<'_> {
    /// Runs `git <args>` in the repository with a clean environment; answers stdout, trimmed.
    pub(super) fn run(&self, args: &[&str]) -> Result<String, SourceError> {
        self.run_raw(args)
            .map(|out| String::from_utf8_lossy(&out).trim().to_owned())
    }

    /// Runs `git <args>` in the repository with a clean environment; answers stdout as is
    /// (at most [`OUTPUT_CAP`] bytes).
    pub(super) fn run_raw(&self, args: &[&str]) -> Result<Vec<u8>, SourceError> {
        let mut cmd = Command::new(&self.policy.git_program);
        cmd.env_clear()
            .env("PATH", super::GIT_PATH)
            .env("LANG", "C")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_ALLOW_PROTOCOL", self.policy.git_protocols.join(":"))
            .env(
                "GIT_SSH_COMMAND",
                match self.pin {
                    Some(Pin::Ssh(command)) => command.as_str(),
                    _ => PLAIN_SSH,
                },
            )
            .arg("-C")
            .arg(self.dir)
            .args([
                "-c",
                "core.hooksPath=/dev/null",
                "-c",
                "advice.detachedHead=false",
            ])
            // The destination may already belong to the sandbox user; this git run is ours.
            .arg("-c")
            .arg(format!("safe.directory={}", self.dir.display()));
        // Belt and braces with GIT_ALLOW_PROTOCOL (it wins when both are set), and for the
        // git commands that a submodule update starts.
        cmd.args(["-c", "protocol.allow=never"]);
        for p in &self.policy.git_protocols {
            if !matches!(p.as_str(), "ext" | "fd") {
                cmd.arg("-c").arg(format!("protocol.{p}.allow=always"));
            }
        }
        // A redirect would go to a host that was neither checked nor pinned.
        cmd.args(["-c", "http.followRedirects=false"]);
        match self.pin {
            Some(Pin::Curl(pin)) => {
                cmd.arg("-c").arg(format!("http.curloptResolve={pin}"));
            }
            Some(Pin::Rewrite { from, to }) => {
                cmd.arg("-c").arg(format!("url.{to}.insteadOf={from}"));
            }
            _ => {}
        }
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| SourceError::Failed(format!("cannot run git: {e}")))?;
        let out_thread = drain(child.stdout.take());
        let err_thread = drain(child.stderr.take());
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() >= self.deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(SourceError::Timeout(self.policy.git_timeout));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => return Err(SourceError::Failed(format!("waiting for git: {e}"))),
            }
        };
        let stdout = out_thread.join().unwrap_or_default();
        let stderr = err_thread.join().unwrap_or_default();
        if status.success() {
            return Ok(stdout);
        }
        let message = String::from_utf8_lossy(&stderr)
            .replace(self.url, &redact(self.url))
            .trim()
            .lines()
            .rev()
            .take(3)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join(" / ");
        Err(SourceError::Failed(format!(
            "git {} failed: {message}",
            args.first().copied().unwrap_or("")
        )))
    }
}

/// Clones `src` into `dest` (an existing empty directory) and checks out its ref detached.
pub(crate) fn clone(
    src: &GitSource<'_>,
    dest: &Path,
    policy: &SourcePolicy,
) -> Result<Prepared, SourceError> {
    let protocol = check_git_url(src.url, &policy.git_protocols)?;
    if let Some(r) = src.git_ref {
        check_git_ref(r)?;
    }
    let pin = check_and_pin(src.url, &protocol, policy.allow_private_hosts)?;
    let git = Git {
        policy,
        dir: dest,
        deadline: Instant::now() + policy.git_timeout,
        url: src.url,
        pin: pin.as_ref(),
    };
    git.run(&["init", "-q", "--initial-branch=voidrunner"])?;
    git.run(&["remote", "add", "origin", "--", src.url])?;
    let depth = src.depth.map(|d| format!("--depth={d}"));
    let wanted = src.git_ref.unwrap_or("HEAD");
    let mut fetch = vec!["fetch", "-q", "--no-recurse-submodules"];
    if let Some(d) = &depth {
        fetch.push(d);
    }
    fetch.extend(["origin", "--", wanted]);
    let fetched = git.run(&fetch);
    let target = match fetched {
        Ok(_) => "FETCH_HEAD".to_owned(),
        // A commit id the server will not serve directly: fetch branches and tags, then
        // look the commit up locally.
        Err(SourceError::Failed(_)) if is_commit_id(wanted) => {
            let mut all = vec!["fetch", "-q", "--no-recurse-submodules"];
            if let Some(d) = &depth {
                all.push(d);
            }
            all.extend([
                "origin",
                "--",
                "+refs/heads/*:refs/remotes/origin/*",
                "+refs/tags/*:refs/tags/*",
            ]);
            git.run(&all)?;
            format!("{wanted}^{{commit}}")
        }
        Err(e) => return Err(e),
    };
    git.run(&["checkout", "-q", "--detach", &target, "--"])
        .map_err(|e| match e {
            SourceError::Failed(_) => SourceError::Failed(format!("ref {wanted:?} not found")),
            other => other,
        })?;
    if src.submodules {
        super::submodule::update(&git, depth.as_deref())?;
    }
    let commit = git.run(&["rev-parse", "HEAD"])?;
    let mut budget = Budget::new(policy);
    measure(dest, &mut budget)?;
    Ok(Prepared {
        bytes: budget.bytes,
        entries: budget.entries,
        commit: Some(commit),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Vec<String> {
        vec!["https".into(), "ssh".into()]
    }

    #[test]
    fn urls_need_an_allowed_protocol() {
        assert_eq!(
            check_git_url("https://example.com/r.git", &allowed()),
            Ok("https".into())
        );
        assert_eq!(
            check_git_url("git@github.com:o/r.git", &allowed()),
            Ok("ssh".into())
        );
        assert_eq!(check_git_url("ssh://git@h/r", &allowed()), Ok("ssh".into()));
        for bad in [
            "file:///tmp/r",
            "http://example.com/r",
            "ext::sh -c touch% /tmp/pwned",
            "/tmp/repo",
            "./repo",
            "-uhttps://x",
            "https://x/r --upload-pack=x",
        ] {
            assert!(
                matches!(check_git_url(bad, &allowed()), Err(SourceError::Refused(_))),
                "{bad}"
            );
        }
        let with_file = vec!["file".to_owned()];
        assert_eq!(
            check_git_url("file:///tmp/r", &with_file),
            Ok("file".into())
        );
        assert!(check_git_url("ext::x", &["ext".to_owned()]).is_err());
    }

    #[test]
    fn refs_cannot_be_options_or_revision_syntax() {
        for ok in ["main", "v1.2.3", "feature/x-y", "0123abcd", "release+1"] {
            assert_eq!(check_git_ref(ok), Ok(()), "{ok}");
        }
        for bad in [
            "-b",
            "--upload-pack=evil",
            "a..b",
            "HEAD@{1}",
            "main^",
            "x~1",
            "a b",
            "/x",
            "x/",
            "x.lock",
            ".hidden",
            "a/.b",
            "",
        ] {
            assert!(check_git_ref(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn credentials_are_redacted_from_messages() {
        assert_eq!(redact("https://u:tok@h/r.git"), "https://***@h/r.git");
        assert_eq!(redact("https://h/r.git"), "https://h/r.git");
    }
}

//! `git` sources: the URL's protocol must be on the policy's allow-list, the ref may not look
//! like an option and is always passed after `--`, git runs with a clean environment (no
//! system or global config, no prompts, no hooks) under a deadline, and the checkout is
//! measured against the caps.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

/// The host and port a network `url` of `protocol` connects to (`None` for `file`).
fn url_host(url: &str, protocol: &str) -> Option<(String, u16)> {
    let default_port = match protocol {
        "file" => return None,
        "https" => 443,
        "http" => 80,
        "git" => 9418,
        _ => 22,
    };
    let (authority, scp) = match url.split_once("://") {
        Some((_, rest)) => (rest.split('/').next().unwrap_or_default(), false),
        None => (url.split_once(':').map_or("", |(h, _)| h), true),
    };
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        (h, after.strip_prefix(':'))
    } else if scp {
        (hostport, None)
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => default_port,
    };
    (!host.is_empty()).then(|| (host.to_owned(), port))
}

/// Resolves the host of a network repository URL and refuses it when any address is not a
/// public one (loopback, private, link-local, metadata, …: [`voidrunner_domain::net`]) unless
/// `allow_private`, so a user's URL cannot make the server fetch from its own network. For
/// http(s) it answers curl's `host:port:address` pin, given to git as
/// `http.curloptResolve` so the connection goes to the checked address and not to a second,
/// different DNS answer. `file` URLs answer `None` (the protocol allow-list governs them).
pub fn check_git_host(
    url: &str,
    protocol: &str,
    allow_private: bool,
) -> Result<Option<String>, SourceError> {
    use std::net::ToSocketAddrs;
    let Some((host, port)) = url_host(url, protocol) else {
        if protocol == "file" {
            return Ok(None);
        }
        return Err(SourceError::Refused(
            "the repository URL has no host".into(),
        ));
    };
    let addrs: Vec<std::net::SocketAddr> = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| SourceError::Failed(format!("repository host {host} did not resolve: {e}")))?
        .collect();
    let Some(first) = addrs.first() else {
        return Err(SourceError::Failed(format!(
            "repository host {host} did not resolve"
        )));
    };
    if !allow_private
        && let Some((ip, range)) = addrs
            .iter()
            .find_map(|a| voidrunner_domain::net::refused_range(a.ip()).map(|r| (a.ip(), r)))
    {
        return Err(SourceError::Refused(format!(
            "repository host {host} resolves to {ip} ({range}); the operator's \
             git_allow_private setting allows such hosts"
        )));
    }
    Ok(
        matches!(protocol, "http" | "https").then(|| match first.ip() {
            std::net::IpAddr::V6(ip) => format!("{host}:{port}:[{ip}]"),
            std::net::IpAddr::V4(ip) => format!("{host}:{port}:{ip}"),
        }),
    )
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
    /// curl's `host:port:address` pin of an http(s) repository ([`check_git_host`]).
    pub(super) pin: Option<&'a str>,
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
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LANG", "C")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_ALLOW_PROTOCOL", self.policy.git_protocols.join(":"))
            .env(
                "GIT_SSH_COMMAND",
                "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes",
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
        if self.policy.git_protocols.iter().any(|p| p == "file") {
            cmd.args(["-c", "protocol.file.allow=always"]);
        }
        if let Some(pin) = self.pin {
            cmd.arg("-c").arg(format!("http.curloptResolve={pin}"));
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
    let pin = check_git_host(src.url, &protocol, policy.allow_private_hosts)?;
    let git = Git {
        policy,
        dir: dest,
        deadline: Instant::now() + policy.git_timeout,
        url: src.url,
        pin: pin.as_deref(),
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
        let mut sub = vec!["submodule", "update", "-q", "--init", "--recursive"];
        if let Some(d) = &depth {
            sub.push(d);
        }
        git.run(&sub)?;
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
    fn hosts_of_every_url_form() {
        let h = |u: &str, p: &str| url_host(u, p);
        assert_eq!(
            h("https://git.example.com/o/r.git", "https"),
            Some(("git.example.com".into(), 443))
        );
        assert_eq!(
            h("https://u:pw@h.example:8443/r", "https"),
            Some(("h.example".into(), 8443))
        );
        assert_eq!(h("http://[::1]:8080/r", "http"), Some(("::1".into(), 8080)));
        assert_eq!(
            h("git@github.com:o/r.git", "ssh"),
            Some(("github.com".into(), 22))
        );
        assert_eq!(h("ssh://git@h:2222/r", "ssh"), Some(("h".into(), 2222)));
        assert_eq!(h("file:///tmp/r", "file"), None);
        assert_eq!(h("https:///r", "https"), None);
    }

    #[test]
    fn private_repository_hosts_are_refused_unless_allowed() {
        for url in [
            "https://127.0.0.1/r.git",
            "http://169.254.169.254/latest/meta-data",
            "https://10.1.2.3:8443/r",
            "https://[::1]/r",
            "git@192.168.1.10:o/r.git",
            "https://localhost/r.git",
        ] {
            let protocol = check_git_url(url, &["https".into(), "http".into(), "ssh".into()])
                .expect("allowed protocol");
            let refused = check_git_host(url, &protocol, false);
            assert!(
                matches!(&refused, Err(SourceError::Refused(m)) if m.contains("git_allow_private")),
                "{url}: {refused:?}"
            );
        }
        // Allowed by the operator: an http(s) host is pinned to the checked address.
        assert_eq!(
            check_git_host("https://127.0.0.1:8443/r.git", "https", true),
            Ok(Some("127.0.0.1:8443:127.0.0.1".to_owned()))
        );
        assert_eq!(check_git_host("git@127.0.0.1:o/r", "ssh", true), Ok(None));
        assert_eq!(check_git_host("file:///tmp/r", "file", false), Ok(None));
    }

    #[test]
    fn credentials_are_redacted_from_messages() {
        assert_eq!(redact("https://u:tok@h/r.git"), "https://***@h/r.git");
        assert_eq!(redact("https://h/r.git"), "https://h/r.git");
    }
}

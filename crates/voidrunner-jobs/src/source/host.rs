//! The repository host of a git URL: resolved once, refused when it is not a public address
//! (unless the operator allows private hosts), and pinned so that git's own connection goes
//! to the address that was checked — curl's `http.curloptResolve` for http(s), an ssh
//! command with `HostName=<address>` for ssh — and not to a second, different DNS answer.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use super::SourceError;

/// How git's connection to a checked repository host is held to the checked address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pin {
    /// curl's `host:port:address`, given to git as `http.curloptResolve`.
    Curl(String),
    /// The whole ssh command, given to git as `GIT_SSH_COMMAND` ([`ssh_command`]).
    Ssh(String),
    /// The URL's `scheme://host:port/` and the same with the checked address, given to git as
    /// `url.<to>.insteadOf=<from>` (`git://`, which has no other way to pin; the daemon then
    /// sees the address as `host=`).
    Rewrite {
        /// The URL's own prefix, as written.
        from: String,
        /// `git://<address>:<port>/`.
        to: String,
    },
}

/// The ssh command of a repository that needs no pin (`git://`, `file://`): batch mode and
/// strict host keys, as for every ssh connection.
pub(crate) const PLAIN_SSH: &str = "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes";

/// The user, host and port a network `url` of `protocol` connects to (`Ok(None)` for
/// `file`, and when there is no host). An authority that other URL parsers could read
/// differently (curl ends the host at `?` or `#`, WHATWG parsers turn `\` into `/`, several
/// `@`) is refused, so the host checked here is the host git connects to.
fn url_parts(
    url: &str,
    protocol: &str,
) -> Result<Option<(Option<String>, String, u16)>, SourceError> {
    let default_port = match protocol {
        "file" => return Ok(None),
        "https" => 443,
        "http" => 80,
        "git" => 9418,
        _ => 22,
    };
    let (authority, scp) = match url.split_once("://") {
        Some((_, rest)) => (rest.split('/').next().unwrap_or_default(), false),
        None => (url.split_once(':').map_or("", |(h, _)| h), true),
    };
    if authority.contains(['?', '#', '\\']) || authority.matches('@').count() > 1 {
        return Err(SourceError::Refused(
            "the repository URL's host part must not contain '?', '#', '\\' or several '@'".into(),
        ));
    }
    let (user, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u.to_owned()), h),
        None => (None, authority),
    };
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let Some((h, after)) = rest.split_once(']') else {
            return Ok(None);
        };
        (h, after.strip_prefix(':'))
    } else if scp {
        (hostport, None)
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let port = match port.map(str::parse) {
        Some(Ok(p)) => p,
        Some(Err(_)) => return Ok(None),
        None => default_port,
    };
    if host.is_empty() {
        return Ok(None);
    }
    check_host_name(host)?;
    Ok(Some((user, host.to_ascii_lowercase(), port)))
}

/// Resolves `host` and refuses it when any address is not public (unless `allow_private`);
/// answers the first address.
fn resolve_checked(host: &str, port: u16, allow_private: bool) -> Result<IpAddr, SourceError> {
    let addrs: Vec<SocketAddr> = (host, port)
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
    Ok(first.ip())
}

/// Resolves the host of a network repository URL, refuses it when any address is not a
/// public one ([`voidrunner_domain::net`]) unless `allow_private`, and answers how git must
/// be held to the checked address (`None` for `file`: the protocol allow-list governs it).
pub(crate) fn check_and_pin(
    url: &str,
    protocol: &str,
    allow_private: bool,
) -> Result<Option<Pin>, SourceError> {
    let Some((user, host, port)) = url_parts(url, protocol)? else {
        if protocol == "file" {
            return Ok(None);
        }
        return Err(SourceError::Refused(
            "the repository URL has no host".into(),
        ));
    };
    if protocol == "ssh" {
        // Checked before resolving: the user becomes an argument of ssh (the host is
        // checked for every protocol).
        if user.as_deref().is_some_and(|u| !safe_ssh_word(u)) {
            return Err(SourceError::Refused(
                "the ssh user must be letters, digits and . _ - (not starting with '-')".into(),
            ));
        }
    }
    let ip = resolve_checked(&host, port, allow_private)?;
    Ok(match protocol {
        "http" | "https" => Some(Pin::Curl(match ip {
            IpAddr::V6(ip) => format!("{host}:{port}:[{ip}]"),
            IpAddr::V4(ip) => format!("{host}:{port}:{ip}"),
        })),
        "ssh" => Some(Pin::Ssh(ssh_command(&host, port, ip)?)),
        "git" => Some(git_rewrite(url, ip, port)),
        _ => None,
    })
}

/// The [`Pin::Rewrite`] of a `git://` URL whose host was checked to be `ip`.
fn git_rewrite(url: &str, ip: IpAddr, port: u16) -> Pin {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..].find('/').map_or(url.len(), |i| start + i + 1);
    let from = &url[..end];
    let slash = if from.ends_with('/') { "/" } else { "" };
    Pin::Rewrite {
        from: from.to_owned(),
        to: format!("git://{}{slash}", SocketAddr::new(ip, port)),
    }
}

/// Resolves the host of a network repository URL and refuses it when any address is not a
/// public one (loopback, private, link-local, metadata, …: [`voidrunner_domain::net`]) unless
/// `allow_private`, so a user's URL cannot make the server fetch from its own network. For
/// http(s) it answers curl's `host:port:address` pin, given to git as
/// `http.curloptResolve` so the connection goes to the checked address and not to a second,
/// different DNS answer (ssh is pinned too, with `HostName=`, inside the source code).
/// `file` URLs answer `None` (the protocol allow-list governs them).
pub fn check_git_host(
    url: &str,
    protocol: &str,
    allow_private: bool,
) -> Result<Option<String>, SourceError> {
    Ok(match check_and_pin(url, protocol, allow_private)? {
        Some(Pin::Curl(pin)) => Some(pin),
        _ => None,
    })
}

/// Letters, digits and `. _ -`, not starting with `-`: safe as an ssh argument and inside
/// single quotes.
fn safe_ssh_word(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('-')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// A repository host must be an IP address or a plain ASCII name: no option
/// (`-oProxyCommand=…`), no shell, `%` or percent-encoding, no Unicode (curl would turn it
/// into punycode, which the pin would not match), no trailing dot (curl strips it, which the
/// pin would not match either).
fn check_host_name(host: &str) -> Result<(), SourceError> {
    let name = safe_ssh_word(host)
        && !host.starts_with('.')
        && !host.ends_with('.')
        && !host.contains("..");
    if name || host.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    Err(SourceError::Refused(format!(
        "the repository host {host:?} must be an IP address or a name of letters, digits \
         and . _ - (not starting with '-' or '.', not ending with '.')"
    )))
}

/// The ssh command (`GIT_SSH_COMMAND`, run by git through `sh -c`) that connects to the
/// checked address `ip` while host-key verification still uses the name (`HostKeyAlias`,
/// with the port as known_hosts writes it when it is not 22). git appends `-p <port>` and
/// `user@host` itself, so the URL's user and port are kept.
pub(crate) fn ssh_command(host: &str, port: u16, ip: IpAddr) -> Result<String, SourceError> {
    check_host_name(host)?;
    let alias = if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    };
    Ok(format!(
        "{PLAIN_SSH} -o 'HostName={ip}' -o 'HostKeyAlias={alias}'"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_every_url_form() {
        let h = |u: &str, p: &str| {
            url_parts(u, p)
                .expect("well-formed")
                .map(|(_, host, port)| (host, port))
        };
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
        assert_eq!(
            url_parts("ssh://deploy@h/r", "ssh"),
            Ok(Some((Some("deploy".into()), "h".into(), 22)))
        );
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
            "ssh://git@127.0.0.1:2222/r.git",
            "https://localhost/r.git",
        ] {
            let protocol =
                super::super::check_git_url(url, &["https".into(), "http".into(), "ssh".into()])
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

    /// Each of these would connect curl (or ssh) to a host other than the one a naive parse
    /// checks and pins (`127.0.0.1#@public.example`: curl connects to 127.0.0.1).
    #[test]
    fn hosts_other_parsers_read_differently_are_refused() {
        for (url, protocol) in [
            ("http://127.0.0.1#@public.example/x", "http"),
            ("http://127.0.0.1?@public.example/x", "http"),
            ("http://127.0.0.1\\@public.example/x", "http"),
            ("https://a@127.0.0.1@public.example/x", "https"),
            ("https://public.example./r", "https"),
            ("https://.public.example/r", "https"),
            ("https://ex%61mple.com/r", "https"),
            ("https://exämple.com/r", "https"),
            ("https://-x/r", "https"),
            ("http://[::1%25lo]/r", "http"),
            ("ssh://git@127.0.0.1#@public.example/r", "ssh"),
            ("git@h$(id):r", "ssh"),
        ] {
            let refused = check_and_pin(url, protocol, true);
            assert!(
                matches!(refused, Err(SourceError::Refused(_))),
                "{url}: {refused:?}"
            );
        }
        // Case does not matter to curl's pin (the name is lowercased).
        assert_eq!(
            url_parts("https://Git.Example.COM/r", "https"),
            Ok(Some((None, "git.example.com".into(), 443)))
        );
    }

    #[test]
    fn git_protocol_urls_are_rewritten_to_the_checked_address() {
        let pin = |u: &str| check_and_pin(u, "git", true);
        assert_eq!(
            pin("git://127.0.0.1/o/r.git"),
            Ok(Some(Pin::Rewrite {
                from: "git://127.0.0.1/".into(),
                to: "git://127.0.0.1:9418/".into()
            }))
        );
        assert_eq!(
            git_rewrite(
                "GIT://Host.example:9000/r",
                "::1".parse().expect("ip"),
                9000
            ),
            Pin::Rewrite {
                from: "GIT://Host.example:9000/".into(),
                to: "git://[::1]:9000/".into()
            }
        );
        assert!(matches!(
            check_and_pin("git://127.0.0.1/r", "git", false),
            Err(SourceError::Refused(_))
        ));
    }

    #[test]
    fn ssh_urls_are_pinned_to_the_checked_address() {
        assert_eq!(
            check_and_pin("ssh://git@127.0.0.1:2222/r.git", "ssh", true),
            Ok(Some(Pin::Ssh(format!(
                "{PLAIN_SSH} -o 'HostName=127.0.0.1' -o 'HostKeyAlias=[127.0.0.1]:2222'"
            ))))
        );
        assert_eq!(
            check_and_pin("git@127.0.0.1:o/r.git", "ssh", true),
            Ok(Some(Pin::Ssh(format!(
                "{PLAIN_SSH} -o 'HostName=127.0.0.1' -o 'HostKeyAlias=127.0.0.1'"
            ))))
        );
        let v6 = ssh_command("git.example.com", 22, "2001:db8::7".parse().expect("ip"));
        assert_eq!(
            v6,
            Ok(format!(
                "{PLAIN_SSH} -o 'HostName=2001:db8::7' -o 'HostKeyAlias=git.example.com'"
            ))
        );
    }

    #[test]
    fn ssh_hosts_and_users_cannot_inject_options_or_shell() {
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        for host in [
            "-oProxyCommand=touch /tmp/pwned",
            "-oProxyCommand=x",
            "h'; touch /tmp/pwned; '",
            "h$(touch /tmp/pwned)",
            "h`id`",
            "h%d",
            "h\\x",
            "",
        ] {
            assert!(
                matches!(ssh_command(host, 22, ip), Err(SourceError::Refused(_))),
                "{host}"
            );
        }
        for url in [
            "ssh://-oProxyCommand=x/r",
            "ssh://[-oProxyCommand=x]/r",
            "ssh://-oProxyCommand=x@h/r",
            "ssh://u$(id)@h/r",
            "-oProxyCommand=x@h:r",
            "h$(id):r",
        ] {
            let refused = check_and_pin(url, "ssh", true);
            assert!(
                matches!(refused, Err(SourceError::Refused(_))),
                "{url}: {refused:?}"
            );
        }
    }

    /// The real shell and ssh read the command as meant: `ssh -G` prints the configuration
    /// a connection would use, without connecting.
    #[test]
    fn ssh_reads_the_pinned_command_as_meant() {
        let cmd = ssh_command("git.example.com", 2222, "192.0.2.7".parse().expect("ip"))
            .expect("command");
        // As git runs it: `sh -c '<command> "$@"' <command> -p <port> <user@host> <command>`.
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("{cmd} -G \"$@\""))
            .arg(&cmd)
            .args(["-p", "2222", "deploy@git.example.com"])
            .env("HOME", "/nonexistent")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("ssh -G");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let config = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
        for line in [
            "hostname 192.0.2.7",
            "hostkeyalias [git.example.com]:2222",
            "user deploy",
            "port 2222",
            "batchmode yes",
            "stricthostkeychecking true",
        ] {
            assert!(config.lines().any(|l| l == line), "{line}: {config}");
        }
    }
}

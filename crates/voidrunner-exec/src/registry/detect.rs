//! Runtime detection: does the host have the language's programs, and which version are they?
//! Done once per language (cached by the registry), with a timeout, outside the sandbox: the
//! programs are the operator's configured runtimes, not user code.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde::Serialize;

use super::{ExecutorKind, Language, VersionSource};

/// How long `<runtime> --version` may take before the runtime is declared unusable.
pub const VERSION_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether a language can run on this host, and its detected version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Availability {
    /// Every program the language needs exists; `version` was detected (or fixed in the TOML).
    Available {
        /// E.g. `3.11.2`.
        version: String,
    },
    /// Something is missing or broken; the language is refused, startup is not.
    Unavailable {
        /// Operator-facing explanation, e.g. `runtime /usr/bin/node not found`.
        reason: String,
    },
}

impl std::fmt::Display for Availability {
    /// Plain words for `voidrunner doctor`: `available, version 3.11.2` or
    /// `unavailable: runtime /usr/bin/node not found …`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Availability::Available { version } => write!(f, "available, version {version}"),
            Availability::Unavailable { reason } => write!(f, "unavailable: {reason}"),
        }
    }
}

pub(super) fn detect(lang: &Language) -> Availability {
    if lang.executor == ExecutorKind::Docker {
        // The runtime lives in the image, not on this host: never run host programs for it.
        // Whether the engine answers and the image exists is checked per execution (a
        // `SandboxError`, retried elsewhere) and reported by `voidrunner doctor`.
        return Availability::Available {
            version: match &lang.version_source {
                VersionSource::Fixed(v) => v.clone(),
                VersionSource::Command(_) => image_version(lang.image.as_deref().unwrap_or("")),
            },
        };
    }
    for program in lang.host_programs() {
        if let Err(reason) = check_executable(program) {
            return Availability::Unavailable { reason };
        }
    }
    match &lang.version_source {
        VersionSource::Fixed(v) => Availability::Available { version: v.clone() },
        VersionSource::Command(argv) => match run_version_command(argv) {
            Ok(text) => Availability::Available {
                version: parse_version(&text),
            },
            Err(reason) => Availability::Unavailable { reason },
        },
    }
}

/// The tag of an image reference (`3.11` of `voidrunner/python:3.11`), `latest` without one.
fn image_version(image: &str) -> String {
    let name = image.rsplit('/').next().unwrap_or(image);
    let name = name.split('@').next().unwrap_or(name);
    name.split_once(':')
        .map_or("latest", |(_, tag)| tag)
        .to_owned()
}

fn check_executable(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(()),
        Ok(_) => Err(format!("{} is not an executable file", path.display())),
        Err(e) => Err(format!("runtime {} not found: {e}", path.display())),
    }
}

/// Runs the version command with a clean environment and returns stdout followed by stderr.
fn run_version_command(argv: &[String]) -> Result<String, String> {
    let shown = argv.join(" ");
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .env("HOME", "/tmp")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("`{shown}` could not start: {e}"))?;
    let (tx, rx) = mpsc::channel();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    // Reading to EOF returns once the program (and anything holding its pipes) exits.
    std::thread::spawn(move || {
        let mut text = String::new();
        let mut buf = Vec::new();
        if let Some(out) = stdout.as_mut() {
            let _ = out.read_to_end(&mut buf);
        }
        if let Some(err) = stderr.as_mut() {
            let _ = err.read_to_end(&mut buf);
        }
        text.push_str(&String::from_utf8_lossy(&buf));
        let _ = tx.send(text);
    });
    let Ok(text) = rx.recv_timeout(VERSION_TIMEOUT) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("`{shown}` timed out after {VERSION_TIMEOUT:?}"));
    };
    let status = child
        .wait()
        .map_err(|e| format!("`{shown}` could not be waited for: {e}"))?;
    if !status.success() {
        return Err(format!("`{shown}` failed: {status}"));
    }
    Ok(text)
}

/// Extracts the first version-looking token (`3.11.2` from `Python 3.11.2`, `20.1.0` from
/// `v20.1.0`, `5.2.15` from `GNU bash, version 5.2.15(1)-release`); falls back to the first
/// line when there is none.
pub(super) fn parse_version(text: &str) -> String {
    let first_line = text.lines().next().unwrap_or("").trim();
    for line in text.lines() {
        let bytes = line.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let starts_token =
                i == 0 || !bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'v';
            if bytes[i].is_ascii_digit() && starts_token {
                let end = bytes[i..]
                    .iter()
                    .position(|b| !(b.is_ascii_digit() || *b == b'.'))
                    .map_or(bytes.len(), |p| i + p);
                let token = line[i..end].trim_end_matches('.');
                if token.contains('.') {
                    return token.to_owned();
                }
                i = end;
            } else {
                i += 1;
            }
        }
    }
    first_line.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::{image_version, parse_version};

    #[test]
    fn image_tags_are_versions() {
        assert_eq!(image_version("voidrunner/python:3.11"), "3.11");
        assert_eq!(image_version("registry:5000/x/py"), "latest");
        assert_eq!(image_version("py"), "latest");
    }

    #[test]
    fn versions_from_real_outputs() {
        assert_eq!(parse_version("Python 3.11.2\n"), "3.11.2");
        assert_eq!(parse_version("v20.20.2\n"), "20.20.2");
        assert_eq!(
            parse_version("GNU bash, version 5.2.15(1)-release (x86_64-pc-linux-gnu)\nCopyright"),
            "5.2.15"
        );
        assert_eq!(
            parse_version("gcc (Debian 12.2.0-14+deb12u1) 12.2.0\n"),
            "12.2.0"
        );
        assert_eq!(parse_version("x86 weird 7\n"), "x86 weird 7");
        assert_eq!(parse_version(""), "");
    }
}

//! Helpers of the git SSRF tests: repositories with submodules written directly (any URL,
//! nothing fetched), a loopback trap that must see no connection, and a static HTTP server
//! for git's "dumb" protocol (a superproject served over http, on loopback).

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};

use voidrunner_jobs::Source;
use voidrunner_jobs::source::{SourceError, SourceInputs, SourcePolicy, prepare};

use crate::common;

/// A loopback listener nobody should connect to.
pub struct Trap {
    pub listener: TcpListener,
}

impl Trap {
    /// Binds an ephemeral loopback port.
    pub fn new() -> Trap {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        Trap { listener }
    }
    /// The port to put in a URL that must never be contacted.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().expect("addr").port()
    }
    /// Every connection made so far is in the backlog: git has exited when this is called.
    pub fn assert_untouched(&self) {
        match self.listener.accept() {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Ok((_, from)) => panic!("the refused address was contacted from {from}"),
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// A repository at `dir` with one commit of `files`; answers its commit id.
pub fn repo(dir: &Path, files: &[(&str, &str)]) -> String {
    std::fs::create_dir_all(dir).expect("repo dir");
    common::git(dir, &["init", "-q", "--initial-branch=main"]);
    for (name, body) in files {
        std::fs::write(dir.join(name), body).expect("write");
    }
    common::git(dir, &["add", "."]);
    common::git(dir, &["commit", "-q", "-m", "files"]);
    common::git(dir, &["rev-parse", "HEAD"])
}

/// Adds submodules `(path, url, commit)` to the repository at `dir` (gitlinks written
/// directly: nothing is fetched here, the URL may be anything; quoted, so a `#` in it is
/// not a comment) and commits.
pub fn add_submodules(dir: &Path, subs: &[(&str, &str, &str)]) {
    let mut gitmodules = String::new();
    for (path, url, commit) in subs {
        gitmodules.push_str(&format!(
            "[submodule \"{path}\"]\n\tpath = {path}\n\turl = \"{url}\"\n"
        ));
        let info = format!("160000,{commit},{path}");
        common::git(dir, &["update-index", "--add", "--cacheinfo", &info]);
    }
    std::fs::write(dir.join(".gitmodules"), gitmodules).expect(".gitmodules");
    common::git(dir, &["add", ".gitmodules"]);
    common::git(dir, &["commit", "-q", "-m", "submodules"]);
}

/// The `file://` URL of a repository directory.
pub fn file_url(dir: &Path) -> String {
    format!("file://{}", dir.display())
}

/// A worker's source policy with these protocols and private hosts allowed or not.
pub fn policy(protocols: &[&str], allow_private: bool) -> SourcePolicy {
    SourcePolicy {
        git_protocols: protocols.iter().map(|p| (*p).to_owned()).collect(),
        allow_private_hosts: allow_private,
        // A hang fails the test instead of stalling it.
        git_timeout: std::time::Duration::from_secs(60),
        ..SourcePolicy::default()
    }
}

/// Clones `url` with submodules into a fresh `dest` under `area`.
pub fn clone(area: &Path, url: &str, policy: &SourcePolicy) -> (PathBuf, Result<(), SourceError>) {
    let dest = tempfile::tempdir_in(area).expect("dest").keep();
    let source = Source::Git {
        url: url.to_owned(),
        git_ref: None,
        depth: None,
        submodules: true,
    };
    let result = prepare(&source, &dest, SourceInputs::default(), policy).map(|_| ());
    (dest, result)
}

/// The source was refused with a message containing each of `wants`.
pub fn assert_refused(result: &Result<(), SourceError>, wants: &[&str]) {
    match result {
        Err(SourceError::Refused(m)) => {
            for want in wants {
                assert!(m.contains(want), "{want:?} not in {m:?}");
            }
        }
        other => panic!("not refused: {other:?}"),
    }
}

/// An empty (or absent) submodule directory: nothing was checked out there.
pub fn assert_empty(dir: &Path) {
    let entries: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.expect("entry").file_name()).collect())
        .unwrap_or_default();
    assert!(entries.is_empty(), "{}: {entries:?}", dir.display());
}

/// A minimal static HTTP server for git's "dumb" protocol: GET of files under its root.
pub struct DumbHttp {
    root: PathBuf,
    port: u16,
}

impl DumbHttp {
    /// Serves the files under `root` on an ephemeral loopback port, one thread.
    pub fn serve(root: PathBuf) -> DumbHttp {
        std::fs::create_dir_all(&root).expect("root");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let served = root.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                answer(stream, &served);
            }
        });
        DumbHttp { root, port }
    }

    /// Publishes a bare copy of the repository at `repo` as `name`.
    pub fn publish(&self, repo: &Path, name: &str) {
        let bare = self.root.join(name);
        let out = std::process::Command::new("git")
            .args(["clone", "-q", "--bare", "--no-local"])
            .arg(repo)
            .arg(&bare)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .expect("git clone --bare");
        assert!(out.status.success(), "{out:?}");
        common::git(&bare, &["update-server-info"]);
    }

    /// The http URL of a published repository.
    pub fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}", self.port)
    }
}

/// Answers one request: the file under `root`, or 404.
fn answer(mut stream: TcpStream, root: &Path) {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let request = String::from_utf8_lossy(&request);
    let path = request
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .split('?')
        .next()
        .unwrap_or("/")
        .trim_start_matches('/');
    let file = (!path.split('/').any(|c| c == ".."))
        .then(|| std::fs::read(root.join(path)).ok())
        .flatten();
    let _ = match file {
        Some(body) => stream
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: \
                     application/octet-stream\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            )
            .and_then(|()| stream.write_all(&body)),
        None => stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    };
}

//! Git sources as an attacker uses them to reach the server's own network (SSRF), against
//! real `git` and real repositories made here: submodule URLs in `.gitmodules` (first level
//! and nested) must pass the job's protocol allow-list and host check before anything is
//! fetched, and ssh goes through the pinned command. A "trap" listener on loopback proves
//! that a refused URL was never contacted (a connection would sit in its backlog).

#[expect(
    dead_code,
    reason = "helpers shared by several test binaries; this one uses some"
)]
mod common;

#[path = "git_ssrf/support.rs"]
mod support;

use std::io::Read;
use std::net::TcpListener;
use std::sync::mpsc;

use support::{
    DumbHttp, Trap, add_submodules, assert_empty, assert_refused, clone, file_url, policy, repo,
};
use voidrunner_jobs::source::SourceError;

#[test]
fn submodules_on_private_addresses_are_refused_and_never_contacted() {
    let area = tempfile::tempdir().expect("tempdir");
    let trap = Trap::new();
    let port = trap.port();
    let sub = area.path().join("sub");
    let commit = repo(&sub, &[("lib.c", "int lib;\n")]);
    for evil in [
        format!("http://127.0.0.1:{port}/x.git"),
        format!("http://localhost:{port}/x.git"),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        "http://10.255.255.1/x.git".to_owned(),
        format!("http://[::ffff:127.0.0.1]:{port}/x.git"),
    ] {
        let sup = tempfile::tempdir_in(area.path()).expect("super").keep();
        repo(&sup, &[("main.c", "int main;\n")]);
        add_submodules(&sup, &[("lib", &evil, &commit)]);
        let (dest, result) = clone(
            area.path(),
            &file_url(&sup),
            &policy(&["file", "http"], false),
        );
        assert_refused(&result, &["submodule lib", "git_allow_private"]);
        assert_empty(&dest.join("lib"));
        trap.assert_untouched();
    }
}

/// The control: with private hosts allowed, the same kind of URL does reach the listener
/// (so the trap would have seen a fetch that was not refused).
#[test]
fn with_private_hosts_allowed_the_submodule_url_is_contacted() {
    let area = tempfile::tempdir().expect("tempdir");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut buf = [0u8; 256];
            let n = stream.read(&mut buf).unwrap_or(0);
            let _ = tx.send(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    });
    let sub = area.path().join("sub");
    let commit = repo(&sub, &[("lib.c", "int lib;\n")]);
    let sup = area.path().join("super");
    repo(&sup, &[("main.c", "int main;\n")]);
    add_submodules(
        &sup,
        &[("lib", &format!("http://127.0.0.1:{port}/x.git"), &commit)],
    );
    let (_, result) = clone(
        area.path(),
        &file_url(&sup),
        &policy(&["file", "http"], true),
    );
    assert!(
        matches!(&result, Err(SourceError::Failed(m)) if m.contains("submodule lib")),
        "{result:?}"
    );
    let request = rx
        .try_recv()
        .expect("the listener was contacted (before git gave up)");
    assert!(request.starts_with("GET /x.git/"), "{request}");
}

#[test]
fn file_submodules_follow_the_file_protocol_policy() {
    let area = tempfile::tempdir().expect("tempdir");
    let sub = area.path().join("sub");
    let commit = repo(&sub, &[("lib.c", "int lib;\n")]);
    let sup = area.path().join("super");
    repo(&sup, &[("main.c", "int main;\n")]);
    add_submodules(
        &sup,
        &[
            ("lib", &file_url(&sub), &commit),
            ("rel", "../sub", &commit),
        ],
    );
    // Allowed: both the file:// URL and the relative one (resolved against file://…/super).
    let (dest, result) = clone(area.path(), &file_url(&sup), &policy(&["file"], false));
    assert_eq!(result, Ok(()));
    for path in ["lib/lib.c", "rel/lib.c"] {
        assert!(dest.join(path).is_file(), "{path}");
    }

    // Not allowed: the superproject comes over http, the submodule is file://.
    let server = DumbHttp::serve(area.path().join("srv"));
    server.publish(&sup, "super.git");
    server.publish(&sub, "sub.git");
    let http = policy(&["http"], true);
    let (dest, result) = clone(area.path(), &server.url("super.git"), &http);
    assert_refused(&result, &["submodule lib", "\"file\" is not allowed"]);
    assert_empty(&dest.join("lib"));
    assert_empty(&dest.join("rel"));

    // The relative URL alone resolves to the http server and is fetched from there.
    let sup2 = area.path().join("super2");
    repo(&sup2, &[("main.c", "int main;\n")]);
    add_submodules(&sup2, &[("rel", "../sub.git", &commit)]);
    server.publish(&sup2, "super2.git");
    let (dest, result) = clone(area.path(), &server.url("super2.git"), &http);
    assert_eq!(result, Ok(()));
    assert!(dest.join("rel/lib.c").is_file());
}

#[test]
fn local_path_submodules_are_refused_even_where_file_is_allowed() {
    let area = tempfile::tempdir().expect("tempdir");
    let sub = area.path().join("sub");
    let commit = repo(&sub, &[("lib.c", "int lib;\n")]);
    let sup = area.path().join("super");
    repo(&sup, &[("main.c", "int main;\n")]);
    add_submodules(&sup, &[("lib", &sub.display().to_string(), &commit)]);
    let (dest, result) = clone(area.path(), &file_url(&sup), &policy(&["file"], true));
    assert_refused(&result, &["submodule lib", "local paths"]);
    assert_empty(&dest.join("lib"));
}

#[test]
fn two_names_for_one_submodule_path_are_refused() {
    let area = tempfile::tempdir().expect("tempdir");
    let sub = area.path().join("sub");
    let commit = repo(&sub, &[("lib.c", "int lib;\n")]);
    let sup = area.path().join("super");
    repo(&sup, &[("main.c", "int main;\n")]);
    add_submodules(&sup, &[("lib", &file_url(&sub), &commit)]);
    let twice = format!(
        "[submodule \"a\"]\n\tpath = lib\n\turl = {0}\n[submodule \"b\"]\n\tpath = lib\n\turl = {0}\n",
        file_url(&sub)
    );
    std::fs::write(sup.join(".gitmodules"), twice).expect(".gitmodules");
    common::git(&sup, &["commit", "-q", "-am", "twice"]);
    let (dest, result) = clone(area.path(), &file_url(&sup), &policy(&["file"], false));
    assert_refused(&result, &["given twice"]);
    assert_empty(&dest.join("lib"));
}

#[test]
fn nested_submodules_are_checked_level_by_level() {
    let area = tempfile::tempdir().expect("tempdir");
    let trap = Trap::new();
    let leaf = area.path().join("leaf");
    let leaf_commit = repo(&leaf, &[("leaf.c", "int leaf;\n")]);
    let ok_mid = area.path().join("mid-ok");
    repo(&ok_mid, &[("mid.c", "int mid;\n")]);
    add_submodules(&ok_mid, &[("inner", &file_url(&leaf), &leaf_commit)]);
    let evil_mid = area.path().join("mid-evil");
    repo(&evil_mid, &[("mid.c", "int mid;\n")]);
    let evil = format!("http://127.0.0.1:{}/inner.git", trap.port());
    add_submodules(&evil_mid, &[("inner", &evil, &leaf_commit)]);
    let file_http = policy(&["file", "http"], false);

    // Allowed at every level: the second level is checked out.
    let sup = area.path().join("super-ok");
    repo(&sup, &[("main.c", "int main;\n")]);
    let mid_commit = common::git(&ok_mid, &["rev-parse", "HEAD"]);
    add_submodules(&sup, &[("lib", &file_url(&ok_mid), &mid_commit)]);
    let (dest, result) = clone(area.path(), &file_url(&sup), &file_http);
    assert_eq!(result, Ok(()));
    assert!(dest.join("lib/inner/leaf.c").is_file());

    // Refused on the second level, named by its path from the top, never contacted.
    let sup = area.path().join("super-evil");
    repo(&sup, &[("main.c", "int main;\n")]);
    let mid_commit = common::git(&evil_mid, &["rev-parse", "HEAD"]);
    add_submodules(&sup, &[("lib", &file_url(&evil_mid), &mid_commit)]);
    let (dest, result) = clone(area.path(), &file_url(&sup), &file_http);
    assert_refused(&result, &["submodule lib/inner", "git_allow_private"]);
    assert!(dest.join("lib/mid.c").is_file(), "the first level is fine");
    assert_empty(&dest.join("lib/inner"));
    trap.assert_untouched();
}

#[test]
fn submodule_nesting_is_capped() {
    let area = tempfile::tempdir().expect("tempdir");
    // A chain in one repository: each commit's submodule is the commit before it.
    let chain = area.path().join("chain");
    let mut commit = repo(&chain, &[("base.c", "int base;\n")]);
    let url = file_url(&chain);
    for _ in 0..10 {
        std::fs::remove_file(chain.join(".gitmodules")).ok();
        common::git(&chain, &["rm", "-q", "--cached", "--ignore-unmatch", "m"]);
        add_submodules(&chain, &[("m", &url, &commit)]);
        commit = common::git(&chain, &["rev-parse", "HEAD"]);
    }
    let (_, result) = clone(area.path(), &url, &policy(&["file"], false));
    assert_refused(&result, &["nested deeper than 8"]);
}

/// curl reads `http://127.0.0.1:P#@public.example/x` as host 127.0.0.1: such URLs are refused
/// before anything resolves or connects, for the job's URL and for submodules alike.
#[test]
fn urls_curl_reads_with_another_host_are_refused() {
    let area = tempfile::tempdir().expect("tempdir");
    let trap = Trap::new();
    let port = trap.port();
    let http = policy(&["http", "file"], false);
    for evil in [
        format!("http://127.0.0.1:{port}#@public.example/x.git"),
        format!("http://127.0.0.1:{port}?@public.example/x.git"),
    ] {
        let (_, result) = clone(area.path(), &evil, &http);
        assert_refused(&result, &["must not contain"]);
        let sub = tempfile::tempdir_in(area.path()).expect("sub").keep();
        let commit = repo(&sub, &[("lib.c", "int lib;\n")]);
        let sup = tempfile::tempdir_in(area.path()).expect("super").keep();
        repo(&sup, &[("main.c", "int main;\n")]);
        add_submodules(&sup, &[("lib", &evil, &commit)]);
        let (dest, result) = clone(area.path(), &file_url(&sup), &http);
        assert_refused(&result, &["submodule lib", "must not contain"]);
        assert_empty(&dest.join("lib"));
    }
    trap.assert_untouched();
}

#[test]
fn too_many_submodules_are_refused_before_any_is_fetched() {
    let area = tempfile::tempdir().expect("tempdir");
    let sub = area.path().join("sub");
    let commit = repo(&sub, &[("lib.c", "int lib;\n")]);
    let sup = area.path().join("super");
    repo(&sup, &[("main.c", "int main;\n")]);
    let url = file_url(&sub);
    let paths: Vec<String> = (0..257).map(|i| format!("m{i}")).collect();
    let subs: Vec<(&str, &str, &str)> = paths
        .iter()
        .map(|p| (p.as_str(), url.as_str(), commit.as_str()))
        .collect();
    add_submodules(&sup, &subs);
    let (dest, result) = clone(area.path(), &file_url(&sup), &policy(&["file"], false));
    assert!(
        matches!(&result, Err(SourceError::TooLarge(m)) if m.contains("256 submodules")),
        "{result:?}"
    );
    assert_empty(&dest.join("m0"));
}

#[test]
fn ssh_sources_connect_to_the_checked_address_only() {
    let area = tempfile::tempdir().expect("tempdir");
    let trap = Trap::new();
    let url = format!("ssh://git@127.0.0.1:{}/r.git", trap.port());
    let (_, result) = clone(area.path(), &url, &policy(&["ssh"], false));
    assert_refused(&result, &["git_allow_private"]);
    trap.assert_untouched();

    // Allowed: git runs the pinned ssh command, which reaches the listener and speaks ssh.
    let listener = trap.listener;
    listener.set_nonblocking(false).expect("blocking");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut buf = [0u8; 64];
            let n = stream.read(&mut buf).unwrap_or(0);
            let _ = tx.send(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    });
    let (_, result) = clone(area.path(), &url, &policy(&["ssh"], true));
    assert!(matches!(result, Err(SourceError::Failed(_))), "{result:?}");
    let banner = rx.try_recv().expect("ssh connected (before git gave up)");
    assert!(banner.starts_with("SSH-2.0-"), "{banner}");
}

/// `git://` cannot be pinned by name, so the URL is rewritten to the checked address: the
/// daemon sees `host=<address>`, never the name git would have resolved again.
#[test]
fn git_protocol_sources_connect_to_the_checked_address() {
    let area = tempfile::tempdir().expect("tempdir");
    let v4 = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = v4.local_addr().expect("addr").port();
    // Wherever `localhost` resolves first, someone listens there.
    let v6 = TcpListener::bind(("::1", port)).ok();
    let url = format!("git://localhost:{port}/x.git");
    let (_, result) = clone(area.path(), &url, &policy(&["git"], false));
    assert_refused(&result, &["git_allow_private"]);

    let (tx, rx) = mpsc::channel();
    for listener in std::iter::once(v4).chain(v6) {
        let tx = tx.clone();
        std::thread::spawn(move || {
            if let Ok((mut stream, _)) = listener.accept() {
                let mut request = Vec::new();
                let mut buf = [0u8; 256];
                // The request is one pkt-line: `git-upload-pack /x.git\0host=…\0`.
                while request.iter().filter(|b| **b == 0).count() < 2 {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                // Sent while the connection is open: git is still waiting for an answer.
                let _ = tx.send(String::from_utf8_lossy(&request).into_owned());
            }
        });
    }
    let (_, result) = clone(area.path(), &url, &policy(&["git"], true));
    assert!(matches!(result, Err(SourceError::Failed(_))), "{result:?}");
    let request = rx
        .try_recv()
        .expect("the daemon was contacted (before git gave up)");
    assert!(request.contains("git-upload-pack /x.git"), "{request:?}");
    assert!(
        request.contains(&format!("host=127.0.0.1:{port}"))
            || request.contains(&format!("host=[::1]:{port}")),
        "not pinned: {request:?}"
    );
}

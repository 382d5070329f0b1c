//! Source preparation against real `git` repositories, real archives and real directories,
//! including the attacks: refs that are options, disallowed protocols, archive entries with
//! absolute paths, `..`, links out, devices and FIFOs, caps, and copies with links out.
//! Each refused case also checks that nothing was written outside the destination.

#[expect(
    dead_code,
    reason = "helpers shared by several test binaries; this one uses some"
)]
mod common;

use std::path::{Path, PathBuf};

use voidrunner_jobs::Source;
use voidrunner_jobs::source::{SourceError, SourceInputs, SourcePolicy, prepare};

/// A scratch area with `dest/` (the job's src dir) and `outside/` (must stay empty).
struct Area {
    dir: tempfile::TempDir,
}

impl Area {
    fn new() -> Area {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("dest")).expect("dest");
        std::fs::create_dir(dir.path().join("outside")).expect("outside");
        Area { dir }
    }
    fn dest(&self) -> PathBuf {
        self.dir.path().join("dest")
    }
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    fn assert_nothing_outside(&self) {
        let outside: Vec<_> = std::fs::read_dir(self.path("outside"))
            .expect("read")
            .collect();
        assert!(
            outside.is_empty(),
            "something was written outside: {outside:?}"
        );
        let top: Vec<String> = std::fs::read_dir(self.dir.path())
            .expect("read")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| {
                !matches!(
                    n.as_str(),
                    "dest" | "outside" | "repo" | "upload.tar" | "src"
                )
            })
            .collect();
        assert!(
            top.is_empty(),
            "unexpected files next to the destination: {top:?}"
        );
    }
}

/// A repository with two commits on `main`, a tag `v1` on the first, a branch `feature`.
fn repo(area: &Area) -> (String, String) {
    let r = area.path("repo");
    std::fs::create_dir(&r).expect("repo");
    common::git(&r, &["init", "-q", "--initial-branch=main"]);
    std::fs::write(r.join("main.c"), "int main(void){return 0;}\n").expect("write");
    common::git(&r, &["add", "."]);
    common::git(&r, &["commit", "-q", "-m", "one"]);
    let first = common::git(&r, &["rev-parse", "HEAD"]);
    common::git(&r, &["tag", "v1"]);
    common::git(&r, &["branch", "feature"]);
    std::fs::write(r.join("main.c"), "int main(void){return 2;}\n").expect("write");
    common::git(&r, &["commit", "-q", "-am", "two"]);
    (format!("file://{}", r.display()), first)
}

fn file_policy() -> SourcePolicy {
    SourcePolicy {
        git_protocols: vec!["file".into()],
        ..SourcePolicy::default()
    }
}

fn git_source(url: &str, r: Option<&str>, depth: Option<u32>) -> Source {
    Source::Git {
        url: url.to_owned(),
        git_ref: r.map(str::to_owned),
        depth,
        submodules: false,
    }
}

#[test]
fn git_checks_out_the_default_branch_a_tag_a_commit_and_shallow() {
    let area = Area::new();
    let (url, first) = repo(&area);
    let cases = [
        (None, None, "return 2"),
        (Some("v1"), None, "return 0"),
        (Some("feature"), Some(1), "return 0"),
        (Some(first.as_str()), None, "return 0"),
        (Some(&first[..10]), None, "return 0"),
    ];
    for (r, depth, expect) in cases {
        let dest = area.path(&format!(
            "dest-{}-{}",
            r.unwrap_or("head"),
            depth.unwrap_or(0)
        ));
        std::fs::create_dir(&dest).expect("dest");
        let prepared = prepare(
            &git_source(&url, r, depth),
            &dest,
            SourceInputs::default(),
            &file_policy(),
        )
        .unwrap_or_else(|e| panic!("{r:?}: {e}"));
        let code = std::fs::read_to_string(dest.join("main.c")).expect("checked out");
        assert!(code.contains(expect), "{r:?}: {code}");
        assert!(prepared.commit.as_deref().is_some_and(|c| c.len() == 40));
        assert!(prepared.bytes > 0 && prepared.entries > 0);
        if depth == Some(1) {
            assert_eq!(
                common::git(&dest, &["rev-list", "--count", "HEAD"]),
                "1",
                "shallow"
            );
        }
        std::fs::remove_dir_all(&dest).expect("clean");
    }
}

#[test]
fn git_refuses_option_refs_bad_protocols_and_reports_unknown_refs() {
    let area = Area::new();
    let (url, _) = repo(&area);
    let dest = area.dest();
    for r in ["-b", "--upload-pack=touch /tmp/pwned", "main..x"] {
        let e = prepare(
            &git_source(&url, Some(r), None),
            &dest,
            SourceInputs::default(),
            &file_policy(),
        )
        .expect_err("refused");
        assert!(matches!(e, SourceError::Refused(_)), "{r}: {e}");
    }
    // file:// only when the operator allows it; ext:: and local paths never.
    for (u, policy) in [
        (url.as_str(), SourcePolicy::default()),
        ("ext::sh -c 'touch /tmp/pwned'", file_policy()),
        (area.path("repo").to_str().expect("utf8"), file_policy()),
    ] {
        let e = prepare(
            &git_source(u, None, None),
            &dest,
            SourceInputs::default(),
            &policy,
        )
        .expect_err("refused");
        assert!(matches!(e, SourceError::Refused(_)), "{u}: {e}");
    }
    let e = prepare(
        &git_source(&url, Some("no-such-branch"), None),
        &dest,
        SourceInputs::default(),
        &file_policy(),
    )
    .expect_err("unknown ref");
    assert!(matches!(e, SourceError::Failed(_)), "{e}");
    assert!(!Path::new("/tmp/pwned").exists());
    area.assert_nothing_outside();
}

#[test]
fn git_checkouts_over_the_size_cap_are_refused() {
    let area = Area::new();
    let (url, _) = repo(&area);
    let policy = SourcePolicy {
        max_entries: 3,
        ..file_policy()
    };
    let e = prepare(
        &git_source(&url, None, None),
        &area.dest(),
        SourceInputs::default(),
        &policy,
    )
    .expect_err("too many entries (.git counts)");
    assert!(matches!(e, SourceError::TooLarge(_)), "{e}");
}

/// Appends an entry with a raw (unchecked) name, as an attacker's archive would have.
fn raw_entry(
    b: &mut tar::Builder<Vec<u8>>,
    name: &str,
    kind: tar::EntryType,
    link: Option<&str>,
    data: &[u8],
) {
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    if let Some(l) = link {
        h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
    }
    h.set_cksum();
    b.append(&h, data).expect("append");
}

fn archive(build: impl FnOnce(&mut tar::Builder<Vec<u8>>), gzip: bool, to: &Path) {
    let mut b = tar::Builder::new(Vec::new());
    build(&mut b);
    let bytes = b.into_inner().expect("tar");
    let bytes = if gzip {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&bytes).expect("gz");
        gz.finish().expect("gz")
    } else {
        bytes
    };
    std::fs::write(to, bytes).expect("write archive");
}

fn extract(
    area: &Area,
    policy: &SourcePolicy,
) -> Result<voidrunner_jobs::source::Prepared, SourceError> {
    let upload = area.path("upload.tar");
    prepare(
        &Source::Tarball,
        &area.dest(),
        SourceInputs {
            tarball: Some(&upload),
            base_dir: None,
        },
        policy,
    )
}

#[test]
fn tarballs_extract_files_dirs_and_inside_links() {
    for gzip in [false, true] {
        let area = Area::new();
        archive(
            |b| {
                raw_entry(b, "src/", tar::EntryType::Directory, None, b"");
                raw_entry(
                    b,
                    "src/main.c",
                    tar::EntryType::Regular,
                    None,
                    b"int main;\n",
                );
                raw_entry(
                    b,
                    "latest",
                    tar::EntryType::Symlink,
                    Some("src/main.c"),
                    b"",
                );
                raw_entry(b, "src/up", tar::EntryType::Symlink, Some("../latest"), b"");
            },
            gzip,
            &area.path("upload.tar"),
        );
        let p = extract(&area, &SourcePolicy::default()).expect("extracts");
        assert_eq!(p.entries, 4);
        assert_eq!(p.bytes, 10);
        assert_eq!(
            std::fs::read_to_string(area.dest().join("latest")).expect("via link"),
            "int main;\n"
        );
        area.assert_nothing_outside();
    }
}

#[test]
fn hostile_archives_are_refused_and_write_nothing_outside() {
    let cases: [(&str, tar::EntryType, Option<&str>); 8] = [
        ("../outside/evil", tar::EntryType::Regular, None),
        ("/tmp/voidrunner-abs-evil", tar::EntryType::Regular, None),
        ("a/../../outside/evil", tar::EntryType::Regular, None),
        ("etc", tar::EntryType::Symlink, Some("/etc")),
        ("up", tar::EntryType::Symlink, Some("../outside")),
        ("hard", tar::EntryType::Link, Some("/etc/passwd")),
        ("fifo", tar::EntryType::Fifo, None),
        ("tty", tar::EntryType::Char, None),
    ];
    for (name, kind, link) in cases {
        let area = Area::new();
        archive(
            |b| {
                raw_entry(b, "ok.txt", tar::EntryType::Regular, None, b"fine");
                raw_entry(
                    b,
                    name,
                    kind,
                    link,
                    if kind == tar::EntryType::Regular {
                        b"evil"
                    } else {
                        b""
                    },
                );
                raw_entry(b, "outside/after", tar::EntryType::Regular, None, b"after");
            },
            true,
            &area.path("upload.tar"),
        );
        let e = extract(&area, &SourcePolicy::default()).expect_err(name);
        assert!(matches!(e, SourceError::Refused(_)), "{name}: {e}");
        assert!(
            e.to_string().contains(name.trim_end_matches('/')),
            "names the entry: {e}"
        );
        assert!(!Path::new("/tmp/voidrunner-abs-evil").exists());
        area.assert_nothing_outside();
    }
}

#[test]
fn archive_caps_stop_before_writing_past_them() {
    let area = Area::new();
    archive(
        |b| {
            for i in 0..5 {
                raw_entry(
                    b,
                    &format!("f{i}"),
                    tar::EntryType::Regular,
                    None,
                    &[b'x'; 1000],
                );
            }
        },
        false,
        &area.path("upload.tar"),
    );
    let e = extract(
        &area,
        &SourcePolicy {
            max_bytes: 2500,
            ..SourcePolicy::default()
        },
    )
    .expect_err("bytes");
    assert!(matches!(e, SourceError::TooLarge(_)), "{e}");
    assert!(!area.dest().join("f3").exists(), "stopped at the cap");
    let e = extract(
        &area,
        &SourcePolicy {
            max_entries: 2,
            ..SourcePolicy::default()
        },
    )
    .expect_err("entries");
    assert!(matches!(e, SourceError::TooLarge(_)), "{e}");
    std::fs::write(
        area.path("upload.tar"),
        b"this is not a tar archive at all, not even close",
    )
    .expect("write");
    let e = extract(&area, &SourcePolicy::default()).expect_err("garbage");
    assert!(
        matches!(e, SourceError::Failed(_) | SourceError::Refused(_)),
        "{e}"
    );
}

fn copy(
    area: &Area,
    policy: &SourcePolicy,
) -> Result<voidrunner_jobs::source::Prepared, SourceError> {
    prepare(
        &Source::Copy { path: "src".into() },
        &area.dest(),
        SourceInputs {
            tarball: None,
            base_dir: Some(area.dir.path()),
        },
        policy,
    )
}

#[test]
fn copies_keep_inside_links_and_refuse_links_out() {
    let policy = SourcePolicy {
        allow_copy: true,
        ..SourcePolicy::default()
    };
    let area = Area::new();
    let src = area.path("src");
    std::fs::create_dir_all(src.join("lib")).expect("mkdir");
    std::fs::write(src.join("lib/a.txt"), "a").expect("write");
    std::os::unix::fs::symlink("lib/a.txt", src.join("link")).expect("link");
    let p = copy(&area, &policy).expect("copied");
    assert_eq!(p.entries, 3);
    assert_eq!(
        std::fs::read_link(area.dest().join("link")).expect("still a link"),
        Path::new("lib/a.txt")
    );
    assert!(
        matches!(
            copy(&area, &SourcePolicy::default()),
            Err(SourceError::Refused(_))
        ),
        "copy needs the policy"
    );

    let area = Area::new();
    let src = area.path("src");
    std::fs::create_dir(&src).expect("mkdir");
    std::fs::write(src.join("ok"), "ok").expect("write");
    std::os::unix::fs::symlink("/etc/passwd", src.join("passwd")).expect("link");
    let e = copy(&area, &policy).expect_err("link out");
    assert!(
        matches!(e, SourceError::Refused(_)) && e.to_string().contains("passwd"),
        "{e}"
    );
    area.assert_nothing_outside();
    assert!(!area.dest().join("passwd").exists());

    let area = Area::new();
    let src = area.path("src");
    std::fs::create_dir(&src).expect("mkdir");
    std::os::unix::fs::symlink("../outside", src.join("up")).expect("link");
    assert!(matches!(copy(&area, &policy), Err(SourceError::Refused(_))));
}

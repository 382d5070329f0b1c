//! The mirror cleaner of a running node (`[hooks] mirror_max_idle_secs`): its first pass
//! removes an idle mirror, keeps a recently used one and one whose lock an event holds; an
//! event marks its mirror used (the lock file's mtime).

use std::fs::File;
use std::time::{Duration, SystemTime};

use sha2::Digest as _;

use super::*;
use crate::helpers::backend_tests;

backend_tests!(idle_mirrors_are_removed_and_used_or_locked_ones_stay,);

const DAY: Duration = Duration::from_secs(24 * 3600);

/// The mirror key of `url` as the hook names it (digest of the clone URL).
fn key(url: &str) -> String {
    hex::encode(&Sha256::digest(url.as_bytes())[..16])
}

/// A mirror `key` under `root`, last used `ago` before now.
fn kept(root: &Path, key: &str, ago: Duration) -> PathBuf {
    std::fs::create_dir_all(root.join(key)).expect("mirror dir");
    let lock = root.join(format!("{key}.lock"));
    let f = File::create(&lock).expect("lock file");
    f.set_modified(SystemTime::now() - ago).expect("mtime");
    lock
}

fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path)
        .expect("stat")
        .modified()
        .expect("mtime")
}

/// `voidrunner_git_mirrors_removed_total` as `/metrics` shows it (0 when absent).
async fn removed(app: &TestApp) -> f64 {
    let res = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("scrape");
    let text = res.text().await.expect("body");
    let s = voidrunner_metrics::testing::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    s.value("voidrunner_git_mirrors_removed_total", &[])
        .unwrap_or(0.0)
}

async fn idle_mirrors_are_removed_and_used_or_locked_ones_stay(b: Backend) {
    let mirrors = tempfile::tempdir().expect("tempdir");
    let root = mirrors.path().to_path_buf();
    let repo = Repo::new();
    let (idle, recent, busy) = ("a".repeat(32), "b".repeat(32), key(&repo.url));
    kept(&root, &idle, 20 * DAY);
    kept(&root, &recent, 13 * DAY);
    // The repository's mirror looks idle, but an event (here: the test) holds its lock.
    let busy_lock = kept(&root, &busy, 30 * DAY);
    let held = File::open(&busy_lock).expect("open");
    held.lock().expect("lock");

    // The node's cleaner makes its first pass at start.
    let app = b
        .spawn_with(|s| {
            s.hooks.git_protocols = vec!["file".into()];
            s.hooks.mirror_dir = Some(root.clone());
            s.hooks.mirror_max_idle_secs = 14 * 24 * 3600;
        })
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while removed(&app).await < 1.0 {
        assert!(tokio::time::Instant::now() < deadline, "no mirror removed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(removed(&app).await, 1.0);
    assert!(!root.join(&idle).exists() && !root.join(format!("{idle}.lock")).exists());
    assert!(
        root.join(&recent).is_dir(),
        "a mirror used 13 days ago was removed"
    );
    assert!(root.join(&busy).is_dir(), "a locked mirror was removed");

    // The lock let go, an event reads the repository through its mirror and marks it used.
    drop(held);
    let user = app.user().await;
    register(&app, &user, "github", "acme/app", &repo.url, false).await;
    let before = repo.head();
    let after = repo.commit_push(&[("src/app.txt", "v2\n")], "refs/heads/main");
    let v = github_push(&app, "gc-1", "refs/heads/main", &before, &after).await;
    assert_eq!(names(&started(&app, &v).await), ["main-build"], "{v}");
    let age = SystemTime::now()
        .duration_since(modified(&busy_lock))
        .unwrap_or_default();
    assert!(
        age < Duration::from_secs(600),
        "last use not marked: {age:?} ago"
    );
    assert!(
        root.join(&busy).join("HEAD").is_file(),
        "the event's mirror"
    );
}

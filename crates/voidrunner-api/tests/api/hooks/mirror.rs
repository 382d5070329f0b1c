//! The kept mirror (`[hooks] mirror_dir`): one bare repository per clone URL, reused by the
//! next event (so it fetches only what is new), pruned of branches the remote deleted, and
//! rebuilt when it is damaged, with the same workflows started each time.

use super::*;
use crate::helpers::backend_tests;

backend_tests!(a_kept_mirror_is_reused_pruned_and_rebuilt_when_damaged,);

/// The one mirror under `root` (its name is a digest of the URL).
fn only_mirror(root: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .expect("mirror dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(dirs.len(), 1, "one mirror per clone URL: {dirs:?}");
    dirs.into_iter().next().expect("a mirror")
}

fn branches(mirror: &Path) -> String {
    git(
        mirror,
        &["for-each-ref", "--format=%(refname)", "refs/heads/"],
    )
}

async fn a_kept_mirror_is_reused_pruned_and_rebuilt_when_damaged(b: Backend) {
    let mirrors = tempfile::tempdir().expect("tempdir");
    let root = mirrors.path().to_path_buf();
    let app = b
        .spawn_with(|s| {
            s.hooks.git_protocols = vec!["file".into()];
            s.hooks.mirror_dir = Some(root.clone());
        })
        .await;
    let user = app.user().await;
    let repo = Repo::new();
    register(&app, &user, "github", "acme/app", &repo.url, false).await;

    // First event: the mirror is created and the event reads it.
    let before = repo.head();
    let after = repo.commit_push(&[("src/app.txt", "v2\n")], "refs/heads/main");
    let v = github_push(&app, "m-1", "refs/heads/main", &before, &after).await;
    assert_eq!(names(&started(&app, &v).await), ["main-build"], "{v}");
    let mirror = only_mirror(&root);
    std::fs::write(mirror.join("kept-marker"), "x").expect("marker");

    // A new branch: the same mirror is fetched into (the marker stays) and sees it.
    let dev = repo.commit_push(&[("src/dev.txt", "d\n")], "refs/heads/dev");
    let v = github_push(&app, "m-2", "refs/heads/dev", &"0".repeat(40), &dev).await;
    assert_eq!(names(&started(&app, &v).await), ["dev-build"], "{v}");
    assert_eq!(only_mirror(&root), mirror);
    assert!(mirror.join("kept-marker").exists(), "the mirror was reused");
    assert!(branches(&mirror).contains("refs/heads/dev"));

    // The remote deletes `dev`: the next event's fetch prunes it from the mirror.
    git(&repo.work, &["push", "-q", "origin", ":refs/heads/dev"]);
    let before = after;
    let after = repo.commit_push(&[("src/app.txt", "v3\n")], "refs/heads/main");
    let v = github_push(&app, "m-3", "refs/heads/main", &before, &after).await;
    assert_eq!(names(&started(&app, &v).await), ["main-build"], "{v}");
    assert!(
        !branches(&mirror).contains("refs/heads/dev"),
        "{}",
        branches(&mirror)
    );

    // Damaged (its objects gone): the event still reads the right commit from a rebuilt one.
    std::fs::remove_dir_all(mirror.join("objects")).expect("damage");
    let before = after;
    let after = repo.commit_push(&[("src/app.txt", "v4\n")], "refs/heads/main");
    let v = github_push(&app, "m-4", "refs/heads/main", &before, &after).await;
    let ws = started(&app, &v).await;
    assert_eq!(names(&ws), ["main-build"], "{v}");
    assert_eq!(ws[0].origin["sha"], after.as_str());
    assert_eq!(v["summary"]["changed_files"], 1, "{v}");
    assert!(!mirror.join("kept-marker").exists(), "rebuilt from scratch");
}

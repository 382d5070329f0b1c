//! The mirror cleaner on real directories and real `flock` locks.

use super::*;

const KEY: &str = "0123456789abcdef0123456789abcdef";
const DAY: Duration = Duration::from_secs(24 * 3600);
const MAX_IDLE: Duration = Duration::from_secs(14 * 24 * 3600);

/// A mirror `key` under `root` (a directory with one file, and its lock file) last used
/// `ago` before now.
fn kept(root: &Path, key: &str, ago: Duration) {
    std::fs::create_dir_all(root.join(key).join("objects")).expect("mirror dir");
    std::fs::write(root.join(key).join("HEAD"), "ref: refs/heads/main\n").expect("HEAD");
    let lock = File::create(lock_path(root, key)).expect("lock file");
    lock.set_modified(SystemTime::now() - ago).expect("mtime");
}

fn exists(root: &Path, key: &str) -> (bool, bool) {
    (root.join(key).exists(), lock_path(root, key).exists())
}

#[test]
fn an_idle_mirror_is_removed_with_its_lock_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    kept(dir.path(), KEY, 20 * DAY);
    assert_eq!(
        remove_idle(dir.path(), MAX_IDLE, SystemTime::now()).expect("pass"),
        1
    );
    assert_eq!(exists(dir.path(), KEY), (false, false));
    // Nothing left: the next pass removes nothing.
    assert_eq!(
        remove_idle(dir.path(), MAX_IDLE, SystemTime::now()).expect("pass"),
        0
    );
}

#[test]
fn a_recently_used_mirror_stays() {
    let dir = tempfile::tempdir().expect("tempdir");
    kept(dir.path(), KEY, 13 * DAY);
    assert_eq!(
        remove_idle(dir.path(), MAX_IDLE, SystemTime::now()).expect("pass"),
        0
    );
    assert_eq!(exists(dir.path(), KEY), (true, true));
    // Idle by a day later, but a use now (the lock taken and given back) starts over.
    let later = SystemTime::now() + 2 * DAY;
    drop(lock_mirror(dir.path(), KEY).expect("lock"));
    assert_eq!(remove_idle(dir.path(), MAX_IDLE, later).expect("pass"), 0);
    assert_eq!(exists(dir.path(), KEY), (true, true));
    assert_eq!(
        remove_idle(dir.path(), MAX_IDLE, later + MAX_IDLE).expect("pass"),
        1
    );
}

#[test]
fn a_locked_mirror_stays_until_its_lock_is_released() {
    let dir = tempfile::tempdir().expect("tempdir");
    kept(dir.path(), KEY, 20 * DAY);
    // An event (of this or another process) holds the lock without touching the file.
    let held = File::open(lock_path(dir.path(), KEY)).expect("open");
    held.lock().expect("lock");
    assert_eq!(
        remove_idle(dir.path(), MAX_IDLE, SystemTime::now()).expect("pass"),
        0
    );
    assert_eq!(exists(dir.path(), KEY), (true, true));
    drop(held);
    assert_eq!(
        remove_idle(dir.path(), MAX_IDLE, SystemTime::now()).expect("pass"),
        1
    );
    assert_eq!(exists(dir.path(), KEY), (false, false));
}

#[test]
fn only_mirrors_are_considered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let other = "fedcba9876543210fedcba9876543210";
    kept(dir.path(), KEY, 20 * DAY);
    kept(dir.path(), other, DAY);
    // Files that are not `<32 hex>.lock` are not ours, however old.
    for name in [
        "notes.lock",
        "0123.lock",
        "ZZ23456789abcdef0123456789abcdef.lock",
    ] {
        let f = File::create(dir.path().join(name)).expect("file");
        f.set_modified(SystemTime::now() - 100 * DAY)
            .expect("mtime");
    }
    assert_eq!(
        remove_idle(dir.path(), MAX_IDLE, SystemTime::now()).expect("pass"),
        1
    );
    assert_eq!(exists(dir.path(), KEY), (false, false));
    assert_eq!(exists(dir.path(), other), (true, true));
    assert!(dir.path().join("notes.lock").exists());
    // A missing root is an empty one.
    let gone = dir.path().join("missing");
    assert_eq!(
        remove_idle(&gone, MAX_IDLE, SystemTime::now()).expect("pass"),
        0
    );
}

#[test]
fn a_use_after_removal_takes_a_new_lock_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    kept(dir.path(), KEY, 20 * DAY);
    // A user opened the lock file before the cleaner removed it (it would wait on it).
    let stale = File::open(lock_path(dir.path(), KEY)).expect("open");
    assert_eq!(
        remove_idle(dir.path(), MAX_IDLE, SystemTime::now()).expect("pass"),
        1
    );
    assert!(!is_current(&stale, &lock_path(dir.path(), KEY)).expect("stat"));
    // `lock_mirror` creates and locks a new one, marked used now.
    let fresh = lock_mirror(dir.path(), KEY).expect("lock");
    assert!(is_current(&fresh, &lock_path(dir.path(), KEY)).expect("stat"));
    let modified = fresh.metadata().expect("meta").modified().expect("mtime");
    assert!(!is_idle(
        modified,
        SystemTime::now(),
        Duration::from_secs(60)
    ));
    // Held: the cleaner leaves it even when asked far in the future.
    let far = SystemTime::now() + 100 * DAY;
    assert_eq!(remove_idle(dir.path(), MAX_IDLE, far).expect("pass"), 0);
    assert!(lock_path(dir.path(), KEY).exists());
}

#[test]
fn a_last_use_in_the_future_is_not_idle() {
    let now = SystemTime::now();
    assert!(!is_idle(now + DAY, now, MAX_IDLE));
    assert!(is_idle(now - MAX_IDLE, now, MAX_IDLE));
    assert!(!is_idle(
        now - MAX_IDLE + Duration::from_secs(1),
        now,
        MAX_IDLE
    ));
}

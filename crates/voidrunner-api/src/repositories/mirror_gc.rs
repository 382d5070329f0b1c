//! Kept git mirrors (`[hooks] mirror_dir`) and their removal once idle. Each mirror is the
//! directory `<root>/<key>` (`key`: 32 hex digits of a digest of the clone URL) guarded by
//! the file `<root>/<key>.lock`:
//! - a user ([`lock_mirror`]) opens the lock file, takes its lock (blocking), checks the
//!   path still names the file it locked (else the cleaner removed it meanwhile: it tries
//!   again) and touches it: the lock file's mtime is the mirror's last use;
//! - the cleaner ([`remove_idle`]) takes the lock of an idle-looking mirror WITHOUT waiting
//!   (a mirror in use is skipped), checks the mtime again under the lock, removes the
//!   directory, then the lock file, then lets the lock go.
//!
//! So a mirror is never removed while an event reads it, across processes sharing the
//! directory too, and a user that waited on a removed lock file never shares a mirror with
//! one that created the new lock file. The mirror of a URL no repository uses any more is
//! removed after `[hooks] mirror_max_idle_secs`; one still in use is just fetched afresh.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::context::ApiContext;

/// Pause between two passes of the cleaner (the first pass runs at start).
const EVERY: Duration = Duration::from_secs(3600);

/// The lock file of mirror `key` under `root`.
fn lock_path(root: &Path, key: &str) -> PathBuf {
    root.join(format!("{key}.lock"))
}

/// `file` (open) is still the file at `path`: the cleaner has not removed it.
fn is_current(file: &File, path: &Path) -> io::Result<bool> {
    let held = file.metadata()?;
    match std::fs::metadata(path) {
        Ok(now) => Ok(held.dev() == now.dev() && held.ino() == now.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Locks mirror `key` under `root` for one use (blocking while another user holds it) and
/// marks it used now. Dropping the file releases the lock.
pub(crate) fn lock_mirror(root: &Path, key: &str) -> io::Result<File> {
    let path = lock_path(root, key);
    loop {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        file.lock()?;
        if is_current(&file, &path)? {
            file.set_modified(SystemTime::now())?;
            return Ok(file);
        }
        // The cleaner removed this mirror while we waited: take the new lock file.
    }
}

/// The mirror key of a lock file name (`<32 hex>.lock`); other names are not ours.
fn key_of(name: &str) -> Option<&str> {
    let key = name.strip_suffix(".lock")?;
    (key.len() == 32 && key.bytes().all(|b| b.is_ascii_hexdigit())).then_some(key)
}

/// Last use `modified` is at least `max_idle` before `now`.
fn is_idle(modified: SystemTime, now: SystemTime, max_idle: Duration) -> bool {
    now.duration_since(modified)
        .is_ok_and(|idle| idle >= max_idle)
}

/// Removes the mirrors under `root` not used for `max_idle` at `now` and not locked now;
/// answers how many. A mirror that cannot be removed is logged and left for the next pass.
pub(crate) fn remove_idle(root: &Path, max_idle: Duration, now: SystemTime) -> io::Result<u64> {
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(key) = name.to_str().and_then(key_of) else {
            continue;
        };
        match remove_if_idle(root, key, max_idle, now) {
            Ok(true) => {
                tracing::info!(git.mirror = key, "removed the git mirror {key}: idle");
                removed += 1;
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(git.mirror = key, "removing the git mirror {key}: {e}"),
        }
    }
    Ok(removed)
}

/// Removes mirror `key` if it is idle and nobody holds its lock.
fn remove_if_idle(root: &Path, key: &str, max_idle: Duration, now: SystemTime) -> io::Result<bool> {
    let path = lock_path(root, key);
    if !is_idle(std::fs::metadata(&path)?.modified()?, now, max_idle) {
        return Ok(false);
    }
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(false),
        Err(TryLockError::Error(e)) => return Err(e),
    }
    // Under the lock: still the file at the path, and not used since it was looked at.
    if !is_current(&file, &path)? || !is_idle(file.metadata()?.modified()?, now, max_idle) {
        return Ok(false);
    }
    match std::fs::remove_dir_all(root.join(key)) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::remove_file(&path)?;
    drop(file);
    Ok(true)
}

/// The running mirror cleaner of this node; [`MirrorCleaner::stop`] ends it.
#[derive(Debug)]
pub(crate) struct MirrorCleaner {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl MirrorCleaner {
    /// Starts the hourly pass over `[hooks] mirror_dir`; `None` without a mirror directory
    /// or with `mirror_max_idle_secs = 0` (mirrors are then kept).
    pub(crate) fn start(ctx: &ApiContext) -> Option<Self> {
        let hooks = &ctx.settings().hooks;
        let root = hooks.mirror_dir.clone()?;
        if hooks.mirror_max_idle_secs == 0 {
            return None;
        }
        let max_idle = Duration::from_secs(hooks.mirror_max_idle_secs);
        let metrics = ctx.metrics().clone();
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                let dir = root.clone();
                let pass = tokio::task::spawn_blocking(move || {
                    remove_idle(&dir, max_idle, SystemTime::now())
                });
                match pass.await {
                    Ok(Ok(n)) => metrics.record_mirrors_removed(n),
                    Ok(Err(e)) => tracing::warn!("git mirrors: reading {}: {e}", root.display()),
                    Err(e) => tracing::warn!("git mirrors: the cleaning pass ended badly: {e}"),
                }
                tokio::select! {
                    _ = stopped.wait_for(|s| *s) => break,
                    () = tokio::time::sleep(EVERY) => {}
                }
            }
        });
        Some(Self { stop, task })
    }

    /// Stops the loop after the current pass and waits for it.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::warn!("git mirror cleaner ended badly: {e}");
        }
    }
}

#[cfg(test)]
#[path = "mirror_gc_tests.rs"]
mod tests;

//! The at-rest key: generated once into a file only its owner can read.
//!
//! Creation is atomic: the key is written and synced under a temporary name (created exclusively
//! with mode 0600) and then hard-linked to the final name, which fails if another process won
//! the race. So a reader never sees a partly written key, and concurrent first starts agree on
//! one key.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::crypto::{KEY_LEN, SecretKey};

/// Why the key file could not be used. Names the path, never the key.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// An IO step failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Group or others have some permission on the file.
    #[error("{path} is accessible by other users (mode {mode:o}); run `chmod 600` on it")]
    Exposed {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Not a regular file (a directory, device, ...). Symlinks are refused when opening.
    #[error("{path} is not a regular file")]
    NotAFile {
        /// The key file.
        path: PathBuf,
    },
    /// The file does not hold exactly [`KEY_LEN`] bytes.
    #[error("{path} does not hold a {KEY_LEN}-byte key")]
    WrongLength {
        /// The key file.
        path: PathBuf,
    },
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> KeyFileError {
    let path = path.to_path_buf();
    move |source| KeyFileError::Io {
        action,
        path,
        source,
    }
}

/// Loads the key at `path`, creating it (and its directory) with a random key on first use.
/// Refuses a key file that group or others can access, or that has the wrong length.
pub fn load_or_create_key(path: &Path) -> Result<SecretKey, KeyFileError> {
    match read_key(path) {
        Err(KeyFileError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {}
        other => return other,
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(io("creating directory", dir))?;
    }
    let key = SecretKey::generate();
    let name = path
        .file_name()
        .map_or_else(|| "key".into(), |n| n.to_string_lossy().into_owned());
    let temp = path.with_file_name(format!(".{name}.tmp-{}-{}", std::process::id(), key.id()));
    let result = write_new(&temp, key.bytes())
        .and_then(|()| fs::hard_link(&temp, path).map_err(io("linking", path)));
    // The temporary name is never needed again, whatever happened.
    let _ = fs::remove_file(&temp);
    match result {
        Ok(()) => {
            // Make the new name durable; a failure here is not worth refusing the key.
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                let _ = File::open(dir).and_then(|d| d.sync_all());
            }
            Ok(key)
        }
        Err(KeyFileError::Io { source, .. }) if source.kind() == ErrorKind::AlreadyExists => {
            read_key(path)
        }
        Err(e) => Err(e),
    }
}

fn write_new(path: &Path, bytes: &[u8]) -> Result<(), KeyFileError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io("creating", path))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io("writing", path))
}

fn read_key(path: &Path) -> Result<SecretKey, KeyFileError> {
    let mut file: File = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(io("opening", path))?;
    let meta = file.metadata().map_err(io("inspecting", path))?;
    if !meta.is_file() {
        return Err(KeyFileError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Exposed {
            path: path.to_path_buf(),
            mode: mode & 0o777,
        });
    }
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    file.read_exact(bytes.as_mut())
        .map_err(|e| match e.kind() {
            ErrorKind::UnexpectedEof => KeyFileError::WrongLength {
                path: path.to_path_buf(),
            },
            _ => io("reading", path)(e),
        })?;
    let mut extra = [0u8; 1];
    if file.read(&mut extra).map_err(io("reading", path))? != 0 {
        return Err(KeyFileError::WrongLength {
            path: path.to_path_buf(),
        });
    }
    Ok(SecretKey::from_zeroizing(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SecretBox;

    #[test]
    fn created_once_owner_only_and_stable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys").join("secrets.key");
        let first = load_or_create_key(&path).expect("create");
        let second = load_or_create_key(&path).expect("load");
        assert_eq!(first.id(), second.id());
        let sealed = SecretBox::new(&first).seal(b"value").expect("seal");
        assert_eq!(
            SecretBox::new(&second)
                .open(&sealed)
                .expect("open")
                .as_slice(),
            b"value"
        );
        let meta = fs::metadata(&path).expect("meta");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.len(), KEY_LEN as u64);
        let leftovers = fs::read_dir(path.parent().expect("parent"))
            .expect("read_dir")
            .count();
        assert_eq!(leftovers, 1, "temporary file left behind");
    }

    #[test]
    fn concurrent_first_starts_agree_on_one_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secrets.key");
        let ids: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| load_or_create_key(&path).expect("key").id()))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("join"))
                .collect()
        });
        assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    }

    #[test]
    fn exposed_short_long_and_symlinked_files_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secrets.key");
        load_or_create_key(&path).expect("create");
        for mode in [0o640, 0o604, 0o644, 0o660] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
            let err = load_or_create_key(&path).expect_err("exposed key accepted");
            assert!(matches!(err, KeyFileError::Exposed { .. }), "{err}");
        }
        for len in [16, 33] {
            let bad = dir.path().join(format!("len-{len}.key"));
            fs::write(&bad, vec![1u8; len]).expect("write");
            fs::set_permissions(&bad, fs::Permissions::from_mode(0o600)).expect("chmod");
            let err = load_or_create_key(&bad).expect_err("bad length accepted");
            assert!(matches!(err, KeyFileError::WrongLength { .. }), "{err}");
        }
        let link = dir.path().join("link.key");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        std::os::unix::fs::symlink(&path, &link).expect("symlink");
        assert!(load_or_create_key(&link).is_err(), "symlinked key accepted");
        let err = load_or_create_key(dir.path()).expect_err("directory accepted");
        assert!(!err.to_string().is_empty());
    }
}

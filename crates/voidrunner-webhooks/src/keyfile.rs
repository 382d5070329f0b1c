//! The server webhook key file `<data_dir>/webhook.key`: 32 random bytes (hex), generated
//! once, readable only by its owner.
//!
//! Creation is atomic: the key is written and synced under a unique temporary name created
//! exclusively with mode 0600, then hard-linked to the final name, which fails when another
//! process won the race (that process's key is then read). A reader never sees a partial key.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::signing::WebhookKey;

/// File name of the key inside the data directory.
pub const KEY_FILE: &str = "webhook.key";

/// Why the key file could not be used. Names the path, never the key.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// An IO step failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Group or others have some permission on the file.
    #[error("{path} is accessible by other users (mode {mode:o}); run `chmod 600` on it")]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file does not hold a hex key of at least 32 bytes.
    #[error("{path} does not hold a hex key of at least 32 bytes")]
    Invalid {
        /// The file.
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

/// Reads the key at `path`, creating it first when it does not exist.
pub fn load_or_create(path: &Path) -> Result<WebhookKey, KeyFileError> {
    match read(path) {
        Err(KeyFileError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {}
        other => return other,
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, bytes.as_mut());
    let text = Zeroizing::new(hex::encode(bytes.as_ref()));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io("creating", &tmp))?;
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_all());
    let linked = written.and_then(|()| fs::hard_link(&tmp, path));
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            tracing::info!(path = %path.display(), "generated a new webhook signing key");
            read(path)
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => read(path),
        Err(e) => Err(io("writing", path)(e)),
    }
}

fn read(path: &Path) -> Result<WebhookKey, KeyFileError> {
    let meta = fs::metadata(path).map_err(io("reading", path))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Exposed {
            path: path.to_path_buf(),
            mode,
        });
    }
    let text = Zeroizing::new(fs::read_to_string(path).map_err(io("reading", path))?);
    let invalid = || KeyFileError::Invalid {
        path: path.to_path_buf(),
    };
    let bytes = Zeroizing::new(hex::decode(text.trim()).map_err(|_| invalid())?);
    WebhookKey::new(bytes.to_vec()).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_owner_only_and_stable() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join(KEY_FILE);
        let a = load_or_create(&path).expect("create");
        let b = load_or_create(&path).expect("reuse");
        let user = voidrunner_domain::UserId::new();
        assert_eq!(a.user_secret(user), b.user_secret(user));
        let mode = fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let other = tempfile::tempdir().expect("dir");
        let c = load_or_create(&other.path().join(KEY_FILE)).expect("other");
        assert_ne!(a.user_secret(user), c.user_secret(user));
    }

    #[test]
    fn exposed_or_short_keys_are_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join(KEY_FILE);
        fs::write(&path, "ab".repeat(32)).expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(
            load_or_create(&path),
            Err(KeyFileError::Exposed { .. })
        ));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        load_or_create(&path).expect("valid now");
        fs::write(&path, "abcd").expect("write");
        assert!(matches!(
            load_or_create(&path),
            Err(KeyFileError::Invalid { .. })
        ));
    }
}

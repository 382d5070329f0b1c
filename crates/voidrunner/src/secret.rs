//! The JWT signing key: configured, or generated once and kept next to the database.
//!
//! There is no built-in default key. Without configuration the first start writes 64 random
//! bytes (hex) to `<data_dir>/jwt-secret`, created exclusively with mode 0600 so a concurrent
//! start cannot interleave and no other user can read it.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, bail};
use rand::RngCore;

/// Minimum length of a configured key, in bytes.
const MIN_SECRET_BYTES: usize = 32;
/// File name of the generated key inside the data directory.
pub const SECRET_FILE: &str = "jwt-secret";

/// Returns the configured key, or the one stored in `data_dir` (generating it on first use).
pub fn resolve_jwt_secret(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    if let Some(key) = configured {
        if key.len() < MIN_SECRET_BYTES {
            bail!("auth.jwt_secret: must be at least {MIN_SECRET_BYTES} bytes");
        }
        return Ok(key.as_bytes().to_vec());
    }
    fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    let path = data_dir.join(SECRET_FILE);
    let mut bytes = [0u8; 64];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let generated = hex::encode(bytes);
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(mut file) => {
            file.write_all(generated.as_bytes())
                .and_then(|()| file.sync_all())
                .with_context(|| format!("writing {}", path.display()))?;
            tracing::info!(path = %path.display(), "generated a new JWT signing key");
            Ok(generated.into_bytes())
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => read_existing(&path),
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

fn read_existing(path: &Path) -> anyhow::Result<Vec<u8>> {
    let meta = fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        bail!(
            "{} is readable by other users (mode {:o}); run `chmod 600` on it",
            path.display(),
            meta.permissions().mode() & 0o777
        );
    }
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let key = text.trim();
    if key.len() < MIN_SECRET_BYTES {
        bail!(
            "{} holds a key shorter than {MIN_SECRET_BYTES} bytes",
            path.display()
        );
    }
    Ok(key.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_owner_only_and_stable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = resolve_jwt_secret(None, dir.path()).expect("generate");
        let second = resolve_jwt_secret(None, dir.path()).expect("reuse");
        assert_eq!(first, second);
        assert_eq!(first.len(), 128);
        let mode = fs::metadata(dir.path().join(SECRET_FILE))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn other_data_dirs_get_other_keys() {
        let a = tempfile::tempdir().expect("tempdir");
        let b = tempfile::tempdir().expect("tempdir");
        assert_ne!(
            resolve_jwt_secret(None, a.path()).expect("a"),
            resolve_jwt_secret(None, b.path()).expect("b")
        );
    }

    #[test]
    fn short_or_exposed_keys_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(resolve_jwt_secret(Some("short"), dir.path()).is_err());
        let path = dir.path().join(SECRET_FILE);
        fs::write(&path, "x".repeat(64)).expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(resolve_jwt_secret(None, dir.path()).is_err());
    }
}

//! Workspaces: size- and inode-limited tmpfs directories on the host, shared by several runs
//! (compile then run, CI steps) and mounted read-write at `/work` inside each.
//!
//! The host side reads and writes them with `openat` and `O_NOFOLLOW` at every component,
//! so a symlink or FIFO planted by a sandboxed program cannot redirect or block the service.

use crate::error::SandboxError;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

/// A work directory; unmounted and removed when dropped (keep it in an `Arc` while runs use it).
#[derive(Debug)]
pub struct Workspace {
    path: PathBuf,
    mounted: bool,
    uid: u32,
    gid: u32,
}

impl Workspace {
    pub(crate) fn create(
        path: PathBuf,
        size_bytes: u64,
        max_inodes: Option<u64>,
        uid: u32,
        gid: u32,
    ) -> Result<Self, SandboxError> {
        std::fs::create_dir(&path).map_err(|e| SandboxError::file("mkdir", &path, e))?;
        let mut ws = Self {
            path,
            mounted: false,
            uid,
            gid,
        };
        let inodes = max_inodes.map_or((size_bytes / 8192).clamp(1024, 1 << 20), |m| {
            m.clamp(16, 1 << 20)
        });
        let opts = format!(
            "size={},nr_inodes={inodes},mode=0755,uid={uid},gid={gid}",
            size_bytes.max(4096)
        );
        let (src, fstype) = (c"voidrunner-ws", c"tmpfs");
        let target = crate::sys::cstring(ws.path.as_os_str())
            .map_err(|_| SandboxError::Invalid("NUL in path".into()))?;
        let data = CString::new(opts.clone())
            .map_err(|_| SandboxError::Invalid("NUL in options".into()))?;
        // SAFETY: all pointers are valid NUL-terminated strings for the duration of the call.
        let rc = unsafe {
            libc::mount(
                src.as_ptr(),
                target.as_ptr(),
                fstype.as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                data.as_ptr().cast(),
            )
        };
        if rc == 0 {
            ws.mounted = true;
        } else {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EPERM) {
                return Err(SandboxError::Syscall {
                    call: format!("mount(tmpfs, {}, {opts})", ws.path.display()),
                    source: err,
                });
            }
            tracing::warn!(workspace.path = %ws.path.display(), "workspace is a plain directory (DEGRADED: no size limit): mount not permitted");
            std::os::unix::fs::chown(&ws.path, Some(uid), Some(gid))
                .map_err(|e| SandboxError::file("chown", &ws.path, e))?;
        }
        Ok(ws)
    }

    /// Host path of the workspace (mounted at `/work` in runs).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `true` when the workspace is a plain directory without a size limit (no mount privilege).
    pub fn is_degraded(&self) -> bool {
        !self.mounted
    }

    /// Writes `bytes` to `rel` (parents created), owned by the sandbox uid, with `mode`.
    pub fn write_file(&self, rel: &str, bytes: &[u8], mode: u32) -> Result<(), SandboxError> {
        let (dir, name) = self.walk(rel, true)?;
        let fd = openat(
            &dir,
            &name,
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_NOFOLLOW,
            0o600,
        )
        .map_err(|e| SandboxError::file("create", self.path.join(rel), e))?;
        let mut f = std::fs::File::from(fd);
        std::io::Write::write_all(&mut f, bytes)
            .map_err(|e| SandboxError::file("write", self.path.join(rel), e))?;
        // SAFETY: fchown/fchmod on an fd we own.
        let rc = unsafe {
            libc::fchown(f.as_raw_fd(), self.uid, self.gid) | libc::fchmod(f.as_raw_fd(), mode)
        };
        if rc != 0 {
            return Err(SandboxError::file(
                "chown",
                self.path.join(rel),
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// Reads the regular file `rel`, at most `max_bytes` (symlinks, FIFOs, devices refused).
    pub fn read_file(&self, rel: &str, max_bytes: u64) -> Result<Vec<u8>, SandboxError> {
        let (dir, name) = self.walk(rel, false)?;
        let fd = openat(
            &dir,
            &name,
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK,
            0,
        )
        .map_err(|e| SandboxError::file("open", self.path.join(rel), e))?;
        let f = std::fs::File::from(fd);
        let meta = f
            .metadata()
            .map_err(|e| SandboxError::file("stat", self.path.join(rel), e))?;
        if !meta.is_file() {
            return Err(SandboxError::Invalid(format!(
                "{rel} is not a regular file"
            )));
        }
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(f, max_bytes), &mut out)
            .map_err(|e| SandboxError::file("read", self.path.join(rel), e))?;
        Ok(out)
    }

    /// Opens the parent directory of `rel` without following symlinks; returns it and the
    /// last component.
    fn walk(&self, rel: &str, create: bool) -> Result<(OwnedFd, CString), SandboxError> {
        let p = Path::new(rel);
        let comps: Vec<&std::ffi::OsStr> = p
            .components()
            .map(|c| match c {
                Component::Normal(s) => Ok(s),
                _ => Err(SandboxError::Invalid(format!(
                    "workspace path {rel:?} must be relative without '..'"
                ))),
            })
            .collect::<Result<_, _>>()?;
        let Some((last, parents)) = comps.split_last() else {
            return Err(SandboxError::Invalid("empty workspace path".into()));
        };
        let c = |s: &std::ffi::OsStr| {
            crate::sys::cstring(s).map_err(|_| SandboxError::Invalid("NUL in path".into()))
        };
        let root = crate::sys::cstring(self.path.as_os_str())
            .map_err(|_| SandboxError::Invalid("NUL in path".into()))?;
        // SAFETY: `root` is a valid path string; the returned fd is owned below.
        let fd = unsafe { libc::open(root.as_ptr(), libc::O_DIRECTORY | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(SandboxError::file(
                "open",
                &self.path,
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: fresh fd from open.
        let mut dir = unsafe { OwnedFd::from_raw_fd(fd) };
        for comp in parents {
            let name = c(comp)?;
            if create {
                // SAFETY: valid dir fd and name; EEXIST is fine.
                if unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o755) } == 0 {
                    // SAFETY: as above; AT_SYMLINK_NOFOLLOW on the directory just created.
                    unsafe {
                        libc::fchownat(
                            dir.as_raw_fd(),
                            name.as_ptr(),
                            self.uid,
                            self.gid,
                            libc::AT_SYMLINK_NOFOLLOW,
                        )
                    };
                }
            }
            dir = openat(&dir, &name, libc::O_DIRECTORY | libc::O_NOFOLLOW, 0)
                .map_err(|e| SandboxError::file("open", self.path.join(rel), e))?;
        }
        Ok((dir, c(last)?))
    }
}

fn openat(dir: &OwnedFd, name: &CString, flags: i32, mode: u32) -> std::io::Result<OwnedFd> {
    // SAFETY: valid dir fd and NUL-terminated name.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            flags | libc::O_CLOEXEC,
            mode,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fresh fd from openat.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl Drop for Workspace {
    fn drop(&mut self) {
        if self.mounted {
            if let Ok(target) = crate::sys::cstring(self.path.as_os_str()) {
                // SAFETY: valid path string; MNT_DETACH cannot leave dangling state for us.
                unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
            }
            let _ = std::fs::remove_dir(&self.path);
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

//! The child's setup, prepared by the helper before `clone`: every path, string, pointer
//! array and BPF program is allocated here so the child never allocates.

use super::landlock::LandlockPlan;
use crate::error::SandboxError;
use crate::protocol::{HelperRequest, RootEntry};
use libc::c_ulong;
use std::collections::BTreeSet;
use std::ffi::{CString, c_char};
use std::path::{Path, PathBuf};

/// One filesystem operation of the child, executed in order.
#[derive(Debug)]
pub(super) enum Op {
    /// `mount(src, target, fstype, flags, data)`; empty strings are passed as NULL.
    Mount {
        src: CString,
        target: CString,
        fstype: CString,
        flags: c_ulong,
        data: CString,
    },
    /// `mkdir(path, mode)`.
    Mkdir { path: CString, mode: u32 },
    /// `open(path, O_CREAT|O_WRONLY, 0444)` + `close` (a bind-mount target).
    Touch { path: CString },
    /// Creates `path` with `contents`.
    WriteFile { path: CString, contents: Vec<u8> },
    /// `symlink(target, link)`.
    Symlink { target: CString, link: CString },
    /// `chdir(path)`.
    Chdir { path: CString },
    /// `pivot_root(".", ".")` then `umount2(".", MNT_DETACH)`: the old root is stacked under
    /// the new one and detached, without needing a put_old directory.
    PivotRoot,
}

impl Op {
    /// The syscall and its arguments, for error messages.
    pub(super) fn describe(&self) -> String {
        let s = |c: &CString| c.to_string_lossy().into_owned();
        match self {
            Op::Mount {
                src,
                target,
                fstype,
                flags,
                data,
            } => format!(
                "mount({:?}, {:?}, {:?}, {flags:#x}, {:?})",
                s(src),
                s(target),
                s(fstype),
                s(data)
            ),
            Op::Mkdir { path, mode } => format!("mkdir({:?}, {mode:#o})", s(path)),
            Op::Touch { path } => format!("open({:?}, O_CREAT)", s(path)),
            Op::WriteFile { path, .. } => format!("write({:?})", s(path)),
            Op::Symlink { target, link } => format!("symlink({:?}, {:?})", s(target), s(link)),
            Op::Chdir { path } => format!("chdir({:?})", s(path)),
            Op::PivotRoot => "pivot_root(\".\", \".\") + umount2(\".\", MNT_DETACH)".to_owned(),
        }
    }
}

/// Everything the clone child needs, prepared in the helper.
#[derive(Debug)]
pub(super) struct ChildPlan {
    pub ops: Vec<Op>,
    pub hostname: CString,
    pub rlimits: Vec<(u32, libc::rlimit)>,
    pub landlock: Option<LandlockPlan>,
    pub seccomp: Vec<Vec<libc::sock_filter>>,
    pub uid: u32,
    pub gid: u32,
    pub cwd: CString,
    pub argv: Vec<CString>,
    pub argv_ptrs: Vec<*const c_char>,
    #[expect(dead_code, reason = "owns the strings that env_ptrs points into")]
    pub env: Vec<CString>,
    pub env_ptrs: Vec<*const c_char>,
}

fn cs(p: impl AsRef<std::ffi::OsStr>) -> Result<CString, SandboxError> {
    crate::sys::cstring(p.as_ref()).map_err(|_| SandboxError::Invalid("string contains NUL".into()))
}

const RO_BIND: c_ulong =
    libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV;

/// Builds the filesystem operations for the fresh root at `root`.
struct FsBuilder {
    root: PathBuf,
    ops: Vec<Op>,
    made: BTreeSet<PathBuf>,
}

impl FsBuilder {
    fn at(&self, p: &Path) -> PathBuf {
        self.root.join(p.strip_prefix("/").unwrap_or(p))
    }

    fn mount(
        &mut self,
        src: &str,
        target: &Path,
        fstype: &str,
        flags: c_ulong,
        data: &str,
    ) -> Result<(), SandboxError> {
        let op = Op::Mount {
            src: cs(src)?,
            target: cs(self.at(target))?,
            fstype: cs(fstype)?,
            flags,
            data: cs(data)?,
        };
        self.ops.push(op);
        Ok(())
    }

    fn mkdir_all(&mut self, p: &Path) -> Result<(), SandboxError> {
        let mut cur = PathBuf::from("/");
        for comp in p.components().skip(1) {
            cur.push(comp);
            if self.made.insert(cur.clone()) {
                self.ops.push(Op::Mkdir {
                    path: cs(self.at(&cur))?,
                    mode: 0o755,
                });
            }
        }
        Ok(())
    }

    fn parent_dirs(&mut self, p: &Path) -> Result<(), SandboxError> {
        match p.parent() {
            Some(parent) if parent != Path::new("/") => self.mkdir_all(parent),
            _ => Ok(()),
        }
    }

    fn bind(
        &mut self,
        src: &Path,
        dst: &Path,
        dir: bool,
        flags: c_ulong,
    ) -> Result<(), SandboxError> {
        if dir {
            self.mkdir_all(dst)?;
        } else {
            self.parent_dirs(dst)?;
            self.ops.push(Op::Touch {
                path: cs(self.at(dst))?,
            });
        }
        let s = src
            .to_str()
            .ok_or_else(|| SandboxError::Invalid(format!("non-UTF-8 path {}", src.display())))?;
        self.mount(s, dst, "", libc::MS_BIND, "")?;
        self.mount("", dst, "", flags, "")
    }

    /// A bind without the read-only remount (device nodes keep the host /dev flags).
    fn bind_only(&mut self, src: &Path, dst: &Path) -> Result<(), SandboxError> {
        self.parent_dirs(dst)?;
        self.ops.push(Op::Touch {
            path: cs(self.at(dst))?,
        });
        let s = src
            .to_str()
            .ok_or_else(|| SandboxError::Invalid(format!("non-UTF-8 path {}", src.display())))?;
        self.mount(s, dst, "", libc::MS_BIND, "")
    }

    fn entry(&mut self, e: &RootEntry) -> Result<(), SandboxError> {
        match e {
            RootEntry::Bind { path, dir } => self.bind(path, path, *dir, RO_BIND),
            RootEntry::Symlink { path, target } => {
                self.parent_dirs(path)?;
                self.ops.push(Op::Symlink {
                    target: cs(target)?,
                    link: cs(self.at(path))?,
                });
                Ok(())
            }
            RootEntry::File { path, contents } => {
                self.parent_dirs(path)?;
                self.ops.push(Op::WriteFile {
                    path: cs(self.at(path))?,
                    contents: contents.as_bytes().to_vec(),
                });
                Ok(())
            }
        }
    }
}

/// Device nodes bound from the host (mknod is impossible for the sandbox).
pub(super) const DEVICES: [&str; 5] = ["null", "zero", "full", "random", "urandom"];

/// Filesystem plan: private propagation, tmpfs root, read-only binds, /dev, /tmp, /work,
/// pivot_root, /proc, then the root remounted read-only.
pub(super) fn fs_ops(req: &HelperRequest) -> Result<Vec<Op>, SandboxError> {
    let mut b = FsBuilder {
        root: req.root_mount.clone(),
        ops: Vec::new(),
        made: BTreeSet::new(),
    };
    b.ops.push(Op::Mount {
        src: cs("")?,
        target: cs("/")?,
        fstype: cs("")?,
        flags: libc::MS_REC | libc::MS_PRIVATE,
        data: cs("")?,
    });
    b.mount(
        "voidrunner-root",
        Path::new("/"),
        "tmpfs",
        libc::MS_NOSUID | libc::MS_NODEV,
        "size=1m,nr_inodes=4096,mode=0755",
    )?;
    for e in &req.root {
        b.entry(e)?;
    }
    b.mkdir_all(Path::new("/dev"))?;
    for dev in DEVICES {
        let p = PathBuf::from("/dev").join(dev);
        b.bind_only(&p, &p)?;
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        b.ops.push(Op::Symlink {
            target: cs(target)?,
            link: cs(b.at(&Path::new("/dev").join(name)))?,
        });
    }
    for d in ["/proc", "/tmp", "/work"] {
        b.mkdir_all(Path::new(d))?;
    }
    let l = &req.limits;
    let inodes = (l.tmpfs_bytes / 8192).clamp(1024, 1 << 20);
    let tmp_opts = format!(
        "size={},nr_inodes={inodes},mode=1777",
        l.tmpfs_bytes.max(4096)
    );
    b.mount(
        "voidrunner-tmp",
        Path::new("/tmp"),
        "tmpfs",
        libc::MS_NOSUID | libc::MS_NODEV,
        &tmp_opts,
    )?;
    let target = workspace_target(req)?;
    if target != Path::new("/work") {
        b.mkdir_all(target)?;
    }
    match &req.workspace {
        Some(ws) => {
            b.bind(
                ws,
                target,
                true,
                libc::MS_BIND | libc::MS_REMOUNT | libc::MS_NOSUID | libc::MS_NODEV,
            )?;
            for sub in &req.workspace_readonly {
                if sub.is_empty()
                    || sub.starts_with('.')
                    || !sub
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
                {
                    return Err(SandboxError::Invalid(format!(
                        "read-only workspace subdirectory {sub:?} must be a plain name"
                    )));
                }
                // The directory exists in the workspace (the caller made it): bind over it.
                b.made.insert(target.join(sub));
                b.bind(&ws.join(sub), &target.join(sub), true, RO_BIND)?;
            }
        }
        None => {
            let opts = format!(
                "size={},nr_inodes={inodes},mode=0755,uid={},gid={}",
                l.tmpfs_bytes.max(4096),
                req.uid,
                req.gid
            );
            b.mount(
                "voidrunner-work",
                Path::new("/work"),
                "tmpfs",
                libc::MS_NOSUID | libc::MS_NODEV,
                &opts,
            )?;
        }
    }
    b.ops.push(Op::Chdir {
        path: cs(&req.root_mount)?,
    });
    b.ops.push(Op::PivotRoot);
    b.ops.push(Op::Chdir { path: cs("/")? });
    b.ops.push(Op::Mount {
        src: cs("proc")?,
        target: cs("/proc")?,
        fstype: cs("proc")?,
        flags: libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        data: cs("")?,
    });
    b.ops.push(Op::Mount {
        src: cs("")?,
        target: cs("/")?,
        fstype: cs("")?,
        flags: RO_BIND,
        data: cs("")?,
    });
    Ok(b.ops)
}

/// Where the workspace goes: `/work` by default, or `/job`; nothing else (a target over a
/// system directory would hide it or make it writable).
pub(super) fn workspace_target(req: &HelperRequest) -> Result<&Path, SandboxError> {
    match req.workspace_target.as_deref() {
        None | Some("/work") => Ok(Path::new("/work")),
        Some("/job") => Ok(Path::new("/job")),
        Some(other) => Err(SandboxError::Invalid(format!(
            "workspace target {other:?} (allowed: /work, /job)"
        ))),
    }
}

/// rlimits of the program: CPU (soft < hard so SIGXCPU comes first), file size, open files,
/// no core dumps; in degraded mode also address space and process count.
pub(super) fn rlimits(req: &HelperRequest, degraded: bool) -> Vec<(u32, libc::rlimit)> {
    let l = &req.limits;
    let r = |soft: u64, hard: u64| libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    let soft = l.cpu_soft_secs();
    let mut v = vec![
        (libc::RLIMIT_CPU, r(soft, soft + 1)),
        (
            libc::RLIMIT_FSIZE,
            r(l.max_file_size_bytes, l.max_file_size_bytes),
        ),
        (libc::RLIMIT_NOFILE, r(l.max_open_files, l.max_open_files)),
        (libc::RLIMIT_CORE, r(0, 0)),
    ];
    if degraded {
        v.push((libc::RLIMIT_AS, r(l.memory_bytes, l.memory_bytes)));
        let n = u64::from(l.max_processes);
        v.push((libc::RLIMIT_NPROC, r(n, n)));
    }
    v
}

/// Builds the whole child plan.
pub(super) fn build(
    req: &HelperRequest,
    degraded: bool,
    landlock: Option<LandlockPlan>,
) -> Result<ChildPlan, SandboxError> {
    let argv0 = req
        .argv
        .first()
        .ok_or_else(|| SandboxError::Invalid("empty argv".into()))?;
    if !argv0.starts_with('/') {
        return Err(SandboxError::Invalid(format!(
            "argv[0] must be an absolute path, got {argv0:?}"
        )));
    }
    let argv: Vec<CString> = req.argv.iter().map(cs).collect::<Result<_, _>>()?;
    let env: Vec<CString> = req
        .env
        .iter()
        .map(|(k, v)| cs(format!("{k}={v}")))
        .collect::<Result<_, _>>()?;
    let ptrs = |v: &[CString]| {
        v.iter()
            .map(|c| c.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect()
    };
    Ok(ChildPlan {
        ops: fs_ops(req)?,
        hostname: cs("sandbox")?,
        rlimits: rlimits(req, degraded),
        landlock,
        seccomp: super::seccomp::filters()?,
        uid: req.uid,
        gid: req.gid,
        cwd: cs(&req.cwd)?,
        argv_ptrs: ptrs(&argv),
        env_ptrs: ptrs(&env),
        argv,
        env,
    })
}

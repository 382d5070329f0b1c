//! Code of the clone child, from `clone` to `execve`. It runs in a copy of the helper's
//! address space and must not allocate: everything comes prepared in [`ChildPlan`].
//!
//! On failure the child writes `[b'E', step u32, index u32, errno i32]` on its status pipe
//! and exits with 127; the helper turns that into a message naming the call and arguments.

use super::plan::{ChildPlan, Op};
pub(super) use super::steps::Step;
use std::ffi::c_char;

/// File descriptors of the child.
#[derive(Debug, Clone, Copy)]
pub(super) struct ChildFds {
    pub stdin: i32,
    pub stdout: i32,
    pub stderr: i32,
    /// Reads helper → child messages.
    pub from_parent: i32,
    /// Writes child → helper messages (close-on-exec: EOF means exec succeeded).
    pub to_parent: i32,
    /// Helper-side ends to close first.
    pub close: [i32; 5],
}

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

/// `struct __user_cap_data_struct`.
#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

fn errno() -> i32 {
    // SAFETY: __errno_location always returns a valid thread-local pointer.
    unsafe { *libc::__errno_location() }
}

/// Reports a failed step and exits.
fn fail(fds: &ChildFds, step: Step, index: usize, err: i32) -> ! {
    let mut msg = [0u8; 13];
    msg[0] = b'E';
    msg[1..5].copy_from_slice(&(step as u32).to_le_bytes());
    msg[5..9].copy_from_slice(&u32::try_from(index).unwrap_or(u32::MAX).to_le_bytes());
    msg[9..13].copy_from_slice(&err.to_le_bytes());
    // SAFETY: writing a stack buffer to our own pipe, then exiting without running atexit
    // handlers (which belong to the helper).
    unsafe {
        libc::write(fds.to_parent, msg.as_ptr().cast(), msg.len());
        libc::_exit(127)
    }
}

/// Blocks until the helper sends `expected`; exits quietly if the helper is gone.
fn wait_for(fds: &ChildFds, expected: u8, step: Step) {
    let mut b = [0u8; 1];
    loop {
        // SAFETY: reading one byte into a stack buffer.
        let n = unsafe { libc::read(fds.from_parent, b.as_mut_ptr().cast(), 1) };
        if n == 1 && b[0] == expected {
            return;
        }
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        fail(fds, step, 0, if n == 0 { libc::EPIPE } else { errno() });
    }
}

fn opt(c: &std::ffi::CStr) -> *const c_char {
    if c.is_empty() {
        std::ptr::null()
    } else {
        c.as_ptr()
    }
}

/// Runs one filesystem operation; returns the errno on failure.
fn run_op(op: &Op) -> Result<(), i32> {
    // SAFETY (for every call below): all pointers are NUL-terminated strings or buffers owned
    // by the plan, which outlives the child; none of these calls retain them.
    let rc = unsafe {
        match op {
            Op::Mount {
                src,
                target,
                fstype,
                flags,
                data,
            } => libc::mount(
                opt(src),
                target.as_ptr(),
                opt(fstype),
                *flags,
                opt(data).cast(),
            ),
            Op::Mkdir { path, mode } => libc::mkdir(path.as_ptr(), *mode),
            Op::Touch { path } => {
                let fd = libc::open(
                    path.as_ptr(),
                    libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                    0o444,
                );
                if fd >= 0 {
                    libc::close(fd);
                    0
                } else {
                    -1
                }
            }
            Op::WriteFile { path, contents } => {
                let fd = libc::open(
                    path.as_ptr(),
                    libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                    0o644,
                );
                if fd < 0 {
                    -1
                } else {
                    let n = libc::write(fd, contents.as_ptr().cast(), contents.len());
                    libc::close(fd);
                    if n == contents.len() as isize { 0 } else { -1 }
                }
            }
            Op::Symlink { target, link } => libc::symlink(target.as_ptr(), link.as_ptr()),
            Op::Chdir { path } => libc::chdir(path.as_ptr()),
            Op::PivotRoot => {
                let dot = c".".as_ptr();
                if libc::syscall(libc::SYS_pivot_root, dot, dot) != 0 {
                    -1
                } else {
                    libc::umount2(dot, libc::MNT_DETACH)
                }
            }
        }
    };
    if rc == 0 { Ok(()) } else { Err(errno()) }
}

/// The child: numbered steps, then `execve`. Never returns.
///
/// # Safety
/// Must only be called in the child of a fork-like `clone` (own address space) of the
/// single-threaded helper, with `fds` open in this process.
pub(super) unsafe fn child_main(plan: &ChildPlan, fds: &ChildFds) -> ! {
    macro_rules! check {
        ($step:expr, $index:expr, $rc:expr) => {
            if $rc != 0 {
                fail(fds, $step, $index, errno());
            }
        };
    }
    // SAFETY: every call below is a plain syscall on fds we own, or on memory owned by
    // `plan`/the stack; see the comments on the individual steps for the invariants.
    unsafe {
        for fd in fds.close {
            libc::close(fd);
        }
        // 1. stdio
        for (src, dst) in [(fds.stdin, 0), (fds.stdout, 1), (fds.stderr, 2)] {
            check!(
                Step::Stdio,
                dst as usize,
                i32::from(libc::dup2(src, dst) < 0)
            );
        }
        for fd in [fds.stdin, fds.stdout, fds.stderr] {
            libc::close(fd);
        }
        // 2. filesystem: fresh root, binds, pivot_root, /proc, read-only root
        for (i, op) in plan.ops.iter().enumerate() {
            if let Err(e) = run_op(op) {
                fail(fds, Step::Fs, i, e);
            }
        }
        // 3. hostname (UTS namespace)
        check!(
            Step::Hostname,
            0,
            libc::sethostname(plan.hostname.as_ptr(), plan.hostname.as_bytes().len())
        );
        // 4. user namespace: the mounts above stay owned by the initial user namespace
        check!(Step::Unshare, 0, libc::unshare(libc::CLONE_NEWUSER));
        libc::write(fds.to_parent, b"U".as_ptr().cast(), 1);
        // 5. the helper has moved us into the run's cgroup (right after clone) and writes
        //    uid_map/gid_map; one round trip
        wait_for(fds, b'M', Step::WaitMaps);
        // 6. cgroup namespace rooted at the run's cgroup
        check!(Step::CgroupNs, 0, libc::unshare(libc::CLONE_NEWCGROUP));
        // 7. rlimits
        for (i, (res, lim)) in plan.rlimits.iter().enumerate() {
            check!(Step::Rlimit, i, libc::setrlimit(*res, lim));
        }
        // 8./9. landlock ruleset (opening the rule paths inside the new root)
        let mut ruleset = -1;
        if let Some(ll) = &plan.landlock {
            let r = libc::syscall(
                libc::SYS_landlock_create_ruleset,
                &ll.attr as *const super::landlock::RulesetAttr,
                size_of::<super::landlock::RulesetAttr>(),
                0u32,
            );
            if r < 0 {
                fail(fds, Step::LandlockCreate, 0, errno());
            }
            ruleset = r as i32;
            for (i, (path, access)) in ll.rules.iter().enumerate() {
                let fd = libc::open(path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC);
                if fd < 0 {
                    fail(fds, Step::LandlockRule, i, errno());
                }
                let attr = super::landlock::PathBeneathAttr {
                    allowed_access: *access,
                    parent_fd: fd,
                };
                let rc = libc::syscall(
                    libc::SYS_landlock_add_rule,
                    ruleset,
                    super::landlock::RULE_PATH_BENEATH,
                    &attr as *const super::landlock::PathBeneathAttr,
                    0u32,
                );
                libc::close(fd);
                if rc != 0 {
                    fail(fds, Step::LandlockRule, i, errno());
                }
            }
        }
        // 10. bounding set (needs CAP_SETPCAP, which we hold in the new user namespace)
        let mut cap = 0;
        while libc::prctl(libc::PR_CAPBSET_READ, cap, 0, 0, 0) >= 0 {
            check!(
                Step::BoundingSet,
                cap as usize,
                libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0)
            );
            cap += 1;
        }
        // 11.-13. groups and ids, raw syscalls (glibc's wrappers broadcast to threads)
        check!(
            Step::Setgroups,
            0,
            libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) as i32
        );
        check!(
            Step::Setresgid,
            0,
            libc::syscall(libc::SYS_setresgid, plan.gid, plan.gid, plan.gid) as i32
        );
        check!(
            Step::Setresuid,
            0,
            libc::syscall(libc::SYS_setresuid, plan.uid, plan.uid, plan.uid) as i32
        );
        // 14. die with the helper (set after the id change, which clears it); then make sure
        //     the helper did not die before that (its end of our pipe would be hung up).
        check!(
            Step::Pdeathsig,
            0,
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0)
        );
        let mut pfd = libc::pollfd {
            fd: fds.from_parent,
            events: libc::POLLIN,
            revents: 0,
        };
        if libc::poll(&mut pfd, 1, 0) != 0 {
            fail(fds, Step::Pdeathsig, 1, libc::ESRCH);
        }
        // 15. no capabilities at all (effective, permitted, inheritable, ambient)
        let mut hdr = CapHeader {
            version: LINUX_CAPABILITY_VERSION_3,
            pid: 0,
        };
        let data = [CapData {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        }; 2];
        check!(
            Step::Capabilities,
            0,
            libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) as i32
        );
        check!(
            Step::Capabilities,
            1,
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL,
                0,
                0,
                0
            )
        );
        // 16. working directory
        check!(Step::Chdir, 0, libc::chdir(plan.cwd.as_ptr()));
        // 17. no_new_privs: setuid bits and file caps give nothing from here on
        check!(
            Step::NoNewPrivs,
            0,
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        );
        // 18. landlock
        if ruleset >= 0 {
            check!(
                Step::LandlockRestrict,
                0,
                libc::syscall(libc::SYS_landlock_restrict_self, ruleset, 0u32) as i32
            );
            libc::close(ruleset);
        }
        // 19. no descriptor beyond stdio survives exec, whatever the helper inherited; then
        //     default signal dispositions and an empty mask
        check!(
            Step::Signals,
            1,
            libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC
            ) as i32
        );
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        check!(
            Step::Signals,
            0,
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut())
        );
        for sig in 1..32 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        // 20. seccomp, last: the steps above need mount/unshare/…
        for (i, prog) in plan.seccomp.iter().enumerate() {
            let fprog = libc::sock_fprog {
                len: prog.len() as u16,
                filter: prog.as_ptr().cast_mut(),
            };
            check!(
                Step::Seccomp,
                i,
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    0u32,
                    &fprog as *const libc::sock_fprog
                ) as i32
            );
        }
        // 21. exec; on success the close-on-exec status pipe tells the helper
        libc::execve(
            plan.argv[0].as_ptr(),
            plan.argv_ptrs.as_ptr(),
            plan.env_ptrs.as_ptr(),
        );
        fail(fds, Step::Exec, 0, errno())
    }
}

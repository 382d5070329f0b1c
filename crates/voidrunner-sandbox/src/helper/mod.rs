//! The single-threaded helper process: reads one request, builds the sandbox with a
//! fork-like `clone`, supervises the program and reports output and result.
//!
//! It is started per run by [`crate::Sandbox::run`]; it never runs inside the async
//! service, so the clone child can never inherit locks held by other threads.

mod child;
mod control;
mod feed;
mod landlock;
mod plan;
mod sample;
pub(crate) mod seccomp;
mod steps;
mod supervise;

pub(crate) use landlock::abi_version as landlock_abi;

use crate::cgroup::{RunCgroup, create_run_cgroup};
use crate::error::SandboxError;
use crate::protocol::{
    CgroupPlan, HelperRequest, RunResult, SandboxVerdict, TAG_RESULT, encode_frame,
};
use child::{ChildFds, Step};
use control::Control;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// Entry point of the hidden helper subcommand. Call it from `main` before any async runtime
/// or thread exists; returns the process exit code.
///
/// The helper serves runs one after the other (the service keeps a small pool of idle
/// helpers) and exits when its stdin closes. Protocol: see the `protocol` module. stdin =
/// request + program stdin + commands, stdout = output frames + result frame per run.
pub fn helper_main() -> i32 {
    reset_scheduling_on_fork();
    let mut runs = 0u64;
    loop {
        let mut ctl = Control::default();
        let req = match ctl.read_request() {
            Ok(Some(r)) => r,
            Ok(None) => return 0,
            Err(e) => {
                eprintln!("voidrunner sandbox helper: {e}");
                return 2;
            }
        };
        runs += 1;
        let (result, mut out) = match Runner::new(&req, ctl, runs) {
            Ok(runner) => runner.run(),
            Err(e) => (error_result(e.to_string()), Vec::new()),
        };
        let json = serde_json::to_vec(&result).unwrap_or_default();
        encode_frame(&mut out, TAG_RESULT, result.wall_time, &json);
        let _ = crate::sys::set_nonblocking(&std::io::stdout(), false);
        if crate::sys::write_all(1, &out).is_err() {
            return 3;
        }
    }
}

/// Sandboxed programs never inherit a real-time policy or a negative nice value from the
/// service (`SCHED_RESET_ON_FORK` on the helper): an untrusted program must not be able to
/// starve the host, and an RT task could not even join a v1 `cpu` cgroup.
fn reset_scheduling_on_fork() {
    // SAFETY: sched_getscheduler/sched_getparam/sched_setscheduler on ourselves with a valid
    // sched_param on the stack.
    unsafe {
        let policy = libc::sched_getscheduler(0);
        let mut param: libc::sched_param = std::mem::zeroed();
        if policy >= 0 && libc::sched_getparam(0, &mut param) == 0 {
            libc::sched_setscheduler(0, policy | libc::SCHED_RESET_ON_FORK, &param);
        }
    }
}

fn error_result(reason: String) -> RunResult {
    RunResult {
        verdict: SandboxVerdict::SandboxError(reason),
        wall_time: Duration::ZERO,
        cpu_time: Duration::ZERO,
        peak_memory_bytes: None,
        output_truncated: false,
        samples: Vec::new(),
    }
}

/// One run being set up and supervised.
struct Runner<'a> {
    req: &'a HelperRequest,
    ctl: Control,
    cgroup: Option<Box<dyn RunCgroup>>,
    plan: plan::ChildPlan,
}

impl<'a> Runner<'a> {
    fn new(req: &'a HelperRequest, ctl: Control, run: u64) -> Result<Self, SandboxError> {
        let degraded = matches!(req.cgroup, CgroupPlan::None);
        let ll = if req.landlock {
            let workspace = plan::workspace_target(req)?.to_string_lossy().into_owned();
            landlock::abi_version()
                .map(|abi| landlock::plan(abi, &workspace))
                .transpose()?
        } else {
            None
        };
        let plan = plan::build(req, degraded, ll)?;
        // SAFETY: getpid cannot fail.
        let name = format!("run-{}-{run}", unsafe { libc::getpid() });
        let cgroup = create_run_cgroup(&req.cgroup, &name, &req.limits)?;
        Ok(Self {
            req,
            ctl,
            cgroup,
            plan,
        })
    }

    /// Runs and cleans up; returns the result and the output frames not yet written.
    fn run(mut self) -> (RunResult, Vec<u8>) {
        let outcome = self.spawn_and_supervise();
        let stats = self.cgroup.as_ref().map(|c| c.stats()).unwrap_or_default();
        let cleanup = self.cgroup.as_mut().map(|c| c.remove()).unwrap_or(Ok(()));
        match outcome {
            Err(e) => (error_result(e.to_string()), Vec::new()),
            Ok(mut s) => {
                let mut r = s.result(&self.req.limits, &stats, |step, index, errno| {
                    self.describe(step, index, errno)
                });
                if let (Err(e), false) = (
                    cleanup,
                    matches!(r.verdict, SandboxVerdict::SandboxError(_)),
                ) {
                    r.verdict = SandboxVerdict::SandboxError(format!("cleanup failed: {e}"));
                }
                (r, s.take_pending())
            }
        }
    }

    fn describe(&self, step: u32, index: u32, errno: i32) -> String {
        let err = std::io::Error::from_raw_os_error(errno);
        let i = index as usize;
        let what = match Step::from_u32(step) {
            Some(Step::Fs) => self
                .plan
                .ops
                .get(i)
                .map_or_else(|| "filesystem op".into(), plan::Op::describe),
            Some(Step::Exec) => format!(
                "execve({:?})",
                self.req.argv.first().map(String::as_str).unwrap_or("")
            ),
            Some(Step::Chdir) => format!("chdir({:?})", self.req.cwd),
            Some(Step::Rlimit) => format!("setrlimit({:?})", self.plan.rlimits.get(i).map(|r| r.0)),
            Some(Step::Setresuid) => format!("setresuid({})", self.req.uid),
            Some(Step::Setresgid) => format!("setresgid({})", self.req.gid),
            Some(s) => format!("{s:?} (#{index})"),
            None => format!("step {step}"),
        };
        format!("sandbox setup step {step} {what} failed: {err}")
    }

    fn spawn_and_supervise(&mut self) -> Result<supervise::Supervisor, SandboxError> {
        let pipe = |what: &str| {
            crate::sys::pipe().map_err(|e| SandboxError::Syscall {
                call: format!("pipe2({what})"),
                source: e,
            })
        };
        let (stdin_r, stdin_w) = pipe("stdin")?;
        let (stdout_r, stdout_w) = pipe("stdout")?;
        let (stderr_r, stderr_w) = pipe("stderr")?;
        let (p2c_r, p2c_w) = pipe("sync")?;
        let (c2p_r, c2p_w) = pipe("status")?;
        let fds = ChildFds {
            stdin: stdin_r.as_raw_fd(),
            stdout: stdout_w.as_raw_fd(),
            stderr: stderr_w.as_raw_fd(),
            from_parent: p2c_r.as_raw_fd(),
            to_parent: c2p_w.as_raw_fd(),
            close: [
                stdin_w.as_raw_fd(),
                stdout_r.as_raw_fd(),
                stderr_r.as_raw_fd(),
                p2c_w.as_raw_fd(),
                c2p_r.as_raw_fd(),
            ],
        };
        let flags = libc::CLONE_NEWNS
            | libc::CLONE_NEWPID
            | libc::CLONE_NEWNET
            | libc::CLONE_NEWIPC
            | libc::CLONE_NEWUTS;
        let start = Instant::now();
        // SAFETY: a fork-like clone (no CLONE_VM, no new stack): the child gets a copy of this
        // single-threaded process and continues here with return value 0.
        let pid = unsafe {
            libc::syscall(
                libc::SYS_clone,
                (flags | libc::SIGCHLD) as libc::c_ulong,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        };
        if pid == 0 {
            // SAFETY: we are the clone child; `fds` are open in this process.
            unsafe { child::child_main(&self.plan, &fds) }
        }
        if pid < 0 {
            return Err(SandboxError::last_os(format!("clone({flags:#x})")));
        }
        let pid = pid as i32;
        drop((stdin_r, stdout_w, stderr_w, p2c_r, c2p_w));
        let mut sup =
            supervise::Supervisor::new(pid, start, self.req.limits, std::mem::take(&mut self.ctl));
        let setup = self.handshake(pid, &p2c_w, &c2p_r);
        let setup = setup.and_then(|()| {
            crate::sys::pidfd_open(pid).map_err(|e| {
                Setup::Other(SandboxError::Syscall {
                    call: format!("pidfd_open({pid})"),
                    source: e,
                })
            })
        });
        match setup {
            Ok(pidfd) => {
                let pipes = Pipes {
                    pidfd,
                    stdin: stdin_w,
                    stdout: stdout_r,
                    stderr: stderr_r,
                    status: c2p_r,
                    sync: p2c_w,
                };
                sup.supervise(pipes, self.cgroup.as_deref());
            }
            Err(failure) => {
                crate::sys::kill(pid, libc::SIGKILL);
                sup.reap_blocking();
                sup.setup_error = Some(match failure {
                    Setup::Child(step, index, errno) => self.describe(step, index, errno),
                    Setup::Other(e) => e.to_string(),
                });
            }
        }
        Ok(sup)
    }

    /// Cgroup join (while the child sets up its mounts), then the user-namespace maps; the
    /// child waits for `M` before it creates its cgroup namespace and drops privileges.
    fn handshake(&self, pid: i32, to_child: &OwnedFd, from_child: &OwnedFd) -> Result<(), Setup> {
        if let Some(cg) = &self.cgroup {
            cg.add_process(pid)?;
        }
        let send = |b: &[u8]| {
            crate::sys::write_all(to_child.as_raw_fd(), b).map_err(|e| {
                Setup::Other(SandboxError::Syscall {
                    call: "write(sync pipe)".into(),
                    source: e,
                })
            })
        };
        match supervise::read_status(from_child.as_raw_fd()) {
            supervise::Status::Ready => {}
            supervise::Status::Failed(step, index, errno) => {
                return Err(Setup::Child(step, index, errno));
            }
            supervise::Status::Eof => {
                return Err(Setup::Other(SandboxError::Helper(
                    "sandbox child died during setup".into(),
                )));
            }
        }
        let map = |file: &str, id: u32| {
            let path = format!("/proc/{pid}/{file}");
            std::fs::write(&path, format!("{id} {id} 1\n"))
                .map_err(|e| SandboxError::file("write", path, e))
        };
        map("uid_map", self.req.uid)?;
        map("gid_map", self.req.gid)?;
        send(b"M")
    }
}

/// Why the setup handshake failed.
enum Setup {
    /// The child reported a failed step.
    Child(u32, u32, i32),
    /// The helper's side failed.
    Other(SandboxError),
}

impl From<SandboxError> for Setup {
    fn from(e: SandboxError) -> Self {
        Setup::Other(e)
    }
}

/// Helper-side ends of the child's pipes.
pub(super) struct Pipes {
    pub pidfd: OwnedFd,
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    pub status: OwnedFd,
    pub sync: OwnedFd,
}

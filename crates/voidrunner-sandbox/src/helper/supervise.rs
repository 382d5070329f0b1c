//! The helper's supervision loop: one `poll` over the child's exit (pidfd), the wall
//! deadline, the control channel (cancel / service gone), program output (with the exact
//! output cap) and program stdin. The first reason to kill wins ([`KillReason`]).

use super::Pipes;
use super::control::{Command, Control};
use super::feed::StdinFeed;
use super::sample::Sampler;
use crate::cgroup::{CgroupStats, RunCgroup};
use crate::limits::Limits;
use crate::protocol::{RunResult, SandboxVerdict, TAG_STDERR, TAG_STDOUT, encode_frame};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// Why the helper killed the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KillReason {
    /// Wall-clock deadline.
    Timeout,
    /// Cancel command, or the service went away.
    Cancelled,
    /// More than `max_output_bytes` of output.
    OutputLimit,
}

/// What the child said on its status pipe.
pub(super) enum Status {
    /// `U`: the user namespace exists.
    Ready,
    /// `E` + step, index, errno.
    Failed(u32, u32, i32),
    /// EOF (exec succeeded, or the child died).
    Eof,
}

/// Blocking read of one status message.
pub(super) fn read_status(fd: i32) -> Status {
    let mut b = [0u8; 13];
    match crate::sys::read(fd, &mut b[..1]) {
        Ok(1) if b[0] == b'U' => Status::Ready,
        Ok(1) if b[0] == b'E' => {
            let mut got = 1;
            while got < 13 {
                match crate::sys::read(fd, &mut b[got..]) {
                    Ok(0) | Err(_) => return Status::Eof,
                    Ok(n) => got += n,
                }
            }
            let w = |r: std::ops::Range<usize>| {
                let mut a = [0u8; 4];
                a.copy_from_slice(&b[r]);
                a
            };
            Status::Failed(
                u32::from_le_bytes(w(1..5)),
                u32::from_le_bytes(w(5..9)),
                i32::from_le_bytes(w(9..13)),
            )
        }
        _ => Status::Eof,
    }
}

/// State of one supervised run.
pub(super) struct Supervisor {
    pid: i32,
    start: Instant,
    limits: Limits,
    ctl: Control,
    /// Set when setup failed (message names the step and call).
    pub setup_error: Option<String>,
    child_error: Option<(u32, u32, i32)>,
    wait_status: Option<i32>,
    rusage_cpu: Duration,
    ended: Option<Instant>,
    kill_reason: Option<KillReason>,
    pending_output: Vec<u8>,
    sent: usize,
    output_total: u64,
    truncated: bool,
    service_gone: bool,
    sampler: Sampler,
}

fn tv(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
}

impl Supervisor {
    pub(super) fn new(pid: i32, start: Instant, limits: Limits, ctl: Control) -> Self {
        Self {
            pid,
            start,
            limits,
            ctl,
            setup_error: None,
            child_error: None,
            wait_status: None,
            rusage_cpu: Duration::ZERO,
            ended: None,
            kill_reason: None,
            pending_output: Vec::new(),
            sent: 0,
            output_total: 0,
            truncated: false,
            service_gone: false,
            sampler: Sampler::new(start),
        }
    }

    /// Output frames not yet written to the service.
    pub(super) fn take_pending(&mut self) -> Vec<u8> {
        let rest = self
            .pending_output
            .split_off(self.sent.min(self.pending_output.len()));
        self.pending_output.clear();
        self.sent = 0;
        rest
    }

    /// Waits for the child (used when setup failed).
    pub(super) fn reap_blocking(&mut self) {
        let mut status = 0;
        // SAFETY: rusage is plain data; wait4 writes into valid locals.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        while unsafe { libc::wait4(self.pid, &mut status, 0, &mut ru) } < 0 {
            if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                break;
            }
        }
        self.wait_status = Some(status);
        self.rusage_cpu = tv(ru.ru_utime) + tv(ru.ru_stime);
        self.ended = Some(Instant::now());
    }

    fn kill(&mut self, reason: KillReason, cg: Option<&dyn RunCgroup>) {
        if self.wait_status.is_some() {
            return;
        }
        self.kill_reason.get_or_insert(reason);
        crate::sys::kill(self.pid, libc::SIGKILL);
        if let Some(cg) = cg {
            cg.kill_all();
        }
    }

    /// Forwards `data` from `tag`, cutting exactly at `max_output_bytes`.
    fn output(&mut self, tag: u8, data: &[u8], cg: Option<&dyn RunCgroup>) {
        let left = self
            .limits
            .max_output_bytes
            .saturating_sub(self.output_total);
        let take = data.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if take > 0 && !self.service_gone {
            encode_frame(
                &mut self.pending_output,
                tag,
                self.start.elapsed(),
                &data[..take],
            );
        }
        self.output_total += take as u64;
        if take < data.len() {
            self.truncated = true;
            self.kill(KillReason::OutputLimit, cg);
        }
    }

    fn flush(&mut self, cg: Option<&dyn RunCgroup>) {
        while self.sent < self.pending_output.len() {
            match crate::sys::write(1, &self.pending_output[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.service_gone = true;
                    self.kill(KillReason::Cancelled, cg);
                    self.pending_output.clear();
                    self.sent = 0;
                    return;
                }
            }
        }
        if self.sent == self.pending_output.len() {
            self.pending_output.clear();
            self.sent = 0;
        }
    }

    /// Acts on the whole commands received so far.
    fn commands(&mut self, stdin: &mut StdinFeed, cg: Option<&dyn RunCgroup>) {
        for command in self.ctl.take_commands() {
            match command {
                Command::Cancel => self.kill(KillReason::Cancelled, cg),
                Command::Stdin(data) => stdin.push(&data),
                Command::StdinEof => stdin.close(),
            }
        }
    }

    /// The poll loop; returns when the child is reaped and its output drained.
    pub(super) fn supervise(&mut self, p: Pipes, cg: Option<&dyn RunCgroup>) {
        for fd in [
            p.stdin.as_raw_fd(),
            p.stdout.as_raw_fd(),
            p.stderr.as_raw_fd(),
            p.status.as_raw_fd(),
            0,
            1,
        ] {
            let _ = crate::sys::set_nonblocking(&fd, true);
        }
        let mut stdin = StdinFeed::new(
            p.stdin,
            std::mem::take(&mut self.ctl.stdin),
            self.ctl.stdin_open,
        );
        let mut out: [Option<OwnedFd>; 2] = [Some(p.stdout), Some(p.stderr)];
        let mut status = Some(p.status);
        let mut ctl_open = true;
        let mut sync = Some(p.sync);
        self.commands(&mut stdin, cg);
        let deadline = self.start + self.limits.wall_timeout;
        let mut buf = vec![0u8; 65536];
        loop {
            let now = Instant::now();
            let drained = out.iter().all(Option::is_none);
            match self.ended {
                Some(_) if drained => break,
                Some(end) if now > end + Duration::from_secs(2) => break,
                _ => {}
            }
            if self.wait_status.is_none() && self.kill_reason.is_none() && now >= deadline {
                self.kill(KillReason::Timeout, cg);
            }
            // Poll set: 0 pidfd, 1 stdout, 2 stderr, 3 status, 4 ctl, 5 stdin, 6 helper stdout.
            let fd_of = |o: &Option<OwnedFd>| o.as_ref().map_or(-1, AsRawFd::as_raw_fd);
            let mut fds = [
                pfd(
                    if self.wait_status.is_none() {
                        p.pidfd.as_raw_fd()
                    } else {
                        -1
                    },
                    libc::POLLIN,
                ),
                pfd(fd_of(&out[0]), libc::POLLIN),
                pfd(fd_of(&out[1]), libc::POLLIN),
                pfd(fd_of(&status), libc::POLLIN),
                pfd(if ctl_open { 0 } else { -1 }, libc::POLLIN),
                pfd(stdin.poll_fd(), libc::POLLOUT),
                pfd(
                    if self.pending_output.is_empty() || self.service_gone {
                        -1
                    } else {
                        1
                    },
                    libc::POLLOUT,
                ),
            ];
            let timeout = match (self.ended, self.kill_reason) {
                (Some(end), _) => remaining_ms(end + Duration::from_secs(2), now),
                (None, Some(_)) => 100,
                (None, None) => remaining_ms(deadline, now).min(self.sampler.timeout_ms(now)),
            };
            if crate::sys::poll(&mut fds, timeout).is_err() {
                self.kill(KillReason::Cancelled, cg);
            }
            let now = Instant::now();
            if self.wait_status.is_none() && self.kill_reason.is_none() && self.sampler.due(now) {
                self.sampler.sample(now, cg);
            }
            let ready = |i: usize| fds[i].revents != 0;
            if ready(0) {
                self.reap_blocking();
            }
            for (i, tag) in [(1usize, TAG_STDOUT), (2, TAG_STDERR)] {
                if let (true, Some(fd)) = (ready(i), &out[i - 1]) {
                    match crate::sys::read(fd.as_raw_fd(), &mut buf) {
                        Ok(0) => out[i - 1] = None,
                        Ok(n) => self.output(tag, &buf[..n], cg),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(_) => out[i - 1] = None,
                    }
                }
            }
            if let Some(fd) = status.take_if(|_| ready(3)) {
                if let Status::Failed(s, i, e) = read_status(fd.as_raw_fd()) {
                    self.child_error = Some((s, i, e));
                }
                sync = None;
            }
            if ready(4) {
                match crate::sys::read(0, &mut buf) {
                    Ok(0) => {
                        ctl_open = false;
                        self.service_gone = true;
                        self.kill(KillReason::Cancelled, cg);
                    }
                    Ok(n) => {
                        self.ctl.extend(&buf[..n]);
                        self.commands(&mut stdin, cg);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => ctl_open = false,
                }
            }
            if ready(5) {
                stdin.write_ready();
            }
            if ready(6) {
                self.flush(cg);
            }
        }
        drop(sync);
        let _ = crate::sys::set_nonblocking(&1, false);
    }

    /// The run's result from the kill reason, wait status and cgroup counters.
    pub(super) fn result(
        &mut self,
        limits: &Limits,
        stats: &CgroupStats,
        describe: impl Fn(u32, u32, i32) -> String,
    ) -> RunResult {
        let status = self.wait_status.unwrap_or(0);
        let signal = libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status));
        let cpu_time = stats.cpu_time.unwrap_or(self.rusage_cpu);
        let verdict = if let Some((s, i, e)) = self.child_error {
            SandboxVerdict::SandboxError(describe(s, i, e))
        } else if let Some(e) = &self.setup_error {
            SandboxVerdict::SandboxError(e.clone())
        } else {
            match self.kill_reason {
                Some(KillReason::Timeout) => SandboxVerdict::Timeout,
                Some(KillReason::Cancelled) => SandboxVerdict::Cancelled,
                Some(KillReason::OutputLimit) => SandboxVerdict::OutputLimit,
                None if stats.oom_kills > 0 => SandboxVerdict::MemoryLimit,
                None if signal == Some(libc::SIGXCPU)
                    || (signal == Some(libc::SIGKILL)
                        && self.rusage_cpu + Duration::from_millis(50)
                            >= Duration::from_secs(limits.cpu_soft_secs())) =>
                {
                    SandboxVerdict::CpuLimit
                }
                None => match signal {
                    Some(sig) => SandboxVerdict::Signaled(sig),
                    None => SandboxVerdict::Exited(libc::WEXITSTATUS(status)),
                },
            }
        };
        let wall_time = self
            .ended
            .unwrap_or_else(Instant::now)
            .saturating_duration_since(self.start);
        RunResult {
            verdict,
            wall_time,
            cpu_time,
            peak_memory_bytes: stats.peak_memory_bytes,
            output_truncated: self.truncated,
            samples: self.sampler.finish(wall_time),
        }
    }
}

fn pfd(fd: i32, events: i16) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

pub(super) fn remaining_ms(until: Instant, now: Instant) -> i32 {
    let d = until.saturating_duration_since(now);
    i32::try_from(d.as_millis() + u128::from(!d.subsec_nanos().is_multiple_of(1_000_000)))
        .unwrap_or(i32::MAX)
}

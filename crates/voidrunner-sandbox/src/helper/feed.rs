//! The program's stdin as the supervise loop feeds it: non-blocking writes of what is
//! pending, only when the pipe is writable, so a program that never reads can never block
//! the loop. Snapshot stdin first, then (interactive runs) chunks from the service until EOF.

use std::os::fd::{AsRawFd, OwnedFd};

/// Most bytes buffered for a program that does not read (the service caps interactive input
/// far lower; beyond this, chunks are dropped rather than buffered without bound).
const MAX_PENDING: usize = 8 << 20;

/// Pending stdin of one run and the pipe it goes to.
#[derive(Debug)]
pub(super) struct StdinFeed {
    fd: Option<OwnedFd>,
    pending: Vec<u8>,
    off: usize,
    eof: bool,
}

impl StdinFeed {
    /// Feeds `initial`, then keeps the pipe open for [`StdinFeed::push`] when `open`.
    pub(super) fn new(fd: OwnedFd, initial: Vec<u8>, open: bool) -> Self {
        let mut feed = Self {
            fd: Some(fd),
            pending: initial,
            off: 0,
            eof: !open,
        };
        feed.close_if_done();
        feed
    }

    /// The fd to poll for `POLLOUT`, or -1 when nothing is pending.
    pub(super) fn poll_fd(&self) -> i32 {
        match &self.fd {
            Some(fd) if self.off < self.pending.len() => fd.as_raw_fd(),
            _ => -1,
        }
    }

    /// Queues more bytes (ignored once stdin is closed or the program closed its end).
    pub(super) fn push(&mut self, data: &[u8]) {
        if self.fd.is_none() || self.eof {
            return;
        }
        if self.pending.len() - self.off + data.len() > MAX_PENDING {
            return;
        }
        self.pending.extend_from_slice(data);
    }

    /// Closes stdin once everything pending is written.
    pub(super) fn close(&mut self) {
        self.eof = true;
        self.close_if_done();
    }

    /// Writes what the pipe takes now (called when poll says it is writable).
    pub(super) fn write_ready(&mut self) {
        let Some(fd) = &self.fd else { return };
        match crate::sys::write(fd.as_raw_fd(), &self.pending[self.off..]) {
            Ok(n) => self.off += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => {
                // The program closed its stdin: nothing more can be delivered.
                self.fd = None;
                self.pending = Vec::new();
                self.off = 0;
                return;
            }
        }
        if self.off == self.pending.len() {
            self.pending.clear();
            self.off = 0;
        }
        self.close_if_done();
    }

    fn close_if_done(&mut self) {
        if self.eof && self.off >= self.pending.len() {
            self.fd = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe() -> (OwnedFd, OwnedFd) {
        let (r, w) = crate::sys::pipe().expect("pipe");
        crate::sys::set_nonblocking(&w, true).expect("nonblocking");
        (r, w)
    }

    fn read_all(r: &OwnedFd) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = crate::sys::read(r.as_raw_fd(), &mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        out
    }

    #[test]
    fn snapshot_then_chunks_then_eof() {
        let (r, w) = pipe();
        let mut f = StdinFeed::new(w, b"ab".to_vec(), true);
        assert!(f.poll_fd() >= 0);
        f.write_ready();
        assert_eq!(f.poll_fd(), -1, "nothing pending, pipe stays open");
        f.push(b"cd");
        f.close();
        f.push(b"ignored");
        f.write_ready();
        assert!(f.fd.is_none(), "closed after the last pending byte");
        assert_eq!(read_all(&r), b"abcd");
    }

    #[test]
    fn closed_snapshot_run_closes_at_once_when_empty() {
        let (r, w) = pipe();
        let f = StdinFeed::new(w, Vec::new(), false);
        assert!(f.fd.is_none());
        assert_eq!(read_all(&r), b"");
    }

    #[test]
    fn a_program_that_never_reads_never_blocks() {
        let (_r, w) = pipe();
        let mut f = StdinFeed::new(w, Vec::new(), true);
        f.push(&vec![b'x'; 1 << 20]);
        for _ in 0..64 {
            f.write_ready();
        }
        assert!(f.poll_fd() >= 0, "still pending: the pipe is full");
        f.push(&vec![b'y'; MAX_PENDING]);
        assert!(f.pending.len() - f.off < MAX_PENDING + 1, "bounded");
    }
}

//! The control channel (the helper's stdin): one request line, the snapshot stdin bytes,
//! then commands ([`Command`]) until the run ends. Commands that arrive after a run ended
//! (a cancel or a stdin chunk racing the result) are skipped before the next request.

use crate::error::SandboxError;
use crate::protocol::{CMD_CANCEL, CMD_STDIN, CMD_STDIN_EOF, HelperRequest};

/// One command from the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Command {
    /// Kill the run.
    Cancel,
    /// More bytes for the program's stdin (interactive runs).
    Stdin(Vec<u8>),
    /// Close the program's stdin once what was sent is written.
    StdinEof,
}

/// What the front of the buffer holds.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    /// A whole command and how many bytes it took.
    Command(Command, usize),
    /// The start of a command; more bytes are needed.
    Incomplete,
    /// Not a command (e.g. the `{` of the next request).
    Other,
}

/// Parses one command at the front of `buf`.
fn parse(buf: &[u8]) -> Parsed {
    match buf.first() {
        Some(&CMD_CANCEL) => Parsed::Command(Command::Cancel, 1),
        Some(&CMD_STDIN_EOF) => Parsed::Command(Command::StdinEof, 1),
        Some(&CMD_STDIN) => {
            let Some(len) = buf.get(1..5) else {
                return Parsed::Incomplete;
            };
            let mut l = [0u8; 4];
            l.copy_from_slice(len);
            let len = u32::from_le_bytes(l) as usize;
            match buf.get(5..5 + len) {
                Some(data) => Parsed::Command(Command::Stdin(data.to_vec()), 5 + len),
                None => Parsed::Incomplete,
            }
        }
        _ => Parsed::Other,
    }
}

/// The control channel with bytes read past the request.
#[derive(Debug, Default)]
pub(super) struct Control {
    buf: Vec<u8>,
    /// Program stdin bytes of the request (the snapshot).
    pub stdin: Vec<u8>,
    /// The program's stdin stays open for [`Command::Stdin`] until [`Command::StdinEof`].
    pub stdin_open: bool,
}

impl Control {
    /// Reads once from fd 0 into the buffer; `Ok(false)` on EOF.
    pub(super) fn fill(&mut self) -> Result<bool, SandboxError> {
        let mut chunk = [0u8; 65536];
        let n = crate::sys::read(0, &mut chunk).map_err(|e| SandboxError::Syscall {
            call: "read(stdin)".into(),
            source: e,
        })?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    /// Appends bytes read elsewhere (the supervise loop reads fd 0 non-blocking).
    pub(super) fn extend(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The whole commands buffered so far, in order.
    pub(super) fn take_commands(&mut self) -> Vec<Command> {
        let mut out = Vec::new();
        let mut at = 0;
        while let Parsed::Command(c, n) = parse(&self.buf[at..]) {
            out.push(c);
            at += n;
        }
        self.buf.drain(..at);
        out
    }

    /// The next request; `None` when stdin closed cleanly between runs. Stale commands of the
    /// previous run are skipped.
    pub(super) fn read_request(&mut self) -> Result<Option<HelperRequest>, SandboxError> {
        let _ = crate::sys::set_nonblocking(&std::io::stdin(), false);
        let line_end = loop {
            let incomplete = loop {
                match parse(&self.buf) {
                    Parsed::Command(_, n) => drop(self.buf.drain(..n)),
                    Parsed::Incomplete => break true,
                    Parsed::Other => break false,
                }
            };
            if let (false, Some(i)) = (incomplete, self.buf.iter().position(|&b| b == b'\n')) {
                break i;
            }
            if !self.fill()? {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(SandboxError::Helper("stdin closed inside a request".into()));
            }
        };
        let req: HelperRequest = serde_json::from_slice(&self.buf[..line_end])
            .map_err(|e| SandboxError::Helper(format!("bad request: {e}")))?;
        self.buf.drain(..=line_end);
        let want = usize::try_from(req.stdin_len.unwrap_or(0)).unwrap_or(usize::MAX);
        while self.buf.len() < want {
            if !self.fill()? {
                return Err(SandboxError::Helper(
                    "stdin closed inside the program input".into(),
                ));
            }
        }
        self.stdin = self.buf.drain(..want).collect();
        self.stdin_open = req.stdin_open;
        Ok(Some(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_in_order_and_wait_for_whole_chunks() {
        let mut c = Control::default();
        c.extend(b"c");
        c.extend(&[CMD_STDIN, 3, 0, 0, 0, b'a', b'c']);
        assert_eq!(c.take_commands(), [Command::Cancel]);
        c.extend(b"ce");
        assert_eq!(
            c.take_commands(),
            [Command::Stdin(b"acc".to_vec()), Command::StdinEof]
        );
        assert!(c.take_commands().is_empty());
        c.extend(&[CMD_STDIN, 0, 0]);
        assert!(c.take_commands().is_empty(), "length not complete yet");
        c.extend(&[0, 0]);
        assert_eq!(c.take_commands(), [Command::Stdin(Vec::new())]);
    }

    #[test]
    fn parse_stops_at_other_bytes() {
        assert_eq!(parse(b"{\"argv\""), Parsed::Other);
        assert_eq!(parse(b""), Parsed::Other);
        assert_eq!(parse(&[CMD_STDIN, 9, 0, 0, 0, 1]), Parsed::Incomplete);
    }
}

//! The `.vrlog` object format: every event of one execution's log, framed, written and read
//! as a stream (no index, no compression: logs are read whole or from a seq onwards).
//!
//! ```text
//! header   "VRLOG" 0 0 1                       8 bytes (magic, format version 1)
//! event    0x01 seq:u64 attempt:u32 stream:u8 created_at_us:i64 len:u32 data[len]
//! ...
//! trailer  0xFF events:u64 last_seq:u64 data_bytes:u64 digest:u64
//! ```
//!
//! Integers are big-endian. `stream` is 0 stdout, 1 stderr, 2 compile, 3 status. The trailer
//! makes a truncated object detectable (no trailer = incomplete) and carries a digest
//! (FNV-1a 64 over every event's seq, stream and data) that the archiver compares after
//! reading the object back, before it deletes any row.

use bytes::{Buf, BytesMut};
use voidrunner_store::{LogEvent, LogStream};

/// Magic and version at the start of every object.
pub const HEADER: &[u8; 8] = b"VRLOG\0\0\x01";
const EVENT: u8 = 0x01;
const TRAILER: u8 = 0xFF;
/// Fixed part of an event frame after its tag.
const EVENT_FIXED: usize = 8 + 4 + 1 + 8 + 4;
/// Trailer size after its tag.
const TRAILER_LEN: usize = 8 * 4;
/// Largest event data accepted when decoding (a corrupt length cannot make us allocate more).
const MAX_EVENT: usize = 64 << 20;

/// What an object's trailer says; the encoder computes the same from the events it wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Number of events.
    pub events: u64,
    /// Seq of the last event (0 when empty).
    pub last_seq: u64,
    /// Sum of the events' data lengths.
    pub data_bytes: u64,
    /// FNV-1a 64 over each event's seq, stream code and data.
    pub digest: u64,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl Summary {
    fn new() -> Self {
        Self {
            digest: FNV_OFFSET,
            ..Self::default()
        }
    }

    fn add(&mut self, e: &LogEvent) {
        self.events += 1;
        self.last_seq = e.seq;
        self.data_bytes += e.data.len() as u64;
        let mut h = self.digest;
        let code = [stream_code(e.stream)];
        for b in e.seq.to_be_bytes().iter().chain(&code).chain(&e.data) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(FNV_PRIME);
        }
        self.digest = h;
    }
}

/// The object is not a complete `.vrlog`.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// Wrong magic or an unknown version.
    #[error("not a vrlog object (bad header)")]
    Header,
    /// A frame tag, stream code, timestamp or length that cannot be.
    #[error("corrupt vrlog frame at byte {offset}: {what}")]
    Corrupt {
        /// Offset of the frame in the object.
        offset: u64,
        /// What is wrong.
        what: &'static str,
    },
    /// The object ended before its trailer.
    #[error("truncated vrlog object ({bytes} bytes, no trailer)")]
    Truncated {
        /// Bytes read.
        bytes: u64,
    },
    /// The trailer does not match the events read.
    #[error("vrlog trailer does not match its events")]
    Mismatch,
}

fn stream_code(s: LogStream) -> u8 {
    match s {
        LogStream::Stdout => 0,
        LogStream::Stderr => 1,
        LogStream::Compile => 2,
        LogStream::Status => 3,
    }
}

fn stream_of(code: u8) -> Option<LogStream> {
    Some(match code {
        0 => LogStream::Stdout,
        1 => LogStream::Stderr,
        2 => LogStream::Compile,
        3 => LogStream::Status,
        _ => return None,
    })
}

/// Writes frames into caller buffers and keeps the running [`Summary`].
#[derive(Debug)]
pub struct Encoder {
    summary: Summary,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    /// A new encoder; write [`HEADER`] first.
    pub fn new() -> Self {
        Self {
            summary: Summary::new(),
        }
    }

    /// Appends one event frame to `out`.
    pub fn event(&mut self, e: &LogEvent, out: &mut Vec<u8>) {
        out.push(EVENT);
        out.extend_from_slice(&e.seq.to_be_bytes());
        out.extend_from_slice(&e.attempt.to_be_bytes());
        out.push(stream_code(e.stream));
        out.extend_from_slice(&e.created_at.timestamp_micros().to_be_bytes());
        let len = u32::try_from(e.data.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&e.data[..len as usize]);
        self.summary.add(e);
    }

    /// Appends the trailer to `out` and returns the summary it holds.
    pub fn finish(self, out: &mut Vec<u8>) -> Summary {
        let s = self.summary;
        out.push(TRAILER);
        for v in [s.events, s.last_seq, s.data_bytes, s.digest] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        s
    }
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// An event.
    Event(LogEvent),
    /// The trailer (checked against the events decoded before it).
    End(Summary),
}

/// Incremental decoder: feed bytes as they arrive, take frames out.
#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
    /// Object offset of `buf[0]`.
    offset: u64,
    header_seen: bool,
    done: bool,
    summary: Summary,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// A decoder at the start of an object.
    pub fn new() -> Self {
        Self {
            buf: BytesMut::new(),
            offset: 0,
            header_seen: false,
            done: false,
            summary: Summary::new(),
        }
    }

    /// Adds bytes read from the object.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, `None` when more bytes are needed (or after the trailer).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FormatError> {
        if self.done {
            return Ok(None);
        }
        if !self.header_seen {
            if self.buf.len() < HEADER.len() {
                return Ok(None);
            }
            if &self.buf[..HEADER.len()] != HEADER {
                return Err(FormatError::Header);
            }
            self.consume(HEADER.len());
            self.header_seen = true;
        }
        let Some(&tag) = self.buf.first() else {
            return Ok(None);
        };
        let corrupt = |what| FormatError::Corrupt {
            offset: self.offset,
            what,
        };
        match tag {
            EVENT => {
                if self.buf.len() < 1 + EVENT_FIXED {
                    return Ok(None);
                }
                let mut h = &self.buf[1..1 + EVENT_FIXED];
                let seq = h.get_u64();
                let attempt = h.get_u32();
                let stream = stream_of(h.get_u8()).ok_or_else(|| corrupt("stream code"))?;
                let created = h.get_i64();
                let len = h.get_u32() as usize;
                if len > MAX_EVENT {
                    return Err(corrupt("event length"));
                }
                if self.buf.len() < 1 + EVENT_FIXED + len {
                    return Ok(None);
                }
                let created_at = chrono::DateTime::from_timestamp_micros(created)
                    .ok_or_else(|| corrupt("timestamp"))?;
                let start = 1 + EVENT_FIXED;
                let data = self.buf[start..start + len].to_vec();
                self.consume(start + len);
                let e = LogEvent {
                    seq,
                    attempt,
                    stream,
                    data,
                    created_at,
                };
                self.summary.add(&e);
                Ok(Some(Frame::Event(e)))
            }
            TRAILER => {
                if self.buf.len() < 1 + TRAILER_LEN {
                    return Ok(None);
                }
                let mut t = &self.buf[1..1 + TRAILER_LEN];
                let s = Summary {
                    events: t.get_u64(),
                    last_seq: t.get_u64(),
                    data_bytes: t.get_u64(),
                    digest: t.get_u64(),
                };
                self.consume(1 + TRAILER_LEN);
                self.done = true;
                if s != self.summary {
                    return Err(FormatError::Mismatch);
                }
                Ok(Some(Frame::End(s)))
            }
            _ => Err(corrupt("frame tag")),
        }
    }

    /// Call at the end of the object: an error unless the trailer was read.
    pub fn finish(&self) -> Result<Summary, FormatError> {
        if self.done {
            Ok(self.summary)
        } else {
            Err(FormatError::Truncated {
                bytes: self.offset + self.buf.len() as u64,
            })
        }
    }

    fn consume(&mut self, n: usize) {
        self.buf.advance(n);
        self.offset += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64, stream: LogStream, data: &[u8]) -> LogEvent {
        LogEvent {
            seq,
            attempt: 2,
            stream,
            data: data.to_vec(),
            created_at: voidrunner_store::now(),
        }
    }

    fn encode(events: &[LogEvent]) -> (Vec<u8>, Summary) {
        let mut out = HEADER.to_vec();
        let mut enc = Encoder::new();
        for e in events {
            enc.event(e, &mut out);
        }
        let s = enc.finish(&mut out);
        (out, s)
    }

    fn decode(bytes: &[u8], step: usize) -> Result<(Vec<LogEvent>, Summary), FormatError> {
        let mut d = Decoder::new();
        let mut events = Vec::new();
        for piece in bytes.chunks(step) {
            d.push(piece);
            while let Some(f) = d.next_frame()? {
                if let Frame::Event(e) = f {
                    events.push(e);
                }
            }
        }
        Ok((events, d.finish()?))
    }

    #[test]
    fn round_trip_in_any_chunking() {
        let events = vec![
            event(1, LogStream::Status, b"{\"status\":\"queued\"}"),
            event(2, LogStream::Stdout, b"hello\n"),
            event(3, LogStream::Stderr, b"\xff\0binary"),
            event(4, LogStream::Compile, b""),
        ];
        let (bytes, summary) = encode(&events);
        assert_eq!(summary.events, 4);
        assert_eq!(summary.last_seq, 4);
        for step in [1, 3, 7, bytes.len()] {
            let (got, s) = decode(&bytes, step).expect("decode");
            assert_eq!(got, events, "step {step}");
            assert_eq!(s, summary);
        }
    }

    #[test]
    fn truncation_corruption_and_mismatch_are_errors() {
        let (bytes, _) = encode(&[event(1, LogStream::Stdout, b"abc")]);
        assert!(matches!(
            decode(&bytes[..bytes.len() - 1], 4),
            Err(FormatError::Truncated { .. })
        ));
        assert!(matches!(decode(b"NOTVRLOG", 8), Err(FormatError::Header)));
        let mut flipped = bytes.clone();
        let data_at = HEADER.len() + 1 + EVENT_FIXED;
        flipped[data_at] ^= 1;
        assert!(matches!(decode(&flipped, 5), Err(FormatError::Mismatch)));
        let mut bad_tag = bytes;
        bad_tag[HEADER.len()] = 0x42;
        assert!(matches!(
            decode(&bad_tag, 5),
            Err(FormatError::Corrupt { offset: 8, .. })
        ));
    }
}

//! The streaming pass: output arrives in arbitrary chunks; bytes leave as soon as no secret
//! occurrence can cover them.

use std::fmt;

use crate::secrets::{Matcher, REPLACEMENT, SecretRegistry};

/// Masks one output stream (one per stream per execution: stdout and stderr each get their own).
///
/// Every maximal run of bytes covered by overlapping secret occurrences becomes one `***`.
/// Bytes are released as soon as they provably cannot belong to an occurrence; only a tail that
/// is a proper prefix of some secret is held back, at most `max_len - 1` bytes, until more data
/// or [`StreamMasker::finish`] decides it.
pub struct StreamMasker {
    matcher: Matcher,
    /// Followed registry and the version of the snapshot in use.
    registry: Option<(SecretRegistry, u64)>,
    /// Undecided tail of the stream (a proper prefix of some secret, plus covered bytes).
    held: Vec<u8>,
    /// Leading bytes of `held` already inside a region whose `***` was emitted.
    covered: usize,
    /// Scratch list of occurrences, reused between chunks.
    scratch: Vec<(usize, usize)>,
}

impl fmt::Debug for StreamMasker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Held bytes may be the start of a secret: show only their count.
        f.debug_struct("StreamMasker")
            .field("secrets", &self.matcher.len())
            .field("held_len", &self.held.len())
            .finish_non_exhaustive()
    }
}

impl StreamMasker {
    /// A masker over a fixed snapshot.
    pub fn new(matcher: Matcher) -> Self {
        Self {
            matcher,
            registry: None,
            held: Vec::new(),
            covered: 0,
            scratch: Vec::new(),
        }
    }

    /// A masker that switches to the registry's newest snapshot before each chunk.
    pub fn following(registry: SecretRegistry) -> Self {
        let version = registry.version();
        let mut masker = Self::new(registry.snapshot());
        masker.registry = Some((registry, version));
        masker
    }

    /// Replaces the snapshot (e.g. after a runtime registration). Held bytes are re-examined
    /// with the new secrets; bytes already released are not.
    pub fn set_matcher(&mut self, matcher: Matcher) {
        self.matcher = matcher;
    }

    /// Number of bytes currently held back (never more than `max_len - 1`).
    pub fn held_len(&self) -> usize {
        self.held.len()
    }

    /// Masks the next chunk, appending whatever is decided to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        self.refresh();
        if chunk.is_empty() {
            return;
        }
        if self.held.is_empty() {
            let decided = self.sweep(chunk, false, out);
            self.held.extend_from_slice(&chunk[decided..]);
        } else {
            let mut buf = std::mem::take(&mut self.held);
            buf.extend_from_slice(chunk);
            let decided = self.sweep(&buf, false, out);
            buf.drain(..decided);
            self.held = buf;
        }
    }

    /// Ends the stream: releases the held tail, masked. The masker can then start a new stream.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        self.refresh();
        let buf = std::mem::take(&mut self.held);
        self.sweep(&buf, true, out);
        self.covered = 0;
    }

    fn refresh(&mut self) {
        if let Some((registry, seen)) = &mut self.registry {
            let now = registry.version();
            if now != *seen {
                *seen = now;
                self.matcher = registry.snapshot();
            }
        }
    }

    /// Emits the decided prefix of `data` and returns its length. With `at_end`, all of it.
    fn sweep(&mut self, data: &[u8], at_end: bool, out: &mut Vec<u8>) -> usize {
        let decided = if at_end {
            data.len()
        } else {
            self.matcher.hold_point(data)
        };
        // Every occurrence starting before `decided` lies wholly in `data` (one that would run
        // past the end needs a proper-prefix tail, which starts at or after `decided`).
        self.matcher.occurrences(data, decided, &mut self.scratch);
        // Invariant: bytes before `covered` are released or hidden; plain ones start there.
        let mut covered = self.covered;
        for &(start, end) in &self.scratch {
            if start < covered {
                covered = covered.max(end);
            } else {
                out.extend_from_slice(&data[covered..start]);
                out.extend_from_slice(REPLACEMENT);
                covered = end;
            }
        }
        if covered < decided {
            out.extend_from_slice(&data[covered..decided]);
        }
        self.covered = covered.saturating_sub(decided);
        decided
    }
}

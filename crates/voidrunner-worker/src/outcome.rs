//! From what the executor reported to what the queue records: capped output capture and the
//! pure decision "result or retry". No IO, so it is table-tested.

use voidrunner_domain::{Timestamp, Verdict};
use voidrunner_exec::{ExecOutcome, OutputStream, Phase};
use voidrunner_store::ExecutionResult;

/// Output of one execution, kept up to a byte cap: the run phase's stdout and stderr share
/// the cap (like the execution's `max_output_bytes`), the compiler's output has its own.
#[derive(Debug, Clone)]
pub(crate) struct OutputCapture {
    cap: usize,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    compile: Vec<u8>,
    truncated: bool,
}

/// The captured output, decoded (lossy UTF-8).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CapturedOutput {
    pub stdout: String,
    pub stderr: String,
    /// `Some` when a compile phase produced output or ran.
    pub compile_output: Option<String>,
    pub truncated: bool,
}

impl OutputCapture {
    /// An empty capture keeping at most `cap_bytes` of run output and of compile output.
    pub fn new(cap_bytes: u64) -> Self {
        Self {
            cap: usize::try_from(cap_bytes).unwrap_or(usize::MAX),
            stdout: Vec::new(),
            stderr: Vec::new(),
            compile: Vec::new(),
            truncated: false,
        }
    }

    /// Appends one chunk, cutting at the cap; answers how many leading bytes were kept (the
    /// same part goes to the event log, so stored logs respect the cap too).
    #[cfg(test)]
    pub fn push(&mut self, event: &voidrunner_exec::OutputEvent) -> usize {
        self.push_data(event.phase, event.stream, &event.data)
    }

    /// Appends one chunk of `phase`/`stream` (already masked), cutting at the cap; answers how
    /// many leading bytes were kept.
    pub fn push_data(&mut self, phase: Phase, stream: OutputStream, data: &[u8]) -> usize {
        let (buf, room) = match phase {
            Phase::Compile => {
                let room = self.cap.saturating_sub(self.compile.len());
                (&mut self.compile, room)
            }
            Phase::Run => {
                let room = self
                    .cap
                    .saturating_sub(self.stdout.len() + self.stderr.len());
                let buf = match stream {
                    OutputStream::Stdout => &mut self.stdout,
                    OutputStream::Stderr => &mut self.stderr,
                };
                (buf, room)
            }
        };
        let take = data.len().min(room);
        buf.extend_from_slice(&data[..take]);
        if take < data.len() {
            self.truncated = true;
        }
        take
    }

    /// Decodes what was kept. `compiled` says whether a compile phase ran (then
    /// `compile_output` is `Some`, possibly empty).
    pub fn finish(self, compiled: bool) -> CapturedOutput {
        CapturedOutput {
            stdout: decode(&self.stdout),
            stderr: decode(&self.stderr),
            compile_output: (compiled || !self.compile.is_empty()).then(|| decode(&self.compile)),
            truncated: self.truncated,
        }
    }
}

/// Program output as stored text: lossy UTF-8, and NUL replaced by U+FFFD because PostgreSQL
/// text cannot hold it (a program printing `\0` must still get its result recorded, on every
/// backend alike).
fn decode(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text.into_owned()
    }
}

/// What to do with a finished run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Disposition {
    /// A result (success, program failure, limit, timeout, compile error, cancel): record it.
    Complete(Box<ExecutionResult>),
    /// An infrastructure failure: give the execution back for a retry.
    Retry {
        /// Operator-facing reason.
        error: String,
    },
}

/// Decides result or retry and builds the record. Only `SandboxError` is retried; every
/// program outcome is a result, never retried.
pub(crate) fn disposition(
    outcome: &ExecOutcome,
    output: CapturedOutput,
    finished_at: Timestamp,
) -> Disposition {
    if let Verdict::SandboxError { reason } = &outcome.verdict {
        return Disposition::Retry {
            error: reason.clone(),
        };
    }
    let signal = match outcome.verdict {
        Verdict::Signaled { signal } => Some(signal),
        _ => None,
    };
    Disposition::Complete(Box::new(ExecutionResult {
        verdict: outcome.verdict.clone(),
        exit_code: outcome.exit_code,
        signal,
        stdout: output.stdout,
        stderr: output.stderr,
        compile_output: output.compile_output,
        output_truncated: outcome.output_truncated || output.truncated,
        wall_time_ms: millis(outcome.wall_time),
        cpu_time_ms: millis(outcome.cpu_time),
        peak_memory_bytes: outcome.peak_memory_bytes,
        resource_samples: outcome.samples.clone(),
        finished_at,
    }))
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use voidrunner_domain::ResourceSample;
    use voidrunner_exec::{OutputEvent, PhaseReport};

    use super::*;

    fn event(phase: Phase, stream: OutputStream, data: &[u8]) -> OutputEvent {
        OutputEvent {
            stream,
            data: Bytes::copy_from_slice(data),
            elapsed: Duration::ZERO,
            phase,
        }
    }

    fn outcome(verdict: Verdict, exit_code: Option<i32>) -> ExecOutcome {
        ExecOutcome {
            verdict: verdict.clone(),
            exit_code,
            wall_time: Duration::from_millis(12),
            cpu_time: Duration::from_millis(7),
            peak_memory_bytes: Some(4096),
            output_truncated: false,
            samples: vec![ResourceSample {
                t_ms: 100,
                memory_bytes: 1 << 20,
                cpu_ms: 90,
            }],
            phases: vec![PhaseReport {
                phase: Phase::Run,
                verdict,
                wall_time: Duration::from_millis(12),
                cpu_time: Duration::from_millis(7),
                peak_memory_bytes: Some(4096),
                output_truncated: false,
                samples: Vec::new(),
            }],
        }
    }

    #[test]
    fn run_output_shares_the_cap_and_marks_truncation() {
        let mut c = OutputCapture::new(8);
        c.push(&event(Phase::Run, OutputStream::Stdout, b"hello"));
        c.push(&event(Phase::Run, OutputStream::Stderr, b"world"));
        c.push(&event(Phase::Run, OutputStream::Stdout, b"!"));
        let out = c.finish(false);
        assert_eq!(out.stdout, "hello");
        assert_eq!(out.stderr, "wor");
        assert!(out.truncated);
        assert_eq!(out.compile_output, None);
    }

    #[test]
    fn compile_output_is_separate_and_lossy() {
        let mut c = OutputCapture::new(4);
        c.push(&event(Phase::Compile, OutputStream::Stderr, b"e\xffr"));
        c.push(&event(Phase::Run, OutputStream::Stdout, b"ok"));
        let out = c.finish(true);
        assert_eq!(out.compile_output.as_deref(), Some("e\u{fffd}r"));
        assert_eq!(out.stdout, "ok");
        assert!(!out.truncated);
        assert_eq!(
            OutputCapture::new(4).finish(true).compile_output.as_deref(),
            Some("")
        );
    }

    #[test]
    fn sandbox_errors_are_retried_everything_else_is_a_result() {
        let now = voidrunner_store::now();
        let retry = disposition(
            &ExecOutcome::sandbox_error("helper died"),
            CapturedOutput::default(),
            now,
        );
        assert_eq!(
            retry,
            Disposition::Retry {
                error: "helper died".into()
            }
        );
        let cases = [
            (Verdict::Exited { code: 0 }, Some(0), None),
            (Verdict::Exited { code: 3 }, Some(3), None),
            (Verdict::Signaled { signal: 11 }, None, Some(11)),
            (Verdict::Timeout, None, None),
            (Verdict::MemoryLimit, None, None),
            (Verdict::OutputLimit, None, None),
            (Verdict::CompileError { code: 1 }, None, None),
            (Verdict::Cancelled, None, None),
        ];
        for (verdict, exit_code, signal) in cases {
            let d = disposition(
                &outcome(verdict.clone(), exit_code),
                CapturedOutput::default(),
                now,
            );
            let Disposition::Complete(r) = d else {
                panic!("{verdict:?} must be a result");
            };
            assert_eq!(r.verdict, verdict);
            assert_eq!((r.exit_code, r.signal), (exit_code, signal), "{verdict:?}");
            assert_eq!((r.wall_time_ms, r.cpu_time_ms), (12, 7));
            assert_eq!(r.peak_memory_bytes, Some(4096));
            assert_eq!(r.resource_samples.len(), 1, "the timeline is recorded");
            assert_eq!(r.finished_at, now);
        }
    }

    #[test]
    fn truncation_from_the_executor_or_the_capture_is_kept() {
        let mut o = outcome(Verdict::OutputLimit, None);
        o.output_truncated = true;
        let Disposition::Complete(r) =
            disposition(&o, CapturedOutput::default(), voidrunner_store::now())
        else {
            panic!("result expected");
        };
        assert!(r.output_truncated);
    }

    #[test]
    fn nul_bytes_never_reach_the_store() {
        let mut cap = OutputCapture::new(1024);
        cap.push(&event(Phase::Run, OutputStream::Stdout, b"a\0b\xff"));
        cap.push(&event(Phase::Run, OutputStream::Stderr, b"\0"));
        cap.push(&event(Phase::Compile, OutputStream::Stderr, b"x\0"));
        let out = cap.finish(true);
        assert_eq!(out.stdout, "a\u{FFFD}b\u{FFFD}");
        assert_eq!(out.stderr, "\u{FFFD}");
        assert_eq!(out.compile_output.as_deref(), Some("x\u{FFFD}"));
    }
}

//! Secret masking of an execution's output: one [`SecretRegistry`] per execution and one
//! [`StreamMasker`] per output stream (compile, stdout, stderr). Every chunk is masked here
//! before the output cap and before the event log, so the stored result, the stored log
//! events and everything streamed from them only ever hold masked bytes.
//!
//! Which values are secret: for now the values of the execution's environment variables whose
//! name the operator marks secret ([`WorkerConfig::secret_env_suffixes`] and
//! [`WorkerConfig::secret_env_names`]); per-task secrets replace this later. A marked value
//! shorter than [`voidrunner_mask::MIN_SECRET_LEN`] bytes cannot be masked without mangling
//! unrelated output, so it is skipped with a warning naming the variable (never its value).

use std::collections::BTreeMap;

use voidrunner_exec::{OutputStream, Phase};
use voidrunner_mask::{SecretRegistry, SecretSet, StreamMasker};

use crate::WorkerConfig;

/// The maskers of one execution.
pub(crate) struct Masking {
    registry: SecretRegistry,
    compile: StreamMasker,
    stdout: StreamMasker,
    stderr: StreamMasker,
}

impl Masking {
    /// Maskers hiding `values` (each at least `MIN_SECRET_LEN` bytes; others are skipped).
    pub(crate) fn new<'v>(values: impl IntoIterator<Item = (&'v str, &'v [u8])>) -> Self {
        let mut set = SecretSet::new();
        for (name, value) in values {
            if let Err(e) = set.insert(value) {
                tracing::warn!(secret.name = name, "secret {name} is not masked: {e}");
            }
        }
        let registry = SecretRegistry::new(set);
        Self {
            compile: registry.masker(),
            stdout: registry.masker(),
            stderr: registry.masker(),
            registry,
        }
    }

    /// Maskers hiding the values of the environment variables `config` marks secret.
    pub(crate) fn for_env(env: &BTreeMap<String, String>, config: &WorkerConfig) -> Self {
        Self::new(
            env.iter()
                .filter(|(name, _)| config.is_secret_env(name))
                .map(|(name, value)| (name.as_str(), value.as_bytes())),
        )
    }

    /// The registry shared by the maskers (values registered here mask every stream).
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "runtime registration comes later")
    )]
    pub(crate) fn registry(&self) -> &SecretRegistry {
        &self.registry
    }

    fn masker(&mut self, phase: Phase, stream: OutputStream) -> &mut StreamMasker {
        match (phase, stream) {
            (Phase::Compile, _) => &mut self.compile,
            (Phase::Run, OutputStream::Stdout) => &mut self.stdout,
            (Phase::Run, OutputStream::Stderr) => &mut self.stderr,
        }
    }

    /// Masks one chunk of a stream; the answer may be shorter than the chunk (a tail that
    /// could start a secret is held until the next chunk or [`Masking::finish`]).
    pub(crate) fn push(&mut self, phase: Phase, stream: OutputStream, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(chunk.len());
        self.masker(phase, stream).push(chunk, &mut out);
        out
    }

    /// The held tails of every stream, masked, once the output has ended (compile first,
    /// then stdout, then stderr).
    pub(crate) fn finish(&mut self) -> Vec<(Phase, OutputStream, Vec<u8>)> {
        [
            (Phase::Compile, OutputStream::Stderr),
            (Phase::Run, OutputStream::Stdout),
            (Phase::Run, OutputStream::Stderr),
        ]
        .into_iter()
        .filter_map(|(phase, stream)| {
            let mut out = Vec::new();
            self.masker(phase, stream).finish(&mut out);
            (!out.is_empty()).then_some((phase, stream, out))
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(masking: &mut Masking, chunks: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for c in chunks {
            out.extend(masking.push(Phase::Run, OutputStream::Stdout, c));
        }
        for (_, _, tail) in masking.finish() {
            out.extend(tail);
        }
        out
    }

    #[test]
    fn marked_env_values_are_masked_across_chunks_and_short_ones_skipped() {
        let config = WorkerConfig {
            secret_env_names: vec!["PLAIN_BUT_SECRET".into()],
            ..WorkerConfig::default()
        };
        let env = BTreeMap::from([
            ("API_TOKEN".to_owned(), "tok-1234".to_owned()),
            ("PLAIN_BUT_SECRET".to_owned(), "hunter2".to_owned()),
            ("SHORT_KEY".to_owned(), "ab".to_owned()),
            ("GREETING".to_owned(), "hello".to_owned()),
        ]);
        let mut m = Masking::for_env(&env, &config);
        assert_eq!(m.registry().snapshot().len(), 2);
        let out = run(&mut m, &[b"hello tok-", b"12", b"34 hunter", b"2 ab"]);
        assert_eq!(out, b"hello *** *** ab");
    }

    #[test]
    fn streams_are_independent_and_tails_are_released_at_the_end() {
        let mut m = Masking::new([("S", &b"secret"[..])]);
        let a = m.push(Phase::Run, OutputStream::Stdout, b"x secr");
        let b = m.push(Phase::Run, OutputStream::Stderr, b"et y");
        assert_eq!((a.as_slice(), b.as_slice()), (&b"x "[..], &b"et y"[..]));
        assert_eq!(
            m.finish(),
            vec![(Phase::Run, OutputStream::Stdout, b"secr".to_vec())]
        );
    }
}

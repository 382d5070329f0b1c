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

use voidrunner_domain::Execution;
use voidrunner_exec::{OutputStream, Phase};
use voidrunner_mask::{SecretRegistry, SecretSet, StreamMasker, Zeroizing};

use crate::WorkerConfig;
use crate::pool::Shared;

/// An opened task secret: its name and value.
pub(crate) type Secret = (String, Zeroizing<Vec<u8>>);

/// Opens the sealed task secrets snapshot with the execution (sealed bound to
/// `"<task_id>/<name>"`). An error (store failure, no key configured, a value that does not
/// open) is an infrastructure failure: the run must not start without its secrets.
pub(crate) async fn task_secrets(
    shared: &Shared,
    execution: &Execution,
) -> Result<Vec<Secret>, String> {
    let Some(task_id) = execution.task_id else {
        return Ok(Vec::new());
    };
    let sealed = shared
        .store
        .execution_secrets(execution.id)
        .await
        .map_err(|e| format!("reading the task secrets failed: {e}"))?;
    if sealed.is_empty() {
        return Ok(Vec::new());
    }
    let Some(secret_box) = &shared.secret_box else {
        return Err("the task has secrets but this worker has no secrets key".to_owned());
    };
    sealed
        .into_iter()
        .map(|(name, value)| {
            let context = format!("{task_id}/{name}");
            secret_box
                .open_with_context(&value, context.as_bytes())
                .map(|plain| (name.clone(), plain))
                .map_err(|e| format!("task secret {name} does not open: {e}"))
        })
        .collect()
}

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
    #[cfg_attr(not(test), expect(dead_code, reason = "runs use `for_run`"))]
    pub(crate) fn for_env(env: &BTreeMap<String, String>, config: &WorkerConfig) -> Self {
        Self::for_run(env, &[], config)
    }

    /// Maskers hiding the task secrets and the values of the environment variables `config`
    /// marks secret.
    pub(crate) fn for_run(
        env: &BTreeMap<String, String>,
        secrets: &[Secret],
        config: &WorkerConfig,
    ) -> Self {
        Self::new(
            env.iter()
                .filter(|(name, _)| config.is_secret_env(name))
                .map(|(name, value)| (name.as_str(), value.as_bytes()))
                .chain(secrets.iter().map(|(n, v)| (n.as_str(), v.as_slice()))),
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

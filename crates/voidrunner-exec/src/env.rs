//! The environment of sandboxed programs: a minimal, fixed base plus the language's and the
//! task's variables. Nothing of the service's own environment (secrets, tokens) is inherited.

use std::collections::BTreeMap;

/// `PATH` of every sandboxed program. Fixed: a task cannot change it, so `#!/usr/bin/env`
/// lines and tools started by programs resolve to the same read-only host runtimes.
pub const PATH: &str = "/usr/bin:/bin";

/// The base environment: `PATH`, `HOME=/tmp` (writable tmpfs, for runtimes that write caches),
/// `LANG=C.UTF-8`, `TMPDIR=/tmp`.
pub fn base() -> BTreeMap<String, String> {
    [
        ("PATH", PATH),
        ("HOME", "/tmp"),
        ("LANG", "C.UTF-8"),
        ("TMPDIR", "/tmp"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Variables a task may not set (they are ignored, with a warning in the log).
pub const RESERVED: &[&str] = &["PATH"];

/// An invalid task environment variable (for API validation before enqueueing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("env.{name}: {message}")]
pub struct EnvError {
    /// The variable name as given.
    pub name: String,
    /// Why it is refused.
    pub message: String,
}

/// Checks a task environment: names non-empty without `=` or NUL, values without NUL, and no
/// reserved name. The API calls it so bad requests fail with 400 instead of at run time.
pub fn validate(env: &BTreeMap<String, String>) -> Result<(), EnvError> {
    crate::registry::check_env(env).map_err(|(name, message)| EnvError { name, message })?;
    if let Some(name) = env.keys().find(|k| RESERVED.contains(&k.as_str())) {
        return Err(EnvError {
            name: name.clone(),
            message: "is fixed by the executor and cannot be set".to_owned(),
        });
    }
    Ok(())
}

/// Builds the environment of one phase: base, then the language's variables, then (run phase
/// only) the task's, later layers overriding earlier ones except for [`RESERVED`] names.
/// Invalid task variables must have been refused by [`validate`]; here they are dropped.
pub fn compose(
    language: &BTreeMap<String, String>,
    task: Option<&BTreeMap<String, String>>,
) -> Vec<(String, String)> {
    let mut env = base();
    env.extend(language.iter().map(|(k, v)| (k.clone(), v.clone())));
    if let Some(task) = task {
        for (k, v) in task {
            let valid = !k.is_empty() && !k.contains(['=', '\0']) && !v.contains('\0');
            if !valid || RESERVED.contains(&k.as_str()) {
                tracing::warn!(env.name = %k, "ignoring reserved or invalid task variable {k}");
                continue;
            }
            env.insert(k.clone(), v.clone());
        }
    }
    env.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: &[(&str, &str)]) -> BTreeMap<String, String> {
        v.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn task_overrides_all_but_path() {
        let env = compose(
            &map(&[("PYTHONUNBUFFERED", "1"), ("LANG", "C")]),
            Some(&map(&[
                ("PATH", "/evil"),
                ("HOME", "/work"),
                ("X", "1"),
                ("A=B", "x"),
            ])),
        );
        let env: BTreeMap<_, _> = env.into_iter().collect();
        assert_eq!(env["PATH"], PATH);
        assert_eq!(env["HOME"], "/work");
        assert_eq!(env["LANG"], "C");
        assert_eq!(env["X"], "1");
        assert_eq!(env["PYTHONUNBUFFERED"], "1");
        assert!(!env.contains_key("A=B"));
    }

    #[test]
    fn validate_names_the_variable() {
        assert!(validate(&map(&[("OK", "1")])).is_ok());
        assert_eq!(
            validate(&map(&[("PATH", "/x")]))
                .expect_err("reserved")
                .name,
            "PATH"
        );
        assert_eq!(validate(&map(&[("", "1")])).expect_err("empty").name, "");
        assert_eq!(
            validate(&map(&[("V", "a\0b")]))
                .expect_err("nul")
                .to_string(),
            "env.V: value must not contain NUL"
        );
    }
}

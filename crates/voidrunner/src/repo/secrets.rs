//! Where `repo add|update` read secrets from (files, stdin, environment), and the delete
//! confirmation. Values are only passed on to the request body, never printed.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::Path;

use anyhow::Context;

use super::{JobSecretArgs, WebhookSecretArgs};
use crate::job::parse_pairs;

/// The variable `repo add` reads the webhook secret from when no flag names a source.
const WEBHOOK_ENV: &str = "VOIDRUNNER_WEBHOOK_SECRET";
/// The variable the status reporting token comes from without `--status-token-file`.
const STATUS_TOKEN_ENV: &str = "VOIDRUNNER_STATUS_TOKEN";

/// The text of `file` (`-`: stdin) without one trailing newline (what `echo` and editors
/// add), refusing an empty secret.
fn read_secret(file: &Path, what: &str) -> anyhow::Result<String> {
    let mut text = String::new();
    if file == Path::new("-") {
        std::io::stdin()
            .read_to_string(&mut text)
            .with_context(|| format!("reading the {what} from stdin"))?;
    } else {
        text = std::fs::read_to_string(file)
            .with_context(|| format!("reading the {what} from {}", file.display()))?;
    }
    let text = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text)
        .to_owned();
    if text.is_empty() {
        anyhow::bail!("the {what} in {} is empty", file.display());
    }
    Ok(text)
}

/// The value of environment variable `var`, which must be set and non-empty.
fn from_env(env: &BTreeMap<String, String>, var: &str, what: &str) -> anyhow::Result<String> {
    match env.get(var) {
        Some(v) if !v.is_empty() => Ok(v.clone()),
        _ => anyhow::bail!("the {what} variable {var} is not set"),
    }
}

/// The webhook secret from the flags; with `default_env` (`add`) falls back to
/// `VOIDRUNNER_WEBHOOK_SECRET` and requires one, else answers `None` when no flag is given.
pub(super) fn webhook_secret(
    args: &WebhookSecretArgs,
    env: &BTreeMap<String, String>,
    default_env: bool,
) -> anyhow::Result<Option<String>> {
    const WHAT: &str = "webhook secret";
    if let Some(file) = &args.webhook_secret_file {
        return read_secret(file, WHAT).map(Some);
    }
    if let Some(var) = &args.webhook_secret_env {
        return from_env(env, var, WHAT).map(Some);
    }
    if !default_env {
        return Ok(None);
    }
    from_env(env, WEBHOOK_ENV, WHAT)
        .context("give --webhook-secret-file FILE (- for stdin), --webhook-secret-env VAR or set VOIDRUNNER_WEBHOOK_SECRET")
        .map(Some)
}

/// Job secrets: the `--secret-file` lines, then `VOIDRUNNER_SECRET_<NAME>` for each
/// `--secret NAME` (which must be set).
pub(super) fn job_secrets(
    args: &JobSecretArgs,
    env: &BTreeMap<String, String>,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    if let Some(file) = &args.secret_file {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        out.extend(parse_pairs(
            text.lines().map(str::to_owned),
            "--secret-file",
        )?);
    }
    for name in &args.secrets {
        let value = from_env(env, &format!("VOIDRUNNER_SECRET_{name}"), "job secret")?;
        out.insert(name.clone(), value);
    }
    Ok(out)
}

/// The status reporting token: `--status-token-file`, else `VOIDRUNNER_STATUS_TOKEN`.
pub(super) fn status_token(
    file: Option<&Path>,
    env: &BTreeMap<String, String>,
) -> anyhow::Result<String> {
    const WHAT: &str = "status token";
    match file {
        Some(f) => read_secret(f, WHAT),
        None => from_env(env, STATUS_TOKEN_ENV, WHAT)
            .context("give --status-token-file FILE (- for stdin) or set VOIDRUNNER_STATUS_TOKEN"),
    }
}

/// Asks `question` on the terminal; refuses to guess when stdin is not one.
pub(super) fn confirm(question: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("{question} stdin is not a terminal: pass --yes to confirm");
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("reading the answer")?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_secret_file_loses_one_trailing_newline_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("s");
        std::fs::write(&f, "abc \n\n").expect("write");
        assert_eq!(read_secret(&f, "x").expect("read"), "abc \n");
        std::fs::write(&f, "abc\r\n").expect("write");
        assert_eq!(read_secret(&f, "x").expect("read"), "abc");
        std::fs::write(&f, "\n").expect("write");
        assert!(read_secret(&f, "x").is_err());
    }

    #[test]
    fn add_falls_back_to_the_environment_and_update_does_not() {
        let none = WebhookSecretArgs {
            webhook_secret_file: None,
            webhook_secret_env: None,
        };
        let e = env(&[(WEBHOOK_ENV, "from-env")]);
        assert_eq!(
            webhook_secret(&none, &e, true).expect("add").as_deref(),
            Some("from-env")
        );
        assert_eq!(webhook_secret(&none, &e, false).expect("update"), None);
        let err = webhook_secret(&none, &env(&[]), true).expect_err("missing");
        assert!(
            format!("{err:#}").contains("--webhook-secret-file"),
            "{err:#}"
        );
        let named = WebhookSecretArgs {
            webhook_secret_file: None,
            webhook_secret_env: Some("MY_HOOK".to_owned()),
        };
        assert_eq!(
            webhook_secret(&named, &env(&[("MY_HOOK", "v")]), false)
                .expect("named")
                .as_deref(),
            Some("v")
        );
        assert!(webhook_secret(&named, &env(&[("MY_HOOK", "")]), false).is_err());
    }

    #[test]
    fn job_secrets_come_from_the_file_then_the_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("s.env");
        std::fs::write(&f, "# comment\nA=1\nB=x=y\n").expect("write");
        let args = JobSecretArgs {
            secret_file: Some(f),
            secrets: vec!["A".to_owned(), "C".to_owned()],
        };
        let got = job_secrets(
            &args,
            &env(&[("VOIDRUNNER_SECRET_A", "env"), ("VOIDRUNNER_SECRET_C", "c")]),
        )
        .expect("secrets");
        assert_eq!(got, env(&[("A", "env"), ("B", "x=y"), ("C", "c")]));
        assert!(job_secrets(&args, &env(&[])).is_err(), "--secret C unset");
    }
}

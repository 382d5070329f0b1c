//! Pure validation rules for user input (accounts, tasks, API keys).
//!
//! Every check returns a [`ValidationError`] naming the offending field exactly as the API
//! spells it, so the HTTP layer can answer with a precise `field` without knowing the rules.
//! Sizes are counted in characters where the product speaks of "characters" (names,
//! passwords) and in UTF-8 bytes where it speaks of sizes (code, stdin, env, metadata).

use std::collections::BTreeMap;

/// Input that breaks a rule; `field` is the API field name (e.g. `env.PATH`, `tags[2]`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// Field name as the API spells it.
    pub field: String,
    /// Human-readable, safe-to-show reason.
    pub message: String,
}

impl ValidationError {
    /// Builds an error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Result alias for validation functions.
pub type Validated<T> = Result<T, ValidationError>;

/// Minimum password length in characters.
pub const PASSWORD_MIN_CHARS: usize = 8;
/// Maximum password length in characters (argon2 has no 72-byte truncation, this only bounds
/// hashing work).
pub const PASSWORD_MAX_CHARS: usize = 128;
/// Maximum email length (RFC 5321 path limit).
pub const EMAIL_MAX_CHARS: usize = 254;
/// Task name length bounds in characters.
pub const TASK_NAME_MAX_CHARS: usize = 255;
/// Task description maximum in characters.
pub const TASK_DESCRIPTION_MAX_CHARS: usize = 1000;
/// Highest task priority.
pub const PRIORITY_MAX: u8 = 10;
/// Priority used when the client sends none.
pub const PRIORITY_DEFAULT: u8 = 5;
/// API key label maximum in characters.
pub const API_KEY_NAME_MAX_CHARS: usize = 100;

/// Operator-tunable caps for task input that is not covered by [`crate::LimitBounds`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskCaps {
    /// Maximum code size in bytes.
    pub max_code_bytes: usize,
    /// Maximum stdin size in bytes.
    pub max_stdin_bytes: usize,
    /// Maximum number of environment variables.
    pub max_env_vars: usize,
    /// Maximum size of one env value in bytes.
    pub max_env_value_bytes: usize,
    /// Maximum total size of all env names and values in bytes.
    pub max_env_total_bytes: usize,
    /// Maximum number of tags.
    pub max_tags: usize,
    /// Maximum tag length in characters.
    pub max_tag_chars: usize,
    /// Maximum serialized metadata size in bytes.
    pub max_metadata_bytes: usize,
}

impl Default for TaskCaps {
    fn default() -> Self {
        Self {
            max_code_bytes: 1024 * 1024,
            max_stdin_bytes: 1024 * 1024,
            max_env_vars: 64,
            max_env_value_bytes: 4096,
            max_env_total_bytes: 32 * 1024,
            max_tags: 20,
            max_tag_chars: 50,
            max_metadata_bytes: 16 * 1024,
        }
    }
}

/// Trims and lower-cases an email and checks its shape (`local@domain.tld`, no spaces), so
/// the same mailbox can never register twice with different casing.
pub fn normalize_email(raw: &str) -> Validated<String> {
    let email = raw.trim().to_lowercase();
    let bad = || ValidationError::new("email", "must be a valid email address");
    if email.is_empty() || email.chars().count() > EMAIL_MAX_CHARS {
        return Err(bad());
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    if local.is_empty() || local.len() > 64 || domain.contains('@') {
        return Err(bad());
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 || labels.iter().any(|l| l.is_empty() || l.starts_with('-')) {
        return Err(bad());
    }
    Ok(email)
}

/// Checks the password policy: 8–128 characters (Unicode scalar values, not bytes).
pub fn check_password(password: &str) -> Validated<()> {
    let n = password.chars().count();
    if !(PASSWORD_MIN_CHARS..=PASSWORD_MAX_CHARS).contains(&n) {
        return Err(ValidationError::new(
            "password",
            format!("must be {PASSWORD_MIN_CHARS}–{PASSWORD_MAX_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Checks a required, trimmed-non-empty text of at most `max` characters.
fn check_text(field: &str, value: &str, max: usize) -> Validated<()> {
    if value.trim().is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Task name: 1–255 characters, not blank, no control characters.
pub fn check_task_name(name: &str) -> Validated<()> {
    check_text("name", name, TASK_NAME_MAX_CHARS)
}

/// Rejects U+0000: PostgreSQL cannot store it in `text` or `jsonb`, so accepting it would
/// make the same request succeed on SQLite and fail on PostgreSQL. Every stored text field
/// goes through this (directly or via a stricter check).
pub fn check_no_nul(field: &str, value: &str) -> Validated<()> {
    if value.contains('\0') {
        return Err(ValidationError::new(field, "must not contain NUL (U+0000)"));
    }
    Ok(())
}

/// Task description: at most 1000 characters, no NUL.
pub fn check_task_description(description: &str) -> Validated<()> {
    check_no_nul("description", description)?;
    if description.chars().count() > TASK_DESCRIPTION_MAX_CHARS {
        return Err(ValidationError::new(
            "description",
            format!("must be at most {TASK_DESCRIPTION_MAX_CHARS} characters"),
        ));
    }
    Ok(())
}

/// API key label: 1–100 characters.
pub fn check_api_key_name(name: &str) -> Validated<()> {
    check_text("name", name, API_KEY_NAME_MAX_CHARS)
}

/// Language must be one of the enabled registry names.
pub fn check_language(language: &str, allowed: &[String]) -> Validated<()> {
    if allowed.iter().any(|l| l == language) {
        Ok(())
    } else {
        Err(ValidationError::new(
            "language",
            format!("must be one of: {}", allowed.join(", ")),
        ))
    }
}

/// Resolves a language name or alias (`py` → `python`) to the enabled registry name that is
/// stored, so filters and workers only ever see canonical names. An alias counts only when
/// its target is enabled.
pub fn resolve_language(
    language: &str,
    allowed: &[String],
    aliases: &BTreeMap<String, String>,
) -> Validated<String> {
    if allowed.iter().any(|l| l == language) {
        return Ok(language.to_owned());
    }
    match aliases.get(language) {
        Some(target) if allowed.iter().any(|l| l == target) => Ok(target.clone()),
        _ => check_language(language, allowed).map(|()| language.to_owned()),
    }
}

/// Code: non-empty, no NUL, within the configured byte cap.
pub fn check_code(code: &str, caps: &TaskCaps) -> Validated<()> {
    if code.trim().is_empty() {
        return Err(ValidationError::new("code", "must not be empty"));
    }
    check_no_nul("code", code)?;
    check_bytes("code", code.len(), caps.max_code_bytes)
}

/// Stdin: no NUL, within the configured byte cap.
pub fn check_stdin(stdin: &str, caps: &TaskCaps) -> Validated<()> {
    check_no_nul("stdin", stdin)?;
    check_bytes("stdin", stdin.len(), caps.max_stdin_bytes)
}

fn check_bytes(field: &str, len: usize, max: usize) -> Validated<()> {
    if len > max {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max} bytes"),
        ));
    }
    Ok(())
}

/// Priority: 0–10.
pub fn check_priority(priority: u8) -> Validated<()> {
    if priority > PRIORITY_MAX {
        return Err(ValidationError::new(
            "priority",
            format!("must be between 0 and {PRIORITY_MAX}"),
        ));
    }
    Ok(())
}

/// True when `name` matches `^[A-Za-z_][A-Za-z0-9_]*$`.
pub fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Environment: valid names, no NUL in values, count and size caps.
pub fn check_env(env: &BTreeMap<String, String>, caps: &TaskCaps) -> Validated<()> {
    if env.len() > caps.max_env_vars {
        return Err(ValidationError::new(
            "env",
            format!("at most {} variables", caps.max_env_vars),
        ));
    }
    let mut total = 0usize;
    for (name, value) in env {
        if !is_env_name(name) || name.len() > 128 {
            return Err(ValidationError::new(
                format!("env.{name}"),
                "name must match ^[A-Za-z_][A-Za-z0-9_]*$ (at most 128 characters)",
            ));
        }
        if value.contains('\0') {
            return Err(ValidationError::new(
                format!("env.{name}"),
                "value must not contain NUL (U+0000)",
            ));
        }
        check_bytes(
            &format!("env.{name}"),
            value.len(),
            caps.max_env_value_bytes,
        )?;
        total += name.len() + value.len();
    }
    check_bytes("env", total, caps.max_env_total_bytes)
}

/// Shortest secret value: shorter values would mask ordinary output everywhere (the masker
/// refuses them too).
pub const SECRET_MIN_BYTES: usize = 4;
/// Longest secret value in bytes.
pub const SECRET_MAX_BYTES: usize = 4096;
/// Most secrets one task may have.
pub const SECRETS_MAX: usize = 32;

/// Secrets (set or replaced; `None` values are removals): env-shaped names, values of
/// [`SECRET_MIN_BYTES`]..=[`SECRET_MAX_BYTES`] bytes without NUL, at most [`SECRETS_MAX`]
/// entries, and no name shared with `env` (a secret is injected as an env var of that name).
/// Errors name `secrets.NAME` and never quote the value.
pub fn check_secrets<'a>(
    secrets: impl IntoIterator<Item = (&'a String, Option<&'a String>)>,
    env: &BTreeMap<String, String>,
) -> Validated<()> {
    let mut count = 0usize;
    for (name, value) in secrets {
        count += 1;
        let field = format!("secrets.{name}");
        if !is_env_name(name) || name.len() > 128 {
            return Err(ValidationError::new(
                field,
                "name must match ^[A-Za-z_][A-Za-z0-9_]*$ (at most 128 characters)",
            ));
        }
        if let Some(value) = value {
            if value.len() < SECRET_MIN_BYTES {
                return Err(ValidationError::new(
                    field,
                    format!(
                        "value must be at least {SECRET_MIN_BYTES} bytes (shorter values cannot be masked safely)"
                    ),
                ));
            }
            if value.contains('\0') {
                return Err(ValidationError::new(
                    field,
                    "value must not contain NUL (U+0000)",
                ));
            }
            check_bytes(&field, value.len(), SECRET_MAX_BYTES)?;
            if env.contains_key(name) {
                return Err(ValidationError::new(
                    field,
                    "an env variable has the same name; a secret is injected as that variable",
                ));
            }
        }
    }
    if count > SECRETS_MAX {
        return Err(ValidationError::new(
            "secrets",
            format!("at most {SECRETS_MAX} secrets"),
        ));
    }
    Ok(())
}

/// True for a tag character: ASCII letters, digits, `_ . : -`.
fn is_tag_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')
}

/// Tags: count cap, each 1–`max_tag_chars` of `[A-Za-z0-9_.:-]`. Returns the tags with
/// duplicates removed (first occurrence kept), so filters see each tag once.
pub fn check_tags(tags: &[String], caps: &TaskCaps) -> Validated<Vec<String>> {
    if tags.len() > caps.max_tags {
        return Err(ValidationError::new(
            "tags",
            format!("at most {} tags", caps.max_tags),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for (i, tag) in tags.iter().enumerate() {
        let n = tag.chars().count();
        if n == 0 || n > caps.max_tag_chars || !tag.chars().all(is_tag_char) {
            return Err(ValidationError::new(
                format!("tags[{i}]"),
                format!(
                    "must be 1–{} characters of A-Z a-z 0-9 _ . : -",
                    caps.max_tag_chars
                ),
            ));
        }
        if !out.contains(tag) {
            out.push(tag.clone());
        }
    }
    Ok(out)
}

/// Metadata: a JSON object whose serialized form fits the byte cap, with no NUL in any key
/// or string (PostgreSQL `jsonb` rejects `\u0000`).
pub fn check_metadata(metadata: &serde_json::Value, caps: &TaskCaps) -> Validated<()> {
    if !metadata.is_object() {
        return Err(ValidationError::new("metadata", "must be a JSON object"));
    }
    let size = serde_json::to_vec(metadata).map_or(usize::MAX, |v| v.len());
    check_bytes("metadata", size, caps.max_metadata_bytes)?;
    if json_has_nul(metadata) {
        return Err(ValidationError::new(
            "metadata",
            "keys and strings must not contain NUL (U+0000)",
        ));
    }
    Ok(())
}

/// True when any key or string inside `v` contains NUL. Depth is bounded by the size cap
/// checked first (and by serde_json's recursion limit).
fn json_has_nul(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(json_has_nul),
        serde_json::Value::Object(map) => {
            map.iter().any(|(k, v)| k.contains('\0') || json_has_nul(v))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(
            normalize_email("  Alice@Example.COM ").as_deref(),
            Ok("alice@example.com")
        );
        for bad in [
            "", "alice", "@x.io", "a@b", "a b@c.io", "a@@c.io", "a@.io", "a@b..io",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn password_counts_characters_not_bytes() {
        assert!(check_password("1234567").is_err());
        assert!(check_password("12345678").is_ok());
        assert!(check_password(&"é".repeat(128)).is_ok()); // 256 bytes, 128 chars
        assert!(check_password(&"é".repeat(129)).is_err());
    }

    #[test]
    fn env_names_follow_posix_shape() {
        for ok in ["A", "_", "PATH", "a_1", "_X9"] {
            assert!(is_env_name(ok), "{ok}");
        }
        for bad in ["", "1A", "A-B", "A B", "É", "A=B"] {
            assert!(!is_env_name(bad), "{bad}");
        }
        let caps = TaskCaps::default();
        let env = BTreeMap::from([("1BAD".to_owned(), "x".to_owned())]);
        assert_eq!(
            check_env(&env, &caps).expect_err("bad name").field,
            "env.1BAD"
        );
    }

    #[test]
    fn tags_are_deduplicated_and_checked() {
        let caps = TaskCaps::default();
        let tags = vec!["a".to_owned(), "b".to_owned(), "a".to_owned()];
        assert_eq!(check_tags(&tags, &caps), Ok(vec!["a".into(), "b".into()]));
        let bad = vec!["ok".to_owned(), "no spaces".to_owned()];
        assert_eq!(check_tags(&bad, &caps).expect_err("bad").field, "tags[1]");
    }

    #[test]
    fn metadata_must_be_an_object() {
        let caps = TaskCaps::default();
        assert!(check_metadata(&serde_json::json!({"a": 1}), &caps).is_ok());
        assert!(check_metadata(&serde_json::json!([1]), &caps).is_err());
        let big = serde_json::json!({ "a": "x".repeat(caps.max_metadata_bytes) });
        assert!(check_metadata(&big, &caps).is_err());
    }

    #[test]
    fn nul_is_rejected_in_every_text_field() {
        let caps = TaskCaps::default();
        assert_eq!(check_task_name("a\0b").expect_err("name").field, "name");
        assert_eq!(
            check_task_description("a\0")
                .expect_err("description")
                .field,
            "description"
        );
        assert_eq!(check_code("x\0", &caps).expect_err("code").field, "code");
        assert_eq!(check_stdin("\0", &caps).expect_err("stdin").field, "stdin");
        let env = BTreeMap::from([("A".to_owned(), "\0".to_owned())]);
        assert_eq!(check_env(&env, &caps).expect_err("env").field, "env.A");
        let env = BTreeMap::from([("A\0".to_owned(), "v".to_owned())]);
        assert_eq!(
            check_env(&env, &caps).expect_err("env name").field,
            "env.A\0"
        );
        let tags = vec!["a\0".to_owned()];
        assert_eq!(check_tags(&tags, &caps).expect_err("tag").field, "tags[0]");
        for m in [
            serde_json::json!({"a\0": 1}),
            serde_json::json!({"a": {"b": ["x", "y\0"]}}),
        ] {
            assert_eq!(
                check_metadata(&m, &caps).expect_err("meta").field,
                "metadata"
            );
        }
        let allowed = vec!["python".to_owned()];
        let aliases = BTreeMap::new();
        assert!(resolve_language("python\0", &allowed, &aliases).is_err());
        assert!(check_code("ok", &caps).is_ok() && check_stdin("", &caps).is_ok());
    }

    #[test]
    fn aliases_resolve_to_enabled_names() {
        let allowed = vec!["python".to_owned(), "bash".to_owned()];
        let aliases = BTreeMap::from([
            ("py".to_owned(), "python".to_owned()),
            ("js".to_owned(), "javascript".to_owned()),
        ]);
        assert_eq!(
            resolve_language("python", &allowed, &aliases).as_deref(),
            Ok("python")
        );
        assert_eq!(
            resolve_language("py", &allowed, &aliases).as_deref(),
            Ok("python")
        );
        let err = resolve_language("js", &allowed, &aliases).expect_err("target disabled");
        assert_eq!(err.field, "language");
        assert!(resolve_language("cobol", &allowed, &aliases).is_err());
    }

    #[test]
    fn names_and_priority() {
        assert!(check_task_name("").is_err());
        assert!(check_task_name("   ").is_err());
        assert!(check_task_name(&"n".repeat(255)).is_ok());
        assert!(check_task_name(&"n".repeat(256)).is_err());
        assert!(check_task_description(&"d".repeat(1001)).is_err());
        assert!(check_priority(10).is_ok());
        assert!(check_priority(11).is_err());
    }

    #[test]
    fn secrets_need_four_bytes_a_name_and_no_env_clash() {
        let env: BTreeMap<String, String> = [("PATHX".to_owned(), "v".to_owned())].into();
        let ok = ("TOKEN".to_owned(), "abcd".to_owned());
        assert!(check_secrets([(&ok.0, Some(&ok.1))], &env).is_ok());
        let short = ("TOKEN".to_owned(), "abc".to_owned());
        let e = check_secrets([(&short.0, Some(&short.1))], &env).expect_err("short");
        assert_eq!(e.field, "secrets.TOKEN");
        assert!(!e.message.contains("abc"), "the value is never quoted");
        let bad = ("1X".to_owned(), "abcdef".to_owned());
        assert_eq!(
            check_secrets([(&bad.0, Some(&bad.1))], &env)
                .expect_err("name")
                .field,
            "secrets.1X"
        );
        let clash = ("PATHX".to_owned(), "abcdef".to_owned());
        assert_eq!(
            check_secrets([(&clash.0, Some(&clash.1))], &env)
                .expect_err("clash")
                .field,
            "secrets.PATHX"
        );
        let removal = "PATHX".to_owned();
        assert!(
            check_secrets([(&removal, None)], &env).is_ok(),
            "removal of any name is fine"
        );
        let nul = ("K".to_owned(), "ab\0cd".to_owned());
        assert!(check_secrets([(&nul.0, Some(&nul.1))], &env).is_err());
        let many: Vec<(String, String)> = (0..=SECRETS_MAX)
            .map(|i| (format!("S{i}"), "abcd".to_owned()))
            .collect();
        let e = check_secrets(many.iter().map(|(k, v)| (k, Some(v))), &env).expect_err("count");
        assert_eq!(e.field, "secrets");
    }
}

//! Write-only task secrets: validated, sealed here with the key the workers open them with
//! (bound to `"<task_id>/<NAME>"`, so a sealed value copied elsewhere does not open), stored
//! as ciphertext only. Values never reach a response, a log line or an error message.

use std::collections::{BTreeMap, BTreeSet};

use voidrunner_api_types::SecretValue;
use voidrunner_domain::TaskId;
use voidrunner_domain::validation::{SECRETS_MAX, ValidationError, check_secrets};

use crate::context::ApiContext;
use crate::error::{ApiError, ApiResult};

/// A validated change of a task's secrets, sealed and ready for the store.
#[derive(Default)]
pub(crate) struct SealedChange {
    /// Added or replaced (name → sealed value).
    pub set: BTreeMap<String, Vec<u8>>,
    /// Removed names.
    pub remove: Vec<String>,
}

impl SealedChange {
    /// True when there is nothing to store.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }
}

/// Validates and seals `change` for task `id` whose environment will be `env` and whose
/// current secret names are `existing`. `None` values are removals.
pub(crate) fn seal(
    ctx: &ApiContext,
    id: TaskId,
    change: &BTreeMap<String, Option<SecretValue>>,
    env: &BTreeMap<String, String>,
    existing: &[String],
) -> ApiResult<SealedChange> {
    check_secrets(
        change.iter().map(|(k, v)| (k, v.as_ref().map(|v| &v.0))),
        env,
    )?;
    let mut names: BTreeSet<&str> = existing.iter().map(String::as_str).collect();
    for (name, value) in change {
        if value.is_some() {
            names.insert(name);
        } else {
            names.remove(name.as_str());
        }
    }
    if names.len() > SECRETS_MAX {
        return Err(
            ValidationError::new("secrets", format!("at most {SECRETS_MAX} secrets")).into(),
        );
    }
    let values = change
        .iter()
        .filter_map(|(name, value)| value.as_ref().map(|v| (name, v)));
    Ok(SealedChange {
        set: seal_values(ctx, "task", &id, values)?,
        remove: change
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(name, _)| name.clone())
            .collect(),
    })
}

/// Seals each value bound to `"<owner_id>/<NAME>"` with the key the workers open them with
/// (`kind`, "task" or "job", only names the owner in log lines). Nothing to seal needs no key.
pub(crate) fn seal_values<'a>(
    ctx: &ApiContext,
    kind: &str,
    owner_id: &dyn std::fmt::Display,
    values: impl IntoIterator<Item = (&'a String, &'a SecretValue)>,
) -> ApiResult<BTreeMap<String, Vec<u8>>> {
    let mut sealed = BTreeMap::new();
    for (name, value) in values {
        let Some(secret_box) = ctx.secret_box() else {
            return Err(ApiError::unavailable(format!(
                "{kind} secrets sent but this API node has no secrets key"
            )));
        };
        let context = format!("{owner_id}/{name}");
        let bytes = secret_box
            .seal_with_context(value.0.as_bytes(), context.as_bytes())
            .map_err(|e| ApiError::internal(format!("sealing {kind} secret {name}: {e}")))?;
        sealed.insert(name.clone(), bytes);
    }
    Ok(sealed)
}

/// An env change must not shadow a secret that stays (a secret is injected as the variable
/// of its name, so one of them would silently lose).
pub(crate) fn check_env_against(
    env: &BTreeMap<String, String>,
    secret_names: &[String],
    change: Option<&BTreeMap<String, Option<SecretValue>>>,
) -> ApiResult<()> {
    for name in secret_names {
        let removed = change.is_some_and(|c| matches!(c.get(name), Some(None)));
        if env.contains_key(name) && !removed {
            return Err(ValidationError::new(
                format!("env.{name}"),
                "a secret has the same name; a secret is injected as that variable",
            )
            .into());
        }
    }
    Ok(())
}

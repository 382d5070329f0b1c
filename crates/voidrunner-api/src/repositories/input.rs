//! Checks of a repository registration and of secret changes, and the sealing of what is
//! written: the webhook secret bound to `"<repository_id>/webhook"`, job secrets to
//! `"<repository_id>/<NAME>"`, the status token to `"<repository_id>/status-token"` (kept
//! base64 in the opaque `status_reporting` JSON). Values never reach a message or a log.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use voidrunner_api_types::{
    CreateRepositoryRequest, RepositoryResponse, SecretValue, StatusReportingRequest,
};
use voidrunner_domain::validation::{SECRETS_MAX, check_secrets};
use voidrunner_store::{Repository, RepositoryId};

use crate::context::ApiContext;
use crate::error::{ApiError, ApiResult};
use crate::tasks::secrets::seal_values;

/// The default CI directory.
pub(crate) const DEFAULT_CI_DIR: &str = ".voidrunner";
/// Webhook secrets are 16–256 bytes.
const WEBHOOK_SECRET_BYTES: std::ops::RangeInclusive<usize> = 16..=256;

/// The providers events come from.
pub(crate) const PROVIDERS: [&str; 2] = ["github", "gitlab"];

/// A repository as the API shows it.
pub(crate) fn response(r: Repository) -> RepositoryResponse {
    RepositoryResponse {
        id: r.id.0,
        hook_path: format!("/api/v1/hooks/{}", r.provider),
        status_api_url: r
            .status_reporting
            .get("api_url")
            .and_then(|v| v.as_str())
            .map(str::to_owned),
        provider: r.provider,
        full_name: r.full_name,
        clone_url: r.clone_url,
        ci_dir: r.ci_dir,
        fork_secrets: r.fork_secrets,
        secret_names: r.secret_names,
        created_at: r.created_at,
    }
}

pub(crate) fn check_provider(p: &str) -> ApiResult<()> {
    if PROVIDERS.contains(&p) {
        Ok(())
    } else {
        Err(ApiError::validation("provider", "must be github or gitlab"))
    }
}

/// `owner/name` (GitLab: `group/sub/name`): 3–255 characters of `[A-Za-z0-9._-]` in
/// `/`-separated non-empty parts, at least two.
pub(crate) fn check_full_name(n: &str) -> ApiResult<()> {
    let parts: Vec<&str> = n.split('/').collect();
    let ok = (3..=255).contains(&n.len())
        && parts.len() >= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && *p != "."
                && *p != ".."
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
    if ok {
        Ok(())
    } else {
        Err(ApiError::validation(
            "full_name",
            "must be owner/name: parts of [A-Za-z0-9._-] separated by /",
        ))
    }
}

/// A relative directory inside the repository: no `..`, no leading `/`, printable.
pub(crate) fn check_ci_dir(d: &str) -> ApiResult<()> {
    let ok = (1..=255).contains(&d.len())
        && d.split('/').all(|p| !p.is_empty() && p != "." && p != "..")
        && d.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
    if ok {
        Ok(())
    } else {
        Err(ApiError::validation(
            "ci_dir",
            "must be a relative directory of the repository (no '..', no leading '/')",
        ))
    }
}

fn check_webhook_secret(v: &SecretValue, field: &str) -> ApiResult<()> {
    if WEBHOOK_SECRET_BYTES.contains(&v.0.len()) && !v.0.contains('\0') {
        Ok(())
    } else {
        Err(ApiError::validation(field, "must be 16–256 bytes, no NUL"))
    }
}

/// Seals the webhook secret of repository `id`.
pub(crate) fn seal_webhook_secret(
    ctx: &ApiContext,
    id: RepositoryId,
    v: &SecretValue,
    field: &str,
) -> ApiResult<Vec<u8>> {
    check_webhook_secret(v, field)?;
    let name = "webhook".to_owned();
    let mut sealed = seal_values(ctx, "repository", &id, [(&name, v)])?;
    sealed
        .remove("webhook")
        .ok_or_else(|| ApiError::internal("sealing the webhook secret gave nothing"))
}

fn status_reporting(
    ctx: &ApiContext,
    id: RepositoryId,
    s: Option<&StatusReportingRequest>,
) -> ApiResult<serde_json::Value> {
    let Some(s) = s else {
        return Ok(serde_json::Value::Null);
    };
    let url = s.api_url.trim_end_matches('/');
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() <= 2048
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if !ok {
        return Err(ApiError::validation(
            "status_reporting.api_url",
            "must be an http(s) URL",
        ));
    }
    if s.token.0.is_empty() || s.token.0.len() > 4096 {
        return Err(ApiError::validation(
            "status_reporting.token",
            "must be 1–4096 bytes",
        ));
    }
    let name = "status-token".to_owned();
    let sealed = seal_values(ctx, "repository", &id, [(&name, &s.token)])?;
    let token = sealed
        .get("status-token")
        .map(|b| base64::engine::general_purpose::STANDARD.encode(b))
        .unwrap_or_default();
    Ok(serde_json::json!({"api_url": url, "token_sealed": token}))
}

/// A validated registration: what the store takes.
pub(crate) struct Registration {
    pub new: voidrunner_store::NewRepository,
    pub sealed_webhook_secret: Vec<u8>,
    pub sealed_secrets: BTreeMap<String, Vec<u8>>,
}

/// Validates and seals a registration by `owner`.
pub(crate) fn registration(
    ctx: &ApiContext,
    owner: voidrunner_domain::UserId,
    req: &CreateRepositoryRequest,
) -> ApiResult<Registration> {
    check_provider(&req.provider)?;
    check_full_name(&req.full_name)?;
    if req.clone_url.len() > 2048 {
        return Err(ApiError::validation("clone_url", "at most 2048 bytes"));
    }
    voidrunner_jobs::source::check_git_url(&req.clone_url, &ctx.settings().hooks.git_protocols)
        .map_err(|e| ApiError::validation("clone_url", e.to_string()))?;
    let ci_dir = req.ci_dir.as_deref().unwrap_or(DEFAULT_CI_DIR);
    check_ci_dir(ci_dir)?;
    let secrets = req.secrets.clone().unwrap_or_default();
    check_secrets(
        secrets.iter().map(|(k, v)| (k, Some(&v.0))),
        &BTreeMap::new(),
    )?;
    let id = RepositoryId::new();
    let sealed_webhook_secret =
        seal_webhook_secret(ctx, id, &req.webhook_secret, "webhook_secret")?;
    let sealed_secrets = seal_values(ctx, "repository", &id, &secrets)?;
    let status_reporting = status_reporting(ctx, id, req.status_reporting.as_ref())?;
    Ok(Registration {
        new: voidrunner_store::NewRepository {
            id,
            owner_id: owner,
            provider: req.provider.clone(),
            full_name: req.full_name.clone(),
            clone_url: req.clone_url.clone(),
            ci_dir: ci_dir.to_owned(),
            fork_secrets: req.fork_secrets.unwrap_or(false),
            status_reporting,
            created_at: voidrunner_store::now(),
        },
        sealed_webhook_secret,
        sealed_secrets,
    })
}

/// Validates and seals a change of job secrets (`None` removes) of a repository whose
/// current secret names are `existing`.
pub(crate) fn secrets_change(
    ctx: &ApiContext,
    id: RepositoryId,
    change: &BTreeMap<String, Option<SecretValue>>,
    existing: &[String],
) -> ApiResult<BTreeMap<String, Option<Vec<u8>>>> {
    check_secrets(
        change.iter().map(|(k, v)| (k, v.as_ref().map(|v| &v.0))),
        &BTreeMap::new(),
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
        return Err(ApiError::validation(
            "secrets",
            format!("at most {SECRETS_MAX} secrets"),
        ));
    }
    let set = seal_values(
        ctx,
        "repository",
        &id,
        change
            .iter()
            .filter_map(|(name, value)| value.as_ref().map(|v| (name, v))),
    )?;
    Ok(change
        .iter()
        .map(|(name, value)| (name.clone(), value.as_ref().and(set.get(name).cloned())))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_directories() {
        for ok in ["o/r", "group/sub/repo", "my-org/my.repo_1"] {
            assert!(check_full_name(ok).is_ok(), "{ok}");
        }
        for bad in ["r", "/r", "o/", "o//r", "o/../r", "o/r r", "o/r;x"] {
            assert!(check_full_name(bad).is_err(), "{bad}");
        }
        for ok in [".voidrunner", "ci/config", ".github/vr"] {
            assert!(check_ci_dir(ok).is_ok(), "{ok}");
        }
        for bad in ["", "/abs", "a/../b", "..", "a//b", "a b", "a\\b", "./x"] {
            assert!(check_ci_dir(bad).is_err(), "{bad}");
        }
        assert!(check_provider("github").is_ok());
        assert_eq!(
            check_provider("bitbucket").expect_err("bad").field(),
            Some("provider")
        );
    }
}

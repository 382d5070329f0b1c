//! Optional commit-status reporting (`status_reporting` of a repository): each workflow an
//! event starts is reported `pending` on the event's code commit, then `success` /
//! `failure` / `error` when it finishes. GitHub: `POST {api_url}/repos/{full_name}/statuses/
//! {sha}` with `Authorization: Bearer`; GitLab: `POST {api_url}/projects/{id}/statuses/{sha}`
//! with `PRIVATE-TOKEN`. This module is how one status is posted ([`Reporter`]); what to post
//! and when is the durable reconciler's (`reconcile.rs`), whose truth is the stored workflow.
//! The status API URL is a user's, so every post gets the webhook dispatcher's SSRF guard:
//! the host is resolved each time, loopback/private/link-local/metadata addresses are
//! refused (unless `[hooks] status_allow_private`), the connection is pinned to the checked
//! address, and redirects are not followed.

use std::time::Duration;

use base64::Engine as _;
use serde_json::json;
use voidrunner_store::{Repository, WorkflowState};

use crate::context::ApiContext;

/// Where and how to post statuses for one commit.
pub(crate) struct Reporter {
    allow_private: bool,
    url: String,
    gitlab: bool,
    token: String,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Whether events of `repo` get commit statuses (its `status_reporting` names an API URL).
pub(crate) fn reports(repo: &Repository) -> bool {
    repo.status_reporting
        .get("api_url")
        .and_then(serde_json::Value::as_str)
        .is_some()
}

/// The context (GitHub) or name (GitLab) a workflow's status is posted under.
pub(crate) fn context_of(workflow_name: &str) -> String {
    format!("voidrunner/{workflow_name}")
}

/// The reporter of `repo` for commit `sha`, when reporting is configured and its token opens.
pub(crate) fn reporter(ctx: &ApiContext, repo: &Repository, sha: &str) -> Option<Reporter> {
    let cfg = &repo.status_reporting;
    let api_url = cfg.get("api_url")?.as_str()?.trim_end_matches('/');
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(cfg.get("token_sealed")?.as_str()?)
        .ok()?;
    let token = ctx
        .secret_box()?
        .open_with_context(&sealed, format!("{}/status-token", repo.id).as_bytes())
        .ok()?;
    let token = String::from_utf8(token.to_vec()).ok()?;
    let gitlab = repo.provider == "gitlab";
    let url = if gitlab {
        let project = repo.full_name.replace('/', "%2F");
        format!("{api_url}/projects/{project}/statuses/{sha}")
    } else {
        format!("{api_url}/repos/{}/statuses/{sha}", repo.full_name)
    };
    Some(Reporter {
        allow_private: ctx.settings().hooks.status_allow_private,
        url,
        gitlab,
        token,
    })
}

/// The host's state name for a workflow status.
fn state(status: WorkflowState, gitlab: bool) -> &'static str {
    match (status, gitlab) {
        (WorkflowState::Running, _) => "pending",
        (WorkflowState::Succeeded | WorkflowState::Skipped, _) => "success",
        (WorkflowState::Failed, false) => "failure",
        (WorkflowState::Failed, true) => "failed",
        (WorkflowState::Cancelled, false) => "error",
        (WorkflowState::Cancelled, true) => "canceled",
    }
}

/// Why a post failed, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PostError {
    /// For operators (never contains the token).
    pub(crate) message: String,
    /// The host (or the guard) refused it for good: a 4xx other than 429, a refused or
    /// malformed address. Not retried.
    pub(crate) permanent: bool,
}

impl PostError {
    fn transient(message: String) -> Self {
        Self {
            message,
            permanent: false,
        }
    }
    fn permanent(message: String) -> Self {
        Self {
            message,
            permanent: true,
        }
    }
}

/// Whether an HTTP answer means "do not try this again".
fn refused_for_good(status: reqwest::StatusCode) -> bool {
    status.is_client_error() && status != reqwest::StatusCode::TOO_MANY_REQUESTS
}

impl Reporter {
    /// Posts `status` under `context` (e.g. `voidrunner/ci`) once, through the SSRF guard.
    pub(crate) async fn post(&self, context: &str, status: WorkflowState) -> Result<(), PostError> {
        let state = state(status, self.gitlab);
        let description = format!("workflow {}", status.as_str());
        let target = voidrunner_webhooks::guard::resolve(&self.url, self.allow_private)
            .await
            .map_err(|refusal| match refusal {
                voidrunner_webhooks::guard::Refusal::Unresolved { .. } => {
                    PostError::transient(refusal.to_string())
                }
                other => PostError::permanent(other.to_string()),
            })?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .resolve(&target.host, target.addr)
            .build()
            .map_err(|e| PostError::transient(format!("HTTP client: {e}")))?;
        let req = if self.gitlab {
            http.post(&self.url)
                .header("PRIVATE-TOKEN", &self.token)
                .json(&json!({"state": state, "name": context, "description": description}))
        } else {
            http.post(&self.url)
                .bearer_auth(&self.token)
                .header("Accept", "application/vnd.github+json")
                .header("User-Agent", "voidrunner")
                .json(&json!({"state": state, "context": context, "description": description}))
        };
        match req.send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) if refused_for_good(r.status()) => Err(PostError::permanent(format!(
                "the host refused it: HTTP {}",
                r.status()
            ))),
            Ok(r) => Err(PostError::transient(format!("HTTP {}", r.status()))),
            Err(e) => Err(PostError::transient(format!("{e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_per_host() {
        assert_eq!(state(WorkflowState::Running, false), "pending");
        assert_eq!(state(WorkflowState::Skipped, false), "success");
        assert_eq!(state(WorkflowState::Failed, false), "failure");
        assert_eq!(state(WorkflowState::Failed, true), "failed");
        assert_eq!(state(WorkflowState::Cancelled, true), "canceled");
    }

    #[test]
    fn only_client_errors_but_429_are_final() {
        use reqwest::StatusCode as S;
        assert!(refused_for_good(S::UNPROCESSABLE_ENTITY));
        assert!(refused_for_good(S::UNAUTHORIZED));
        assert!(!refused_for_good(S::TOO_MANY_REQUESTS));
        assert!(!refused_for_good(S::BAD_GATEWAY));
    }
}

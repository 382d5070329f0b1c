//! Optional commit-status reporting (`status_reporting` of a repository): each workflow an
//! event starts is reported `pending` on the event's code commit, then `success` /
//! `failure` / `error` when it finishes. GitHub: `POST {api_url}/repos/{full_name}/statuses/
//! {sha}` with `Authorization: Bearer`; GitLab: `POST {api_url}/projects/{id}/statuses/{sha}`
//! with `PRIVATE-TOKEN`. Best effort: a follower task per event polls the workflows (not
//! durable across a restart of this node); failures are logged, never retried forever.
//! The status API URL is a user's, so every post gets the webhook dispatcher's SSRF guard:
//! the host is resolved each time, loopback/private/link-local/metadata addresses are
//! refused (unless `[hooks] status_allow_private`), the connection is pinned to the checked
//! address, and redirects are not followed.

use std::time::Duration;

use base64::Engine as _;
use serde_json::json;
use voidrunner_store::{Repository, Scope, WorkflowId, WorkflowState};

use crate::context::ApiContext;

/// How long a follower waits for a workflow at most.
const FOLLOW_FOR: Duration = Duration::from_secs(24 * 3600);
/// Longest pause between two polls.
const POLL_MAX: Duration = Duration::from_secs(30);

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

impl Reporter {
    async fn post(&self, name: &str, status: WorkflowState) {
        let context = format!("voidrunner/{name}");
        let state = state(status, self.gitlab);
        let description = format!("workflow {}", status.as_str());
        let target = match voidrunner_webhooks::guard::resolve(&self.url, self.allow_private).await
        {
            Ok(t) => t,
            Err(refusal) => {
                tracing::warn!("commit status {state} for {context} not sent: {refusal}");
                return;
            }
        };
        let http = match reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .resolve(&target.host, target.addr)
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("commit status {state} for {context}: {e}");
                return;
            }
        };
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
            Ok(r) if r.status().is_success() => {}
            Ok(r) => {
                tracing::warn!(status = %r.status(), "commit status {state} for {context} refused")
            }
            Err(e) => tracing::warn!("commit status {state} for {context}: {e}"),
        }
    }
}

/// Reports `pending` for every workflow, then follows each to its end and reports that.
pub(crate) fn follow(ctx: ApiContext, reporter: Reporter, workflows: Vec<(WorkflowId, String)>) {
    tokio::spawn(async move {
        for (_, name) in &workflows {
            reporter.post(name, WorkflowState::Running).await;
        }
        let started = tokio::time::Instant::now();
        let mut pending = workflows;
        let mut pause = Duration::from_millis(250);
        while !pending.is_empty() && started.elapsed() < FOLLOW_FOR {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(POLL_MAX);
            let mut still = Vec::new();
            for (id, name) in pending {
                match ctx.store().get_workflow(Scope::All, id).await {
                    Ok(w) if w.status.is_terminal() => reporter.post(&name, w.status).await,
                    Ok(_) => still.push((id, name)),
                    Err(e) => {
                        tracing::warn!(workflow.id = %id, "status reporting: {e}");
                        still.push((id, name));
                    }
                }
            }
            pending = still;
        }
    });
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
}

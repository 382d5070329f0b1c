//! From a verified event to started workflows: git is read (on a blocking thread, a few
//! events at a time), the workflows whose `on:` filter matches are built through the same
//! `prepare_workflow` as `POST /api/v1/workflows`, each node's job gets the event's sources
//! (`source`: the code commit; `ci_source`: the trusted commit — whatever the file says) and
//! environment, then the delivery and its workflows (and, with `status_reporting`, their
//! commit statuses to report) are recorded at most once and the scheduler is asked to start
//! them.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::Json;
use axum::http::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use voidrunner_api_types::{HookResponse, SecretValue};
use voidrunner_jobs::workflow::{EventFacts, instantiate};
use voidrunner_store::{
    DeliveryOutcome, DeliveryWorkflow, NewCommitStatus, NewDelivery, Repository, Scope,
};

use super::event::EventInfo;
use super::inspect::{Inspection, inspect};
use crate::context::ApiContext;
use crate::error::{ApiError, ApiResult};
use crate::workflows::create::{WorkflowInput, prepare_workflow};

/// Git reads at once on this node (`[hooks] concurrency`, fixed by the first event).
fn git_slots(n: usize) -> &'static Semaphore {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| Semaphore::new(n.max(1)))
}

/// The environment every job of the event's workflows gets.
fn event_env(
    repo: &Repository,
    delivery_id: &str,
    ev: &EventInfo,
    i: &Inspection,
    trusted: bool,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let mut put = |k: &str, v: &str| {
        env.insert(format!("VOIDRUNNER_{k}"), v.to_owned());
    };
    put("EVENT", ev.event.as_str());
    put("REPOSITORY", &repo.full_name);
    put("DELIVERY_ID", delivery_id);
    put("REF", &ev.git_ref);
    put("SHA", &i.code_sha);
    put("CI_SHA", &i.ci_sha);
    put("TRUSTED", if trusted { "true" } else { "false" });
    if let Some(b) = &ev.branch {
        put("BRANCH", b);
    }
    if let Some(t) = &ev.tag {
        put("TAG", t);
    }
    if let Some(b) = &ev.before {
        put("BEFORE_SHA", b);
    }
    if let Some(pr) = &ev.pr {
        put("PR_NUMBER", &pr.number.to_string());
        put("PR_HEAD_BRANCH", &pr.head_ref);
        put("PR_BASE_BRANCH", &pr.base_ref);
        put("BASE_SHA", &i.ci_sha);
        put("PR_FORK", if pr.fork { "true" } else { "false" });
    }
    env
}

/// The repository's secrets, opened (only for trusted events).
async fn open_secrets(
    ctx: &ApiContext,
    repo: &Repository,
) -> ApiResult<BTreeMap<String, SecretValue>> {
    let sealed = ctx.store().repository_secrets(repo.id).await?;
    if sealed.is_empty() {
        return Ok(BTreeMap::new());
    }
    let Some(secret_box) = ctx.secret_box() else {
        return Err(ApiError::unavailable(
            "repository secrets but no secrets key on this node",
        ));
    };
    let mut out = BTreeMap::new();
    for (name, bytes) in sealed {
        let plain = secret_box
            .open_with_context(&bytes, format!("{}/{name}", repo.id).as_bytes())
            .map_err(|e| ApiError::internal(format!("opening repository secret {name}: {e}")))?;
        let text = String::from_utf8(plain.to_vec())
            .map_err(|_| ApiError::internal(format!("repository secret {name} is not UTF-8")))?;
        out.insert(name, SecretValue(text));
    }
    Ok(out)
}

/// Every node's job runs the event's commits, whatever its file says.
fn pin_sources(dw: &mut DeliveryWorkflow, url: &str, code_sha: &str, ci_sha: &str) {
    for node in &mut dw.nodes {
        if let Some(obj) = node.definition.as_object_mut() {
            obj.insert(
                "source".into(),
                json!({"type": "git", "url": url, "ref": code_sha}),
            );
            obj.insert(
                "ci_source".into(),
                json!({"type": "git", "url": url, "ref": ci_sha}),
            );
        }
    }
}

/// Handles a verified, normalized event of `repo` (see the module docs).
pub(crate) async fn start(
    ctx: &ApiContext,
    repo: Repository,
    delivery_id: String,
    body_sha256: String,
    ev: EventInfo,
    request_id: Option<String>,
) -> ApiResult<(StatusCode, Json<HookResponse>)> {
    // A redelivery of a recent delivery is answered without reading git again (the
    // atomic record below is what guarantees at most once; this only saves the work).
    if let Some(first) = ctx
        .store()
        .list_deliveries(Scope::All, repo.id, 100)
        .await?
        .into_iter()
        .find(|d| d.delivery_id == delivery_id)
    {
        return Ok((
            StatusCode::OK,
            Json(HookResponse {
                delivery_id: delivery_id.clone(),
                event: Some(first.event),
                duplicate: true,
                workflow_ids: first.workflow_ids.into_iter().map(|w| w.0).collect(),
                summary: json!({"duplicate_of": delivery_id}),
            }),
        ));
    }
    let settings = ctx.settings().hooks.clone();
    let insp = {
        let _slot = git_slots(settings.concurrency)
            .acquire()
            .await
            .map_err(|e| ApiError::internal(format!("hook slots: {e}")))?;
        let (provider, url, ci_dir, ev) = (
            repo.provider.clone(),
            repo.clone_url.clone(),
            repo.ci_dir.clone(),
            ev.clone(),
        );
        tokio::task::spawn_blocking(move || inspect(&provider, &url, &ci_dir, &ev, &settings))
            .await
            .map_err(|e| ApiError::internal(format!("hook git task: {e}")))?
            .map_err(|why| ApiError::validation("payload", why))?
    };
    let fork = ev.pr.as_ref().is_some_and(|p| p.fork);
    let trusted = !fork || repo.fork_secrets;
    let env = event_env(&repo, &delivery_id, &ev, &insp, trusted);
    let secrets = if trusted {
        open_secrets(ctx, &repo).await?
    } else {
        BTreeMap::new()
    };
    let facts = EventFacts {
        event: ev.event,
        branch: ev.branch.as_deref(),
        changed_files: insp.changed.as_deref(),
    };
    let origin = json!({
        "kind": "hook", "repository_id": repo.id.to_string(), "provider": repo.provider,
        "full_name": repo.full_name, "delivery_id": delivery_id, "event": ev.event.as_str(),
        "ref": ev.git_ref, "branch": ev.branch, "sha": insp.code_sha, "ci_sha": insp.ci_sha,
        "pr_number": ev.pr.as_ref().map(|p| p.number), "fork": fork,
    });
    let now = voidrunner_store::now();
    let (mut matched, mut skipped, mut invalid, mut workflows) = (vec![], vec![], vec![], vec![]);
    for wf in &insp.workflows {
        let def = match &wf.definition {
            Ok(def) => def,
            Err(problems) => {
                invalid.push(json!({"file": wf.path, "problems": problems}));
                continue;
            }
        };
        let Some(on) = &def.on else {
            skipped.push(json!({"file": wf.path, "name": def.name, "reason": "no on: filter"}));
            continue;
        };
        if let Err(reason) = on.check(&facts) {
            skipped.push(json!({"file": wf.path, "name": def.name, "reason": reason}));
            continue;
        }
        if let Err(p) = instantiate(def, &insp.files, &env) {
            let problems: Vec<String> =
                p.0.into_iter()
                    .map(|p| format!("{}: {}", p.path, p.message))
                    .collect();
            invalid.push(json!({"file": wf.path, "problems": problems}));
            continue;
        }
        let input = WorkflowInput {
            definition: def.clone(),
            files: insp.files.clone(),
            env: env.clone(),
            vars: BTreeMap::new(),
            secrets: secrets.clone(),
            trusted,
            origin: origin.clone(),
            owner: repo.owner_id,
            request_id: request_id.clone(),
        };
        match prepare_workflow(ctx, input, now) {
            Ok(mut dw) => {
                pin_sources(&mut dw, &repo.clone_url, &insp.code_sha, &insp.ci_sha);
                matched.push(json!({"file": wf.path, "name": def.name, "workflow_id": dw.workflow.id.to_string()}));
                workflows.push(dw);
            }
            Err(e) => invalid.push(json!({"file": wf.path, "problems": [format!(
                "refused ({}): {}", e.status(), e.field().unwrap_or("definition"))]})),
        }
    }
    let summary = json!({
        "ref": ev.git_ref, "sha": insp.code_sha, "ci_sha": insp.ci_sha, "branch": ev.branch,
        "tag": ev.tag, "pr_number": ev.pr.as_ref().map(|p| p.number), "fork": fork,
        "trusted": trusted, "changed_files": insp.changed.as_ref().map(Vec::len),
        "matched": matched, "skipped": skipped, "invalid": invalid, "notes": insp.notes,
    });
    let delivery = NewDelivery {
        provider: repo.provider.clone(),
        delivery_id: delivery_id.clone(),
        body_sha256,
        repository_id: repo.id,
        event: ev.event.as_str().to_owned(),
        summary: summary.clone(),
        received_at: now,
    };
    // Commit statuses are recorded with the delivery (one transaction): the reconciler
    // posts them from the stored workflow state, on whichever node, even after a restart.
    let statuses = if super::status::reports(&repo) {
        workflows
            .iter()
            .map(|w| NewCommitStatus {
                workflow_id: w.workflow.id,
                repository_id: repo.id,
                sha: insp.code_sha.clone(),
                context: super::status::context_of(&w.workflow.name),
            })
            .collect()
    } else {
        Vec::new()
    };
    let reported = !statuses.is_empty();
    let recorded = ctx
        .store()
        .record_delivery_with_statuses(delivery, workflows, statuses)
        .await?;
    let (status, duplicate, ids) = match recorded {
        DeliveryOutcome::Created(ids) => (StatusCode::ACCEPTED, false, ids),
        DeliveryOutcome::Duplicate(ids) => (StatusCode::OK, true, ids),
    };
    if !duplicate {
        tracing::info!(repository.id = %repo.id, delivery = %delivery_id, "event {} started {} workflow(s)", ev.event.as_str(), ids.len());
        for id in &ids {
            if let Err(e) = voidrunner_jobs::scheduler::advance(ctx.store(), *id).await {
                // The scheduler's sweep starts it anyway.
                tracing::warn!(workflow.id = %id, "first decision pass failed: {e}");
            }
        }
        if reported {
            ctx.status_wake().notify_one();
        }
    }
    let summary: Value = if duplicate {
        json!({"duplicate_of": delivery_id})
    } else {
        summary
    };
    Ok((
        status,
        Json(HookResponse {
            delivery_id,
            event: Some(ev.event.as_str().to_owned()),
            duplicate,
            workflow_ids: ids.into_iter().map(|w| w.0).collect(),
            summary,
        }),
    ))
}

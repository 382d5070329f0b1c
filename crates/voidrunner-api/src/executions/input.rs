//! Turns enqueue requests into validated [`NewExecution`]s, naming the first offending field.
//! The same domain rules as task creation apply (sizes, NUL, env names, limits, priority).

use voidrunner_api_types::{ExecuteTaskRequest, RunRequest};
use voidrunner_domain::validation::{
    PRIORITY_DEFAULT, check_code, check_env, check_priority, check_stdin, resolve_language,
};
use voidrunner_domain::{ExecutionId, LimitBounds, PartialLimits, Task, Timestamp, UserId};
use voidrunner_store::NewExecution;

use crate::error::ApiResult;
use crate::settings::ApiSettings;

/// A run of `task` with the request's overrides: stdin replaces the task's, missing limit
/// fields take the task's limits (each within the configured maxima), priority 0–10.
pub(crate) fn for_task(
    s: &ApiSettings,
    task: Task,
    req: ExecuteTaskRequest,
    request_id: Option<String>,
    now: Timestamp,
) -> ApiResult<NewExecution> {
    if let Some(stdin) = &req.stdin {
        check_stdin(stdin, &s.task_caps())?;
    }
    let limits = match req.limits {
        None => task.limits,
        Some(l) => LimitBounds {
            defaults: task.limits,
            maxima: s.limits.maxima,
        }
        .resolve(&PartialLimits::from(l))?,
    };
    let priority = req.priority.unwrap_or(task.priority);
    check_priority(priority)?;
    let interactive = check_interactive(s, &task.language, req.interactive)?;
    Ok(NewExecution {
        id: ExecutionId::new(),
        task_id: Some(task.id),
        owner_id: task.owner_id,
        priority,
        language: task.language,
        code: task.code,
        stdin: req.stdin.or(task.stdin),
        env: task.env,
        limits,
        interactive,
        callback_url: check_callback_url(req.callback_url)?,
        request_id,
        max_attempts: s.execution_max_attempts,
        created_at: now,
    })
}

/// A one-shot run with no stored task.
pub(crate) fn one_shot(
    s: &ApiSettings,
    owner: UserId,
    req: RunRequest,
    request_id: Option<String>,
    now: Timestamp,
) -> ApiResult<NewExecution> {
    let caps = s.task_caps();
    let language = resolve_language(&req.language, &s.allowed_languages, &s.language_aliases)?;
    check_code(&req.code, &caps)?;
    if let Some(stdin) = &req.stdin {
        check_stdin(stdin, &caps)?;
    }
    let env = req.env.unwrap_or_default();
    check_env(&env, &caps)?;
    let limits = s
        .limits
        .resolve(&req.limits.map(PartialLimits::from).unwrap_or_default())?;
    let priority = req.priority.unwrap_or(PRIORITY_DEFAULT);
    check_priority(priority)?;
    let interactive = check_interactive(s, &language, req.interactive)?;
    Ok(NewExecution {
        id: ExecutionId::new(),
        task_id: None,
        owner_id: owner,
        priority,
        language,
        code: req.code,
        stdin: req.stdin,
        env,
        limits,
        interactive,
        callback_url: check_callback_url(req.callback_url)?,
        request_id,
        max_attempts: s.execution_max_attempts,
        created_at: now,
    })
}

/// `interactive: true` only for languages whose executor can feed live stdin.
fn check_interactive(
    s: &ApiSettings,
    language: &str,
    interactive: Option<bool>,
) -> ApiResult<bool> {
    let interactive = interactive.unwrap_or(false);
    if interactive && s.non_interactive_languages.contains(language) {
        return Err(crate::error::ApiError::validation(
            "interactive",
            format!("{language} runs in a container, which cannot take live stdin"),
        ));
    }
    Ok(interactive)
}

/// Syntactic check of a webhook target: an absolute `http`/`https` URL of bounded length.
/// Whether its address may be reached (loopback, private ranges) is decided at delivery time,
/// against the resolved address.
fn check_callback_url(url: Option<String>) -> ApiResult<Option<String>> {
    let Some(url) = url else { return Ok(None) };
    let lower = url.to_ascii_lowercase();
    let ok = url.len() <= 2048
        && (lower.starts_with("http://") || lower.starts_with("https://"))
        && !url.bytes().any(|b| b.is_ascii_control() || b == b' ');
    if !ok {
        return Err(crate::error::ApiError::validation(
            "callback_url",
            "must be an absolute http or https URL of at most 2048 characters",
        ));
    }
    Ok(Some(url))
}

//! Turns task request DTOs into validated domain values, naming the first offending field.

use voidrunner_api_types::{CreateTaskRequest, UpdateTaskRequest};
use voidrunner_domain::validation::{
    PRIORITY_DEFAULT, check_code, check_env, check_metadata, check_priority, check_stdin,
    check_tags, check_task_description, check_task_name, resolve_language,
};
use voidrunner_domain::{NewTask, PartialLimits, TaskId, TaskPatch, Timestamp, UserId};

use crate::error::ApiResult;
use crate::settings::ApiSettings;

/// Validates a create request into a task owned by `owner`.
pub(crate) fn new_task(
    s: &ApiSettings,
    owner: UserId,
    req: CreateTaskRequest,
    now: Timestamp,
) -> ApiResult<NewTask> {
    let caps = s.task_caps();
    check_task_name(&req.name)?;
    if let Some(d) = &req.description {
        check_task_description(d)?;
    }
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
    let tags = check_tags(&req.tags.unwrap_or_default(), &caps)?;
    let metadata = req
        .metadata
        .unwrap_or_else(|| serde_json::Value::Object(serde_json::Map::new()));
    check_metadata(&metadata, &caps)?;
    Ok(NewTask {
        id: TaskId::new(),
        owner_id: owner,
        name: req.name,
        description: req.description,
        language,
        code: req.code,
        stdin: req.stdin,
        env,
        limits,
        priority,
        tags,
        metadata,
        created_at: now,
    })
}

/// Validates a partial update; only present fields are checked and changed.
pub(crate) fn task_patch(
    s: &ApiSettings,
    req: UpdateTaskRequest,
    now: Timestamp,
) -> ApiResult<TaskPatch> {
    let caps = s.task_caps();
    if let Some(name) = &req.name {
        check_task_name(name)?;
    }
    if let Some(Some(d)) = &req.description {
        check_task_description(d)?;
    }
    let language = req
        .language
        .map(|l| resolve_language(&l, &s.allowed_languages, &s.language_aliases))
        .transpose()?;
    if let Some(code) = &req.code {
        check_code(code, &caps)?;
    }
    if let Some(Some(stdin)) = &req.stdin {
        check_stdin(stdin, &caps)?;
    }
    if let Some(env) = &req.env {
        check_env(env, &caps)?;
    }
    let limits = req
        .limits
        .map(|l| s.limits.resolve(&PartialLimits::from(l)))
        .transpose()?;
    if let Some(p) = req.priority {
        check_priority(p)?;
    }
    let tags = req.tags.map(|t| check_tags(&t, &caps)).transpose()?;
    if let Some(m) = &req.metadata {
        check_metadata(m, &caps)?;
    }
    Ok(TaskPatch {
        name: req.name,
        description: req.description,
        language,
        code: req.code,
        stdin: req.stdin,
        env: req.env,
        limits,
        priority: req.priority,
        tags,
        metadata: req.metadata,
        updated_at: Some(now),
    })
}

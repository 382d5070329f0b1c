//! The git side of an event (blocking: run it on a blocking thread). Only the registered
//! clone URL is fetched, with the source-preparation safety rules ([`GitMirror`]): into the
//! mirror of that URL kept under `[hooks] mirror_dir` (so an event fetches only what is new;
//! one event at a time per mirror, under a file lock that also holds across processes; a
//! mirror that fails to fetch is rebuilt once; an idle one is removed, see `mirror_gc`), or without `mirror_dir` into a temporary
//! bare repository. Then:
//! - the commits the payload names are verified: a push's commit must exist; a pull
//!   request's base commit must exist AND be on the target branch, and its head commit must
//!   be what the base repository's `refs/pull/<n>/head` (GitHub) /
//!   `refs/merge-requests/<iid>/head` (GitLab) points to (a stale event, whose head has moved
//!   on, is refused: the event for the newer head covers it);
//! - the workflow files and CI files are read at the TRUSTED commit (a push's commit; a pull
//!   request's base commit — never its head, so a pull request cannot change what runs);
//! - the changed paths are computed (push: before..after; new branch: the commits no other
//!   branch has; pull request: merge-base(base, head)..head; tag: unknown).

use std::collections::BTreeMap;
use std::time::Duration;

use voidrunner_jobs::source::{GitMirror, SourcePolicy};
use voidrunner_jobs::workflow::{WorkflowDefinition, bare_job_workflow, parse_workflow};
use voidrunner_jobs::{Format, Problems};

use super::event::EventInfo;
use super::mirror_gc::lock_mirror;
use crate::settings::HookSettings;
use crate::workflows::create::{FILE_MAX_BYTES, FILES_MAX, FILES_TOTAL_MAX_BYTES};

/// A workflow file as read at the trusted commit.
pub(crate) struct WorkflowFile {
    /// Path from the repository root.
    pub path: String,
    /// The definition, or its problems (`path: message`).
    pub definition: Result<WorkflowDefinition, Vec<String>>,
}

/// What git says about an event.
pub(crate) struct Inspection {
    /// The commit whose code is tested (`/job/src`): the pushed commit or the PR head.
    pub code_sha: String,
    /// The trusted commit the workflows and CI code come from (`/job/ci`).
    pub ci_sha: String,
    /// Changed paths, when known and not too many.
    pub changed: Option<Vec<String>>,
    /// CI files (YAML/JSON under the CI directory), by path relative to it.
    pub files: BTreeMap<String, String>,
    /// `<ci_dir>/workflows/*.y{a,}ml`, then the `<ci_dir>/jobs/*.y{a,}ml` with an `on:` filter
    /// (one-node workflows).
    pub workflows: Vec<WorkflowFile>,
    /// Files left out (caps, not UTF-8).
    pub notes: Vec<String>,
}

/// What keeps an event's repository while it is read: the lock of a kept mirror, or the
/// temporary directory (removed on drop).
enum Hold {
    Kept(#[expect(dead_code, reason = "held for its lock")] std::fs::File),
    Temporary(#[expect(dead_code, reason = "held for its drop")] tempfile::TempDir),
}

/// The event's bare repository: the kept mirror of `clone_url` (locked), or a temporary one.
fn mirror(
    clone_url: &str,
    settings: &HookSettings,
    policy: &SourcePolicy,
) -> Result<(GitMirror, Hold), String> {
    let Some(root) = &settings.mirror_dir else {
        let mut tmp = tempfile::Builder::new();
        tmp.prefix("voidrunner-hook-");
        let dir = match &settings.work_dir {
            Some(d) => tmp.tempdir_in(d),
            None => tmp.tempdir(),
        }
        .map_err(|e| format!("temporary directory: {e}"))?;
        let git = GitMirror::init(clone_url, dir.path(), policy).map_err(|e| e.to_string())?;
        return Ok((git, Hold::Temporary(dir)));
    };
    std::fs::create_dir_all(root).map_err(|e| format!("mirror directory: {e}"))?;
    // Named by a digest of the URL: never a path from user input, and a changed URL (or
    // its credentials) gets a mirror of its own.
    let key = hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(clone_url.as_bytes())[..16]);
    // Locked for this event and marked used now (see `mirror_gc`: idle ones are removed).
    let lock = lock_mirror(root, &key).map_err(|e| format!("mirror lock: {e}"))?;
    let git = GitMirror::open(clone_url, &root.join(&key), policy).map_err(|e| e.to_string())?;
    Ok((git, Hold::Kept(lock)))
}

fn is_ci_file(path: &str) -> bool {
    [".yaml", ".yml", ".json"].iter().any(|e| path.ends_with(e))
}

/// Reads the event's commits from `clone_url` (see the module docs). `Err` says why the
/// event cannot be trusted or read.
pub(crate) fn inspect(
    provider: &str,
    clone_url: &str,
    ci_dir: &str,
    ev: &EventInfo,
    settings: &HookSettings,
) -> Result<Inspection, String> {
    let policy = SourcePolicy {
        git_protocols: settings.git_protocols.clone(),
        git_timeout: Duration::from_secs(settings.git_timeout_secs.max(1)),
        max_bytes: settings.max_repo_bytes,
        allow_private_hosts: settings.git_allow_private,
        ..SourcePolicy::default()
    };
    let (git, _hold) = mirror(clone_url, settings, &policy)?;
    let pr_ref = ev.pr.as_ref().map(|pr| match provider {
        "github" => format!("+refs/pull/{}/head:refs/voidrunner/head", pr.number),
        _ => format!(
            "+refs/merge-requests/{}/head:refs/voidrunner/head",
            pr.number
        ),
    });
    let mut specs = vec!["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];
    if let Some(r) = &pr_ref {
        specs.push(r);
    }
    let fetched = git.fetch(&specs);
    if let (Err(e), Hold::Kept(_)) = (&fetched, &_hold) {
        // A kept mirror may be damaged (a crash mid-fetch, a full disk): rebuild it once.
        tracing::warn!(error = %e, "fetching into the kept mirror failed, rebuilding it: {e}");
        git.recreate()
            .and_then(|()| git.fetch(&specs))
            .map_err(|e| format!("fetching the repository: {e}"))?;
    } else {
        fetched.map_err(|e| format!("fetching the repository: {e}"))?;
    }
    let max = settings.max_changed_files;
    let (code_sha, ci_sha, changed) = match &ev.pr {
        None => {
            let sha = match git.commit(&ev.sha) {
                Some(s) => s,
                None => {
                    // Pushed and already gone from every ref: fetch it by id.
                    git.fetch(&[ev.sha.as_str()])
                        .map_err(|e| format!("the pushed commit {}: {e}", ev.sha))?;
                    git.commit(&ev.sha).ok_or_else(|| {
                        format!("the pushed commit {} is not in the repository", ev.sha)
                    })?
                }
            };
            let changed = match (&ev.branch, &ev.before) {
                (Some(_), Some(before)) if git.commit(before).is_some() => git
                    .changed_files(before, &sha, max)
                    .map_err(|e| e.to_string())?,
                (Some(branch), _) => git
                    .new_branch_files(&sha, branch, max)
                    .map_err(|e| e.to_string())?,
                (None, _) => None,
            };
            (sha.clone(), sha, changed)
        }
        Some(pr) => {
            let target = format!("refs/heads/{}", pr.base_ref);
            let tip = git
                .commit(&target)
                .ok_or_else(|| format!("the target branch {} does not exist", pr.base_ref))?;
            let base = match &pr.base_sha {
                Some(s) => {
                    let base = git
                        .commit(s)
                        .ok_or_else(|| format!("the base commit {s} is not in the repository"))?;
                    if !git.is_ancestor(&base, &tip) {
                        return Err(format!(
                            "the base commit {s} is not on the target branch {}",
                            pr.base_ref
                        ));
                    }
                    base
                }
                None => tip,
            };
            let head_ref = git
                .commit("refs/voidrunner/head")
                .ok_or_else(|| format!("the pull request head ref of #{} is missing", pr.number))?;
            let head = git
                .commit(&ev.sha)
                .filter(|h| *h == head_ref)
                .ok_or_else(|| {
                    format!(
                        "the head commit {} is not the pull request's current head ({head_ref}); \
                         a later event covers the newer head",
                        ev.sha
                    )
                })?;
            let mb = git.merge_base(&base, &head).map_err(|e| e.to_string())?;
            let changed = git
                .changed_files(&mb, &head, max)
                .map_err(|e| e.to_string())?;
            (head, base, changed)
        }
    };
    let mut notes = Vec::new();
    let mut files = BTreeMap::new();
    let mut total = 0usize;
    let prefix = format!("{}/", ci_dir.trim_end_matches('/'));
    let listed = git
        .list_files(&ci_sha, ci_dir)
        .map_err(|e| format!("reading {ci_dir}: {e}"))?;
    for f in listed.into_iter().filter(|f| is_ci_file(&f.path)) {
        let Some(rel) = f.path.strip_prefix(&prefix) else {
            continue;
        };
        let size = usize::try_from(f.size).unwrap_or(usize::MAX);
        if files.len() >= FILES_MAX
            || size > FILE_MAX_BYTES
            || total.saturating_add(size + rel.len()) > FILES_TOTAL_MAX_BYTES
        {
            notes.push(format!("{}: left out (CI file caps)", f.path));
            continue;
        }
        let bytes = git.read_blob(&f.blob).map_err(|e| e.to_string())?;
        match String::from_utf8(bytes) {
            Ok(text) => {
                total += size + rel.len();
                files.insert(rel.to_owned(), text);
            }
            Err(_) => notes.push(format!("{}: left out (not UTF-8)", f.path)),
        }
    }
    let in_dir = |rel: &str, dir: &str| {
        rel.strip_prefix(dir).is_some_and(|name| {
            !name.contains('/') && (name.ends_with(".yaml") || name.ends_with(".yml"))
        })
    };
    let problem_lines = |p: Problems| -> Vec<String> {
        p.0.into_iter()
            .map(|p| {
                if p.path.is_empty() {
                    p.message
                } else {
                    format!("{}: {}", p.path, p.message)
                }
            })
            .collect()
    };
    let mut workflows: Vec<WorkflowFile> = files
        .iter()
        .filter(|(rel, _)| in_dir(rel, "workflows/"))
        .map(|(rel, text)| WorkflowFile {
            path: format!("{prefix}{rel}"),
            definition: parse_workflow(text, Format::Yaml).map_err(problem_lines),
        })
        .collect();
    // Bare job files with their own `on:` filter run as one-node workflows.
    workflows.extend(
        files
            .iter()
            .filter(|(rel, _)| in_dir(rel, "jobs/"))
            .filter_map(|(rel, text)| {
                bare_job_workflow(rel, text).map(|definition| WorkflowFile {
                    path: format!("{prefix}{rel}"),
                    definition: definition.map_err(problem_lines),
                })
            }),
    );
    Ok(Inspection {
        code_sha,
        ci_sha,
        changed,
        files,
        workflows,
        notes,
    })
}

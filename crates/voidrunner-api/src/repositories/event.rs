//! GitHub and GitLab event payloads normalized to one [`EventInfo`]. Only facts are taken
//! from a payload (event kind, ref names, commit ids, pull request number, whether the head
//! is a fork); never a URL. Commit ids and ref names are checked here and verified against
//! the clone later.

use serde_json::Value;
use voidrunner_jobs::workflow::GitEvent;

/// A pull request's facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PullInfo {
    /// GitHub number / GitLab iid.
    pub number: u64,
    /// Target branch.
    pub base_ref: String,
    /// Target commit the payload names (GitHub); GitLab gives none (the branch head is used).
    pub base_sha: Option<String>,
    /// Source branch (in the head repository).
    pub head_ref: String,
    /// The head lives in another repository (a fork), or its repository is gone.
    pub fork: bool,
}

/// A normalized event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EventInfo {
    /// The event.
    pub event: GitEvent,
    /// Full ref (`refs/heads/main`, `refs/tags/v1`; pull requests: the target branch's).
    pub git_ref: String,
    /// Branch pushed to, or the pull request's target branch.
    pub branch: Option<String>,
    /// Tag pushed.
    pub tag: Option<String>,
    /// Commit before a push (`None` for a new branch).
    pub before: Option<String>,
    /// The pushed commit, or the pull request's head commit.
    pub sha: String,
    /// Pull request facts.
    pub pr: Option<PullInfo>,
}

/// What a payload asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// An event that may start workflows.
    Event(EventInfo),
    /// Nothing to do (ping, deleted ref, an action no workflow reacts to), with why.
    Ignored(String),
}

/// The repository a payload is about (`repository.full_name` / `project.path_with_namespace`).
pub(crate) fn repository_name<'a>(provider: &str, body: &'a Value) -> Option<&'a str> {
    let v = match provider {
        "github" => &body["repository"]["full_name"],
        _ => &body["project"]["path_with_namespace"],
    };
    v.as_str()
}

fn is_sha(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_zero(s: &str) -> bool {
    s.bytes().all(|b| b == b'0')
}

fn text<'a>(v: &'a Value, what: &str) -> Result<&'a str, String> {
    v.as_str()
        .ok_or_else(|| format!("payload: {what} is missing"))
}

fn sha(v: &Value, what: &str) -> Result<String, String> {
    let s = text(v, what)?.to_ascii_lowercase();
    if is_sha(&s) {
        Ok(s)
    } else {
        Err(format!("payload: {what} is not a commit id"))
    }
}

fn branch_name(v: &Value, what: &str) -> Result<String, String> {
    let s = text(v, what)?;
    voidrunner_jobs::source::check_git_ref(s).map_err(|e| format!("payload: {what}: {e}"))?;
    Ok(s.to_owned())
}

/// A push of `git_ref` from `before` to `after` (either provider).
fn push(git_ref: &str, before: &Value, after: &Value) -> Result<Parsed, String> {
    let after_s = text(after, "after")?;
    if is_zero(after_s) {
        return Ok(Parsed::Ignored(format!("{git_ref} was deleted")));
    }
    let sha = sha(after, "after")?;
    let before = match before.as_str() {
        Some(b) if !is_zero(b) => Some(self::sha(before, "before")?),
        _ => None,
    };
    let (event, branch, tag) = if let Some(b) = git_ref.strip_prefix("refs/heads/") {
        (GitEvent::Push, Some(b), None)
    } else if let Some(t) = git_ref.strip_prefix("refs/tags/") {
        (GitEvent::TagCreated, None, Some(t))
    } else {
        return Ok(Parsed::Ignored(format!("{git_ref} is not a branch or tag")));
    };
    for name in branch.iter().chain(tag.iter()) {
        voidrunner_jobs::source::check_git_ref(name).map_err(|e| format!("payload: ref: {e}"))?;
    }
    Ok(Parsed::Event(EventInfo {
        event,
        git_ref: git_ref.to_owned(),
        branch: branch.map(str::to_owned),
        tag: tag.map(str::to_owned),
        before,
        sha,
        pr: None,
    }))
}

fn pull(event: GitEvent, pr: PullInfo, head_sha: String) -> Parsed {
    Parsed::Event(EventInfo {
        event,
        git_ref: format!("refs/heads/{}", pr.base_ref),
        branch: Some(pr.base_ref.clone()),
        tag: None,
        before: None,
        sha: head_sha,
        pr: Some(pr),
    })
}

fn github(kind: &str, body: &Value) -> Result<Parsed, String> {
    match kind {
        "ping" => Ok(Parsed::Ignored("ping".into())),
        "push" => {
            if body["deleted"].as_bool() == Some(true) {
                return Ok(Parsed::Ignored("the ref was deleted".into()));
            }
            push(text(&body["ref"], "ref")?, &body["before"], &body["after"])
        }
        "pull_request" => {
            let pr = &body["pull_request"];
            let action = text(&body["action"], "action")?;
            let event = match action {
                "opened" | "reopened" => GitEvent::PullRequestOpened,
                "synchronize" => GitEvent::PullRequestUpdated,
                "closed" if pr["merged"].as_bool() == Some(true) => GitEvent::PullRequestMerged,
                "closed" => GitEvent::PullRequestClosed,
                other => return Ok(Parsed::Ignored(format!("pull_request action {other}"))),
            };
            let number = body["number"]
                .as_u64()
                .or_else(|| pr["number"].as_u64())
                .ok_or("payload: number is missing")?;
            let base_repo = pr["base"]["repo"]["full_name"].as_str();
            let head_repo = pr["head"]["repo"]["full_name"].as_str();
            let info = PullInfo {
                number,
                base_ref: branch_name(&pr["base"]["ref"], "pull_request.base.ref")?,
                base_sha: Some(sha(&pr["base"]["sha"], "pull_request.base.sha")?),
                head_ref: text(&pr["head"]["ref"], "pull_request.head.ref")?.to_owned(),
                fork: head_repo.is_none() || head_repo != base_repo,
            };
            Ok(pull(
                event,
                info,
                sha(&pr["head"]["sha"], "pull_request.head.sha")?,
            ))
        }
        other => Ok(Parsed::Ignored(format!("event {other} is not handled"))),
    }
}

fn gitlab(kind: &str, body: &Value) -> Result<Parsed, String> {
    match kind {
        "Push Hook" | "Tag Push Hook" => {
            push(text(&body["ref"], "ref")?, &body["before"], &body["after"])
        }
        "Merge Request Hook" => {
            let mr = &body["object_attributes"];
            let action = mr["action"].as_str().unwrap_or("");
            let event = match action {
                "open" | "reopen" => GitEvent::PullRequestOpened,
                "update" if mr["oldrev"].as_str().is_some() => GitEvent::PullRequestUpdated,
                "merge" => GitEvent::PullRequestMerged,
                "close" => GitEvent::PullRequestClosed,
                "update" => {
                    return Ok(Parsed::Ignored(
                        "merge request updated without new commits".into(),
                    ));
                }
                other => return Ok(Parsed::Ignored(format!("merge request action {other:?}"))),
            };
            let number = mr["iid"]
                .as_u64()
                .ok_or("payload: object_attributes.iid is missing")?;
            let source = mr["source_project_id"].as_u64();
            let target = mr["target_project_id"].as_u64();
            let info = PullInfo {
                number,
                base_ref: branch_name(&mr["target_branch"], "object_attributes.target_branch")?,
                base_sha: None,
                head_ref: text(&mr["source_branch"], "object_attributes.source_branch")?.to_owned(),
                fork: source.is_none() || source != target,
            };
            Ok(pull(
                event,
                info,
                sha(&mr["last_commit"]["id"], "object_attributes.last_commit.id")?,
            ))
        }
        other => Ok(Parsed::Ignored(format!("event {other:?} is not handled"))),
    }
}

/// Normalizes a payload of `provider` whose event header says `kind`. `Err` names what is
/// malformed.
pub(crate) fn normalize(provider: &str, kind: &str, body: &Value) -> Result<Parsed, String> {
    match provider {
        "github" => github(kind, body),
        _ => gitlab(kind, body),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";
    const Z: &str = "0000000000000000000000000000000000000000";

    fn event(p: Parsed) -> EventInfo {
        match p {
            Parsed::Event(e) => e,
            Parsed::Ignored(why) => panic!("ignored: {why}"),
        }
    }

    #[test]
    fn github_pushes_tags_and_deletions() {
        let e = event(
            normalize(
                "github",
                "push",
                &json!({"ref":"refs/heads/main","before":A,"after":B}),
            )
            .expect("ok"),
        );
        assert_eq!(
            (e.event, e.branch.as_deref(), e.before.as_deref()),
            (GitEvent::Push, Some("main"), Some(A))
        );
        let t = event(
            normalize(
                "github",
                "push",
                &json!({"ref":"refs/tags/v1","before":Z,"after":B}),
            )
            .expect("ok"),
        );
        assert_eq!(
            (t.event, t.tag.as_deref(), t.before),
            (GitEvent::TagCreated, Some("v1"), None)
        );
        let gone = normalize(
            "github",
            "push",
            &json!({"ref":"refs/heads/x","before":A,"after":Z,"deleted":true}),
        );
        assert!(matches!(gone, Ok(Parsed::Ignored(_))));
        assert!(matches!(
            normalize("github", "ping", &json!({})),
            Ok(Parsed::Ignored(_))
        ));
        assert!(
            normalize(
                "github",
                "push",
                &json!({"ref":"refs/heads/-x","before":A,"after":B})
            )
            .is_err()
        );
        assert!(
            normalize(
                "github",
                "push",
                &json!({"ref":"refs/heads/m","before":A,"after":"HEAD"})
            )
            .is_err()
        );
    }

    #[test]
    fn github_pull_request_actions_and_forks() {
        let pr = |action: &str, merged: bool, head_repo: &str| {
            json!({"action": action, "number": 7, "pull_request": {"merged": merged,
                "base": {"ref": "main", "sha": A, "repo": {"full_name": "o/r"}},
                "head": {"ref": "f", "sha": B, "repo": {"full_name": head_repo}}}})
        };
        for (action, merged, want) in [
            ("opened", false, GitEvent::PullRequestOpened),
            ("reopened", false, GitEvent::PullRequestOpened),
            ("synchronize", false, GitEvent::PullRequestUpdated),
            ("closed", true, GitEvent::PullRequestMerged),
            ("closed", false, GitEvent::PullRequestClosed),
        ] {
            let e =
                event(normalize("github", "pull_request", &pr(action, merged, "o/r")).expect("ok"));
            assert_eq!(e.event, want);
            let p = e.pr.expect("pr");
            assert_eq!(
                (p.number, p.base_sha.as_deref(), p.fork),
                (7, Some(A), false)
            );
            assert_eq!(e.branch.as_deref(), Some("main"));
            assert_eq!(e.sha, B);
        }
        let fork =
            event(normalize("github", "pull_request", &pr("opened", false, "evil/r")).expect("ok"));
        assert!(fork.pr.expect("pr").fork);
        assert!(matches!(
            normalize("github", "pull_request", &pr("labeled", false, "o/r")),
            Ok(Parsed::Ignored(_))
        ));
    }

    #[test]
    fn gitlab_pushes_tags_and_merge_requests() {
        let e = event(
            normalize(
                "gitlab",
                "Push Hook",
                &json!({"ref":"refs/heads/dev","before":Z,"after":B}),
            )
            .expect("ok"),
        );
        assert_eq!((e.event, e.before), (GitEvent::Push, None));
        let t = event(
            normalize(
                "gitlab",
                "Tag Push Hook",
                &json!({"ref":"refs/tags/v2","before":Z,"after":B}),
            )
            .expect("ok"),
        );
        assert_eq!(t.event, GitEvent::TagCreated);
        let mr = |action: &str, oldrev: Option<&str>, source: u64| {
            json!({"object_attributes": {"action": action, "iid": 3, "oldrev": oldrev,
                "target_branch": "main", "source_branch": "f", "source_project_id": source,
                "target_project_id": 1, "last_commit": {"id": B}}})
        };
        let open =
            event(normalize("gitlab", "Merge Request Hook", &mr("open", None, 1)).expect("ok"));
        assert_eq!(open.event, GitEvent::PullRequestOpened);
        let p = open.pr.expect("pr");
        assert_eq!((p.number, p.base_sha, p.fork), (3, None, false));
        let upd = event(
            normalize("gitlab", "Merge Request Hook", &mr("update", Some(A), 2)).expect("ok"),
        );
        assert_eq!(upd.event, GitEvent::PullRequestUpdated);
        assert!(upd.pr.expect("pr").fork);
        assert!(matches!(
            normalize("gitlab", "Merge Request Hook", &mr("update", None, 1)),
            Ok(Parsed::Ignored(_))
        ));
        assert_eq!(
            repository_name("gitlab", &json!({"project":{"path_with_namespace":"g/p"}})),
            Some("g/p")
        );
    }
}

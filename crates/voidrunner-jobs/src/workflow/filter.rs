//! Which workflows a git event starts (see `docs/GIT.md`): a workflow's `on:` filter (alias
//! `triggers:`) names the events, the branch globs and the changed-path globs it reacts to.
//! The rules are runnerlib's: the event must be listed; branch globs apply only when both
//! the globs and the event's branch are non-empty (for pull requests the target branch);
//! path globs apply only when the changed files are known, and then some changed file must
//! pass `include` (when given) without matching `exclude` — an empty change list with a path
//! filter matches nothing. Globs are segment globs ([`crate::glob_match`]: `**` spans
//! directories).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::glob_match;

/// A normalized git event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GitEvent {
    /// Commits pushed to a branch.
    Push,
    /// A tag pushed.
    TagCreated,
    /// A pull request opened or reopened.
    PullRequestOpened,
    /// New commits on a pull request's head.
    PullRequestUpdated,
    /// A pull request closed without merging.
    PullRequestClosed,
    /// A pull request merged.
    PullRequestMerged,
}

impl GitEvent {
    /// The wire name (`push`, `tag_created`, `pull_request_opened`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            GitEvent::Push => "push",
            GitEvent::TagCreated => "tag_created",
            GitEvent::PullRequestOpened => "pull_request_opened",
            GitEvent::PullRequestUpdated => "pull_request_updated",
            GitEvent::PullRequestClosed => "pull_request_closed",
            GitEvent::PullRequestMerged => "pull_request_merged",
        }
    }

    /// True for the pull-request events.
    pub fn is_pull_request(self) -> bool {
        matches!(
            self,
            GitEvent::PullRequestOpened
                | GitEvent::PullRequestUpdated
                | GitEvent::PullRequestClosed
                | GitEvent::PullRequestMerged
        )
    }
}

/// A workflow's trigger filter (`on:`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowTrigger {
    /// Events it reacts to; none listed means no git event starts it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub events: Vec<GitEvent>,
    /// Branch globs (`main`, `release/*`); empty = every branch. For pull requests the
    /// target branch is matched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub branches: Vec<String>,
    /// Changed-path globs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<PathFilter>,
}

/// Changed-path globs: some changed file must match an `include` glob (when any) and no
/// `exclude` glob.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PathFilter {
    /// Globs a changed file must match (empty = any file).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub include: Vec<String>,
    /// Globs that rule a changed file out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub exclude: Vec<String>,
}

impl PathFilter {
    /// True when there is nothing to filter by.
    pub fn is_empty(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    /// True when `path` passes the filter.
    pub fn accepts(&self, path: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|g| glob_match(g, path)))
            && !self.exclude.iter().any(|g| glob_match(g, path))
    }
}

/// What is known of an event when workflows are selected.
#[derive(Debug, Clone, Copy)]
pub struct EventFacts<'a> {
    /// The event.
    pub event: GitEvent,
    /// The branch pushed to, or a pull request's target branch; `None` for tags.
    pub branch: Option<&'a str>,
    /// Files changed by the event, when known.
    pub changed_files: Option<&'a [String]>,
}

impl WorkflowTrigger {
    /// Why the filter does not match `facts`, or `Ok(())` when it does.
    pub fn check(&self, facts: &EventFacts<'_>) -> Result<(), String> {
        if !self.events.contains(&facts.event) {
            return Err(format!(
                "event {} is not in on.events",
                facts.event.as_str()
            ));
        }
        if let Some(branch) = facts.branch.filter(|b| !b.is_empty())
            && !self.branches.is_empty()
            && !self.branches.iter().any(|g| glob_match(g, branch))
        {
            return Err(format!("branch {branch:?} matches no on.branches glob"));
        }
        if let (Some(paths), Some(changed)) = (&self.paths, facts.changed_files)
            && !paths.is_empty()
            && !changed.iter().any(|f| paths.accepts(f))
        {
            return Err(if changed.is_empty() {
                "no changed files (on.paths is set)".to_owned()
            } else {
                "no changed file passes on.paths".to_owned()
            });
        }
        Ok(())
    }

    /// True when the filter matches `facts`.
    pub fn matches(&self, facts: &EventFacts<'_>) -> bool {
        self.check(facts).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trigger(
        events: &[GitEvent],
        branches: &[&str],
        inc: &[&str],
        exc: &[&str],
    ) -> WorkflowTrigger {
        let paths = (!inc.is_empty() || !exc.is_empty()).then(|| PathFilter {
            include: inc.iter().map(|s| (*s).to_owned()).collect(),
            exclude: exc.iter().map(|s| (*s).to_owned()).collect(),
        });
        WorkflowTrigger {
            events: events.to_vec(),
            branches: branches.iter().map(|s| (*s).to_owned()).collect(),
            paths,
        }
    }

    fn facts<'a>(
        event: GitEvent,
        branch: Option<&'a str>,
        files: Option<&'a [String]>,
    ) -> EventFacts<'a> {
        EventFacts {
            event,
            branch,
            changed_files: files,
        }
    }

    fn files(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_event_must_be_listed() {
        let t = trigger(&[GitEvent::Push], &[], &[], &[]);
        assert!(t.matches(&facts(GitEvent::Push, Some("main"), None)));
        assert!(!t.matches(&facts(GitEvent::PullRequestOpened, Some("main"), None)));
        assert!(!t.matches(&facts(GitEvent::TagCreated, None, None)));
        let none = WorkflowTrigger::default();
        assert!(!none.matches(&facts(GitEvent::Push, Some("main"), None)));
    }

    #[test]
    fn branch_globs_apply_only_when_both_sides_are_non_empty() {
        let t = trigger(
            &[GitEvent::Push, GitEvent::TagCreated],
            &["main", "release/*"],
            &[],
            &[],
        );
        assert!(t.matches(&facts(GitEvent::Push, Some("main"), None)));
        assert!(t.matches(&facts(GitEvent::Push, Some("release/1.0"), None)));
        assert!(!t.matches(&facts(GitEvent::Push, Some("release/1.0/x"), None)));
        assert!(!t.matches(&facts(GitEvent::Push, Some("feature"), None)));
        // No branch (a tag) or an empty one: the globs do not apply.
        assert!(t.matches(&facts(GitEvent::TagCreated, None, None)));
        assert!(t.matches(&facts(GitEvent::Push, Some(""), None)));
        let any = trigger(&[GitEvent::Push], &[], &[], &[]);
        assert!(any.matches(&facts(GitEvent::Push, Some("whatever/deep"), None)));
        let deep = trigger(&[GitEvent::Push], &["feature/**"], &[], &[]);
        assert!(deep.matches(&facts(GitEvent::Push, Some("feature/a/b"), None)));
    }

    #[test]
    fn path_filters_need_one_passing_file() {
        let t = trigger(&[GitEvent::Push], &[], &["src/**"], &["src/**/*.md"]);
        let f = |l: &[&str]| files(l);
        let ok = f(&["README.md", "src/a/b.rs"]);
        assert!(t.matches(&facts(GitEvent::Push, Some("main"), Some(&ok))));
        let docs_only = f(&["src/a/notes.md", "docs/x.rs"]);
        assert_eq!(
            t.check(&facts(GitEvent::Push, Some("main"), Some(&docs_only))),
            Err("no changed file passes on.paths".to_owned())
        );
        // An empty change list with a path filter: no match.
        let empty: Vec<String> = Vec::new();
        assert!(!t.matches(&facts(GitEvent::Push, Some("main"), Some(&empty))));
        // Unknown changes: the filter does not apply.
        assert!(t.matches(&facts(GitEvent::Push, Some("main"), None)));
        // Exclude only: anything not excluded.
        let ex = trigger(&[GitEvent::Push], &[], &[], &["docs/**", "*.md"]);
        assert!(!ex.matches(&facts(
            GitEvent::Push,
            None,
            Some(&f(&["docs/a/b.txt", "x.md"]))
        )));
        assert!(ex.matches(&facts(
            GitEvent::Push,
            None,
            Some(&f(&["docs/a", "lib/x.md"]))
        )));
    }

    #[test]
    fn event_names_round_trip_and_unknown_ones_are_refused() {
        for e in [
            GitEvent::Push,
            GitEvent::TagCreated,
            GitEvent::PullRequestOpened,
            GitEvent::PullRequestUpdated,
            GitEvent::PullRequestClosed,
            GitEvent::PullRequestMerged,
        ] {
            let v = serde_json::to_value(e).expect("serialize");
            assert_eq!(v, e.as_str());
            assert_eq!(serde_json::from_value::<GitEvent>(v).expect("parse"), e);
            assert_eq!(e.is_pull_request(), e.as_str().starts_with("pull_request"));
        }
        assert!(serde_json::from_value::<GitEvent>(serde_json::json!("pull_request")).is_err());
    }

    #[test]
    fn on_and_triggers_parse_and_bad_event_names_are_problems_with_paths() {
        use crate::Format;
        use crate::workflow::parse_workflow;
        let job = "jobs:\n  a: {job_file: a.yaml}\n";
        let on = format!(
            "name: w\non:\n  events: [push, pull_request_opened]\n  branches: [main]\n  paths: {{include: ['src/**']}}\n{job}"
        );
        let def = parse_workflow(&on, Format::Yaml).expect("valid");
        let t = def.on.expect("on");
        assert_eq!(t.events, vec![GitEvent::Push, GitEvent::PullRequestOpened]);
        assert_eq!(t.branches, vec!["main".to_owned()]);
        let alias = format!("name: w\ntriggers: {{events: [tag_created]}}\n{job}");
        let def = parse_workflow(&alias, Format::Yaml).expect("alias");
        assert_eq!(def.on.expect("on").events, vec![GitEvent::TagCreated]);
        let bad = format!("name: w\non: {{events: [push, pull_request]}}\n{job}");
        let problems = parse_workflow(&bad, Format::Yaml).expect_err("bad event").0;
        assert!(
            problems.iter().any(|p| p.path.starts_with("on.events")),
            "{problems:?}"
        );
        let unknown = format!("name: w\non: {{events: [push], branch: [main]}}\n{job}");
        assert!(parse_workflow(&unknown, Format::Yaml).is_err());
    }
}

//! From a validated definition to the concrete nodes a scheduler stores and runs: fan-out
//! expanded, dependencies resolved to instance names, `job_file`s read from the CI files,
//! and each job's environment assembled (workflow env < node env < fan-out item).

use std::collections::BTreeMap;

use super::parse_workflow;
use super::{NodeCondition, WorkflowDefinition, WorkflowPlan};
use crate::definition::JobDefinition;
use crate::validate::{Format, Problem, Problems, from_value, parse_value};

/// Top-level keys of a bare job file that hold its git-event filter.
const TRIGGER_KEYS: [&str; 2] = ["on", "triggers"];

/// One concrete node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSpec {
    /// Instance name (`build[1]`, or the node name without fan-out).
    pub name: String,
    /// The definition's node name (`build`).
    pub group: String,
    /// The job to run, with its environment assembled.
    pub job: JobDefinition,
    /// Instance names that must be terminal first.
    pub depends_on: Vec<String>,
    /// When it runs.
    pub condition: NodeCondition,
}

impl NodeSpec {
    /// The node as the store keeps it (its job as JSON); `parent` is the job that triggered
    /// it, for follow-up jobs.
    pub fn into_new_node(
        self,
        parent: Option<voidrunner_store::JobId>,
    ) -> Result<voidrunner_store::NewWorkflowNode, serde_json::Error> {
        Ok(voidrunner_store::NewWorkflowNode {
            definition: serde_json::to_value(&self.job)?,
            name: self.name,
            group: self.group,
            depends_on: self.depends_on,
            condition: self.condition.as_str().to_owned(),
            parent_job_id: parent,
        })
    }
}

impl NodeCondition {
    /// The wire name (`all_success`, `any_failed`, `always`).
    pub fn as_str(self) -> &'static str {
        match self {
            NodeCondition::AllSuccess => "all_success",
            NodeCondition::AnyFailed => "any_failed",
            NodeCondition::Always => "always",
        }
    }

    /// Parses a wire name; runnerlib's `all_success(needs)`-style spellings and `""` too.
    pub fn parse(s: &str) -> Option<NodeCondition> {
        Some(match s.trim() {
            "" | "all_success" | "all_success(needs)" => NodeCondition::AllSuccess,
            "any_failed" | "any_failed(needs)" => NodeCondition::AnyFailed,
            "always" | "always()" => NodeCondition::Always,
            _ => return None,
        })
    }
}

/// Reads the job file `path` from `files` (keys relative to the CI root): `path` itself,
/// else `jobs/<path>`. Problems are reported under `at`.
pub fn job_from_files(
    files: &BTreeMap<String, String>,
    path: &str,
    at: &str,
) -> Result<JobDefinition, Problems> {
    let path = path.trim_start_matches("./");
    let text = files
        .get(path)
        .or_else(|| files.get(&format!("jobs/{path}")))
        .ok_or_else(|| {
            Problems(vec![Problem::new(
                at,
                format!("job file {path:?} is not in the CI files"),
            )])
        })?;
    let format = if path.ends_with(".json") {
        Format::Json
    } else {
        Format::Yaml
    };
    // A bare job file may carry its own git-event filter (see `bare_job_workflow`); it says
    // when the file runs on its own and means nothing inside a workflow.
    let job = parse_value(text, format).and_then(|mut value| {
        if let Some(obj) = value.as_object_mut() {
            for key in TRIGGER_KEYS {
                obj.remove(key);
            }
        }
        from_value(&value)
    });
    job.map_err(|Problems(ps)| {
        Problems(
            ps.into_iter()
                .map(|p| {
                    let inner = if p.path.is_empty() {
                        path.to_owned()
                    } else {
                        format!("{path}: {}", p.path)
                    };
                    Problem::new(at, format!("{inner}: {}", p.message))
                })
                .collect(),
        )
    })
}

/// A bare job file of the CI directory (`jobs/<file>`) with its own `on:` (or `triggers:`)
/// filter, as the one-node workflow a git event starts when the filter matches: named after
/// the job, its node runs the file. `None` when the file has no filter (it runs only when a
/// workflow or a trigger names it); `Err` lists the problems of the file or its filter.
pub fn bare_job_workflow(path: &str, text: &str) -> Option<Result<WorkflowDefinition, Problems>> {
    let format = if path.ends_with(".json") {
        Format::Json
    } else {
        Format::Yaml
    };
    let value = parse_value(text, format).ok()?;
    let obj = value.as_object()?;
    let on = TRIGGER_KEYS.iter().find_map(|k| obj.get(*k))?.clone();
    let job = match job_from_files(
        &BTreeMap::from([(path.to_owned(), text.to_owned())]),
        path,
        "job_file",
    ) {
        Ok(job) => job,
        Err(problems) => return Some(Err(problems)),
    };
    let node: String = job
        .name
        .chars()
        .map(|c| if c == '.' { '-' } else { c })
        .take(64)
        .collect();
    let def = serde_json::json!({
        "name": job.name,
        "on": on,
        "jobs": {node: {"job_file": path}},
    });
    Some(parse_workflow(&def.to_string(), Format::Json))
}

/// Expands a validated definition into its concrete nodes, in the plan's order. `env` is the
/// workflow-wide environment (e.g. the git event's), under each node's own. Every problem
/// (a missing or invalid job file) is reported at once, at `jobs.<node>.job_file`.
pub fn instantiate(
    def: &WorkflowDefinition,
    files: &BTreeMap<String, String>,
    env: &BTreeMap<String, String>,
) -> Result<Vec<NodeSpec>, Problems> {
    let mut problems = Vec::new();
    let mut jobs: BTreeMap<&str, JobDefinition> = BTreeMap::new();
    for (name, node) in &def.jobs {
        let job = match (&node.job, &node.job_file) {
            (Some(job), _) => Ok(job.clone()),
            (None, Some(file)) => job_from_files(files, file, &format!("jobs.{name}.job_file")),
            (None, None) => Err(Problems(vec![Problem::new(
                format!("jobs.{name}"),
                "give exactly one of job and job_file",
            )])),
        };
        match job {
            Ok(job) => {
                jobs.insert(name, job);
            }
            Err(Problems(ps)) => problems.extend(ps),
        }
    }
    if !problems.is_empty() {
        return Err(Problems(problems));
    }
    let plan = WorkflowPlan::new(def);
    let mut specs = Vec::with_capacity(plan.len());
    for i in 0..plan.len() {
        let group = plan.group(i);
        let node = &def.jobs[group];
        let mut job = jobs[group].clone();
        let mut job_env = env.clone();
        job_env.extend(job.env.clone());
        job_env.extend(node.env.clone());
        if let Some((var, item)) = plan.item(i) {
            job_env.insert(var.to_owned(), item.to_owned());
        }
        job.env = job_env;
        specs.push(NodeSpec {
            name: plan.name(i).to_owned(),
            group: group.to_owned(),
            job,
            depends_on: plan.deps(i).map(|d| plan.name(d).to_owned()).collect(),
            condition: node.condition,
        });
    }
    Ok(specs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::parse_workflow;

    const WF: &str = r#"
name: release
jobs:
  prepare: {job_file: prepare.yaml}
  build:
    job: {name: build, env: {LEVEL: job}, steps: [{name: b, command: "echo $TARGET"}]}
    needs: [prepare]
    for_each: [linux, mac]
    item_var: TARGET
    env: {LEVEL: node}
  publish: {job_file: jobs/publish.yaml, depends_on: [build], condition: always}
"#;

    fn files() -> BTreeMap<String, String> {
        BTreeMap::from([
            (
                "jobs/prepare.yaml".to_owned(),
                "name: prepare\nsteps: [{name: p, command: 'true'}]\n".to_owned(),
            ),
            (
                "jobs/publish.yaml".to_owned(),
                "name: publish\nenv: {LEVEL: file}\nsteps: [{name: p, command: 'true'}]\n"
                    .to_owned(),
            ),
        ])
    }

    #[test]
    fn expands_fan_out_resolves_files_and_layers_env() {
        let def = parse_workflow(WF, Format::Yaml).expect("valid");
        let env = BTreeMap::from([
            ("LEVEL".to_owned(), "event".to_owned()),
            ("EVENT".to_owned(), "push".to_owned()),
        ]);
        let nodes = instantiate(&def, &files(), &env).expect("instantiates");
        let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["build[0]", "build[1]", "prepare", "publish"]);
        let b1 = &nodes[1];
        assert_eq!(b1.group, "build");
        assert_eq!(b1.depends_on, ["prepare"]);
        assert_eq!(b1.job.env["TARGET"], "mac");
        assert_eq!(
            b1.job.env["LEVEL"], "node",
            "node env wins over job and event env"
        );
        assert_eq!(b1.job.env["EVENT"], "push");
        let publish = &nodes[3];
        assert_eq!(publish.depends_on, ["build[0]", "build[1]"]);
        assert_eq!(publish.condition, NodeCondition::Always);
        assert_eq!(publish.job.name, "publish");
        assert_eq!(
            publish.job.env["LEVEL"], "file",
            "the job file's env wins over the event's"
        );
        assert_eq!(
            nodes[2].job.name, "prepare",
            "prepare.yaml found under jobs/"
        );
    }

    #[test]
    fn every_missing_or_invalid_job_file_is_reported() {
        let def = parse_workflow(WF, Format::Yaml).expect("valid");
        let mut files = files();
        files.remove("jobs/prepare.yaml");
        files.insert(
            "jobs/publish.yaml".into(),
            "name: publish\nsteps: []\n".into(),
        );
        let Problems(problems) = instantiate(&def, &files, &BTreeMap::new()).expect_err("refused");
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert!(paths.contains(&"jobs.prepare.job_file"), "{problems:?}");
        assert!(paths.contains(&"jobs.publish.job_file"), "{problems:?}");
        assert!(
            problems
                .iter()
                .any(|p| p.message.contains("not in the CI files")),
            "{problems:?}"
        );
    }

    const BARE: &str = "name: lint.py\non: {events: [push], branches: [main]}\n\
        steps: [{name: l, command: 'true'}]\n";

    #[test]
    fn a_bare_job_file_with_a_filter_is_a_one_node_workflow() {
        let def = bare_job_workflow("jobs/lint.yaml", BARE)
            .expect("has a filter")
            .expect("valid");
        assert_eq!(def.name, "lint.py");
        let on = def.on.as_ref().expect("filter kept");
        assert_eq!(on.branches, ["main"]);
        let files = BTreeMap::from([("jobs/lint.yaml".to_owned(), BARE.to_owned())]);
        let nodes = instantiate(&def, &files, &BTreeMap::new()).expect("the file runs as a job");
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0].name, "lint-py");
        assert_eq!(nodes[0].job.name, "lint.py");
        // Without a filter the file only runs when named.
        let plain = "name: lint\nsteps: [{name: l, command: 'true'}]\n";
        assert!(bare_job_workflow("jobs/lint.yaml", plain).is_none());
        // A bad filter is reported, not ignored.
        let bad = "name: lint\non: {events: [pushed]}\nsteps: [{name: l, command: 'true'}]\n";
        let Problems(problems) = bare_job_workflow("jobs/lint.yaml", bad)
            .expect("has a filter")
            .expect_err("unknown event");
        assert!(
            problems.iter().any(|p| p.path.starts_with("on.events")),
            "{problems:?}"
        );
    }

    #[test]
    fn condition_names_round_trip() {
        for c in [
            NodeCondition::AllSuccess,
            NodeCondition::AnyFailed,
            NodeCondition::Always,
        ] {
            assert_eq!(NodeCondition::parse(c.as_str()), Some(c));
        }
        assert_eq!(
            NodeCondition::parse("all_success(needs)"),
            Some(NodeCondition::AllSuccess)
        );
        assert_eq!(NodeCondition::parse("sometimes"), None);
    }
}

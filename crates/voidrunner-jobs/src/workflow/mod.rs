//! Workflows: graphs of jobs (issue 10). This module holds the pure parts — the definition
//! (YAML/JSON, JSON Schema), validation that reports every problem with its path, fan-out
//! expansion, the decision rules (which node starts, which is skipped, the workflow's
//! status) and output merging. Semantics: `docs/WORKFLOWS.md`.

mod engine;
mod filter;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::OnceLock;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::definition::JobDefinition;
use crate::path::workspace_relative;
use crate::validate::{
    Format, Problem, Problems, check_rules, cycles, parse_value, schema_problems,
};

mod instance;

pub use engine::{MergeConflict, NodeState, PlanNode, WorkflowPlan, WorkflowStatus, merge_outputs};
pub use filter::{EventFacts, GitEvent, PathFilter, WorkflowTrigger};
pub use instance::{NodeSpec, bare_job_workflow, instantiate, job_from_files};

/// A workflow: named jobs with dependencies, conditions and fan-out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowDefinition {
    /// 1–100 characters of `[A-Za-z0-9_.-]`.
    #[schemars(length(min = 1, max = 100), regex(pattern = r"^[A-Za-z0-9_.-]+$"))]
    pub name: String,
    /// Values every job reads (as the `VOIDRUNNER_VARS` JSON and `<node>.<key>` outputs).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, String>,
    /// Which git events start it (`triggers` is an alias; see `docs/GIT.md`); absent = none.
    #[serde(default, alias = "triggers", skip_serializing_if = "Option::is_none")]
    pub on: Option<WorkflowTrigger>,
    /// The nodes, by name (`[A-Za-z0-9_-]{1,64}`).
    #[schemars(length(min = 1, max = 200))]
    pub jobs: BTreeMap<String, Node>,
}

/// One node of the graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// The job, inline …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobDefinition>,
    /// … or a job file in the CI source (relative to its root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub job_file: Option<String>,
    /// Nodes that must be finished first (`needs` is an alias); naming a fanned-out node
    /// means all of its instances.
    #[serde(default, alias = "needs", skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// When it runs once its dependencies are finished.
    #[serde(default)]
    pub condition: NodeCondition,
    /// Fan-out: one instance per item, named `node[0]`, `node[1]`, …
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub for_each: Vec<String>,
    /// The env variable carrying the item (default `ITEM`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_var: Option<String>,
    /// Extra environment of this node's job.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

/// When a node runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeCondition {
    /// Every dependency succeeded (a skipped one did not: skips cascade).
    #[default]
    AllSuccess,
    /// Some dependency failed, timed out or was cancelled.
    AnyFailed,
    /// Whatever happened.
    Always,
}

/// The JSON Schema of a workflow definition, as published.
pub fn workflow_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let mut schema = schemars::schema_for!(WorkflowDefinition).to_value();
        if let Some(obj) = schema.as_object_mut() {
            obj.insert(
                "$id".into(),
                Value::String("https://voidrunner.dev/schemas/workflow.json".into()),
            );
        }
        schema
    })
}

fn validator() -> Option<&'static jsonschema::Validator> {
    static VALIDATOR: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    VALIDATOR
        .get_or_init(|| jsonschema::validator_for(workflow_schema()).ok())
        .as_ref()
}

/// Parses and validates a workflow definition: every problem at once, with its path.
pub fn parse_workflow(text: &str, format: Format) -> Result<WorkflowDefinition, Problems> {
    let value = normalize(&parse_value(text, format)?);
    let mut problems = Vec::new();
    schema_problems(validator(), &value, &mut problems);
    if !problems.is_empty() {
        return Err(Problems(problems));
    }
    let def: WorkflowDefinition = serde_json::from_value(value)
        .map_err(|e| Problems(vec![Problem::new("", e.to_string())]))?;
    check_workflow(&def, &mut problems);
    if problems.is_empty() {
        Ok(def)
    } else {
        Err(Problems(problems))
    }
}

/// `needs` → `depends_on` for nodes and for inline jobs' steps, before the schema sees it.
fn normalize(value: &Value) -> Value {
    let mut value = value.clone();
    if let Some(obj) = value.as_object_mut()
        && let Some(triggers) = obj.remove("triggers")
    {
        obj.entry("on").or_insert(triggers);
    }
    if let Some(jobs) = value.get_mut("jobs").and_then(Value::as_object_mut) {
        for node in jobs.values_mut() {
            let Some(obj) = node.as_object_mut() else {
                continue;
            };
            if let Some(needs) = obj.remove("needs") {
                obj.entry("depends_on").or_insert(needs);
            }
            if let Some(steps) = obj
                .get_mut("job")
                .and_then(|j| j.get_mut("steps"))
                .and_then(Value::as_array_mut)
            {
                for step in steps {
                    if let Some(s) = step.as_object_mut()
                        && let Some(needs) = s.remove("needs")
                    {
                        s.entry("depends_on").or_insert(needs);
                    }
                }
            }
        }
    }
    value
}

pub(crate) fn valid_node_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn check_workflow(def: &WorkflowDefinition, problems: &mut Vec<Problem>) {
    for (name, node) in &def.jobs {
        let at = format!("jobs.{name}");
        if !valid_node_name(name) {
            problems.push(Problem::new(
                &at,
                "node names are 1–64 characters of [A-Za-z0-9_-]",
            ));
        }
        match (&node.job, &node.job_file) {
            (Some(job), None) => {
                let mut inner = Vec::new();
                check_rules(job, &mut inner);
                for p in inner {
                    let path = if p.path.is_empty() {
                        format!("{at}.job")
                    } else {
                        format!("{at}.job.{}", p.path)
                    };
                    problems.push(Problem::new(path, p.message));
                }
            }
            (None, Some(file)) => {
                if let Err(e) = workspace_relative(file) {
                    problems.push(Problem::new(format!("{at}.job_file"), e.to_string()));
                }
            }
            _ => problems.push(Problem::new(&at, "give exactly one of job and job_file")),
        }
        let mut seen = HashSet::new();
        for (i, dep) in node.depends_on.iter().enumerate() {
            let path = format!("{at}.depends_on[{i}]");
            if dep == name {
                problems.push(Problem::new(path, "a node cannot depend on itself"));
            } else if !def.jobs.contains_key(dep) {
                problems.push(Problem::new(path, format!("unknown node {dep:?}")));
            } else if !seen.insert(dep) {
                problems.push(Problem::new(path, format!("{dep:?} is listed twice")));
            }
        }
        if let Some(var) = &node.item_var {
            let ok = var
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                problems.push(Problem::new(
                    format!("{at}.item_var"),
                    "must be an env variable name",
                ));
            }
            if node.for_each.is_empty() {
                problems.push(Problem::new(
                    format!("{at}.item_var"),
                    "item_var needs for_each",
                ));
            }
        }
    }
    let names: Vec<&String> = def.jobs.keys().collect();
    let index: HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let edges: Vec<Vec<usize>> = def
        .jobs
        .iter()
        .map(|(name, n)| {
            n.depends_on
                .iter()
                .filter(|d| *d != name)
                .filter_map(|d| index.get(d.as_str()).copied())
                .collect()
        })
        .collect();
    for cycle in cycles(&edges) {
        let cycle: Vec<&str> = cycle.iter().map(|&i| names[i].as_str()).collect();
        problems.push(Problem::new(
            format!("jobs.{}.depends_on", cycle[0]),
            format!("dependency cycle: {} → {}", cycle.join(" → "), cycle[0]),
        ));
    }
}

#[cfg(test)]
mod tests;

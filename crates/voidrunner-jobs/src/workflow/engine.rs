//! The workflow decision rules, pure: fan-out expansion, which node starts or is skipped,
//! the workflow's status, and output merging.
//!
//! - A node is ready when every dependency (every instance of a fanned-out dependency) is
//!   terminal. Its condition then decides: `all_success` needs every dependency succeeded
//!   (skipped is not success, so skips cascade); `any_failed` needs some dependency failed,
//!   timed out or cancelled; `always` runs. Otherwise it is skipped with the reason.
//! - Decisions cascade within one pass, in name order, and at most `max_starts` nodes start.
//! - Status once every node is terminal: `failed` if any node failed or timed out, else
//!   `cancelled` if any was cancelled, else `skipped` if every node was skipped, else
//!   `succeeded`; `running` before that.

use std::collections::BTreeMap;

use super::{NodeCondition, WorkflowDefinition};

/// The state of one node (one job).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeState {
    /// Waiting.
    Pending,
    /// Its job was started.
    Running,
    /// Its job succeeded.
    Succeeded,
    /// Its job failed.
    Failed,
    /// Its job timed out.
    TimedOut,
    /// Its job was cancelled.
    Cancelled,
    /// Its condition was false.
    Skipped,
}

impl NodeState {
    /// Finished one way or another.
    pub fn is_terminal(self) -> bool {
        !matches!(self, NodeState::Pending | NodeState::Running)
    }
    fn is_failure(self) -> bool {
        matches!(
            self,
            NodeState::Failed | NodeState::TimedOut | NodeState::Cancelled
        )
    }
}

/// A workflow's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkflowStatus {
    /// Some node is not terminal.
    Running,
    /// Every node succeeded or was skipped (not all skipped).
    Succeeded,
    /// Some node failed or timed out.
    Failed,
    /// Some node was cancelled (and none failed).
    Cancelled,
    /// Every node was skipped.
    Skipped,
}

#[derive(Debug, Clone)]
struct Instance {
    name: String,
    group: String,
    deps: Vec<usize>,
    condition: NodeCondition,
    item: Option<(String, String)>,
    /// Why this node can never run (unsupported condition, unknown dependency): it is
    /// skipped with this reason as soon as it is decided.
    problem: Option<String>,
}

/// One node of a stored workflow (nodes of the definition and triggered ones alike), as
/// [`WorkflowPlan::from_nodes`] reads it.
#[derive(Debug, Clone, Copy)]
pub struct PlanNode<'a> {
    /// Instance name (`build[1]`).
    pub name: &'a str,
    /// The definition's node name (`build`).
    pub group: &'a str,
    /// Instance names that must be terminal first.
    pub depends_on: &'a [String],
    /// The condition's wire name (see [`NodeCondition::parse`]).
    pub condition: &'a str,
    /// Its current state.
    pub state: NodeState,
}

/// The expanded nodes of a workflow and their states.
#[derive(Debug, Clone)]
pub struct WorkflowPlan {
    nodes: Vec<Instance>,
    states: Vec<NodeState>,
    reasons: Vec<Option<String>>,
}

impl WorkflowPlan {
    /// Expands `for_each` (instances `name[0]`, `name[1]`, … carrying the item in
    /// `item_var`, default `ITEM`) and resolves dependencies (a fanned-out name means every
    /// instance). Expects a validated definition.
    pub fn new(def: &WorkflowDefinition) -> WorkflowPlan {
        let mut nodes = Vec::new();
        let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (name, node) in &def.jobs {
            if node.for_each.is_empty() {
                groups.entry(name).or_default().push(nodes.len());
                nodes.push(Instance {
                    name: name.clone(),
                    group: name.clone(),
                    deps: Vec::new(),
                    condition: node.condition,
                    item: None,
                    problem: None,
                });
            } else {
                let var = node.item_var.clone().unwrap_or_else(|| "ITEM".to_owned());
                for (i, item) in node.for_each.iter().enumerate() {
                    groups.entry(name).or_default().push(nodes.len());
                    nodes.push(Instance {
                        name: format!("{name}[{i}]"),
                        group: name.clone(),
                        deps: Vec::new(),
                        condition: node.condition,
                        item: Some((var.clone(), item.clone())),
                        problem: None,
                    });
                }
            }
        }
        for instance in &mut nodes {
            let node = &def.jobs[&instance.group];
            instance.deps = node
                .depends_on
                .iter()
                .flat_map(|d| groups.get(d.as_str()).cloned().unwrap_or_default())
                .collect();
        }
        let n = nodes.len();
        WorkflowPlan {
            nodes,
            states: vec![NodeState::Pending; n],
            reasons: vec![None; n],
        }
    }

    /// The plan of a stored workflow: nodes in creation order with their current states.
    /// A dependency naming a fan-out group (not an instance) means every instance. A node
    /// with an unsupported condition or an unknown dependency is skipped with the reason
    /// when decided (a stored graph is never refused: it can only be decided).
    pub fn from_nodes<'a>(nodes: impl IntoIterator<Item = PlanNode<'a>>) -> WorkflowPlan {
        let nodes: Vec<PlanNode<'a>> = nodes.into_iter().collect();
        let index: BTreeMap<&str, usize> =
            nodes.iter().enumerate().map(|(i, n)| (n.name, i)).collect();
        let mut instances = Vec::with_capacity(nodes.len());
        for n in &nodes {
            let mut problem = None;
            let condition = NodeCondition::parse(n.condition).unwrap_or_else(|| {
                problem = Some(format!("unsupported condition {}", n.condition));
                NodeCondition::AllSuccess
            });
            let mut deps = Vec::with_capacity(n.depends_on.len());
            for d in n.depends_on {
                match index.get(d.as_str()) {
                    Some(&i) => deps.push(i),
                    None => {
                        // A fan-out group's name (e.g. in a triggered node's `depends_on`)
                        // means every instance of it.
                        let group: Vec<usize> = (0..nodes.len())
                            .filter(|&j| nodes[j].group == d.as_str() && nodes[j].name != n.name)
                            .collect();
                        if group.is_empty() {
                            problem.get_or_insert_with(|| format!("unknown dependency {d}"));
                        }
                        deps.extend(group);
                    }
                }
            }
            instances.push(Instance {
                name: n.name.to_owned(),
                group: n.group.to_owned(),
                deps,
                condition,
                item: None,
                problem,
            });
        }
        WorkflowPlan {
            states: nodes.iter().map(|n| n.state).collect(),
            reasons: vec![None; nodes.len()],
            nodes: instances,
        }
    }

    /// Skips pending node `i` with `reason` before deciding (e.g. its job cannot be built).
    pub fn skip(&mut self, i: usize, reason: &str) {
        if self.states[i] == NodeState::Pending {
            self.states[i] = NodeState::Skipped;
            self.reasons[i] = Some(reason.to_owned());
        }
    }

    /// Number of nodes after expansion.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True without nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Display name of node `i` (`build[1]`).
    pub fn name(&self, i: usize) -> &str {
        &self.nodes[i].name
    }

    /// The definition's node name of `i` (`build`).
    pub fn group(&self, i: usize) -> &str {
        &self.nodes[i].group
    }

    /// The fan-out item of `i` as (variable, value).
    pub fn item(&self, i: usize) -> Option<(&str, &str)> {
        self.nodes[i]
            .item
            .as_ref()
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The instances `i` depends on.
    pub fn deps(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.nodes[i].deps.iter().copied()
    }

    /// State of `i`.
    pub fn state(&self, i: usize) -> NodeState {
        self.states[i]
    }

    /// Why `i` was skipped.
    pub fn skip_reason(&self, i: usize) -> Option<&str> {
        self.reasons[i].as_deref()
    }

    /// Decides: skips nodes whose condition is false (cascading within the call) and marks
    /// up to `max_starts` ready nodes `Running`. Answers the nodes to start.
    pub fn next(&mut self, max_starts: usize) -> Vec<usize> {
        let mut started = Vec::new();
        let mut changed = true;
        while changed {
            changed = false;
            for i in 0..self.nodes.len() {
                if self.states[i] != NodeState::Pending {
                    continue;
                }
                if let Some(problem) = &self.nodes[i].problem {
                    self.reasons[i] = Some(problem.clone());
                    self.states[i] = NodeState::Skipped;
                    changed = true;
                    continue;
                }
                if !self.nodes[i]
                    .deps
                    .iter()
                    .all(|&d| self.states[d].is_terminal())
                {
                    continue;
                }
                let deps = &self.nodes[i].deps;
                let verdict = match self.nodes[i].condition {
                    NodeCondition::Always => Ok(()),
                    NodeCondition::AllSuccess => match deps
                        .iter()
                        .find(|&&d| self.states[d] != NodeState::Succeeded)
                    {
                        None => Ok(()),
                        Some(&d) => {
                            Err(format!("dependency {} did not succeed", self.nodes[d].name))
                        }
                    },
                    NodeCondition::AnyFailed => {
                        if deps.iter().any(|&d| self.states[d].is_failure()) {
                            Ok(())
                        } else {
                            Err("no dependency failed".to_owned())
                        }
                    }
                };
                match verdict {
                    Err(reason) => {
                        self.states[i] = NodeState::Skipped;
                        self.reasons[i] = Some(reason);
                        changed = true;
                    }
                    Ok(()) if started.len() < max_starts => {
                        self.states[i] = NodeState::Running;
                        started.push(i);
                    }
                    Ok(()) => {}
                }
            }
        }
        started
    }

    /// Records how node `i`'s job ended.
    pub fn finish(&mut self, i: usize, state: NodeState) {
        self.states[i] = state;
    }

    /// Cancels the workflow: pending nodes are skipped with `reason` (running ones are
    /// finished by the caller as their jobs stop).
    pub fn abandon(&mut self, reason: &str) {
        for i in 0..self.nodes.len() {
            if self.states[i] == NodeState::Pending {
                self.states[i] = NodeState::Skipped;
                self.reasons[i] = Some(reason.to_owned());
            }
        }
    }

    /// The workflow's status (see the module docs).
    pub fn status(&self) -> WorkflowStatus {
        if !self.states.iter().all(|s| s.is_terminal()) {
            return WorkflowStatus::Running;
        }
        if self
            .states
            .iter()
            .any(|s| matches!(s, NodeState::Failed | NodeState::TimedOut))
        {
            WorkflowStatus::Failed
        } else if self.states.contains(&NodeState::Cancelled) {
            WorkflowStatus::Cancelled
        } else if self.states.iter().all(|s| *s == NodeState::Skipped) {
            WorkflowStatus::Skipped
        } else {
            WorkflowStatus::Succeeded
        }
    }
}

/// Two nodes wrote different values under the same key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("output {key} written twice with different values")]
pub struct MergeConflict {
    /// The namespaced key (`build.version`).
    pub key: String,
}

/// Adds `outputs` of node `group` (the definition's name, so every fan-out instance writes the
/// same namespace) as `<group>.<key>`. The same value twice is kept once; a different value
/// is a conflict, which fails the workflow.
pub fn merge_outputs(
    into: &mut BTreeMap<String, String>,
    group: &str,
    outputs: &BTreeMap<String, String>,
) -> Result<(), MergeConflict> {
    for (k, v) in outputs {
        let key = format!("{group}.{k}");
        match into.get(&key) {
            Some(existing) if existing != v => return Err(MergeConflict { key }),
            Some(_) => {}
            None => {
                into.insert(key, v.clone());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node<'a>(
        name: &'a str,
        deps: &'a [String],
        condition: &'a str,
        state: NodeState,
    ) -> PlanNode<'a> {
        PlanNode {
            name,
            group: name,
            depends_on: deps,
            condition,
            state,
        }
    }

    #[test]
    fn stored_nodes_decide_like_definitions_and_bad_ones_are_skipped() {
        let none: Vec<String> = Vec::new();
        let on_a = vec!["a".to_owned()];
        let on_ghost = vec!["ghost".to_owned()];
        let mut p = WorkflowPlan::from_nodes([
            node("a", &none, "all_success", NodeState::Failed),
            node("b", &on_a, "", NodeState::Pending),
            node("c", &on_a, "any_failed", NodeState::Pending),
            node("d", &on_a, "sometimes", NodeState::Pending),
            node("e", &on_ghost, "always", NodeState::Pending),
            node("f", &none, "always", NodeState::Pending),
        ]);
        p.skip(5, "cannot build");
        let started = p.next(10);
        assert_eq!(started, [2]);
        assert_eq!(p.skip_reason(1), Some("dependency a did not succeed"));
        assert_eq!(p.skip_reason(3), Some("unsupported condition sometimes"));
        assert_eq!(p.skip_reason(4), Some("unknown dependency ghost"));
        assert_eq!(p.skip_reason(5), Some("cannot build"));
        assert_eq!(p.status(), WorkflowStatus::Running);
        p.finish(2, NodeState::Succeeded);
        assert_eq!(p.status(), WorkflowStatus::Failed);
    }
}

//! Which steps run, and when: the scheduler's rules as a pure state machine, so the server,
//! the local runner and the tests share one implementation (semantics in `docs/JOBS.md`).
//!
//! - A step is ready when every dependency is finished (succeeded, failed, timed out,
//!   cancelled or skipped). Its condition then decides: `on_success` needs every dependency
//!   to have succeeded (a failure with `continue_on_error` counts as success, a skip does
//!   not, so skips cascade); `on_failure` needs something upstream to have failed (a
//!   dependency failed, or is itself downstream of a failure); `always` runs regardless.
//!   A step whose condition is false is skipped, with the reason.
//! - Ready steps start in definition order, at most `width` running at once.
//! - The job fails when any step failed or timed out without `continue_on_error`, is
//!   cancelled when cancelled, and succeeds otherwise.

use std::collections::HashMap;

use crate::definition::{Condition, JobDefinition};

/// The state of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepState {
    /// Not started.
    Pending,
    /// Running.
    Running,
    /// Exited 0.
    Succeeded,
    /// Exited non-zero, was killed, or hit a limit.
    Failed,
    /// Its own or the job's timeout fired.
    TimedOut,
    /// The job was cancelled while it ran.
    Cancelled,
    /// Its condition was false, or the job ended before it could start.
    Skipped,
}

impl StepState {
    /// Finished one way or another.
    pub fn is_terminal(self) -> bool {
        !matches!(self, StepState::Pending | StepState::Running)
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Running => "running",
            StepState::Succeeded => "succeeded",
            StepState::Failed => "failed",
            StepState::TimedOut => "timed_out",
            StepState::Cancelled => "cancelled",
            StepState::Skipped => "skipped",
        }
    }
}

/// How the job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    /// Every required step succeeded.
    Succeeded,
    /// A required step failed or timed out.
    Failed,
    /// The job was cancelled.
    Cancelled,
}

#[derive(Debug, Clone)]
struct Node {
    name: String,
    deps: Vec<usize>,
    condition: Condition,
    continue_on_error: bool,
}

/// The steps of one job and their states.
#[derive(Debug, Clone)]
pub struct Plan {
    nodes: Vec<Node>,
    states: Vec<StepState>,
    /// A failure happened at or upstream of this step (set when it finishes or is skipped).
    tainted: Vec<bool>,
    reasons: Vec<Option<String>>,
}

impl Plan {
    /// The plan of a validated definition (dependencies known, no cycle; unknown names are
    /// ignored, so an unvalidated definition cannot make it panic).
    pub fn new(def: &JobDefinition) -> Plan {
        let index: HashMap<&str, usize> = def
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_str(), i))
            .collect();
        let nodes: Vec<Node> = def
            .steps
            .iter()
            .map(|s| Node {
                name: s.name.clone(),
                deps: s
                    .depends_on
                    .iter()
                    .filter_map(|d| index.get(d.as_str()).copied())
                    .collect(),
                condition: s.condition,
                continue_on_error: s.continue_on_error,
            })
            .collect();
        let n = nodes.len();
        Plan {
            nodes,
            states: vec![StepState::Pending; n],
            tainted: vec![false; n],
            reasons: vec![None; n],
        }
    }

    /// Number of steps.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True for a job without steps.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The name of step `i`.
    pub fn name(&self, i: usize) -> &str {
        &self.nodes[i].name
    }

    /// The state of step `i`.
    pub fn state(&self, i: usize) -> StepState {
        self.states[i]
    }

    /// Why step `i` was skipped, if it was.
    pub fn skip_reason(&self, i: usize) -> Option<&str> {
        self.reasons[i].as_deref()
    }

    /// Decides what can happen now: skips steps whose condition is false (cascading within
    /// this call), then marks ready steps `Running`, in definition order, while fewer than
    /// `width` run. Returns the steps to start.
    pub fn next(&mut self, width: usize) -> Vec<usize> {
        let mut started = Vec::new();
        let mut changed = true;
        while changed {
            changed = false;
            let running = self
                .states
                .iter()
                .filter(|s| **s == StepState::Running)
                .count();
            let mut budget = width.saturating_sub(running);
            for i in 0..self.nodes.len() {
                if self.states[i] != StepState::Pending {
                    continue;
                }
                let deps = &self.nodes[i].deps;
                if !deps.iter().all(|&d| self.states[d].is_terminal()) {
                    continue;
                }
                match self.condition_holds(i) {
                    Err(reason) => {
                        self.skip(i, reason);
                        changed = true;
                    }
                    Ok(()) if budget > 0 => {
                        self.states[i] = StepState::Running;
                        budget -= 1;
                        started.push(i);
                    }
                    Ok(()) => {}
                }
            }
        }
        started
    }

    fn ok(&self, d: usize) -> bool {
        match self.states[d] {
            StepState::Succeeded => true,
            StepState::Failed | StepState::TimedOut => self.nodes[d].continue_on_error,
            _ => false,
        }
    }

    fn condition_holds(&self, i: usize) -> Result<(), String> {
        let node = &self.nodes[i];
        match node.condition {
            Condition::Always => Ok(()),
            Condition::OnSuccess => match node.deps.iter().find(|&&d| !self.ok(d)) {
                None => Ok(()),
                Some(&d) => Err(format!(
                    "dependency {} {}",
                    self.nodes[d].name,
                    self.states[d].as_str().replace('_', " ")
                )),
            },
            Condition::OnFailure => {
                if node.deps.iter().any(|&d| self.tainted[d]) {
                    Ok(())
                } else {
                    Err("nothing upstream failed".to_owned())
                }
            }
        }
    }

    fn skip(&mut self, i: usize, reason: String) {
        self.states[i] = StepState::Skipped;
        self.tainted[i] = self.nodes[i].deps.iter().any(|&d| self.tainted[d]);
        self.reasons[i] = Some(reason);
    }

    /// Records how a running step ended.
    pub fn finish(&mut self, i: usize, state: StepState) {
        debug_assert!(state.is_terminal() && state != StepState::Skipped);
        self.states[i] = state;
        let failed = match state {
            StepState::Failed | StepState::TimedOut => !self.nodes[i].continue_on_error,
            StepState::Cancelled => true,
            _ => false,
        };
        self.tainted[i] = failed || self.nodes[i].deps.iter().any(|&d| self.tainted[d]);
    }

    /// The job is over before its end (cancel, job timeout): every step not started is
    /// skipped with `reason`. Running steps are finished by the caller as they stop.
    pub fn abandon(&mut self, reason: &str) {
        for i in 0..self.nodes.len() {
            if self.states[i] == StepState::Pending {
                self.states[i] = StepState::Skipped;
                self.reasons[i] = Some(reason.to_owned());
            }
        }
    }

    /// True when no step is pending or running.
    pub fn is_finished(&self) -> bool {
        self.states.iter().all(|s| s.is_terminal())
    }

    /// The job's outcome (meaningful once [`Plan::is_finished`]).
    pub fn outcome(&self) -> JobOutcome {
        if self.states.contains(&StepState::Cancelled) {
            return JobOutcome::Cancelled;
        }
        let failed = self.nodes.iter().zip(&self.states).any(|(n, s)| {
            matches!(s, StepState::Failed | StepState::TimedOut) && !n.continue_on_error
        });
        if failed {
            JobOutcome::Failed
        } else {
            JobOutcome::Succeeded
        }
    }
}

#[cfg(test)]
mod tests;

//! The job definition document. Field names are the wire names; every struct refuses unknown
//! fields, so a typo is an error naming the path, never a silently ignored setting.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A job: sources to prepare, then steps run in the sandbox in dependency order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobDefinition {
    /// 1–100 characters of `[A-Za-z0-9_.-]`.
    #[schemars(length(min = 1, max = 100), regex(pattern = r"^[A-Za-z0-9_.-]+$"))]
    pub name: String,
    /// Free text, up to 1000 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1000))]
    pub description: Option<String>,
    /// What runs the steps (the native sandbox by default).
    #[serde(default)]
    pub executor: Executor,
    /// The code under test, prepared into `/job/src` (possibly untrusted).
    #[serde(default)]
    pub source: Source,
    /// Trusted CI code, prepared into `/job/ci` (read-only to steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_source: Option<Source>,
    /// Environment of every step (a step's own `env` overrides it).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Names of secrets the job needs; their values are given at submission (API body,
    /// `--secret-file`), injected as env variables of those names and masked everywhere.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// Network access for the steps; refused unless the operator's policy allows it.
    #[serde(default)]
    pub network: bool,
    /// Wall-clock limit of the whole job in seconds (the operator's maximum applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub timeout_secs: Option<u32>,
    /// Limits of each step's process tree and of the workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<JobLimits>,
    /// Most steps running at once; the operator's configured width when absent, and never
    /// above it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 64))]
    pub parallelism: Option<u32>,
    /// The steps, at least one.
    #[schemars(length(min = 1, max = 100))]
    pub steps: Vec<Step>,
    /// Files collected after the steps, relative to `/job`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<Artifact>,
    /// Commands run (sandboxed) at lifecycle phases.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<Hook>,
}

/// What runs the steps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Executor {
    /// The native Linux sandbox, one sandboxed process per step.
    #[default]
    Native,
    /// One Docker container for the job; each step is a process in it.
    Docker {
        /// Image reference, e.g. `voidrunner/gcc:12`.
        #[schemars(length(min = 1, max = 255))]
        image: String,
    },
}

/// Where code comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Source {
    /// Nothing is prepared.
    #[default]
    None,
    /// A git clone (protocols allowed by the operator; https and ssh by default).
    Git {
        /// Repository URL.
        #[schemars(length(min = 1, max = 2048))]
        url: String,
        /// Branch, tag or commit; the default branch when absent. Never starts with `-`.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 1, max = 255))]
        git_ref: Option<String>,
        /// Shallow clone of this many commits.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(min = 1))]
        depth: Option<u32>,
        /// Also clone submodules (off unless asked).
        #[serde(default)]
        submodules: bool,
    },
    /// The tar archive (optionally gzip-compressed) uploaded with the job.
    Tarball,
    /// A directory of the local machine (`voidrunner job run` only).
    Copy {
        /// Directory path, relative to the job file's directory or absolute.
        #[schemars(length(min = 1, max = 4096))]
        path: String,
    },
}

/// Per-step limits and workspace caps; absent fields take the operator's defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobLimits {
    /// Memory of a step's process tree in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 16))]
    pub memory_mb: Option<u32>,
    /// CPU cores of a step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.1))]
    pub cpu_cores: Option<f64>,
    /// Processes/threads of a step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_processes: Option<u32>,
    /// Output of a step kept and streamed, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1024))]
    pub max_output_bytes: Option<u64>,
    /// Size of the workspace in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub workspace_mb: Option<u32>,
    /// Files and directories in the workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_files: Option<u32>,
}

/// One command of the job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Unique within the job, 1–64 characters of `[A-Za-z0-9_.-]`.
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9_.-]+$"))]
    pub name: String,
    /// Shell command (`/bin/sh -c`), up to 64 KiB.
    #[schemars(length(min = 1, max = 65536))]
    pub command: String,
    /// Working directory relative to `/job` (default `src`); must stay inside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub working_dir: Option<String>,
    /// Steps that must be finished first (`needs` is an alias).
    #[serde(default, alias = "needs", skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// When it runs once its dependencies are finished.
    #[serde(default)]
    pub condition: Condition,
    /// Wall-clock limit of the step in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub timeout_secs: Option<u32>,
    /// A failure of this step does not fail the job nor skip its dependants.
    #[serde(default)]
    pub continue_on_error: bool,
    /// Extra environment of this step.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

/// When a step runs, decided once every dependency is finished.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// Every dependency succeeded (a skipped one did not: skips cascade).
    #[default]
    OnSuccess,
    /// Something upstream failed: a dependency failed, or was skipped because of a failure.
    OnFailure,
    /// Whatever happened upstream.
    Always,
}

/// Files to keep after the job: a path or a glob (`*` within a segment, `**` across
/// segments) relative to `/job`, e.g. `src/build/app` or `artifacts/**`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Artifact(#[schemars(length(min = 1, max = 1024))] pub String);

/// A user command run (sandboxed, in the workspace) at a lifecycle phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Hook {
    /// The phase.
    pub phase: HookPhase,
    /// Shell command.
    #[schemars(length(min = 1, max = 65536))]
    pub command: String,
    /// Wall-clock limit in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub timeout_secs: Option<u32>,
}

/// The lifecycle phases, in the order a job goes through them (`on_error` only after a
/// failure, `cleanup` always, last).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum HookPhase {
    /// Before the definition is validated (built-in hooks only).
    PreValidation,
    /// After validation (built-in hooks only).
    PostValidation,
    /// Before sources are prepared.
    PreSource,
    /// After sources are prepared.
    PostSource,
    /// Before the first step.
    PreExecution,
    /// After the last step.
    PostExecution,
    /// After any failure (a step, a hook, source preparation, a timeout).
    OnError,
    /// Always, last, also after cancel and timeout.
    Cleanup,
}

impl HookPhase {
    /// Every phase, in lifecycle order.
    pub const ALL: [HookPhase; 8] = [
        HookPhase::PreValidation,
        HookPhase::PostValidation,
        HookPhase::PreSource,
        HookPhase::PostSource,
        HookPhase::PreExecution,
        HookPhase::PostExecution,
        HookPhase::OnError,
        HookPhase::Cleanup,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            HookPhase::PreValidation => "pre_validation",
            HookPhase::PostValidation => "post_validation",
            HookPhase::PreSource => "pre_source",
            HookPhase::PostSource => "post_source",
            HookPhase::PreExecution => "pre_execution",
            HookPhase::PostExecution => "post_execution",
            HookPhase::OnError => "on_error",
            HookPhase::Cleanup => "cleanup",
        }
    }

    /// Whether a user command may run at this phase: not before the definition is valid.
    pub fn allows_user_hooks(self) -> bool {
        !matches!(self, HookPhase::PreValidation | HookPhase::PostValidation)
    }
}

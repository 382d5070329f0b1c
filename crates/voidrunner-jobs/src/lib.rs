//! CI jobs for VoidRunner: the job definition (YAML or JSON, one schema published as JSON
//! Schema and in the OpenAPI document), validation that reports every problem at once with
//! its path in the document, and the rules that decide which steps run (see `docs/JOBS.md`).
//!
//! Definitions and scheduling rules are pure; [`source`] prepares sources on disk (blocking
//! I/O and the `git` CLI: call it from a blocking task).

pub mod control;
mod definition;
mod glob;
pub mod link;
mod path;
mod plan;
pub mod retention;
pub mod runner;
pub mod scheduler;
pub mod server;
pub mod source;
pub mod trigger;
mod validate;
pub mod workflow;

pub use definition::{
    Artifact, Condition, Executor, Hook, HookPhase, JobDefinition, JobLimits, Source, Step,
};
pub use glob::glob_match;
pub use path::{PathError, workspace_relative};
pub use plan::{JobOutcome, Plan, StepState};
pub use validate::{Format, Problem, Problems, from_value, json_schema, parse};

/// The Python module made importable inside jobs (`import voidrunner_job`).
pub const PYTHON_MODULE: &str = include_str!("voidrunner_job.py");

//! Lifecycle hooks: one trait for the built-ins (artifact collection, workspace cleanup) and
//! for user commands declared in the definition, run in priority order (lowest first) at each
//! phase. A failing hook is recorded with its phase; the other hooks of a `cleanup` or
//! `on_error` phase still run, while a failure in an earlier phase stops that phase and the
//! job.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use tokio_util::sync::CancellationToken;

use super::artifacts::{ArtifactFile, collect};
use super::steps::{limits, run_command};
use super::{Job, JobEvent, JobFailure, JobReport};
use crate::definition::{HookPhase, JobDefinition};

/// What a hook may look at.
pub struct HookContext<'a> {
    pub(crate) job: &'a Job<'a>,
    /// Cancelled when the job is cancelled or times out (not for `cleanup`/`on_error`).
    pub cancel: CancellationToken,
    pub(crate) collected: &'a Mutex<Vec<ArtifactFile>>,
}

impl std::fmt::Debug for HookContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookContext")
            .field("job", &self.job.req.id)
            .finish_non_exhaustive()
    }
}

impl HookContext<'_> {
    /// Host path of the job's workspace (`/job` in the sandbox).
    pub fn workspace(&self) -> &Path {
        self.job.workspace.path()
    }
}

/// A lifecycle hook.
#[async_trait::async_trait]
pub trait LifecycleHook: Send + Sync {
    /// Name in reports.
    fn name(&self) -> String;
    /// Lower runs first.
    fn priority(&self) -> i32;
    /// Phases it runs at.
    fn phases(&self) -> Vec<HookPhase>;
    /// Runs at `phase`; an error is recorded as a failure of that phase.
    async fn run(&self, phase: HookPhase, ctx: &HookContext<'_>) -> Result<(), String>;
}

/// Copies the declared and attached artifacts out of the workspace.
struct CollectArtifacts;

#[async_trait::async_trait]
impl LifecycleHook for CollectArtifacts {
    fn name(&self) -> String {
        "artifacts".into()
    }
    fn priority(&self) -> i32 {
        900
    }
    fn phases(&self) -> Vec<HookPhase> {
        vec![HookPhase::PostExecution]
    }
    async fn run(&self, _: HookPhase, ctx: &HookContext<'_>) -> Result<(), String> {
        let files = collect(ctx.job)?;
        ctx.collected
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(files);
        Ok(())
    }
}

/// Removes the job socket so nothing can talk to the service after the job.
struct CloseSocket;

#[async_trait::async_trait]
impl LifecycleHook for CloseSocket {
    fn name(&self) -> String {
        "workspace".into()
    }
    fn priority(&self) -> i32 {
        1000
    }
    fn phases(&self) -> Vec<HookPhase> {
        vec![HookPhase::Cleanup]
    }
    async fn run(&self, _: HookPhase, ctx: &HookContext<'_>) -> Result<(), String> {
        match std::fs::remove_file(ctx.workspace().join(".voidrunner/control.sock")) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("removing the job socket: {e}")),
        }
    }
}

/// A command of the definition's `hooks`, run sandboxed like a step.
struct UserCommand {
    index: usize,
    phase: HookPhase,
    command: String,
    timeout_secs: Option<u32>,
}

#[async_trait::async_trait]
impl LifecycleHook for UserCommand {
    fn name(&self) -> String {
        format!("hooks[{}]", self.index)
    }
    fn priority(&self) -> i32 {
        100 + i32::try_from(self.index).unwrap_or(i32::MAX - 100)
    }
    fn phases(&self) -> Vec<HookPhase> {
        vec![self.phase]
    }
    async fn run(&self, phase: HookPhase, ctx: &HookContext<'_>) -> Result<(), String> {
        let who = format!("hook:{}", phase.as_str());
        let result = run_command(
            ctx.job,
            &who,
            &self.command,
            "/job/src",
            &[("VOIDRUNNER_PHASE".to_owned(), phase.as_str().to_owned())],
            limits(ctx.job, self.timeout_secs),
            ctx.cancel.clone(),
        )
        .await?;
        match result.verdict {
            voidrunner_sandbox::SandboxVerdict::Exited(0) => Ok(()),
            other => Err(format!("{} ended with {other:?}", self.name())),
        }
    }
}

/// The hooks of one job.
pub(crate) struct Hooks {
    list: Vec<Box<dyn LifecycleHook>>,
    collected: Arc<Mutex<Vec<ArtifactFile>>>,
}

impl Hooks {
    pub fn new(def: &JobDefinition) -> Self {
        let mut list: Vec<Box<dyn LifecycleHook>> =
            vec![Box::new(CollectArtifacts), Box::new(CloseSocket)];
        for (index, h) in def.hooks.iter().enumerate() {
            list.push(Box::new(UserCommand {
                index,
                phase: h.phase,
                command: h.command.clone(),
                timeout_secs: h.timeout_secs,
            }));
        }
        list.sort_by_key(|h| h.priority());
        Hooks {
            list,
            collected: Arc::default(),
        }
    }

    /// Runs every hook of `phase`; false when one failed (recorded in `report`).
    pub async fn run(
        &mut self,
        job: &Job<'_>,
        phase: HookPhase,
        cancel: &CancellationToken,
        report: &mut JobReport,
    ) -> bool {
        job.events.send(JobEvent::Phase(phase));
        let keep_going = matches!(phase, HookPhase::Cleanup | HookPhase::OnError);
        let ctx = HookContext {
            job,
            cancel: cancel.clone(),
            collected: &self.collected,
        };
        let mut ok = true;
        for hook in self.list.iter().filter(|h| h.phases().contains(&phase)) {
            if let Err(reason) = hook.run(phase, &ctx).await {
                report.failures.push(JobFailure {
                    phase: phase.as_str().to_owned(),
                    reason: format!("{}: {reason}", hook.name()),
                });
                ok = false;
                if !keep_going {
                    break;
                }
            }
        }
        ok
    }

    /// Artifacts collected so far.
    pub fn collected(&self) -> Vec<ArtifactFile> {
        self.collected
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

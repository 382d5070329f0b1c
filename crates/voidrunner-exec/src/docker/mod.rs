//! The Docker executor: one container per execution, over the Docker Engine API (`bollard`,
//! Unix socket), with the security settings of [`spec`] on every container.
//!
//! The code reaches the container on stdin, ahead of the program's own stdin: a fixed launcher
//! script copies exactly that many bytes into the work directory and `exec`s the program. So
//! images need `/bin/sh` and `dd` (busybox is enough).
//!
//! Compiled languages run as two containers with the same security settings: the compile
//! container receives the code the same way, runs the compiler (its output streamed with
//! `phase = Compile`, on stderr) and, when it succeeds, writes a tar archive of the work
//! directory to stdout; the run container unpacks that archive from stdin into its own work
//! directory, then runs the program. Compile images also need `tar`.

mod doctor;
mod reap;
mod routing;
mod run;
mod spec;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::Docker;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use doctor::{DockerReport, ImageStatus, doctor_report};
pub use routing::RoutingExecutor;
pub use spec::{COMPILE_LAUNCHER, LABEL_MANAGED, LABEL_NODE, LAUNCHER, UNPACK_LAUNCHER};

use crate::native::NativeConfig;
use crate::registry::{ExecutorKind, Language, LanguageRegistry, WORK_DIR};
use voidrunner_domain::Verdict;

use crate::{ExecOutcome, ExecRequest, Executor, OutputEvent, Phase, PhaseReport};

/// The seccomp profile shipped with the project (`docker/seccomp.json`): an allow-list that
/// keeps what Docker's default allows for ordinary programs and drops namespaces, mounts,
/// ptrace, keyrings, bpf, io_uring and non-Unix sockets. Passed inline, never as a path.
pub const SECCOMP_PROFILE: &str = include_str!("../../../../docker/seccomp.json");

/// Default engine socket.
pub const DEFAULT_SOCKET: &str = "unix:///var/run/docker.sock";

/// Operator settings of the Docker executor.
#[derive(Debug, Clone, PartialEq)]
pub struct DockerConfig {
    /// Engine socket, e.g. `unix:///var/run/docker.sock`.
    pub socket: String,
    /// `uid:gid` the program runs as inside the container (never root).
    pub user: String,
    /// This node's id, written into a label so a restarted node reaps its own containers.
    pub node_id: String,
    /// Containers of any node older than this are reaped too (a node that never came back).
    pub orphan_age: Duration,
    /// Limits a task does not choose (work dir and `/tmp` sizes, file size, open files, CPU
    /// floor), computed by the same rules as the native executor.
    pub limits: NativeConfig,
    /// Seccomp profile JSON (defaults to [`SECCOMP_PROFILE`]).
    pub seccomp_profile: String,
}

impl Default for DockerConfig {
    fn default() -> Self {
        Self {
            socket: DEFAULT_SOCKET.to_owned(),
            user: "1000:1000".to_owned(),
            node_id: "local".to_owned(),
            orphan_age: Duration::from_secs(3600),
            limits: NativeConfig::default(),
            seccomp_profile: SECCOMP_PROFILE.to_owned(),
        }
    }
}

impl DockerConfig {
    /// The numeric run ids; an unparsable or root `user` falls back to 1000:1000 so a typo can
    /// never run tasks as root.
    pub fn uid_gid(&self) -> (u32, u32) {
        let mut parts = self.user.split(':').map(str::parse::<u32>);
        match (parts.next(), parts.next()) {
            (Some(Ok(u)), Some(Ok(g))) if u != 0 && g != 0 => (u, g),
            (Some(Ok(u)), None) if u != 0 => (u, u),
            _ => (1000, 1000),
        }
    }
}

/// The engine could not be reached or refused a request.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// Connecting or talking to the engine failed.
    #[error("docker engine at {socket}: {source}")]
    Engine {
        /// The socket used.
        socket: String,
        /// What bollard reported.
        source: bollard::errors::Error,
    },
    /// The configured seccomp profile is not JSON.
    #[error("seccomp profile is not valid JSON: {0}")]
    Seccomp(#[from] serde_json::Error),
}

/// Runs executions in Docker containers (see the module doc).
#[derive(Debug, Clone)]
pub struct DockerExecutor {
    docker: Docker,
    registry: Arc<LanguageRegistry>,
    config: Arc<DockerConfig>,
    /// The profile, compacted to one line (it travels in a `security_opt` string).
    seccomp: Arc<str>,
}

/// Connects to the engine at `socket` and negotiates the API version (Debian 12's engine
/// speaks 1.41, older than bollard's default).
pub async fn connect(socket: &str) -> Result<Docker, DockerError> {
    let err = |source| DockerError::Engine {
        socket: socket.to_owned(),
        source,
    };
    let docker =
        Docker::connect_with_unix(socket, 120, bollard::API_DEFAULT_VERSION).map_err(err)?;
    docker.negotiate_version().await.map_err(err)
}

impl DockerExecutor {
    /// Connects to the engine (fails when it does not answer) and validates the seccomp
    /// profile. Call [`DockerExecutor::reap_orphans`] once at start.
    pub async fn connect(
        registry: Arc<LanguageRegistry>,
        config: DockerConfig,
    ) -> Result<Self, DockerError> {
        let value: serde_json::Value = serde_json::from_str(&config.seccomp_profile)?;
        let docker = connect(&config.socket).await?;
        Ok(Self {
            docker,
            registry,
            seccomp: value.to_string().into(),
            config: Arc::new(config),
        })
    }

    /// The engine client (for tests and `doctor`).
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// The configuration in use.
    pub fn config(&self) -> &DockerConfig {
        &self.config
    }

    /// Removes (force) every container labelled by VoidRunner that belongs to this node, or
    /// that is older than [`DockerConfig::orphan_age`] whatever its node: what a crashed or
    /// `kill -9`ed worker left behind. Returns how many were removed.
    pub async fn reap_orphans(&self) -> Result<usize, DockerError> {
        reap::reap_orphans(&self.docker, &self.config)
            .await
            .map_err(|source| DockerError::Engine {
                socket: self.config.socket.clone(),
                source,
            })
    }

    fn language(&self, name: &str) -> Result<(&Language, &str), Box<ExecOutcome>> {
        let lang = self
            .registry
            .get(name)
            .ok_or_else(|| ExecOutcome::boxed_error(format!("unknown language `{name}`")))?;
        if lang.executor != ExecutorKind::Docker {
            return Err(ExecOutcome::boxed_error(format!(
                "language `{}` is configured for the native executor",
                lang.name
            )));
        }
        let image = lang.image.as_deref().ok_or_else(|| {
            ExecOutcome::boxed_error(format!("language `{}` has no image", lang.name))
        })?;
        Ok((lang, image))
    }
}

#[async_trait::async_trait]
impl Executor for DockerExecutor {
    async fn execute(
        &self,
        req: ExecRequest,
        output: mpsc::Sender<OutputEvent>,
        cancel: CancellationToken,
    ) -> ExecOutcome {
        let (lang, image) = match self.language(&req.language) {
            Ok(l) => l,
            Err(outcome) => return *outcome,
        };
        if req.stdin_stream.is_some() {
            return ExecOutcome::sandbox_error(format!(
                "interactive stdin is not supported by the docker executor (language `{}`)",
                lang.name
            ));
        }
        if cancel.is_cancelled() {
            return ExecOutcome::cancelled();
        }
        let started = Instant::now();
        let paths = lang.template_paths();
        let source_path = format!("{WORK_DIR}/{}", lang.source_file);
        let run_limits = self.config.limits.run_limits(&req.limits);
        let compile_limits = (lang.compile.as_ref())
            .map(|c| self.config.limits.compile_limits(&c.limits))
            .unwrap_or(run_limits);
        let env = crate::env::compose(&lang.env, Some(&req.env))
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let phase = |phase, limits, capture_stdout| run::ContainerRun {
            docker: &self.docker,
            limits,
            output: &output,
            cancel: &cancel,
            phase,
            capture_stdout,
            started,
        };
        let mut phases = Vec::with_capacity(2);
        let mut input = req.code.into_bytes();
        let delivery = if let Some(compile) = &lang.compile {
            let limits = &compile_limits;
            let spec = spec::ContainerSpec {
                image,
                delivery: spec::Delivery::Compile {
                    path: &source_path,
                    len: input.len(),
                },
                argv: compile.command.expand(&paths),
                env: crate::env::compose(&compile.env, None)
                    .into_iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect(),
                limits,
            };
            let body = spec::container_body(&self.config, &self.seccomp, &spec);
            let workspace = Some(self.config.limits.workspace_bytes);
            let ran = phase(Phase::Compile, limits, workspace)
                .run(body, input)
                .await;
            let report = match ran.report {
                Ok(r) => r,
                Err(reason) => return ExecOutcome::sandbox_error(reason),
            };
            let failure = compile_failure(&report.verdict);
            phases.push(report);
            if let Some(verdict) = failure {
                return outcome(verdict, phases);
            }
            if cancel.is_cancelled() {
                return outcome(Verdict::Cancelled, phases);
            }
            input = ran.captured;
            spec::Delivery::Unpack { len: input.len() }
        } else {
            spec::Delivery::Source {
                path: &source_path,
                len: input.len(),
            }
        };
        let spec = spec::ContainerSpec {
            image,
            delivery,
            argv: lang.run.expand(&paths),
            env,
            limits: &run_limits,
        };
        let body = spec::container_body(&self.config, &self.seccomp, &spec);
        input.extend(req.stdin.unwrap_or_default());
        let ran = phase(Phase::Run, &run_limits, None).run(body, input).await;
        match ran.report {
            Ok(report) => {
                let verdict = report.verdict.clone();
                phases.push(report);
                outcome(verdict, phases)
            }
            Err(reason) => ExecOutcome::sandbox_error(reason),
        }
    }
}

/// The verdict of an execution whose compile phase did not succeed, by the native executor's
/// rule: a compiler that exits non-zero or dies of a signal is a `CompileError` (128 + signal
/// for a signal); limits and cancellation keep their own verdict. `None`: the compile succeeded.
fn compile_failure(v: &Verdict) -> Option<Verdict> {
    match v {
        Verdict::Exited { code: 0 } => None,
        Verdict::Exited { code } => Some(Verdict::CompileError { code: *code }),
        Verdict::Signaled { signal } => Some(Verdict::CompileError { code: 128 + signal }),
        other => Some(other.clone()),
    }
}

/// The outcome from the phases that ran; the last one gives the measurements (as the native
/// executor does).
fn outcome(verdict: Verdict, phases: Vec<PhaseReport>) -> ExecOutcome {
    let Some(last) = phases.last() else {
        return ExecOutcome {
            verdict,
            ..ExecOutcome::cancelled()
        };
    };
    let exit_code = match (&verdict, last.phase) {
        (Verdict::Exited { code }, Phase::Run) => Some(*code),
        _ => None,
    };
    ExecOutcome {
        verdict,
        exit_code,
        wall_time: last.wall_time,
        cpu_time: last.cpu_time,
        peak_memory_bytes: last.peak_memory_bytes,
        output_truncated: phases.iter().any(|p| p.output_truncated),
        samples: last.samples.clone(),
        phases,
    }
}

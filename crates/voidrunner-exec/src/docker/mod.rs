//! The Docker executor: one container per execution, over the Docker Engine API (`bollard`,
//! Unix socket), with the security settings of [`spec`] on every container.
//!
//! The code reaches the container on stdin, ahead of the program's own stdin: a fixed launcher
//! script copies exactly that many bytes into the work directory and `exec`s the program. So
//! images need `/bin/sh` and `dd` (busybox is enough). Compiled languages (a compile step) are
//! not supported by this executor yet.

mod doctor;
mod reap;
mod routing;
mod run;
mod spec;

use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use doctor::{DockerReport, ImageStatus, doctor_report};
pub use routing::RoutingExecutor;
pub use spec::{LABEL_MANAGED, LABEL_NODE, LAUNCHER};

use crate::native::NativeConfig;
use crate::registry::{ExecutorKind, Language, LanguageRegistry, WORK_DIR};
use crate::{ExecOutcome, ExecRequest, Executor, OutputEvent};

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

    fn language(&self, name: &str) -> Result<(&Language, &str), ExecOutcome> {
        let lang = self
            .registry
            .get(name)
            .ok_or_else(|| ExecOutcome::sandbox_error(format!("unknown language `{name}`")))?;
        if lang.executor != ExecutorKind::Docker {
            return Err(ExecOutcome::sandbox_error(format!(
                "language `{}` is configured for the native executor",
                lang.name
            )));
        }
        if lang.compile.is_some() {
            return Err(ExecOutcome::sandbox_error(format!(
                "language `{}` has a compile step, which the docker executor does not support yet",
                lang.name
            )));
        }
        let image = lang.image.as_deref().ok_or_else(|| {
            ExecOutcome::sandbox_error(format!("language `{}` has no image", lang.name))
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
            Err(outcome) => return outcome,
        };
        if cancel.is_cancelled() {
            return ExecOutcome::cancelled();
        }
        let paths = lang.template_paths();
        let source_path = format!("{WORK_DIR}/{}", lang.source_file);
        let limits = self.config.limits.run_limits(&req.limits);
        let env = crate::env::compose(&lang.env, Some(&req.env))
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let spec = spec::ContainerSpec {
            image,
            source_path: &source_path,
            code_len: req.code.len(),
            argv: lang.run.expand(&paths),
            env,
            limits: &limits,
        };
        let body = spec::container_body(&self.config, &self.seccomp, &spec);
        let mut input = req.code.into_bytes();
        input.extend(req.stdin.unwrap_or_default());
        let run = run::ContainerRun {
            docker: &self.docker,
            limits: &limits,
            output: &output,
            cancel: &cancel,
        };
        run.run(body, input).await
    }
}

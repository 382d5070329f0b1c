//! Picks the native or the Docker executor per language, as the registry says.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::registry::{ExecutorKind, LanguageRegistry};
use crate::{ExecOutcome, ExecRequest, Executor, OutputEvent};

/// The executor the worker pool holds when both kinds may be configured: each request goes to
/// the executor its language names (`executor = "native" | "docker"`).
#[derive(Debug, Clone)]
pub struct RoutingExecutor {
    registry: Arc<LanguageRegistry>,
    native: Arc<dyn Executor>,
    docker: Option<Arc<dyn Executor>>,
}

impl RoutingExecutor {
    /// `docker` is `None` when the deployment has no engine: Docker languages then fail with a
    /// `SandboxError` naming the reason (another node may have one).
    pub fn new(
        registry: Arc<LanguageRegistry>,
        native: Arc<dyn Executor>,
        docker: Option<Arc<dyn Executor>>,
    ) -> Self {
        Self {
            registry,
            native,
            docker,
        }
    }
}

#[async_trait::async_trait]
impl Executor for RoutingExecutor {
    async fn execute(
        &self,
        req: ExecRequest,
        output: mpsc::Sender<OutputEvent>,
        cancel: CancellationToken,
    ) -> ExecOutcome {
        let kind = self
            .registry
            .get(&req.language)
            .map(|l| (l.executor, l.name.clone()));
        match kind {
            Some((ExecutorKind::Docker, name)) => match &self.docker {
                Some(d) => d.execute(req, output, cancel).await,
                None => ExecOutcome::sandbox_error(format!(
                    "language `{name}` needs the docker executor, which is not configured on this node"
                )),
            },
            // Unknown languages get the native executor's own error.
            _ => self.native.execute(req, output, cancel).await,
        }
    }
}

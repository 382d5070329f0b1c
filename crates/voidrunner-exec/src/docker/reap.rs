//! Removal of containers a crashed or killed node left behind.

use std::collections::HashMap;

use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::query_parameters::{
    ListContainersOptionsBuilder, RemoveContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use futures::StreamExt;

use super::DockerConfig;
use super::spec::{LABEL_MANAGED, LABEL_NODE};

/// See [`super::DockerExecutor::reap_orphans`].
pub(super) async fn reap_orphans(
    docker: &Docker,
    cfg: &DockerConfig,
) -> Result<usize, BollardError> {
    let filters = HashMap::from([("label", vec![format!("{LABEL_MANAGED}=true")])]);
    let opts = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let cutoff = i64::try_from(now.saturating_sub(cfg.orphan_age.as_secs())).unwrap_or(0);
    let mut removed = 0;
    for c in docker.list_containers(Some(opts)).await? {
        let Some(id) = c.id else { continue };
        let mine = c
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_NODE))
            .is_some_and(|n| *n == cfg.node_id);
        let old = c.created.is_some_and(|t| t < cutoff);
        if mine || old {
            let opts = RemoveContainerOptionsBuilder::new()
                .force(true)
                .v(true)
                .build();
            match docker.remove_container(&id, Some(opts)).await {
                Ok(()) => {
                    tracing::info!(docker.container = %id, "removed orphan container {id}");
                    removed += 1;
                }
                // Already gone.
                Err(BollardError::DockerResponseServerError {
                    status_code: 404, ..
                }) => {}
                // A removal (e.g. a drop guard's) is under way: return once it is done.
                Err(BollardError::DockerResponseServerError {
                    status_code: 409, ..
                }) => {
                    let opts = WaitContainerOptionsBuilder::new()
                        .condition("removed")
                        .build();
                    let _ = docker.wait_container(&id, Some(opts)).next().await;
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

//! Artifact collection: files of the workspace matching the definition's `artifacts` globs,
//! plus those attached through the socket, copied out without following any link (each path
//! component is opened with `O_NOFOLLOW` by the workspace), with a size cap, and hashed.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::{Job, JobEvent};
use crate::glob::glob_match;
use crate::path::workspace_relative;

/// One collected file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ArtifactFile {
    /// Path relative to `/job`.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Lower-case hex SHA-256.
    pub sha256: String,
}

/// Regular files under `root`, relative, not following links, skipping `.voidrunner`.
fn files(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![String::new()];
    while let Some(rel) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(root.join(&rel)) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if path == ".voidrunner" {
                continue;
            }
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(t) if t.is_file() => out.push(path),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// Collects the job's artifacts into `<artifacts_dir>/<job id>/`.
pub(crate) fn collect(job: &Job<'_>) -> Result<Vec<ArtifactFile>, String> {
    let patterns: Vec<String> = job
        .req
        .definition
        .artifacts
        .iter()
        .filter_map(|a| workspace_relative(&a.0).ok())
        .collect();
    let attached = job.state.artifacts();
    let root = job.workspace.path();
    let wanted: Vec<String> = files(root)
        .into_iter()
        .filter(|f| attached.contains(f) || patterns.iter().any(|p| glob_match(p, f)))
        .collect();
    let dest = job.cfg.artifacts_dir.join(&job.req.id);
    let mut total: u64 = 0;
    let mut collected = Vec::new();
    for rel in wanted {
        let left = job.cfg.max_artifact_bytes.saturating_sub(total);
        let bytes = job
            .workspace
            .read_file(&rel, left.saturating_add(1))
            .map_err(|e| format!("{rel}: {e}"))?;
        let size = bytes.len() as u64;
        if size > left {
            return Err(format!(
                "artifacts exceed {} bytes (at {rel})",
                job.cfg.max_artifact_bytes
            ));
        }
        total += size;
        let out = dest.join(&rel);
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{rel}: {e}"))?;
        }
        std::fs::write(&out, &bytes).map_err(|e| format!("{rel}: {e}"))?;
        let file = ArtifactFile {
            path: rel,
            size,
            sha256: hex::encode(Sha256::digest(&bytes)),
        };
        job.events.send(JobEvent::Artifact(file.clone()));
        collected.push(file);
    }
    Ok(collected)
}

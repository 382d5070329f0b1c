//! `voidrunner doctor`'s Docker section: is the engine reachable, which version, and do the
//! images of the registry's Docker languages exist locally.

use std::fmt;

use crate::registry::{ExecutorKind, LanguageRegistry};

/// Whether one configured image exists on the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageStatus {
    /// Language name.
    pub language: String,
    /// Image reference from the registry.
    pub image: String,
    /// Present locally (the executor never pulls).
    pub present: bool,
}

/// The Docker section of `voidrunner doctor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerReport {
    /// Socket tried.
    pub socket: String,
    /// Engine version when reachable, or why not.
    pub engine: Result<String, String>,
    /// One entry per Docker language (empty when the engine is unreachable).
    pub images: Vec<ImageStatus>,
}

/// Asks the engine at `socket` for its version and for every Docker language's image.
pub async fn doctor_report(registry: &LanguageRegistry, socket: &str) -> DockerReport {
    let mut report = DockerReport {
        socket: socket.to_owned(),
        engine: Err(String::new()),
        images: Vec::new(),
    };
    let docker = match super::connect(socket).await {
        Ok(d) => d,
        Err(e) => {
            report.engine = Err(e.to_string());
            return report;
        }
    };
    report.engine = match docker.version().await {
        Ok(v) => Ok(format!(
            "{} (API {})",
            v.version.unwrap_or_default(),
            v.api_version.unwrap_or_default()
        )),
        Err(e) => Err(e.to_string()),
    };
    if report.engine.is_err() {
        return report;
    }
    for lang in registry
        .iter()
        .filter(|l| l.executor == ExecutorKind::Docker)
    {
        let Some(image) = &lang.image else { continue };
        report.images.push(ImageStatus {
            language: lang.name.clone(),
            image: image.clone(),
            present: docker.inspect_image(image).await.is_ok(),
        });
    }
    report
}

impl fmt::Display for DockerReport {
    /// `docker: engine 20.10.24 (API 1.41) at unix:///…` then one line per image.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.engine {
            Ok(v) => writeln!(f, "docker: engine {v} at {}", self.socket)?,
            Err(e) => writeln!(f, "docker: engine NOT reachable at {}: {e}", self.socket)?,
        }
        for i in &self.images {
            let state = if i.present { "present" } else { "MISSING" };
            writeln!(f, "  {:<12} image {} {state}", i.language, i.image)?;
        }
        Ok(())
    }
}

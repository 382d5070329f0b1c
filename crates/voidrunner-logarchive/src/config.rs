//! `[logs]`: when logs are archived, where the objects go, and how long they are kept.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;
use serde::Deserialize;

/// `[logs]`: archiving and retention of execution logs.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogsConfig {
    /// Run the archiver in this process (every `serve`/`worker` node may: archiving is
    /// idempotent and the database decides who wins).
    pub archive_enabled: bool,
    /// Logs of finished executions with at least this many output bytes move to object
    /// storage.
    pub archive_threshold_bytes: u64,
    /// Pause between archiver passes.
    pub archive_interval_secs: u64,
    /// Executions archived per pass at most.
    pub archive_batch: u32,
    /// Output of executions finished longer ago than this is deleted (0 = keep forever).
    pub retention_max_age_secs: u64,
    /// Oldest archives are deleted while the archived total exceeds this (0 = no cap).
    pub retention_max_total_bytes: u64,
    /// Pause between retention passes.
    pub retention_interval_secs: u64,
    /// Move the blobs of finished CI jobs (uploaded `source.tar`, artifacts) to the object
    /// store. Whatever this says, a node running background tasks deletes the objects of
    /// jobs that retention deleted.
    pub job_blobs_archive_enabled: bool,
    /// Job blobs with at least this many bytes move to object storage.
    pub job_blobs_threshold_bytes: u64,
    /// Job blobs archived per pass at most.
    pub job_blobs_batch: u32,
    /// Pause between job blob passes.
    pub job_blobs_interval_secs: u64,
    /// Where archived logs are stored.
    pub object_store: ObjectStoreConfig,
}

impl Default for LogsConfig {
    fn default() -> Self {
        Self {
            archive_enabled: true,
            archive_threshold_bytes: 1 << 20,
            archive_interval_secs: 60,
            archive_batch: 16,
            retention_max_age_secs: 0,
            retention_max_total_bytes: 0,
            retention_interval_secs: 300,
            job_blobs_archive_enabled: true,
            job_blobs_threshold_bytes: 64 << 10,
            job_blobs_batch: 32,
            job_blobs_interval_secs: 60,
            object_store: ObjectStoreConfig::default(),
        }
    }
}

impl LogsConfig {
    /// Pause between archiver passes (at least 100 ms).
    pub fn archive_interval(&self) -> Duration {
        Duration::from_secs(self.archive_interval_secs).max(Duration::from_millis(100))
    }

    /// Pause between retention passes (at least 100 ms).
    pub fn retention_interval(&self) -> Duration {
        Duration::from_secs(self.retention_interval_secs).max(Duration::from_millis(100))
    }

    /// Pause between job blob passes (at least 100 ms).
    pub fn job_blobs_interval(&self) -> Duration {
        Duration::from_secs(self.job_blobs_interval_secs).max(Duration::from_millis(100))
    }

    /// Whether any retention rule is on.
    pub fn retention_enabled(&self) -> bool {
        self.retention_max_age_secs > 0 || self.retention_max_total_bytes > 0
    }
}

/// `[logs.object_store]`: a local directory (default `<data_dir>/logs`) or an S3-compatible
/// bucket. S3 credentials come from these keys or, when unset, from the usual `AWS_*`
/// environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
/// `AWS_REGION`, `AWS_ENDPOINT`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObjectStoreConfig {
    /// `file:///absolute/dir`, `s3://bucket[/prefix]`, or unset for `<data_dir>/logs`.
    pub url: Option<String>,
    /// S3-compatible endpoint, e.g. `http://minio:9000` (unset: AWS).
    pub endpoint: Option<String>,
    /// S3 region (unset: `AWS_REGION` or `us-east-1`).
    pub region: Option<String>,
    /// S3 access key id.
    pub access_key_id: Option<String>,
    /// S3 secret access key.
    pub secret_access_key: Option<SecretString>,
    /// S3 session token (temporary credentials).
    pub session_token: Option<SecretString>,
    /// Path-style requests (`endpoint/bucket/key`), which MinIO and most S3-compatible
    /// servers need; AWS uses virtual-hosted style (`bucket.endpoint/key`).
    pub path_style: bool,
    /// Allow a plain `http://` endpoint (local S3-compatible servers).
    pub allow_http: bool,
}

/// A configuration string never printed by `Debug` (credentials).
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret value.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The value, only where it is used.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString([redacted])")
    }
}

/// Where objects go, as decided from the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A local directory (created if missing).
    Local(PathBuf),
    /// A bucket and a key prefix inside it (no leading or trailing `/`; may be empty).
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix.
        prefix: String,
    },
}

/// The object store settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The URL is not `file://…` or `s3://…`.
    #[error("logs.object_store.url: {0}")]
    Url(String),
    /// The local directory cannot be created.
    #[error("logs.object_store: creating {path}: {source}")]
    Dir {
        /// Directory.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// `object_store` refused the settings.
    #[error("logs.object_store: {0}")]
    Build(#[from] object_store::Error),
}

impl ObjectStoreConfig {
    /// Decides the target from `url` (pure: no IO).
    pub fn target(&self, data_dir: &Path) -> Result<Target, ConfigError> {
        let Some(raw) = self.url.as_deref().filter(|u| !u.is_empty()) else {
            return Ok(Target::Local(data_dir.join("logs")));
        };
        let url = url::Url::parse(raw).map_err(|e| ConfigError::Url(format!("{raw:?}: {e}")))?;
        match url.scheme() {
            "file" => {
                let path = url
                    .to_file_path()
                    .map_err(|()| ConfigError::Url(format!("{raw:?}: not an absolute path")))?;
                Ok(Target::Local(path))
            }
            "s3" => {
                let bucket = url
                    .host_str()
                    .filter(|b| !b.is_empty())
                    .ok_or_else(|| ConfigError::Url(format!("{raw:?}: no bucket")))?;
                Ok(Target::S3 {
                    bucket: bucket.to_owned(),
                    prefix: url.path().trim_matches('/').to_owned(),
                })
            }
            other => Err(ConfigError::Url(format!(
                "{raw:?}: scheme {other:?} is not file or s3"
            ))),
        }
    }

    /// Builds the object store (creates the local directory; never contacts S3).
    pub fn build(&self, data_dir: &Path) -> Result<Arc<dyn ObjectStore>, ConfigError> {
        match self.target(data_dir)? {
            Target::Local(path) => {
                std::fs::create_dir_all(&path).map_err(|source| ConfigError::Dir {
                    path: path.clone(),
                    source,
                })?;
                Ok(Arc::new(LocalFileSystem::new_with_prefix(&path)?))
            }
            Target::S3 { bucket, prefix } => {
                let s3 = self.s3_builder(&bucket).build()?;
                if prefix.is_empty() {
                    Ok(Arc::new(s3))
                } else {
                    Ok(Arc::new(PrefixStore::new(s3, prefix.as_str())))
                }
            }
        }
    }

    /// The S3 client settings: `AWS_*` environment first, then these keys.
    fn s3_builder(&self, bucket: &str) -> AmazonS3Builder {
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_virtual_hosted_style_request(!self.path_style)
            .with_allow_http(self.allow_http);
        if let Some(v) = &self.endpoint {
            b = b.with_endpoint(v);
        }
        if let Some(v) = &self.region {
            b = b.with_region(v);
        }
        if let Some(v) = &self.access_key_id {
            b = b.with_access_key_id(v);
        }
        if let Some(v) = &self.secret_access_key {
            b = b.with_secret_access_key(v.expose());
        }
        if let Some(v) = &self.session_token {
            b = b.with_token(v.expose());
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> LogsConfig {
        toml::from_str(toml_text).expect("parse")
    }

    #[test]
    fn defaults_archive_locally_and_keep_forever() {
        let c = parse("");
        assert!(c.archive_enabled);
        assert_eq!(c.archive_threshold_bytes, 1 << 20);
        assert!(!c.retention_enabled());
        assert!(c.job_blobs_archive_enabled);
        assert_eq!(c.job_blobs_threshold_bytes, 64 << 10);
        assert_eq!(
            c.object_store.target(Path::new("/d")).expect("target"),
            Target::Local(PathBuf::from("/d/logs"))
        );
    }

    #[test]
    fn urls_select_the_backend() {
        let t = |url: &str| {
            ObjectStoreConfig {
                url: Some(url.into()),
                ..ObjectStoreConfig::default()
            }
            .target(Path::new("/d"))
        };
        assert_eq!(
            t("file:///var/lib/vr/logs").expect("file"),
            Target::Local(PathBuf::from("/var/lib/vr/logs"))
        );
        assert_eq!(
            t("s3://my-bucket/vr/logs/").expect("s3"),
            Target::S3 {
                bucket: "my-bucket".into(),
                prefix: "vr/logs".into()
            }
        );
        assert_eq!(
            t("s3://b").expect("s3"),
            Target::S3 {
                bucket: "b".into(),
                prefix: String::new()
            }
        );
        for bad in ["gs://b/x", "not a url", "s3:///x"] {
            assert!(
                matches!(t(bad), Err(ConfigError::Url(_))),
                "{bad} is refused"
            );
        }
    }

    #[test]
    fn s3_section_builds_without_network_and_hides_secrets() {
        let c = parse(
            "retention_max_age_secs = 86400\n\
             [object_store]\nurl = \"s3://logs-bucket/prod\"\nendpoint = \"http://127.0.0.1:9\"\n\
             region = \"eu-west-1\"\naccess_key_id = \"AKIDEXAMPLE\"\n\
             secret_access_key = \"wJalrXUtnFEMI\"\npath_style = true\nallow_http = true\n",
        );
        assert!(c.retention_enabled());
        let debug = format!("{c:?}");
        assert!(!debug.contains("wJalrXUtnFEMI"), "{debug}");
        assert!(c.object_store.path_style);
        let store = c
            .object_store
            .build(Path::new("/nonexistent"))
            .expect("build");
        assert!(format!("{store}").contains("prod"), "{store}");
        let mut bare = c.object_store.clone();
        bare.url = Some("s3://logs-bucket".into());
        let store = bare.build(Path::new("/nonexistent")).expect("build");
        assert!(format!("{store}").contains("logs-bucket"), "{store}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<LogsConfig>("archive_treshold_bytes = 1").is_err());
        assert!(toml::from_str::<LogsConfig>("[object_store]\nbucket = \"x\"").is_err());
    }

    #[test]
    fn local_directory_is_created() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = LogsConfig::default();
        c.object_store.build(dir.path()).expect("build");
        assert!(dir.path().join("logs").is_dir());
    }
}

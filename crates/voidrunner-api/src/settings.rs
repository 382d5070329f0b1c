//! Operator settings of the HTTP API. The binary fills them from its layered configuration;
//! every field has a safe default so `ApiSettings::default()` is a working configuration.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize};
use voidrunner_domain::{LimitBounds, ResourceLimits, TaskCaps};

/// Everything the API layer can be configured with. Units are in the field names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSettings {
    /// Lifetime of access JWTs (default 15 minutes).
    pub access_token_ttl_secs: u64,
    /// Lifetime of refresh tokens (default 30 days).
    pub refresh_token_ttl_secs: u64,
    /// `iss` claim written and required in access tokens.
    pub jwt_issuer: String,
    /// `aud` claim written and required in access tokens.
    pub jwt_audience: String,
    /// Clock skew tolerated when checking `exp` (default 0).
    pub jwt_leeway_secs: u64,
    /// When true, the first account ever registered becomes an admin.
    pub first_user_admin: bool,
    /// Origins allowed by CORS (`https://app.example.com`); empty disables CORS headers,
    /// `*` allows any origin (without credentials).
    pub cors_allowed_origins: Vec<String>,
    /// Limit applied per client IP to every route except `/health` and `/ready`.
    pub rate_limit_per_ip: RateLimitSettings,
    /// Limit applied per authenticated user (after authentication).
    pub rate_limit_per_user: RateLimitSettings,
    /// Proxies whose `X-Forwarded-For` is believed (IPs or CIDRs, e.g. `10.0.0.1`,
    /// `10.0.0.0/8`). From anyone else the header is ignored and the peer is the client.
    #[serde(deserialize_with = "ip_or_cidr_list")]
    pub trusted_proxies: Vec<IpNet>,
    /// Request body allowance on top of `max_code_bytes` (default 1 MiB), so the body limit
    /// is `max_code_bytes + body_overhead_bytes`.
    pub body_overhead_bytes: usize,
    /// Maximum size of a task's code in bytes (default 1 MiB).
    pub max_code_bytes: usize,
    /// Maximum size of a task's stdin in bytes (default 1 MiB).
    pub max_stdin_bytes: usize,
    /// Maximum number of environment variables per task.
    pub max_env_vars: usize,
    /// Maximum size of one environment value in bytes.
    pub max_env_value_bytes: usize,
    /// Maximum total size of environment names and values in bytes.
    pub max_env_total_bytes: usize,
    /// Maximum number of tags per task.
    pub max_tags: usize,
    /// Maximum tag length in characters.
    pub max_tag_chars: usize,
    /// Maximum serialized metadata size in bytes.
    pub max_metadata_bytes: usize,
    /// Default and maximum resource limits of tasks. In configuration, any subset of fields
    /// may be given (`[limits.maxima] memory_mb = 8192`); the rest keep their defaults.
    #[serde(deserialize_with = "partial_bounds")]
    pub limits: LimitBounds,
    /// Languages tasks may use (filled from the language registry by the binary).
    pub allowed_languages: Vec<String>,
    /// Other accepted spellings of languages (`py = "python"`): requests may use them, the
    /// canonical name is stored. An alias whose target is not allowed is ignored.
    pub language_aliases: BTreeMap<String, String>,
    /// Runtime version per language name (`python = "3.11.2"`), shown by
    /// `GET /api/v1/languages`; filled by the binary when it knows them.
    pub language_versions: BTreeMap<String, String>,
    /// Languages whose runs cannot take live stdin (their executor is Docker): an
    /// `interactive: true` request for them is refused up front instead of failing on a
    /// worker. Filled by the binary from the registry; not a configuration key.
    #[serde(skip)]
    pub non_interactive_languages: std::collections::BTreeSet<String>,
    /// Claims an execution gets before it is dead-lettered (infrastructure failures only;
    /// a failing program is a result, never retried). At least 1; default 3.
    pub execution_max_attempts: u32,
    /// Longest `?wait=true` wait in seconds (default 60); larger `timeout_secs` are lowered
    /// to it. At least 1.
    pub max_wait_secs: u32,
    /// Whether a CI job may ask for `network: true` (default false: such jobs are refused
    /// with `422 definition.network`).
    pub jobs_allow_network: bool,
    /// Largest decoded source archive (`tarball_base64`) of a CI job in bytes (default
    /// 32 MiB); the job submission body may be that large (in base64) plus the usual body
    /// allowance.
    pub job_tarball_max_bytes: usize,
    /// argon2id cost parameters.
    pub password_hashing: PasswordHashSettings,
    /// Who may scrape `GET /metrics` (`[api.metrics]`).
    pub metrics: crate::metrics::MetricsSettings,
    /// Git events (`POST /api/v1/hooks/{source}`); the binary fills it from `[hooks]`.
    #[serde(skip)]
    pub hooks: HookSettings,
}

/// Git events and registered repositories (`[hooks]`; see `docs/GIT.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HookSettings {
    /// Protocols a repository's `clone_url` may use (`https`, `ssh`; `file` only for tests
    /// and trusted setups). The job workers must allow them too (`[jobs] git_protocols`).
    pub git_protocols: Vec<String>,
    /// Largest event body in bytes (default 5 MiB); larger ones get `413`.
    pub max_body_bytes: usize,
    /// Time allowed for all git commands of one event (default 120 s).
    pub git_timeout_secs: u64,
    /// Largest fetched repository in bytes (default 1 GiB).
    pub max_repo_bytes: u64,
    /// Changed files considered by path filters; with more, path filters do not apply
    /// (default 10 000).
    pub max_changed_files: usize,
    /// Events read from git at once on this node (default 4); others wait.
    pub concurrency: usize,
    /// Where temporary clones go (default: the system temporary directory).
    pub work_dir: Option<std::path::PathBuf>,
    /// Where the bare mirror of each repository is kept between events, so an event
    /// fetches only what is new (`serve` sets `<data_dir>/git-mirrors` when unset); `None`:
    /// every event fetches the whole repository into a temporary directory.
    pub mirror_dir: Option<std::path::PathBuf>,
    /// A kept mirror not used for this long is removed by the node's mirror cleaner
    /// (default 14 days; 0 = never), so the mirror of a URL no repository uses any more
    /// does not stay forever; one still in use is just fetched afresh.
    pub mirror_max_idle_secs: u64,
    /// A repository's host may resolve to loopback/private/link-local addresses (a
    /// self-hosted git server on the internal network); off by default.
    pub git_allow_private: bool,
    /// Commit statuses may go to loopback and private addresses (default false: the status
    /// API URL is a user's, so it gets the webhook dispatcher's SSRF guard).
    pub status_allow_private: bool,
    /// Received deliveries are kept this long (default 30 days; 0 = forever), then deleted
    /// by the retention cleaner: a redelivery of an older event is no longer recognised as
    /// a duplicate and starts its workflows again.
    pub delivery_retention_secs: u64,
}

impl Default for HookSettings {
    fn default() -> Self {
        Self {
            git_protocols: vec!["https".into(), "ssh".into()],
            max_body_bytes: 5 * 1024 * 1024,
            git_timeout_secs: 120,
            max_repo_bytes: 1024 * 1024 * 1024,
            max_changed_files: 10_000,
            concurrency: 4,
            work_dir: None,
            mirror_dir: None,
            mirror_max_idle_secs: 14 * 24 * 3600,
            git_allow_private: false,
            status_allow_private: false,
            delivery_retention_secs: 30 * 24 * 3600,
        }
    }
}

impl Default for ApiSettings {
    fn default() -> Self {
        let caps = TaskCaps::default();
        Self {
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            jwt_issuer: "voidrunner".to_owned(),
            jwt_audience: "voidrunner-api".to_owned(),
            jwt_leeway_secs: 0,
            first_user_admin: false,
            cors_allowed_origins: Vec::new(),
            rate_limit_per_ip: RateLimitSettings {
                enabled: true,
                requests_per_sec: 20.0,
                burst: 60,
            },
            rate_limit_per_user: RateLimitSettings {
                enabled: true,
                requests_per_sec: 10.0,
                burst: 40,
            },
            trusted_proxies: Vec::new(),
            body_overhead_bytes: 1024 * 1024,
            max_code_bytes: caps.max_code_bytes,
            max_stdin_bytes: caps.max_stdin_bytes,
            max_env_vars: caps.max_env_vars,
            max_env_value_bytes: caps.max_env_value_bytes,
            max_env_total_bytes: caps.max_env_total_bytes,
            max_tags: caps.max_tags,
            max_tag_chars: caps.max_tag_chars,
            max_metadata_bytes: caps.max_metadata_bytes,
            limits: LimitBounds::default(),
            allowed_languages: ["python", "javascript", "bash"].map(str::to_owned).to_vec(),
            language_aliases: BTreeMap::new(),
            language_versions: BTreeMap::new(),
            non_interactive_languages: std::collections::BTreeSet::new(),
            execution_max_attempts: 3,
            max_wait_secs: 60,
            jobs_allow_network: false,
            job_tarball_max_bytes: 32 * 1024 * 1024,
            password_hashing: PasswordHashSettings::default(),
            metrics: crate::metrics::MetricsSettings::default(),
            hooks: HookSettings::default(),
        }
    }
}

impl ApiSettings {
    /// The largest request body accepted: code plus room for the rest of the JSON.
    pub fn body_limit_bytes(&self) -> usize {
        self.max_code_bytes.saturating_add(self.body_overhead_bytes)
    }

    /// The largest job submission body: the tarball's base64 plus the usual allowance.
    pub fn job_body_limit_bytes(&self) -> usize {
        (self.job_tarball_max_bytes / 3 + 1)
            .saturating_mul(4)
            .saturating_add(self.body_limit_bytes())
    }

    /// The task caps in the shape the domain validation functions take.
    pub fn task_caps(&self) -> TaskCaps {
        TaskCaps {
            max_code_bytes: self.max_code_bytes,
            max_stdin_bytes: self.max_stdin_bytes,
            max_env_vars: self.max_env_vars,
            max_env_value_bytes: self.max_env_value_bytes,
            max_env_total_bytes: self.max_env_total_bytes,
            max_tags: self.max_tags,
            max_tag_chars: self.max_tag_chars,
            max_metadata_bytes: self.max_metadata_bytes,
        }
    }
}

/// A token bucket: `burst` requests at once, refilled at `requests_per_sec`. In
/// configuration all three fields are given together.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Off switch (e.g. behind a gateway that already limits).
    pub enabled: bool,
    /// Sustained rate.
    pub requests_per_sec: f64,
    /// Bucket size.
    pub burst: u32,
}

/// argon2id cost. Defaults follow the OWASP recommendation (19 MiB, 2 passes, 1 lane).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordHashSettings {
    /// Memory cost in KiB.
    pub memory_kib: u32,
    /// Number of passes.
    pub iterations: u32,
    /// Degree of parallelism.
    pub parallelism: u32,
}

impl Default for PasswordHashSettings {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// Accepts `10.0.0.1` as well as `10.0.0.0/8`.
fn ip_or_cidr_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| serde::de::Error::custom(format!("not an IP or CIDR: {s:?}")))
        })
        .collect()
}

/// Limit fields as configuration may give them: any subset, nothing unknown.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitOverrides {
    timeout_secs: Option<u32>,
    memory_mb: Option<u32>,
    cpu_cores: Option<f64>,
    max_processes: Option<u32>,
    max_output_bytes: Option<u64>,
}

impl LimitOverrides {
    fn apply(self, base: ResourceLimits) -> ResourceLimits {
        ResourceLimits {
            timeout_secs: self.timeout_secs.unwrap_or(base.timeout_secs),
            memory_mb: self.memory_mb.unwrap_or(base.memory_mb),
            cpu_cores: self.cpu_cores.unwrap_or(base.cpu_cores),
            max_processes: self.max_processes.unwrap_or(base.max_processes),
            max_output_bytes: self.max_output_bytes.unwrap_or(base.max_output_bytes),
        }
    }
}

/// Merges partially given defaults/maxima into [`LimitBounds::default`].
fn partial_bounds<'de, D: Deserializer<'de>>(d: D) -> Result<LimitBounds, D::Error> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Raw {
        #[serde(default)]
        defaults: LimitOverrides,
        #[serde(default)]
        maxima: LimitOverrides,
    }
    let raw = Raw::deserialize(d)?;
    let base = LimitBounds::default();
    Ok(LimitBounds {
        defaults: raw.defaults.apply(base.defaults),
        maxima: raw.maxima.apply(base.maxima),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_configuration_keeps_defaults() {
        let s: ApiSettings = serde_json::from_value(serde_json::json!({
            "first_user_admin": true,
            "trusted_proxies": ["10.0.0.1", "192.168.0.0/16"],
            "limits": {"maxima": {"memory_mb": 8192}},
        }))
        .expect("valid");
        assert!(s.first_user_admin);
        assert_eq!(s.trusted_proxies.len(), 2);
        assert_eq!(s.limits.maxima.memory_mb, 8192);
        assert_eq!(s.limits.maxima.timeout_secs, 300);
        assert_eq!(s.limits.defaults, LimitBounds::default().defaults);
        assert_eq!(s.access_token_ttl_secs, 900);
        assert_eq!(s.body_limit_bytes(), 2 * 1024 * 1024);
    }

    #[test]
    fn unknown_and_malformed_settings_are_rejected() {
        for bad in [
            serde_json::json!({"acess_token_ttl_secs": 1}),
            serde_json::json!({"trusted_proxies": ["not-an-ip"]}),
            serde_json::json!({"limits": {"maxima": {"disk_mb": 1}}}),
        ] {
            assert!(serde_json::from_value::<ApiSettings>(bad).is_err());
        }
    }
}

//! Layered configuration: built-in defaults → TOML file (`--config`) → `VOIDRUNNER_*`
//! environment → command-line flags. Later layers win, key by key.
//!
//! Every layer is turned into a TOML table and deep-merged, then the result is deserialized
//! once into [`Config`] with unknown keys refused, so a typo in any layer is an error that
//! names the key instead of a silently ignored setting.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;
use toml::{Table, Value};

/// The commented example printed by `voidrunner config example`; a test keeps it loadable.
pub const EXAMPLE: &str = include_str!("config_example.toml");

/// Prefix of every environment variable the service reads.
const ENV_PREFIX: &str = "VOIDRUNNER_";

/// Short environment names for the settings people set most, mapped to their keys.
/// Anything else is reachable as `VOIDRUNNER_<SECTION>__<KEY>` (double underscore nests).
const ENV_ALIASES: &[(&str, &str)] = &[
    ("DATABASE_URL", "store.url"),
    ("LISTEN", "server.listen"),
    ("DATA_DIR", "server.data_dir"),
    ("JWT_SECRET", "auth.jwt_secret"),
    ("LOG", "log.level"),
    ("LOG_FORMAT", "log.format"),
];

/// The whole service configuration.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listener and local state.
    pub server: ServerConfig,
    /// Database selection.
    pub store: StoreConfig,
    /// Token signing.
    pub auth: AuthConfig,
    /// Logging.
    pub log: LogConfig,
    /// HTTP API: tokens, rate limits, validation caps, resource limit bounds.
    pub api: voidrunner_api::ApiSettings,
    /// Language registry.
    pub languages: LanguagesConfig,
    /// Sandbox identity and scratch space.
    pub sandbox: crate::engine::SandboxSection,
    /// Worker pool (embedded in `serve`, or a standalone `worker` node).
    pub worker: voidrunner_worker::WorkerConfig,
    /// Optional Docker executor.
    pub docker: crate::engine::DockerSection,
    /// Webhook delivery of finished executions (`callback_url`).
    pub webhooks: voidrunner_webhooks::WebhookConfig,
    /// Log archiving (object storage) and retention.
    pub logs: voidrunner_logarchive::LogsConfig,
    /// CI job worker.
    pub jobs: crate::engine::JobsSection,
    /// Git events (`POST /api/v1/hooks/{source}`, see docs/GIT.md).
    pub hooks: voidrunner_api::HookSettings,
}

/// `[languages]`
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LanguagesConfig {
    /// Operator TOML file merged over the built-in registry (see `voidrunner-exec`'s README):
    /// add languages, replace built-ins by name, or list names under `disabled`.
    pub file: Option<PathBuf>,
}

/// `[server]`
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Directory for the SQLite database and the generated JWT secret.
    pub data_dir: PathBuf,
    /// How long in-flight requests may take to finish after SIGINT/SIGTERM.
    pub shutdown_grace_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            shutdown_grace_secs: 30,
        }
    }
}

/// `[store]`
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `postgres://…`, `sqlite://path`, or empty for `<data_dir>/voidrunner.db`.
    pub url: Option<Secret>,
    /// Connection pool size.
    pub max_connections: u32,
    /// `serve` applies pending migrations at start. Turn off where a deploy step runs
    /// `voidrunner migrate` once before rolling out many nodes.
    pub auto_migrate: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 10,
            auto_migrate: true,
        }
    }
}

/// Which backend a store URL selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreTarget {
    /// Embedded SQLite database file.
    Sqlite(PathBuf),
    /// PostgreSQL connection URL.
    Postgres(String),
}

impl StoreConfig {
    /// Decides the backend from the URL (or the default SQLite file under `data_dir`).
    pub fn target(&self, data_dir: &Path) -> anyhow::Result<StoreTarget> {
        let Some(url) = self
            .url
            .as_ref()
            .map(Secret::expose)
            .filter(|u| !u.is_empty())
        else {
            return Ok(StoreTarget::Sqlite(data_dir.join("voidrunner.db")));
        };
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(StoreTarget::Postgres(url.to_owned()));
        }
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                bail!("store.url: sqlite URL has no path");
            }
            return Ok(StoreTarget::Sqlite(PathBuf::from(path)));
        }
        bail!("store.url: expected postgres://…, postgresql://… or sqlite://path")
    }
}

/// `[auth]`
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// HMAC key for access tokens. When unset, one is generated on first start and kept in
    /// `<data_dir>/jwt-secret` with owner-only permissions.
    pub jwt_secret: Option<Secret>,
}

/// `[log]`
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` for people, `pretty` for a developer's terminal, `json` for log pipelines.
    pub format: LogFormat,
    /// `tracing` filter directive, e.g. `info` or `voidrunner=debug,info`.
    pub level: String,
    /// OTLP/HTTP collector base URL (spans go to `<url>/v1/traces`); unset = no export.
    /// Needs a binary built with the `otel` feature.
    pub otlp_endpoint: Option<String>,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".to_owned(),
            otlp_endpoint: None,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable compact lines.
    Text,
    /// Multi-line human-readable records with span context (development).
    Pretty,
    /// One JSON object per line.
    Json,
}

/// A configuration string that must never be printed (JWT key, database URL with password).
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret value; call only where it is used, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// The inputs of [`load`]: one per layer above the defaults.
#[derive(Debug, Default)]
pub struct Layers {
    /// `--config FILE` contents source.
    pub file: Option<PathBuf>,
    /// Environment variables (all of them; non-`VOIDRUNNER_` ones are ignored).
    pub env: Vec<(String, String)>,
    /// Flag values as dotted keys, e.g. `("server.listen", "0.0.0.0:8080")`.
    pub flags: Vec<(&'static str, Value)>,
}

/// Merges the layers and deserializes the result.
pub fn load(layers: &Layers) -> anyhow::Result<Config> {
    let mut merged = Table::new();
    if let Some(path) = &layers.file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        let table: Table =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        deep_merge(&mut merged, table);
    }
    deep_merge(&mut merged, env_table(&layers.env)?);
    for (key, value) in &layers.flags {
        set_dotted(&mut merged, key, value.clone())?;
    }
    Config::deserialize(Value::Table(merged)).context("invalid configuration")
}

/// Turns `VOIDRUNNER_*` variables into a table. Values that parse as TOML (numbers, booleans,
/// arrays) keep their type; everything else is a string. Aliased keys are always strings.
fn env_table(env: &[(String, String)]) -> anyhow::Result<Table> {
    let mut table = Table::new();
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if let Some((_, key)) = ENV_ALIASES.iter().find(|(alias, _)| *alias == rest) {
            set_dotted(&mut table, key, Value::String(raw.clone()))?;
        } else if rest.contains("__") {
            let key = rest
                .split("__")
                .map(str::to_ascii_lowercase)
                .collect::<Vec<_>>()
                .join(".");
            set_dotted(&mut table, &key, parse_env_value(raw))
                .with_context(|| format!("environment variable {name}"))?;
        }
        // Other VOIDRUNNER_* names (e.g. VOIDRUNNER_CONFIG, VOIDRUNNER_TEST_DATABASE_URL)
        // belong to other consumers.
    }
    Ok(table)
}

fn parse_env_value(raw: &str) -> Value {
    toml::from_str::<Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(raw.to_owned()))
}

fn set_dotted(table: &mut Table, key: &str, value: Value) -> anyhow::Result<()> {
    let mut parts = key.split('.').peekable();
    let mut current = table;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            current.insert(part.to_owned(), value);
            return Ok(());
        }
        let entry = current
            .entry(part.to_owned())
            .or_insert_with(|| Value::Table(Table::new()));
        current = match entry {
            Value::Table(t) => t,
            _ => bail!("{key}: {part} is not a section"),
        };
    }
    bail!("empty configuration key")
}

fn deep_merge(base: &mut Table, over: Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(b)), Value::Table(o)) => deep_merge(b, o),
            (_, v) => {
                base.insert(key, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_need_no_configuration() {
        let cfg = load(&Layers::default()).expect("defaults load");
        assert_eq!(cfg.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(cfg.server.data_dir, PathBuf::from("./data"));
        assert_eq!(
            cfg.store.target(&cfg.server.data_dir).expect("target"),
            StoreTarget::Sqlite(PathBuf::from("./data/voidrunner.db"))
        );
    }

    #[test]
    fn example_is_valid_and_complete() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, EXAMPLE).expect("write");
        load(&Layers {
            file: Some(path),
            ..Default::default()
        })
        .expect("example loads");
    }

    #[test]
    fn layers_override_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[server]\nlisten = \"127.0.0.1:1000\"\ndata_dir = \"/file\"\nshutdown_grace_secs = 5\n",
        )
        .expect("write");
        let layers = Layers {
            file: Some(path),
            env: env(&[
                ("VOIDRUNNER_DATA_DIR", "/env"),
                ("VOIDRUNNER_SERVER__SHUTDOWN_GRACE_SECS", "7"),
                ("VOIDRUNNER_LISTEN", "127.0.0.1:2000"),
                ("VOIDRUNNER_TEST_DATABASE_URL", "ignored"),
                ("HOME", "/root"),
            ]),
            flags: vec![("server.listen", Value::String("127.0.0.1:3000".into()))],
        };
        let cfg = load(&layers).expect("load");
        assert_eq!(
            cfg.server.listen.to_string(),
            "127.0.0.1:3000",
            "flag beats env and file"
        );
        assert_eq!(cfg.server.data_dir, PathBuf::from("/env"), "env beats file");
        assert_eq!(cfg.server.shutdown_grace_secs, 7, "nested env var is typed");
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key() {
        let layers = Layers {
            env: env(&[("VOIDRUNNER_SERVER__LISTN", "x")]),
            ..Default::default()
        };
        let err = format!("{:#}", load(&layers).expect_err("typo"));
        assert!(err.contains("listn"), "{err}");
    }

    #[test]
    fn store_url_selects_backend() {
        let cfg = |url: &str| StoreConfig {
            url: Some(Secret(url.into())),
            ..StoreConfig::default()
        };
        let d = Path::new("/d");
        assert_eq!(
            cfg("postgres://u:p@h/db").target(d).expect("pg"),
            StoreTarget::Postgres("postgres://u:p@h/db".into())
        );
        assert_eq!(
            cfg("sqlite:///tmp/x.db").target(d).expect("sqlite"),
            StoreTarget::Sqlite(PathBuf::from("/tmp/x.db"))
        );
        assert!(cfg("mysql://x").target(d).is_err());
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let layers = Layers {
            env: env(&[(
                "VOIDRUNNER_JWT_SECRET",
                "123456789012345678901234567890123456",
            )]),
            ..Default::default()
        };
        let cfg = load(&layers).expect("load");
        assert!(!format!("{cfg:?}").contains("1234567890"));
        assert_eq!(
            cfg.auth.jwt_secret.as_ref().map(Secret::expose),
            Some("123456789012345678901234567890123456")
        );
    }
}

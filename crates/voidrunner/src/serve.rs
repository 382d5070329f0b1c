//! `voidrunner serve` and `voidrunner migrate`: open the configured store, then run the API
//! until SIGINT/SIGTERM.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use voidrunner_api::{ApiContext, JwtSecret};
use voidrunner_exec::LanguageRegistry;
use voidrunner_store::Store;
use voidrunner_store_postgres::{PostgresOptions, PostgresStore};
use voidrunner_store_sqlite::{SqliteOptions, SqliteStore};
use voidrunner_worker::WorkerPool;

use crate::config::{Config, StoreTarget};
use crate::engine::{build_executor, start_pool};
use crate::secret::resolve_jwt_secret;

/// Whether opening the store also applies migrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrations {
    /// Apply pending migrations (serve, migrate).
    Apply,
    /// Leave the schema alone.
    Skip,
}

/// Opens the backend the configuration selects.
pub async fn open_store(cfg: &Config, migrations: Migrations) -> anyhow::Result<Arc<dyn Store>> {
    let target = cfg.store.target(&cfg.server.data_dir)?;
    let store: Arc<dyn Store> = match &target {
        StoreTarget::Sqlite(path) => {
            let opts = SqliteOptions {
                max_read_connections: cfg.store.max_connections,
                ..SqliteOptions::default()
            };
            let store = SqliteStore::connect(path, opts)
                .await
                .with_context(|| format!("opening SQLite database {}", path.display()))?;
            if migrations == Migrations::Apply {
                store
                    .migrate()
                    .await
                    .context("applying SQLite migrations")?;
            }
            tracing::info!(store.backend = "sqlite", db.path = %path.display(), "store ready: sqlite {}", path.display());
            Arc::new(store)
        }
        StoreTarget::Postgres(url) => {
            let opts = PostgresOptions {
                max_connections: cfg.store.max_connections,
                ..PostgresOptions::default()
            };
            let store = PostgresStore::connect(url, opts)
                .await
                .context("connecting to PostgreSQL")?;
            if migrations == Migrations::Apply {
                store
                    .migrate()
                    .await
                    .context("applying PostgreSQL migrations")?;
            }
            tracing::info!(store.backend = "postgres", "store ready: postgres");
            Arc::new(store)
        }
    };
    Ok(store)
}

fn migrations_for(cfg: &Config) -> Migrations {
    if cfg.store.auto_migrate {
        Migrations::Apply
    } else {
        Migrations::Skip
    }
}

/// `voidrunner migrate`.
pub async fn migrate(cfg: &Config) -> anyhow::Result<()> {
    let store = open_store(cfg, Migrations::Apply).await?;
    store
        .ping()
        .await
        .context("checking the store after migrating")?;
    println!("migrations applied ({})", store.backend_name());
    Ok(())
}

/// `voidrunner serve`: runs the API (and the embedded worker pool unless
/// `worker.concurrency = 0`) until `shutdown` resolves (normally SIGINT/SIGTERM), then gives
/// in-flight requests `server.shutdown_grace_secs` to finish and drains the pool.
pub async fn serve(
    cfg: Config,
    registry: Arc<LanguageRegistry>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let store = open_store(&cfg, migrations_for(&cfg)).await?;
    let available = registry.available();
    // One registry for the API and the embedded pool, served at `GET /metrics`.
    let metrics = voidrunner_metrics::Metrics::new();
    let secret_box = load_secret_box(&cfg.server.data_dir)?;
    let mut jobs = None;
    let pool = if cfg.worker.concurrency > 0 {
        let node_id = voidrunner_worker::default_node_id();
        let sandbox = crate::engine::build_sandbox(&cfg.sandbox)?;
        jobs = crate::engine::start_job_worker(
            &cfg.jobs,
            &cfg.server.data_dir,
            store.clone(),
            sandbox.clone(),
            secret_box.clone(),
            &node_id,
        );
        let executor =
            build_executor(&cfg.sandbox, &cfg.docker, registry, &node_id, sandbox).await?;
        Some(start_pool(
            store.clone(),
            executor,
            node_id,
            cfg.worker.clone(),
            Some(metrics.clone()),
            secret_box.clone(),
        )?)
    } else {
        tracing::info!("no embedded worker pool (worker.concurrency = 0): API-only node");
        None
    };
    let secret = resolve_jwt_secret(
        cfg.auth.jwt_secret.as_ref().map(|s| s.expose()),
        &cfg.server.data_dir,
    )?;
    let retention =
        crate::engine::start_retention(&cfg.jobs, &cfg.hooks, store.clone(), Some(metrics.clone()));
    let mut settings = cfg.api;
    settings.hooks = cfg.hooks;
    settings
        .hooks
        .mirror_dir
        .get_or_insert_with(|| cfg.server.data_dir.join("git-mirrors"));
    let names = available.iter().map(|l| l.name.clone()).collect();
    settings.allowed_languages = resolve_languages(&settings.allowed_languages, names)?;
    for lang in available {
        if !lang.interactive {
            settings.non_interactive_languages.insert(lang.name.clone());
        }
        for alias in &lang.aliases {
            settings
                .language_aliases
                .insert(alias.clone(), lang.name.clone());
        }
        settings.language_versions.insert(lang.name, lang.version);
    }
    let (log_reader, log_tasks) = voidrunner_logarchive::start(
        &cfg.logs,
        &cfg.server.data_dir,
        store.clone(),
        Some(metrics.clone()),
        true,
    )?;
    let (webhook_key, webhooks) = voidrunner_webhooks::start(
        &cfg.webhooks,
        &cfg.server.data_dir,
        store.clone(),
        Some(metrics.clone()),
    )
    .context("starting webhooks")?;
    let ctx = ApiContext::new(store, settings, JwtSecret::new(secret))
        .context("invalid [api] configuration")?
        .with_log_reader(log_reader)
        .with_metrics(metrics)
        .with_secret_box(secret_box)
        .with_webhook_key(webhook_key);
    let listener = tokio::net::TcpListener::bind(cfg.server.listen)
        .await
        .with_context(|| format!("binding {}", cfg.server.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    tracing::info!(http.addr = %addr, "voidrunner listening on http://{addr}");

    let (stop_tx, mut stop_rx) = watch::channel(false);
    let signal = async move {
        shutdown.await;
        tracing::info!("shutdown requested: draining in-flight requests");
        let _ = stop_tx.send(true);
    };
    // The web UI answers GET requests outside the API; everything else reaches the API.
    if !voidrunner_web::is_built() {
        tracing::warn!("web UI not built: `/` serves a page saying how to build it");
    }
    // Commit statuses to git hosts are posted from the database by every API node.
    let statuses = voidrunner_api::StatusReconciler::start(ctx.clone());
    let app = voidrunner_web::with_ui(voidrunner_api::router(ctx));
    let server = voidrunner_web::serve(listener, app, signal);
    let grace = Duration::from_secs(cfg.server.shutdown_grace_secs);
    let deadline = async move {
        let _ = stop_rx.wait_for(|stopped| *stopped).await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        res = server => res.context("HTTP server failed")?,
        () = deadline => tracing::warn!(grace_secs = grace.as_secs(), "grace period over: closing remaining connections"),
    }
    statuses.stop().await;
    if let Some(jobs) = jobs {
        jobs.stop().await;
    }
    if let Some(pool) = pool {
        drain(pool).await;
    }
    if let Some(retention) = retention {
        retention.stop().await;
    }
    log_tasks.stop().await;
    if let Some(webhooks) = webhooks {
        webhooks.shutdown().await;
    }
    tracing::info!("voidrunner stopped");
    Ok(())
}

/// `voidrunner worker`: a worker node with no HTTP API. Runs until `shutdown`, then drains.
pub async fn worker(
    cfg: Config,
    registry: Arc<LanguageRegistry>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if cfg.worker.concurrency == 0 {
        anyhow::bail!("worker.concurrency: a worker node needs at least one slot");
    }
    let store = open_store(&cfg, migrations_for(&cfg)).await?;
    if store.backend_name() == "sqlite" {
        tracing::warn!(
            "standalone worker on SQLite: wake-ups from other processes are not delivered, \
             claims rely on polling (worker.poll_interval_ms); use PostgreSQL for multi-process setups"
        );
    }
    let node_id = voidrunner_worker::default_node_id();
    let sandbox = crate::engine::build_sandbox(&cfg.sandbox)?;
    let executor = build_executor(
        &cfg.sandbox,
        &cfg.docker,
        registry,
        &node_id,
        sandbox.clone(),
    )
    .await?;
    let secret_box = load_secret_box(&cfg.server.data_dir)?;
    let jobs = crate::engine::start_job_worker(
        &cfg.jobs,
        &cfg.server.data_dir,
        store.clone(),
        sandbox,
        secret_box.clone(),
        &node_id,
    );
    let (_, log_tasks) =
        voidrunner_logarchive::start(&cfg.logs, &cfg.server.data_dir, store.clone(), None, true)?;
    let retention = crate::engine::start_retention(&cfg.jobs, &cfg.hooks, store.clone(), None);
    let (_, webhooks) =
        voidrunner_webhooks::start(&cfg.webhooks, &cfg.server.data_dir, store.clone(), None)
            .context("starting webhooks")?;
    let pool = start_pool(
        store,
        executor,
        node_id,
        cfg.worker.clone(),
        None,
        secret_box,
    )?;
    shutdown.await;
    tracing::info!("shutdown requested: draining the worker pool");
    if let Some(jobs) = jobs {
        jobs.stop().await;
    }
    drain(pool).await;
    if let Some(retention) = retention {
        retention.stop().await;
    }
    log_tasks.stop().await;
    if let Some(webhooks) = webhooks {
        webhooks.shutdown().await;
    }
    tracing::info!("worker stopped");
    Ok(())
}

async fn drain(pool: WorkerPool) {
    let report = pool.shutdown().await;
    tracing::info!(worker.drain = ?report, "worker pool drained: {report:?}");
}

/// The registry's available languages are what tasks may use. An operator who lists
/// `api.allowed_languages` explicitly narrows that list; naming a language the registry cannot
/// run is a start-up error rather than tasks that can never run.
fn resolve_languages(configured: &[String], available: Vec<String>) -> anyhow::Result<Vec<String>> {
    let untouched = voidrunner_api::ApiSettings::default().allowed_languages;
    if configured.is_empty() || configured == untouched.as_slice() {
        return Ok(available);
    }
    if let Some(missing) = configured.iter().find(|l| !available.contains(l)) {
        anyhow::bail!(
            "api.allowed_languages: `{missing}` is not an available language (available: {})",
            available.join(", ")
        );
    }
    Ok(configured.to_vec())
}

/// Installs the SIGINT and SIGTERM handlers now (so a signal that arrives during start-up is
/// not lost to the default action) and returns a future that resolves on either.
pub fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {},
            _ = term.recv() => {},
        }
    })
}

/// The key sealing per-task secrets, `<data_dir>/secrets.key` (32 random bytes, mode 0600),
/// created on first use. Every API and worker node of one deployment must use the same file:
/// a worker with another key cannot open a task's secrets, and such executions are retried
/// and finally dead-lettered rather than run without them.
fn load_secret_box(data_dir: &Path) -> anyhow::Result<Arc<voidrunner_mask::SecretBox>> {
    ensure_data_dir(data_dir)?;
    let path = data_dir.join("secrets.key");
    let key = voidrunner_mask::load_or_create_key(&path)
        .with_context(|| format!("loading the secrets key {}", path.display()))?;
    Ok(Arc::new(voidrunner_mask::SecretBox::new(&key)))
}

/// The data directory must exist before SQLite or the key file are created in it.
pub fn ensure_data_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

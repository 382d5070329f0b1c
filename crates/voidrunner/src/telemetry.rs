//! Tracing setup: log lines on stderr (`text`: compact lines, `pretty`: multi-line for a
//! developer's terminal, `json`: one object per line with the current span and the whole span
//! list, so a worker's line carries the `request_id` of the API call that enqueued its
//! execution), filtered by `log.level`; and optionally spans exported over OTLP/HTTP
//! (`log.otlp_endpoint`, cargo feature `otel`).

use anyhow::Context;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogConfig, LogFormat};

/// Keeps the exporter alive; dropping it flushes spans not yet sent (call at exit).
#[must_use = "dropping the guard shuts the span exporter down"]
#[derive(Debug, Default)]
pub struct Telemetry {
    #[cfg(feature = "otel")]
    otel: Option<otel::Guard>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        #[cfg(feature = "otel")]
        if let Some(guard) = self.otel.take() {
            guard.shutdown();
        }
    }
}

fn filter(cfg: &LogConfig) -> anyhow::Result<EnvFilter> {
    match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => EnvFilter::try_new(v),
        _ => EnvFilter::try_new(&cfg.level),
    }
    .context("log.level: invalid filter directive")
}

/// The stderr layer for `format`.
fn fmt_layer<S>(format: LogFormat) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let base = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    match format {
        LogFormat::Text => base.boxed(),
        LogFormat::Pretty => base.pretty().boxed(),
        LogFormat::Json => base
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .boxed(),
    }
}

/// Installs the global subscriber. `RUST_LOG`, when set, wins over `log.level`. Keep the
/// returned guard until exit.
pub fn init(cfg: &LogConfig) -> anyhow::Result<Telemetry> {
    let registry = tracing_subscriber::registry()
        .with(fmt_layer(cfg.format))
        .with(filter(cfg)?);
    let endpoint = cfg.otlp_endpoint.as_deref().filter(|e| !e.is_empty());
    #[cfg(feature = "otel")]
    if let Some(endpoint) = endpoint {
        let (layer, guard) = otel::layer(endpoint)?;
        registry
            .with(layer)
            .try_init()
            .map_err(|e| anyhow::anyhow!("installing the log subscriber: {e}"))?;
        tracing::info!(otel.endpoint = %endpoint, "exporting spans over OTLP/HTTP to {endpoint}");
        return Ok(Telemetry { otel: Some(guard) });
    }
    #[cfg(not(feature = "otel"))]
    if endpoint.is_some() {
        anyhow::bail!(
            "log.otlp_endpoint is set but this binary was built without the `otel` feature"
        );
    }
    registry
        .try_init()
        .map_err(|e| anyhow::anyhow!("installing the log subscriber: {e}"))?;
    Ok(Telemetry::default())
}

#[cfg(feature = "otel")]
mod otel {
    //! OTLP/HTTP (protobuf) span export through `tracing-opentelemetry`.

    use anyhow::Context;
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::{Protocol, WithExportConfig};
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::Layer;

    /// Owns the tracer provider; [`Guard::shutdown`] flushes the batch.
    #[derive(Debug)]
    pub struct Guard(SdkTracerProvider);

    impl Guard {
        /// Flushes pending spans and stops the exporter.
        pub fn shutdown(self) {
            if let Err(e) = self.0.shutdown() {
                eprintln!("voidrunner: flushing spans to the OTLP endpoint failed: {e}");
            }
        }
    }

    /// The layer exporting spans to `<endpoint>/v1/traces`.
    pub fn layer<S>(endpoint: &str) -> anyhow::Result<(Box<dyn Layer<S> + Send + Sync>, Guard)>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a> + Send + Sync,
    {
        let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(url)
            .build()
            .context("log.otlp_endpoint: building the OTLP exporter")?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(Resource::builder().with_service_name("voidrunner").build())
            .build();
        let tracer = provider.tracer("voidrunner");
        let layer = tracing_opentelemetry::layer().with_tracer(tracer).boxed();
        Ok((layer, Guard(provider)))
    }
}

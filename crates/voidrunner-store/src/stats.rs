//! Aggregates for dashboards (`GET /api/v1/stats`) and per-execution resource timelines.

/// Dashboard statistics and resource samples.
#[async_trait::async_trait]
pub trait StatsStore {}

//! Liveness and readiness probes.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `/health`: the process is up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HealthResponse {
    /// Always `ok`.
    pub status: String,
    /// Server version.
    pub version: String,
}

/// `/ready`: the store answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReadyResponse {
    /// Always `ready` (a store failure is a 503 error envelope).
    pub status: String,
    /// Store backend name: `sqlite` or `postgres`.
    pub store: String,
}

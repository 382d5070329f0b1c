//! `GET /api/v1/languages`: what `language` may name.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use voidrunner_domain::LimitBounds;

use crate::LimitsResponse;

/// One enabled language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LanguageResponse {
    /// The name to send as `language`.
    pub name: String,
    /// Runtime version, when the server knows it.
    pub version: Option<String>,
    /// Other accepted spellings (stored as `name`).
    pub aliases: Vec<String>,
}

/// `GET /api/v1/languages`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LanguageListResponse {
    /// Enabled languages, in configuration order.
    pub items: Vec<LanguageResponse>,
    /// The server's default and maximum resource limits, so a client (the web UI's task
    /// editor) can show the allowed range before a request is rejected.
    pub limits: LimitBoundsResponse,
}

/// Default and maximum resource limits (`limits.defaults` / `limits.maxima` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LimitBoundsResponse {
    /// Used for limit fields a request leaves out.
    pub defaults: LimitsResponse,
    /// Inclusive upper bounds of every limit field.
    pub maxima: LimitsResponse,
}

impl From<LimitBounds> for LimitBoundsResponse {
    fn from(b: LimitBounds) -> Self {
        Self {
            defaults: b.defaults.into(),
            maxima: b.maxima.into(),
        }
    }
}

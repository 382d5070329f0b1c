//! `GET /api/v1/languages`: what `language` may name.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LanguageListResponse {
    /// Enabled languages, in configuration order.
    pub items: Vec<LanguageResponse>,
}

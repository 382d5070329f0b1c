//! The storage error type: drivers' errors are mapped to it once, inside each backend.

/// Result alias for store methods.
pub type StoreResult<T> = Result<T, StoreError>;

/// What can go wrong in storage, as far as callers need to distinguish.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist, is soft-deleted, or is outside the caller's scope.
    #[error("not found")]
    NotFound,
    /// A uniqueness or state conflict; the message names what conflicted (safe to show).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database could not be reached or failed; the source is for logs only.
    #[error("store unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl StoreError {
    /// Wraps any driver error as [`StoreError::Unavailable`].
    pub fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Unavailable(Box::new(e))
    }
}

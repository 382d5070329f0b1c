//! The one place where sqlx/PostgreSQL errors become [`StoreError`].

use sqlx::error::ErrorKind;
use voidrunner_store::StoreError;

/// Which unique constraint (by name prefix) means what, in words that are safe to show to a
/// client.
const UNIQUE_MESSAGES: &[(&str, &str)] = &[
    ("users_email", "email already registered"),
    ("users_pkey", "user already exists"),
    ("refresh_tokens_", "refresh token already exists"),
    ("api_keys_", "api key already exists"),
    ("tasks_", "task already exists"),
    ("executions_", "execution already exists"),
    ("execution_logs_", "log chunk already exists"),
];

/// Maps a driver error: missing row → `NotFound`, constraint violation → `Conflict` with a
/// safe message, everything else (IO, pool timeout, serialization, corrupt data) →
/// `Unavailable`.
pub(crate) fn map_sqlx(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(db) => match db.kind() {
            ErrorKind::UniqueViolation => {
                let constraint = db.constraint().unwrap_or_default();
                let safe = UNIQUE_MESSAGES
                    .iter()
                    .find(|(prefix, _)| constraint.starts_with(prefix))
                    .map_or("already exists", |(_, safe)| safe);
                StoreError::Conflict(safe.to_owned())
            }
            ErrorKind::ForeignKeyViolation => {
                StoreError::Conflict("referenced record does not exist".to_owned())
            }
            _ => StoreError::unavailable(e),
        },
        _ => StoreError::unavailable(e),
    }
}

/// A stored value that cannot be turned back into a domain value (corrupt or foreign data).
#[derive(Debug, thiserror::Error)]
#[error("invalid stored value in column {column}: {reason}")]
pub(crate) struct DecodeError {
    /// Column name.
    pub column: &'static str,
    /// What was wrong.
    pub reason: String,
}

/// Builds the `Unavailable` error for a corrupt stored value.
pub(crate) fn corrupt(column: &'static str, reason: impl ToString) -> StoreError {
    StoreError::unavailable(DecodeError {
        column,
        reason: reason.to_string(),
    })
}

//! `/api/v1/tasks`: CRUD with validation, access scopes and cursor pagination.

pub(crate) mod handlers;
pub(crate) mod input;
pub(crate) mod query;
pub(crate) mod secrets;

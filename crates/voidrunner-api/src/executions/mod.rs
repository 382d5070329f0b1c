//! Executions: enqueue (for a task or one-shot `/run`), optional synchronous wait, read,
//! list, cancel; the admin dead-letter endpoints. The API never runs code: workers claim
//! what is enqueued here and record results through the store.

pub(crate) mod admin;
pub(crate) mod handlers;
pub(crate) mod input;
pub(crate) mod logs;
pub(crate) mod metrics;
pub(crate) mod query;
pub(crate) mod range;
pub(crate) mod stream;
pub(crate) mod user_stream;
pub(crate) mod wait;
pub(crate) mod ws;

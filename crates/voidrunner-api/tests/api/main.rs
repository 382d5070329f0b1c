//! API integration tests: one binary, the real server on port 0, a fresh database per test,
//! every test body run against SQLite and (when configured) PostgreSQL.

mod helpers;

mod api_keys;
mod auth;
mod cancel;
mod edge;
mod executions;
mod hooks;
mod interactive;
mod job_runs;
mod jobs;
mod jwt;
mod metrics;
mod openapi;
mod pagination;
mod queue;
mod run;
mod secrets;
mod sse;
mod stats;
mod stream;
mod system;
mod tasks;
mod validation;
mod webhooks;
mod workflows;

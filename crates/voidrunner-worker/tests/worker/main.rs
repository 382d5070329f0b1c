//! Worker pool integration tests: real stores (SQLite always, PostgreSQL when configured),
//! the real native executor over the real sandbox, and a fault executor only for failures
//! that cannot be caused for real. No sleeps as synchronisation: every wait polls a condition
//! with a deadline.

mod executors;
mod helpers;

mod cancel;
mod cluster;
mod crash;
mod drain;
mod e2e;
mod faults;
mod interactive;
mod masking;
mod metrics;
mod scheduling;

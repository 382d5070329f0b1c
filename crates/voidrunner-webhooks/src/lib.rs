//! Webhook delivery for VoidRunner: when an execution with a `callback_url` finishes, the
//! database records a pending delivery (same transaction); the [`Dispatcher`] of any `serve`
//! or `worker` process claims it with a lease, POSTs the final execution as JSON, signed per
//! user with HMAC-SHA256, and records the outcome, retrying with exponential backoff and
//! jitter.
//!
//! Safety rules:
//! - The target host is resolved by us and every address is checked ([`guard`]): loopback,
//!   private, link-local, CGNAT, unspecified, multicast, broadcast, documentation and other
//!   special ranges (and their IPv4-mapped / NAT64 / 6to4 forms) are refused unless
//!   `allow_private` is on. The connection goes to the checked address (pinned), so a second
//!   DNS answer cannot redirect it, and redirects are never followed.
//! - Signing secrets are derived per user from one server key ([`WebhookKey`]); the server key
//!   never leaves the process and is never logged.

mod classify;
mod config;
mod dispatcher;
pub mod guard;
mod keyfile;
mod send;
mod signing;
mod start;

pub use classify::{Disposition, classify_status};
pub use config::WebhookConfig;
pub use dispatcher::{Dispatcher, DispatcherHandle};
pub use keyfile::{KEY_FILE, KeyFileError, load_or_create as load_or_create_key};
pub use signing::{
    EVENT_FINISHED, HEADER_DELIVERY, HEADER_EVENT, HEADER_SIGNATURE, HEADER_TIMESTAMP, KeyError,
    WebhookKey, sign, verify,
};
pub use start::{StartError, resolve_key, start};

//! The HTTP edge: request ids and request logging, client IP resolution, rate limits, CORS,
//! and the JSON answers for unknown routes and wrong methods.

pub(crate) mod client_ip;
pub(crate) mod cors;
pub(crate) mod middleware;
pub(crate) mod rate_limit;

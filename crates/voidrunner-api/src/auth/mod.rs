//! Authentication: accounts, sessions (access JWT + rotating refresh token) and API keys.

pub(crate) mod api_keys;
pub(crate) mod extract;
pub(crate) mod handlers;
pub(crate) mod password;
pub(crate) mod tokens;

pub use extract::{AuthMethod, AuthUser};

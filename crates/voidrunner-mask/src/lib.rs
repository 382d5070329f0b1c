//! Secret masking for program output, and encryption at rest for secret values.
//!
//! Program output is untrusted and may print any secret the task was given. Everything that is
//! stored or streamed goes through a [`StreamMasker`] first: one streaming Aho–Corasick pass that
//! replaces every occurrence of every secret with `***`, even when the output arrives in chunks
//! that split a secret. Secret values themselves are kept sealed with a [`SecretBox`]
//! (AES-256-GCM) and only opened to inject them into a run. See `README.md` for the algorithm and
//! its guarantees.

mod crypto;
mod keyfile;
mod secrets;
mod stream;

pub use crypto::{CryptoError, KEY_LEN, KeyId, SecretBox, SecretKey};
pub use keyfile::{KeyFileError, load_or_create_key};
pub use secrets::{
    DEFAULT_MAX_VALUES, MAX_SECRET_LEN, MIN_SECRET_LEN, Matcher, REPLACEMENT, SecretError,
    SecretRegistry, SecretSet,
};
pub use stream::StreamMasker;
pub use zeroize::Zeroizing;

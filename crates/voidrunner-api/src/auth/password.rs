//! argon2id password hashing, always run on the blocking pool so a login never stalls the
//! async workers.

use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use rand::RngCore;

use crate::error::ApiError;
use crate::settings::PasswordHashSettings;

/// Hashes and verifies passwords with fixed argon2id parameters.
#[derive(Clone)]
pub(crate) struct PasswordHasher {
    params: Params,
    /// Hash of a random password, verified against when the email is unknown so both paths
    /// cost the same.
    dummy_hash: String,
}

impl PasswordHasher {
    pub(crate) fn new(s: PasswordHashSettings) -> Result<Self, argon2::Error> {
        let params = Params::new(s.memory_kib, s.iterations, s.parallelism, None)?;
        let mut random = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut random);
        let dummy_hash = hash_blocking(&params, &hex::encode(random))
            .map_err(|_| argon2::Error::OutputTooShort)?;
        Ok(Self { params, dummy_hash })
    }

    /// Hashes a new password (PHC string).
    pub(crate) async fn hash(&self, password: String) -> Result<String, ApiError> {
        let params = self.params.clone();
        tokio::task::spawn_blocking(move || hash_blocking(&params, &password))
            .await
            .map_err(ApiError::internal)?
            .map_err(|e| ApiError::internal(format!("argon2 hash: {e}")))
    }

    /// Verifies `password` against `hash`, or against the dummy hash when `hash` is `None`
    /// (then always false), doing the same work either way.
    pub(crate) async fn verify(
        &self,
        hash: Option<String>,
        password: String,
    ) -> Result<bool, ApiError> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.clone());
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash).is_ok_and(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
        })
        .await
        .map_err(ApiError::internal)?;
        Ok(known && ok)
    }
}

fn hash_blocking(params: &Params, password: &str) -> Result<String, argon2::password_hash::Error> {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt)?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
}

//! Access JWTs (HS256 only, issuer/audience/expiry checked) and the opaque secrets (refresh
//! tokens, API keys) that are stored only as SHA-256 hashes.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use voidrunner_domain::{Role, Timestamp, UserId};

use crate::context::JwtSecret;
use crate::settings::ApiSettings;

/// Prefix of every API key, so keys are recognisable (and greppable by secret scanners).
pub(crate) const API_KEY_PREFIX: &str = "vr_";

/// Claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AccessClaims {
    pub(crate) sub: String,
    pub(crate) role: String,
    pub(crate) iss: String,
    pub(crate) aud: String,
    pub(crate) iat: i64,
    pub(crate) exp: i64,
}

/// Signing and verification keys with the one accepted algorithm pinned.
#[derive(Clone)]
pub(crate) struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl_secs: u64,
}

impl JwtKeys {
    pub(crate) fn new(secret: &JwtSecret, settings: &ApiSettings) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&settings.jwt_issuer]);
        validation.set_audience(&[&settings.jwt_audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = settings.jwt_leeway_secs;
        validation.validate_exp = true;
        Self {
            encoding: EncodingKey::from_secret(secret.expose()),
            decoding: DecodingKey::from_secret(secret.expose()),
            validation,
            issuer: settings.jwt_issuer.clone(),
            audience: settings.jwt_audience.clone(),
            ttl_secs: settings.access_token_ttl_secs,
        }
    }

    /// Access token lifetime.
    pub(crate) fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    /// Signs an access token for `user`.
    pub(crate) fn issue(
        &self,
        user: UserId,
        role: Role,
        now: Timestamp,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let iat = now.timestamp();
        let claims = AccessClaims {
            sub: user.to_string(),
            role: role.as_str().to_owned(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat,
            exp: iat.saturating_add(i64::try_from(self.ttl_secs).unwrap_or(i64::MAX)),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// Verifies signature, algorithm, issuer, audience and expiry; `None` for anything else.
    pub(crate) fn verify(&self, token: &str) -> Option<(UserId, Role)> {
        let data =
            jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation).ok()?;
        let user = data.claims.sub.parse().ok()?;
        let role = Role::parse(&data.claims.role)?;
        Some((user, role))
    }
}

/// 32 random bytes, base64url without padding.
pub(crate) fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A fresh API key: `vr_` + 43 base64url characters.
pub(crate) fn new_api_key() -> String {
    format!("{API_KEY_PREFIX}{}", random_secret())
}

/// What is stored instead of a secret: lower-case hex SHA-256.
pub(crate) fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(settings: &ApiSettings) -> JwtKeys {
        JwtKeys::new(&JwtSecret::new(vec![7u8; 32]), settings)
    }

    #[test]
    fn issued_token_verifies_and_other_audience_does_not() {
        let settings = ApiSettings::default();
        let k = keys(&settings);
        let user = UserId::new();
        let token = k
            .issue(user, Role::Admin, voidrunner_store::now())
            .expect("sign");
        assert_eq!(k.verify(&token), Some((user, Role::Admin)));
        let other = keys(&ApiSettings {
            jwt_audience: "other".into(),
            ..ApiSettings::default()
        });
        assert_eq!(other.verify(&token), None);
    }

    #[test]
    fn secrets_are_random_and_hashed() {
        let a = random_secret();
        assert_ne!(a, random_secret());
        assert_eq!(a.len(), 43);
        assert_eq!(hash_secret(&a).len(), 64);
        assert!(new_api_key().starts_with("vr_"));
    }
}

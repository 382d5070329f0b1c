//! Signing: one server key, one derived secret per user, one signature per delivery.
//!
//! - The user's secret is `whsec_` + hex(HMAC-SHA256(server key, "voidrunner-webhook-v1:" +
//!   user id)). Deriving it (instead of storing one per user) needs no table and no migration;
//!   rotating the server key rotates every user's secret.
//! - The signature of a delivery is `sha256=` + hex(HMAC-SHA256(secret, "<timestamp>.<body>"))
//!   where the HMAC key is the secret string's bytes as shown to the user, `timestamp` the
//!   `X-VoidRunner-Timestamp` header (unix seconds) and `body` the exact request body. The
//!   timestamp is signed so a receiver can refuse old replays.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use voidrunner_domain::UserId;
use zeroize::Zeroizing;

type HmacSha256 = Hmac<Sha256>;

/// Header naming the event (`execution.finished`).
pub const HEADER_EVENT: &str = "x-voidrunner-event";
/// Header carrying the delivery id (the execution id).
pub const HEADER_DELIVERY: &str = "x-voidrunner-delivery";
/// Header carrying the signed unix timestamp (seconds).
pub const HEADER_TIMESTAMP: &str = "x-voidrunner-timestamp";
/// Header carrying `sha256=<hex>`.
pub const HEADER_SIGNATURE: &str = "x-voidrunner-signature";
/// The only event so far.
pub const EVENT_FINISHED: &str = "execution.finished";

/// Minimum length of the server key.
const MIN_KEY_BYTES: usize = 32;

/// A server key that is too short.
#[derive(Debug, thiserror::Error)]
#[error("the webhook key must be at least {MIN_KEY_BYTES} bytes, got {len}")]
pub struct KeyError {
    /// Length given.
    pub len: usize,
}

/// The server's webhook key, from which every user's signing secret is derived. `Debug`
/// never prints it; the bytes are wiped on drop.
#[derive(Clone)]
pub struct WebhookKey(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for WebhookKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookKey([redacted])")
    }
}

impl WebhookKey {
    /// Wraps key bytes (at least 32).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, KeyError> {
        let bytes = Zeroizing::new(bytes.into());
        if bytes.len() < MIN_KEY_BYTES {
            return Err(KeyError { len: bytes.len() });
        }
        Ok(Self(bytes))
    }

    /// A fresh random key (for processes that were not given one, e.g. tests).
    pub fn random() -> Self {
        use rand::RngCore;
        let mut bytes = vec![0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(Zeroizing::new(bytes))
    }

    /// The signing secret of `user`, as shown to them.
    pub fn user_secret(&self, user: UserId) -> String {
        let mut mac = mac(&self.0);
        mac.update(b"voidrunner-webhook-v1:");
        mac.update(user.as_uuid().as_hyphenated().to_string().as_bytes());
        format!("whsec_{}", hex::encode(mac.finalize().into_bytes()))
    }
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length; this cannot fail.
    match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    }
}

/// The `X-VoidRunner-Signature` value of `body` sent at `timestamp` with `secret`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = mac(secret.as_bytes());
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a signature header in constant time (what a receiver does; used by tests).
pub fn verify(secret: &str, timestamp: i64, body: &[u8], signature: &str) -> bool {
    let Some(hex_sig) = signature.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = mac(secret.as_bytes());
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_differ_per_user_and_key_and_are_stable() {
        let k = WebhookKey::new(vec![7u8; 32]).expect("key");
        let (a, b) = (UserId::new(), UserId::new());
        assert_eq!(k.user_secret(a), k.user_secret(a));
        assert_ne!(k.user_secret(a), k.user_secret(b));
        let other = WebhookKey::new(vec![8u8; 32]).expect("key");
        assert_ne!(k.user_secret(a), other.user_secret(a));
        assert!(k.user_secret(a).starts_with("whsec_"));
        assert_eq!(k.user_secret(a).len(), 6 + 64);
        assert!(WebhookKey::new(vec![1u8; 31]).is_err());
        assert_eq!(format!("{k:?}"), "WebhookKey([redacted])");
    }

    #[test]
    fn signature_covers_timestamp_and_body() {
        let s = sign("whsec_abc", 1_700_000_000, b"{\"a\":1}");
        assert!(verify("whsec_abc", 1_700_000_000, b"{\"a\":1}", &s));
        assert!(!verify("whsec_abc", 1_700_000_001, b"{\"a\":1}", &s));
        assert!(!verify("whsec_abc", 1_700_000_000, b"{\"a\":2}", &s));
        assert!(!verify("whsec_abd", 1_700_000_000, b"{\"a\":1}", &s));
        assert!(!verify("whsec_abc", 1_700_000_000, b"{\"a\":1}", "sha1=00"));
        // The value Python's hmac module and `openssl dgst -hmac` give (docs/API.md).
        assert_eq!(
            s,
            "sha256=3b843bacfb18cc5554542fdcc84d815b399c52758e508a6fcecf0a2af4efea2b"
        );
        // Independent check of the construction: HMAC-SHA256 of "<ts>.<body>".
        let mut m = mac(b"whsec_abc");
        m.update(b"1700000000.{\"a\":1}");
        assert_eq!(
            s,
            format!("sha256={}", hex::encode(m.finalize().into_bytes()))
        );
    }
}

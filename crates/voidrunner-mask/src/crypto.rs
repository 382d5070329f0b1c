//! Encryption at rest for secret values: AES-256-GCM with a fresh random nonce per value and the
//! key id in the sealed bytes, so keys can rotate without re-encrypting everything at once.
//!
//! Sealed layout: `version (1) | key id (4, big endian) | nonce (12) | ciphertext | tag (16)`.
//! The version and key id are authenticated (associated data), as is an optional caller context
//! (e.g. task id and secret name) that binds a value to where it is stored.

use std::fmt;

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Length of a key in bytes (AES-256).
pub const KEY_LEN: usize = 32;
const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + 4 + NONCE_LEN;

/// Short public identifier of a key, derived from it, stored in every sealed value so that
/// opening picks the right key after a rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub u32);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

/// A 256-bit key, zeroed on drop and never printed.
pub struct SecretKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
    id: KeyId,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl SecretKey {
    /// A new random key from the operating system's generator.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        OsRng.fill_bytes(bytes.as_mut());
        Self::from_zeroizing(bytes)
    }

    /// Wraps existing key material (e.g. read from a file or configuration).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self::from_zeroizing(Zeroizing::new(bytes))
    }

    pub(crate) fn from_zeroizing(bytes: Zeroizing<[u8; KEY_LEN]>) -> Self {
        let digest = Sha256::new()
            .chain_update(b"voidrunner-mask key id v1\0")
            .chain_update(bytes.as_ref())
            .finalize();
        let id = KeyId(u32::from_be_bytes([
            digest[0], digest[1], digest[2], digest[3],
        ]));
        Self { bytes, id }
    }

    /// The key's public identifier.
    pub fn id(&self) -> KeyId {
        self.id
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }
}

/// Why a sealed value could not be opened (or a value not sealed). Never carries plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// Too short to hold a header and tag.
    #[error("sealed value is malformed")]
    Malformed,
    /// Written by a newer format.
    #[error("sealed value has unsupported format version {version}")]
    UnsupportedVersion {
        /// The version byte found.
        version: u8,
    },
    /// Sealed with a key this box does not hold (add it with `with_previous_keys`).
    #[error("sealed value uses unknown key {key_id}")]
    UnknownKey {
        /// The key id found in the header.
        key_id: KeyId,
    },
    /// Tampered with, sealed for another context, or a different key with a colliding id.
    #[error("sealed value failed authentication")]
    Authentication,
    /// The plaintext exceeds what AES-GCM can encrypt under one nonce.
    #[error("value too long to seal")]
    TooLong,
}

/// Seals with the current key and opens with the current or any previous key.
pub struct SecretBox {
    current: (KeyId, Aes256Gcm),
    previous: Vec<(KeyId, Aes256Gcm)>,
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let previous: Vec<KeyId> = self.previous.iter().map(|(id, _)| *id).collect();
        f.debug_struct("SecretBox")
            .field("current", &self.current.0)
            .field("previous", &previous)
            .finish()
    }
}

fn cipher(key: &SecretKey) -> (KeyId, Aes256Gcm) {
    (
        key.id(),
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key.bytes())),
    )
}

fn associated_data(version: u8, key_id: KeyId, context: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(5 + context.len());
    aad.push(version);
    aad.extend_from_slice(&key_id.0.to_be_bytes());
    aad.extend_from_slice(context);
    aad
}

impl SecretBox {
    /// A box sealing with `key`.
    pub fn new(key: &SecretKey) -> Self {
        Self {
            current: cipher(key),
            previous: Vec::new(),
        }
    }

    /// Adds retired keys that can still open values sealed before a rotation.
    pub fn with_previous_keys<'a>(mut self, keys: impl IntoIterator<Item = &'a SecretKey>) -> Self {
        self.previous.extend(keys.into_iter().map(cipher));
        self
    }

    /// Id of the key new values are sealed with.
    pub fn current_key_id(&self) -> KeyId {
        self.current.0
    }

    /// The key id a sealed value names, so a rotation job can find values to re-seal.
    pub fn key_id_of(sealed: &[u8]) -> Result<KeyId, CryptoError> {
        if sealed.len() < HEADER_LEN + TAG_LEN {
            return Err(CryptoError::Malformed);
        }
        if sealed[0] != FORMAT_V1 {
            return Err(CryptoError::UnsupportedVersion { version: sealed[0] });
        }
        Ok(KeyId(u32::from_be_bytes([
            sealed[1], sealed[2], sealed[3], sealed[4],
        ])))
    }

    /// Seals a value with no context.
    pub fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.seal_with_context(plaintext, &[])
    }

    /// Seals a value bound to `context`: opening needs the same context, so a sealed value
    /// copied to another task or secret name does not open.
    pub fn seal_with_context(
        &self,
        plaintext: &[u8],
        context: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let (key_id, cipher) = &self.current;
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = associated_data(FORMAT_V1, *key_id, context);
        let body = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| CryptoError::TooLong)?;
        let mut sealed = Vec::with_capacity(HEADER_LEN + body.len());
        sealed.push(FORMAT_V1);
        sealed.extend_from_slice(&key_id.0.to_be_bytes());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&body);
        Ok(sealed)
    }

    /// Opens a value sealed with no context.
    pub fn open(&self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.open_with_context(sealed, &[])
    }

    /// Opens a value sealed with `context`.
    pub fn open_with_context(
        &self,
        sealed: &[u8],
        context: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let key_id = Self::key_id_of(sealed)?;
        let nonce = Nonce::from_slice(&sealed[5..HEADER_LEN]);
        let aad = associated_data(FORMAT_V1, key_id, context);
        let mut candidates = std::iter::once(&self.current)
            .chain(&self.previous)
            .filter(|(id, _)| *id == key_id)
            .peekable();
        if candidates.peek().is_none() {
            return Err(CryptoError::UnknownKey { key_id });
        }
        candidates
            .find_map(|(_, cipher)| {
                cipher
                    .decrypt(
                        nonce,
                        Payload {
                            msg: &sealed[HEADER_LEN..],
                            aad: &aad,
                        },
                    )
                    .ok()
            })
            .map(Zeroizing::new)
            .ok_or(CryptoError::Authentication)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_fresh_nonces() {
        let sb = SecretBox::new(&SecretKey::generate());
        let a = sb.seal(b"hunter2-password").expect("seal");
        let b = sb.seal(b"hunter2-password").expect("seal");
        assert_ne!(a, b, "each seal uses a fresh nonce");
        assert_eq!(a.len(), HEADER_LEN + 16 + TAG_LEN);
        assert_eq!(sb.open(&a).expect("open").as_slice(), b"hunter2-password");
        assert_eq!(
            sb.open(&sb.seal(b"").expect("seal")).expect("open").len(),
            0
        );
        assert_eq!(SecretBox::key_id_of(&a), Ok(sb.current_key_id()));
    }

    #[test]
    fn every_tampered_byte_is_detected() {
        let sb = SecretBox::new(&SecretKey::generate());
        let sealed = sb.seal(b"value").expect("seal");
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(sb.open(&bad).is_err(), "flip at byte {i} went unnoticed");
        }
        assert_eq!(
            sb.open(&sealed[..sealed.len() - 1]),
            Err(CryptoError::Authentication)
        );
        assert_eq!(sb.open(&sealed[..10]), Err(CryptoError::Malformed));
    }

    #[test]
    fn wrong_key_and_wrong_context_are_refused() {
        let sealed = SecretBox::new(&SecretKey::generate())
            .seal(b"value")
            .expect("seal");
        let other = SecretBox::new(&SecretKey::generate());
        assert!(matches!(
            other.open(&sealed),
            Err(CryptoError::UnknownKey { .. })
        ));

        let key = SecretKey::generate();
        let sb = SecretBox::new(&key);
        let bound = sb
            .seal_with_context(b"value", b"task-1/API_KEY")
            .expect("seal");
        assert_eq!(
            sb.open_with_context(&bound, b"task-2/API_KEY"),
            Err(CryptoError::Authentication)
        );
        assert_eq!(sb.open(&bound), Err(CryptoError::Authentication));
        // Same key id, different key material: authentication fails rather than garbage.
        let mut forged = sealed.clone();
        forged[1..5].copy_from_slice(&key.id().0.to_be_bytes());
        assert_eq!(sb.open(&forged), Err(CryptoError::Authentication));
    }

    #[test]
    fn rotation_opens_old_values_and_seals_with_the_new_key() {
        let old = SecretKey::generate();
        let new = SecretKey::generate();
        let sealed_old = SecretBox::new(&old).seal(b"value").expect("seal");
        let rotated = SecretBox::new(&new).with_previous_keys([&old]);
        assert_eq!(
            rotated.open(&sealed_old).expect("open").as_slice(),
            b"value"
        );
        let resealed = rotated.seal(b"value").expect("seal");
        assert_eq!(SecretBox::key_id_of(&resealed), Ok(new.id()));
        assert!(SecretBox::new(&old).open(&resealed).is_err());
    }

    #[test]
    fn unknown_versions_are_refused_and_debug_hides_keys() {
        let key = SecretKey::from_bytes([7u8; KEY_LEN]);
        let sb = SecretBox::new(&key);
        let mut sealed = sb.seal(b"value").expect("seal");
        sealed[0] = 9;
        assert_eq!(
            sb.open(&sealed),
            Err(CryptoError::UnsupportedVersion { version: 9 })
        );
        let shown = format!("{key:?} {sb:?}");
        assert!(!shown.contains("7, 7"), "{shown}");
        assert!(shown.contains(&format!("{}", key.id().0)), "{shown}");
    }
}

//! Signing keys and `did:key` identities.
//!
//! People and nodes are ed25519 keys. A key's public identity is written as a `did:key`
//! (multicodec 0xed + the 32-byte public key, base58btc with the `z` multibase prefix). The same
//! 32-byte secret can become a libp2p identity (`identity::Keypair::ed25519_from_bytes`) and an
//! iroh endpoint key, so a node has one key everywhere.

use std::{fmt, str::FromStr};

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Length of an ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

const DID_KEY_PREFIX: &str = "did:key:z";
/// Varint of multicodec 0xed (ed25519-pub).
const ED25519_PUB_MULTICODEC: [u8; 2] = [0xed, 0x01];

/// An ed25519 signing key. Its `Debug` never prints the secret.
#[derive(Clone)]
pub struct Keypair {
    signing: SigningKey,
    did: Did,
    did_text: String,
}

impl Keypair {
    /// Generates a fresh key from the operating system's randomness.
    pub fn generate() -> Self {
        let mut secret = [0u8; 32];
        // getrandom only fails on platforms without an entropy source; nothing can be signed there.
        rand::fill(&mut secret);
        Self::from_secret(secret)
    }

    /// The key whose 32-byte secret (seed) is `secret`.
    pub fn from_secret(secret: [u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(&secret);
        let did = Did(signing.verifying_key().to_bytes());
        Self {
            signing,
            did,
            did_text: did.to_string(),
        }
    }

    /// A key derived deterministically from a seed and a label, for tests and examples.
    pub fn derive(seed: u64, label: &str) -> Self {
        let mut hasher = blake3::Hasher::new_derive_key("mnode 2024 example key derivation");
        hasher.update(&seed.to_le_bytes());
        hasher.update(label.as_bytes());
        Self::from_secret(*hasher.finalize().as_bytes())
    }

    /// The 32-byte secret. Handle with care: whoever holds it can sign as this key.
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// The public identity of this key.
    pub fn did(&self) -> &Did {
        &self.did
    }

    /// The identity as a `did:key` string (kept, as signing writes it into every record).
    pub fn did_text(&self) -> &str {
        &self.did_text
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.signing.sign(message).to_bytes()
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keypair")
            .field("did", &self.did)
            .finish_non_exhaustive()
    }
}

/// A public ed25519 key, written as `did:key:z6Mk…`.
///
/// Holds the 32 compressed bytes, checked to be a valid point when made, so it is small and
/// cheap to copy, hash and compare; verification decompresses the point.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Did([u8; 32]);

/// A `did:key` string that is not a valid ed25519 `did:key`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DidError {
    /// Does not start with `did:key:z`.
    #[error("{0:?} is not a did:key (expected \"did:key:z6Mk…\")")]
    NotDidKey(String),
    /// The base58btc part does not decode.
    #[error("did:key {0:?} is not valid base58btc")]
    Base58(String),
    /// The multicodec is not ed25519-pub or the key has the wrong length.
    #[error("did:key {0:?} is not an ed25519 public key (multicodec 0xed, 32 bytes)")]
    NotEd25519(String),
    /// 32 bytes that are not a point on the curve.
    #[error("did:key {0:?} holds an invalid ed25519 public key")]
    InvalidKey(String),
}

/// A signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("signature does not verify for this key and message")]
pub struct BadSignature;

impl Did {
    /// The identity of a 32-byte ed25519 public key.
    pub fn from_public_key(bytes: &[u8; 32]) -> Result<Self, DidError> {
        VerifyingKey::from_bytes(bytes)
            .map(|_| Self(*bytes))
            .map_err(|_| DidError::InvalidKey(hex::encode(bytes)))
    }

    /// The raw 32-byte public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.0
    }

    /// Verifies an ed25519 signature strictly (rejecting malleable and small-order forms).
    pub fn verify(
        &self,
        message: &[u8],
        signature: &[u8; SIGNATURE_LEN],
    ) -> Result<(), BadSignature> {
        let sig = ed25519_dalek::Signature::from_bytes(signature);
        // The bytes were checked to be a valid point when this Did was made.
        let key = VerifyingKey::from_bytes(&self.0).map_err(|_| BadSignature)?;
        key.verify_strict(message, &sig).map_err(|_| BadSignature)
    }
}

impl fmt::Display for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = [0u8; 34];
        raw[..2].copy_from_slice(&ED25519_PUB_MULTICODEC);
        raw[2..].copy_from_slice(&self.0);
        write!(f, "{DID_KEY_PREFIX}{}", bs58::encode(raw).into_string())
    }
}

impl fmt::Debug for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Did({self})")
    }
}

impl FromStr for Did {
    type Err = DidError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let encoded = s
            .strip_prefix(DID_KEY_PREFIX)
            .ok_or_else(|| DidError::NotDidKey(s.to_owned()))?;
        let raw = bs58::decode(encoded)
            .into_vec()
            .map_err(|_| DidError::Base58(s.to_owned()))?;
        let key: &[u8; 32] = raw
            .strip_prefix(&ED25519_PUB_MULTICODEC)
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| DidError::NotEd25519(s.to_owned()))?;
        VerifyingKey::from_bytes(key)
            .map(|_| Self(*key))
            .map_err(|_| DidError::InvalidKey(s.to_owned()))
    }
}

impl Serialize for Did {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Did {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for Did {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Did".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]+$",
            "description": "an ed25519 public key as a did:key"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_key_matches_the_w3c_test_vector() {
        // From the did:key spec's ed25519 test vectors.
        let did = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp";
        let parsed: Did = did.parse().unwrap();
        assert_eq!(parsed.to_string(), did);
    }

    #[test]
    fn round_trips_and_signs() {
        let k = Keypair::derive(7, "alice");
        let did: Did = k.did().to_string().parse().unwrap();
        assert_eq!(&did, k.did());
        assert!(did.to_string().starts_with("did:key:z6Mk"));
        let sig = k.sign(b"hello");
        did.verify(b"hello", &sig).unwrap();
        assert_eq!(did.verify(b"hellp", &sig), Err(BadSignature));
        assert_eq!(Keypair::from_secret(k.secret_bytes()).did(), k.did());
        assert_ne!(Keypair::derive(7, "bob").did(), k.did());
        assert!(!format!("{k:?}").contains(&hex::encode(k.secret_bytes())));
    }

    #[test]
    fn rejects_bad_dids() {
        assert!(matches!(
            "did:web:x".parse::<Did>(),
            Err(DidError::NotDidKey(_))
        ));
        assert!(matches!(
            "did:key:z0OIl".parse::<Did>(),
            Err(DidError::Base58(_))
        ));
        // a secp256k1 did:key (multicodec 0xe7)
        assert!(matches!(
            "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme".parse::<Did>(),
            Err(DidError::NotEd25519(_))
        ));
    }
}

/// Serde for a [`Did`] as its 32 raw public-key bytes, for compact internal encodings (a
/// store's own records of versions and items), where the text form would cost a base58
/// encoding on every write. Reading checks the key as [`Did::from_public_key`] does.
pub mod did_bytes {
    use serde::{Deserializer, Serializer, de::Error as _};

    use super::Did;

    /// Writes the public key as a byte string.
    pub fn serialize<S: Serializer>(did: &Did, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&did.0)
    }

    /// Reads a public key written by [`serialize`].
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Did, D::Error> {
        let bytes = <serde_bytes::ByteBuf as serde::Deserialize>::deserialize(deserializer)?;
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| D::Error::custom("a did:key public key is 32 bytes"))?;
        Did::from_public_key(&key).map_err(D::Error::custom)
    }
}

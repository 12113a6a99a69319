//! Signing keys and `did:key` identities.
//!
//! People and nodes are ed25519 keys. A key's public identity is written as a `did:key`
//! (multicodec 0xed + the 32-byte public key, base58btc with the `z` multibase prefix). The same
//! 32-byte secret can become a libp2p identity (`identity::Keypair::ed25519_from_bytes`) and an
//! iroh endpoint key, so a node has one key everywhere.
//!
//! # The signature rule
//!
//! One rule decides whether a signature is good, whether it is checked alone
//! ([`Did::verify`]) or with others ([`verify_batch`]); `docs/decisions.md` ("Signatures
//! checked in batches") says why. A signature `(R, s)` by key `A` over message `M` is good when:
//!
//! 1. `A` is not a point of small order (a "weak" key);
//! 2. `s` is a canonical scalar (below the group order ℓ);
//! 3. `R` is canonically encoded (`y` below 2²⁵⁵ − 19) and not one of the points of small order;
//! 4. `R` is a point, and `[8]([s]B − [k]A − R)` is the identity, `k = SHA-512(R ‖ A ‖ M) mod ℓ`.
//!
//! Rule 4 is the *cofactored* equation (RFC 8032 §5.1.7). ed25519-dalek's `verify_strict`
//! checks `[s]B − [k]A = R` instead, which says no to a signature whose `R` carries a small
//! torsion component; no batch check can tell those apart from good ones, so batches and
//! single checks could disagree. With the cofactored equation a batch that passes means
//! every signature in it passes alone, and one that fails is checked one signature at a time.
//! Every signature an ed25519 signer makes passes both equations.

use std::{collections::HashMap, fmt, str::FromStr};

use curve25519_dalek::{
    edwards::{CompressedEdwardsY, EdwardsPoint},
    scalar::Scalar,
    traits::IsIdentity,
};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha512};

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

    /// Verifies an ed25519 signature by this key under [the signature rule](crate::keys): canonical
    /// encodings, no small-order key or `R`, the cofactored equation. [`verify_batch`] accepts
    /// exactly the signatures this accepts.
    pub fn verify(
        &self,
        message: &[u8],
        signature: &[u8; SIGNATURE_LEN],
    ) -> Result<(), BadSignature> {
        // The bytes were checked to be a valid point when this Did was made.
        let key = usable_key(&self.0).ok_or(BadSignature)?;
        verify_one(&key, message, signature)
    }
}

/// One signature for [`verify_batch`]: `signature` by `did` over `message`.
#[derive(Debug, Clone, Copy)]
pub struct SignedMessage<'a> {
    /// The key that signed.
    pub did: &'a Did,
    /// The bytes signed.
    pub message: &'a [u8],
    /// The signature.
    pub signature: &'a [u8; SIGNATURE_LEN],
}

/// Verifies many signatures together, returning one result per signature, in order: each is
/// what [`Did::verify`] says of it.
///
/// The good ones are checked in one multiscalar multiplication (ed25519-dalek's
/// `verify_batch`), which costs about a third as much per signature as checking them one at
/// a time when there are hundreds. If that fails, each is checked alone to find the bad ones, so
/// one bad signature costs the batch its speed, never the good signatures their place.
pub fn verify_batch(items: &[SignedMessage<'_>]) -> Vec<Result<(), BadSignature>> {
    let mut results = vec![Err(BadSignature); items.len()];
    // Decompressing a key costs a square root: once per key, as a feed's records share one.
    let mut keys: HashMap<[u8; 32], Option<VerifyingKey>> = HashMap::new();
    let mut passed = Vec::with_capacity(items.len());
    let mut messages = Vec::with_capacity(items.len());
    let mut signatures = Vec::with_capacity(items.len());
    let mut verifying_keys = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let key = *keys
            .entry(item.did.0)
            .or_insert_with(|| usable_key(&item.did.0));
        // Rules 1-3 first: a batch only proves rule 4.
        if let Some(key) = key.filter(|_| encodings_ok(item.signature)) {
            passed.push(i);
            messages.push(item.message);
            signatures.push(ed25519_dalek::Signature::from_bytes(item.signature));
            verifying_keys.push(key);
        }
    }
    // A pass means `Σ zᵢ([s]B − [k]A − R)ᵢ` is the identity for random 128-bit `zᵢ`, so (but
    // with probability 2⁻¹²⁸) every term's prime-order part is zero: each meets rule 4.
    let together = passed.len() > 1
        && ed25519_dalek::verify_batch(&messages, &signatures, &verifying_keys).is_ok();
    for (j, &i) in passed.iter().enumerate() {
        results[i] = if together {
            Ok(())
        } else {
            verify_one(&verifying_keys[j], messages[j], items[i].signature)
        };
    }
    results
}

/// The key of these bytes if they are a point of large order (rule 1).
fn usable_key(bytes: &[u8; 32]) -> Option<VerifyingKey> {
    VerifyingKey::from_bytes(bytes)
        .ok()
        .filter(|key| !key.is_weak())
}

/// The canonical `y` encodings of the eight points of small order, and the two of them with
/// `x = 0` (the identity and the point of order 2) written with the sign bit set. Once `y` is
/// canonical these are all the encodings that decompress to a point of small order
/// (libsodium's `has_small_order` list; a test checks it against the curve).
#[rustfmt::skip]
const SMALL_ORDER_ENCODINGS: [[u8; 32]; 10] = [
    // The two points of order 4 (y = 0).
    [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
     0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
    [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
     0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80],
    // The identity (y = 1), and with the sign bit set.
    [0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
     0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
    [0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
     0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80],
    // The point of order 2 (y = −1), and with the sign bit set.
    [0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
    [0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    // The four points of order 8.
    [0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
     0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a],
    [0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
     0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0xfa],
    [0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
     0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05],
    [0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
     0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x85],
];

/// Rules 2 and 3, on the bytes alone.
fn encodings_ok(signature: &[u8; SIGNATURE_LEN]) -> bool {
    let (r, s) = split(signature);
    bool::from(Scalar::from_canonical_bytes(s).is_some())
        && canonical_y(&r)
        && !SMALL_ORDER_ENCODINGS.contains(&r)
}

/// Whether the `y` of an encoded point (its low 255 bits) is below p = 2²⁵⁵ − 19.
fn canonical_y(point: &[u8; 32]) -> bool {
    !(point[31] & 0x7f == 0x7f && point[1..31].iter().all(|&b| b == 0xff) && point[0] >= 0xed)
}

fn split(signature: &[u8; SIGNATURE_LEN]) -> ([u8; 32], [u8; 32]) {
    let mut r = [0u8; 32];
    let mut s = [0u8; 32];
    r.copy_from_slice(&signature[..32]);
    s.copy_from_slice(&signature[32..]);
    (r, s)
}

/// The whole rule for one signature by a key that meets rule 1.
fn verify_one(
    key: &VerifyingKey,
    message: &[u8],
    signature: &[u8; SIGNATURE_LEN],
) -> Result<(), BadSignature> {
    if !encodings_ok(signature) {
        return Err(BadSignature);
    }
    let (r_bytes, s_bytes) = split(signature);
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)).ok_or(BadSignature)?;
    let r = CompressedEdwardsY(r_bytes)
        .decompress()
        .ok_or(BadSignature)?;
    let mut h = Sha512::new();
    h.update(r_bytes);
    h.update(key.as_bytes());
    h.update(message);
    let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
    let sb_minus_ka = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &-key.to_edwards(), &s);
    if (sb_minus_ka - r).mul_by_cofactor().is_identity() {
        Ok(())
    } else {
        Err(BadSignature)
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

    /// The points of small order: the multiples of a point of order 8.
    fn small_order_points() -> Vec<EdwardsPoint> {
        let t = CompressedEdwardsY(SMALL_ORDER_ENCODINGS[6])
            .decompress()
            .unwrap();
        (0..8u8).map(|i| t * Scalar::from(i)).collect()
    }

    #[test]
    fn the_small_order_list_is_every_encoding_of_a_point_of_small_order() {
        let points = small_order_points();
        for (i, p) in points.iter().enumerate() {
            assert!(p.is_small_order());
            assert_eq!(p.is_identity(), i == 0);
            let bytes = p.compress().to_bytes();
            assert!(canonical_y(&bytes));
            assert!(
                SMALL_ORDER_ENCODINGS.contains(&bytes),
                "{}",
                hex::encode(bytes)
            );
            // With x = 0 the sign bit can be set and the point still decompresses.
            let mut flipped = bytes;
            flipped[31] ^= 0x80;
            if let Some(q) = CompressedEdwardsY(flipped).decompress() {
                assert!(q.is_small_order());
                assert!(
                    SMALL_ORDER_ENCODINGS.contains(&flipped),
                    "{}",
                    hex::encode(flipped)
                );
            }
        }
        let distinct: std::collections::HashSet<_> =
            points.iter().map(|p| p.compress().to_bytes()).collect();
        // t has order 8: its multiples are the 8 points of small order.
        assert_eq!(distinct.len(), 8);
        for bytes in SMALL_ORDER_ENCODINGS {
            let p = CompressedEdwardsY(bytes).decompress().unwrap();
            assert!(p.is_small_order(), "{}", hex::encode(bytes));
        }
        // A point of large order is not on the list, with or without a torsion component.
        let k = Keypair::derive(1, "point");
        let a = VerifyingKey::from_bytes(&k.did().public_key())
            .unwrap()
            .to_edwards();
        for t in &points {
            let bytes = (a + t).compress().to_bytes();
            assert!(!SMALL_ORDER_ENCODINGS.contains(&bytes));
        }
    }

    #[test]
    fn canonical_y_is_below_p() {
        let mut p_minus_1 = [0xff; 32];
        p_minus_1[0] = 0xec;
        p_minus_1[31] = 0x7f;
        assert!(canonical_y(&p_minus_1));
        let mut p = p_minus_1;
        p[0] = 0xed;
        assert!(!canonical_y(&p));
        p[31] = 0xff;
        assert!(!canonical_y(&p));
        assert!(!canonical_y(&[0xff; 32]));
        assert!(canonical_y(&[0; 32]));
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

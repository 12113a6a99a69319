//! Private records: a body encrypted to a list of recipients.
//!
//! A private version's body holds its kind's fields only encrypted, under the reserved key
//! `$private`; the record citations `$owner` and `$signer` stay beside it in the clear, so every
//! node can still check roles and keys:
//!
//! ```text
//! { "$private": { "v": 1, "nonce": bytes(24), "ct": bytes,
//!                 "to": [ { "id": did, "key": did, "enc": bytes(32), "wrap": bytes(48) } … ] },
//!   "$owner"?: …, "$signer"?: … }
//! aad  = DAG-CBOR ["mnode/private/1", type, author, origin | null, [to[].id …]]
//! ct   = XChaCha20-Poly1305(cek, nonce, aad, DAG-CBOR(kind fields))
//! wrap = HPKE Base seal to X25519(key), info "mnode/private/1/cek", aad, plaintext cek
//! ```
//!
//! `cek` is 32 fresh random bytes for every version, so a recipient left out of a later version
//! cannot read it. HPKE is RFC 9180 with DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and
//! ChaCha20Poly1305; `enc` is its encapsulated key. A recipient's X25519 key is their ed25519
//! key in Montgomery form (the secret: the clamped SHA-512 prefix ed25519 signs with), see
//! eprint 2021/509 on using one key pair for both.
//!
//! `to` lists every reader, the author included: `id` is the reader's identity and `key` the
//! `did:key` the content key was wrapped to (the identity's current key). Entries are sorted by
//! `id` (the public-key bytes, which for `did:key` text is also the text order), unique, and
//! there are 1 to [`MAX_RECIPIENTS`] of them. The ids are in the clear and bound into the AAD,
//! so nobody can add or drop a reader, nor graft the ciphertext into another record, without
//! every wrap failing.

use std::collections::BTreeMap;

use chacha20poly1305::{
    KeyInit as _, XChaCha20Poly1305, XNonce,
    aead::{Aead as _, Payload},
};
use ed25519_dalek::{SigningKey, VerifyingKey};
use hpke::{
    Deserializable as _, OpModeR, OpModeS, Serializable as _, aead::ChaCha20Poly1305,
    kdf::HkdfSha256, kem::X25519HkdfSha256,
};
use ipld_core::ipld::Ipld;
use rand::CryptoRng;
use zeroize::Zeroizing;

use crate::{
    Cid,
    cbor::{self, DecodeError},
    keys::{Did, Keypair},
};

/// The body key that holds an encrypted body.
pub const PRIVATE_KEY: &str = "$private";
/// The record keys allowed beside [`PRIVATE_KEY`], left in the clear.
pub const CLEAR_KEYS: [&str; 2] = ["$owner", "$signer"];
/// The format version this module writes and reads.
pub const VERSION: i128 = 1;
/// Most recipients one version may have.
pub const MAX_RECIPIENTS: usize = 500;
/// Length of the XChaCha20-Poly1305 nonce.
pub const NONCE_LEN: usize = 24;
/// Length of an HPKE encapsulated key (an X25519 public key).
pub const ENC_LEN: usize = 32;
/// Length of a wrapped content key: 32 bytes and a 16-byte tag.
pub const WRAP_LEN: usize = CEK_LEN + TAG_LEN;

const CEK_LEN: usize = 32;
const TAG_LEN: usize = 16;
/// First element of the AAD.
const AAD_LABEL: &str = "mnode/private/1";
/// HPKE `info`: separates this use of the recipient's key from every other.
const WRAP_INFO: &[u8] = b"mnode/private/1/cek";

type Kem = X25519HkdfSha256;

/// Why a private body could not be sealed, read or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrivateError {
    /// The body or its `$private` map does not have the private-record shape.
    #[error("malformed private body: {0}")]
    Shape(String),
    /// A `$private.v` this node does not read.
    #[error("private body format version {0} is not supported (this node reads version 1)")]
    UnknownVersion(i128),
    /// More than [`MAX_RECIPIENTS`] recipients.
    #[error("a private record has at most {MAX_RECIPIENTS} recipients, this one has {0}")]
    TooManyRecipients(usize),
    /// An identity appears twice in `to`.
    #[error("recipient {0} is listed twice")]
    DuplicateRecipient(Did),
    /// The author is not in `to`.
    #[error("the author {0} is not among the recipients")]
    AuthorNotARecipient(Did),
    /// The identity is not in `to`.
    #[error("{0} is not a recipient of this record")]
    NotARecipient(Did),
    /// The identity is in `to`, but its content key was wrapped to another key.
    #[error("the content key for {identity} was wrapped to {wrapped_to}, not to this key")]
    WrongKey {
        /// The reader's identity.
        identity: Did,
        /// The key the content key was wrapped to.
        wrapped_to: Did,
    },
    /// The wrap or the ciphertext does not open: altered bytes, an edited `to`, or a different
    /// type, author or origin than the ones sealed.
    #[error("cannot decrypt: the ciphertext, the key wrap or what they are bound to was altered")]
    Decrypt,
    /// A recipient key that cannot receive an encrypted key (a small-order point).
    #[error("cannot encrypt to {0}: not a usable key")]
    BadKey(Did),
    /// `open` was given a body without `$private`.
    #[error("not a private body")]
    NotPrivate,
    /// The body to seal cannot be encoded as DAG-CBOR.
    #[error("cannot encode the body: {0}")]
    Encode(String),
    /// The decrypted bytes are not strict DAG-CBOR.
    #[error("the decrypted body is not strict DAG-CBOR: {0}")]
    Plaintext(DecodeError),
}

/// One reader of a private version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The reader's identity.
    pub id: Did,
    /// The key the content key was wrapped to.
    pub key: Did,
    /// HPKE's encapsulated key.
    pub enc: [u8; ENC_LEN],
    /// The content key, sealed with HPKE.
    pub wrap: [u8; WRAP_LEN],
}

/// A well-formed `$private` map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The XChaCha20-Poly1305 nonce.
    pub nonce: [u8; NONCE_LEN],
    /// The encrypted kind fields, tag included.
    pub ct: Vec<u8>,
    /// The readers, sorted by `id`, unique, 1 to [`MAX_RECIPIENTS`] of them.
    pub to: Vec<Recipient>,
}

impl Sealed {
    /// The readers' identities, in order.
    pub fn ids(&self) -> impl Iterator<Item = &Did> {
        self.to.iter().map(|r| &r.id)
    }

    /// The entry for `id`.
    pub fn recipient(&self, id: &Did) -> Option<&Recipient> {
        self.to
            .binary_search_by(|r| r.id.cmp(id))
            .ok()
            .and_then(|i| self.to.get(i))
    }

    pub fn to_ipld(&self) -> Ipld {
        let to = self
            .to
            .iter()
            .map(|r| {
                Ipld::Map(BTreeMap::from([
                    ("id".to_owned(), Ipld::String(r.id.to_string())),
                    ("key".to_owned(), Ipld::String(r.key.to_string())),
                    ("enc".to_owned(), Ipld::Bytes(r.enc.to_vec())),
                    ("wrap".to_owned(), Ipld::Bytes(r.wrap.to_vec())),
                ]))
            })
            .collect();
        Ipld::Map(BTreeMap::from([
            ("v".to_owned(), Ipld::Integer(VERSION)),
            ("nonce".to_owned(), Ipld::Bytes(self.nonce.to_vec())),
            ("ct".to_owned(), Ipld::Bytes(self.ct.clone())),
            ("to".to_owned(), Ipld::List(to)),
        ]))
    }
}

/// Whether `body` is private (has a `$private` key); says nothing about its shape.
pub fn is_private(body: &Ipld) -> bool {
    matches!(body, Ipld::Map(m) if m.contains_key(PRIVATE_KEY))
}

/// Encrypts `body` to `recipients` (identity, key to wrap to) for a version of type `kind` by
/// `author` in the item `origin` (`None` for version 0), and returns the new body.
///
/// `$owner` and `$signer` move beside `$private` in the clear; any other `$` key is refused.
/// The recipients are sorted and repeated pairs merged; `author` must be one of them. Every
/// call draws a fresh content key and nonce from `rng`.
pub fn seal(
    kind: &str,
    author: &Did,
    origin: Option<&Cid>,
    body: &Ipld,
    recipients: &[(Did, Did)],
    rng: &mut impl CryptoRng,
) -> Result<Ipld, PrivateError> {
    let Ipld::Map(fields) = body else {
        return Err(PrivateError::Shape("a private body must be a map".into()));
    };
    let mut clear = BTreeMap::new();
    let mut inner = BTreeMap::new();
    for (k, v) in fields {
        if CLEAR_KEYS.contains(&k.as_str()) {
            clear.insert(k.clone(), v.clone());
        } else if k.starts_with('$') {
            return Err(PrivateError::Shape(format!("cannot seal a body with {k}")));
        } else {
            inner.insert(k.clone(), v.clone());
        }
    }

    let mut readers = recipients.to_vec();
    readers.sort();
    readers.dedup();
    if let Some(w) = readers.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(PrivateError::DuplicateRecipient(w[0].0));
    }
    if readers.len() > MAX_RECIPIENTS {
        return Err(PrivateError::TooManyRecipients(readers.len()));
    }
    if readers.binary_search_by(|r| r.0.cmp(author)).is_err() {
        return Err(PrivateError::AuthorNotARecipient(*author));
    }
    let ids: Vec<Did> = readers.iter().map(|r| r.0).collect();
    let aad = aad(kind, author, origin, &ids)?;

    let mut plaintext = Zeroizing::new(Vec::new());
    cbor::encode_ipld_into(&mut plaintext, &Ipld::Map(inner))
        .map_err(|e| PrivateError::Encode(e.to_string()))?;
    let mut cek = Zeroizing::new([0u8; CEK_LEN]);
    rng.fill_bytes(cek.as_mut());
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let ct = XChaCha20Poly1305::new_from_slice(cek.as_ref())
        .map_err(|_| PrivateError::Encode("content key of the wrong size".into()))?
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: &plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| PrivateError::Encode("body encryption failed".into()))?;

    let mut to = Vec::with_capacity(readers.len());
    for (id, key) in readers {
        let pk = public_key(&key)?;
        let (enc, wrap) = hpke::single_shot_seal_with_rng::<ChaCha20Poly1305, HkdfSha256, Kem>(
            &OpModeS::Base,
            &pk,
            WRAP_INFO,
            cek.as_ref(),
            &aad,
            rng,
        )
        .map_err(|_| PrivateError::BadKey(key))?;
        let wrap: [u8; WRAP_LEN] = wrap
            .as_slice()
            .try_into()
            .map_err(|_| PrivateError::Encode("HPKE gave a wrap of an unexpected size".into()))?;
        to.push(Recipient {
            id,
            key,
            enc: enc.to_bytes().into(),
            wrap,
        });
    }

    let sealed = Sealed { nonce, ct, to };
    clear.insert(PRIVATE_KEY.to_owned(), sealed.to_ipld());
    Ok(Ipld::Map(clear))
}

/// Decrypts a private `body` as the reader `identity` holding `key`, for a version of type
/// `kind` by `author` in the item `origin`, and returns the body as it was before sealing: the
/// kind's fields plus the clear `$owner` and `$signer`.
///
/// The `to` entry used is the one whose `id` is `identity` and whose `key` is `key`'s DID.
pub fn open(
    kind: &str,
    author: &Did,
    origin: Option<&Cid>,
    body: &Ipld,
    identity: &Did,
    key: &Keypair,
) -> Result<Ipld, PrivateError> {
    let sealed = check(body, author)?.ok_or(PrivateError::NotPrivate)?;
    let entry = sealed
        .recipient(identity)
        .ok_or(PrivateError::NotARecipient(*identity))?;
    if entry.key != *key.did() {
        return Err(PrivateError::WrongKey {
            identity: *identity,
            wrapped_to: entry.key,
        });
    }
    let ids: Vec<Did> = sealed.ids().copied().collect();
    let aad = aad(kind, author, origin, &ids)?;

    let signing = SigningKey::from_bytes(&Zeroizing::new(key.secret_bytes()));
    let scalar = Zeroizing::new(signing.to_scalar_bytes());
    let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(scalar.as_ref())
        .map_err(|_| PrivateError::Decrypt)?;
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&entry.enc)
        .map_err(|_| PrivateError::Decrypt)?;
    let cek = Zeroizing::new(
        hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
            &OpModeR::Base,
            &sk,
            &enc,
            WRAP_INFO,
            &entry.wrap,
            &aad,
        )
        .map_err(|_| PrivateError::Decrypt)?,
    );
    let plaintext = Zeroizing::new(
        XChaCha20Poly1305::new_from_slice(&cek)
            .map_err(|_| PrivateError::Decrypt)?
            .decrypt(
                &XNonce::from(sealed.nonce),
                Payload {
                    msg: &sealed.ct,
                    aad: &aad,
                },
            )
            .map_err(|_| PrivateError::Decrypt)?,
    );
    let Ipld::Map(mut fields) = cbor::decode_ipld(&plaintext).map_err(PrivateError::Plaintext)?
    else {
        return Err(PrivateError::Shape(
            "the decrypted body is not a map".into(),
        ));
    };
    if let Some(k) = fields.keys().find(|k| k.starts_with('$')) {
        return Err(PrivateError::Shape(format!(
            "the decrypted body holds the record key {k}"
        )));
    }
    if let Ipld::Map(outer) = body {
        for k in CLEAR_KEYS {
            if let Some(v) = outer.get(k) {
                fields.insert(k.to_owned(), v.clone());
            }
        }
    }
    Ok(Ipld::Map(fields))
}

/// Reads the `$private` map of `body`: `None` if the body is not private, an error if it is
/// but is malformed (see the module docs for the rules). Does not check the author.
pub fn shape(body: &Ipld) -> Result<Option<Sealed>, PrivateError> {
    let Ipld::Map(fields) = body else {
        return Ok(None);
    };
    let Some(private) = fields.get(PRIVATE_KEY) else {
        return Ok(None);
    };
    if let Some(k) = fields
        .keys()
        .find(|k| *k != PRIVATE_KEY && !CLEAR_KEYS.contains(&k.as_str()))
    {
        return Err(PrivateError::Shape(format!(
            "{k:?} sits beside $private (only $owner and $signer may)"
        )));
    }
    let map = as_map(private, "$private", &["v", "nonce", "ct", "to"])?;
    match map.get("v") {
        Some(Ipld::Integer(VERSION)) => {}
        Some(Ipld::Integer(v)) => return Err(PrivateError::UnknownVersion(*v)),
        _ => return Err(shape_error("$private.v is not an integer")),
    }
    let nonce = fixed_bytes(map.get("nonce"), "$private.nonce")?;
    let Some(Ipld::Bytes(ct)) = map.get("ct") else {
        return Err(shape_error("$private.ct is not bytes"));
    };
    // The smallest kind body, an empty map, is one byte.
    if ct.len() <= TAG_LEN {
        return Err(shape_error(
            "$private.ct is too short to hold a body and its tag",
        ));
    }
    let Some(Ipld::List(list)) = map.get("to") else {
        return Err(shape_error("$private.to is not a list"));
    };
    if list.is_empty() {
        return Err(shape_error("$private.to is empty"));
    }
    if list.len() > MAX_RECIPIENTS {
        return Err(PrivateError::TooManyRecipients(list.len()));
    }
    let mut to: Vec<Recipient> = Vec::with_capacity(list.len());
    for (i, entry) in list.iter().enumerate() {
        let what = format!("$private.to[{i}]");
        let e = as_map(entry, &what, &["id", "key", "enc", "wrap"])?;
        let recipient = Recipient {
            id: did(e.get("id"), &format!("{what}.id"))?,
            key: did(e.get("key"), &format!("{what}.key"))?,
            enc: fixed_bytes(e.get("enc"), &format!("{what}.enc"))?,
            wrap: fixed_bytes(e.get("wrap"), &format!("{what}.wrap"))?,
        };
        if let Some(last) = to.last() {
            if last.id == recipient.id {
                return Err(PrivateError::DuplicateRecipient(recipient.id));
            }
            if last.id > recipient.id {
                return Err(shape_error(format!(
                    "{what} is out of order (sorted by id)"
                )));
            }
        }
        to.push(recipient);
    }
    Ok(Some(Sealed {
        nonce,
        ct: ct.clone(),
        to,
    }))
}

/// [`shape`], and that `author` is among the recipients: what a node checks on receipt of a
/// private version (the kind's own validation needs the plaintext).
pub fn check(body: &Ipld, author: &Did) -> Result<Option<Sealed>, PrivateError> {
    let sealed = shape(body)?;
    if let Some(s) = &sealed
        && s.recipient(author).is_none()
    {
        return Err(PrivateError::AuthorNotARecipient(*author));
    }
    Ok(sealed)
}

/// The readers' identities of a private body, in order; `None` if the body is not private.
pub fn recipients(body: &Ipld) -> Result<Option<Vec<Did>>, PrivateError> {
    Ok(shape(body)?.map(|s| s.to.into_iter().map(|r| r.id).collect()))
}

/// DAG-CBOR `["mnode/private/1", kind, author, origin | null, [ids…]]`.
fn aad(
    kind: &str,
    author: &Did,
    origin: Option<&Cid>,
    ids: &[Did],
) -> Result<Vec<u8>, PrivateError> {
    let value = Ipld::List(vec![
        Ipld::String(AAD_LABEL.to_owned()),
        Ipld::String(kind.to_owned()),
        Ipld::String(author.to_string()),
        origin.map_or(Ipld::Null, |c| Ipld::Link(*c)),
        Ipld::List(ids.iter().map(|d| Ipld::String(d.to_string())).collect()),
    ]);
    let mut out = Vec::new();
    cbor::encode_ipld_into(&mut out, &value).map_err(|e| PrivateError::Encode(e.to_string()))?;
    Ok(out)
}

/// The HPKE public key of an ed25519 `did:key`: its Montgomery form.
fn public_key(key: &Did) -> Result<<Kem as hpke::Kem>::PublicKey, PrivateError> {
    let point = VerifyingKey::from_bytes(&key.public_key())
        .map_err(|_| PrivateError::BadKey(*key))?
        .to_montgomery();
    <Kem as hpke::Kem>::PublicKey::from_bytes(point.as_bytes())
        .map_err(|_| PrivateError::BadKey(*key))
}

fn shape_error(message: impl Into<String>) -> PrivateError {
    PrivateError::Shape(message.into())
}

/// `value` as a map with exactly the keys `keys`.
fn as_map<'a>(
    value: &'a Ipld,
    what: &str,
    keys: &[&str],
) -> Result<&'a BTreeMap<String, Ipld>, PrivateError> {
    let Ipld::Map(map) = value else {
        return Err(shape_error(format!("{what} is not a map")));
    };
    if map.len() != keys.len() || keys.iter().any(|k| !map.contains_key(*k)) {
        return Err(shape_error(format!(
            "{what} must have exactly the keys {}",
            keys.join(", ")
        )));
    }
    Ok(map)
}

fn fixed_bytes<const N: usize>(value: Option<&Ipld>, what: &str) -> Result<[u8; N], PrivateError> {
    match value {
        Some(Ipld::Bytes(b)) => b
            .as_slice()
            .try_into()
            .map_err(|_| shape_error(format!("{what} is {} bytes, not {N}", b.len()))),
        _ => Err(shape_error(format!("{what} is not bytes"))),
    }
}

fn did(value: Option<&Ipld>, what: &str) -> Result<Did, PrivateError> {
    match value {
        Some(Ipld::String(s)) => s.parse().map_err(|e| shape_error(format!("{what}: {e}"))),
        _ => Err(shape_error(format!("{what} is not a did:key string"))),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::{SeedableRng as _, rngs::ChaCha8Rng};

    use super::*;

    const KIND: &str = "social.message";

    fn key(label: &str) -> Keypair {
        Keypair::derive(16, label)
    }

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(9)
    }

    fn origin() -> Cid {
        crate::cids::record_cid(b"version 0")
    }

    fn body() -> Ipld {
        Ipld::Map(BTreeMap::from([
            ("text".to_owned(), Ipld::String("hello".into())),
            ("media".to_owned(), Ipld::List(vec![])),
        ]))
    }

    /// Readers whose identity is their own key.
    fn readers(keys: &[&Keypair]) -> Vec<(Did, Did)> {
        keys.iter().map(|k| (*k.did(), *k.did())).collect()
    }

    fn seal_to(keys: &[&Keypair]) -> Ipld {
        let author = key("alice");
        seal(
            KIND,
            author.did(),
            Some(&origin()),
            &body(),
            &readers(keys),
            &mut rng(),
        )
        .unwrap()
    }

    fn open_as(sealed: &Ipld, k: &Keypair) -> Result<Ipld, PrivateError> {
        open(
            KIND,
            key("alice").did(),
            Some(&origin()),
            sealed,
            k.did(),
            k,
        )
    }

    /// The `$private` map of a body, to edit.
    fn private_mut(body: &mut Ipld) -> &mut BTreeMap<String, Ipld> {
        let Ipld::Map(m) = body else {
            panic!("not a map")
        };
        let Some(Ipld::Map(p)) = m.get_mut(PRIVATE_KEY) else {
            panic!("no $private")
        };
        p
    }

    fn to_mut(body: &mut Ipld) -> &mut Vec<Ipld> {
        let Some(Ipld::List(to)) = private_mut(body).get_mut("to") else {
            panic!("no to")
        };
        to
    }

    fn bytes_mut<'a>(map: &'a mut BTreeMap<String, Ipld>, k: &str) -> &'a mut Vec<u8> {
        let Some(Ipld::Bytes(b)) = map.get_mut(k) else {
            panic!("no {k}")
        };
        b
    }

    fn entry_mut(body: &mut Ipld, i: usize) -> &mut BTreeMap<String, Ipld> {
        let Ipld::Map(e) = &mut to_mut(body)[i] else {
            panic!("entry not a map")
        };
        e
    }

    fn shape_err(body: &Ipld) -> PrivateError {
        shape(body).unwrap_err()
    }

    #[test]
    fn round_trip_author_only() {
        let alice = key("alice");
        let sealed = seal_to(&[&alice]);
        assert!(is_private(&sealed));
        assert_eq!(open_as(&sealed, &alice).unwrap(), body());
        assert_eq!(recipients(&sealed).unwrap(), Some(vec![*alice.did()]));
        // Nothing of the body is left in the clear.
        let Ipld::Map(m) = &sealed else { panic!() };
        assert_eq!(m.keys().collect::<Vec<_>>(), [PRIVATE_KEY]);
        let bytes = cbor::encode(&sealed).unwrap();
        assert!(!bytes.windows(5).any(|w| w == b"hello"));
        // Sizes as the format says.
        let s = shape(&sealed).unwrap().unwrap();
        assert_eq!(s.to.len(), 1);
        // A strict DAG-CBOR round trip keeps it readable.
        let back = cbor::decode_ipld(&bytes).unwrap();
        assert_eq!(open_as(&back, &alice).unwrap(), body());
    }

    #[test]
    fn round_trip_three_recipients_each_with_its_own_key() {
        let (alice, bob, carol) = (key("alice"), key("bob"), key("carol"));
        // Bob's identity is an older key; the content key goes to his current one.
        let bob_id = *key("bob-identity").did();
        let readers = vec![
            (*carol.did(), *carol.did()),
            (bob_id, *bob.did()),
            (*alice.did(), *alice.did()),
        ];
        let sealed = seal(
            KIND,
            alice.did(),
            Some(&origin()),
            &body(),
            &readers,
            &mut rng(),
        )
        .unwrap();
        let open_with =
            |id: &Did, k: &Keypair| open(KIND, alice.did(), Some(&origin()), &sealed, id, k);
        assert_eq!(open_with(alice.did(), &alice).unwrap(), body());
        assert_eq!(open_with(&bob_id, &bob).unwrap(), body());
        assert_eq!(open_with(carol.did(), &carol).unwrap(), body());

        let mut ids = vec![*alice.did(), bob_id, *carol.did()];
        ids.sort();
        assert_eq!(recipients(&sealed).unwrap(), Some(ids.clone()));
        // Sorted by key bytes is sorted by did:key text too.
        let texts: Vec<String> = ids.iter().map(Did::to_string).collect();
        assert!(texts.is_sorted());
        // Each wrap is its own: fresh ephemeral keys.
        let s = shape(&sealed).unwrap().unwrap();
        assert_ne!(s.to[0].enc, s.to[1].enc);
        assert_eq!(s.recipient(&bob_id).unwrap().key, *bob.did());
    }

    #[test]
    fn aad_is_the_dag_cbor_list_of_the_format() {
        let (alice, bob) = (key("alice"), key("bob"));
        let ids = [*alice.did(), *bob.did()];
        let o = origin();
        let got = aad(KIND, alice.did(), Some(&o), &ids).unwrap();
        let texts: Vec<String> = ids.iter().map(Did::to_string).collect();
        let want = (
            AAD_LABEL,
            KIND,
            alice.did().to_string(),
            Some(o),
            texts.clone(),
        );
        assert_eq!(got, cbor::encode(&want).unwrap());
        // A five-element array whose first element is the 15-byte label.
        assert_eq!(got[..2], [0x85, 0x6f]);
        let no_origin = aad(KIND, alice.did(), None, &ids).unwrap();
        let want = (AAD_LABEL, KIND, alice.did().to_string(), None::<Cid>, texts);
        assert_eq!(no_origin, cbor::encode(&want).unwrap());
    }

    #[test]
    fn version_zero_has_no_origin() {
        let alice = key("alice");
        let sealed = seal(
            KIND,
            alice.did(),
            None,
            &body(),
            &readers(&[&alice]),
            &mut rng(),
        )
        .unwrap();
        assert_eq!(
            open(KIND, alice.did(), None, &sealed, alice.did(), &alice).unwrap(),
            body()
        );
        assert_eq!(
            open(
                KIND,
                alice.did(),
                Some(&origin()),
                &sealed,
                alice.did(),
                &alice
            ),
            Err(PrivateError::Decrypt)
        );
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let (alice, bob) = (key("alice"), key("bob"));
        let r = readers(&[&alice, &bob]);
        let with = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            seal(KIND, alice.did(), None, &body(), &r, &mut rng).unwrap()
        };
        assert_eq!(with(1), with(1));
        assert_ne!(with(1), with(2));
    }

    #[test]
    fn the_author_is_always_a_recipient() {
        let (alice, bob) = (key("alice"), key("bob"));
        assert_eq!(
            seal(
                KIND,
                alice.did(),
                None,
                &body(),
                &readers(&[&bob]),
                &mut rng()
            ),
            Err(PrivateError::AuthorNotARecipient(*alice.did()))
        );
        // A well-formed body by someone not in its `to` is refused on receipt.
        let sealed = seal_to(&[&alice, &bob]);
        let carol = key("carol");
        assert_eq!(
            check(&sealed, carol.did()),
            Err(PrivateError::AuthorNotARecipient(*carol.did()))
        );
        assert!(check(&sealed, alice.did()).unwrap().is_some());
        assert_eq!(check(&body(), carol.did()), Ok(None));
    }

    #[test]
    fn only_recipients_with_the_right_key_open() {
        let (alice, bob, eve) = (key("alice"), key("bob"), key("eve"));
        let sealed = seal_to(&[&alice, &bob]);
        assert_eq!(
            open_as(&sealed, &eve),
            Err(PrivateError::NotARecipient(*eve.did()))
        );
        // Bob's identity with another key (say, one he rotated to later).
        assert_eq!(
            open(KIND, alice.did(), Some(&origin()), &sealed, bob.did(), &eve),
            Err(PrivateError::WrongKey {
                identity: *bob.did(),
                wrapped_to: *bob.did()
            })
        );
        // Eve edits her key into Bob's entry: the wrap is still Bob's.
        let mut forged = sealed.clone();
        let i = usize::from(alice.did() < bob.did());
        entry_mut(&mut forged, i).insert("key".into(), Ipld::String(eve.did().to_string()));
        assert_eq!(
            open(KIND, alice.did(), Some(&origin()), &forged, bob.did(), &eve),
            Err(PrivateError::Decrypt)
        );
        assert_eq!(open_as(&body(), &alice), Err(PrivateError::NotPrivate));
    }

    #[test]
    fn flipped_bytes_do_not_decrypt() {
        let (alice, bob) = (key("alice"), key("bob"));
        let sealed = seal_to(&[&alice, &bob]);
        let flip = |b: &mut Vec<u8>, at: usize| b[at] ^= 0x01;
        for field in ["ct", "nonce"] {
            for at in [0, 7] {
                let mut t = sealed.clone();
                flip(bytes_mut(private_mut(&mut t), field), at);
                assert_eq!(
                    open_as(&t, &alice),
                    Err(PrivateError::Decrypt),
                    "{field}[{at}]"
                );
                assert_eq!(
                    open_as(&t, &bob),
                    Err(PrivateError::Decrypt),
                    "{field}[{at}]"
                );
            }
        }
        let last = |t: &Ipld, f: &str| {
            let s = shape(t).unwrap().unwrap();
            if f == "ct" {
                s.ct.len() - 1
            } else {
                NONCE_LEN - 1
            }
        };
        for field in ["ct", "nonce"] {
            let mut t = sealed.clone();
            let at = last(&t, field);
            flip(bytes_mut(private_mut(&mut t), field), at);
            assert_eq!(open_as(&t, &alice), Err(PrivateError::Decrypt));
        }
        for field in ["enc", "wrap"] {
            for at in [0, 17, 31] {
                for i in 0..2 {
                    let mut t = sealed.clone();
                    flip(bytes_mut(entry_mut(&mut t, i), field), at);
                    let whose = if shape(&t).unwrap().unwrap().to[i].id == *alice.did() {
                        &alice
                    } else {
                        &bob
                    };
                    assert_eq!(
                        open_as(&t, whose),
                        Err(PrivateError::Decrypt),
                        "{field}[{at}]"
                    );
                }
            }
        }
    }

    #[test]
    fn editing_to_or_the_context_does_not_decrypt() {
        let (alice, bob, carol, dave) = (key("alice"), key("bob"), key("carol"), key("dave"));
        let sealed = seal_to(&[&alice, &bob, &carol]);
        let position = |d: &Did| {
            shape(&sealed)
                .unwrap()
                .unwrap()
                .to
                .iter()
                .position(|r| r.id == *d)
                .unwrap()
        };

        // Dropping Carol: Alice and Bob can no longer open it.
        let mut dropped = sealed.clone();
        to_mut(&mut dropped).remove(position(carol.did()));
        assert_eq!(open_as(&dropped, &alice), Err(PrivateError::Decrypt));
        assert_eq!(open_as(&dropped, &bob), Err(PrivateError::Decrypt));

        // Adding Dave, with a copy of Carol's wrap: nobody can open it.
        let mut added = sealed.clone();
        let mut dave_entry = to_mut(&mut added)[position(carol.did())].clone();
        let Ipld::Map(e) = &mut dave_entry else {
            panic!()
        };
        e.insert("id".into(), Ipld::String(dave.did().to_string()));
        e.insert("key".into(), Ipld::String(dave.did().to_string()));
        to_mut(&mut added).push(dave_entry);
        let Ipld::List(to) = private_mut(&mut added).get_mut("to").unwrap() else {
            panic!()
        };
        to.sort_by_key(|e| {
            let Ipld::Map(e) = e else { panic!() };
            let Some(Ipld::String(id)) = e.get("id") else {
                panic!()
            };
            id.parse::<Did>().unwrap()
        });
        assert!(shape(&added).is_ok());
        for k in [&alice, &bob, &carol, &dave] {
            assert_eq!(open_as(&added, k), Err(PrivateError::Decrypt));
        }

        // Another type, author or origin than the one sealed.
        let o = origin();
        let other = crate::cids::record_cid(b"another item");
        let a = alice.did();
        assert_eq!(
            open("social.post", a, Some(&o), &sealed, a, &alice),
            Err(PrivateError::Decrypt)
        );
        assert_eq!(
            open(KIND, a, Some(&other), &sealed, a, &alice),
            Err(PrivateError::Decrypt)
        );
        assert_eq!(
            open(KIND, a, None, &sealed, a, &alice),
            Err(PrivateError::Decrypt)
        );
        assert_eq!(
            open(KIND, bob.did(), Some(&o), &sealed, a, &alice),
            Err(PrivateError::Decrypt)
        );
    }

    #[test]
    fn a_removed_recipient_cannot_read_later_versions() {
        let (alice, bob, carol) = (key("alice"), key("bob"), key("carol"));
        let mut rng = rng();
        let o = origin();
        let a = alice.did();
        let v1 = seal(
            KIND,
            a,
            Some(&o),
            &body(),
            &readers(&[&alice, &bob, &carol]),
            &mut rng,
        )
        .unwrap();
        let v2 = seal(
            KIND,
            a,
            Some(&o),
            &body(),
            &readers(&[&alice, &bob]),
            &mut rng,
        )
        .unwrap();
        assert_eq!(
            open(KIND, a, Some(&o), &v1, carol.did(), &carol).unwrap(),
            body()
        );
        assert_eq!(
            open(KIND, a, Some(&o), &v2, carol.did(), &carol),
            Err(PrivateError::NotARecipient(*carol.did()))
        );
        assert_eq!(
            open(KIND, a, Some(&o), &v2, bob.did(), &bob).unwrap(),
            body()
        );
        // Grafting the old `to` into the new version: her wrap opens (same ids, type, author
        // and origin), but to the old content key, so the new ciphertext still does not.
        let mut grafted = v2.clone();
        let old_to = to_mut(&mut v1.clone()).clone();
        *to_mut(&mut grafted) = old_to;
        assert_eq!(
            open(KIND, a, Some(&o), &grafted, carol.did(), &carol),
            Err(PrivateError::Decrypt)
        );
    }

    #[test]
    fn clear_record_keys_stay_beside_and_come_back() {
        let alice = key("alice");
        let owner = Ipld::Map(BTreeMap::from([("group".to_owned(), Ipld::Link(origin()))]));
        let Ipld::Map(mut with_owner) = body() else {
            panic!()
        };
        with_owner.insert("$owner".into(), owner.clone());
        let with_owner = Ipld::Map(with_owner);
        let sealed = seal(
            KIND,
            alice.did(),
            None,
            &with_owner,
            &readers(&[&alice]),
            &mut rng(),
        )
        .unwrap();
        let Ipld::Map(m) = &sealed else { panic!() };
        assert_eq!(m.get("$owner"), Some(&owner));
        assert!(shape(&sealed).unwrap().is_some());
        assert_eq!(
            open(KIND, alice.did(), None, &sealed, alice.did(), &alice).unwrap(),
            with_owner
        );

        // Other `$` keys, an already private body and a non-map are not sealed.
        for k in ["$private", "$other"] {
            let Ipld::Map(mut b) = body() else { panic!() };
            b.insert(k.into(), Ipld::Null);
            assert!(matches!(
                seal(
                    KIND,
                    alice.did(),
                    None,
                    &Ipld::Map(b),
                    &readers(&[&alice]),
                    &mut rng()
                ),
                Err(PrivateError::Shape(_))
            ));
        }
        assert!(matches!(
            seal(
                KIND,
                alice.did(),
                None,
                &Ipld::Null,
                &readers(&[&alice]),
                &mut rng()
            ),
            Err(PrivateError::Shape(_))
        ));
    }

    #[test]
    fn seal_checks_its_recipients() {
        let (alice, bob, eve) = (key("alice"), key("bob"), key("eve"));
        let a = alice.did();
        // The same pair twice is one recipient.
        let twice = vec![(*a, *a), (*bob.did(), *bob.did()), (*a, *a)];
        let sealed = seal(KIND, a, None, &body(), &twice, &mut rng()).unwrap();
        assert_eq!(recipients(&sealed).unwrap().unwrap().len(), 2);
        // One identity with two keys is ambiguous.
        let two_keys = vec![(*a, *a), (*bob.did(), *bob.did()), (*bob.did(), *eve.did())];
        assert_eq!(
            seal(KIND, a, None, &body(), &two_keys, &mut rng()),
            Err(PrivateError::DuplicateRecipient(*bob.did()))
        );
        let many: Vec<(Did, Did)> = (0..MAX_RECIPIENTS)
            .map(|i| key(&format!("reader {i}")))
            .chain([alice.clone()])
            .map(|k| (*k.did(), *k.did()))
            .collect();
        assert_eq!(
            seal(KIND, a, None, &body(), &many, &mut rng()),
            Err(PrivateError::TooManyRecipients(MAX_RECIPIENTS + 1))
        );
        // A small-order point is a valid ed25519 encoding but no one can hold its secret.
        let mut identity_point = [0u8; 32];
        identity_point[0] = 1;
        let weak = Did::from_public_key(&identity_point).unwrap();
        assert_eq!(
            seal(
                KIND,
                a,
                None,
                &body(),
                &[(*a, *a), (weak, weak)],
                &mut rng()
            ),
            Err(PrivateError::BadKey(weak))
        );
    }

    #[test]
    fn shape_errors() {
        let (alice, bob) = (key("alice"), key("bob"));
        let sealed = seal_to(&[&alice, &bob]);
        assert!(shape(&sealed).unwrap().is_some());
        assert_eq!(shape(&body()), Ok(None));
        assert_eq!(shape(&Ipld::Null), Ok(None));

        // Unsorted and duplicate `to`.
        let mut t = sealed.clone();
        to_mut(&mut t).swap(0, 1);
        assert!(matches!(shape_err(&t), PrivateError::Shape(m) if m.contains("out of order")));
        let mut t = sealed.clone();
        let first = to_mut(&mut t)[0].clone();
        to_mut(&mut t)[1] = first;
        assert!(matches!(shape_err(&t), PrivateError::DuplicateRecipient(_)));
        let mut t = sealed.clone();
        to_mut(&mut t).clear();
        assert!(matches!(shape_err(&t), PrivateError::Shape(_)));

        // More than 500.
        let mut t = sealed.clone();
        let entry = to_mut(&mut t)[0].clone();
        let mut keys: Vec<Did> = (0..=MAX_RECIPIENTS)
            .map(|i| *key(&format!("reader {i}")).did())
            .collect();
        keys.sort();
        *to_mut(&mut t) = keys
            .iter()
            .map(|d| {
                let mut e = entry.clone();
                let Ipld::Map(m) = &mut e else { panic!() };
                m.insert("id".into(), Ipld::String(d.to_string()));
                e
            })
            .collect();
        assert_eq!(
            shape_err(&t),
            PrivateError::TooManyRecipients(MAX_RECIPIENTS + 1)
        );
        to_mut(&mut t).pop();
        assert!(shape(&t).unwrap().is_some(), "exactly 500 is fine");

        // A kind field, or an unknown `$` key, beside `$private`; `$owner` and `$signer` may be.
        for (k, ok) in [
            ("text", false),
            ("$other", false),
            ("$owner", true),
            ("$signer", true),
        ] {
            let mut t = sealed.clone();
            let Ipld::Map(m) = &mut t else { panic!() };
            m.insert(k.into(), Ipld::String("x".into()));
            assert_eq!(shape(&t).is_ok(), ok, "{k}");
        }

        // Wrong sizes and types.
        for (field, len) in [
            ("nonce", NONCE_LEN - 1),
            ("nonce", NONCE_LEN + 1),
            ("ct", TAG_LEN),
        ] {
            let mut t = sealed.clone();
            bytes_mut(private_mut(&mut t), field).resize(len, 0);
            assert!(
                matches!(shape_err(&t), PrivateError::Shape(_)),
                "{field} {len}"
            );
        }
        for (field, len) in [("enc", ENC_LEN - 1), ("wrap", WRAP_LEN + 1)] {
            let mut t = sealed.clone();
            bytes_mut(entry_mut(&mut t, 0), field).resize(len, 0);
            assert!(
                matches!(shape_err(&t), PrivateError::Shape(_)),
                "{field} {len}"
            );
        }
        let mut t = sealed.clone();
        private_mut(&mut t).insert("nonce".into(), Ipld::String("x".into()));
        assert!(matches!(shape_err(&t), PrivateError::Shape(_)));
        let mut t = sealed.clone();
        entry_mut(&mut t, 0).insert("id".into(), Ipld::String("did:web:example.com".into()));
        assert!(matches!(shape_err(&t), PrivateError::Shape(_)));
        let mut t = sealed.clone();
        let bytes = Ipld::Bytes(alice.did().public_key().to_vec());
        entry_mut(&mut t, 0).insert("key".into(), bytes);
        assert!(matches!(shape_err(&t), PrivateError::Shape(_)));

        // Missing and extra keys.
        let mut t = sealed.clone();
        private_mut(&mut t).remove("ct");
        assert!(matches!(shape_err(&t), PrivateError::Shape(_)));
        let mut t = sealed.clone();
        private_mut(&mut t).insert("hint".into(), Ipld::Null);
        assert!(matches!(shape_err(&t), PrivateError::Shape(_)));
        let mut t = sealed.clone();
        entry_mut(&mut t, 0).insert("note".into(), Ipld::Null);
        assert!(matches!(shape_err(&t), PrivateError::Shape(_)));
        let mut t = sealed.clone();
        let Ipld::Map(m) = &mut t else { panic!() };
        m.insert(PRIVATE_KEY.into(), Ipld::Bytes(vec![1]));
        assert!(matches!(shape_err(&t), PrivateError::Shape(_)));

        // Other format versions.
        for v in [0, 2] {
            let mut t = sealed.clone();
            private_mut(&mut t).insert("v".into(), Ipld::Integer(v));
            assert_eq!(shape_err(&t), PrivateError::UnknownVersion(v));
        }
        let mut t = sealed.clone();
        private_mut(&mut t).insert("v".into(), Ipld::String("1".into()));
        assert!(matches!(shape_err(&t), PrivateError::Shape(_)));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(64)
        ))]

        #[test]
        fn any_body_round_trips_for_every_reader(
            fields in prop::collection::btree_map(
                "[a-z]{1,8}",
                prop_oneof![
                    any::<i64>().prop_map(|n| Ipld::Integer(n.into())),
                    ".{0,40}".prop_map(Ipld::String),
                    prop::collection::vec(any::<u8>(), 0..64).prop_map(Ipld::Bytes),
                    any::<bool>().prop_map(Ipld::Bool),
                ],
                0..6,
            ),
            n in 1usize..5,
            seed in any::<u64>(),
            with_origin in any::<bool>(),
        ) {
            let body = Ipld::Map(fields);
            let keys: Vec<Keypair> = (0..n).map(|i| Keypair::derive(seed, &i.to_string())).collect();
            let author = keys[seed as usize % n].did();
            let o = with_origin.then(origin);
            let r: Vec<(Did, Did)> = keys.iter().map(|k| (*k.did(), *k.did())).collect();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let sealed = seal(KIND, author, o.as_ref(), &body, &r, &mut rng).unwrap();
            let back = cbor::decode_ipld(&cbor::encode(&sealed).unwrap()).unwrap();
            prop_assert_eq!(&back, &sealed);
            for k in &keys {
                prop_assert_eq!(&open(KIND, author, o.as_ref(), &back, k.did(), k).unwrap(), &body);
            }
            let outsider = Keypair::derive(seed, "outsider");
            prop_assert_eq!(
                open(KIND, author, o.as_ref(), &back, outsider.did(), &outsider),
                Err(PrivateError::NotARecipient(*outsider.did()))
            );
        }
    }
}

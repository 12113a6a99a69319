//! The signed record envelope and its version chain.
//!
//! Every model is stored as one DAG-CBOR block:
//!
//! ```text
//! { "type", "author", "origin", "prev", "seq", "created", "updated", "body", "sig" }
//! ```
//!
//! `sig` is an ed25519 signature by `author` over the DAG-CBOR encoding of the same map
//! without `sig`. An item's stable id is the CID of its version 0 (its origin). A new version
//! links the version it replaces in `prev`; a tombstone is a version whose body is null.

use std::time::{SystemTime, UNIX_EPOCH};

use ipld_core::ipld::Ipld;
use serde::{Deserialize, Serialize};

use crate::{
    authority::Authority,
    cbor::{self, DecodeError, EncodeError},
    cids::{self, Cid, LinkKind},
    group::{self, GROUP_KIND, GroupError, OwnerCite},
    key_log::{self, KEYS_KIND, KeyError, SignerCite},
    keys::{self, Did, Keypair, SIGNATURE_LEN, SignedMessage},
    registry::{self, Index, Model, RecordFields, SchemaError, Strictness},
};

/// Largest encoded record accepted (1 MiB). Files go to the blob store, not into records.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// The longest kind name (`namespace.kind`).
pub const MAX_KIND_LEN: usize = 64;

/// The fields of a signed record, decoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// `namespace.kind`, for example `art.release`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The signer.
    pub author: Did,
    /// CID of version 0; `None` on version 0 itself.
    pub origin: Option<Cid>,
    /// The version this one replaces; `None` on version 0.
    pub prev: Option<Cid>,
    /// Version number, 0 for the first.
    pub seq: u64,
    /// Milliseconds since the epoch when version 0 was made.
    pub created: u64,
    /// Milliseconds since the epoch when this version was made.
    pub updated: u64,
    /// The model's fields; `None` (null) marks a tombstone.
    pub body: Option<Ipld>,
    /// ed25519 signature over the encoding of the other eight fields.
    #[serde(with = "serde_bytes")]
    pub sig: [u8; SIGNATURE_LEN],
}

impl Envelope {
    /// The canonical DAG-CBOR encoding of the whole envelope (the record's bytes).
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let author = self.author.to_string();
        let signed = self.unsigned(&author).encode()?;
        Ok(splice_sig(&signed, self.seq, &self.sig))
    }

    fn unsigned<'a>(&'a self, author: &'a str) -> Unsigned<'a> {
        Unsigned {
            kind: &self.kind,
            author,
            origin: self.origin,
            prev: self.prev,
            seq: self.seq,
            created: self.created,
            updated: self.updated,
            body: self.body.as_ref(),
        }
    }

    /// Re-signs these fields as they are, checking no rule. For tests and tools that need to
    /// produce records that break chain or schema rules; normal writes go through [`Draft`].
    pub fn resign(&mut self, key: &Keypair) -> Result<Vec<u8>, EncodeError> {
        self.author = *key.did();
        let signed = self.unsigned(key.did_text()).encode()?;
        self.sig = key.sign(&signed);
        Ok(splice_sig(&signed, self.seq, &self.sig))
    }
}

/// The eight signed fields, borrowed, in the shape that is signed. (Serialize is only for
/// checking [`Unsigned::encode`] against serde in tests.)
#[cfg_attr(test, derive(Serialize))]
struct Unsigned<'a> {
    #[cfg_attr(test, serde(rename = "type"))]
    kind: &'a str,
    /// The author's `did:key` string (keys keep theirs, so signing does not re-encode it).
    author: &'a str,
    origin: Option<Cid>,
    prev: Option<Cid>,
    seq: u64,
    created: u64,
    updated: u64,
    body: Option<&'a Ipld>,
}

impl Unsigned<'_> {
    /// The canonical encoding of the eight signed fields, in canonical key order (length
    /// first, then bytewise): seq, body, prev, type, author, origin, created, updated.
    fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut buf = Vec::with_capacity(512);
        buf.push(0xa8);
        cbor::write_text(&mut buf, "seq");
        cbor::write_head(&mut buf, 0, self.seq);
        cbor::write_text(&mut buf, "body");
        match self.body {
            Some(body) => cbor::encode_ipld_into(&mut buf, body)?,
            None => buf.push(0xf6),
        }
        cbor::write_text(&mut buf, "prev");
        write_opt_link(&mut buf, self.prev);
        cbor::write_text(&mut buf, "type");
        cbor::write_text(&mut buf, self.kind);
        cbor::write_text(&mut buf, "author");
        cbor::write_text(&mut buf, self.author);
        cbor::write_text(&mut buf, "origin");
        write_opt_link(&mut buf, self.origin);
        cbor::write_text(&mut buf, "created");
        cbor::write_head(&mut buf, 0, self.created);
        cbor::write_text(&mut buf, "updated");
        cbor::write_head(&mut buf, 0, self.updated);
        Ok(buf)
    }
}

fn write_opt_link(buf: &mut Vec<u8>, cid: Option<Cid>) {
    match cid {
        Some(cid) => cbor::write_link(buf, &cid),
        None => buf.push(0xf6),
    }
}

/// A record that decoded strictly and whose signature, version rules and (for registered
/// kinds) schema checked out, together with its bytes and CID.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    envelope: Envelope,
    bytes: Vec<u8>,
    cid: Cid,
    index: Index,
    fields: RecordFields,
}

/// Why a record was rejected or could not be made. Each variant names the rule it broke.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The encoding is larger than [`MAX_RECORD_BYTES`].
    #[error("record is {size} bytes, over the {MAX_RECORD_BYTES}-byte limit")]
    TooLarge {
        /// Size of the offending encoding.
        size: usize,
    },
    /// Not strict DAG-CBOR, or not an envelope.
    #[error("record does not decode: {0}")]
    Decode(#[from] DecodeError),
    /// The envelope lacks a field or has an extra one.
    #[error(
        "envelope must be a map of exactly type, author, origin, prev, seq, created, updated, body and sig"
    )]
    EnvelopeShape,
    /// The `type` is not a valid kind name.
    #[error(
        "invalid kind {0:?}: expected namespace.kind in lowercase letters, digits and '_', at most {MAX_KIND_LEN} characters"
    )]
    KindName(String),
    /// The kind is not in the registry (only where a registered kind is required).
    #[error("unknown kind {0:?}; `mnode types` lists the registered kinds")]
    UnknownKind(String),
    /// A rule about a single version's fields.
    #[error("version rule broken: {0}")]
    Version(&'static str),
    /// The signature does not verify.
    #[error("signature does not verify for author {0}")]
    BadSignature(Did),
    /// The body does not match the kind's schema.
    #[error("{kind} body is invalid: {error}")]
    Schema {
        /// The kind.
        kind: String,
        /// What is wrong with the body.
        error: SchemaError,
    },
    /// The record does not validly follow the version it claims to replace.
    #[error("chain rule broken: {0}")]
    Chain(Box<ChainError>),
    /// Encoding failed (a body value DAG-CBOR cannot represent).
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

impl From<ChainError> for RecordError {
    fn from(e: ChainError) -> Self {
        Self::Chain(Box::new(e))
    }
}

/// A version does not follow its predecessor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// A different key signed the new version.
    #[error("author changed from {expected} to {found}")]
    AuthorChanged {
        /// The item's author.
        expected: Did,
        /// The new version's author.
        found: Did,
    },
    /// `origin` is not the predecessor's origin.
    #[error("origin is {found:?}, expected {expected}")]
    OriginMismatch {
        /// The item's origin.
        expected: Cid,
        /// What the new version says.
        found: Option<Cid>,
    },
    /// `prev` does not link the predecessor.
    #[error("prev is {found:?}, expected {expected}")]
    PrevMismatch {
        /// The predecessor's CID.
        expected: Cid,
        /// What the new version says.
        found: Option<Cid>,
    },
    /// `seq` is not the predecessor's plus one.
    #[error("seq is {found}, expected {expected}")]
    SeqNotNext {
        /// Predecessor's seq + 1.
        expected: u64,
        /// What the new version says.
        found: u64,
    },
    /// `created` differs from the item's.
    #[error("created changed from {expected} to {found}")]
    CreatedChanged {
        /// The item's creation time.
        expected: u64,
        /// What the new version says.
        found: u64,
    },
    /// `updated` is earlier than the predecessor's.
    #[error("updated {found} is earlier than the previous version's {previous}")]
    UpdatedEarlier {
        /// The predecessor's `updated`.
        previous: u64,
        /// What the new version says.
        found: u64,
    },
    /// The kind changed between versions.
    #[error("type changed from {expected} to {found}")]
    KindChanged {
        /// The item's kind.
        expected: String,
        /// What the new version says.
        found: String,
    },
    /// The predecessor is a tombstone: a deleted item gets no new versions.
    #[error("the previous version is a tombstone; a deleted item takes no new versions")]
    AfterTombstone,
    /// A rule of group-owned items or of a group's own chain ([`crate::group`]).
    #[error(transparent)]
    Group(#[from] GroupError),
    /// A rule of key logs or of records signed by a rotated key ([`crate::key_log`]).
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// Whether any key may sign a successor as far as the envelope rules go, leaving who may to the
/// group or key rules: a group's item (`owned`), a group, a key log.
pub(crate) fn shared(kind: &str, owned: bool) -> bool {
    owned || kind == GROUP_KIND || kind == KEYS_KIND
}

/// The error for a successor signed for another identity: today's `AuthorChanged` when neither
/// side cites a signer, K7's `IdentityChanged` when one does.
fn identity_changed(expected: Did, found: Did, cited: bool) -> ChainError {
    if cited {
        KeyError::IdentityChanged { expected, found }.into()
    } else {
        ChainError::AuthorChanged { expected, found }
    }
}

/// A record being made: fill it, then [`Draft::sign`] it.
#[derive(Debug, Clone)]
#[must_use = "a draft does nothing until it is signed"]
pub struct Draft {
    kind: String,
    body: Option<Ipld>,
    /// Set when the body came from a typed model that already passed its checks.
    checked: Option<Index>,
    at: Option<u64>,
    prev: Option<VersionInfo>,
    owner: Option<OwnerCite>,
    signer: Option<SignerCite>,
}

/// What the chain rules need to know about a version, without its body: enough for a store to
/// check a new version against the one it replaces without decoding or re-verifying it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// The version's CID.
    pub cid: Cid,
    /// The item's id (its version 0's CID).
    pub id: Cid,
    /// `namespace.kind`.
    pub kind: String,
    /// The signer.
    #[serde(with = "crate::keys::did_bytes")]
    pub author: Did,
    /// Version number.
    pub seq: u64,
    /// When version 0 was made (ms).
    pub created: u64,
    /// When this version was made (ms).
    pub updated: u64,
    /// Whether this version deletes the item.
    pub tombstone: bool,
    /// The version this one replaces (absent in entries stored before groups existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<Cid>,
    /// The owning group and the group version this version relies on (a tombstone's is its
    /// predecessor's, filled in by the store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<OwnerCite>,
    /// The identity this version is signed for and the key log version granting its key, when
    /// that is not the identity's first key (a tombstone signed by its predecessor's key takes
    /// the predecessor's: [`Record::info_following`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<SignerCite>,
}

impl VersionInfo {
    /// The identity the version is signed for: `signer`'s, or the author's own.
    pub fn identity(&self) -> Did {
        self.signer.map_or(self.author, |s| s.identity)
    }
}

impl Draft {
    /// Version 0 of a new item of `kind` with a generic IPLD body.
    pub fn new(kind: impl Into<String>, body: Ipld) -> Self {
        Self {
            kind: kind.into(),
            body: Some(body),
            checked: None,
            at: None,
            prev: None,
            owner: None,
            signer: None,
        }
    }

    /// Makes the version cite its owning group: `group` is the group's id, `at` the group
    /// version that grants the signer its role ([`crate::group`]). Version 0 makes the item the
    /// group's; every later version of a group's item cites the group again. A tombstone cites
    /// nothing (it relies on its predecessor's citation).
    pub fn owned_by(mut self, cite: OwnerCite) -> Self {
        self.owner = Some(cite);
        self
    }

    /// Makes the version say which identity it is signed for and which key log version grants
    /// the signing key ([`crate::key_log`]): needed whenever a key other than the identity's
    /// first signs. Every version signed by a rotated key cites it again. A tombstone cites
    /// nothing: it takes its predecessor's citation, so it is signed by its predecessor's key
    /// (a newer key first writes a version citing itself, then deletes).
    pub fn signed_as(mut self, cite: SignerCite) -> Self {
        self.signer = Some(cite);
        self
    }

    /// Sets the time of this version (ms since the epoch) instead of the clock's.
    pub fn at(mut self, ms: u64) -> Self {
        self.at = Some(ms);
        self
    }

    /// The kind being written.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The body (none for a tombstone).
    pub fn body(&self) -> Option<&Ipld> {
        self.body.as_ref()
    }

    /// The author a new version must be signed by (`None` for a new item).
    pub fn author(&self) -> Option<&Did> {
        self.prev.as_ref().map(|p| &p.author)
    }

    /// Signs the draft with `key`, checking the kind's schema (strictly: unknown fields are an
    /// error) when the kind is registered, and the chain rules when it is a new version.
    pub fn sign(mut self, key: &Keypair) -> Result<Record, RecordError> {
        check_kind_name(&self.kind)?;
        if let Some(body) = self.body.as_mut()
            && (self.owner.is_some() || self.signer.is_some())
        {
            let Ipld::Map(map) = body else {
                return Err(RecordError::Schema {
                    kind: self.kind.clone(),
                    error: SchemaError::new("", "a body citing $owner or $signer is a map"),
                });
            };
            if let Some(cite) = self.owner {
                map.insert(group::OWNER_FIELD.to_owned(), cite.to_ipld());
            }
            if let Some(cite) = self.signer {
                map.insert(key_log::SIGNER_FIELD.to_owned(), cite.to_ipld());
            }
        }
        let (index, fields) = match (self.checked.take(), self.body.as_ref()) {
            // A typed model checked already and cannot carry `$` fields of its own.
            (Some(mut index), _) => {
                let fields = RecordFields {
                    owner: self.owner.filter(|_| self.body.is_some()),
                    signer: self.signer.filter(|_| self.body.is_some()),
                    private: false,
                };
                owner_topic(&mut index, &fields);
                (index, fields)
            }
            (None, Some(body)) => validate_body(&self.kind, body, Strictness::Create)?,
            (None, None) => (Index::default(), RecordFields::default()),
        };
        let now = self.at.unwrap_or_else(now_ms);
        let (origin, prev, seq, created, updated) = match &self.prev {
            None => (None, None, 0, now, now),
            Some(p) => {
                // Any member may sign a group's item, any manager the group, the key or the
                // recovery key of a log its next version: the group and key rules judge the
                // signer where the cited chains are at hand (the store). Otherwise the version
                // is signed for the same identity, by its first key or a key it cites.
                let cite = if self.body.is_some() {
                    self.signer
                } else {
                    p.signer.filter(|_| p.author == *key.did())
                };
                let identity = cite.map_or(*key.did(), |c| c.identity);
                if identity != p.identity() && !shared(&p.kind, p.owner.is_some()) {
                    let cited = cite.is_some() || p.signer.is_some();
                    return Err(identity_changed(p.identity(), identity, cited).into());
                }
                if p.tombstone {
                    return Err(ChainError::AfterTombstone.into());
                }
                (
                    Some(p.id),
                    Some(p.cid),
                    p.seq + 1,
                    p.created,
                    now.max(p.updated),
                )
            }
        };
        if let Some(body) = self.body.as_ref().filter(|_| fields.private) {
            check_sealed_for_author(&self.kind, body, &fields, key.did())?;
        }
        if self.body.is_none() && seq == 0 {
            return Err(RecordError::Version("version 0 cannot be a tombstone"));
        }
        let unsigned = Unsigned {
            kind: &self.kind,
            author: key.did_text(),
            origin,
            prev,
            seq,
            created,
            updated,
            body: self.body.as_ref(),
        };
        let signed_bytes = unsigned.encode()?;
        let sig = key.sign(&signed_bytes);
        let bytes = splice_sig(&signed_bytes, seq, &sig);
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(RecordError::TooLarge { size: bytes.len() });
        }
        let cid = cids::record_cid(&bytes);
        let envelope = Envelope {
            kind: self.kind,
            author: *key.did(),
            origin,
            prev,
            seq,
            created,
            updated,
            body: self.body,
            sig,
        };
        Ok(Record {
            envelope,
            bytes,
            cid,
            index,
            fields,
        })
    }
}

impl Record {
    /// Version 0 of a new item holding `model`, which is checked now.
    pub fn create<M: Model>(model: &M) -> Result<Draft, RecordError> {
        let (body, index) = checked_body(model)?;
        Ok(Draft {
            kind: M::KIND.to_owned(),
            body: Some(body),
            checked: Some(index),
            at: None,
            prev: None,
            owner: None,
            signer: None,
        })
    }

    /// A new version of this item with `body` (a generic IPLD body).
    pub fn update_body(&self, body: Ipld) -> Draft {
        Draft {
            kind: self.envelope.kind.clone(),
            body: Some(body),
            checked: None,
            at: None,
            prev: Some(self.as_prev()),
            owner: None,
            signer: None,
        }
    }

    /// A new version of this item holding `model`, which is checked now.
    pub fn update<M: Model>(&self, model: &M) -> Result<Draft, RecordError> {
        if M::KIND != self.envelope.kind {
            return Err(ChainError::KindChanged {
                expected: self.envelope.kind.clone(),
                found: M::KIND.to_owned(),
            }
            .into());
        }
        let (body, index) = checked_body(model)?;
        Ok(Draft {
            kind: M::KIND.to_owned(),
            body: Some(body),
            checked: Some(index),
            at: None,
            prev: Some(self.as_prev()),
            owner: None,
            signer: None,
        })
    }

    /// A tombstone version that deletes this item and keeps its history verifiable.
    pub fn delete(&self) -> Draft {
        Draft {
            kind: self.envelope.kind.clone(),
            body: None,
            checked: Some(Index::default()),
            at: None,
            prev: Some(self.as_prev()),
            owner: None,
            signer: None,
        }
    }

    fn as_prev(&self) -> VersionInfo {
        self.info()
    }

    /// This version's chain facts.
    pub fn info(&self) -> VersionInfo {
        let e = &self.envelope;
        VersionInfo {
            cid: self.cid,
            id: self.id(),
            kind: e.kind.clone(),
            author: e.author,
            seq: e.seq,
            created: e.created,
            updated: e.updated,
            tombstone: e.body.is_none(),
            prev: e.prev,
            owner: self.fields.owner,
            signer: self.fields.signer,
        }
    }

    /// This version's chain facts as a store keeps them once it follows `prev`: a tombstone
    /// takes its predecessor's group citation, and its signer citation when signed by the
    /// predecessor's key.
    pub fn info_following(&self, prev: &VersionInfo) -> VersionInfo {
        let mut info = self.info();
        if self.is_tombstone() {
            info.owner = prev.owner;
            info.signer = key_log::effective_signer(self, Some(prev));
        }
        info
    }

    /// Decodes and verifies a record that came from outside: strict DAG-CBOR, the envelope's
    /// shape, the version rules of a single record, the signature, and (for registered kinds)
    /// the schema, leniently (fields a newer node added are kept).
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        Self::decode_owned(bytes.to_vec())
    }

    /// As [`Record::decode`], taking ownership of the bytes.
    pub fn decode_owned(bytes: Vec<u8>) -> Result<Self, RecordError> {
        let unchecked = Unchecked::decode(bytes)?;
        unchecked
            .envelope
            .author
            .verify(&unchecked.signed, &unchecked.envelope.sig)
            .map_err(|_| RecordError::BadSignature(unchecked.envelope.author))?;
        unchecked.finish()
    }

    /// As [`Record::decode_owned`] for each of `blocks`, one result per block in order, each
    /// the same as `decode_owned` gives; the signatures are checked together
    /// ([`keys::verify_batch`](crate::keys::verify_batch)), at about half the cost of checking
    /// them one by one when there are hundreds. A bad block fails alone.
    pub fn decode_batch(blocks: Vec<Vec<u8>>) -> Vec<Result<Self, RecordError>> {
        let unchecked: Vec<Result<Unchecked, RecordError>> =
            blocks.into_iter().map(Unchecked::decode).collect();
        let signed: Vec<SignedMessage<'_>> = unchecked
            .iter()
            .flatten()
            .map(|u| SignedMessage {
                did: &u.envelope.author,
                message: &u.signed,
                signature: &u.envelope.sig,
            })
            .collect();
        let mut verdicts = keys::verify_batch(&signed).into_iter();
        unchecked
            .into_iter()
            .map(|u| {
                let u = u?;
                match verdicts.next() {
                    Some(Ok(())) => u.finish(),
                    _ => Err(RecordError::BadSignature(u.envelope.author)),
                }
            })
            .collect()
    }

    /// Decodes a record this process verified before (read back from its own store): strict
    /// DAG-CBOR and the envelope's shape, but no signature, version or schema check. Bytes from
    /// anywhere else go through [`Record::decode`]; `repo verify` re-checks stored records fully.
    pub fn decode_trusted(bytes: Vec<u8>) -> Result<Self, RecordError> {
        let envelope: Envelope = cbor::decode(&bytes)?;
        if bytes.first() != Some(&0xa9) {
            return Err(RecordError::EnvelopeShape);
        }
        let (index, fields) = match &envelope.body {
            Some(body) => {
                validate_body(&envelope.kind, body, Strictness::Receive).unwrap_or_default()
            }
            None => Default::default(),
        };
        let cid = cids::record_cid(&bytes);
        Ok(Self {
            envelope,
            bytes,
            cid,
            index,
            fields,
        })
    }

    /// Re-checks the signature over this record's bytes.
    pub fn verify(&self) -> Result<(), RecordError> {
        let signed =
            unsplice_sig(&self.bytes, self.envelope.seq).ok_or(RecordError::EnvelopeShape)?;
        self.envelope
            .author
            .verify(&signed, &self.envelope.sig)
            .map_err(|_| RecordError::BadSignature(self.envelope.author))
    }

    /// [`Record::verify`] for each of `records`, one result per record in order, the
    /// signatures checked together as [`Record::decode_batch`] does.
    pub fn verify_batch(records: &[Record]) -> Vec<Result<(), RecordError>> {
        let signed: Vec<Option<Vec<u8>>> = records
            .iter()
            .map(|r| unsplice_sig(&r.bytes, r.envelope.seq))
            .collect();
        let items: Vec<SignedMessage<'_>> = records
            .iter()
            .zip(&signed)
            .filter_map(|(r, m)| {
                m.as_deref().map(|message| SignedMessage {
                    did: &r.envelope.author,
                    message,
                    signature: &r.envelope.sig,
                })
            })
            .collect();
        let mut verdicts = keys::verify_batch(&items).into_iter();
        records
            .iter()
            .zip(&signed)
            .map(|(r, m)| match (m, verdicts.next()) {
                (None, _) => Err(RecordError::EnvelopeShape),
                (Some(_), Some(Ok(()))) => Ok(()),
                (Some(_), _) => Err(RecordError::BadSignature(r.envelope.author)),
            })
            .collect()
    }

    /// Checks that this record validly follows `prev`: same kind, author and origin, `prev`
    /// links it, `seq` is one more, `created` unchanged, `updated` not earlier, and `prev` is
    /// not a tombstone.
    pub fn verify_follows(&self, prev: &Record) -> Result<(), ChainError> {
        self.verify_follows_info(&prev.info())
    }

    /// As [`Record::verify_follows`], given only the chain facts of the previous version. A
    /// version of a group, of a group's item or of a key log may be signed by another key than
    /// its predecessor, and so may a version citing `$signer` for the predecessor's identity;
    /// who may sign it is for [`Record::verify_follows_with`] to judge.
    pub fn verify_follows_info(&self, p: &VersionInfo) -> Result<(), ChainError> {
        let n = &self.envelope;
        if n.kind != p.kind {
            return Err(ChainError::KindChanged {
                expected: p.kind.clone(),
                found: n.kind.clone(),
            });
        }
        let cite = key_log::effective_signer(self, Some(p));
        let identity = cite.map_or(n.author, |c| c.identity);
        let owned = p.owner.is_some() || self.fields.owner.is_some();
        if identity != p.identity() && !shared(&p.kind, owned) {
            let cited = cite.is_some() || p.signer.is_some();
            return Err(identity_changed(p.identity(), identity, cited));
        }
        if n.origin != Some(p.id) {
            return Err(ChainError::OriginMismatch {
                expected: p.id,
                found: n.origin,
            });
        }
        if n.prev != Some(p.cid) {
            return Err(ChainError::PrevMismatch {
                expected: p.cid,
                found: n.prev,
            });
        }
        if n.seq != p.seq + 1 {
            return Err(ChainError::SeqNotNext {
                expected: p.seq + 1,
                found: n.seq,
            });
        }
        if n.created != p.created {
            return Err(ChainError::CreatedChanged {
                expected: p.created,
                found: n.created,
            });
        }
        if n.updated < p.updated {
            return Err(ChainError::UpdatedEarlier {
                previous: p.updated,
                found: n.updated,
            });
        }
        if p.tombstone {
            return Err(ChainError::AfterTombstone);
        }
        Ok(())
    }

    /// Every chain rule for a new version: [`Record::verify_follows_info`], then the key log
    /// rules ([`key_log::check_log_version`]), the group rules ([`group::check_owned`],
    /// [`group::check_group_version`]) and the signer rules ([`key_log::check_signer`])
    /// against the records `auth` holds.
    pub fn verify_follows_with(
        &self,
        p: &VersionInfo,
        auth: &impl Authority,
    ) -> Result<(), ChainError> {
        self.verify_follows_info(p)?;
        key_log::check_log_version(self, Some(p), auth)?;
        group::check_owned(self, Some(p), auth)?;
        group::check_group_version(self, Some(p), auth)?;
        key_log::check_signer(self, Some(p), auth)?;
        Ok(())
    }

    /// The rules version 0 must meet beyond the record itself: a group's item is made by a
    /// member of the group version it cites; a group by one of its owners; a key log by the
    /// key it names; a record citing `$signer` by the key the cited log version grants.
    pub fn verify_first_with(&self, auth: &impl Authority) -> Result<(), ChainError> {
        key_log::check_log_version(self, None, auth)?;
        group::check_owned(self, None, auth)?;
        group::check_group_version(self, None, auth)?;
        key_log::check_signer(self, None, auth)?;
        Ok(())
    }

    /// The group that owns this item and the group version this version cites (`None` for a
    /// plain item and for every tombstone; a tombstone relies on its predecessor's citation).
    pub fn owner(&self) -> Option<OwnerCite> {
        self.fields.owner
    }

    /// The identity this version is signed for and the key log version granting its key
    /// (`None` when the identity's first key signs, and for every tombstone: a tombstone relies
    /// on its predecessor's citation).
    pub fn signer(&self) -> Option<SignerCite> {
        self.fields.signer
    }

    /// The identity this version is signed for: `$signer.identity`, or the author. (A
    /// tombstone's is its predecessor's when the same key signs both:
    /// [`VersionInfo::identity`] of [`Record::info_following`].)
    pub fn identity(&self) -> &Did {
        self.fields
            .signer
            .as_ref()
            .map_or(&self.envelope.author, |s| &s.identity)
    }

    /// The CID of this version.
    pub fn cid(&self) -> Cid {
        self.cid
    }

    /// The item's stable id: the CID of version 0.
    pub fn id(&self) -> Cid {
        self.envelope.origin.unwrap_or(self.cid)
    }

    /// The encoded block.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Consumes the record, returning its CID and bytes.
    pub fn into_block(self) -> (Cid, Vec<u8>) {
        (self.cid, self.bytes)
    }

    /// The decoded fields.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// `namespace.kind`.
    pub fn kind(&self) -> &str {
        &self.envelope.kind
    }

    /// The signer.
    pub fn author(&self) -> &Did {
        &self.envelope.author
    }

    /// Version number.
    pub fn seq(&self) -> u64 {
        self.envelope.seq
    }

    /// Whether this version deletes the item.
    pub fn is_tombstone(&self) -> bool {
        self.envelope.body.is_none()
    }

    /// The body, `None` for a tombstone.
    pub fn body(&self) -> Option<&Ipld> {
        self.envelope.body.as_ref()
    }

    /// What the store indexes this record by (tags and topics), derived from its body.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// A one-line summary for listings: the body's title, name, handle, statement, text or
    /// note, at most 60 characters.
    pub fn summary(&self) -> String {
        let Some(Ipld::Map(body)) = self.body() else {
            return String::new();
        };
        let text = ["title", "name", "handle", "statement", "text", "note"]
            .iter()
            .find_map(|f| match body.get(*f) {
                Some(Ipld::String(s)) => Some(s.clone()),
                Some(Ipld::Map(m)) => match m.get("full") {
                    Some(Ipld::String(s)) => Some(s.clone()),
                    _ => None,
                },
                _ => None,
            })
            .unwrap_or_default();
        let mut short: String = text.chars().take(60).collect();
        if text.chars().count() > 60 {
            short.push('…');
        }
        short.replace('\n', " ")
    }

    /// The body as the typed model `M`, or `None` for a tombstone.
    pub fn body_as<M: Model>(&self) -> Result<Option<M>, RecordError> {
        if self.envelope.kind != M::KIND {
            return Err(RecordError::Schema {
                kind: self.envelope.kind.clone(),
                error: SchemaError::new("", format!("is not a {}", M::KIND)),
            });
        }
        self.body()
            .map(|b| {
                ipld_core::serde::from_ipld(b.clone()).map_err(|e| RecordError::Schema {
                    kind: M::KIND.to_owned(),
                    error: SchemaError::new("", e.to_string()),
                })
            })
            .transpose()
    }

    /// Every CID the record links to (origin, prev, and links in the body), in encoding order.
    pub fn links(&self) -> Vec<Cid> {
        // Canonical order: prev (4 letters) before origin (6); body (4) before both.
        let mut out = Vec::new();
        if let Some(body) = &self.envelope.body {
            crate::walk::collect_links(body, &mut out);
        }
        out.extend(self.envelope.prev);
        out.extend(self.envelope.origin);
        out
    }
}

impl PartialEq<Cid> for Record {
    fn eq(&self, other: &Cid) -> bool {
        self.cid == *other
    }
}

/// A record decoded from outside whose signature is still to be checked: what
/// [`Record::decode_owned`] and [`Record::decode_batch`] share.
struct Unchecked {
    envelope: Envelope,
    bytes: Vec<u8>,
    /// The bytes the signature covers.
    signed: Vec<u8>,
}

impl Unchecked {
    /// Every check of [`Record::decode`] that comes before the signature's.
    fn decode(bytes: Vec<u8>) -> Result<Self, RecordError> {
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(RecordError::TooLarge { size: bytes.len() });
        }
        let envelope: Envelope = cbor::decode(&bytes).map_err(|e| match e {
            DecodeError::Invalid(m)
                if m.contains("missing field") || m.contains("unknown field") =>
            {
                RecordError::EnvelopeShape
            }
            e => RecordError::Decode(e),
        })?;
        // Nine entries (no duplicates, no unknown keys) means every field was present.
        if bytes.first() != Some(&0xa9) {
            return Err(RecordError::EnvelopeShape);
        }
        check_kind_name(&envelope.kind)?;
        check_version_rules(&envelope)?;
        let signed = unsplice_sig(&bytes, envelope.seq).ok_or(RecordError::EnvelopeShape)?;
        Ok(Self {
            envelope,
            bytes,
            signed,
        })
    }

    /// The checks of [`Record::decode`] after the signature's, once it verified.
    fn finish(self) -> Result<Record, RecordError> {
        let Self {
            envelope, bytes, ..
        } = self;
        let (index, fields) = match &envelope.body {
            Some(body) => validate_body(&envelope.kind, body, Strictness::Receive)?,
            None => Default::default(),
        };
        if let Some(body) = envelope.body.as_ref().filter(|_| fields.private) {
            check_sealed_for_author(&envelope.kind, body, &fields, &envelope.author)?;
        }
        let cid = cids::record_cid(&bytes);
        Ok(Record {
            envelope,
            bytes,
            cid,
            index,
            fields,
        })
    }
}

/// Checks a typed model and converts it to its IPLD body. A typed model cannot carry fields its
/// kind does not know, so this is as strict as `Strictness::Create` on a generic body.
fn checked_body<M: Model>(model: &M) -> Result<(Ipld, Index), RecordError> {
    model.validate().map_err(|error| RecordError::Schema {
        kind: M::KIND.to_owned(),
        error,
    })?;
    let body = ipld_core::serde::to_ipld(model)
        .map_err(|e| RecordError::Encode(EncodeError(e.to_string())))?;
    Ok((body, model.index()))
}

/// Splits a body into the record's reserved `$` fields and the kind's own, then checks the
/// kind's fields against its schema when the kind is registered.
fn validate_body(
    kind: &str,
    body: &Ipld,
    strictness: Strictness,
) -> Result<(Index, RecordFields), RecordError> {
    let schema = |error| RecordError::Schema {
        kind: kind.to_owned(),
        error,
    };
    let (fields, rest) = registry::split_record_fields(body, strictness).map_err(schema)?;
    let mut index = if fields.private {
        // The kind's fields are sealed: every node checks the sealed shape, and each recipient
        // checks the fields when it opens them. A private body is indexed by nothing but its
        // owner's topic (tags and topics would tell what it hides).
        crate::private::shape(body)
            .map_err(|e| schema(SchemaError::new(crate::private::PRIVATE_KEY, e.to_string())))?;
        Index::default()
    } else {
        match registry::lookup(kind) {
            Some(info) => info.validate(&rest, strictness).map_err(schema)?,
            None => Index::default(),
        }
    };
    owner_topic(&mut index, &fields);
    Ok((index, fields))
}

/// The author (the identity it signs for) can read what it sealed: it is among the recipients.
fn check_sealed_for_author(
    kind: &str,
    body: &Ipld,
    fields: &RecordFields,
    author: &Did,
) -> Result<(), RecordError> {
    let identity = fields.signer.map_or(*author, |s| s.identity);
    crate::private::check(body, &identity).map_err(|e| RecordError::Schema {
        kind: kind.to_owned(),
        error: SchemaError::new(crate::private::PRIVATE_KEY, e.to_string()),
    })?;
    Ok(())
}

/// A group's item is also in the group's topic.
fn owner_topic(index: &mut Index, fields: &RecordFields) {
    if let Some(owner) = fields.owner {
        let topic = registry::Topic::Group(owner.group);
        if !index.topics.contains(&topic) {
            index.topics.push(topic);
        }
    }
}

/// Milliseconds since the Unix epoch by the system clock.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Checks `namespace.kind` syntax.
pub fn check_kind_name(kind: &str) -> Result<(), RecordError> {
    let ok_part = |p: &str| {
        let mut chars = p.chars();
        chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    match kind.split_once('.') {
        Some((ns, k)) if kind.len() <= MAX_KIND_LEN && ok_part(ns) && ok_part(k) => Ok(()),
        _ => Err(RecordError::KindName(kind.to_owned())),
    }
}

fn check_version_rules(e: &Envelope) -> Result<(), RecordError> {
    let v = |m| Err(RecordError::Version(m));
    if e.seq == 0 {
        if e.origin.is_some() || e.prev.is_some() {
            return v("version 0 has null origin and prev");
        }
        if e.created != e.updated {
            return v("version 0 has updated equal to created");
        }
        if e.body.is_none() {
            return v("version 0 cannot be a tombstone");
        }
    } else {
        let (Some(origin), Some(prev)) = (e.origin, e.prev) else {
            return v("a version after 0 links both origin and prev");
        };
        if cids::link_kind(&origin) != LinkKind::Record
            || cids::link_kind(&prev) != LinkKind::Record
        {
            return v("origin and prev are dag-cbor sha2-256 CIDs");
        }
        if e.updated < e.created {
            return v("updated is not earlier than created");
        }
        if e.seq == 1 && origin != prev {
            return v("version 1 has prev equal to origin");
        }
    }
    Ok(())
}

/// Bytes of the CBOR head of unsigned integer `n` (major type 0).
fn uint_head_len(n: u64) -> usize {
    match n {
        0..=23 => 1,
        24..=0xff => 2,
        0x100..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

/// The `"sig": bytes(64)` entry's head: text(3) "sig", bytes(64).
const SIG_ENTRY_HEAD: [u8; 6] = [0x63, b's', b'i', b'g', 0x58, 0x40];
/// Length of the `"seq": n` entry's key.
const SEQ_KEY: [u8; 4] = [0x63, b's', b'e', b'q'];

// Canonical key order (length first, then bytewise) puts "seq" first and "sig" second, so the
// signed map and the full map differ only in the map head and the inserted "sig" entry.
fn splice_sig(unsigned: &[u8], seq: u64, sig: &[u8; SIGNATURE_LEN]) -> Vec<u8> {
    let split = 1 + SEQ_KEY.len() + uint_head_len(seq);
    let mut out = Vec::with_capacity(unsigned.len() + SIG_ENTRY_HEAD.len() + SIGNATURE_LEN);
    out.push(0xa9);
    out.extend_from_slice(&unsigned[1..split]);
    out.extend_from_slice(&SIG_ENTRY_HEAD);
    out.extend_from_slice(sig);
    out.extend_from_slice(&unsigned[split..]);
    out
}

fn unsplice_sig(full: &[u8], seq: u64) -> Option<Vec<u8>> {
    let split = 1 + SEQ_KEY.len() + uint_head_len(seq);
    let sig_end = split + SIG_ENTRY_HEAD.len() + SIGNATURE_LEN;
    if full.len() < sig_end
        || full[0] != 0xa9
        || full[1..1 + SEQ_KEY.len()] != SEQ_KEY
        || full[split..split + SIG_ENTRY_HEAD.len()] != SIG_ENTRY_HEAD
    {
        return None;
    }
    let mut out = Vec::with_capacity(full.len() - SIG_ENTRY_HEAD.len() - SIGNATURE_LEN);
    out.push(0xa8);
    out.extend_from_slice(&full[1..split]);
    out.extend_from_slice(&full[sig_end..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::social::Post;

    fn post(text: &str) -> Post {
        Post {
            text: text.to_owned(),
            ..Post::default()
        }
    }

    #[test]
    fn sign_matches_the_plain_encoding_of_the_envelope() {
        let key = Keypair::derive(1, "alice");
        for seq_target in [0u64, 1, 30, 300] {
            let mut r = Record::create(&post("v0"))
                .unwrap()
                .at(1000)
                .sign(&key)
                .unwrap();
            for i in 0..seq_target {
                r = r
                    .update(&post(&format!("v{}", i + 1)))
                    .unwrap()
                    .at(1000 + i)
                    .sign(&key)
                    .unwrap();
            }
            assert_eq!(r.seq(), seq_target);
            // The spliced bytes are exactly the canonical encoding of the whole envelope.
            assert_eq!(cbor::encode(r.envelope()).unwrap(), r.bytes());
            let again = Record::decode(r.bytes()).unwrap();
            assert_eq!(again, r);
        }
    }

    #[test]
    fn the_direct_envelope_writer_matches_serde() {
        let key = Keypair::derive(1, "alice");
        let v0 = Record::create(&post("v0"))
            .unwrap()
            .at(5)
            .sign(&key)
            .unwrap();
        let v1 = v0.update(&post("v1")).unwrap().at(6).sign(&key).unwrap();
        let gone = v1.delete().at(7).sign(&key).unwrap();
        for r in [&v0, &v1, &gone] {
            let e = r.envelope();
            let u = e.unsigned(key.did_text());
            assert_eq!(u.encode().unwrap(), cbor::encode(&u).unwrap());
            assert_eq!(e.to_bytes().unwrap(), cbor::encode(e).unwrap());
            assert_eq!(e.to_bytes().unwrap(), r.bytes());
        }
    }

    #[test]
    fn versions_link_and_verify() {
        let key = Keypair::derive(1, "alice");
        let v0 = Record::create(&post("hello"))
            .unwrap()
            .at(10)
            .sign(&key)
            .unwrap();
        let v1 = v0
            .update(&post("hello, world"))
            .unwrap()
            .at(20)
            .sign(&key)
            .unwrap();
        let v2 = v1.delete().at(30).sign(&key).unwrap();
        assert_eq!(v1.id(), v0.cid());
        assert_eq!(v2.id(), v0.cid());
        assert_eq!(v2.envelope().prev, Some(v1.cid()));
        assert_eq!(v2.envelope().created, 10);
        assert!(v2.is_tombstone());
        v1.verify_follows(&v0).unwrap();
        v2.verify_follows(&v1).unwrap();
        assert!(matches!(
            v2.verify_follows(&v0),
            Err(ChainError::OriginMismatch { .. } | ChainError::PrevMismatch { .. })
        ));
        assert!(matches!(
            v2.update(&post("back")).unwrap().sign(&key),
            Err(RecordError::Chain(e)) if *e == ChainError::AfterTombstone
        ));
        let mallory = Keypair::derive(1, "mallory");
        assert!(matches!(
            v1.update(&post("mine")).unwrap().sign(&mallory),
            Err(RecordError::Chain(e)) if matches!(*e, ChainError::AuthorChanged { .. })
        ));
    }

    #[test]
    fn updated_never_goes_back() {
        let key = Keypair::derive(1, "alice");
        let v0 = Record::create(&post("a"))
            .unwrap()
            .at(100)
            .sign(&key)
            .unwrap();
        let v1 = v0.update(&post("b")).unwrap().at(50).sign(&key).unwrap();
        assert_eq!(v1.envelope().updated, 100);
    }

    #[test]
    fn rejects_tampering_with_a_named_rule() {
        let key = Keypair::derive(1, "alice");
        let r = Record::create(&post("hello"))
            .unwrap()
            .at(10)
            .sign(&key)
            .unwrap();
        let mut env = r.envelope().clone();
        env.body = Some(ipld_core::ipld!({"text": "hellO", "media": [], "tags": []}));
        let forged = cbor::encode(&env).unwrap();
        assert!(matches!(
            Record::decode(&forged),
            Err(RecordError::BadSignature(_))
        ));

        let mut env = r.envelope().clone();
        env.seq = 1;
        let bad = cbor::encode(&env).unwrap();
        assert!(matches!(Record::decode(&bad), Err(RecordError::Version(_))));

        let mut extra = ipld_core::serde::to_ipld(r.envelope()).unwrap();
        if let Ipld::Map(m) = &mut extra {
            m.insert("x".into(), Ipld::Null);
        }
        assert!(matches!(
            Record::decode(&cbor::encode(&extra).unwrap()),
            Err(RecordError::EnvelopeShape)
        ));
        let mut missing = ipld_core::serde::to_ipld(r.envelope()).unwrap();
        if let Ipld::Map(m) = &mut missing {
            m.remove("origin");
        }
        assert!(matches!(
            Record::decode(&cbor::encode(&missing).unwrap()),
            Err(RecordError::EnvelopeShape)
        ));
    }

    #[test]
    fn schema_is_checked_on_create() {
        let key = Keypair::derive(1, "alice");
        let err = Record::create(&post("")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "social.post body is invalid: text: must not be empty"
        );
        let err = Draft::new(
            "social.post",
            ipld_core::ipld!({"text": "hi", "colour": "red"}),
        )
        .sign(&key)
        .unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
        assert!(matches!(
            Draft::new("Social.Post", Ipld::Null).sign(&key),
            Err(RecordError::KindName(_))
        ));
    }

    #[test]
    fn unknown_kinds_verify_by_envelope_alone() {
        let key = Keypair::derive(1, "alice");
        let r = Draft::new("future.widget", ipld_core::ipld!({"anything": [1, 2, 3]}))
            .sign(&key)
            .unwrap();
        assert_eq!(Record::decode(r.bytes()).unwrap(), r);
    }
}

//! Key rotation and recovery: an identity's key log, and the rules that let a key other than the
//! identity's first sign for it.
//!
//! An identity is the `did:key` of its first key. Its key log is one item of kind `core.keys`
//! ([`KeyLog`]): version 0 is signed by the first key and names it; each later version is signed
//! by the key the version before names (a rotation) or by its recovery key (a recovery), and
//! grants a new key, which proves it agrees by signing `"mnode/key-grant/1" ‖ identity public key
//! ‖ previous version's CID` ([`grant_message`]). A record signed by a key other than the
//! identity's first says so in the reserved body field `$signer`: `{"identity": <did:key>, "at":
//! <the core.keys version that grants the key>}` ([`SignerCite`]).
//!
//! The hard rules K1–K7 read only the record and the immutable records it cites, so every node
//! gives the same verdict ([`check_log_version`], [`check_signer`]). Which log versions count is
//! [`winning_path`]: at a fork a recovery-signed child beats a key-signed one, so a thief who
//! rotates a stolen key with a future `updated` loses to the owner's recovery. Which versions an
//! old key signed stay *in force* after a rotation is [`standing`]: those the rotation keeps
//! (`kept`), and those a later in-force version of the same identity built on.
//! `docs/decisions.md` ("Key rotation") explains all three.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use ipld_core::ipld::Ipld;
use serde::{Deserialize, Serialize};

use crate::{
    authority::{Authority, Missing},
    cids::Cid,
    group::Standing,
    keys::{Did, Keypair, SIGNATURE_LEN},
    model::{Link, core::KeyLog},
    record::{Record, VersionInfo},
};

/// The reserved body field that names the identity a record is signed for, and the key log
/// version that grants the signing key.
pub const SIGNER_FIELD: &str = "$signer";

/// The kind whose chain is an identity's key log.
pub const KEYS_KIND: &str = "core.keys";

/// What a granted key signs, before the identity's public key and the previous version's CID.
pub const GRANT_LABEL: &[u8] = b"mnode/key-grant/1";

/// Most record links one key log version keeps (about 820 KB inline, under the record limit).
pub const MAX_KEPT: usize = 20_000;

/// `$signer`: the identity a record is signed for, and the key log version that grants the key
/// that signed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignerCite {
    /// The identity: its first key, as a `did:key`.
    pub identity: Did,
    /// The `core.keys` version of the identity's log whose `key` signed the record.
    pub at: Cid,
}

impl SignerCite {
    /// Reads `$signer` from its IPLD form.
    pub fn from_ipld(v: &Ipld) -> Result<Self, String> {
        ipld_core::serde::from_ipld(v.clone())
            .map_err(|_| "expected {\"identity\": \"did:key:z6Mk…\", \"at\": <link>}".to_owned())
    }

    /// The IPLD form written into a body.
    pub fn to_ipld(self) -> Ipld {
        Ipld::Map(BTreeMap::from([
            ("at".to_owned(), Ipld::Link(self.at)),
            (
                "identity".to_owned(),
                Ipld::String(self.identity.to_string()),
            ),
        ]))
    }
}

/// The bytes a granted key signs as its `proof`: [`GRANT_LABEL`], the identity's 32-byte public
/// key, and the binary CID of the log version before (nothing on version 0).
pub fn grant_message(identity: &Did, prev: Option<&Cid>) -> Vec<u8> {
    let mut m = Vec::with_capacity(GRANT_LABEL.len() + 32 + 40);
    m.extend_from_slice(GRANT_LABEL);
    m.extend_from_slice(&identity.public_key());
    if let Some(p) = prev {
        m.extend_from_slice(&p.to_bytes());
    }
    m
}

/// `key`'s proof that it joins `identity`'s log after `prev`.
pub fn prove(key: &Keypair, identity: &Did, prev: Option<&Cid>) -> [u8; SIGNATURE_LEN] {
    key.sign(&grant_message(identity, prev))
}

impl KeyLog {
    /// Version 0 of the log of the identity whose first key is `first`.
    pub fn root(first: &Keypair, recovery: Option<Did>) -> Self {
        Self {
            identity: None,
            key: *first.did(),
            recovery,
            proof: prove(first, first.did(), None),
            kept: vec![],
        }
    }

    /// The version after `prev` of `identity`'s log, granting `key` (which signs the proof
    /// here; the version itself is signed by the key or the recovery key `prev` names).
    pub fn grant(
        key: &Keypair,
        identity: &Did,
        prev: &Cid,
        recovery: Option<Did>,
        kept: Vec<Link>,
    ) -> Self {
        Self {
            identity: Some(*identity),
            key: *key.did(),
            recovery,
            proof: prove(key, identity, Some(prev)),
            kept,
        }
    }

    /// Whether `proof` is `key`'s signature over [`grant_message`]`(identity, prev)`.
    pub fn proof_verifies(&self, identity: &Did, prev: Option<&Cid>) -> bool {
        self.key
            .verify(&grant_message(identity, prev), &self.proof)
            .is_ok()
    }
}

/// A key rule broken. Each variant names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// K1: a log's version 0 is signed by the key it names (the identity's first key), proves
    /// it, and keeps nothing.
    #[error("a key log's version 0 {reason}")]
    BadRoot {
        /// What is wrong, completing "a key log's version 0 …".
        reason: &'static str,
    },
    /// K1: a key log version cites a group or a signer; the log's own keys sign it.
    #[error("a core.keys version cannot carry {field}; the keys its log names sign it")]
    LogCites {
        /// `$owner` or `$signer`.
        field: &'static str,
    },
    /// K2: a log version is signed by neither the key nor the recovery key of the version it
    /// replaces. A forged rotation fails here.
    #[error(
        "{signer} is neither the key nor the recovery key of key log version {log_at}; only they may sign the next version"
    )]
    NotAuthorized {
        /// The signing key.
        signer: Did,
        /// The log version replaced.
        log_at: Cid,
    },
    /// K1: a log version after the root names the identity whose log it continues.
    #[error("a key log version after the root names its identity {identity}, not {named:?}")]
    LogIdentity {
        /// The identity of the log (its root's key).
        identity: Did,
        /// What the version names.
        named: Option<Did>,
    },
    /// K3: the proof does not verify under the granted key, so nobody can claim another's key.
    #[error("the proof does not verify under the granted key {key}")]
    BadProof {
        /// The key the version grants.
        key: Did,
    },
    /// K4: a version signed by the recovery key names a fresh recovery key: a used recovery key
    /// is spent.
    #[error("recovery key {recovery} signs this version, which must name a new recovery key")]
    RecoverySpent {
        /// The recovery key that signed.
        recovery: Did,
    },
    /// K5: a key is granted once on a log's path.
    #[error("key {key} was granted already at key log version {at}")]
    KeyReused {
        /// The key granted again.
        key: Did,
        /// Where it was granted before.
        at: Cid,
    },
    /// K5: a key log is never deleted.
    #[error("a key log takes no tombstone; rotate or recover the key instead")]
    LogDeleted,
    /// The body of a key log version does not read as one.
    #[error("the core.keys body does not read: {0}")]
    Body(String),
    /// K6: `$signer.at` does not grant the signing key for `$signer.identity`.
    #[error("{at} does not grant key {key} for {identity}: {reason}")]
    KeyNotGranted {
        /// The signing key.
        key: Did,
        /// The identity named.
        identity: Did,
        /// The cited log version.
        at: Cid,
        /// Why, for people.
        reason: &'static str,
    },
    /// K7: a new version is signed for another identity than the version it replaces.
    #[error("the identity changed from {expected} to {found}")]
    IdentityChanged {
        /// The replaced version's identity.
        expected: Did,
        /// This version's.
        found: Did,
    },
    /// K7: a key signs after a version that relies on a newer key of the same identity.
    #[error(
        "key {key} signs after a version that relies on key log version {at}, which retired it; an older key never follows a newer one"
    )]
    RetiredKey {
        /// The signing key.
        key: Did,
        /// The log version the replaced version cites.
        at: Cid,
    },
    /// A cited record is not held, so the rules cannot be checked (yet).
    #[error("cannot check key rules: {0}")]
    Missing(#[from] Missing),
}

/// The signer citation a version relies on: its own `$signer`, or, for a tombstone signed by
/// the key that signed its predecessor, the predecessor's (a tombstone's body is null).
pub fn effective_signer(record: &Record, prev: Option<&VersionInfo>) -> Option<SignerCite> {
    if record.is_tombstone() {
        prev.filter(|p| p.author == *record.author())
            .and_then(|p| p.signer)
    } else {
        record.signer()
    }
}

/// K1–K5 for a version of a key log, given the version it replaces (none for version 0).
/// Other kinds pass.
pub fn check_log_version(
    record: &Record,
    prev: Option<&VersionInfo>,
    auth: &impl Authority,
) -> Result<(), KeyError> {
    if record.kind() != KEYS_KIND {
        return Ok(());
    }
    if record.is_tombstone() {
        return Err(KeyError::LogDeleted);
    }
    if record.owner().is_some() {
        return Err(KeyError::LogCites { field: "$owner" });
    }
    if record.signer().is_some() {
        return Err(KeyError::LogCites {
            field: SIGNER_FIELD,
        });
    }
    let next = record
        .body_as::<KeyLog>()
        .map_err(|e| KeyError::Body(e.to_string()))?
        .ok_or(KeyError::LogDeleted)?;
    let signer = *record.author();
    let Some(p) = prev else {
        let bad = |reason| Err(KeyError::BadRoot { reason });
        if next.key != signer {
            return bad("is signed by the key it names, the identity's first key");
        }
        if next.identity.is_some() {
            return bad("names no identity: its key is the identity");
        }
        if !next.kept.is_empty() {
            return bad("keeps nothing: no key signed before it");
        }
        if !next.proof_verifies(&signer, None) {
            return bad("carries a proof that does not verify under its key");
        }
        return Ok(());
    };
    let before = auth.key_log(&p.cid)?.ok_or(KeyError::LogDeleted)?;
    let by_recovery = signer != before.key;
    if by_recovery && before.recovery != Some(signer) {
        return Err(KeyError::NotAuthorized {
            signer,
            log_at: p.cid,
        });
    }
    let identity = if p.seq == 0 {
        p.author
    } else {
        auth.version(&p.id)?.author
    };
    if next.identity != Some(identity) {
        return Err(KeyError::LogIdentity {
            identity,
            named: next.identity,
        });
    }
    if !next.proof_verifies(&identity, Some(&p.cid)) {
        return Err(KeyError::BadProof { key: next.key });
    }
    if by_recovery && next.recovery.is_none_or(|r| r == signer) {
        return Err(KeyError::RecoverySpent { recovery: signer });
    }
    let mut at = Some(p.cid);
    while let Some(cid) = at {
        let log = auth.key_log(&cid)?.ok_or(KeyError::LogDeleted)?;
        if log.key == next.key {
            return Err(KeyError::KeyReused {
                key: next.key,
                at: cid,
            });
        }
        at = auth.version(&cid)?.prev;
    }
    Ok(())
}

/// K6: `cite.at` is a live `core.keys` version of `cite.identity`'s log whose `key` is `key`.
/// Returns that version's body.
pub fn check_grant(
    cite: &SignerCite,
    key: &Did,
    auth: &impl Authority,
) -> Result<Arc<KeyLog>, KeyError> {
    let refuse = |reason| KeyError::KeyNotGranted {
        key: *key,
        identity: cite.identity,
        at: cite.at,
        reason,
    };
    let info = auth.version(&cite.at)?;
    if info.kind != KEYS_KIND {
        return Err(refuse("it is not a core.keys version"));
    }
    let root = if info.seq == 0 {
        info.author
    } else {
        auth.version(&info.id)?.author
    };
    if root != cite.identity {
        return Err(refuse("it is a version of another identity's key log"));
    }
    let log = auth
        .key_log(&cite.at)?
        .ok_or_else(|| refuse("it does not hold a key log"))?;
    if log.key != *key {
        return Err(refuse("it grants another key"));
    }
    Ok(log)
}

/// K6 and K7 for a version of any kind but `core.keys` (whose versions [`check_log_version`]
/// judges), given the version it replaces (none for version 0).
///
/// K6: a `$signer` cites a log version of its identity that grants the signing key. K7: a
/// successor keeps the identity (a group's item and a group take any member's), and never
/// relies on a log version older than the one the version it replaces relies on: once a newer
/// key signed, an older key cannot follow. A version without `$signer` relies on the log's root.
pub fn check_signer(
    record: &Record,
    prev: Option<&VersionInfo>,
    auth: &impl Authority,
) -> Result<(), KeyError> {
    if record.kind() == KEYS_KIND {
        return Ok(());
    }
    let cite = effective_signer(record, prev);
    if let (Some(c), false) = (cite, record.is_tombstone()) {
        check_grant(&c, record.author(), auth)?;
    }
    let Some(p) = prev else {
        return Ok(());
    };
    let identity = cite.map_or(*record.author(), |c| c.identity);
    let before = p.identity();
    if identity != before {
        let shared = crate::record::shared(&p.kind, p.owner.is_some() || record.owner().is_some());
        return if shared {
            Ok(())
        } else {
            Err(KeyError::IdentityChanged {
                expected: before,
                found: identity,
            })
        };
    }
    let retired = |at| {
        Err(KeyError::RetiredKey {
            key: *record.author(),
            at,
        })
    };
    match (cite.map(|c| c.at), p.signer.map(|c| c.at)) {
        (_, None) => Ok(()),
        (None, Some(prev_at)) => {
            // No `$signer`: the identity's first key, granted by the log's root.
            if auth.version(&prev_at)?.id == prev_at {
                Ok(())
            } else {
                retired(prev_at)
            }
        }
        (Some(at), Some(prev_at)) => {
            if at != prev_at && auth.is_ancestor(&at, &prev_at)? {
                retired(prev_at)
            } else {
                Ok(())
            }
        }
    }
}

/// An identity's key log as one node sees it: the winning path from version 0 to the head
/// ([`winning_path`]), each version with its body.
#[derive(Debug, Clone, Default)]
pub struct LogPath {
    /// Root first.
    pub versions: Vec<(Cid, Arc<KeyLog>)>,
}

impl LogPath {
    /// The head's CID.
    pub fn head(&self) -> Option<Cid> {
        self.versions.last().map(|(c, _)| *c)
    }

    /// The identity: the root's key.
    pub fn identity(&self) -> Option<Did> {
        self.versions.first().map(|(_, l)| l.key)
    }

    /// The key that signs for the identity now: the head's.
    pub fn current_key(&self) -> Option<Did> {
        self.versions.last().map(|(_, l)| l.key)
    }

    /// Where on the path `key` was granted.
    pub fn position_of(&self, key: &Did) -> Option<usize> {
        self.versions.iter().position(|(_, l)| l.key == *key)
    }
}

/// The winning path of one key log, from the versions of it a node holds (in any order): from
/// version 0, at each fork a child signed by the recovery key of its parent beats one signed by
/// the parent's key, and among equals the newest by `(updated, CID)` wins. Children signed by
/// neither (which the rules refuse) and versions whose body does not read are passed over. With
/// several roots the first in `history` is used, as a node uses the first root it stored.
pub fn winning_path(history: &[Record]) -> LogPath {
    let logs: HashMap<Cid, (&Record, Arc<KeyLog>)> = history
        .iter()
        .filter(|r| r.kind() == KEYS_KIND)
        .filter_map(|r| Some((r.cid(), (r, Arc::new(r.body_as::<KeyLog>().ok()??)))))
        .collect();
    let mut children: HashMap<Cid, Vec<&Record>> = HashMap::new();
    for (r, _) in logs.values() {
        if let Some(p) = r.envelope().prev {
            children.entry(p).or_default().push(r);
        }
    }
    let Some((root, log)) = history
        .iter()
        .filter(|r| r.seq() == 0)
        .find_map(|r| logs.get(&r.cid()))
    else {
        return LogPath::default();
    };
    let mut path = vec![(root.cid(), log.clone())];
    let mut at: &Record = root;
    let mut parent = log.clone();
    loop {
        let best = children
            .get(&at.cid())
            .into_iter()
            .flatten()
            .filter_map(|c| {
                let signer = c.author();
                let rank = if parent.recovery.as_ref() == Some(signer) && parent.key != *signer {
                    1u8
                } else if parent.key == *signer {
                    0
                } else {
                    return None;
                };
                Some((rank, c.envelope().updated, c.cid().to_bytes(), *c))
            })
            .max_by(|a, b| (a.0, a.1, &a.2).cmp(&(b.0, b.1, &b.2)));
        let Some((_, _, _, next)) = best else {
            break;
        };
        let Some((_, body)) = logs.get(&next.cid()) else {
            break;
        };
        path.push((next.cid(), body.clone()));
        at = next;
        parent = body.clone();
    }
    LogPath { versions: path }
}

/// Whether `v`, a version of any kind but `core.keys`, still counts given the key log `path`
/// of its identity ([`VersionInfo::identity`]): the key that signed it is the path's current
/// key, or the version is kept by the rotation that retired the key (an ancestor-or-self of a
/// CID in that version's `kept`), or `vouched` says an in-force later version of the same item
/// by the same identity, relying on the retiring log version (its CID is passed) or a later one,
/// builds on it. A key granted only off the winning path never counts. An empty path (no log
/// held) or a path of another identity judges nothing: `InForce`.
pub fn standing(
    v: &VersionInfo,
    path: &LogPath,
    auth: &impl Authority,
    vouched: impl Fn(&Cid) -> bool,
) -> Result<Standing, Missing> {
    let identity = v.identity();
    if v.kind == KEYS_KIND || path.identity() != Some(identity) {
        return Ok(Standing::InForce);
    }
    let Some(j) = path.position_of(&v.author) else {
        let at = v.signer.map_or(path.versions[0].0, |s| s.at);
        return Ok(Standing::Revoked {
            at,
            reason: format!(
                "key {} is not granted on the winning path of {identity}'s key log",
                v.author
            ),
        });
    };
    let Some((retired_at, retiring)) = path.versions.get(j + 1) else {
        return Ok(Standing::InForce);
    };
    if vouched(retired_at) {
        return Ok(Standing::InForce);
    }
    for k in &retiring.kept {
        if auth.is_ancestor(&v.cid, &k.0).unwrap_or(false) {
            return Ok(Standing::InForce);
        }
    }
    Ok(Standing::Revoked {
        at: *retired_at,
        reason: format!(
            "key {} of {identity} was retired by key log version {retired_at}, which does not keep this version",
            v.author
        ),
    })
}

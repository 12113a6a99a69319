//! What the chain rules need to know beyond the record and the version it replaces.
//!
//! A version of a group-owned item is valid if its signer held the right role in the group
//! version it cites ([`crate::group`]); a version signed by a rotated key if the key log version
//! it cites grants that key ([`crate::key_log`]). `dag` holds no state, so the rules ask an
//! [`Authority`]: the node's store answers from what it holds, the CAR verifier from the CAR,
//! tests from a map.

use std::sync::Arc;

use crate::{
    cids::Cid,
    key_log::KEYS_KIND,
    model::core::{Group, KeyLog},
    record::{Record, VersionInfo},
};

/// The records the chain rules may consult, by CID.
pub trait Authority {
    /// The chain facts of a stored version.
    fn version(&self, cid: &Cid) -> Result<VersionInfo, Missing>;

    /// The body of a `core.group` version (`None` for a tombstone).
    fn group(&self, at: &Cid) -> Result<Option<Arc<Group>>, Missing>;

    /// A stored record by CID. The key rules read key log versions through it
    /// ([`Authority::key_log`]); the default holds none, so an authority that does not implement
    /// it answers every rotation and every `$signer` with [`Missing`].
    fn record(&self, cid: &Cid) -> Result<Record, Missing> {
        Err(Missing::Version(*cid))
    }

    /// The body of a `core.keys` version (`None` for a tombstone or a record of another kind).
    /// The default reads it from [`Authority::record`].
    fn key_log(&self, at: &Cid) -> Result<Option<Arc<KeyLog>>, Missing> {
        let record = self.record(at)?;
        if record.kind() != KEYS_KIND {
            return Ok(None);
        }
        Ok(record.body_as::<KeyLog>().ok().flatten().map(Arc::new))
    }

    /// Whether version `a` is `b` or one of its ancestors within one item's chain.
    fn is_ancestor(&self, a: &Cid, b: &Cid) -> Result<bool, Missing> {
        if a == b {
            return Ok(true);
        }
        let target = self.version(a)?;
        let mut at = self.version(b)?;
        while at.seq > target.seq {
            let Some(prev) = at.prev else {
                return Ok(false);
            };
            at = self.version(&prev)?;
        }
        Ok(at.cid == target.cid)
    }
}

/// A record the rules needed and the authority does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Missing {
    /// A version (of a group's chain, or an ancestor) is not held.
    #[error("version {0} is not held")]
    Version(Cid),
}

impl Missing {
    /// The CID that is missing.
    pub fn cid(&self) -> Cid {
        match self {
            Self::Version(c) => *c,
        }
    }
}

/// Today's rules without any state: every citation is missing. For callers that check records
/// which cite nothing (a plain item's versions).
#[derive(Debug, Clone, Copy, Default)]
pub struct Nothing;

impl Authority for Nothing {
    fn version(&self, cid: &Cid) -> Result<VersionInfo, Missing> {
        Err(Missing::Version(*cid))
    }

    fn group(&self, at: &Cid) -> Result<Option<Arc<Group>>, Missing> {
        Err(Missing::Version(*at))
    }
}

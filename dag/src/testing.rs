//! What the tests of this crate and of the crates built on it share (feature `testing`, and
//! this crate's own tests): an in-memory [`Authority`] that checks records as a store does, and
//! the band the group tests use.
//!
//! Not for production code: [`Held`] panics when asked about a record it does not hold, as a
//! test wants.

use std::{collections::HashMap, sync::Arc};

use crate::{
    Cid, Record, VersionInfo,
    authority::{Authority, Missing},
    model::core::Group,
    record::ChainError,
};

/// Records held by CID, with the facts the chain rules read about each (a tombstone's taking
/// its predecessor's citations, as a store files them): the records themselves are the
/// authority, as every node checks them.
#[derive(Debug, Default)]
pub struct Held {
    records: HashMap<Cid, Record>,
    infos: HashMap<Cid, VersionInfo>,
}

impl Held {
    /// Checks `r` as the store would (version 0, or a successor of its `prev`, which must be
    /// held), then holds it.
    pub fn put(&mut self, r: &Record) -> Result<(), ChainError> {
        let info = match r.envelope().prev {
            None => {
                r.verify_first_with(self)?;
                r.info()
            }
            Some(prev) => {
                let p = self.info(&prev);
                r.verify_follows_with(&p, self)?;
                r.info_following(&p)
            }
        };
        self.records.insert(r.cid(), r.clone());
        self.infos.insert(r.cid(), info);
        Ok(())
    }

    /// The facts held about the version `cid`.
    ///
    /// # Panics
    ///
    /// When `cid` is not held.
    pub fn info(&self, cid: &Cid) -> VersionInfo {
        self.infos
            .get(cid)
            .cloned()
            .unwrap_or_else(|| panic!("{cid} is not held"))
    }
}

impl Authority for Held {
    fn version(&self, cid: &Cid) -> Result<VersionInfo, Missing> {
        self.infos.get(cid).cloned().ok_or(Missing::Version(*cid))
    }

    fn group(&self, at: &Cid) -> Result<Option<Arc<Group>>, Missing> {
        let r = self.records.get(at).ok_or(Missing::Version(*at))?;
        Ok(r.body_as::<Group>().ok().flatten().map(Arc::new))
    }

    fn record(&self, cid: &Cid) -> Result<Record, Missing> {
        self.records.get(cid).cloned().ok_or(Missing::Version(*cid))
    }
}

/// The band: a group named "The Band", pages of it (`art.artist_group` bodies) and the
/// citations of its versions.
pub mod band {
    use crate::{
        Ipld, Keypair, Record,
        group::OwnerCite,
        model::core::{Group, Member, Role},
    };

    /// A group named "The Band" with `members`, in that order, settling nothing.
    pub fn group(members: &[(&Keypair, Role)]) -> Group {
        Group {
            name: "The Band".into(),
            description: None,
            members: members
                .iter()
                .map(|(k, role)| Member {
                    did: *k.did(),
                    role: *role,
                })
                .collect(),
            settled: vec![],
        }
    }

    /// An `art.artist_group` body named `text`.
    pub fn body(text: &str) -> Ipld {
        let name = Ipld::Map([("full".to_owned(), Ipld::String(text.into()))].into());
        Ipld::Map(
            [
                ("name".to_owned(), name),
                ("members".to_owned(), Ipld::List(vec![])),
            ]
            .into(),
        )
    }

    /// `$owner`: the group `g` (any version of it), as of its version `at`.
    pub fn cite(g: &Record, at: &Record) -> OwnerCite {
        OwnerCite {
            group: g.id(),
            at: at.cid(),
        }
    }
}

/// `len` bytes that do not repeat in any way a store, a hash tree or a chunker could shortcut,
/// the same for the same `seed` (xorshift64).
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

//! Following links through a DAG of blocks.

use std::collections::HashSet;

use ipld_core::ipld::Ipld;

use crate::{
    cbor::{self, DecodeError},
    cids::{self, Cid, CidError},
};

/// Appends every link in `ipld` to `out`, in the order they appear in the canonical encoding
/// (map keys length-first, then bytewise).
pub fn collect_links(ipld: &Ipld, out: &mut Vec<Cid>) {
    match ipld {
        Ipld::Link(cid) => out.push(*cid),
        Ipld::List(items) => items.iter().for_each(|i| collect_links(i, out)),
        Ipld::Map(map) => {
            let mut entries: Vec<(&String, &Ipld)> = map.iter().collect();
            entries.sort_by(|(a, _), (b, _)| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
            entries.into_iter().for_each(|(_, v)| collect_links(v, out));
        }
        _ => {}
    }
}

/// The links inside a block: none for raw blocks, the CIDs in the data for DAG-CBOR.
pub fn block_links(cid: &Cid, bytes: &[u8]) -> Result<Vec<Cid>, DecodeError> {
    let mut out = Vec::new();
    if cid.codec() == cids::DAG_CBOR {
        collect_links(&cbor::decode_ipld(bytes)?, &mut out);
    }
    Ok(out)
}

/// Why a walk stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalkError<E> {
    /// The source failed.
    #[error("block source failed: {0}")]
    Source(E),
    /// A block did not match its CID.
    #[error(transparent)]
    Hash(#[from] CidError),
    /// A DAG-CBOR block did not decode.
    #[error("block {cid} does not decode: {error}")]
    Decode {
        /// The block.
        cid: Cid,
        /// Why.
        error: DecodeError,
    },
}

/// Walks the DAG under `roots` depth-first, pre-order, each block once, calling `visit` on every
/// block `get` returns (after checking it against its CID). Returns the CIDs `get` did not
/// have, in the order they were first needed.
pub fn walk<E>(
    roots: &[Cid],
    mut get: impl FnMut(&Cid) -> Result<Option<Vec<u8>>, E>,
    mut visit: impl FnMut(&Cid, &[u8]) -> Result<(), E>,
) -> Result<Vec<Cid>, WalkError<E>> {
    let mut stack: Vec<Cid> = roots.iter().rev().copied().collect();
    let mut seen = HashSet::new();
    let mut missing = Vec::new();
    while let Some(cid) = stack.pop() {
        if !seen.insert(cid) {
            continue;
        }
        let Some(bytes) = get(&cid).map_err(WalkError::Source)? else {
            missing.push(cid);
            continue;
        };
        cids::verify_block(&cid, &bytes)?;
        let links = block_links(&cid, &bytes).map_err(|error| WalkError::Decode { cid, error })?;
        visit(&cid, &bytes).map_err(WalkError::Source)?;
        stack.extend(links.into_iter().rev());
    }
    Ok(missing)
}

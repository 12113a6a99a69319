//! Where the UnixFS view of each stored file lives (see `mnode_dag::unixfs`): the view's few
//! dag-pb nodes, and for each raw leaf the place of its bytes in the file's blob, so that a
//! leaf is served from the blob and the file is never stored twice.
//!
//! One column family, `unixfs`, with four kinds of keys (a byte, then a CID's bytes):
//! - `n` + dag-pb node CID → the node's bytes;
//! - `l` + leaf CID → the blob's BLAKE3 hash (32 bytes), the offset (8, big-endian) and the
//!   length (4, big-endian) of the leaf in it;
//! - `r` + view root CID → the blob's CID;
//! - `b` + blob CID → the view root's CID.
//!
//! Two files that share a 1 MiB leaf at a chunk boundary share its `l` key: it names the file
//! indexed last, and dropping that file's view drops the key (the other file's view then lacks
//! that leaf until it is indexed again; `repo verify` does that).

use mnode_dag::{
    Cid, cids,
    unixfs::{self, View},
};
use rocksdb::WriteBatch;

use crate::store::{Store, StoreError};

pub(crate) const UNIXFS: &str = "unixfs";

const NODE: u8 = b'n';
const LEAF: u8 = b'l';
const ROOT: u8 = b'r';
const BLOB: u8 = b'b';

/// Where a leaf's bytes are: a range of a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeafAt {
    /// The blob (raw, BLAKE3).
    pub blob: Cid,
    /// Where the leaf starts in it.
    pub offset: u64,
    /// How many bytes it has.
    pub len: u32,
}

fn key(kind: u8, cid: &Cid) -> Vec<u8> {
    let mut k = Vec::with_capacity(40);
    k.push(kind);
    k.extend_from_slice(&cid.to_bytes());
    k
}

fn corrupt(what: &str, cid: &Cid) -> StoreError {
    StoreError::Corrupt(format!("the UnixFS index has a bad {what} entry for {cid}"))
}

/// Puts the entries of `view`, the UnixFS view of `blob`, into `batch`.
fn view_entries(
    batch: &mut WriteBatch,
    cf: &rocksdb::ColumnFamily,
    blob: &Cid,
    view: &View,
) -> Result<(), StoreError> {
    let hash = cids::blob_hash(blob).ok_or_else(|| corrupt("blob", blob))?;
    for (cid, bytes) in &view.nodes {
        batch.put_cf(cf, key(NODE, cid), bytes);
    }
    for leaf in &view.leaves {
        let mut v = Vec::with_capacity(44);
        v.extend_from_slice(&hash);
        v.extend_from_slice(&leaf.offset.to_be_bytes());
        v.extend_from_slice(&leaf.len.to_be_bytes());
        batch.put_cf(cf, key(LEAF, &leaf.cid), v);
    }
    batch.put_cf(cf, key(ROOT, &view.root), blob.to_bytes());
    batch.put_cf(cf, key(BLOB, blob), view.root.to_bytes());
    Ok(())
}

impl Store {
    /// Records `view` as the UnixFS view of `blob`, replacing what an earlier view of the same
    /// blob said.
    pub fn put_view(&self, blob: &Cid, view: &View) -> Result<(), StoreError> {
        self.put_views(std::iter::once((blob, view)))
    }

    /// [`Store::put_view`] of many files in one write.
    pub fn put_views<'a>(
        &self,
        views: impl IntoIterator<Item = (&'a Cid, &'a View)>,
    ) -> Result<(), StoreError> {
        let cf = self.cf(UNIXFS)?;
        let mut batch = WriteBatch::default();
        for (blob, view) in views {
            view_entries(&mut batch, cf, blob, view)?;
        }
        self.db().write(batch)?;
        Ok(())
    }

    /// The root of the UnixFS view of `blob`, if it was indexed.
    pub fn view_of(&self, blob: &Cid) -> Result<Option<Cid>, StoreError> {
        self.db()
            .get_cf(self.cf(UNIXFS)?, key(BLOB, blob))?
            .map(|b| Cid::try_from(b.as_slice()).map_err(|_| corrupt("blob", blob)))
            .transpose()
    }

    /// The blob whose UnixFS view has the root `root`.
    pub fn view_file(&self, root: &Cid) -> Result<Option<Cid>, StoreError> {
        self.db()
            .get_cf(self.cf(UNIXFS)?, key(ROOT, root))?
            .map(|b| Cid::try_from(b.as_slice()).map_err(|_| corrupt("root", root)))
            .transpose()
    }

    /// A dag-pb node of a view.
    pub fn view_node(&self, cid: &Cid) -> Result<Option<Vec<u8>>, StoreError> {
        if cid.codec() != cids::DAG_PB {
            return Ok(None);
        }
        Ok(self.db().get_cf(self.cf(UNIXFS)?, key(NODE, cid))?)
    }

    /// Where the bytes of a view's raw leaf are.
    pub fn view_leaf(&self, cid: &Cid) -> Result<Option<LeafAt>, StoreError> {
        if cid.codec() != cids::RAW || cid.hash().code() != cids::SHA2_256 {
            return Ok(None);
        }
        let Some(v) = self.db().get_cf(self.cf(UNIXFS)?, key(LEAF, cid))? else {
            return Ok(None);
        };
        let (hash, rest) = v.split_at_checked(32).ok_or_else(|| corrupt("leaf", cid))?;
        let (offset, len) = rest
            .split_at_checked(8)
            .ok_or_else(|| corrupt("leaf", cid))?;
        let hash: [u8; 32] = hash.try_into().map_err(|_| corrupt("leaf", cid))?;
        let offset = u64::from_be_bytes(offset.try_into().map_err(|_| corrupt("leaf", cid))?);
        let len = u32::from_be_bytes(len.try_into().map_err(|_| corrupt("leaf", cid))?);
        Ok(Some(LeafAt {
            blob: cids::blob_cid(hash),
            offset,
            len,
        }))
    }

    /// Whether a block of some view is held: a dag-pb node, or a leaf whose blob was indexed
    /// (the blob itself may since have gone; serving checks that).
    pub fn has_view_block(&self, cid: &Cid) -> Result<bool, StoreError> {
        Ok(self.view_node(cid)?.is_some() || self.view_leaf(cid)?.is_some())
    }

    /// Every indexed file: its blob and its view's root.
    pub fn views(&self) -> Result<Vec<(Cid, Cid)>, StoreError> {
        let cf = self.cf(UNIXFS)?;
        let mut out = Vec::new();
        for item in self.db().prefix_iterator_cf(cf, [BLOB]) {
            let (k, v) = item?;
            let Some(blob) = k.strip_prefix(&[BLOB]) else {
                break;
            };
            let blob = Cid::try_from(blob)
                .map_err(|_| StoreError::Corrupt("the UnixFS index has a bad blob key".into()))?;
            let root = Cid::try_from(&*v).map_err(|_| corrupt("blob", &blob))?;
            out.push((blob, root));
        }
        Ok(out)
    }

    /// Forgets the UnixFS view of `blob` (when the blob is deleted): its nodes, the leaves
    /// that point into it, and its root. Returns whether there was one.
    pub fn drop_view(&self, blob: &Cid) -> Result<bool, StoreError> {
        let Some(root) = self.view_of(blob)? else {
            return Ok(false);
        };
        let cf = self.cf(UNIXFS)?;
        let mut batch = WriteBatch::default();
        let mut stack = vec![root];
        while let Some(cid) = stack.pop() {
            if let Some(node) = self.view_node(&cid)? {
                let links = unixfs::links(&node).map_err(|e| {
                    StoreError::Corrupt(format!("UnixFS node {cid} does not decode: {e}"))
                })?;
                stack.extend(links.into_iter().map(|(c, _)| c));
                batch.delete_cf(cf, key(NODE, &cid));
            } else if let Some(at) = self.view_leaf(&cid)?
                && at.blob == *blob
            {
                batch.delete_cf(cf, key(LEAF, &cid));
            }
        }
        batch.delete_cf(cf, key(ROOT, &root));
        batch.delete_cf(cf, key(BLOB, blob));
        self.db().write(batch)?;
        Ok(true)
    }
}

/// A block of a file's UnixFS view as served to others: a dag-pb node from the index, or a
/// leaf read out of its file and checked against its CID. `None` when this node has no such
/// block (or the file behind a leaf is gone).
pub async fn view_block(
    store: &Store,
    blobs: &crate::blobs::Blobs,
    cid: &Cid,
) -> Result<Option<Vec<u8>>, crate::maintenance::RepoOpError> {
    if let Some(node) = store.view_node(cid)? {
        return Ok(Some(node));
    }
    let Some(at) = store.view_leaf(cid)? else {
        return Ok(None);
    };
    Ok(blobs
        .read_leaf(cid, &at.blob, at.offset, at.len)
        .await?
        .map(|b| b.to_vec()))
}

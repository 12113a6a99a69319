//! A topic's sync set: the record versions a node holds in it, sorted for reconciliation.

use std::{fmt, sync::Arc};

use mnode_dag::{
    Cid, Record,
    cids::{self, LinkKind},
};
use negentropy::{Bound, Error as NegError, Id, Item as NegItem, NegentropyStorageBase};
use sha2::{Digest as _, Sha256};

/// One member of a sync set: the version's `updated` time (ms since the epoch) and the
/// SHA-256 digest of its CID (every record CID is CIDv1, dag-cbor, sha2-256, so the digest
/// names it; [`record_cid`] rebuilds the CID).
pub type Item = (u64, [u8; 32]);

/// The items of one topic, sorted by time then id, without repeats. Cloning is cheap (the
/// items are shared), so a server can keep one per topic and answer many rounds from it.
#[derive(Clone, Default)]
pub struct SyncSet {
    items: Arc<[NegItem]>,
}

impl SyncSet {
    /// The set of `items`, in any order; repeats are dropped. Sorted input (as a store keyed
    /// by time then id yields it) is sorted in linear time.
    pub fn new(items: impl IntoIterator<Item = Item>) -> Self {
        let mut items: Vec<NegItem> = items
            .into_iter()
            .map(|(t, id)| NegItem::with_timestamp_and_id(t, Id::from_byte_array(id)))
            .collect();
        if !items.is_sorted() {
            items.sort_unstable();
        }
        items.dedup();
        Self {
            items: items.into(),
        }
    }

    /// How many versions the set holds.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The items, in order.
    pub fn iter(&self) -> impl Iterator<Item = Item> + '_ {
        self.items.iter().map(|i| (i.timestamp, i.id.to_bytes()))
    }

    pub(super) fn storage(&self) -> Storage {
        Storage(Arc::clone(&self.items))
    }
}

impl From<Vec<Item>> for SyncSet {
    fn from(items: Vec<Item>) -> Self {
        Self::new(items)
    }
}

impl FromIterator<Item> for SyncSet {
    fn from_iter<I: IntoIterator<Item = Item>>(iter: I) -> Self {
        Self::new(iter)
    }
}

impl fmt::Debug for SyncSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncSet").field("len", &self.len()).finish()
    }
}

/// The set as negentropy sees it. Kept private so negentropy stays out of the public API.
pub(super) struct Storage(Arc<[NegItem]>);

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Storage")
            .field("len", &self.0.len())
            .finish()
    }
}

impl NegentropyStorageBase for Storage {
    fn size(&self) -> Result<usize, NegError> {
        Ok(self.0.len())
    }

    fn get_item(&self, i: usize) -> Result<Option<NegItem>, NegError> {
        Ok(self.0.get(i).copied())
    }

    fn iterate(
        &self,
        begin: usize,
        end: usize,
        cb: &mut dyn FnMut(NegItem, usize) -> Result<bool, NegError>,
    ) -> Result<(), NegError> {
        let items = self.0.get(begin..end).ok_or(NegError::BadRange)?;
        for (i, item) in items.iter().enumerate() {
            if !cb(*item, begin + i)? {
                break;
            }
        }
        Ok(())
    }

    fn find_lower_bound(&self, first: usize, last: usize, value: &Bound) -> usize {
        match self.0.get(first..last) {
            Some(range) => first + range.partition_point(|item| *item < value.item),
            None => first,
        }
    }
}

/// The sync item of a record version.
pub fn item_of(record: &Record) -> Item {
    let cid = record.cid();
    let id = item_id(&cid).unwrap_or_else(|| Sha256::digest(record.bytes()).into());
    (record.envelope().updated, id)
}

/// The id of a record CID (its SHA-256 digest), or `None` if `cid` is not a CIDv1 dag-cbor
/// sha2-256 CID.
pub fn item_id(cid: &Cid) -> Option<[u8; 32]> {
    if cids::link_kind(cid) != LinkKind::Record {
        return None;
    }
    cid.hash().digest().try_into().ok()
}

/// The record CID whose SHA-256 digest is `id` (CIDv1, dag-cbor).
pub fn record_cid(id: &[u8; 32]) -> Cid {
    cids::record_cid_from_digest(*id)
}

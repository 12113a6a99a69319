//! Where the blocks we serve come from.

use std::{
    collections::HashMap,
    sync::{PoisonError, RwLock},
};

use mnode_dag::Cid;

/// The blocks a node can serve over Bitswap (its record store, typically).
///
/// The service calls these from a blocking thread (`spawn_blocking`), so a disk lookup is fine.
pub trait BlockSource: Send + Sync {
    /// Whether the block is held.
    fn has(&self, cid: &Cid) -> bool;
    /// The block's bytes, if held. They must hash to `cid`.
    fn get(&self, cid: &Cid) -> Option<Vec<u8>>;
}

/// A [`BlockSource`] held in memory, for tests and small tools.
#[derive(Debug, Default)]
pub struct MemoryBlocks {
    blocks: RwLock<HashMap<Cid, Vec<u8>>>,
}

impl MemoryBlocks {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a block. The pairing of `cid` and `data` is not checked, so tests can also make a
    /// source that serves wrong bytes.
    pub fn insert(&self, cid: Cid, data: Vec<u8>) {
        self.blocks
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(cid, data);
    }

    /// How many blocks are held.
    pub fn len(&self) -> usize {
        self.blocks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether no block is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl BlockSource for MemoryBlocks {
    fn has(&self, cid: &Cid) -> bool {
        self.blocks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(cid)
    }

    fn get(&self, cid: &Cid) -> Option<Vec<u8>> {
        self.blocks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(cid)
            .cloned()
    }
}

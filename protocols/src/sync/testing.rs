//! Records and a store for the tests of this module.

use std::collections::HashMap;

use mnode_dag::{Cid, Keypair, Record, model::social::Post};

use super::{Store, SyncSet, item_of};
use crate::GossipTopic;

/// `n` signed posts by one author, one a second, with every fifth post edited once near the
/// end; the edits come last.
pub(super) fn posts(n: usize) -> (GossipTopic, Vec<Record>) {
    let key = Keypair::derive(3, "sync-author");
    let base = 1_732_400_000_000;
    let mut records: Vec<Record> = (0..n)
        .map(|i| {
            let post = Post {
                text: format!("post number {i} of a long and winding feed"),
                tags: vec!["music/jazz".into()],
                ..Post::default()
            };
            Record::create(&post)
                .unwrap()
                .at(base + i as u64 * 1000)
                .sign(&key)
                .unwrap()
        })
        .collect();
    let edits: Vec<Record> = records
        .iter()
        .step_by(5)
        .enumerate()
        .map(|(j, r)| {
            let post = Post {
                text: format!("an edited post, edit {j}"),
                ..Post::default()
            };
            r.update(&post)
                .unwrap()
                .at(base + (n + j) as u64 * 1000)
                .sign(&key)
                .unwrap()
        })
        .collect();
    records.extend(edits);
    (GossipTopic::Author(*key.did()), records)
}

/// A store holding one topic's records in memory.
#[derive(Debug, Default)]
pub(super) struct MemStore {
    pub(super) sets: HashMap<GossipTopic, SyncSet>,
    pub(super) blocks: HashMap<Cid, Vec<u8>>,
}

impl MemStore {
    pub(super) fn new<'a>(
        topic: GossipTopic,
        records: impl IntoIterator<Item = &'a Record>,
    ) -> Self {
        let mut store = Self::default();
        let mut items = Vec::new();
        for r in records {
            items.push(item_of(r));
            store.blocks.insert(r.cid(), r.bytes().to_vec());
        }
        store.sets.insert(topic, SyncSet::new(items));
        store
    }
}

impl Store for MemStore {
    type Error = std::convert::Infallible;

    fn sync_set(&self, topic: &GossipTopic) -> Result<Option<SyncSet>, Self::Error> {
        Ok(self.sets.get(topic).cloned())
    }

    fn block(&self, cid: &Cid) -> Result<Option<Vec<u8>>, Self::Error> {
        Ok(self.blocks.get(cid).cloned())
    }
}

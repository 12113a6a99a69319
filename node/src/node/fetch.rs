//! Fetching many files at once, and a record's whole DAG (a release: its records and every
//! file they name), from peers.
//!
//! One `Has` question per connected peer covers up to [`blobs::MAX_HAS`] files, the DHT is
//! asked only about files no connected peer holds, and the files then stream over the pooled
//! iroh connections [`MANY_AT_ONCE`](super::blobs_net::MANY_AT_ONCE) at a time: a release of
//! ten thousand photos costs a few round trips more than one file of the same size, not ten
//! thousand fetches.

use std::{
    collections::{HashMap, HashSet},
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use futures::StreamExt as _;
use libp2p::PeerId;
use mnode_dag::{
    Cid, Record,
    cids::{self, LinkKind},
    walk,
};
use serde::Serialize;

use super::{Command, NodeError, NodeHandle, blobs_net::Holders};
use crate::{
    blobs::{BlobError, CHECKS_AT_ONCE},
    store::StoreError,
};

/// How long a block of a DAG may take to come before it counts as missing.
const BLOCK_TIMEOUT: Duration = Duration::from_secs(30);
/// Blocks of a DAG asked for at once over Bitswap (each a message to every connected peer, and
/// its answer one back).
const BLOCKS_AT_ONCE: usize = 64;
/// DHT lookups at once for files no connected peer holds.
const LOOKUPS_AT_ONCE: usize = 8;
/// How often progress is reported while files arrive.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// Progress of a fetch of many files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ManyProgress {
    /// Files to hold in all (known once the DAG is walked).
    pub files: usize,
    /// Of them, files held now.
    pub held: usize,
    /// Bytes of the files being fetched that are held now (counting what an earlier,
    /// interrupted fetch left).
    pub bytes: u64,
}

/// A finished fetch of many files, or of a record's DAG.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FetchedMany {
    /// The distinct files asked for (for a DAG: every file it names).
    pub files: usize,
    /// Of them, those held before the fetch.
    pub held_before: usize,
    /// Bytes of the files held at the end.
    pub size: u64,
    /// Bytes this fetch moved.
    pub transferred: u64,
    /// Blocks of the DAG (records and other IPLD blocks), for a DAG fetch.
    pub blocks: usize,
    /// Of them, those that came from peers.
    pub blocks_fetched: usize,
    /// The peers that served files, and how many files each.
    pub from: Vec<(PeerId, usize)>,
    /// What no peer gave, with why: the fetch is complete when this is empty.
    pub missing: Vec<(Cid, String)>,
}

impl NodeHandle {
    /// Fetches `cids` (files) from peers that hold them, verified as they stream, resuming what
    /// an earlier fetch left, and keeps them. Files already held are kept and not fetched.
    /// Files no peer gives are listed in [`FetchedMany::missing`]; the rest are kept whatever
    /// happens to those.
    pub async fn fetch_files(
        &self,
        cids: Vec<Cid>,
        mut progress: impl FnMut(ManyProgress) + Send,
    ) -> Result<FetchedMany, NodeError> {
        let start = std::time::Instant::now();
        let mut seen = HashSet::new();
        let cids: Vec<Cid> = cids.into_iter().filter(|c| seen.insert(*c)).collect();
        let mut out = FetchedMany {
            files: cids.len(),
            ..FetchedMany::default()
        };
        let (files, others): (Vec<Cid>, Vec<Cid>) = cids
            .into_iter()
            .partition(|c| cids::link_kind(c) == LinkKind::Blob);
        for cid in others {
            out.missing.push((cid, "not a file CID".into()));
        }
        let complete: Vec<Result<bool, BlobError>> = futures::stream::iter(files.clone())
            .map(|cid| async move { self.blobs.has(&cid).await })
            .buffered(CHECKS_AT_ONCE)
            .collect()
            .await;
        let mut need = Vec::new();
        let mut held = Vec::new();
        for (cid, complete) in files.into_iter().zip(complete) {
            if complete? {
                held.push(cid);
            } else {
                need.push(cid);
            }
        }
        for (cid, kept) in held.iter().zip(self.blobs.keep_many(&held).await?) {
            match kept {
                Ok(added) => {
                    out.size += added.size;
                    out.held_before += 1;
                }
                Err(e) => out.missing.push((*cid, e.to_string())),
            }
        }
        let mut report = ManyProgress {
            files: out.files,
            held: out.held_before,
            bytes: 0,
        };
        progress(report);
        if need.is_empty() {
            return Ok(out);
        }

        let holders = self.holders(need).await?;
        let held = AtomicU64::new(0);
        let fetching = self.net.fetch_many(&self.blobs, holders, &held);
        tokio::pin!(fetching);
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        let results = loop {
            tokio::select! {
                results = &mut fetching => break results,
                _ = tick.tick() => {
                    report.bytes = held.load(Ordering::Relaxed);
                    progress(report);
                }
            }
        };

        let mut arrived = Vec::new();
        for (cid, result) in results {
            match result {
                Ok((moved, peer)) => arrived.push((cid, moved, peer)),
                Err(e) => out.missing.push((cid, e)),
            }
        }
        let cids: Vec<Cid> = arrived.iter().map(|(c, _, _)| *c).collect();
        let kept = self.blobs.keep_many(&cids).await?;
        let mut fetched = Vec::new();
        let mut from: HashMap<PeerId, usize> = HashMap::new();
        for ((cid, moved, peer), kept) in arrived.into_iter().zip(kept) {
            match kept {
                Ok(added) => {
                    out.size += added.size;
                    out.transferred += moved;
                    report.held += 1;
                    fetched.push(cid);
                    if let Some(p) = peer.filter(|_| moved > 0) {
                        *from.entry(p).or_default() += 1;
                    }
                }
                Err(e) => out.missing.push((cid, e.to_string())),
            }
        }
        report.bytes = held.load(Ordering::Relaxed);
        progress(report);
        out.from = from.into_iter().collect();
        out.from.sort();
        out.missing.sort();
        if !fetched.is_empty() {
            self.provide(fetched.clone()).await?;
            self.index_later(fetched);
        }
        tracing::info!(
            files = out.files,
            took_ms = start.elapsed().as_millis(),
            held_before = out.held_before,
            transferred = out.transferred,
            missing = out.missing.len(),
            "fetched files"
        );
        Ok(out)
    }

    /// For each of `cids`, the peers that hold it and where their endpoints listen: one
    /// question to each connected peer for them all, then the DHT for those none of them
    /// holds. Files nobody holds have an empty list.
    pub(super) async fn holders(&self, cids: Vec<Cid>) -> Result<Vec<(Cid, Holders)>, NodeError> {
        let answers = self
            .ask(|reply| Command::BlobAddrs {
                peers: None,
                cids: cids.clone(),
                reply,
            })
            .await?;
        let mut out: Vec<(Cid, Holders)> = cids.iter().map(|c| (*c, Vec::new())).collect();
        for h in answers {
            for (i, has) in h.have.iter().enumerate() {
                if *has && let Some((_, list)) = out.get_mut(i) {
                    list.push((h.peer, h.at.clone()));
                }
            }
        }
        let lonely: Vec<usize> = (0..out.len()).filter(|i| out[*i].1.is_empty()).collect();
        let found: Vec<(usize, Holders)> = futures::stream::iter(lonely)
            .map(|i| {
                let cid = out[i].0;
                async move {
                    let dht = self.find_providers(cid).await.unwrap_or_default();
                    if dht.is_empty() {
                        return (i, Vec::new());
                    }
                    let answers = self
                        .ask(|reply| Command::BlobAddrs {
                            peers: Some(dht),
                            cids: vec![cid],
                            reply,
                        })
                        .await
                        .unwrap_or_default();
                    let list = answers
                        .into_iter()
                        .filter(|h| h.have.first() == Some(&true))
                        .map(|h| (h.peer, h.at))
                        .collect();
                    (i, list)
                }
            })
            .buffer_unordered(LOOKUPS_AT_ONCE)
            .collect()
            .await;
        for (i, list) in found {
            out[i].1 = list;
        }
        // In random order, so that files many peers hold are served by all of them.
        for (_, list) in &mut out {
            rand::seq::SliceRandom::shuffle(&mut list[..], &mut rand::rng());
        }
        Ok(out)
    }

    /// Fetches the DAG under `root` (a record, such as a release): the blocks it links,
    /// recursively, from connected peers over Bitswap (each checked against its CID, every
    /// record verified and stored as if it had come by gossip), then every file those blocks
    /// name, with [`NodeHandle::fetch_files`]. The root's item is pinned, so that the node
    /// keeps what it fetched. Blocks and files no peer gives are listed as missing.
    pub async fn fetch_dag(
        &self,
        root: Cid,
        progress: impl FnMut(ManyProgress) + Send,
    ) -> Result<FetchedMany, NodeError> {
        let start = std::time::Instant::now();
        let store = self.repo.store();
        let mut seen: HashSet<Cid> = HashSet::new();
        let mut files: Vec<Cid> = Vec::new();
        let mut records: Vec<Record> = Vec::new();
        let mut other: Vec<(Cid, Vec<u8>)> = Vec::new();
        let mut missing: Vec<(Cid, String)> = Vec::new();
        let mut blocks = 0;
        let mut wave = vec![root];
        while !wave.is_empty() {
            let mut next = Vec::new();
            let mut absent = Vec::new();
            for cid in wave {
                if !seen.insert(cid) {
                    continue;
                }
                match cids::link_kind(&cid) {
                    LinkKind::Blob => files.push(cid),
                    // Another name for the blob the same record links.
                    LinkKind::UnixFs => {}
                    _ => match store.block(&cid)? {
                        Some(bytes) => {
                            blocks += 1;
                            next.extend(links(&cid, &bytes));
                        }
                        None => absent.push(cid),
                    },
                }
            }
            let got: Vec<(Cid, Result<Vec<u8>, String>)> = futures::stream::iter(absent)
                .map(|cid| async move {
                    let r = self.bitswap.fetch(cid, Vec::new(), BLOCK_TIMEOUT).await;
                    (cid, r.map_err(|e| e.to_string()))
                })
                .buffer_unordered(BLOCKS_AT_ONCE)
                .collect()
                .await;
            for (cid, got) in got {
                let bytes = match got {
                    Ok(b) => b,
                    Err(e) => {
                        missing.push((cid, format!("no peer gave the block: {e}")));
                        continue;
                    }
                };
                next.extend(links(&cid, &bytes));
                blocks += 1;
                if crate::car::looks_like_record(&bytes) {
                    match Record::decode_owned(bytes) {
                        Ok(r) => records.push(r),
                        Err(e) => missing.push((cid, format!("not a valid record: {e}"))),
                    }
                } else {
                    match crate::car::check_block(&cid, &bytes) {
                        Ok(()) => other.push((cid, bytes)),
                        Err(e) => missing.push((cid, e)),
                    }
                }
            }
            wave = next;
        }
        if missing.iter().any(|(c, _)| *c == root) {
            return Err(NodeError::NotFound(root));
        }
        let blocks_fetched = records.len() + other.len();
        self.store_fetched(records, other, &mut missing).await?;
        tracing::info!(
            %root,
            blocks,
            blocks_fetched,
            files = files.len(),
            took_ms = start.elapsed().as_millis(),
            "fetched a DAG's blocks; now its files"
        );

        let mut out = self.fetch_files(files, progress).await?;
        out.blocks = blocks;
        out.blocks_fetched = blocks_fetched;
        out.missing.extend(missing);
        out.missing.sort();
        let repo = self.repo.clone();
        tokio::task::spawn_blocking(move || {
            let store = repo.store();
            let id = store.item_id(&root)?.unwrap_or(root);
            store.pin(&id, true)
        })
        .await
        .map_err(|e| NodeError::Store(StoreError::Corrupt(e.to_string())))??;
        Ok(out)
    }

    /// Stores what a DAG fetch brought: records in one batch (versions after the versions they
    /// replace, as a CAR import orders them), one at a time if the batch is refused so that one
    /// bad record keeps out only itself; then the other blocks.
    async fn store_fetched(
        &self,
        mut records: Vec<Record>,
        other: Vec<(Cid, Vec<u8>)>,
        missing: &mut Vec<(Cid, String)>,
    ) -> Result<(), NodeError> {
        let repo = self.repo.clone();
        let refused = tokio::task::spawn_blocking(move || {
            let store = repo.store();
            crate::car::order_records(&mut records);
            let mut refused = Vec::new();
            if store.put_batch(records.clone()).is_err() {
                for r in records {
                    let cid = r.cid();
                    if let Err(e) = store.put(r) {
                        refused.push((cid, format!("the record was refused: {e}")));
                    }
                }
            }
            for (cid, bytes) in &other {
                store.put_block(cid, bytes)?;
            }
            Ok::<_, StoreError>(refused)
        })
        .await
        .map_err(|e| NodeError::Store(StoreError::Corrupt(e.to_string())))??;
        missing.extend(refused);
        Ok(())
    }
}

/// The links of a block the store or a peer gave (checked against its CID already); a block
/// that does not decode links nothing.
fn links(cid: &Cid, bytes: &[u8]) -> Vec<Cid> {
    walk::block_links(cid, bytes).unwrap_or_default()
}

//! The store that the rest of the node (the gateway's reads, peers fetching over iroh-blobs)
//! talks to when files live in a bucket: an actor in front of the iroh-blobs file-system store
//! that answers what concerns files in the bucket itself and passes every other request on.
//!
//! Files in the bucket have no entry in the file-system store; the bucket's index
//! ([`Bucket`]) knows them. For them this actor answers
//!
//! - status and observe (complete, with the size from the index),
//! - `ExportBao` (what peers and verified reads use), `ExportRanges` and `ExportPath`, by
//!   bao-tree's own validated traversal over the outboard from the index and the object's
//!   bytes, read in windows ahead ([`super::bucket::ObjectReader`]),
//! - listing, which adds them to the file-system store's list.
//!
//! Everything else (imports, fetches from peers into partial files, tags, GC) goes to the
//! file-system store unchanged: what arrives from peers lands on the local disk first and is
//! moved to the bucket when it is kept (`Blobs::keep`).

use std::{io, sync::Arc};

use bao_tree::io::{
    EncodeError, Leaf,
    mixed::{EncodedItem, Sender, traverse_ranges_validated},
};
use iroh_blobs::{
    Hash,
    api::{
        Store,
        blobs::{BlobStatus, ExportProgressItem},
        proto::{
            Bitfield, Command, ExportBaoMsg, ExportPathMsg, ExportRangesItem, ExportRangesMsg,
            ListBlobsMsg, ListRequest, Request,
        },
    },
    protocol::{ChunkRanges, ChunkRangesExt},
};
use irpc::{LocalSender, channel::mpsc};
use tracing::{debug, warn};

use super::bucket::Bucket;

/// Starts the actor in front of `inner`; the returned store is what the node uses.
pub(crate) fn spawn(inner: &Store, bucket: Arc<Bucket>) -> io::Result<Store> {
    let Some(inner) = inner.client().as_local() else {
        return Err(io::Error::other("the file store is not a local one"));
    };
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(run(rx, inner, bucket));
    Ok(Store::from_sender(tx.into()))
}

async fn run(
    mut commands: tokio::sync::mpsc::Receiver<Command>,
    inner: LocalSender<Request>,
    bucket: Arc<Bucket>,
) {
    while let Some(command) = commands.recv().await {
        match command {
            Command::BlobStatus(msg) if bucket.size(&msg.inner.hash).is_some() => {
                let size = bucket.size(&msg.inner.hash).unwrap_or_default();
                msg.tx.send(BlobStatus::Complete { size }).await.ok();
            }
            Command::Observe(msg) if bucket.size(&msg.inner.hash).is_some() => {
                let size = bucket.size(&msg.inner.hash).unwrap_or_default();
                msg.tx.send(Bitfield::complete(size)).await.ok();
            }
            Command::ExportBao(msg) if bucket.size(&msg.inner.hash).is_some() => {
                tokio::spawn(export_bao(bucket.clone(), msg));
            }
            Command::ExportRanges(msg) if bucket.size(&msg.inner.hash).is_some() => {
                tokio::spawn(export_ranges(bucket.clone(), msg));
            }
            Command::ExportPath(msg) if bucket.size(&msg.inner.hash).is_some() => {
                tokio::spawn(export_path(bucket.clone(), msg));
            }
            Command::ListBlobs(msg) => {
                tokio::spawn(list(inner.clone(), bucket.clone(), msg));
            }
            other => {
                if inner.send_raw(other).await.is_err() {
                    debug!("the file store has stopped; the bucket tier stops too");
                    break;
                }
            }
        }
    }
}

/// Runs bao-tree's validated traversal of `ranges` of a file in the bucket on a blocking
/// thread (the object reader blocks on its fetches), handing every item to `send`.
async fn traverse<S>(bucket: Arc<Bucket>, hash: Hash, ranges: ChunkRanges, mut send: S)
where
    S: Sender + Send + 'static,
{
    let size = bucket.size(&hash).unwrap_or_default();
    let outboard = match bucket.outboard(&hash) {
        Ok(outboard) => outboard,
        Err(e) => {
            warn!(%hash, "cannot read the outboard of a file in the bucket: {e}");
            send.send(EncodedItem::Error(EncodeError::Io(e))).await.ok();
            return;
        }
    };
    let reader = bucket.reader(&hash, size);
    let done = tokio::task::spawn_blocking(move || {
        futures::executor::block_on(traverse_ranges_validated(
            reader, &outboard, &ranges, &mut send,
        ))
        .ok();
    })
    .await;
    if let Err(e) = done {
        warn!(%hash, "reading a file in the bucket failed: {e}");
    }
}

/// Items straight to the requester.
struct BaoSender(mpsc::Sender<EncodedItem>);

impl Sender for BaoSender {
    type Error = irpc::channel::SendError;
    async fn send(&mut self, item: EncodedItem) -> Result<(), Self::Error> {
        self.0.send(item).await
    }
}

async fn export_bao(bucket: Arc<Bucket>, msg: ExportBaoMsg) {
    let ExportBaoMsg { inner, tx, .. } = msg;
    traverse(bucket, inner.hash, inner.ranges, BaoSender(tx)).await;
}

/// The data of the leaves, cut to the byte ranges asked for.
struct RangesSender {
    tx: mpsc::Sender<ExportRangesItem>,
    ranges: Vec<(u64, u64)>,
}

impl Sender for RangesSender {
    type Error = irpc::channel::SendError;
    async fn send(&mut self, item: EncodedItem) -> Result<(), Self::Error> {
        match item {
            EncodedItem::Size(size) => self.tx.send(ExportRangesItem::Size(size)).await,
            EncodedItem::Leaf(leaf) => {
                let end = leaf.offset + leaf.data.len() as u64;
                for &(start, stop) in &self.ranges {
                    let from = start.max(leaf.offset);
                    let to = stop.min(end);
                    if from < to {
                        let data = leaf
                            .data
                            .slice((from - leaf.offset) as usize..(to - leaf.offset) as usize);
                        let piece = Leaf { offset: from, data };
                        self.tx.send(ExportRangesItem::Data(piece)).await?;
                    }
                }
                Ok(())
            }
            EncodedItem::Error(e) => {
                let error = iroh_blobs::api::Error::from(io::Error::other(e.to_string()));
                self.tx.send(ExportRangesItem::Error(error)).await
            }
            EncodedItem::Parent(_) | EncodedItem::Done => Ok(()),
        }
    }
}

/// The byte ranges of a range set's boundaries as `start..end` pairs, an open end cut at `size`.
fn byte_ranges(boundaries: &[u64], size: u64) -> Vec<(u64, u64)> {
    boundaries
        .chunks(2)
        .map(|pair| match pair {
            [start, end] => (*start, *end),
            [start] => (*start, size),
            _ => (0, 0),
        })
        .collect()
}

async fn export_ranges(bucket: Arc<Bucket>, msg: ExportRangesMsg) {
    let ExportRangesMsg { inner, tx, .. } = msg;
    let size = bucket.size(&inner.hash).unwrap_or_default();
    let ranges = byte_ranges(inner.ranges.boundaries(), size);
    let mut chunks = ChunkRanges::empty();
    for &(start, end) in &ranges {
        chunks |= ChunkRanges::bytes(start..end.min(size));
    }
    let send = RangesSender { tx, ranges };
    traverse(bucket, inner.hash, chunks, send).await;
}

/// The leaves, written to a file.
struct FileSender {
    file: std::fs::File,
    tx: mpsc::Sender<ExportProgressItem>,
    failed: Option<String>,
}

impl Sender for FileSender {
    type Error = irpc::channel::SendError;
    async fn send(&mut self, item: EncodedItem) -> Result<(), Self::Error> {
        use std::os::unix::fs::FileExt as _;
        match item {
            EncodedItem::Size(size) => self.tx.send(ExportProgressItem::Size(size)).await,
            EncodedItem::Leaf(leaf) => {
                if let Err(e) = self.file.write_all_at(&leaf.data, leaf.offset) {
                    self.failed.get_or_insert(e.to_string());
                }
                Ok(())
            }
            EncodedItem::Error(e) => {
                self.failed.get_or_insert(e.to_string());
                Ok(())
            }
            EncodedItem::Done => {
                let item = match self.failed.take() {
                    None => ExportProgressItem::Done,
                    Some(e) => ExportProgressItem::Error(io::Error::other(e).into()),
                };
                self.tx.send(item).await
            }
            EncodedItem::Parent(_) => Ok(()),
        }
    }
}

async fn export_path(bucket: Arc<Bucket>, msg: ExportPathMsg) {
    let ExportPathMsg { inner, tx, .. } = msg;
    let file = match std::fs::File::create(&inner.target) {
        Ok(file) => file,
        Err(e) => {
            tx.send(ExportProgressItem::Error(e.into())).await.ok();
            return;
        }
    };
    let send = FileSender {
        file,
        tx,
        failed: None,
    };
    traverse(bucket, inner.hash, ChunkRanges::all(), send).await;
}

/// The file-system store's list, then the bucket's files it did not list.
async fn list(inner: LocalSender<Request>, bucket: Arc<Bucket>, msg: ListBlobsMsg) {
    let ListBlobsMsg { tx, .. } = msg;
    let (inner_tx, mut inner_rx) = mpsc::channel(64);
    if inner.send((ListRequest, inner_tx)).await.is_err() {
        return;
    }
    // A file moving to the bucket is in both for a moment: listed once.
    let mut listed = std::collections::HashSet::new();
    while let Ok(Some(item)) = inner_rx.recv().await {
        if let Ok(hash) = &item {
            listed.insert(*hash);
        }
        if tx.send(item).await.is_err() {
            return;
        }
    }
    for (hash, _) in bucket.list() {
        if !listed.contains(&hash) && tx.send(Ok(hash)).await.is_err() {
            return;
        }
    }
}

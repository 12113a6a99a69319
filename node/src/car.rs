//! CAR export and import of what the repo holds.
//!
//! Export writes a record with its whole item (every version), everything any version links
//! (records, other IPLD, and files as raw blocks streamed from the blob store), depth-first from
//! the root. Import checks every block against its CID, decodes and verifies every record, then
//! stores records in version order so that chain rules can be checked, files into the blob store
//! and the rest as blocks; it pins the roots. It is all or nothing: one bad block, invalid
//! record or missing root and the whole CAR is refused, with nothing stored or pinned.

use std::{
    collections::HashSet,
    io::{Read, Write},
};

use futures_lite::StreamExt as _;
use mnode_dag::{
    Cid, Record,
    car::{CarError, CarReader, CarWriter},
    cids::{self, LinkKind},
    walk,
};
use serde::Serialize;

use crate::{
    blobs::{BlobError, Blobs},
    store::{Store, StoreError},
};

/// Largest block import accepts (a file travels as one raw block).
pub const MAX_IMPORT_BLOCK: u64 = 1 << 30;

/// Why an export or import failed as a whole.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CarIoError {
    /// Reading or writing the CAR failed.
    #[error("CAR I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The CAR is malformed.
    #[error(transparent)]
    Car(#[from] CarError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blob store failed.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// The root is not on this node.
    #[error("{0} is not on this node")]
    NotFound(Cid),
}

/// What an export wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct ExportReport {
    /// Blocks written.
    pub blocks: u64,
    /// Of which files.
    pub files: u64,
    /// Bytes of block data written.
    pub bytes: u64,
    /// Linked blocks this node does not have (left out).
    pub missing: Vec<String>,
}

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Blocks read.
    pub blocks: u64,
    /// Records stored (new).
    pub records: u64,
    /// Records already here.
    pub duplicates: u64,
    /// Files stored.
    pub files: u64,
    /// Other blocks stored.
    pub other: u64,
    /// The roots, pinned.
    pub roots: Vec<String>,
    /// Blocks refused, with the reason.
    pub failures: Vec<(String, String)>,
}

/// Whether the repo holds `cid`: a file in the blob store, anything else in the block store.
pub async fn have(store: &Store, blobs: &Blobs, cid: &Cid) -> Result<bool, CarIoError> {
    Ok(match cids::link_kind(cid) {
        LinkKind::Blob => blobs.has(cid).await?,
        _ => store.has_block(cid)?,
    })
}

/// Writes `root` and everything it reaches as a CAR v1 to `w`.
pub async fn export<W: Write>(
    store: &Store,
    blobs: &Blobs,
    root: &Cid,
    w: W,
) -> Result<ExportReport, CarIoError> {
    if !have(store, blobs, root).await? {
        return Err(CarIoError::NotFound(*root));
    }
    let mut car = CarWriter::new(w, &[*root])?;
    let mut report = ExportReport::default();
    let mut seen = HashSet::new();
    let mut stack = vec![*root];
    while let Some(cid) = stack.pop() {
        if !seen.insert(cid) {
            continue;
        }
        if cids::link_kind(&cid) == LinkKind::Blob {
            let Some(size) = blobs.size(&cid).await? else {
                report.missing.push(cid.to_string());
                continue;
            };
            let out = car.begin_block(&cid, size)?;
            let mut stream = blobs.read_range(&cid, 0, None).await?;
            let mut written = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                written += chunk.len() as u64;
                out.write_all(&chunk)?;
            }
            if written != size {
                return Err(CarIoError::Io(std::io::Error::other(format!(
                    "file {cid} gave {written} bytes, expected {size}"
                ))));
            }
            report.blocks += 1;
            report.files += 1;
            report.bytes += size;
            continue;
        }
        if cids::link_kind(&cid) == LinkKind::UnixFs && cid != *root {
            // Another name for the file the blob link beside it brings (see `mnode_dag::unixfs`).
            continue;
        }
        let Some(bytes) = store.block(&cid)? else {
            report.missing.push(cid.to_string());
            continue;
        };
        car.write_block(&cid, &bytes)?;
        report.blocks += 1;
        report.bytes += bytes.len() as u64;
        let mut next = walk::block_links(&cid, &bytes)
            .map_err(|e| StoreError::Corrupt(format!("{cid}: {e}")))?;
        // A record brings its item's other versions.
        if let Ok(record) = Record::decode_trusted(bytes) {
            next.extend(store.history(&record.id())?.into_iter().map(|v| v.cid));
        }
        stack.extend(next.into_iter().rev());
    }
    car.finish()?;
    Ok(report)
}

/// Reads a CAR from `r` into the repo (see the module docs).
///
/// All or nothing: every block is checked, every record decoded and verified, and every root
/// found before anything but files is written; records then go in one atomic batch, the other
/// blocks and the pins after it. If anything is refused (a bad block, an invalid record, a
/// version whose predecessor is missing, a root the CAR lacks) the report lists why, nothing
/// is stored or pinned, and files this import added are removed again.
pub async fn import<R: Read>(
    store: &Store,
    blobs: &Blobs,
    r: R,
) -> Result<ImportReport, CarIoError> {
    let mut added = Vec::new();
    let result = import_into(store, blobs, r, &mut added).await;
    let failed = match &result {
        Ok(report) => !report.failures.is_empty(),
        Err(_) => true,
    };
    if failed && !added.is_empty() {
        let undone = blobs.delete_many(&added).await;
        if let Err(e) = undone {
            tracing::warn!("cannot remove the files of a failed CAR import: {e}");
        }
    } else {
        // The UnixFS views of the files it brought (their records may name them).
        for cid in &added {
            let view = blobs.unixfs_view(cid).await?;
            store.put_view(cid, &view)?;
        }
    }
    result.map(|mut report| {
        if failed {
            let read = report.blocks;
            report = ImportReport {
                blocks: read,
                failures: report.failures,
                ..ImportReport::default()
            };
        }
        report
    })
}

/// The work of [`import`]; `added` collects the files it stored that were not here before.
async fn import_into<R: Read>(
    store: &Store,
    blobs: &Blobs,
    r: R,
    added: &mut Vec<Cid>,
) -> Result<ImportReport, CarIoError> {
    let mut car = CarReader::new(r)?.with_max_block_len(MAX_IMPORT_BLOCK);
    let roots = car.roots().to_vec();
    let mut report = ImportReport::default();
    let mut records = Vec::new();
    let mut blocks: Vec<(Cid, Vec<u8>)> = Vec::new();
    let mut in_car = HashSet::new();
    loop {
        let (cid, bytes) = match car.next_block() {
            Ok(Some(b)) => b,
            Ok(None) => break,
            Err(CarError::Block { error, index }) => {
                report
                    .failures
                    .push((format!("block {index}"), error.to_string()));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        report.blocks += 1;
        in_car.insert(cid);
        match (cid.codec(), cids::link_kind(&cid)) {
            (_, LinkKind::Blob) => {
                // Files are too large to hold until the end: they go into the blob store now
                // (checked against their CID first), and out again if the import fails.
                if cids::blob_cid_of(&bytes) != cid {
                    report
                        .failures
                        .push((cid.to_string(), "the file does not hash to its CID".into()));
                    continue;
                }
                if !report.failures.is_empty() {
                    continue;
                }
                let new = !blobs.has(&cid).await?;
                let stored = blobs.add_bytes(bytes.into()).await?;
                if new {
                    added.push(stored.cid);
                }
                report.files += 1;
            }
            (cids::DAG_CBOR, LinkKind::Record) if looks_like_record(&bytes) => {
                match Record::decode_owned(bytes) {
                    Ok(record) => records.push(record),
                    Err(e) => report.failures.push((cid.to_string(), e.to_string())),
                }
            }
            _ => match check_block(&cid, &bytes) {
                Ok(()) => blocks.push((cid, bytes)),
                Err(e) => report.failures.push((cid.to_string(), e)),
            },
        }
    }
    for root in &roots {
        if !in_car.contains(root) && !have(store, blobs, root).await? {
            report
                .failures
                .push((root.to_string(), "root is not in the CAR".into()));
        }
    }
    if !report.failures.is_empty() {
        return Ok(report);
    }
    // Versions after the versions they replace; key logs' versions, then groups', before the
    // records citing them (a group's versions may cite a key log); all in one atomic write.
    order_records(&mut records);
    match store.put_batch(records) {
        Ok(puts) => count(&mut report, &puts),
        Err(e) => {
            let what = match &e {
                StoreError::MissingPrev { cid, .. } | StoreError::MissingAuthority { cid, .. } => {
                    cid.to_string()
                }
                _ => "records".to_owned(),
            };
            report.failures.push((what, e.to_string()));
            return Ok(report);
        }
    }
    report.other = put_blocks(store, &blocks)?;
    for root in &roots {
        let id = store.item_id(root)?.unwrap_or(*root);
        store.pin(&id, true)?;
        report.roots.push(id.to_string());
    }
    Ok(report)
}

/// Puts records in the order one batch can store them: versions after the versions they
/// replace; key logs' versions, then groups', before the records citing them (a group's
/// versions may cite a key log).
pub(crate) fn order_records(records: &mut [Record]) {
    records.sort_by_key(|r| {
        let rank = match r.kind() {
            mnode_dag::key_log::KEYS_KIND => 0u8,
            mnode_dag::group::GROUP_KIND => 1,
            _ => 2,
        };
        (rank, r.seq())
    });
}

/// A block that is not a record checked as [`Store::put_block`] checks it.
pub(crate) fn check_block(cid: &Cid, bytes: &[u8]) -> Result<(), String> {
    cids::verify_block(cid, bytes).map_err(|e| e.to_string())?;
    if cid.codec() == cids::DAG_CBOR {
        mnode_dag::cbor::decode_ipld(bytes).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Stores checked blocks in one write; returns how many were new.
fn put_blocks(store: &Store, blocks: &[(Cid, Vec<u8>)]) -> Result<u64, StoreError> {
    let cf = store.cf("blocks")?;
    let mut batch = rocksdb::WriteBatch::default();
    let mut new = 0;
    let mut seen = HashSet::new();
    for (cid, bytes) in blocks {
        if seen.insert(*cid) && !store.has_block(cid)? {
            batch.put_cf(cf, cid.to_bytes(), bytes);
            new += 1;
        }
    }
    store.db().write(batch)?;
    Ok(new)
}

fn count(report: &mut ImportReport, puts: &[crate::store::Put]) {
    for p in puts {
        match p {
            crate::store::Put::Stored { .. } => report.records += 1,
            crate::store::Put::Duplicate(_) => report.duplicates += 1,
        }
    }
}

/// Whether a DAG-CBOR block has a record's shape (and so must verify as one).
pub(crate) fn looks_like_record(bytes: &[u8]) -> bool {
    matches!(mnode_dag::cbor::decode_ipld(bytes), Ok(mnode_dag::Ipld::Map(m))
        if m.contains_key("sig") && m.contains_key("author") && m.contains_key("type"))
}

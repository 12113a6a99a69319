//! `repo gc`, `repo verify` and `repo stat`.
//!
//! GC marks everything pins reach (a pinned record brings its whole item: every version and
//! everything any version links, recursively; a pinned file brings itself), then sweeps the
//! rest in small batches. Each batch holds the writer lock only while it deletes, so readers
//! never wait and writers wait at most one batch.
//!
//! Writes go on while GC runs, so it only ever removes what was there before it began: the
//! sweep reads a snapshot taken before the mark, and files are listed before it too. A new item
//! is written with its pin ([`Store::put_batch_pinned`]); the blob store keeps a new file for a
//! minute ([`Blobs::collect`]), the time its record takes to come.

use std::collections::HashSet;

use mnode_dag::{
    Cid, Record,
    cids::{self, LinkKind},
    walk,
};
use rocksdb::{IteratorMode, ReadOptions, WriteBatch};
use serde::Serialize;

use crate::{
    blobs::{BlobError, Blobs},
    store::{Item, Stats, Store, StoreError},
};

/// Deletes per sweep batch.
const SWEEP_BATCH: usize = 512;

/// What the pins reach.
#[derive(Debug, Default)]
pub struct Marked {
    /// Blocks (records and other IPLD) to keep.
    pub blocks: HashSet<Cid>,
    /// Items to keep (by id).
    pub items: HashSet<Cid>,
    /// Files to keep.
    pub blobs: HashSet<Cid>,
}

/// What a sweep removed.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct GcReport {
    /// Blocks removed.
    pub blocks: u64,
    /// Bytes of block data removed.
    pub bytes: u64,
    /// Items removed.
    pub items: u64,
    /// Files removed (filled in by the caller that owns the blob store).
    pub blobs: u64,
}

/// A problem `repo verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// What it concerns (a CID or an index key).
    pub what: String,
    /// What is wrong.
    pub problem: String,
}

/// What `repo verify` checked.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Blocks re-hashed.
    pub blocks: u64,
    /// Records fully re-verified (strict decode, signature, schema).
    pub records: u64,
    /// Items checked against their versions.
    pub items: u64,
    /// Index entries checked.
    pub index_entries: u64,
    /// Files re-hashed (filled in by the caller that owns the blob store).
    pub blobs: u64,
    /// Pins whose DAG was walked to check that everything it links is held.
    pub pins: u64,
    /// Everything wrong.
    pub problems: Vec<Problem>,
}

/// What a pin reaches that the repo does not hold.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PinGaps {
    /// Blocks (records and other IPLD) linked but not stored.
    pub blocks: Vec<Cid>,
    /// Every file the pin reaches (whether the blob store holds them is for its owner to say).
    pub blobs: Vec<Cid>,
}

/// How many missing CIDs a problem names before it says "and N more".
const GAPS_NAMED: usize = 5;

/// Why a whole-repo operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RepoOpError {
    /// The record store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blob store failed.
    #[error(transparent)]
    Blobs(#[from] BlobError),
}

/// Counts and sizes of a repo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepoStat {
    /// Records, by the store.
    pub records: Stats,
    /// Files held.
    pub files: u64,
    /// Bytes of the files held.
    pub file_bytes: u64,
    /// Where files live when not in the repo: `s3://bucket/prefix at endpoint`.
    pub bucket: Option<String>,
}

/// Garbage collection of records and files: removes what no pin reaches.
pub async fn gc(store: &Store, blobs: &Blobs) -> Result<GcReport, RepoOpError> {
    // Files stored from here on are not candidates; those stored just before are kept by
    // `collect` while their records may still be on the way.
    let files = blobs.list().await?;
    let (marked, mut report) = store.mark_and_sweep()?;
    let unreached: Vec<Cid> = files
        .into_iter()
        .map(|(cid, _)| cid)
        .filter(|cid| !marked.blobs.contains(cid))
        .collect();
    report.blobs = blobs.collect(&unreached).await? as u64;
    prune_views(store, blobs).await?;
    Ok(report)
}

/// Forgets the UnixFS views of files no longer held (collected, or deleted by hand).
pub async fn prune_views(store: &Store, blobs: &Blobs) -> Result<usize, RepoOpError> {
    let mut dropped = 0;
    for (blob, _) in store.views()? {
        if !blobs.has(&blob).await? && store.drop_view(&blob)? {
            dropped += 1;
        }
    }
    Ok(dropped)
}

/// Re-hashes every block and file, re-verifies every record, checks every index entry, and
/// checks that every pin's DAG is complete (a pinned item whose linked records, blocks or
/// files are missing is a problem: it cannot be served or exported whole).
pub async fn verify(store: &Store, blobs: &Blobs) -> Result<VerifyReport, RepoOpError> {
    let mut report = store.verify()?;
    report.blobs = blobs.list().await?.len() as u64;
    for (cid, detail) in blobs.verify_all_saying().await? {
        let problem = if blobs.in_place(&cid).await.unwrap_or(false) {
            "added in place (--in-place), and the original file has changed or is gone since".into()
        } else if blobs.in_bucket(&cid).await.unwrap_or(false) {
            format!("in the bucket: {detail}")
        } else {
            "file contents do not hash to its CID".into()
        };
        report.problems.push(Problem {
            what: cid.to_string(),
            problem,
        });
    }
    let pins = store.pin_gaps()?;
    report.pins = pins.len() as u64;
    let mut held = std::collections::HashMap::new();
    for (pin, gaps) in pins {
        let mut missing = gaps.blocks;
        for blob in gaps.blobs {
            let has = match held.get(&blob) {
                Some(h) => *h,
                None => {
                    let h = blobs.has(&blob).await?;
                    held.insert(blob, h);
                    h
                }
            };
            if !has {
                missing.push(blob);
            }
        }
        if missing.is_empty() {
            continue;
        }
        let mut named: Vec<String> = missing
            .iter()
            .take(GAPS_NAMED)
            .map(ToString::to_string)
            .collect();
        if missing.len() > GAPS_NAMED {
            named.push(format!("and {} more", missing.len() - GAPS_NAMED));
        }
        report.problems.push(Problem {
            what: pin.to_string(),
            problem: format!(
                "pinned, but its DAG is incomplete: {} linked record(s), block(s) or file(s) \
                 missing: {}",
                missing.len(),
                named.join(", ")
            ),
        });
    }
    Ok(report)
}

/// Counts and sizes of records and files.
pub async fn stat(store: &Store, blobs: &Blobs) -> Result<RepoStat, RepoOpError> {
    let records = store.stats()?;
    let files = blobs.list().await?;
    Ok(RepoStat {
        records,
        files: files.len() as u64,
        file_bytes: files.iter().map(|(_, s)| s).sum(),
        bucket: blobs.bucket().map(str::to_owned),
    })
}

impl Store {
    /// Everything the pins reach.
    pub fn mark(&self) -> Result<Marked, StoreError> {
        let mut m = Marked::default();
        let mut stack: Vec<(Cid, bool)> = self
            .pins()?
            .into_iter()
            .map(|(c, p)| (c, p.recursive))
            .collect();
        // Everything in a followed feed, branch or thread is kept, like a pin.
        for topic in self.follows()? {
            for (_, digest) in self.sync_items(&topic)? {
                stack.push((cids::record_cid_from_digest(digest), true));
            }
        }
        while let Some((cid, recursive)) = stack.pop() {
            match cids::link_kind(&cid) {
                LinkKind::Blob => {
                    m.blobs.insert(cid);
                }
                // A file's UnixFS view is kept while its blob is (the blob link beside it).
                LinkKind::UnixFs => {}
                _ if !m.blocks.insert(cid) => {}
                _ => {
                    let Some(bytes) = self.block(&cid)? else {
                        continue;
                    };
                    if !recursive {
                        continue;
                    }
                    // A record brings its whole item.
                    if let Ok(record) = Record::decode_trusted(bytes.clone()) {
                        let id = record.id();
                        if m.items.insert(id) {
                            for v in self.history(&id)? {
                                if v.cid != cid {
                                    stack.push((v.cid, true));
                                }
                            }
                        }
                        m.blocks.insert(id);
                    }
                    let links = walk::block_links(&cid, &bytes)
                        .map_err(|e| StoreError::Corrupt(format!("block {cid}: {e}")))?;
                    stack.extend(links.into_iter().map(|l| (l, true)));
                }
            }
        }
        Ok(m)
    }

    /// For every pin, what its DAG links that this store does not hold, walked as [`Store::mark`]
    /// walks it (a record brings its whole item and everything any version links), plus the
    /// files it reaches. Pins in the order of [`Store::pins`].
    pub fn pin_gaps(&self) -> Result<Vec<(Cid, PinGaps)>, StoreError> {
        let mut out = Vec::new();
        for (pin, p) in self.pins()? {
            let mut gaps = PinGaps::default();
            let mut seen = HashSet::new();
            let mut stack = vec![(pin, p.recursive)];
            while let Some((cid, recursive)) = stack.pop() {
                if !seen.insert(cid) {
                    continue;
                }
                match cids::link_kind(&cid) {
                    LinkKind::Blob => {
                        gaps.blobs.push(cid);
                        continue;
                    }
                    // Made from the blob the same record links, which is checked.
                    LinkKind::UnixFs => continue,
                    _ => {}
                }
                let Some(bytes) = self.block(&cid)? else {
                    gaps.blocks.push(cid);
                    continue;
                };
                if !recursive {
                    continue;
                }
                if let Ok(record) = Record::decode_trusted(bytes.clone()) {
                    for v in self.history(&record.id())? {
                        stack.push((v.cid, true));
                    }
                }
                // A block that does not decode is reported by the block check.
                if let Ok(links) = walk::block_links(&cid, &bytes) {
                    stack.extend(links.into_iter().rev().map(|l| (l, true)));
                }
            }
            out.push((pin, gaps));
        }
        Ok(out)
    }

    /// Marks, then removes every block and item that was there before the mark and that the
    /// mark did not reach: what is written while this runs stays, pinned or not.
    pub fn mark_and_sweep(&self) -> Result<(Marked, GcReport), StoreError> {
        let snapshot = self.db().snapshot();
        let marked = self.mark()?;
        let report = self.sweep_in(&marked, |cf| {
            let mut o = ReadOptions::default();
            o.set_snapshot(&snapshot);
            self.db().iterator_cf_opt(cf, o, IteratorMode::Start)
        })?;
        Ok((marked, report))
    }

    /// Removes every block and item the mark did not reach.
    pub fn sweep(&self, marked: &Marked) -> Result<GcReport, StoreError> {
        self.sweep_in(marked, |cf| self.db().iterator_cf(cf, IteratorMode::Start))
    }

    /// [`Store::sweep`] of the blocks and items that `scan` lists.
    fn sweep_in<'a, I>(
        &'a self,
        marked: &Marked,
        scan: impl Fn(&'a rocksdb::ColumnFamily) -> I,
    ) -> Result<GcReport, StoreError>
    where
        I: Iterator<Item = Result<(Box<[u8]>, Box<[u8]>), rocksdb::Error>>,
    {
        let mut report = GcReport::default();
        // Items first (with their versions and index entries), then loose blocks.
        let doomed_items: Vec<Cid> = scan(self.cf("items")?)
            .filter_map(|e| e.ok())
            .filter_map(|(k, _)| Cid::try_from(&k[..]).ok())
            .filter(|id| !marked.items.contains(id))
            .collect();
        for chunk in doomed_items.chunks(SWEEP_BATCH / 8) {
            let _guard = self.write_lock()?;
            let mut batch = WriteBatch::default();
            for id in chunk {
                // As it is now (a version may have come since the scan), under the lock.
                let Some(item) = self.item(id)? else {
                    continue;
                };
                self.delete_item_into(&mut batch, id, &item, &mut report)?;
            }
            self.db().write(batch)?;
        }
        let doomed_blocks: Vec<(Vec<u8>, usize)> = scan(self.cf("blocks")?)
            .filter_map(|e| e.ok())
            .filter(|(k, _)| Cid::try_from(&k[..]).is_ok_and(|c| !marked.blocks.contains(&c)))
            .map(|(k, v)| (k.to_vec(), v.len()))
            .collect();
        for chunk in doomed_blocks.chunks(SWEEP_BATCH) {
            let _guard = self.write_lock()?;
            let mut batch = WriteBatch::default();
            for (k, len) in chunk {
                // The scan may be of a snapshot: a block that went with its item above is
                // listed there still, and is neither deleted nor counted twice.
                if self.db().get_pinned_cf(self.cf("blocks")?, k)?.is_none() {
                    continue;
                }
                batch.delete_cf(self.cf("blocks")?, k);
                report.blocks += 1;
                report.bytes += *len as u64;
            }
            self.db().write(batch)?;
        }
        Ok(report)
    }

    fn delete_item_into(
        &self,
        batch: &mut WriteBatch,
        id: &Cid,
        item: &Item,
        report: &mut GcReport,
    ) -> Result<(), StoreError> {
        self.index_delete(batch, id, item)?;
        for v in self.history(id)? {
            batch.delete_cf(
                self.cf("versions")?,
                crate::store::version_key(id, v.seq, &v.cid),
            );
            if let Some(bytes) = self.block(&v.cid)? {
                if let Ok(record) = Record::decode_trusted(bytes.clone()) {
                    let targets = self.targets(&record)?;
                    for topic in crate::store::version_topics(&record, &v, &targets) {
                        batch.delete_cf(
                            self.cf("sync")?,
                            crate::store::sync_key(&topic, v.updated, &v.cid),
                        );
                    }
                }
                batch.delete_cf(self.cf("blocks")?, v.cid.to_bytes());
                report.blocks += 1;
                report.bytes += bytes.len() as u64;
            }
        }
        batch.delete_cf(self.cf("items")?, id.to_bytes());
        report.items += 1;
        Ok(())
    }

    /// Re-hashes every block, re-verifies every record, and checks items and indexes against
    /// the versions they name.
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        let mut r = VerifyReport::default();
        let mut problems = Vec::new();
        for entry in self
            .db()
            .iterator_cf(self.cf("blocks")?, IteratorMode::Start)
        {
            let (k, v) = entry?;
            r.blocks += 1;
            let Ok(cid) = Cid::try_from(&k[..]) else {
                problems.push(Problem {
                    what: hex::encode(&k),
                    problem: "block key is not a CID".into(),
                });
                continue;
            };
            if let Err(e) = cids::verify_block(&cid, &v) {
                problems.push(Problem {
                    what: cid.to_string(),
                    problem: e.to_string(),
                });
                continue;
            }
            if cids::link_kind(&cid) != LinkKind::Record {
                continue;
            }
            let is_envelope = matches!(mnode_dag::cbor::decode_ipld(&v), Ok(mnode_dag::Ipld::Map(m)) if m.contains_key("sig") && m.contains_key("author"));
            if !is_envelope {
                continue;
            }
            match Record::decode(&v) {
                Ok(record) => {
                    r.records += 1;
                    if self
                        .version_info(&record.id(), record.seq(), &cid)?
                        .is_none()
                    {
                        problems.push(Problem {
                            what: cid.to_string(),
                            problem: "record has no version entry".into(),
                        });
                    }
                }
                Err(e) => problems.push(Problem {
                    what: cid.to_string(),
                    problem: e.to_string(),
                }),
            }
        }
        for entry in self
            .db()
            .iterator_cf(self.cf("items")?, IteratorMode::Start)
        {
            let (k, v) = entry?;
            r.items += 1;
            let id = Cid::try_from(&k[..]).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let item: Item = match mnode_dag::cbor::decode(&v) {
                Ok(i) => i,
                Err(e) => {
                    problems.push(Problem {
                        what: id.to_string(),
                        problem: format!("item does not decode: {e}"),
                    });
                    continue;
                }
            };
            let history = self.history(&id)?;
            if history.len() as u64 != item.versions {
                problems.push(Problem {
                    what: id.to_string(),
                    problem: format!(
                        "item counts {} versions, {} stored",
                        item.versions,
                        history.len()
                    ),
                });
            }
            for (tip, _) in &item.tips {
                if !history.iter().any(|v| v.cid == *tip) {
                    problems.push(Problem {
                        what: id.to_string(),
                        problem: format!("tip {tip} is not a stored version"),
                    });
                }
            }
            if !history.iter().any(|v| v.cid == item.head) {
                problems.push(Problem {
                    what: id.to_string(),
                    problem: format!("head {} is not a stored version", item.head),
                });
            }
            for v in &history {
                if !self.has_block(&v.cid)? {
                    problems.push(Problem {
                        what: v.cid.to_string(),
                        problem: "version entry without its block".into(),
                    });
                }
            }
            for (cf, key, _) in self.index_entries(&id, &item) {
                r.index_entries += 1;
                if self.db().get_pinned_cf(self.cf(cf)?, &key)?.is_none() {
                    problems.push(Problem {
                        what: id.to_string(),
                        problem: format!("missing {cf} index entry"),
                    });
                }
            }
        }
        // Index entries whose item is gone, deleted or different.
        for cf in ["by_kind", "by_author", "by_topic", "by_tag"] {
            for entry in self.db().iterator_cf(self.cf(cf)?, IteratorMode::Start) {
                let (k, _) = entry?;
                r.index_entries += 1;
                let Some(id) = k
                    .len()
                    .checked_sub(36)
                    .and_then(|at| Cid::try_from(&k[at..]).ok())
                else {
                    problems.push(Problem {
                        what: format!("{cf}/{}", hex::encode(&k)),
                        problem: "index key does not end in an item id".into(),
                    });
                    continue;
                };
                let ok = match self.item(&id)? {
                    Some(item) => self
                        .index_entries(&id, &item)
                        .iter()
                        .any(|(c, key, _)| *c == cf && **key == *k),
                    None => false,
                };
                if !ok {
                    problems.push(Problem {
                        what: format!("{cf}/{id}"),
                        problem: "index entry names no live item with these facts".into(),
                    });
                }
            }
        }
        r.problems = problems;
        Ok(r)
    }
}

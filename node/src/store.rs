//! Records in RocksDB: blocks, versions, items (origin → head), indexes and pins.
//!
//! Every record, made here or received, goes through [`Store::put_batch`]: strict decode,
//! signature, schema and chain rules (against the stored facts of the version it replaces), then
//! one atomic write of the block, the version, the item's new head and every index change. A
//! crash leaves either all of it or none of it.
//!
//! Column families and keys (`id` is an item's origin CID, 36 bytes; times are big-endian ms so
//! keys sort by time):
//!
//! | family | key | value |
//! |---|---|---|
//! | `blocks` | CID | block bytes |
//! | `versions` | id · seq · CID | [`VersionInfo`] |
//! | `items` | id | [`Item`] |
//! | `by_kind` | kind · 0 · created · id | |
//! | `by_author` | public key · created · id | kind |
//! | `by_topic` | topic tag · CID · created · id | kind |
//! | `by_tag` | tag · 0 · created · id | kind (a tag is indexed with all its ancestors) |
//! | `pins` | CID | [`Pin`] |
//! | `sync` | gossip topic key · updated · SHA-256 digest of the CID | (every version, for catch-up) |
//! | `follows` | gossip topic key | when it was followed (ms) |
//! | `account_follows` | `a` · handle · 0 · topic key, and `t` · topic key · handle; `m` · handle · 0 · muted author's public key | when (ms) |
//! | `peers` | peer id | addresses and when last seen ([`crate::peers`]) |
//! | `owned` | group id · item id | (every item a group owns, live or not) |
//! | `owned` | `k` · identity's public key · item id | (every item with a version signed for the identity) |
//! | `identities` | identity's public key | id of the key log used (its first root stored), then `1` if another root arrived |
//!
//! Items whose head is a tombstone are in no listing; their history stays. A group's item
//! ([`mnode_dag::group`]) takes as its head the newest version still in force, judged against
//! the group's head: when the group's head moves, its items are judged again. Likewise every
//! item of an identity that rotated its key ([`mnode_dag::key_log`]), against the winning path
//! of the identity's key log: when that path's head moves, its items are judged again. An
//! item's `author` is the identity its version 0 is signed for (a version's `author` is the key
//! that signed it), so the `by_author` listing keeps one author across a rotation.

use std::{
    collections::{BTreeSet, HashMap},
    path::Path,
    sync::Mutex,
};

use mnode_dag::{
    Cid, Did, Ipld, Record, RecordError, VersionInfo,
    authority::Authority,
    cbor,
    cids::{self, LinkKind},
    group::{self, GROUP_KIND, GroupError, GroupPath, Standing},
    key_log::{self, KEYS_KIND, KeyError, LogPath},
    query::{Condition, Method, Op, Query, Step, Value},
    record::ChainError,
    registry::Topic,
};
use mnode_protocols::GossipTopic;

use crate::authority::StoreAuthority;
use rocksdb::{
    BlockBasedOptions, ColumnFamily, ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options,
    WriteBatch, WriteBufferManager,
};
use serde::{Deserialize, Serialize};

const BLOCKS: &str = "blocks";
const VERSIONS: &str = "versions";
const ITEMS: &str = "items";
const BY_KIND: &str = "by_kind";
const BY_AUTHOR: &str = "by_author";
const BY_TOPIC: &str = "by_topic";
const BY_TAG: &str = "by_tag";
const PINS: &str = "pins";
const SYNC: &str = "sync";
const FOLLOWS: &str = "follows";
const ACCOUNT_FOLLOWS: &str = "account_follows";
const OWNED: &str = "owned";
const IDENTITIES: &str = "identities";
/// The estimated size of one column family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilySize {
    /// The family's name.
    pub name: &'static str,
    /// Estimated keys.
    pub keys: u64,
    /// Bytes on disk and in memtables.
    pub bytes: u64,
}

/// Column families owned by other modules (accounts, sessions, peers), opened here with the rest.
pub(crate) const EXTRA_FAMILIES: &[&str] = &[
    "accounts",
    "emails",
    "phones",
    "keys",
    "sessions",
    "peers",
    crate::unixfs::UNIXFS,
];
const FAMILIES: &[&str] = &[
    BLOCKS,
    VERSIONS,
    ITEMS,
    BY_KIND,
    BY_AUTHOR,
    BY_TOPIC,
    BY_TAG,
    PINS,
    SYNC,
    FOLLOWS,
    ACCOUNT_FOLLOWS,
    OWNED,
    IDENTITIES,
];

/// Length of a record CID (v1, dag-cbor, sha2-256) in bytes; every item id has it.
const ID_LEN: usize = 36;

/// An item: the facts listings and updates need, kept under its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// `namespace.kind`.
    pub kind: String,
    /// The author.
    #[serde(with = "mnode_dag::keys::did_bytes")]
    pub author: Did,
    /// When version 0 was made (ms).
    pub created: u64,
    /// The version shown: the newest tip by (updated, CID).
    pub head: Cid,
    /// The head's `updated` (ms).
    pub updated: u64,
    /// Versions nothing replaces yet, with their `updated`. More than one means a fork.
    pub tips: Vec<(Cid, u64)>,
    /// How many versions are stored.
    pub versions: u64,
    /// Whether the head is a tombstone (the item is deleted).
    pub deleted: bool,
    /// The head's tags and topics, as indexed (so a new head can replace them).
    pub tags: Vec<String>,
    /// See `tags`.
    pub topics: Vec<(u8, Cid)>,
    /// The group that owns the item (its id), if a group does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Cid>,
    /// Whether no version of the group's item is in force (its signers lost the right): the
    /// item is then in no listing, like a deleted one, and its head is the newest tip.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub revoked: bool,
}

impl Item {
    /// Whether two or more versions compete to be the head.
    pub fn forked(&self) -> bool {
        self.tips.len() > 1
    }
}

/// A pin keeps a record (with its history and everything it links) or a block from `repo gc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    /// Whether the pin covers what the block links to.
    pub recursive: bool,
    /// When it was pinned (ms).
    pub created: u64,
}

/// What a put did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Put {
    /// A new version was stored.
    Stored {
        /// Its CID.
        cid: Cid,
        /// The item's id.
        id: Cid,
        /// Whether it became the item's head.
        head: bool,
        /// Whether it forked the item (it replaces a version something else already replaced).
        fork: bool,
    },
    /// The record was already stored.
    Duplicate(Cid),
}

/// Why the store refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// RocksDB failed.
    #[error("database error: {0}")]
    Db(rocksdb::Error),
    /// The disk is full: the write was refused, nothing of it is stored. RocksDB stops taking
    /// writes after a failed one and takes them again by itself once there is room (its
    /// `SstFileManager` looks every few seconds); reads go on meanwhile.
    #[error("{}", crate::DISK_FULL)]
    DiskFull,
    /// The record is invalid.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// A group or key log version the record cites (or that the group or key rules need) is
    /// not stored: fetch the group's chain, or the identity's key log, first.
    #[error(
        "record {cid} cites {missing}, which this node does not have (the group's or key log's versions come first)"
    )]
    MissingAuthority {
        /// The record.
        cid: Cid,
        /// What it needs.
        missing: Cid,
    },
    /// The version this record replaces is not stored (fetch it first).
    #[error("record {cid} replaces {prev}, which this node does not have")]
    MissingPrev {
        /// The record.
        cid: Cid,
        /// The version it replaces.
        prev: Cid,
    },
    /// Nothing stored under this id.
    #[error("no item or record {0} on this node")]
    NotFound(Cid),
    /// A stored value does not decode: the database is damaged.
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    /// A query that cannot be run.
    #[error("query: {0}")]
    Query(String),
}

impl From<rocksdb::Error> for StoreError {
    fn from(e: rocksdb::Error) -> Self {
        // RocksDB reports ENOSPC as an I/O error with the subcode `NoSpace`, which its Rust
        // binding only shows in the text; after the first, every write fails with it until
        // the automatic recovery ran.
        if e.kind() == rocksdb::ErrorKind::IOError && crate::says_disk_full(e.as_ref()) {
            tracing::warn!("the disk is full: {e}");
            return Self::DiskFull;
        }
        Self::Db(e)
    }
}

/// A listing: what to list and from where.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this kind.
    pub kind: Option<String>,
    /// Only by this author.
    pub author: Option<Did>,
    /// Only with this tag or a tag under it.
    pub tag: Option<String>,
    /// Only in this topic.
    pub topic: Option<Topic>,
    /// Only items created at or after this time (ms since the epoch).
    pub since: Option<u64>,
    /// Only items created before this time (ms since the epoch).
    pub until: Option<u64>,
    /// Continue after this cursor (from a previous page).
    pub cursor: Option<Cursor>,
    /// At most this many (0: no limit).
    pub limit: usize,
}

/// A position in a listing: the last item's `created` and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// `created` of the last item returned.
    pub created: u64,
    /// Its id.
    pub id: Cid,
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.created, self.id)
    }
}

impl std::str::FromStr for Cursor {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || StoreError::Query(format!("{s:?} is not a cursor from a previous page"));
        let (created, id) = s.split_once('-').ok_or_else(bad)?;
        Ok(Self {
            created: created.parse().map_err(|_| bad())?,
            id: cids::parse(id).map_err(|_| bad())?,
        })
    }
}

/// Which end of a listing comes first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Order {
    /// Newest `created` first (feeds, timelines).
    #[default]
    NewestFirst,
    /// Oldest `created` first (the posts of a thread).
    OldestFirst,
}

impl Order {
    fn direction(self) -> Direction {
        match self {
            Order::NewestFirst => Direction::Reverse,
            Order::OldestFirst => Direction::Forward,
        }
    }
}

/// A page of a listing, in the order asked for (newest first unless told).
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// The items' ids with their facts.
    pub items: Vec<(Cid, Item)>,
    /// Where the next page starts, if there may be one.
    pub next: Option<Cursor>,
}

/// The answer to a widget query.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryResult {
    /// Matching item ids, in order.
    Items(Vec<Cid>),
    /// `count()`.
    Count(u64),
}

/// Counts for `repo stat`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Blocks stored.
    pub blocks: u64,
    /// Bytes of block data.
    pub block_bytes: u64,
    /// Items (live and deleted).
    pub items: u64,
    /// Deleted items.
    pub deleted: u64,
    /// Versions stored.
    pub versions: u64,
    /// Items with a fork.
    pub forked: u64,
    /// Pins.
    pub pins: u64,
    /// Items by kind.
    pub kinds: std::collections::BTreeMap<String, u64>,
}

/// The record store.
pub struct Store {
    db: DB,
    /// One writer at a time: puts read an item, change it and write it back.
    writer: Mutex<()>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.db.path())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the store in `dir`, in `cache_mb` MiB of RocksDB memory: a
    /// block cache of that size which also pays for the memtables.
    pub fn open(dir: &Path, cache_mb: u64) -> Result<Self, StoreError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.increase_parallelism(2);
        let cache_bytes = (cache_mb as usize).max(1) << 20;
        let cache = rocksdb::Cache::new_lru_cache(cache_bytes);
        // Every column family has its own memtables (64 MiB each before a flush, by default),
        // so a node that only writes grew by the sum of them: 150 MiB over ten minutes of
        // writes in the soak bench. One budget for all of them, charged to the block cache,
        // flushes the fullest when the total reaches half the cache, so the store's memory
        // stays within `store.cache_mb` however long the node writes.
        opts.set_write_buffer_manager(&WriteBufferManager::new_write_buffer_manager_with_cache(
            cache_bytes / 2,
            false,
            cache.clone(),
        ));
        let cf_opts = |point_lookups: bool| {
            let mut o = Options::default();
            let mut b = BlockBasedOptions::default();
            b.set_block_cache(&cache);
            if point_lookups {
                b.set_bloom_filter(10.0, false);
                // Most point lookups on a write (is this block new?) miss: a whole-key bloom
                // filter on the memtable answers them without searching the skiplist.
                o.set_memtable_prefix_bloom_ratio(0.05);
                o.set_memtable_whole_key_filtering(true);
            }
            o.set_block_based_table_factory(&b);
            o.set_compression_type(rocksdb::DBCompressionType::Lz4);
            o
        };
        let cfs = FAMILIES.iter().chain(EXTRA_FAMILIES).map(|name| {
            ColumnFamilyDescriptor::new(
                *name,
                cf_opts(matches!(
                    *name,
                    BLOCKS | ITEMS | PINS | crate::unixfs::UNIXFS
                )),
            )
        });
        let db = DB::open_cf_descriptors(&opts, dir, cfs)?;
        Ok(Self {
            db,
            writer: Mutex::new(()),
        })
    }

    pub(crate) fn db(&self) -> &DB {
        &self.db
    }

    pub(crate) fn cf(&self, name: &str) -> Result<&ColumnFamily, StoreError> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| StoreError::Corrupt(format!("column family {name} is missing")))
    }

    /// Holds the single-writer lock (for maintenance that rewrites items).
    pub(crate) fn write_lock(&self) -> Result<std::sync::MutexGuard<'_, ()>, StoreError> {
        self.writer
            .lock()
            .map_err(|_| StoreError::Corrupt("writer lock poisoned".into()))
    }

    /// Stores one record (see [`Store::put_batch`]).
    pub fn put(&self, record: Record) -> Result<Put, StoreError> {
        let mut out = self.put_batch(vec![record])?;
        out.pop()
            .ok_or_else(|| StoreError::Corrupt("empty put result".into()))
    }

    /// Decodes and verifies bytes from outside, then stores them.
    pub fn put_bytes(&self, bytes: Vec<u8>) -> Result<Put, StoreError> {
        self.put(Record::decode_owned(bytes)?)
    }

    /// Stores records in one atomic write: all of them or, on any error, none. Records must come
    /// after the versions they replace (in the batch or already stored). Records are already
    /// verified (made by [`mnode_dag::Draft::sign`] or decoded by [`Record::decode`]); chain
    /// rules are checked here, against what is stored.
    pub fn put_batch(&self, records: Vec<Record>) -> Result<Vec<Put>, StoreError> {
        self.put_batch_with(records, false)
    }

    /// [`Store::put_batch`] for records made on this node: each new item stored is pinned
    /// (recursively) in the same atomic write. A write answered with an error then leaves
    /// nothing, and no GC can take a new item for garbage between its write and its pin.
    pub fn put_batch_pinned(&self, records: Vec<Record>) -> Result<Vec<Put>, StoreError> {
        self.put_batch_with(records, true)
    }

    fn put_batch_with(&self, records: Vec<Record>, pin_new: bool) -> Result<Vec<Put>, StoreError> {
        let _guard = self.write_lock()?;
        let mut batch = WriteBatch::default();
        let mut items: HashMap<Cid, Item> = HashMap::new();
        // What the rules and the choice of heads read before the batch is written.
        let mut pending = Pending::default();
        // Groups whose head this batch moved: their items are judged again at the end.
        let mut regrouped: BTreeSet<Cid> = BTreeSet::new();
        // Identities whose key log's head this batch moved: their items too, before the groups'.
        let mut rekeyed: BTreeSet<Did> = BTreeSet::new();
        let mut out = Vec::with_capacity(records.len());
        let (blocks_cf, versions_cf) = (self.cf(BLOCKS)?, self.cf(VERSIONS)?);
        let (sync_cf, owned_cf) = (self.cf(SYNC)?, self.cf(OWNED)?);
        // Records of this batch that others in it answer: their topics are needed before the
        // batch is written.
        let wanted: std::collections::HashSet<Cid> = records
            .iter()
            .flat_map(|r| r.index().targets.iter().copied())
            .collect();
        let mut in_batch: Vec<Record> = vec![];
        for record in records {
            let cid = record.cid();
            if pending.versions.contains_key(&cid) || self.has_block(&cid)? {
                out.push(Put::Duplicate(cid));
                continue;
            }
            let id = record.id();
            let auth = pending.auth(self);
            let (info, mut item, head, fork) = match record.envelope().prev {
                None => {
                    record
                        .verify_first_with(&auth)
                        .map_err(|e| chain_error(cid, e))?;
                    (record.info(), None, true, false)
                }
                Some(prev) => {
                    let prev_info = match pending.versions.get(&prev) {
                        Some(p) => p.clone(),
                        None => self
                            .version_info(&id, record.seq() - 1, &prev)?
                            .ok_or(StoreError::MissingPrev { cid, prev })?,
                    };
                    record
                        .verify_follows_with(&prev_info, &auth)
                        .map_err(|e| chain_error(cid, e))?;
                    // A tombstone relies on its predecessor's group and signer citations.
                    let info = record.info_following(&prev_info);
                    let item = match items.remove(&id) {
                        Some(i) => i,
                        None => self
                            .item(&id)?
                            .ok_or(StoreError::MissingPrev { cid, prev })?,
                    };
                    let fork = !item.tips.iter().any(|(t, _)| *t == prev);
                    (info, Some(item), false, fork)
                }
            };
            batch.put_cf(blocks_cf, cid.to_bytes(), record.bytes());
            for topic in version_topics(&record, &info, &self.targets_in(&record, &in_batch)?) {
                batch.put_cf(sync_cf, sync_key(&topic, info.updated, &cid), []);
            }
            if wanted.contains(&cid) || wanted.contains(&id) {
                in_batch.push(record.clone());
            }
            batch.put_cf(
                versions_cf,
                version_key(&id, info.seq, &cid),
                cbor::encode(&info).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            );
            let owner = info.owner.map(|o| o.group);
            let identity = info.identity();
            let is_group = record.kind() == GROUP_KIND;
            let is_log = record.kind() == KEYS_KIND;
            if is_group || is_log {
                pending.records.insert(cid, record.clone());
            }
            if is_log {
                pending.logs.entry(id).or_default().push(cid);
                pending.paths.get_mut().clear();
                if info.seq == 0 {
                    self.note_log_root(&mut batch, &mut pending, identity, id)?;
                }
            }
            let new_state = ListedState::of(&record);
            pending.states.insert(cid, new_state.clone());
            pending.versions.insert(cid, info.clone());
            // Every item with a version signed for an identity, so that a move of the
            // identity's key log judges it again (a key log itself is not judged by one).
            if !is_log && item.as_ref().map(|i| i.author) != Some(identity) {
                batch.put_cf(owned_cf, signed_key(&identity, &id), []);
                pending.signed.entry(identity).or_default().insert(id);
            }
            let (next, is_head) = match item.take() {
                None => {
                    let mut item = Item {
                        kind: info.kind.clone(),
                        author: identity,
                        created: info.created,
                        head: cid,
                        updated: info.updated,
                        tips: vec![(cid, info.updated)],
                        versions: 1,
                        deleted: new_state.deleted,
                        tags: new_state.tags.clone(),
                        topics: new_state.topics.clone(),
                        owner,
                        revoked: false,
                    };
                    if let Some(group) = owner {
                        batch.put_cf(owned_cf, owned_key(&group, &id), []);
                    }
                    let (_, _, in_force) = self.choose_head(&id, &item, &pending, &items)?;
                    item.revoked = !in_force;
                    self.index_put(&mut batch, &id, &item)?;
                    (item, head)
                }
                Some(mut item) => {
                    let prev = record.envelope().prev;
                    item.tips.retain(|(t, _)| Some(*t) != prev);
                    item.tips.push((cid, info.updated));
                    item.versions += 1;
                    let (best, updated, in_force) =
                        self.choose_head(&id, &item, &pending, &items)?;
                    let is_head = best == cid;
                    if is_log && best != item.head {
                        rekeyed.insert(item.author);
                    }
                    if best != item.head || in_force == item.revoked || is_head {
                        let state = if is_head {
                            new_state
                        } else {
                            self.listed_state(&best, &pending)?
                        };
                        self.set_head(
                            &mut batch,
                            &id,
                            &mut item,
                            (best, updated),
                            in_force,
                            state,
                        )?;
                    }
                    (item, is_head)
                }
            };
            if is_group && is_head {
                regrouped.insert(id);
            }
            items.insert(id, next);
            out.push(Put::Stored {
                cid,
                id,
                head: is_head,
                fork,
            });
        }
        for identity in rekeyed {
            self.rejudge_signed_for(&identity, &mut batch, &mut items, &pending, &mut regrouped)?;
        }
        for group in regrouped {
            self.rejudge_items_of(&group, &mut batch, &mut items, &pending)?;
        }
        let items_cf = self.cf(ITEMS)?;
        for (id, item) in &items {
            batch.put_cf(items_cf, id.to_bytes(), encode(item)?);
        }
        if pin_new {
            let pin = encode(&Pin {
                recursive: true,
                created: mnode_dag::record::now_ms(),
            })?;
            let pins_cf = self.cf(PINS)?;
            for put in &out {
                if let Put::Stored { cid, id, .. } = put
                    && cid == id
                {
                    batch.put_cf(pins_cf, id.to_bytes(), &pin);
                }
            }
        }
        self.db.write(batch)?;
        Ok(out)
    }

    /// Records a key log's version 0: the first root stored for an identity is the log the
    /// node uses; a later one is stored but marked contested and never used.
    fn note_log_root(
        &self,
        batch: &mut WriteBatch,
        pending: &mut Pending,
        identity: Did,
        log: Cid,
    ) -> Result<(), StoreError> {
        let cf = self.cf(IDENTITIES)?;
        let first = match pending.identities.get(&identity) {
            Some(first) => Some(*first),
            None => self.identity_log(&identity)?.map(|(first, _)| first),
        };
        match first {
            None => {
                pending.identities.insert(identity, log);
                batch.put_cf(cf, identity.public_key(), log.to_bytes());
            }
            Some(first) => {
                tracing::warn!(
                    "a second key log {log} for {identity}: stored, but {first} stays the one used"
                );
                batch.put_cf(
                    cf,
                    identity.public_key(),
                    [first.to_bytes(), vec![1]].concat(),
                );
            }
        }
        Ok(())
    }

    /// The key log this node uses for `identity` (its first root stored), and whether another
    /// root for the same identity arrived since (contested: someone else held the first key).
    pub fn identity_log(&self, identity: &Did) -> Result<Option<(Cid, bool)>, StoreError> {
        let Some(v) = self
            .db
            .get_pinned_cf(self.cf(IDENTITIES)?, identity.public_key())?
        else {
            return Ok(None);
        };
        let (id, flag) = v.split_at(v.len().min(ID_LEN));
        let id =
            Cid::try_from(id).map_err(|e| StoreError::Corrupt(format!("identities index: {e}")))?;
        Ok(Some((id, flag.first() == Some(&1))))
    }

    /// The winning path ([`key_log::winning_path`]) of the key log `log`, from its stored
    /// versions and those of this batch.
    fn log_path(&self, log: &Cid, pending: &Pending) -> Result<LogPath, StoreError> {
        let mut records = vec![];
        for v in self.history(log)? {
            records.push(
                self.record(&v.cid)?.ok_or_else(|| {
                    StoreError::Corrupt(format!("key log version {} lost", v.cid))
                })?,
            );
        }
        for cid in pending.logs.get(log).into_iter().flatten() {
            if let Some(r) = pending.records.get(cid) {
                records.push(r.clone());
            }
        }
        Ok(key_log::winning_path(&records))
    }

    /// The key log path `identity` is judged by, when it rotated at least once (a log of its
    /// root alone retires nothing).
    fn identity_path(
        &self,
        identity: &Did,
        pending: &Pending,
    ) -> Result<Option<std::sync::Arc<LogPath>>, StoreError> {
        if let Some(p) = pending.paths.borrow().get(identity) {
            return Ok(p.clone());
        }
        let log = match pending.identities.get(identity) {
            Some(log) => Some(*log),
            None => self.identity_log(identity)?.map(|(log, _)| log),
        };
        let path = match log {
            Some(log) => {
                let path = self.log_path(&log, pending)?;
                (path.versions.len() > 1).then(|| std::sync::Arc::new(path))
            }
            None => None,
        };
        pending.paths.borrow_mut().insert(*identity, path.clone());
        Ok(path)
    }

    /// The version an item shows, and whether it is in force.
    ///
    /// A key log's head is the end of its winning path ([`key_log::winning_path`]: a recovery
    /// beats a rotation at a fork). For any other item, each tip's newest ancestor-or-self still
    /// in force, the newest of those by `(updated, CID)`: a version is in force when the group
    /// rules keep it ([`group::standing`], for a group's item, against the group's head) and the
    /// key rules do ([`key_log::standing`], against the winning path of the identity it is
    /// signed for, once that identity rotated). With no version in force, the newest tip, not
    /// in force. A plain item of an identity that never rotated shows its newest tip.
    fn choose_head(
        &self,
        id: &Cid,
        item: &Item,
        pending: &Pending,
        items: &HashMap<Cid, Item>,
    ) -> Result<(Cid, u64, bool), StoreError> {
        let newest = |tips: &mut dyn Iterator<Item = (Cid, u64)>| {
            tips.max_by(|a, b| {
                a.1.cmp(&b.1)
                    .then_with(|| a.0.to_bytes().cmp(&b.0.to_bytes()))
            })
        };
        let plain = newest(&mut item.tips.iter().copied())
            .ok_or_else(|| StoreError::Corrupt("an item without tips".into()))?;
        let auth = pending.auth(self);
        let missing = |cid, m: mnode_dag::authority::Missing| StoreError::MissingAuthority {
            cid,
            missing: m.cid(),
        };
        if item.kind == KEYS_KIND {
            let path = self.log_path(id, pending)?;
            return Ok(match path.head() {
                Some(head) => {
                    let info = auth.version(&head).map_err(|m| missing(head, m))?;
                    (head, info.updated, true)
                }
                None => (plain.0, plain.1, true),
            });
        }
        // A plain item keeps its identity across versions: one look says whether it rotated.
        let one_identity = item.owner.is_none() && item.kind != GROUP_KIND;
        if one_identity && self.identity_path(&item.author, pending)?.is_none() {
            return Ok((plain.0, plain.1, true));
        }
        let group_path = match item.owner {
            Some(group) => Some(self.group_path(&group, &auth, items)?),
            None => None,
        };
        let mut in_force = vec![];
        for (tip, _) in &item.tips {
            let mut at = Some(*tip);
            while let Some(c) = at {
                let info = auth.version(&c).map_err(|m| missing(c, m))?;
                let mut standing = match &group_path {
                    Some(path) => {
                        group::standing(&info, path, &auth, |_| false).map_err(|m| missing(c, m))?
                    }
                    None => Standing::InForce,
                };
                if standing == Standing::InForce
                    && let Some(path) = self.identity_path(&info.identity(), pending)?
                {
                    standing = key_log::standing(&info, &path, &auth, |_| false)
                        .map_err(|m| missing(c, m))?;
                }
                if standing == Standing::InForce {
                    in_force.push((c, info.updated));
                    break;
                }
                at = info.prev;
            }
        }
        Ok(match newest(&mut in_force.into_iter()) {
            Some((c, u)) => (c, u, true),
            None => (plain.0, plain.1, false),
        })
    }

    /// A group's versions from version 0 to its head, with the members in force at each.
    fn group_path(
        &self,
        group: &Cid,
        auth: &StoreAuthority<'_>,
        items: &HashMap<Cid, Item>,
    ) -> Result<GroupPath, StoreError> {
        let head = match items.get(group) {
            Some(i) => i.head,
            None => match self.item(group)? {
                Some(i) => i.head,
                None => return Ok(GroupPath::default()),
            },
        };
        let missing = |m: mnode_dag::authority::Missing| StoreError::MissingAuthority {
            cid: *group,
            missing: m.cid(),
        };
        let mut back: Vec<(Cid, Option<std::sync::Arc<mnode_dag::model::core::Group>>)> = vec![];
        let mut at = Some(head);
        while let Some(c) = at {
            back.push((c, auth.group(&c).map_err(missing)?));
            at = auth.version(&c).map_err(missing)?.prev;
        }
        let mut versions = Vec::with_capacity(back.len());
        let mut last = None;
        for (c, body) in back.into_iter().rev() {
            // A tombstone keeps its predecessor's members: a deleted group's items stay as
            // they were.
            let Some(body) = body.or_else(|| last.clone()) else {
                continue;
            };
            last = Some(body.clone());
            versions.push((c, body));
        }
        Ok(GroupPath { versions })
    }

    /// Judges again every item `group` owns, after the group's head moved.
    fn rejudge_items_of(
        &self,
        group: &Cid,
        batch: &mut WriteBatch,
        items: &mut HashMap<Cid, Item>,
        pending: &Pending,
    ) -> Result<(), StoreError> {
        let mut ids: BTreeSet<Cid> = items
            .iter()
            .filter(|(_, i)| i.owner == Some(*group))
            .map(|(id, _)| *id)
            .collect();
        ids.extend(self.owned_by(group)?);
        for id in ids {
            self.rejudge(&id, batch, items, pending)?;
        }
        Ok(())
    }

    /// Judges again every item with a version signed for `identity`, after its key log's head
    /// moved (a rotation or a recovery arrived). Groups whose head moved are added to
    /// `regrouped`.
    fn rejudge_signed_for(
        &self,
        identity: &Did,
        batch: &mut WriteBatch,
        items: &mut HashMap<Cid, Item>,
        pending: &Pending,
        regrouped: &mut BTreeSet<Cid>,
    ) -> Result<(), StoreError> {
        let mut ids: BTreeSet<Cid> = pending.signed.get(identity).cloned().unwrap_or_default();
        ids.extend(self.signed_for(identity)?);
        for id in ids {
            if self.rejudge(&id, batch, items, pending)?
                && items.get(&id).is_some_and(|i| i.kind == GROUP_KIND)
            {
                regrouped.insert(id);
            }
        }
        Ok(())
    }

    /// Chooses an item's head again; whether it moved.
    fn rejudge(
        &self,
        id: &Cid,
        batch: &mut WriteBatch,
        items: &mut HashMap<Cid, Item>,
        pending: &Pending,
    ) -> Result<bool, StoreError> {
        let Some(mut item) = items.get(id).cloned().or(self.item(id)?) else {
            return Ok(false);
        };
        let (best, updated, in_force) = self.choose_head(id, &item, pending, items)?;
        if best == item.head && in_force != item.revoked {
            return Ok(false);
        }
        let moved = best != item.head;
        let state = self.listed_state(&best, pending)?;
        self.set_head(batch, id, &mut item, (best, updated), in_force, state)?;
        items.insert(*id, item);
        Ok(moved)
    }

    /// The ids of every item with a version signed for `identity` (since the node kept that
    /// index).
    pub fn signed_for(&self, identity: &Did) -> Result<Vec<Cid>, StoreError> {
        self.prefixed(OWNED, &signed_key_prefix(identity))?
            .into_iter()
            .map(|(k, _)| {
                Cid::try_from(k.as_slice())
                    .map_err(|e| StoreError::Corrupt(format!("owned index: {e}")))
            })
            .collect()
    }

    /// The winning path of `identity`'s key log as this node holds it (root first), if it
    /// holds one. Its last version names the key that signs for the identity now.
    pub fn key_log_path(&self, identity: &Did) -> Result<Option<LogPath>, StoreError> {
        let Some((log, _)) = self.identity_log(identity)? else {
            return Ok(None);
        };
        let path = self.log_path(&log, &Pending::default())?;
        Ok((!path.versions.is_empty()).then_some(path))
    }

    /// What a rotation away from `key` keeps: the tips of every item in which `key` signed a
    /// version for `identity`, as this node holds them (sorted, each once).
    pub fn tips_signed_by(&self, identity: &Did, key: &Did) -> Result<Vec<Cid>, StoreError> {
        let mut ids: BTreeSet<Cid> = self.signed_for(identity)?.into_iter().collect();
        // Items stored before the node indexed them by identity: listed under it.
        for (rest, _) in self.prefixed(BY_AUTHOR, &identity.public_key())? {
            if let Some(id) = rest.get(8..).and_then(|b| Cid::try_from(b).ok()) {
                ids.insert(id);
            }
        }
        let mut out = BTreeSet::new();
        for id in ids {
            let Some(item) = self.item(&id)? else {
                continue;
            };
            if item.kind == KEYS_KIND {
                continue;
            }
            if self.history(&id)?.iter().any(|v| v.author == *key) {
                out.extend(item.tips.iter().map(|(c, _)| c.to_bytes()));
            }
        }
        out.into_iter()
            .map(|b| {
                Cid::try_from(b.as_slice()).map_err(|e| StoreError::Corrupt(format!("tip: {e}")))
            })
            .collect()
    }

    /// What a version (of this batch or stored) contributes to listings.
    fn listed_state(&self, cid: &Cid, pending: &Pending) -> Result<ListedState, StoreError> {
        if let Some(s) = pending.states.get(cid) {
            return Ok(s.clone());
        }
        let record = self.record(cid)?.ok_or(StoreError::NotFound(*cid))?;
        Ok(ListedState::of(&record))
    }

    /// Makes `head` the item's head and re-indexes it.
    fn set_head(
        &self,
        batch: &mut WriteBatch,
        id: &Cid,
        item: &mut Item,
        (head, updated): (Cid, u64),
        in_force: bool,
        state: ListedState,
    ) -> Result<(), StoreError> {
        self.index_delete(batch, id, item)?;
        item.head = head;
        item.updated = updated;
        item.deleted = state.deleted;
        item.tags = state.tags;
        item.topics = state.topics;
        item.revoked = !in_force;
        self.index_put(batch, id, item)
    }

    /// The ids of every item `group` owns, live or not.
    pub fn owned_by(&self, group: &Cid) -> Result<Vec<Cid>, StoreError> {
        self.prefixed(OWNED, &group.to_bytes())?
            .into_iter()
            .map(|(k, _)| {
                Cid::try_from(k.as_slice())
                    .map_err(|e| StoreError::Corrupt(format!("owned index: {e}")))
            })
            .collect()
    }

    /// The chain facts of any stored version, by its CID alone.
    pub fn version_of(&self, cid: &Cid) -> Result<Option<VersionInfo>, StoreError> {
        let Some(record) = self.record(cid)? else {
            return Ok(None);
        };
        let Some(mut info) = self.version_info(&record.id(), record.seq(), cid)? else {
            return Ok(None);
        };
        // Entries stored before versions carried `prev`.
        if info.prev.is_none() {
            info.prev = record.envelope().prev;
        }
        Ok(Some(info))
    }

    pub(crate) fn index_entries(
        &self,
        id: &Cid,
        item: &Item,
    ) -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
        if item.deleted || item.revoked {
            return vec![];
        }
        let id = id.to_bytes();
        let t = item.created.to_be_bytes();
        let kind = item.kind.as_bytes().to_vec();
        let mut out = vec![
            (
                BY_KIND,
                [item.kind.as_bytes(), &[0], &t, &id].concat(),
                vec![],
            ),
            (
                BY_AUTHOR,
                [&item.author.public_key()[..], &t, &id].concat(),
                kind.clone(),
            ),
        ];
        for (tag_type, cid) in &item.topics {
            out.push((
                BY_TOPIC,
                [&[*tag_type][..], &cid.to_bytes(), &t, &id].concat(),
                kind.clone(),
            ));
        }
        for tag in expand_tags(&item.tags) {
            out.push((
                BY_TAG,
                [tag.as_bytes(), &[0], &t, &id].concat(),
                kind.clone(),
            ));
        }
        out
    }

    fn index_put(&self, batch: &mut WriteBatch, id: &Cid, item: &Item) -> Result<(), StoreError> {
        for (cf, k, v) in self.index_entries(id, item) {
            batch.put_cf(self.cf(cf)?, k, v);
        }
        Ok(())
    }

    pub(crate) fn index_delete(
        &self,
        batch: &mut WriteBatch,
        id: &Cid,
        item: &Item,
    ) -> Result<(), StoreError> {
        for (cf, k, _) in self.index_entries(id, item) {
            batch.delete_cf(self.cf(cf)?, k);
        }
        Ok(())
    }

    /// Whether a block is stored.
    pub fn has_block(&self, cid: &Cid) -> Result<bool, StoreError> {
        let cf = self.cf(BLOCKS)?;
        let key = cid.to_bytes();
        if !self.db.key_may_exist_cf(cf, &key) {
            return Ok(false);
        }
        Ok(self.db.get_pinned_cf(cf, &key)?.is_some())
    }

    /// A stored block's bytes.
    pub fn block(&self, cid: &Cid) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(self.cf(BLOCKS)?, cid.to_bytes())?)
    }

    /// The records `record` answers or is about (`index().targets`, at most
    /// [`GossipTopic::MAX_TARGETS`]) that the store holds.
    pub fn targets(&self, record: &Record) -> Result<Vec<Record>, StoreError> {
        self.targets_in(record, &[])
    }

    /// [`Store::targets`], also looking among `extra` (records not written yet).
    fn targets_in(&self, record: &Record, extra: &[Record]) -> Result<Vec<Record>, StoreError> {
        let mut out = vec![];
        for t in record.index().targets.iter().take(GossipTopic::MAX_TARGETS) {
            if let Some(r) = extra.iter().find(|r| r.cid() == *t) {
                out.push(r.clone());
            } else if let Some(r) = self.record(t)? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Stores a block that is not a record (IPLD data a record links, from a CAR or a peer),
    /// after checking it against its CID and, for DAG-CBOR, decoding it strictly.
    pub fn put_block(&self, cid: &Cid, bytes: &[u8]) -> Result<bool, StoreError> {
        cids::verify_block(cid, bytes).map_err(|e| StoreError::Query(e.to_string()))?;
        if cid.codec() == cids::DAG_CBOR {
            cbor::decode_ipld(bytes).map_err(|e| StoreError::Record(RecordError::Decode(e)))?;
        }
        if self.has_block(cid)? {
            return Ok(false);
        }
        self.db.put_cf(self.cf(BLOCKS)?, cid.to_bytes(), bytes)?;
        Ok(true)
    }

    /// A stored record by the CID of one of its versions.
    pub fn record(&self, cid: &Cid) -> Result<Option<Record>, StoreError> {
        if cids::link_kind(cid) != LinkKind::Record {
            return Ok(None);
        }
        match self.block(cid)? {
            Some(bytes) => Ok(Some(Record::decode_trusted(bytes)?)),
            None => Ok(None),
        }
    }

    /// An item's facts by its id.
    pub fn item(&self, id: &Cid) -> Result<Option<Item>, StoreError> {
        match self.db.get_pinned_cf(self.cf(ITEMS)?, id.to_bytes())? {
            Some(v) => Ok(Some(decode(&v)?)),
            None => Ok(None),
        }
    }

    /// Resolves the CID of any version (or the id) to the item's id.
    pub fn item_id(&self, cid: &Cid) -> Result<Option<Cid>, StoreError> {
        if self.item(cid)?.is_some() {
            return Ok(Some(*cid));
        }
        Ok(self.record(cid)?.map(|r| r.id()))
    }

    /// The current head record of the item with this id (or of the item a version belongs to).
    pub fn head(&self, cid: &Cid) -> Result<Option<Record>, StoreError> {
        let Some(id) = self.item_id(cid)? else {
            return Ok(None);
        };
        let Some(item) = self.item(&id)? else {
            return Ok(None);
        };
        self.record(&item.head)
    }

    pub(crate) fn version_info(
        &self,
        id: &Cid,
        seq: u64,
        cid: &Cid,
    ) -> Result<Option<VersionInfo>, StoreError> {
        match self
            .db
            .get_pinned_cf(self.cf(VERSIONS)?, version_key(id, seq, cid))?
        {
            Some(v) => Ok(Some(decode(&v)?)),
            None => Ok(None),
        }
    }

    /// Every stored version of an item, by seq (forks side by side).
    pub fn history(&self, id: &Cid) -> Result<Vec<VersionInfo>, StoreError> {
        let prefix = id.to_bytes();
        let mut out = Vec::new();
        for entry in self.db.iterator_cf(
            self.cf(VERSIONS)?,
            IteratorMode::From(&prefix, Direction::Forward),
        ) {
            let (k, v) = entry?;
            if !k.starts_with(&prefix) {
                break;
            }
            out.push(decode(&v)?);
        }
        Ok(out)
    }

    /// Lists live items newest first, through the most selective index the filter allows.
    pub fn list(&self, filter: &ListFilter) -> Result<Page, StoreError> {
        self.list_in(filter, Order::NewestFirst)
    }

    /// Lists live items in `order`; the cursor continues in that order.
    pub fn list_in(&self, filter: &ListFilter, order: Order) -> Result<Page, StoreError> {
        let (cf, prefix, kind_in_value) = if let Some(tag) = &filter.tag {
            (BY_TAG, [tag.as_bytes(), &[0]].concat(), true)
        } else if let Some(topic) = &filter.topic {
            let (t, cid) = topic_key(topic);
            (BY_TOPIC, [&[t][..], &cid.to_bytes()].concat(), true)
        } else if let Some(author) = &filter.author {
            (BY_AUTHOR, author.public_key().to_vec(), true)
        } else if let Some(kind) = &filter.kind {
            (BY_KIND, [kind.as_bytes(), &[0]].concat(), false)
        } else {
            return self.list_all(filter, order);
        };
        let (start, direction) = match (&filter.cursor, order) {
            (Some(c), _) => (
                [&prefix[..], &c.created.to_be_bytes(), &c.id.to_bytes()].concat(),
                order.direction(),
            ),
            // Time bounds start the scan where they fall instead of skipping up to them.
            (None, Order::NewestFirst) => match filter.until {
                Some(until) => (
                    [&prefix[..], &until.to_be_bytes()].concat(),
                    Direction::Reverse,
                ),
                None => (
                    [&prefix[..], &[0xff; 8 + ID_LEN + 1]].concat(),
                    Direction::Reverse,
                ),
            },
            (None, Order::OldestFirst) => match filter.since {
                Some(since) => (
                    [&prefix[..], &since.to_be_bytes()].concat(),
                    Direction::Forward,
                ),
                None => (prefix.clone(), Direction::Forward),
            },
        };
        let mut page = Page::default();
        for entry in self
            .db
            .iterator_cf(self.cf(cf)?, IteratorMode::From(&start, direction))
        {
            let (k, v) = entry?;
            if !k.starts_with(&prefix) {
                break;
            }
            if *k == *start {
                continue;
            }
            let rest = &k[prefix.len()..];
            if rest.len() != 8 + ID_LEN {
                continue;
            }
            let created = u64::from_be_bytes(rest[..8].try_into().unwrap_or_default());
            let before_since = filter.since.is_some_and(|t| created < t);
            let past_until = filter.until.is_some_and(|t| created >= t);
            match order {
                Order::NewestFirst if before_since => break,
                Order::OldestFirst if past_until => break,
                _ if before_since || past_until => continue,
                _ => {}
            }
            if kind_in_value
                && filter
                    .kind
                    .as_ref()
                    .is_some_and(|kind| kind.as_bytes() != &*v)
            {
                continue;
            }
            let id = Cid::try_from(&rest[8..]).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let item = self
                .item(&id)?
                .ok_or_else(|| StoreError::Corrupt(format!("index names missing item {id}")))?;
            if filter.author.is_some_and(|a| a != item.author) {
                continue;
            }
            page.items.push((id, item));
            if filter.limit > 0 && page.items.len() == filter.limit {
                let (id, item) = &page.items[page.items.len() - 1];
                page.next = Some(Cursor {
                    created: item.created,
                    id: *id,
                });
                break;
            }
        }
        Ok(page)
    }

    /// No filter at all: every live item, merged across kinds.
    fn list_all(&self, filter: &ListFilter, order: Order) -> Result<Page, StoreError> {
        let filters: Vec<ListFilter> = mnode_dag::KINDS
            .iter()
            .map(|k| k.name.to_owned())
            .chain(self.unknown_kinds()?)
            .map(|kind| ListFilter {
                kind: Some(kind),
                since: filter.since,
                until: filter.until,
                ..ListFilter::default()
            })
            .collect();
        self.list_merged(&filters, filter.cursor, filter.limit, order)
    }

    /// Several listings merged into one page in `order`, each item once (an item can be in
    /// several: a post in a followed branch by a followed author). The filters' own cursors
    /// and limits are ignored; `cursor` and `limit` apply to the merged listing.
    pub fn list_merged(
        &self,
        filters: &[ListFilter],
        cursor: Option<Cursor>,
        limit: usize,
        order: Order,
    ) -> Result<Page, StoreError> {
        let mut all: Vec<(Cid, Item)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        // Whether some listing stopped at the limit: then there may be more after this page.
        let mut more = false;
        for f in filters {
            let page = self.list_in(
                &ListFilter {
                    cursor,
                    limit,
                    ..f.clone()
                },
                order,
            )?;
            more |= page.next.is_some();
            all.extend(page.items.into_iter().filter(|(id, _)| seen.insert(*id)));
        }
        all.sort_by_key(|(id, item)| (item.created, id.to_bytes()));
        if order == Order::NewestFirst {
            all.reverse();
        }
        let mut page = Page::default();
        if limit > 0 && !all.is_empty() && (all.len() > limit || more) {
            all.truncate(limit);
            let (id, item) = &all[all.len() - 1];
            page.next = Some(Cursor {
                created: item.created,
                id: *id,
            });
        }
        page.items = all;
        Ok(page)
    }

    /// Kinds stored that the registry does not know (from newer nodes).
    fn unknown_kinds(&self) -> Result<BTreeSet<String>, StoreError> {
        let mut out = BTreeSet::new();
        let mut key: Vec<u8> = vec![];
        loop {
            let mut iter = self.db.iterator_cf(
                self.cf(BY_KIND)?,
                IteratorMode::From(&key, Direction::Forward),
            );
            let Some(entry) = iter.next() else { break };
            let (k, _) = entry?;
            let Some(end) = k.iter().position(|b| *b == 0) else {
                break;
            };
            let kind = String::from_utf8_lossy(&k[..end]).into_owned();
            // Skip past every key of this kind.
            key = [&k[..end], &[1]].concat();
            if mnode_dag::registry::lookup(&kind).is_none() {
                out.insert(kind);
            }
        }
        Ok(out)
    }

    /// Evaluates a widget query against the indexes.
    pub fn query(&self, q: &Query) -> Result<QueryResult, StoreError> {
        self.query_within(q, 0)
    }

    /// [`Store::query`] looking at no more than the newest `scan` items of the query's kind
    /// (its tag or author, when the query names one); 0: all of them. Widgets on pages run
    /// with a bound, so that a page costs the same however big the store grows.
    pub fn query_within(&self, q: &Query, scan: usize) -> Result<QueryResult, StoreError> {
        let kind = q.kind().name.to_owned();
        let mut filter = ListFilter {
            kind: Some(kind),
            limit: scan,
            ..ListFilter::default()
        };
        let mut rest: Vec<&Condition> = Vec::new();
        for c in q.filters() {
            match (c.field.as_slice(), c.op, &c.value) {
                ([f], Op::Eq, Value::Text(id)) if f == "id" => {
                    let id = cids::parse(id).map_err(|e| StoreError::Query(e.to_string()))?;
                    let hit = self
                        .item_id(&id)?
                        .and_then(|id| self.item(&id).ok().flatten().map(|i| (id, i)))
                        .filter(|(_, i)| !i.deleted && i.kind == q.kind().name);
                    return Ok(finish(q, hit.map(|(id, _)| vec![id]).unwrap_or_default()));
                }
                ([f], Op::Eq, Value::Text(t)) if f == "tag" && filter.tag.is_none() => {
                    filter.tag = Some(t.clone())
                }
                ([f], Op::Eq, Value::Text(a)) if f == "author" && filter.author.is_none() => {
                    filter.author = Some(a.parse().map_err(|e: mnode_dag::keys::DidError| {
                        StoreError::Query(e.to_string())
                    })?);
                }
                _ => rest.push(c),
            }
        }
        let page = self.list(&filter)?;
        let mut hits: Vec<(Cid, Item, Option<Ipld>)> = Vec::new();
        let needs_body = !rest.is_empty()
            || sort_field(q).is_some_and(|f| !matches!(f.as_str(), "created" | "updated"));
        for (id, item) in page.items {
            let body = if needs_body {
                self.record(&item.head)?.and_then(|r| r.body().cloned())
            } else {
                None
            };
            if rest.iter().all(|c| matches(c, &id, &item, body.as_ref())) {
                hits.push((id, item, body));
            }
        }
        if let Some((field, desc)) = sort_field(q).map(|f| (f, sort_desc(q))) {
            hits.sort_by(|a, b| {
                let (x, y) = (
                    field_value(&field, &a.0, &a.1, a.2.as_ref()),
                    field_value(&field, &b.0, &b.1, b.2.as_ref()),
                );
                // Equal values fall back to the item's id (its CID's bytes), in the same
                // direction, so that the order is total and the same on every node.
                let o = compare_ipld(x.as_ref(), y.as_ref())
                    .then_with(|| a.0.to_bytes().cmp(&b.0.to_bytes()));
                if desc { o.reverse() } else { o }
            });
        }
        Ok(finish(q, hits.into_iter().map(|(id, _, _)| id).collect()))
    }

    /// Pins a block (recursively: with its history and everything it links).
    pub fn pin(&self, cid: &Cid, recursive: bool) -> Result<(), StoreError> {
        // The same pin again writes nothing (the first one's time stays): a write just made,
        // pinned with its item, is not then refused for want of disk space to repeat its pin.
        if let Some(old) = self.db.get_pinned_cf(self.cf(PINS)?, cid.to_bytes())?
            && decode::<Pin>(&old).is_ok_and(|p| p.recursive == recursive)
        {
            return Ok(());
        }
        let pin = Pin {
            recursive,
            created: mnode_dag::record::now_ms(),
        };
        self.db
            .put_cf(self.cf(PINS)?, cid.to_bytes(), encode(&pin)?)?;
        Ok(())
    }

    /// Removes a pin; returns whether there was one.
    pub fn unpin(&self, cid: &Cid) -> Result<bool, StoreError> {
        let cf = self.cf(PINS)?;
        let existed = self.db.get_pinned_cf(cf, cid.to_bytes())?.is_some();
        self.db.delete_cf(cf, cid.to_bytes())?;
        Ok(existed)
    }

    /// Every pin.
    pub fn pins(&self) -> Result<Vec<(Cid, Pin)>, StoreError> {
        let mut out = Vec::new();
        for entry in self.db.iterator_cf(self.cf(PINS)?, IteratorMode::Start) {
            let (k, v) = entry?;
            let cid = Cid::try_from(&k[..]).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            out.push((cid, decode(&v)?));
        }
        Ok(out)
    }

    /// The catch-up set of `topic`: every stored version in it, as (updated ms, SHA-256 digest
    /// of its CID), sorted.
    pub fn sync_items(&self, topic: &GossipTopic) -> Result<Vec<(u64, [u8; 32])>, StoreError> {
        let prefix = topic.key();
        let mut out = Vec::new();
        let iter = self.db.iterator_cf(
            self.cf(SYNC)?,
            IteratorMode::From(&prefix, Direction::Forward),
        );
        for entry in iter {
            let (k, _) = entry?;
            let Some(rest) = k.strip_prefix(&prefix[..]) else {
                break;
            };
            let (Some(t), Some(d)) = (rest.get(..8), rest.get(8..40)) else {
                return Err(StoreError::Corrupt("short sync key".into()));
            };
            let mut time = [0u8; 8];
            time.copy_from_slice(t);
            let mut digest = [0u8; 32];
            digest.copy_from_slice(d);
            out.push((u64::from_be_bytes(time), digest));
        }
        Ok(out)
    }

    /// Remembers that the node follows `topic`.
    pub fn follow(&self, topic: &GossipTopic) -> Result<(), StoreError> {
        let now = mnode_dag::record::now_ms();
        self.db
            .put_cf(self.cf(FOLLOWS)?, topic.key(), now.to_be_bytes())?;
        Ok(())
    }

    /// Forgets a follow; returns whether there was one.
    pub fn unfollow(&self, topic: &GossipTopic) -> Result<bool, StoreError> {
        let cf = self.cf(FOLLOWS)?;
        let existed = self.db.get_pinned_cf(cf, topic.key())?.is_some();
        self.db.delete_cf(cf, topic.key())?;
        Ok(existed)
    }

    /// The topics the node follows.
    pub fn follows(&self) -> Result<Vec<GossipTopic>, StoreError> {
        let mut out = Vec::new();
        for entry in self.db.iterator_cf(self.cf(FOLLOWS)?, IteratorMode::Start) {
            let (k, _) = entry?;
            out.push(
                GossipTopic::from_key(&k)
                    .ok_or_else(|| StoreError::Corrupt("bad follow key".into()))?,
            );
        }
        Ok(out)
    }

    /// Records that the account `handle` follows `topic`; returns whether it did not already.
    /// The node-level follow (what the node subscribes to) is the caller's business: see
    /// [`crate::node::NodeHandle::follow_as`].
    pub fn account_follow(&self, handle: &str, topic: &GossipTopic) -> Result<bool, StoreError> {
        let _guard = self.write_lock()?;
        let cf = self.cf(ACCOUNT_FOLLOWS)?;
        let by_account = account_follow_key(handle, topic);
        if self.db.get_pinned_cf(cf, &by_account)?.is_some() {
            return Ok(false);
        }
        let now = mnode_dag::record::now_ms().to_be_bytes();
        let mut batch = WriteBatch::default();
        batch.put_cf(cf, by_account, now);
        batch.put_cf(cf, topic_follower_key(topic, handle), now);
        self.db.write(batch)?;
        Ok(true)
    }

    /// Forgets that `handle` follows `topic`; returns whether it did.
    pub fn account_unfollow(&self, handle: &str, topic: &GossipTopic) -> Result<bool, StoreError> {
        let _guard = self.write_lock()?;
        let cf = self.cf(ACCOUNT_FOLLOWS)?;
        let by_account = account_follow_key(handle, topic);
        let existed = self.db.get_pinned_cf(cf, &by_account)?.is_some();
        let mut batch = WriteBatch::default();
        batch.delete_cf(cf, by_account);
        batch.delete_cf(cf, topic_follower_key(topic, handle));
        self.db.write(batch)?;
        Ok(existed)
    }

    /// The topics the account `handle` follows, with when it followed them (ms).
    pub fn account_follows(&self, handle: &str) -> Result<Vec<(GossipTopic, u64)>, StoreError> {
        let prefix = [&[b'a'][..], handle.as_bytes(), &[0]].concat();
        self.prefixed(ACCOUNT_FOLLOWS, &prefix)?
            .into_iter()
            .map(|(rest, v)| {
                let topic = GossipTopic::from_key(&rest)
                    .ok_or_else(|| StoreError::Corrupt("bad account follow key".into()))?;
                Ok((topic, be_u64(&v)?))
            })
            .collect()
    }

    /// The entries of the column family `cf` whose keys start with `prefix`: the rest of each
    /// key, and its value.
    fn prefixed(&self, cf: &str, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError> {
        let mut out = Vec::new();
        for entry in self
            .db
            .iterator_cf(self.cf(cf)?, IteratorMode::From(prefix, Direction::Forward))
        {
            let (k, v) = entry?;
            let Some(rest) = k.strip_prefix(prefix) else {
                break;
            };
            out.push((rest.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    /// Mutes `author` for the account `handle` (their records leave its timeline and are
    /// folded away in threads); returns whether it was not muted yet.
    pub fn account_mute(&self, handle: &str, author: &Did, on: bool) -> Result<bool, StoreError> {
        let _guard = self.write_lock()?;
        let cf = self.cf(ACCOUNT_FOLLOWS)?;
        let key = account_mute_key(handle, author);
        let existed = self.db.get_pinned_cf(cf, &key)?.is_some();
        if on {
            self.db
                .put_cf(cf, key, mnode_dag::record::now_ms().to_be_bytes())?;
        } else {
            self.db.delete_cf(cf, key)?;
        }
        Ok(existed != on)
    }

    /// The authors the account `handle` muted, with when (ms).
    pub fn account_mutes(&self, handle: &str) -> Result<Vec<(Did, u64)>, StoreError> {
        let prefix = [&[b'm'][..], handle.as_bytes(), &[0]].concat();
        self.prefixed(ACCOUNT_FOLLOWS, &prefix)?
            .into_iter()
            .map(|(rest, v)| {
                let bad = || StoreError::Corrupt("bad mute key".into());
                let pk: [u8; 32] = rest.as_slice().try_into().map_err(|_| bad())?;
                let did = Did::from_public_key(&pk).map_err(|_| bad())?;
                Ok((did, be_u64(&v)?))
            })
            .collect()
    }

    /// The accounts that follow `topic`.
    pub fn topic_followers(&self, topic: &GossipTopic) -> Result<Vec<String>, StoreError> {
        // A topic key's length is fixed by its tag byte, so the prefix is unambiguous.
        let prefix = [&[b't'][..], &topic.key()].concat();
        Ok(self
            .prefixed(ACCOUNT_FOLLOWS, &prefix)?
            .into_iter()
            .map(|(rest, _)| String::from_utf8_lossy(&rest).into_owned())
            .collect())
    }

    /// Every tag on a live item with how many live items carry it or a tag under it, sorted.
    pub fn tags(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut out: Vec<(String, u64)> = Vec::new();
        for entry in self.db.iterator_cf(self.cf(BY_TAG)?, IteratorMode::Start) {
            let (k, _) = entry?;
            // tag · 0 · created (8) · id
            let Some(end) = k.len().checked_sub(8 + ID_LEN + 1) else {
                continue;
            };
            if k[end] != 0 {
                continue;
            }
            let tag = &k[..end];
            match out.last_mut() {
                Some((last, n)) if last.as_bytes() == tag => *n += 1,
                _ => out.push((String::from_utf8_lossy(tag).into_owned(), 1)),
            }
        }
        Ok(out)
    }

    /// Counts for `repo stat`.
    pub fn stats(&self) -> Result<Stats, StoreError> {
        let mut s = Stats::default();
        for entry in self.db.iterator_cf(self.cf(BLOCKS)?, IteratorMode::Start) {
            let (_, v) = entry?;
            s.blocks += 1;
            s.block_bytes += v.len() as u64;
        }
        for entry in self.db.iterator_cf(self.cf(ITEMS)?, IteratorMode::Start) {
            let (_, v) = entry?;
            let item: Item = decode(&v)?;
            s.items += 1;
            s.deleted += u64::from(item.deleted);
            s.forked += u64::from(item.forked());
            s.versions += item.versions;
            *s.kinds.entry(item.kind).or_default() += 1;
        }
        s.pins = self.pins()?.len() as u64;
        Ok(s)
    }

    /// Estimated keys and on-disk bytes (SST files plus memtables) of every column family,
    /// from RocksDB's own counters: cheap enough for every metrics scrape.
    pub fn sizes(&self) -> Result<Vec<FamilySize>, StoreError> {
        let mut out = Vec::new();
        for name in FAMILIES.iter().chain(EXTRA_FAMILIES) {
            let cf = self.cf(name)?;
            let int = |p: &str| -> Result<u64, StoreError> {
                Ok(self.db.property_int_value_cf(cf, p)?.unwrap_or(0))
            };
            out.push(FamilySize {
                name,
                keys: int("rocksdb.estimate-num-keys")?,
                bytes: int("rocksdb.total-sst-files-size")?
                    + int("rocksdb.cur-size-all-mem-tables")?,
            });
        }
        Ok(out)
    }

    /// Flushes memtables to disk (for benchmarks and clean shutdowns).
    pub fn flush(&self) -> Result<(), StoreError> {
        for name in FAMILIES.iter().chain(EXTRA_FAMILIES) {
            self.db.flush_cf(self.cf(name)?)?;
        }
        Ok(())
    }
}

/// What a batch holds before it is written: what the chain rules and the choice of heads read.
#[derive(Default)]
struct Pending {
    /// Every version of the batch.
    versions: HashMap<Cid, VersionInfo>,
    /// The group and key log versions of the batch (the rules read their bodies).
    records: HashMap<Cid, Record>,
    /// What every version of the batch contributes to listings.
    states: HashMap<Cid, ListedState>,
    /// Key log id → its versions in this batch.
    logs: HashMap<Cid, Vec<Cid>>,
    /// Identities whose first key log root is in this batch → that log's id.
    identities: HashMap<Did, Cid>,
    /// Identity → the items of this batch with a version signed for it.
    signed: HashMap<Did, BTreeSet<Cid>>,
    /// The key log paths read so far (`None`: the identity never rotated); cleared whenever a
    /// key log version joins the batch.
    paths: std::cell::RefCell<HashMap<Did, Option<std::sync::Arc<LogPath>>>>,
}

impl Pending {
    fn auth<'a>(&'a self, store: &'a Store) -> StoreAuthority<'a> {
        StoreAuthority {
            store,
            versions: &self.versions,
            records: &self.records,
        }
    }
}

/// What a version contributes to listings.
#[derive(Clone)]
struct ListedState {
    deleted: bool,
    tags: Vec<String>,
    topics: Vec<(u8, Cid)>,
}

impl ListedState {
    fn of(record: &Record) -> Self {
        let index = record.index();
        Self {
            deleted: record.is_tombstone(),
            tags: index.tags.clone(),
            topics: index.topics.iter().map(topic_key).collect(),
        }
    }
}

fn topic_key(t: &Topic) -> (u8, Cid) {
    match t {
        Topic::Forum(c) => (b'f', *c),
        Topic::Branch(c) => (b'b', *c),
        Topic::Thread(c) => (b't', *c),
        Topic::About(c) => (b'a', *c),
        Topic::Group(c) => (b'g', *c),
    }
}

/// Each tag with all its ancestors, once: `music/jazz` gives `music/jazz` and `music`.
fn expand_tags(tags: &[String]) -> BTreeSet<&str> {
    let mut out = BTreeSet::new();
    for tag in tags {
        let mut t = tag.as_str();
        out.insert(t);
        while let Some((parent, _)) = t.rsplit_once('/') {
            out.insert(parent);
            t = parent;
        }
    }
    out
}

/// `a` · handle · 0 · topic key: what an account follows.
fn account_follow_key(handle: &str, topic: &GossipTopic) -> Vec<u8> {
    [&[b'a'][..], handle.as_bytes(), &[0], &topic.key()].concat()
}

/// `m` · handle · 0 · public key: an author an account muted.
fn account_mute_key(handle: &str, author: &Did) -> Vec<u8> {
    [&[b'm'][..], handle.as_bytes(), &[0], &author.public_key()].concat()
}

/// `t` · topic key · handle: who follows a topic.
fn topic_follower_key(topic: &GossipTopic, handle: &str) -> Vec<u8> {
    [&[b't'][..], &topic.key(), handle.as_bytes()].concat()
}

fn be_u64(v: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = v
        .try_into()
        .map_err(|_| StoreError::Corrupt("bad timestamp".into()))?;
    Ok(u64::from_be_bytes(bytes))
}

/// The listing of the records a gossip topic carries: an author's records, or the items
/// indexed under a branch or thread.
pub fn topic_filter(topic: &GossipTopic) -> ListFilter {
    match topic {
        GossipTopic::Author(did) => ListFilter {
            author: Some(*did),
            ..ListFilter::default()
        },
        GossipTopic::Branch(cid) => ListFilter {
            topic: Some(Topic::Branch(*cid)),
            ..ListFilter::default()
        },
        GossipTopic::Thread(cid) => ListFilter {
            topic: Some(Topic::Thread(*cid)),
            ..ListFilter::default()
        },
        GossipTopic::Forum(cid) => ListFilter {
            topic: Some(Topic::Forum(*cid)),
            ..ListFilter::default()
        },
        GossipTopic::About(cid) => ListFilter {
            topic: Some(Topic::About(*cid)),
            ..ListFilter::default()
        },
        GossipTopic::Group(cid) => ListFilter {
            topic: Some(Topic::Group(*cid)),
            ..ListFilter::default()
        },
    }
}

/// The rest of a key after a prefix, and its value.
type KeyValue = (Vec<u8>, Vec<u8>);

/// Key of a version in the `sync` family.
/// The gossip topics a stored version is published into and whose catch-up sets hold it:
/// [`GossipTopic::audience`] (`targets` being the records it answers that are held), and for a
/// tombstone of a group's item the group's topic too. A tombstone's body is null, so it names
/// no `$owner`; `info` (the version as stored, [`Record::info_following`]) has its
/// predecessor's, and a node that follows the group but not whoever deleted hears of the
/// deletion there.
pub fn version_topics(record: &Record, info: &VersionInfo, targets: &[Record]) -> Vec<GossipTopic> {
    let mut out = GossipTopic::audience(record, targets);
    if record.is_tombstone()
        && let Some(owner) = info.owner
        && !out.contains(&GossipTopic::Group(owner.group))
    {
        out.push(GossipTopic::Group(owner.group));
    }
    out
}

pub(crate) fn sync_key(topic: &GossipTopic, updated: u64, cid: &Cid) -> Vec<u8> {
    [
        &topic.key()[..],
        &updated.to_be_bytes(),
        cid.hash().digest(),
    ]
    .concat()
}

fn owned_key(group: &Cid, id: &Cid) -> Vec<u8> {
    [group.to_bytes(), id.to_bytes()].concat()
}

/// `k` · public key: where the items signed for an identity start in the `owned` family (a
/// group's entries start with its CID, whose first byte is 1).
fn signed_key_prefix(identity: &Did) -> Vec<u8> {
    [&[b'k'][..], &identity.public_key()].concat()
}

fn signed_key(identity: &Did, id: &Cid) -> Vec<u8> {
    [signed_key_prefix(identity), id.to_bytes()].concat()
}

/// A chain rule broken, or (when the group rules need a record this node lacks) what is missing.
fn chain_error(cid: Cid, e: ChainError) -> StoreError {
    match e {
        ChainError::Group(GroupError::Missing(m)) | ChainError::Key(KeyError::Missing(m)) => {
            StoreError::MissingAuthority {
                cid,
                missing: m.cid(),
            }
        }
        e => StoreError::Record(e.into()),
    }
}

pub(crate) fn version_key(id: &Cid, seq: u64, cid: &Cid) -> Vec<u8> {
    [&id.to_bytes()[..], &seq.to_be_bytes(), &cid.to_bytes()].concat()
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    cbor::encode(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    cbor::decode(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn sort_field(q: &Query) -> Option<String> {
    q.steps.iter().rev().find_map(|s| match s {
        Step::Call {
            method: Method::Sort,
            args,
        } => match args.first() {
            Some(Value::Text(f)) => Some(f.clone()),
            _ => None,
        },
        _ => None,
    })
}

fn sort_desc(q: &Query) -> bool {
    q.steps.iter().rev().find_map(|s| match s {
        Step::Call {
            method: Method::Sort,
            args,
        } => Some(matches!(args.get(1), Some(Value::Text(d)) if d == "desc")),
        _ => None,
    }) == Some(true)
}

fn finish(q: &Query, mut ids: Vec<Cid>) -> QueryResult {
    for step in &q.steps {
        if let Step::Call { method, args } = step {
            match (method, args.first()) {
                (Method::Count, _) => return QueryResult::Count(ids.len() as u64),
                (Method::First, _) => ids.truncate(1),
                (Method::Limit, Some(Value::Int(n))) => {
                    ids.truncate(usize::try_from(*n).unwrap_or(usize::MAX))
                }
                _ => {}
            }
        }
    }
    QueryResult::Items(ids)
}

/// The value of a field for filtering and sorting: built-ins first, then the body.
fn field_value(field: &str, id: &Cid, item: &Item, body: Option<&Ipld>) -> Option<Ipld> {
    match field {
        "id" => Some(Ipld::String(id.to_string())),
        "author" => Some(Ipld::String(item.author.to_string())),
        "created" => Some(Ipld::Integer(item.created.into())),
        "updated" => Some(Ipld::Integer(item.updated.into())),
        path => {
            let mut v = body?;
            for part in path.split('.') {
                v = match v {
                    Ipld::Map(m) => m.get(part)?,
                    _ => return None,
                };
            }
            Some(v.clone())
        }
    }
}

fn matches(c: &Condition, id: &Cid, item: &Item, body: Option<&Ipld>) -> bool {
    let field = c.field.join(".");
    if field == "tag" {
        let wanted = match &c.value {
            Value::Text(t) => t.as_str(),
            _ => return false,
        };
        let has = expand_tags(&item.tags).contains(wanted);
        return if c.op == Op::Ne {
            !has
        } else {
            c.op == Op::Eq && has
        };
    }
    let Some(actual) = field_value(&field, id, item, body) else {
        return c.op == Op::Ne;
    };
    // A list matches when any element does (`artists = 'bafy…'`).
    if let Ipld::List(items) = &actual {
        return match c.op {
            Op::Ne => !items
                .iter()
                .any(|i| compare_value(i, &c.value) == Some(std::cmp::Ordering::Equal)),
            _ => items.iter().any(|i| matches_one(i, c)),
        };
    }
    matches_one(&actual, c)
}

fn matches_one(actual: &Ipld, c: &Condition) -> bool {
    use std::cmp::Ordering::*;
    if c.op == Op::Contains {
        return match (actual, &c.value) {
            (Ipld::String(s), Value::Text(t)) => s.to_lowercase().contains(&t.to_lowercase()),
            _ => false,
        };
    }
    let Some(o) = compare_value(actual, &c.value) else {
        return c.op == Op::Ne;
    };
    match c.op {
        Op::Eq => o == Equal,
        Op::Ne => o != Equal,
        Op::Lt => o == Less,
        Op::Le => o != Greater,
        Op::Gt => o == Greater,
        Op::Ge => o != Less,
        Op::Contains => false,
    }
}

fn compare_value(actual: &Ipld, v: &Value) -> Option<std::cmp::Ordering> {
    match (actual, v) {
        (Ipld::String(s), Value::Text(t)) => Some(s.as_str().cmp(t)),
        (Ipld::Link(cid), Value::Text(t)) => Some(cid.to_string().cmp(t)),
        (Ipld::Integer(n), Value::Int(m)) => Some(n.cmp(&i128::from(*m))),
        (Ipld::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

fn compare_ipld(a: Option<&Ipld>, b: Option<&Ipld>) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match (a, b) {
        (Some(Ipld::Integer(x)), Some(Ipld::Integer(y))) => x.cmp(y),
        (Some(Ipld::String(x)), Some(Ipld::String(y))) => x.cmp(y),
        (Some(_), None) => Less,
        (None, Some(_)) => Greater,
        _ => Equal,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use mnode_dag::{Keypair, model::social::Post};

    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("db"), 8).unwrap();
        (dir, s)
    }

    fn put_post(s: &Store, key: &Keypair, tags: &[&str], at: u64) -> Cid {
        let post = Post {
            text: format!("at {at}"),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            ..Post::default()
        };
        let r = Record::create(&post).unwrap().at(at).sign(key).unwrap();
        s.put(r.clone()).unwrap();
        r.id()
    }

    /// Every page of a listing, `limit` at a time.
    fn pages(mut next: impl FnMut(Option<Cursor>) -> Page) -> Vec<Vec<Cid>> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let page = next(cursor);
            if !page.items.is_empty() {
                out.push(page.items.iter().map(|(id, _)| *id).collect());
            }
            match page.next {
                Some(c) => cursor = Some(c),
                None => return out,
            }
        }
    }

    #[test]
    fn oldest_first_pages_run_forward() {
        let (_dir, s) = store();
        let key = Keypair::derive(1, "a");
        let ids: Vec<Cid> = (0..5).map(|i| put_post(&s, &key, &[], 1_000 + i)).collect();
        let got = pages(|cursor| {
            let f = ListFilter {
                author: Some(*key.did()),
                cursor,
                limit: 2,
                ..ListFilter::default()
            };
            s.list_in(&f, Order::OldestFirst).unwrap()
        });
        assert_eq!(got, [&ids[0..2], &ids[2..4], &ids[4..5]]);
    }

    #[test]
    fn merged_listings_page_without_gaps_when_one_runs_out_first() {
        let (_dir, s) = store();
        let (a, b) = (Keypair::derive(1, "a"), Keypair::derive(1, "b"));
        let mut ids: Vec<Cid> = (0..3).map(|i| put_post(&s, &a, &[], 1_000 + i)).collect();
        ids.extend((0..2).map(|i| put_post(&s, &b, &[], 2_000 + i)));
        let filters = [
            topic_filter(&GossipTopic::Author(*a.did())),
            topic_filter(&GossipTopic::Author(*b.did())),
            // The same items again: each comes once.
            topic_filter(&GossipTopic::Author(*b.did())),
        ];
        let got = pages(|cursor| {
            s.list_merged(&filters, cursor, 2, Order::NewestFirst)
                .unwrap()
        });
        ids.reverse();
        assert_eq!(got.concat(), ids);
        assert!(got.iter().all(|p| p.len() <= 2));
    }

    #[test]
    fn account_follows_are_kept_per_account_with_followers_per_topic() {
        let (_dir, s) = store();
        let t = GossipTopic::Author(*Keypair::derive(1, "x").did());
        let u = GossipTopic::Thread(cids::record_cid(b"thread"));
        assert!(s.account_follow("alice", &t).unwrap());
        assert!(!s.account_follow("alice", &t).unwrap());
        assert!(s.account_follow("alice", &u).unwrap());
        assert!(s.account_follow("al", &t).unwrap());
        let mine: Vec<GossipTopic> = s
            .account_follows("alice")
            .unwrap()
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        assert_eq!(mine.len(), 2);
        assert!(mine.contains(&t) && mine.contains(&u));
        assert_eq!(s.account_follows("al").unwrap().len(), 1);
        assert_eq!(s.topic_followers(&t).unwrap(), ["al", "alice"]);
        assert!(s.account_unfollow("alice", &t).unwrap());
        assert!(!s.account_unfollow("alice", &t).unwrap());
        assert_eq!(s.topic_followers(&t).unwrap(), ["al"]);
        assert_eq!(s.topic_followers(&u).unwrap(), ["alice"]);
        // Account follows are not the node's.
        assert_eq!(s.follows().unwrap(), []);
    }

    #[test]
    fn tags_count_items_under_each_tag() {
        let (_dir, s) = store();
        let key = Keypair::derive(1, "a");
        put_post(&s, &key, &["music/jazz"], 1);
        put_post(&s, &key, &["music/jazz/bebop", "music-x"], 2);
        put_post(&s, &key, &["music"], 3);
        let tags = s.tags().unwrap();
        let want = [
            ("music", 3),
            ("music-x", 1),
            ("music/jazz", 2),
            ("music/jazz/bebop", 1),
        ]
        .map(|(t, n)| (t.to_owned(), n));
        assert_eq!(tags, want);
    }
}

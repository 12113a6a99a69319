//! Files ("blobs"): the iroh-blobs file-system store under the repo.
//!
//! A blob is named by a CIDv1 with the `raw` codec (0x55) and a BLAKE3 multihash (0x1e); the
//! 32-byte digest is the iroh-blobs [`Hash`], so `bafkr4i…` names map one to one onto the store.
//!
//! # Layout
//!
//! ```text
//! <repo>/blobs/blobs.db        iroh-blobs metadata (redb): entries, tags, small blobs inline
//! <repo>/blobs/data/           iroh-blobs owned files: <hash>.data, <hash>.obao4 (outboards), …
//! <repo>/blobs/uploads/        <hash>.data: blobs streamed in by `add_reader`, referenced in place
//! <repo>/tmp/                  temp files: `upload-*.part` (ours) and `*.temp` (iroh-blobs' own)
//! ```
//!
//! Blobs of up to 16 KiB live inside `blobs.db`; larger ones are files.
//!
//! # Keeping and deleting
//!
//! iroh-blobs has no public "delete this blob" call: data goes away only through its garbage
//! collector, which removes every entry that no tag (or live temp tag) points to. So every blob
//! added here gets a tag named after its CID string, and [`Blobs::delete`] removes the tag, then
//! runs one GC pass and waits for it to finish, so the data is really gone when it returns. The
//! collector never runs on a timer: it waits until `delete` (or [`Blobs::open`]) asks for a pass.
//! mnode decides what to keep with its own pins; it calls `delete` for what it no longer wants.
//!
//! A GC pass removes *every* untagged entry. Code that writes into the store through
//! [`Blobs::store`] (e.g. fetching from peers) must tag what it wants to keep, with the tag name
//! `cid.to_string()`.
//!
//! # Files imported in place
//!
//! [`ImportMode::InPlace`] and [`Blobs::add_reader`] store no copy: the store records the path
//! and reads the file from there. If a file imported in place is later changed, truncated or
//! removed, the blob is damaged: reads of the changed parts fail with an `InvalidData` (or
//! `NotFound`) error rather than returning wrong bytes, since reads are checked against the
//! BLAKE3 tree made at import time, and [`Blobs::verify_all`] reports the CID. Re-adding the
//! original content with [`ImportMode::Copy`] repairs it (the copy takes over). Files under
//! `uploads/` belong to this module; never edit them.
//!
//! # Crash safety
//!
//! The metadata lives in redb, whose commits are atomic; every `add_*` call forces a commit
//! (`sync_db`) before it returns, so an added blob survives a crash once the call has returned.
//! A `kill -9` at any other point leaves, at worst:
//!
//! - a half-written `upload-*.part` (an interrupted [`Blobs::add_reader`]) or an iroh-blobs
//!   `*.temp` file (an interrupted copy import or outboard) in `tmp/`. They are never visible as
//!   blobs; [`Blobs::clean_tmp`] removes them once they are older than the age it is given.
//! - an import that finished without its tag (the call had not returned): [`Blobs::open`] runs one
//!   GC pass, which removes the untagged entry. It also completes a `delete` that was interrupted
//!   between removing the tag and the GC pass.
//! - a file in `blobs/data/` or `blobs/uploads/` that no entry points to (a crash between moving
//!   a file into place and committing its entry, or between committing a delete and removing the
//!   files): `open` removes such files after the GC pass.
//!
//! A power loss (not a process crash) can in addition lose data that iroh-blobs had written but
//! not yet flushed to disk for a committed entry; [`Blobs::verify_all`] finds such blobs.
//! Files streamed in by `add_reader` are flushed to disk before they are committed.

mod bucket;
mod sealed;
mod tier;
mod unixfs;

pub use unixfs::view_of_file;

use std::{
    collections::HashSet,
    fmt,
    future::Future,
    io,
    path::{Path, PathBuf},
    pin::{Pin, pin},
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use futures_lite::{Stream, StreamExt};
use iroh_blobs::{
    BlobFormat, Hash, HashAndFormat,
    api::{
        Store, TempTag,
        blobs::{AddPathOptions, AddProgressItem, BlobStatus, EncodedItem, ImportMode as IrohMode},
    },
    protocol::{ChunkRanges, ChunkRangesExt},
    store::{
        GcConfig, ProtectCb, ProtectOutcome,
        fs::{
            FsStore,
            options::{BatchOptions, InlineOptions, Options, PathOptions},
        },
    },
};
use mnode_config::{BlobStoreKind, BlobsConfig};
use mnode_dag::{
    Cid,
    cids::{blob_cid, blob_hash},
};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt},
    sync::{RwLock, oneshot},
};
use tracing::{debug, info, warn};

/// Blobs up to this size are kept inside the metadata database, not as files.
const INLINE_MAX: u64 = 16 * 1024;
/// How long `delete` waits for a GC pass before it gives up.
const GC_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// The pause of the iroh-blobs GC loop between passes; the passes themselves wait for a request.
const GC_PAUSE: Duration = Duration::from_millis(1);
/// The read buffer of `add_reader`.
const READ_BUF: usize = 256 * 1024;
/// How long [`Blobs::collect`] leaves a newly added blob alone: the record that keeps it is
/// made after the blob is stored.
const FRESH: Duration = Duration::from_secs(60);
/// The most blobs remembered as fresh; past it, the oldest are forgotten early.
const FRESH_MAX: usize = 65_536;
/// Sub-directory of the blob dir for files streamed in by `add_reader`.
const UPLOADS: &str = "uploads";
/// Kept files moved to the bucket at once.
const MOVES_AT_ONCE: usize = 4;
/// Exports copy files in pieces of this size (a dropped export stops after the piece in flight).
const COPY_PIECE: u64 = 64 << 20;

/// How [`Blobs::add_path`] brings a file into the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportMode {
    /// Copy the data into the store (a reflink where the file system supports it). The original
    /// can be changed or removed afterwards.
    Copy,
    /// Reference the file where it is, without a copy: for large files already on disk. The file
    /// must then stay as it is; if it is changed or removed later, reads of the blob fail and
    /// [`Blobs::verify_all`] reports it. Files of up to 16 KiB are copied anyway.
    InPlace,
}

/// How many per-file questions to the store (is it complete, tag it) a call over many files
/// keeps in flight: each is a round trip through the store's actors, and 10,000 of them one
/// after the other took longer than fetching the files.
pub const CHECKS_AT_ONCE: usize = 64;

/// How many files an import of many keeps in flight: the import of a small file is a few round
/// trips to the stores, which overlap; more than this gains nothing on a few cores.
pub const IMPORTS_AT_ONCE: usize = 4;

/// When an added file is committed to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Before the add returns: from then on the file survives a crash.
    Now,
    /// With the next [`Blobs::commit`] (or [`Blobs::shutdown`]): the files of a folder share
    /// one commit instead of waiting for the disk one by one; until then a crash may lose them.
    Later,
}

/// How far a move of files between the local disk and a bucket is.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Migration {
    /// Files moved so far.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Files to move in all.
    pub files_total: u64,
    /// Their bytes.
    pub bytes_total: u64,
    /// Files that stay where they are: added in place (`--in-place`), which the node reads
    /// from where they were added.
    pub stayed: u64,
}

/// A blob that was added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    /// The blob's name: CIDv1 raw + BLAKE3.
    pub cid: Cid,
    /// Its size in bytes.
    pub size: u64,
}

/// What can go wrong with blobs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlobError {
    /// No complete blob with this CID is stored.
    #[error("blob {0} is not in the store")]
    NotFound(Cid),
    /// The CID does not name a blob.
    #[error(
        "{0} is not a blob CID: blobs are named by CIDv1 with the raw codec (0x55) and a BLAKE3 \
         hash (0x1e), like bafkr4i…"
    )]
    NotABlobCid(Cid),
    /// A read started at or past the end of the blob.
    #[error("range not satisfiable: it starts at byte {start}, but blob {cid} has {size} bytes")]
    RangeNotSatisfiable {
        /// The blob.
        cid: Cid,
        /// The requested start.
        start: u64,
        /// The blob's size.
        size: u64,
    },
    /// The reader given to [`Blobs::add_reader`] failed; nothing was stored.
    #[error("reading the upload failed after {received} bytes, nothing was stored: {source}")]
    Upload {
        /// Bytes read before the error.
        received: u64,
        /// The reader's error.
        #[source]
        source: io::Error,
    },
    /// A file-system operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, and on which path.
        context: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The iroh-blobs store reported an error, or has been shut down.
    #[error("blob store: {0}")]
    Store(String),
    /// A file imported in place was changed, moved or removed after it was added: its bytes no
    /// longer match the CID.
    #[error(
        "the original file of {0}, added in place (--in-place), has changed or is gone since it \
         was added; put it back as it was, or add the file again"
    )]
    InPlaceChanged(Cid),
    /// The disk is full: the file was not stored (what was written of it is removed). The
    /// store takes files again as soon as there is room.
    #[error("{}", crate::DISK_FULL)]
    DiskFull,
    /// A file being written as it arrives ([`Blobs::export_arriving`]) stopped arriving.
    #[error(
        "no more of {cid} has arrived for {secs} s; fetch it again (`mnode fetch`), then get it"
    )]
    Stalled {
        /// The blob.
        cid: Cid,
        /// How long it waited.
        secs: u64,
    },
    /// A sealed file does not open: a wrong key, or a blob that is no sealed file.
    #[error("the sealed file {cid} does not open: {detail}")]
    Sealed {
        /// The blob.
        cid: Cid,
        /// What failed.
        detail: String,
    },
    /// The bucket (`blobs.store: s3`) cannot be reached or refused a request.
    #[error("{0}")]
    Bucket(String),
    /// The store's own copy of a blob does not match its CID (a damaged disk, a power loss).
    #[error("the stored copy of {cid} is damaged ({detail}); add the file again to repair it")]
    Damaged {
        /// The blob.
        cid: Cid,
        /// What the check found.
        detail: String,
    },
}

fn io_error(context: impl Into<String>, source: io::Error) -> BlobError {
    if crate::disk_full(&source) {
        let context = context.into();
        warn!("the disk is full: {context}: {source}");
        return BlobError::DiskFull;
    }
    BlobError::Io {
        context: context.into(),
        source,
    }
}

/// A failed read of a blob's bytes: the [`BlobError`] that [`Blobs::read_range`] put inside
/// the I/O error, else the I/O error itself.
pub fn read_error(cid: &Cid, e: io::Error) -> BlobError {
    if !e.get_ref().is_some_and(|inner| inner.is::<BlobError>()) {
        return io_error(format!("reading blob {cid}"), e);
    }
    match e.into_inner().map(|inner| inner.downcast::<BlobError>()) {
        Some(Ok(b)) => *b,
        _ => BlobError::Store(format!("reading blob {cid} failed")),
    }
}

fn store_error(context: &str, error: impl fmt::Display) -> BlobError {
    let text = error.to_string();
    if crate::says_disk_full(&text) {
        warn!("the disk is full: {context}: {text}");
        return BlobError::DiskFull;
    }
    BlobError::Store(format!("{context}: {text}"))
}

/// A failed request to the store. Its text shows the I/O error inside only once unwrapped; that
/// error says whether the disk is full (a failed commit of the metadata database, say).
fn request_error(context: &str, error: iroh_blobs::api::RequestError) -> BlobError {
    let iroh_blobs::api::Error::Io(e) = iroh_blobs::api::Error::from(error);
    store_error(context, e)
}

/// The iroh-blobs file store of a repo, with mnode's naming, tagging and deletion.
pub struct Blobs {
    /// What the node uses: the file-system store, or the bucket tier in front of it.
    store: Store,
    /// The file-system store: metadata, tags, local files, files arriving from peers.
    fs: FsStore,
    /// Where file bytes live when `blobs.store` is `s3`.
    bucket: Option<Arc<bucket::Bucket>>,
    paths: PathOptions,
    uploads_dir: PathBuf,
    tmp_dir: PathBuf,
    gc: Arc<GcDriver>,
    /// Shared by the last step of every add (setting the tag, placing an upload); exclusive for
    /// `delete`, whose GC pass must not overlap with them (see `finish_add`).
    finalize: RwLock<()>,
    /// Blobs tagged in the last [`FRESH`], and when.
    fresh: Mutex<std::collections::HashMap<Hash, std::time::Instant>>,
    /// Files being put into the bucket now, and how many times: GC leaves their objects.
    adding: Arc<Mutex<std::collections::HashMap<Hash, usize>>>,
}

impl fmt::Debug for Blobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Blobs")
            .field("data_dir", &self.paths.data_path)
            .field("bucket", &self.bucket.as_ref().map(|b| b.name()))
            .field("uploads_dir", &self.uploads_dir)
            .field("tmp_dir", &self.tmp_dir)
            .finish_non_exhaustive()
    }
}

impl Blobs {
    /// Opens (or creates) the store in `blobs_dir`, with temp files in `tmp_dir`.
    ///
    /// Both must be on the same file system, since finished files are moved (renamed) into
    /// place. Opening removes what a crash may have left (see the module docs), which takes one
    /// pass over the entries. Call [`Blobs::shutdown`] before opening the same store again.
    pub async fn open(blobs_dir: &Path, tmp_dir: &Path) -> Result<Self, BlobError> {
        Self::open_with(blobs_dir, tmp_dir, &BlobsConfig::default()).await
    }

    /// [`Blobs::open`] with the file bytes where `config` says: with `store: s3`, files of
    /// more than 16 KiB go to the bucket, with their index under `blobs_dir/s3`.
    pub async fn open_with(
        blobs_dir: &Path,
        tmp_dir: &Path,
        config: &BlobsConfig,
    ) -> Result<Self, BlobError> {
        let blobs_dir = std::path::absolute(blobs_dir)
            .map_err(|e| io_error(format!("resolving {}", blobs_dir.display()), e))?;
        let tmp_dir = std::path::absolute(tmp_dir)
            .map_err(|e| io_error(format!("resolving {}", tmp_dir.display()), e))?;
        let data_dir = blobs_dir.join("data");
        let uploads_dir = blobs_dir.join(UPLOADS);
        for dir in [&data_dir, &uploads_dir, &tmp_dir] {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| io_error(format!("creating {}", dir.display()), e))?;
        }
        for dir in [&data_dir, &uploads_dir] {
            check_same_file_system(&tmp_dir, dir).await?;
        }
        let paths = PathOptions {
            data_path: data_dir,
            temp_path: tmp_dir.clone(),
        };
        let gc = Arc::new(GcDriver::default());
        let options = Options {
            path: paths.clone(),
            inline: InlineOptions {
                max_data_inlined: INLINE_MAX,
                max_outboard_inlined: INLINE_MAX,
            },
            batch: BatchOptions::default(),
            gc: Some(GcConfig {
                interval: GC_PAUSE,
                add_protected: Some(protect_callback(gc.clone())),
            }),
        };
        let store = FsStore::load_with_opts(blobs_dir.join("blobs.db"), options)
            .await
            .map_err(|e| {
                store_error(
                    &format!("cannot open the blob store in {}", blobs_dir.display()),
                    e,
                )
            })?;
        let bucket = match config.store {
            BlobStoreKind::Local => {
                let held = bucket::index_count(&blobs_dir.join("s3"));
                if held > 0 {
                    store.shutdown().await.ok();
                    return Err(BlobError::Bucket(format!(
                        "{held} files of this repo are in an S3 bucket, but blobs.store is \
                         local: set blobs.store to s3 (with its blobs.s3 settings), or move \
                         them back with `mnode repo migrate-blobs --to local`"
                    )));
                }
                None
            }
            BlobStoreKind::S3 => {
                let opened = bucket::Bucket::open(&config.s3, &blobs_dir.join("s3")).await;
                match opened {
                    Ok(bucket) => Some(Arc::new(bucket)),
                    Err(e) => {
                        store.shutdown().await.ok();
                        return Err(e);
                    }
                }
            }
        };
        let front = match &bucket {
            None => Store::clone(&store),
            Some(bucket) => tier::spawn(&store, bucket.clone())
                .map_err(|e| io_error("starting the bucket tier", e))?,
        };
        let blobs = Self {
            store: front,
            fs: store,
            bucket,
            paths,
            uploads_dir,
            tmp_dir,
            gc,
            finalize: RwLock::new(()),
            fresh: Mutex::new(std::collections::HashMap::new()),
            adding: Arc::default(),
        };
        blobs.recover().await?;
        Ok(blobs)
    }

    /// The underlying iroh-blobs store, e.g. to serve blobs to peers.
    ///
    /// Anything added through it must get a tag named `cid.to_string()`, or the next GC pass
    /// (run by [`Blobs::delete`] and [`Blobs::open`]) removes it.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The bucket files live in, as `s3://bucket/prefix at endpoint`; `None`: the repo's disk.
    pub fn bucket(&self) -> Option<&str> {
        self.bucket.as_deref().map(bucket::Bucket::name)
    }

    /// Imports a file on this machine; `progress` is called with the number of bytes hashed so
    /// far (after the copy, for [`ImportMode::Copy`]), last with the size.
    ///
    /// With [`ImportMode::InPlace`] the file is referenced where it is (see [`ImportMode`]).
    pub async fn add_path(
        &self,
        path: &Path,
        mode: ImportMode,
        progress: impl FnMut(u64) + Send,
    ) -> Result<Added, BlobError> {
        self.add_path_committing(path, mode, Commit::Now, progress)
            .await
    }

    /// [`Blobs::add_path`], committed to disk as `commit` says.
    pub async fn add_path_committing(
        &self,
        path: &Path,
        mode: ImportMode,
        commit: Commit,
        mut progress: impl FnMut(u64) + Send,
    ) -> Result<Added, BlobError> {
        let path = tokio::fs::canonicalize(path)
            .await
            .map_err(|e| io_error(format!("cannot open {}", path.display()), e))?;
        let meta = tokio::fs::metadata(&path)
            .await
            .map_err(|e| io_error(format!("cannot open {}", path.display()), e))?;
        if !meta.is_file() {
            return Err(io_error(
                format!("cannot add {}", path.display()),
                io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
            ));
        }
        if let Some(bucket) = &self.bucket
            && mode == ImportMode::Copy
            && meta.len() > INLINE_MAX
        {
            let outboard = bucket::outboard_of_file(&path).await?;
            let progress = Mutex::new(progress);
            let report = |n| (progress.lock().unwrap_or_else(PoisonError::into_inner))(n);
            return self
                .add_to_bucket(bucket, bucket::Source::File(&path), outboard, &report)
                .await;
        }
        let iroh_mode = match mode {
            ImportMode::Copy => IrohMode::Copy,
            ImportMode::InPlace => IrohMode::TryReference,
        };
        let what = format!("importing {}", path.display());
        let items = self
            .store
            .add_path_with_opts(AddPathOptions {
                path,
                format: BlobFormat::Raw,
                mode: iroh_mode,
            })
            .stream()
            .await;
        let (tt, size) = run_import(items, &mut progress, &what).await?;
        // An owned copy supersedes a file under uploads/ with the same content.
        let owned = mode == ImportMode::Copy;
        self.finish_add(tt, size, owned, commit).await
    }

    /// Commits the files added with [`Commit::Later`] to disk.
    pub async fn commit(&self) -> Result<(), BlobError> {
        self.store
            .sync_db()
            .await
            .map_err(|e| request_error("committing the added files", e))
    }

    /// Stores what `reader` yields (an HTTP upload, stdin); `progress` is called with the number
    /// of bytes read so far.
    ///
    /// The data is written once, to a fresh `upload-*.part` in the temp dir, and hashed with
    /// BLAKE3 on the way. Once the reader is done, the file is flushed and then renamed to
    /// `uploads/<hash>.data`, which the store references in place (it reads the file once more
    /// to build its BLAKE3 tree) — no second copy. If the content is already stored, the upload
    /// is dropped. Blobs of up to 16 KiB go into the database instead. On any error the temp
    /// file is removed and nothing is stored.
    pub async fn add_reader<R: AsyncRead + Unpin + Send>(
        &self,
        reader: R,
        progress: impl FnMut(u64) + Send,
    ) -> Result<Added, BlobError> {
        self.add_reader_to(reader, progress, self.bucket.as_deref())
            .await
    }

    /// [`Blobs::add_reader`] into `bucket`, or the local disk.
    async fn add_reader_to<R: AsyncRead + Unpin + Send>(
        &self,
        mut reader: R,
        mut progress: impl FnMut(u64) + Send,
        bucket: Option<&bucket::Bucket>,
    ) -> Result<Added, BlobError> {
        let (temp, mut guard, mut file) = self.create_temp()?;
        let write_error = |e| io_error(format!("writing {}", temp.display()), e);
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; READ_BUF];
        let mut received = 0u64;
        loop {
            let n = match reader.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(BlobError::Upload { received, source }),
            };
            let chunk = buf.get(..n).unwrap_or_default();
            hasher.update(chunk);
            file.write_all(chunk).await.map_err(write_error)?;
            received += n as u64;
            progress(received);
        }
        file.flush().await.map_err(write_error)?;
        file.sync_all().await.map_err(write_error)?;
        drop(file);
        let hash = Hash::from_bytes(*hasher.finalize().as_bytes());

        if let Some(bucket) = bucket
            && received > INLINE_MAX
        {
            let outboard = bucket::outboard_of_file(&temp).await?;
            if outboard.root.as_bytes() != hash.as_bytes() {
                return Err(BlobError::Store(format!(
                    "{} changed while it was being stored",
                    temp.display()
                )));
            }
            let added = self
                .add_to_bucket(bucket, bucket::Source::File(&temp), outboard, &|_| {})
                .await;
            drop(guard);
            return added;
        }

        let _shared = self.finalize.read().await;
        // Stored on the local disk already (this is the local path: a copy in the bucket does
        // not count when the bytes are meant for the disk).
        let held = self
            .fs
            .status(hash)
            .await
            .map_err(|e| store_error(&format!("looking up {hash}"), e))?;
        if let BlobStatus::Complete { .. } = held {
            // Already stored: keep that copy. No GC pass can run while `_shared` is held, so
            // the entry stays until the tag is set.
            drop(guard);
            return self.set_tag(hash, received).await;
        }
        let items = if received <= INLINE_MAX {
            let data = tokio::fs::read(&temp)
                .await
                .map_err(|e| io_error(format!("reading {}", temp.display()), e))?;
            self.store.add_bytes(data).stream().await
        } else {
            let target = self.upload_path(&hash);
            tokio::fs::rename(&temp, &target).await.map_err(|e| {
                io_error(
                    format!("moving {} to {}", temp.display(), target.display()),
                    e,
                )
            })?;
            guard.0 = Some(target.clone());
            self.store
                .add_path_with_opts(AddPathOptions {
                    path: target,
                    format: BlobFormat::Raw,
                    mode: IrohMode::TryReference,
                })
                .stream()
                .await
        };
        let (tt, size) = match run_import(items, &mut |_| {}, "importing the upload").await {
            Ok(done) => done,
            Err(e) => {
                // Another upload of the same content may have placed and imported the file.
                if let Ok(BlobStatus::Complete { .. }) = self.fs.status(hash).await {
                    guard.0 = None;
                }
                return Err(e);
            }
        };
        if tt.hash() != hash || size != received {
            return Err(BlobError::Store(format!(
                "the store hashed the upload to {} ({size} bytes), but {} ({received} bytes) \
                 were received; was {} changed during the import?",
                tt.hash(),
                hash,
                self.upload_path(&hash).display()
            )));
        }
        if received > INLINE_MAX {
            // The file under uploads/ is the blob's data now.
            guard.0 = None;
        }
        drop(guard);
        let added = self.set_tag(hash, size).await;
        drop(tt);
        added
    }

    /// Stores bytes held in memory.
    pub async fn add_bytes(&self, data: Bytes) -> Result<Added, BlobError> {
        if let Some(bucket) = &self.bucket
            && data.len() as u64 > INLINE_MAX
        {
            let outboard = bucket::outboard_of_bytes(data.clone()).await?;
            return self
                .add_to_bucket(bucket, bucket::Source::Bytes(data), outboard, &|_| {})
                .await;
        }
        let items = self.store.add_bytes(data).stream().await;
        let (tt, size) = run_import(items, &mut |_| {}, "importing bytes").await?;
        self.finish_add(tt, size, true, Commit::Now).await
    }

    /// Whether a complete blob with this CID is stored. The empty blob is always there.
    pub async fn has(&self, cid: &Cid) -> Result<bool, BlobError> {
        let hash = hash_of(cid)?;
        Ok(matches!(
            self.status(hash).await?,
            BlobStatus::Complete { .. }
        ))
    }

    /// The size of a complete blob, or `None` if it is not stored.
    pub async fn size(&self, cid: &Cid) -> Result<Option<u64>, BlobError> {
        let hash = hash_of(cid)?;
        Ok(match self.status(hash).await? {
            BlobStatus::Complete { size } => Some(size),
            _ => None,
        })
    }

    /// Bytes `start..end` of a blob (`end` exclusive, clamped to the size; `None` for the end),
    /// as a stream of chunks, read from disk as the stream is polled.
    ///
    /// The bytes are checked against the blob's BLAKE3 tree as they are read, so a damaged blob
    /// (e.g. a file imported in place and changed since) yields an `InvalidData` error instead
    /// of wrong bytes. `RangeNotSatisfiable` if `start` is at or past the end of a non-empty
    /// blob; an empty stream if `end <= start` or the blob is empty.
    pub async fn read_range(
        &self,
        cid: &Cid,
        start: u64,
        end: Option<u64>,
    ) -> Result<impl Stream<Item = io::Result<Bytes>> + Send + 'static, BlobError> {
        let hash = hash_of(cid)?;
        let size = self.complete_size(cid, hash).await?;
        let end = end.map_or(size, |end| end.min(size));
        if size > 0 && start >= size {
            return Err(BlobError::RangeNotSatisfiable {
                cid: *cid,
                start,
                size,
            });
        }
        let stream: Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>> = if end <= start {
            Box::pin(futures_lite::stream::empty())
        } else {
            let items = self
                .store
                .export_bao(hash, ChunkRanges::bytes(start..end))
                .stream();
            let owned = self.owned_paths(&hash);
            let in_bucket = self.in_bucket_hash(&hash);
            let cid = *cid;
            Box::pin(items.filter_map(move |item| match item {
                EncodedItem::Leaf(leaf) => clip(leaf.offset, leaf.data, start, end).map(Ok),
                EncodedItem::Error(e) => {
                    let e = io::Error::from(e);
                    // Say what happened in the user's terms, not the BLAKE3 tree's.
                    let error =
                        if size > INLINE_MAX && !in_bucket && !owned.iter().any(|p| p.exists()) {
                            BlobError::InPlaceChanged(cid)
                        } else {
                            BlobError::Damaged {
                                cid,
                                detail: e.to_string(),
                            }
                        };
                    Some(Err(io::Error::new(e.kind(), error)))
                }
                _ => None,
            }))
        };
        Ok(stream)
    }

    /// Whether a complete blob is a file imported in place (its bytes are read from where the
    /// file was added, not from a copy of the store's own).
    pub async fn in_place(&self, cid: &Cid) -> Result<bool, BlobError> {
        let hash = hash_of(cid)?;
        let size = self.complete_size(cid, hash).await?;
        if size <= INLINE_MAX || self.in_bucket_hash(&hash) {
            return Ok(false);
        }
        for path in self.owned_paths(&hash) {
            if tokio::fs::try_exists(&path).await.unwrap_or(false) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Where the store's own copy of a large blob would be.
    fn owned_paths(&self, hash: &Hash) -> [PathBuf; 2] {
        [self.paths.data_path(hash), self.upload_path(hash)]
    }

    /// The file on disk that holds a complete blob's bytes and its size, when the store owns
    /// that file (copied in, uploaded or fetched; not imported in place, not small enough to be
    /// inlined). Large reads, such as the gateway serving a file, stream it straight from disk
    /// in big reads instead of through the store's 16 KiB verified chunks. The file never
    /// changes while it is the blob's (deleting the blob unlinks it; an open file stays
    /// readable).
    pub async fn owned_file(&self, cid: &Cid) -> Result<Option<(PathBuf, u64)>, BlobError> {
        let hash = hash_of(cid)?;
        let size = self.complete_size(cid, hash).await?;
        for path in self.owned_paths(&hash) {
            if tokio::fs::metadata(&path)
                .await
                .is_ok_and(|m| m.is_file() && m.len() == size)
            {
                return Ok(Some((path, size)));
            }
        }
        Ok(None)
    }

    /// A whole blob in memory: for small blobs. Checked like [`Blobs::read_range`].
    pub async fn read_to_bytes(&self, cid: &Cid) -> Result<Bytes, BlobError> {
        let hash = hash_of(cid)?;
        self.complete_size(cid, hash).await?;
        self.store.get_bytes(hash).await.map_err(|e| {
            let iroh_blobs::api::Error::Io(e) = iroh_blobs::api::Error::from(e);
            io_error(format!("reading blob {cid}"), e)
        })
    }

    /// Writes a blob to the file `dest` (replacing it), and returns its size.
    ///
    /// The data goes to a temp file next to `dest` first, which is renamed to `dest` once all
    /// of it has been written and checked, so `dest` never holds a partial or damaged blob; on
    /// any error the temp file is removed and `dest` is left as it was (not created, if it did
    /// not exist). Like `cp`, the copy is left to the file system to write back (see
    /// `ExportFile::finish`).
    ///
    /// A blob whose file the store owns (copied in, uploaded or fetched: see
    /// [`Blobs::owned_file`]) is copied by the kernel (`copy_file_range` on Linux) in large
    /// pieces, without passing through this process and without hashing it again: that file was
    /// verified against the CID when it was stored (hashed on import or upload, every chunk
    /// checked against the BLAKE3 tree on a fetch) and the store never writes to it again, so
    /// it holds the blob's bytes as long as it is the blob's (deleting the blob unlinks it; an
    /// open file stays readable). This is what the gateway relies on too. Other blobs (small
    /// ones in the database, files imported in place, which their owner may have changed since)
    /// are read through the store and checked against the BLAKE3 tree as they are written.
    pub async fn export(&self, cid: &Cid, dest: &Path) -> Result<u64, BlobError> {
        let hash = hash_of(cid)?;
        let size = self.complete_size(cid, hash).await?;
        if let Some(src) = self.open_owned(cid, hash, size).await? {
            let mut out = ExportFile::create(dest).await?;
            out.copy_from(&src, 0..size).await?;
            out.finish().await?;
            return Ok(size);
        }
        self.export_verified(cid, dest).await
    }

    /// [`Blobs::export`] through the store's verified reads.
    async fn export_verified(&self, cid: &Cid, dest: &Path) -> Result<u64, BlobError> {
        let mut chunks = pin!(self.read_range(cid, 0, None).await?);
        let out = ExportFile::create(dest).await?;
        let temp = out.temp.clone();
        let write_error = |e| io_error(format!("writing {}", temp.display()), e);
        let mut file = tokio::fs::File::from_std(out.file.try_clone().map_err(write_error)?);
        let mut written = 0u64;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| read_error(cid, e))?;
            file.write_all(&chunk).await.map_err(write_error)?;
            written += chunk.len() as u64;
        }
        file.flush().await.map_err(write_error)?;
        drop(file);
        out.finish().await?;
        Ok(written)
    }

    /// Writes a blob that is still arriving in the store (a fetch from peers that the caller
    /// runs meanwhile) to the file `dest` as its verified bytes come in, and returns its size
    /// once all of it is written; `dest` is handled as by [`Blobs::export`].
    ///
    /// The bytes are copied by the kernel from the file that the store fills, and only the
    /// chunks that the store reports as verified and written; so when the last chunk arrives,
    /// all that is left is the rest of the copy. A blob already held is
    /// exported as by [`Blobs::export`]; one of which nothing has arrived yet is
    /// [`BlobError::NotFound`]. Gives up with [`BlobError::Stalled`] when no more of the blob
    /// has arrived for `stall`; dropping the future (say, because the fetch failed) stops it
    /// and removes the temp file.
    pub async fn export_arriving(
        &self,
        cid: &Cid,
        dest: &Path,
        stall: Duration,
    ) -> Result<u64, BlobError> {
        let hash = hash_of(cid)?;
        match self.status(hash).await? {
            BlobStatus::Complete { .. } => return self.export(cid, dest).await,
            BlobStatus::NotFound => return Err(BlobError::NotFound(*cid)),
            BlobStatus::Partial { .. } => {}
        }
        let updates = self
            .store
            .observe(hash)
            .stream()
            .await
            .map_err(|e| store_error(&format!("following {cid} as it arrives"), e))?;
        let mut updates = pin!(updates);
        let mut out: Option<ExportFile> = None;
        let mut src: Option<Arc<std::fs::File>> = None;
        let mut copied = ChunkRanges::empty();
        let size = loop {
            let bitfield = match tokio::time::timeout(stall, updates.next()).await {
                Ok(Some(bitfield)) => bitfield,
                // The store stopped reporting (the entry was removed, or the store is closing).
                Ok(None) => match self.status(hash).await? {
                    BlobStatus::Complete { size } => break size,
                    _ => return Err(BlobError::NotFound(*cid)),
                },
                Err(_) => {
                    return Err(BlobError::Stalled {
                        cid: *cid,
                        secs: stall.as_secs(),
                    });
                }
            };
            if bitfield.is_complete() {
                break bitfield.size();
            }
            let size = bitfield.size();
            if size <= INLINE_MAX {
                // Small blobs end up in the database; they are exported once complete.
                continue;
            }
            let mut ready = bitfield.ranges.clone();
            if !bitfield.is_validated() {
                // Until the last chunk is in, the size is a peer's claim: only whole chunks
                // before it are certain.
                ready &= ChunkRanges::chunks(..size / 1024);
            }
            let new = &ready - &copied;
            if new.is_empty() {
                continue;
            }
            let file = match &src {
                Some(file) => file.clone(),
                None => match std::fs::File::open(self.paths.data_path(&hash)) {
                    Ok(file) => src.insert(Arc::new(file)).clone(),
                    // Not on disk yet: the first chunks are held in memory.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io_error(format!("reading the arriving {cid}"), e)),
                },
            };
            let target = match &mut out {
                Some(out) => out,
                None => out.insert(ExportFile::create(dest).await?),
            };
            for range in byte_ranges(&new, size) {
                target.copy_from(&file, range).await?;
            }
            copied |= new;
        };
        let (Some(mut out), Some(src)) = (out, src) else {
            // All of it came before any was copied.
            return self.export(cid, dest).await;
        };
        // The file that was filled is now the complete blob's, unless the blob was deleted and
        // stored again meanwhile: then start over from the store.
        if !self.is_owned(hash, &src, size).await {
            drop(out);
            return self.export(cid, dest).await;
        }
        for range in byte_ranges(&(ChunkRanges::all() - &copied), size) {
            out.copy_from(&src, range).await?;
        }
        out.finish().await?;
        Ok(size)
    }

    /// The store's own file of a complete blob of `size` bytes, opened (see
    /// [`Blobs::owned_file`]); `None` if there is none, or the blob changed meanwhile.
    async fn open_owned(
        &self,
        cid: &Cid,
        hash: Hash,
        size: u64,
    ) -> Result<Option<Arc<std::fs::File>>, BlobError> {
        let Some((path, _)) = self.owned_file(cid).await? else {
            return Ok(None);
        };
        let file = match std::fs::File::open(&path) {
            Ok(file) => Arc::new(file),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(format!("reading {}", path.display()), e)),
        };
        Ok(self.is_owned(hash, &file, size).await.then_some(file))
    }

    /// Whether the open `file` is the store's own file of the complete blob `hash` of `size`
    /// bytes. Checked after opening it: a blob deleted and being fetched again could have a
    /// partial file under the same name.
    async fn is_owned(&self, hash: Hash, file: &std::fs::File, size: u64) -> bool {
        if !matches!(self.status(hash).await, Ok(BlobStatus::Complete { size: s }) if s == size) {
            return false;
        }
        let Ok(opened) = file.metadata() else {
            return false;
        };
        opened.len() == size
            && self
                .owned_paths(&hash)
                .iter()
                .any(|path| std::fs::metadata(path).is_ok_and(|named| same_file(&opened, &named)))
    }

    /// Removes a blob; `true` if it was stored.
    ///
    /// When this returns, the blob's entry and its files are gone from the store (a file that was
    /// imported in place stays, of course). This runs a GC pass over the whole store; to remove
    /// many blobs, use [`Blobs::delete_many`]. The empty blob has no data and stays available
    /// (`false`). A blob added again concurrently may survive.
    pub async fn delete(&self, cid: &Cid) -> Result<bool, BlobError> {
        Ok(self.delete_many(std::slice::from_ref(cid)).await? > 0)
    }

    /// Removes several blobs with one GC pass; returns how many of them were stored.
    pub async fn delete_many(&self, cids: &[Cid]) -> Result<usize, BlobError> {
        self.delete_where(cids, false).await
    }

    /// Removes what a repo GC found unreferenced, as [`Blobs::delete_many`] does, except the
    /// blobs added in the last minute: an upload stores its file first and makes the record
    /// that keeps it after, so a GC between the two would remove an upload about to be
    /// answered as stored.
    pub async fn collect(&self, cids: &[Cid]) -> Result<usize, BlobError> {
        self.delete_where(cids, true).await
    }

    async fn delete_where(&self, cids: &[Cid], spare_fresh: bool) -> Result<usize, BlobError> {
        // Checked under the exclusive lock: a tag set before it was marked fresh before.
        let _exclusive = self.finalize.write().await;
        let fresh: HashSet<Hash> = if spare_fresh {
            let mut fresh = self.fresh();
            let now = std::time::Instant::now();
            fresh.retain(|_, at| now.duration_since(*at) < FRESH);
            fresh.keys().copied().collect()
        } else {
            HashSet::new()
        };
        let mut kept = Vec::with_capacity(cids.len());
        for cid in cids {
            if !fresh.contains(&hash_of(cid)?) {
                kept.push(*cid);
            }
        }
        let cids = &kept[..];
        let hashes = cids.iter().map(hash_of).collect::<Result<Vec<_>, _>>()?;
        let mut removed = 0;
        for (cid, hash) in cids.iter().zip(&hashes) {
            let stored = matches!(self.status(*hash).await?, BlobStatus::Complete { .. });
            if stored && *hash != Hash::EMPTY {
                removed += 1;
            }
            self.store
                .tags()
                .delete(tag_name(cid))
                .await
                .map_err(|e| request_error(&format!("removing the tag of {cid}"), e))?;
        }
        self.collect_garbage().await?;
        if let Some(bucket) = &self.bucket {
            for hash in &hashes {
                if !self.is_adding(hash) {
                    bucket.remove(hash).await?;
                }
            }
        }
        for hash in hashes {
            // GC leaves files that were referenced in place alone; those under uploads/ are ours.
            if let BlobStatus::NotFound = self.status(hash).await? {
                remove_if_present(&self.upload_path(&hash)).await?;
            }
        }
        Ok(removed)
    }

    /// All complete blobs and their sizes (the empty blob is not listed).
    pub async fn list(&self) -> Result<Vec<(Cid, u64)>, BlobError> {
        let hashes = self
            .store
            .list()
            .hashes()
            .await
            .map_err(|e| store_error("listing blobs", e))?;
        let mut blobs = Vec::with_capacity(hashes.len());
        for hash in hashes {
            if let BlobStatus::Complete { size } = self.status(hash).await? {
                blobs.push((blob_cid(*hash.as_bytes()), size));
            }
        }
        Ok(blobs)
    }

    /// Re-hashes every blob from its bytes and compares the result with its name; returns the
    /// CIDs that fail (damaged, changed or missing data, e.g. of a file imported in place).
    pub async fn verify_all(&self) -> Result<Vec<Cid>, BlobError> {
        Ok(self
            .verify_all_saying()
            .await?
            .into_iter()
            .map(|(cid, _)| cid)
            .collect())
    }

    /// [`Blobs::verify_all`], with what is wrong with each (for a file in the bucket, say,
    /// that its object is missing or has another size).
    pub async fn verify_all_saying(&self) -> Result<Vec<(Cid, String)>, BlobError> {
        let mut failed = Vec::new();
        for (cid, size) in self.list().await? {
            let hash = hash_of(&cid)?;
            if let Err(problem) = self.verify_one(hash, size).await {
                warn!(%cid, "blob failed verification: {problem}");
                failed.push((cid, problem));
            }
        }
        Ok(failed)
    }

    /// Removes temp files older than `age` from the temp dir: uploads and imports that a crash
    /// interrupted. Returns how many were removed. Only this module's (`upload-*.part`) and
    /// iroh-blobs' (`*.temp`) files are touched. Call it at start and now and then, with an
    /// age well above the time an upload can take between two writes (an hour).
    pub fn clean_tmp(&self, age: Duration) -> Result<usize, BlobError> {
        let read_error = |e| io_error(format!("reading {}", self.tmp_dir.display()), e);
        let now = SystemTime::now();
        let mut removed = 0;
        for entry in std::fs::read_dir(&self.tmp_dir).map_err(read_error)? {
            let entry = entry.map_err(read_error)?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let ours = name.starts_with("upload-") && name.ends_with(".part");
            if !(ours || name.ends_with(".temp")) {
                continue;
            }
            let meta = match entry.metadata() {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(read_error(e)),
            };
            let modified = meta
                .modified()
                .map_err(|e| io_error(format!("reading {}", entry.path().display()), e))?;
            let old = now.duration_since(modified).is_ok_and(|d| d > age);
            if meta.is_file() && old {
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(io_error(format!("removing {}", entry.path().display()), e));
                    }
                }
            }
        }
        if removed > 0 {
            info!(removed, dir = %self.tmp_dir.display(), "removed old temp files");
        }
        Ok(removed)
    }

    /// Keeps a file that arrived through the store directly (a fetch from a peer): checks that
    /// it is complete, then tags it like an added file so GC keeps it.
    pub async fn keep(&self, cid: &Cid) -> Result<Added, BlobError> {
        let hash = hash_of(cid)?;
        let size = self.complete_size(cid, hash).await?;
        let added = {
            let _shared = self.finalize.read().await;
            self.set_tag(hash, size).await?
        };
        self.move_to_bucket(hash, size).await;
        Ok(added)
    }

    /// Closes the store: the database is closed when this returns, and the same dirs can be
    /// opened again.
    pub async fn shutdown(self) -> Result<(), BlobError> {
        self.gc.close();
        self.fs
            .shutdown()
            .await
            .map_err(|e| store_error("shutting down", e))
    }

    async fn status(&self, hash: Hash) -> Result<BlobStatus, BlobError> {
        self.store
            .status(hash)
            .await
            .map_err(|e| store_error(&format!("looking up {hash}"), e))
    }

    async fn complete_size(&self, cid: &Cid, hash: Hash) -> Result<u64, BlobError> {
        match self.status(hash).await? {
            BlobStatus::Complete { size } => Ok(size),
            _ => Err(BlobError::NotFound(*cid)),
        }
    }

    fn upload_path(&self, hash: &Hash) -> PathBuf {
        self.uploads_dir.join(format!("{}.data", hash.to_hex()))
    }

    /// A new temp file, and the guard that removes it when dropped. The file is created here,
    /// in this poll, not on the blocking pool: a create in flight there when the upload is
    /// cancelled would finish after the guard is gone and leave the file behind (a full test run
    /// saw one). Creating a file is one short system call.
    fn create_temp(&self) -> Result<(PathBuf, RemoveOnDrop, tokio::fs::File), BlobError> {
        loop {
            let path = self.tmp_dir.join(unique_name("upload"));
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(file) => {
                    let guard = RemoveOnDrop(Some(path.clone()));
                    return Ok((path, guard, tokio::fs::File::from_std(file)));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_error(format!("creating {}", path.display()), e)),
            }
        }
    }

    /// Tags a finished import and drops its temp tag. `owned`: the import made the store own a
    /// copy of the data, so a file under uploads/ with the same content is no longer used.
    async fn finish_add(
        &self,
        tt: TempTag,
        size: u64,
        owned: bool,
        commit: Commit,
    ) -> Result<Added, BlobError> {
        let hash = tt.hash();
        let upload = self.upload_path(&hash);
        if owned && size > INLINE_MAX && tokio::fs::try_exists(&upload).await.unwrap_or(false) {
            // iroh-blobs prefers an owned copy to in-place files, so the entry dropped the path
            // of the upload. The exclusive lock keeps `add_reader` from placing it meanwhile;
            // the temp tag keeps `delete` from removing the entry.
            let _exclusive = self.finalize.write().await;
            remove_if_present(&upload).await?;
            let added = self.set_tag(hash, size).await;
            drop(tt);
            return added;
        }
        // Setting the tag and dropping the temp tag must not happen during a GC pass: the pass
        // reads the tags and the temp tags one after the other and could miss the blob in both
        // (iroh-blobs#247). GC passes run only under the exclusive lock.
        let _shared = self.finalize.read().await;
        let added = match commit {
            Commit::Now => self.set_tag(hash, size).await,
            Commit::Later => self.tag(hash, size).await,
        };
        drop(tt);
        added
    }

    /// Puts a file into the bucket and tags it. While it is being put, GC leaves its object
    /// alone (see [`Adding`]); the local copy of the same bytes, if any, is dropped after.
    async fn add_to_bucket(
        &self,
        bucket: &bucket::Bucket,
        source: bucket::Source<'_>,
        outboard: bao_tree::io::outboard::PreOrderMemOutboard,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Added, BlobError> {
        let hash = Hash::from_bytes(*outboard.root.as_bytes());
        let _adding = Adding::new(&self.adding, hash);
        let (hash, size) = bucket.put(source, outboard, progress).await?;
        let added = {
            let _shared = self.finalize.read().await;
            self.set_tag(hash, size).await?
        };
        self.drop_local(hash).await;
        Ok(added)
    }

    fn is_adding(&self, hash: &Hash) -> bool {
        self.adding
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(hash)
    }

    /// Moves a kept file from the local disk to the bucket, when files live there. A failure
    /// leaves it on the local disk, where it is served from as before (`mnode repo
    /// migrate-blobs` moves it later).
    async fn move_to_bucket(&self, hash: Hash, size: u64) {
        let Some(bucket) = &self.bucket else {
            return;
        };
        if size <= INLINE_MAX || bucket.size(&hash).is_some() {
            return;
        }
        let cid = blob_cid(*hash.as_bytes());
        match self.put_local_copy(bucket, &cid, hash).await {
            Ok(true) => self.drop_local(hash).await,
            Ok(false) => {}
            Err(e) => warn!(%cid, "a kept file stays on the local disk: {e}"),
        }
    }

    /// Removes the local entry of a file that is in the bucket now (the tag stays: it keeps
    /// the file, wherever it is). An entry still arriving is left alone.
    async fn drop_local(&self, hash: Hash) {
        let complete = matches!(self.fs.status(hash).await, Ok(BlobStatus::Complete { .. }));
        if !complete {
            return;
        }
        let request = iroh_blobs::api::proto::BlobDeleteRequest {
            hashes: vec![hash],
            force: true,
        };
        match self.fs.client().rpc(request).await {
            Ok(Ok(())) => {
                // The files go when the deletion is committed.
                if let Err(e) = self.fs.sync_db().await {
                    warn!(%hash, "cannot commit dropping a local copy: {e}");
                }
                remove_if_present(&self.upload_path(&hash)).await.ok();
            }
            Ok(Err(e)) => warn!(%hash, "cannot drop the local copy of a file in the bucket: {e}"),
            Err(e) => warn!(%hash, "cannot drop the local copy of a file in the bucket: {e}"),
        }
    }

    /// Whether a file's bytes are in the bucket.
    pub async fn in_bucket(&self, cid: &Cid) -> Result<bool, BlobError> {
        Ok(self.in_bucket_hash(&hash_of(cid)?))
    }

    fn in_bucket_hash(&self, hash: &Hash) -> bool {
        self.bucket.as_ref().is_some_and(|b| b.size(hash).is_some())
    }

    /// Puts the store's own local copy of a file into the bucket (GC leaves it alone
    /// meanwhile); `false` if there is no such copy (inlined, added in place, gone).
    async fn put_local_copy(
        &self,
        bucket: &bucket::Bucket,
        cid: &Cid,
        hash: Hash,
    ) -> Result<bool, BlobError> {
        let Some((path, _)) = self.owned_file(cid).await? else {
            return Ok(false);
        };
        let _adding = Adding::new(&self.adding, hash);
        let outboard = bucket::outboard_of_file(&path).await?;
        bucket
            .put(bucket::Source::File(&path), outboard, &|_| {})
            .await?;
        Ok(true)
    }

    /// Moves every file on the local disk (but those added in place, and those of up to
    /// 16 KiB, which stay in the database) into the bucket, one after the other: each is
    /// sent, read back from the bucket and checked against its hash, and only then dropped
    /// from the disk. Files already in the bucket are skipped, so an interrupted migration
    /// picks up where it stopped. `progress` gets the count after each file.
    pub async fn migrate_to_bucket(
        &self,
        mut progress: impl FnMut(&Migration) + Send,
    ) -> Result<Migration, BlobError> {
        let Some(bucket) = &self.bucket else {
            return Err(BlobError::Bucket(
                "no bucket to move files to: set the blobs.s3 settings first".into(),
            ));
        };
        let mut todo = Vec::new();
        let mut report = Migration::default();
        for (cid, size) in self.list().await? {
            let hash = hash_of(&cid)?;
            if size <= INLINE_MAX || bucket.size(&hash).is_some() {
                continue;
            }
            if self.in_place(&cid).await? {
                report.stayed += 1;
                continue;
            }
            todo.push((cid, hash, size));
        }
        report.files_total = todo.len() as u64;
        report.bytes_total = todo.iter().map(|(_, _, size)| size).sum();
        progress(&report);
        for (cid, hash, size) in todo {
            if !self.put_local_copy(bucket, &cid, hash).await? {
                report.stayed += 1;
                continue;
            }
            // Read back through the bucket, checked against the BLAKE3 tree, before the local
            // copy goes.
            if let Err(problem) = self.verify_one(hash, size).await {
                bucket.remove(&hash).await.ok();
                return Err(BlobError::Bucket(format!(
                    "{cid} did not read back from {} as it was sent ({problem}); it stays on the \
                     local disk",
                    bucket.name()
                )));
            }
            self.drop_local(hash).await;
            report.files += 1;
            report.bytes += size;
            progress(&report);
        }
        Ok(report)
    }

    /// Moves every file in the bucket back to the local disk: each is read from the bucket
    /// (checked against its hash as it comes), stored and committed locally, and only then
    /// removed from the bucket (or, with `blobs.s3.shared`, only forgotten). Resumable like
    /// [`Blobs::migrate_to_bucket`].
    pub async fn migrate_to_local(
        &self,
        mut progress: impl FnMut(&Migration) + Send,
    ) -> Result<Migration, BlobError> {
        let Some(bucket) = &self.bucket else {
            return Ok(Migration::default());
        };
        let todo = bucket.list();
        let mut report = Migration {
            files_total: todo.len() as u64,
            bytes_total: todo.iter().map(|(_, size)| size).sum(),
            ..Migration::default()
        };
        progress(&report);
        for (hash, size) in todo {
            let cid = blob_cid(*hash.as_bytes());
            let chunks = self.read_range(&cid, 0, None).await?;
            let reader = tokio_util::io::StreamReader::new(chunks);
            let added = self.add_reader_to(reader, |_| {}, None).await?;
            let local = self
                .fs
                .status(hash)
                .await
                .map_err(|e| store_error(&format!("looking up {hash}"), e))?;
            if added.size != size || !matches!(local, BlobStatus::Complete { size: s } if s == size)
            {
                return Err(BlobError::Store(format!(
                    "{cid} did not come back whole from {} ({} of {size} bytes); it stays there",
                    bucket.name(),
                    added.size
                )));
            }
            bucket.remove(&hash).await?;
            report.files += 1;
            report.bytes += size;
            progress(&report);
        }
        Ok(report)
    }

    fn fresh(&self) -> MutexGuard<'_, std::collections::HashMap<Hash, std::time::Instant>> {
        self.fresh.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// [`Blobs::keep`] for many files, with one commit to disk for them all: for each, in
    /// order, the file as kept or why it is not (not held completely, say).
    pub async fn keep_many(
        &self,
        cids: &[Cid],
    ) -> Result<Vec<Result<Added, BlobError>>, BlobError> {
        let _shared = self.finalize.read().await;
        // Each file is a round trip to the store's actors: many in flight, not one by one.
        let each = futures::StreamExt::map(
            futures::stream::iter(cids.iter().copied()),
            |cid| async move {
                let hash = hash_of(&cid)?;
                let size = self.complete_size(&cid, hash).await?;
                self.tag(hash, size).await
            },
        );
        let out: Vec<Result<Added, BlobError>> =
            futures::StreamExt::collect(futures::StreamExt::buffered(each, CHECKS_AT_ONCE)).await;
        if out.iter().any(Result::is_ok) {
            self.store
                .sync_db()
                .await
                .map_err(|e| request_error("committing the kept files", e))?;
        }
        drop(_shared);
        if self.bucket.is_some() {
            let mut kept = Vec::new();
            for added in out.iter().flatten() {
                if let Ok(hash) = hash_of(&added.cid) {
                    kept.push((hash, added.size));
                }
            }
            let mut running = futures::stream::FuturesUnordered::new();
            for (hash, size) in kept {
                if running.len() >= MOVES_AT_ONCE {
                    futures::StreamExt::next(&mut running).await;
                }
                running.push(self.move_to_bucket(hash, size));
            }
            while futures::StreamExt::next(&mut running).await.is_some() {}
        }
        Ok(out)
    }

    /// Sets the tag that keeps `hash` and commits it to disk. Call with `finalize` held.
    async fn set_tag(&self, hash: Hash, size: u64) -> Result<Added, BlobError> {
        let added = self.tag(hash, size).await?;
        self.store
            .sync_db()
            .await
            .map_err(|e| request_error(&format!("committing {}", added.cid), e))?;
        Ok(added)
    }

    /// Sets the tag that keeps `hash`, not yet committed to disk. Call with `finalize` held.
    async fn tag(&self, hash: Hash, size: u64) -> Result<Added, BlobError> {
        let cid = blob_cid(*hash.as_bytes());
        {
            let mut fresh = self.fresh();
            let now = std::time::Instant::now();
            if fresh.len() >= FRESH_MAX {
                fresh.retain(|_, at| now.duration_since(*at) < FRESH);
            }
            if fresh.len() < FRESH_MAX {
                fresh.insert(hash, now);
            }
        }
        self.store
            .tags()
            .set(tag_name(&cid), HashAndFormat::raw(hash))
            .await
            .map_err(|e| request_error(&format!("tagging {cid}"), e))?;
        Ok(Added { cid, size })
    }

    /// Runs one GC pass and waits for it to finish.
    async fn collect_garbage(&self) -> Result<(), BlobError> {
        let done = self.gc.request()?;
        match tokio::time::timeout(GC_TIMEOUT, done).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(BlobError::Store(
                "the garbage collector stopped; the store is shutting down".into(),
            )),
            Err(_) => {
                self.gc.close();
                Err(BlobError::Store(format!(
                    "garbage collection did not finish within {} minutes; the iroh-blobs GC \
                     task has probably failed (see the log). Restart the node.",
                    GC_TIMEOUT.as_secs() / 60
                )))
            }
        }
    }

    /// Cleans up after a crash: see "Crash safety" in the module docs.
    async fn recover(&self) -> Result<(), BlobError> {
        self.collect_garbage().await?;
        let live: HashSet<Hash> = self
            .store
            .list()
            .hashes()
            .await
            .map_err(|e| store_error("listing blobs", e))?
            .into_iter()
            .collect();
        let mut removed = 0;
        for path in files_in(&self.uploads_dir).await? {
            if let Some(hash) = hash_in_name(&path).filter(|h| !live.contains(h))
                && path == self.upload_path(&hash)
            {
                removed += usize::from(remove_if_present(&path).await?);
            }
        }
        for path in files_in(&self.paths.data_path).await? {
            let Some(hash) = hash_in_name(&path).filter(|h| !live.contains(h)) else {
                continue;
            };
            let p = &self.paths;
            let known = [
                p.data_path(&hash),
                p.outboard_path(&hash),
                p.sizes_path(&hash),
                p.bitfield_path(&hash),
            ];
            if known.contains(&path) {
                removed += usize::from(remove_if_present(&path).await?);
            }
        }
        if removed > 0 {
            info!(removed, "removed blob files that no entry refers to");
        }
        if let Some(bucket) = &self.bucket {
            // A crash between putting a file into the bucket and tagging it.
            let tagged = self.tagged().await?;
            let mut forgotten = 0;
            for (hash, _) in bucket.list() {
                if !tagged.contains(&hash) && bucket.remove(&hash).await? {
                    forgotten += 1;
                }
            }
            if forgotten > 0 {
                info!(
                    forgotten,
                    "removed files from the bucket that nothing keeps"
                );
            }
        }
        Ok(())
    }

    /// The hashes that tags keep.
    async fn tagged(&self) -> Result<HashSet<Hash>, BlobError> {
        let tags = self
            .fs
            .tags()
            .list()
            .await
            .map_err(|e| store_error("listing tags", e))?;
        let mut tagged = HashSet::new();
        let mut tags = pin!(tags);
        while let Some(tag) = tags.next().await {
            let tag = tag.map_err(|e| store_error("listing tags", e))?;
            tagged.insert(tag.hash);
        }
        Ok(tagged)
    }

    async fn verify_one(&self, hash: Hash, size: u64) -> Result<(), String> {
        if let Some(bucket) = &self.bucket
            && self.in_bucket_hash(&hash)
        {
            bucket.check_object(&hash, size).await?;
        }
        let mut items = pin!(self.store.export_bao(hash, ChunkRanges::all()).stream());
        let mut hasher = blake3::Hasher::new();
        let mut next = 0u64;
        while let Some(item) = items.next().await {
            match item {
                EncodedItem::Leaf(leaf) => {
                    if leaf.offset != next {
                        return Err(format!("expected data at {next}, got {}", leaf.offset));
                    }
                    hasher.update(&leaf.data);
                    next += leaf.data.len() as u64;
                }
                EncodedItem::Error(e) => return Err(io::Error::from(e).to_string()),
                _ => {}
            }
        }
        if next != size {
            return Err(format!("read {next} of {size} bytes"));
        }
        if hasher.finalize().as_bytes() != hash.as_bytes() {
            return Err("the data does not hash to the blob's name".into());
        }
        Ok(())
    }
}

/// Marks a file as being put into the bucket for as long as it lives.
struct Adding {
    adding: Arc<Mutex<std::collections::HashMap<Hash, usize>>>,
    hash: Hash,
}

impl Adding {
    fn new(adding: &Arc<Mutex<std::collections::HashMap<Hash, usize>>>, hash: Hash) -> Self {
        *adding
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(hash)
            .or_default() += 1;
        Self {
            adding: adding.clone(),
            hash,
        }
    }
}

impl Drop for Adding {
    fn drop(&mut self) {
        let mut adding = self.adding.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = adding.get_mut(&self.hash) {
            *n -= 1;
            if *n == 0 {
                adding.remove(&self.hash);
            }
        }
    }
}

/// The tag that keeps a blob.
fn tag_name(cid: &Cid) -> String {
    cid.to_string()
}

fn hash_of(cid: &Cid) -> Result<Hash, BlobError> {
    blob_hash(cid)
        .map(Hash::from_bytes)
        .ok_or(BlobError::NotABlobCid(*cid))
}

/// Follows an import to its end: the temp tag that protects the result, and the size.
async fn run_import(
    items: impl Stream<Item = AddProgressItem>,
    progress: &mut (impl FnMut(u64) + Send),
    what: &str,
) -> Result<(TempTag, u64), BlobError> {
    let mut items = pin!(items);
    let mut size = None;
    while let Some(item) = items.next().await {
        match item {
            AddProgressItem::Size(n) => size = Some(n),
            AddProgressItem::OutboardProgress(n) => progress(n),
            AddProgressItem::Done(tt) => {
                let Some(size) = size else {
                    return Err(BlobError::Store(format!("{what}: no size reported")));
                };
                progress(size);
                return Ok((tt, size));
            }
            AddProgressItem::Error(e) => return Err(io_error(what, e)),
            _ => {}
        }
    }
    Err(BlobError::Store(format!("{what}: ended without a result")))
}

/// The part of `data` (which starts at `offset`) that lies in `start..end`.
fn clip(offset: u64, data: Bytes, start: u64, end: u64) -> Option<Bytes> {
    let data_end = offset + data.len() as u64;
    let from = start.max(offset);
    let to = end.min(data_end);
    if from >= to {
        return None;
    }
    let from = usize::try_from(from - offset).ok()?;
    let to = usize::try_from(to - offset).ok()?;
    Some(data.slice(from..to))
}

/// A file name that no other call (in this or another process) produces.
fn unique_name(kind: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{kind}-{}-{nanos:x}-{n}.part", std::process::id())
}

/// The hash in a file name `<64 hex digits>.<extension>`.
fn hash_in_name(path: &Path) -> Option<Hash> {
    let stem = path.file_stem()?.to_str()?;
    let bytes: [u8; 32] = hex::decode(stem).ok()?.try_into().ok()?;
    Some(Hash::from_bytes(bytes))
}

async fn files_in(dir: &Path) -> Result<Vec<PathBuf>, BlobError> {
    let read_error = |e| io_error(format!("reading {}", dir.display()), e);
    let mut entries = tokio::fs::read_dir(dir).await.map_err(read_error)?;
    let mut files = Vec::new();
    while let Some(entry) = entries.next_entry().await.map_err(read_error)? {
        if entry.file_type().await.is_ok_and(|t| t.is_file()) {
            files.push(entry.path());
        }
    }
    Ok(files)
}

/// Removes a file; `false` if there was none.
async fn remove_if_present(path: &Path) -> Result<bool, BlobError> {
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_error(format!("removing {}", path.display()), e)),
    }
}

/// Files are moved from the temp dir into `dir`, which only works within one file system.
async fn check_same_file_system(tmp_dir: &Path, dir: &Path) -> Result<(), BlobError> {
    let probe = tmp_dir.join(unique_name("upload-probe"));
    let target = dir.join(format!(".{}", unique_name("probe")));
    tokio::fs::write(&probe, b"")
        .await
        .map_err(|e| io_error(format!("writing to {}", tmp_dir.display()), e))?;
    let moved = tokio::fs::rename(&probe, &target).await;
    remove_if_present(&probe).await?;
    remove_if_present(&target).await?;
    moved.map_err(|e| {
        io_error(
            format!(
                "moving a file from {} to {} failed; the temp dir and the blob dir must be on \
                 the same file system",
                tmp_dir.display(),
                dir.display()
            ),
            e,
        )
    })
}

/// Removes a file when dropped, unless disarmed.
struct RemoveOnDrop(Option<PathBuf>);

impl RemoveOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(path) = self.0.take()
            && let Err(e) = std::fs::remove_file(&path)
            && e.kind() != io::ErrorKind::NotFound
        {
            warn!(path = %path.display(), "cannot remove temp file: {e}");
        }
    }
}

/// The temp file that an export writes, next to its destination; removed unless finished.
struct ExportFile {
    temp: PathBuf,
    dest: PathBuf,
    guard: RemoveOnDrop,
    file: Arc<std::fs::File>,
}

impl ExportFile {
    /// Creates the temp file for `dest` (and `dest`'s missing folders).
    async fn create(dest: &Path) -> Result<Self, BlobError> {
        let dest = std::path::absolute(dest)
            .map_err(|e| io_error(format!("resolving {}", dest.display()), e))?;
        let (Some(dir), Some(name)) = (dest.parent(), dest.file_name()) else {
            return Err(io_error(
                format!("cannot export to {}", dest.display()),
                io::Error::new(io::ErrorKind::InvalidInput, "not a file path"),
            ));
        };
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| io_error(format!("creating {}", dir.display()), e))?;
        let temp = dir.join(format!(
            ".{}.{}",
            name.to_string_lossy(),
            unique_name("export")
        ));
        // Created in this poll, not on the blocking pool, for the reason `create_temp` gives.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(|e| io_error(format!("creating {}", temp.display()), e))?;
        Ok(Self {
            guard: RemoveOnDrop(Some(temp.clone())),
            temp,
            dest,
            file: Arc::new(file),
        })
    }

    /// Copies bytes `range` of `src` to the same place in the temp file, with the kernel, in
    /// pieces of at most [`COPY_PIECE`].
    async fn copy_from(
        &mut self,
        src: &Arc<std::fs::File>,
        range: std::ops::Range<u64>,
    ) -> Result<(), BlobError> {
        let mut at = range.start;
        while at < range.end {
            let piece = at..range.end.min(at.saturating_add(COPY_PIECE));
            let (from, to) = (src.clone(), self.file.clone());
            let len = piece.end - piece.start;
            let copied = on_blocking_pool(move || copy_range(&from, &to, piece)).await;
            match copied {
                Ok(n) if n == len => {}
                Ok(n) => {
                    return Err(BlobError::Store(format!(
                        "the store's file ended early: {n} of {len} bytes at byte {at}"
                    )));
                }
                Err(e) => {
                    return Err(io_error(format!("copying into {}", self.temp.display()), e));
                }
            }
            at += len;
        }
        Ok(())
    }

    /// Renames the complete temp file to the destination.
    ///
    /// The copy is not forced to disk first: like `cp`, the file system writes it back in its
    /// own time. It is a copy of a blob the store keeps durably, and a crash before write-back
    /// loses only the copy (run the export again); forcing it out cost 2 s of a 1 GiB `get`
    /// here, four times the copy itself (BENCHMARKS.md, issue 21).
    async fn finish(self) -> Result<(), BlobError> {
        tokio::fs::rename(&self.temp, &self.dest)
            .await
            .map_err(|e| {
                io_error(
                    format!("moving {} to {}", self.temp.display(), self.dest.display()),
                    e,
                )
            })?;
        self.guard.disarm();
        Ok(())
    }
}

/// Copies bytes `range` of `from` to the same offsets of `to`; returns the bytes copied, fewer
/// only if `from` ends early. `std::io::copy` between files is `copy_file_range` on Linux:
/// the kernel copies (or, where the file system can, shares) the data without a pass through
/// this process. Both files' positions are moved: one copy at a time per file.
fn copy_range(
    from: &std::fs::File,
    to: &std::fs::File,
    range: std::ops::Range<u64>,
) -> io::Result<u64> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let (mut from, mut to) = (from, to);
    from.seek(SeekFrom::Start(range.start))?;
    to.seek(SeekFrom::Start(range.start))?;
    io::copy(&mut from.take(range.end - range.start), &mut to)
}

/// Runs blocking file I/O on tokio's blocking pool.
async fn on_blocking_pool<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)))
}

/// The byte ranges that `ranges` cover in a blob of `size` bytes.
fn byte_ranges(ranges: &ChunkRanges, size: u64) -> Vec<std::ops::Range<u64>> {
    let bytes = |chunk: u64| chunk.saturating_mul(1024).min(size);
    ranges
        .boundaries()
        .chunks(2)
        .filter_map(|pair| {
            let start = bytes(pair.first()?.0);
            let end = pair.get(1).map_or(size, |end| bytes(end.0));
            (start < end).then_some(start..end)
        })
        .collect()
}

/// Whether two metadata describe the same file.
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        a.dev() == b.dev() && a.ino() == b.ino()
    }
    #[cfg(not(unix))]
    {
        a.len() == b.len() && a.modified().ok() == b.modified().ok()
    }
}

/// Runs the iroh-blobs GC only on request.
///
/// The store's GC task calls the protect callback before each pass and starts the pass when the
/// returned future resolves. The callback waits for a request, so a pass runs only when one was
/// made; the next call of the callback means that the pass has finished, which answers the
/// requests it served.
#[derive(Default)]
struct GcDriver {
    state: Mutex<GcState>,
}

#[derive(Default)]
struct GcState {
    /// Opens the waiting callback.
    gate: Option<oneshot::Sender<()>>,
    /// Requests for the next pass.
    pending: Vec<oneshot::Sender<()>>,
    /// Requests served by the pass in progress.
    running: Vec<oneshot::Sender<()>>,
    /// No more passes: the store is shutting down, or the GC task failed.
    closed: bool,
}

type ProtectFuture<'a> = Pin<Box<dyn Future<Output = ProtectOutcome> + Send + Sync + 'a>>;

fn protect_callback(driver: Arc<GcDriver>) -> ProtectCb {
    fn coerce<F>(f: F) -> F
    where
        F: for<'a> Fn(&'a mut HashSet<Hash>) -> ProtectFuture<'a> + Send + Sync + 'static,
    {
        f
    }
    Arc::new(coerce(move |_live| driver.before_pass()))
}

impl GcDriver {
    fn lock(&self) -> MutexGuard<'_, GcState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks for a GC pass; the receiver is answered when one that started after this call ends.
    fn request(&self) -> Result<oneshot::Receiver<()>, BlobError> {
        let mut state = self.lock();
        if state.closed {
            return Err(BlobError::Store(
                "the garbage collector is stopped; the store was shut down or GC failed".into(),
            ));
        }
        let (tx, rx) = oneshot::channel();
        state.pending.push(tx);
        if let Some(gate) = state.gate.take() {
            gate.send(()).ok();
        }
        Ok(rx)
    }

    /// Stops serving requests; waiting requests fail.
    fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.gate = None;
        state.pending.clear();
        state.running.clear();
    }

    /// The protect callback: resolves when the next pass may start.
    fn before_pass(self: &Arc<Self>) -> ProtectFuture<'static> {
        let opened = {
            let mut state = self.lock();
            for done in state.running.drain(..) {
                done.send(()).ok();
            }
            if state.closed {
                // Park the GC task for good: returning would start a pass or, with `Abort`,
                // spin.
                return Box::pin(std::future::pending());
            }
            if !state.pending.is_empty() {
                state.running = std::mem::take(&mut state.pending);
                debug!("gc pass starts");
                return Box::pin(std::future::ready(ProtectOutcome::Continue));
            }
            let (tx, rx) = oneshot::channel();
            state.gate = Some(tx);
            rx
        };
        let this = self.clone();
        Box::pin(async move {
            if opened.await.is_err() {
                return std::future::pending().await;
            }
            let mut state = this.lock();
            state.running = std::mem::take(&mut state.pending);
            debug!("gc pass starts");
            ProtectOutcome::Continue
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_cuts_to_the_range() {
        let data = Bytes::from_static(b"0123456789");
        assert_eq!(
            clip(100, data.clone(), 0, 1000).as_deref(),
            Some(&b"0123456789"[..])
        );
        assert_eq!(
            clip(100, data.clone(), 103, 106).as_deref(),
            Some(&b"345"[..])
        );
        assert_eq!(
            clip(100, data.clone(), 95, 102).as_deref(),
            Some(&b"01"[..])
        );
        assert_eq!(
            clip(100, data.clone(), 108, 200).as_deref(),
            Some(&b"89"[..])
        );
        assert_eq!(clip(100, data.clone(), 110, 200), None);
        assert_eq!(clip(100, data, 0, 100), None);
    }

    /// Deterministic bytes that do not compress (BLAKE3's output stream).
    fn bytes_of(len: usize, seed: &str) -> Vec<u8> {
        let mut out = vec![0u8; len];
        blake3::Hasher::new()
            .update(seed.as_bytes())
            .finalize_xof()
            .fill(&mut out);
        out
    }

    /// The names in `dir`, sorted.
    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    async fn open_in(dir: &Path) -> Blobs {
        Blobs::open(&dir.join("blobs"), &dir.join("tmp"))
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn export_copies_owned_inline_and_in_place_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = open_in(dir.path()).await;
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).unwrap();

        // Owned by the store: the kernel copies the store's file.
        let large = bytes_of(3 * 1024 * 1024 + 17, "owned");
        let owned = blobs.add_bytes(Bytes::from(large.clone())).await.unwrap();
        assert!(blobs.owned_file(&owned.cid).await.unwrap().is_some());
        let dest = out.join("owned.bin");
        assert_eq!(blobs.export(&owned.cid, &dest).await.unwrap(), owned.size);
        assert_eq!(std::fs::read(&dest).unwrap(), large);

        // Small: inside the database.
        let small = blobs.add_bytes(Bytes::from_static(b"tiny")).await.unwrap();
        assert!(blobs.owned_file(&small.cid).await.unwrap().is_none());
        let dest = out.join("small.bin");
        assert_eq!(blobs.export(&small.cid, &dest).await.unwrap(), 4);
        assert_eq!(std::fs::read(&dest).unwrap(), b"tiny");

        // The empty blob.
        let empty = blobs.add_bytes(Bytes::new()).await.unwrap();
        let dest = out.join("empty.bin");
        assert_eq!(blobs.export(&empty.cid, &dest).await.unwrap(), 0);
        assert_eq!(std::fs::read(&dest).unwrap(), b"");

        // Imported in place: read through the store and checked.
        let original = dir.path().join("original.bin");
        let data = bytes_of(200 * 1024 + 3, "in place");
        std::fs::write(&original, &data).unwrap();
        let in_place = blobs
            .add_path(&original, ImportMode::InPlace, |_| {})
            .await
            .unwrap();
        assert!(blobs.in_place(&in_place.cid).await.unwrap());
        assert!(blobs.owned_file(&in_place.cid).await.unwrap().is_none());
        let dest = out.join("in-place.bin");
        assert_eq!(
            blobs.export(&in_place.cid, &dest).await.unwrap(),
            in_place.size
        );
        assert_eq!(std::fs::read(&dest).unwrap(), data);
        assert_eq!(
            names_in(&out),
            ["empty.bin", "in-place.bin", "owned.bin", "small.bin"]
        );

        // Changed since: the export fails and leaves nothing behind.
        let mut changed = data.clone();
        changed[100 * 1024] ^= 1;
        std::fs::write(&original, &changed).unwrap();
        let dest = out.join("changed.bin");
        let err = blobs.export(&in_place.cid, &dest).await.unwrap_err();
        assert!(matches!(err, BlobError::InPlaceChanged(_)), "{err}");
        assert!(!dest.exists());
        assert_eq!(
            names_in(&out),
            ["empty.bin", "in-place.bin", "owned.bin", "small.bin"]
        );
        blobs.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_failed_export_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = open_in(dir.path()).await;
        let missing = blob_cid(*Hash::new(b"not stored").as_bytes());
        let dest = dir.path().join("sub").join("out.bin");
        for result in [
            blobs.export(&missing, &dest).await,
            blobs
                .export_arriving(&missing, &dest, Duration::from_secs(1))
                .await,
        ] {
            assert!(matches!(result, Err(BlobError::NotFound(_))), "{result:?}");
        }
        assert!(!dest.parent().unwrap().exists());
        blobs.shutdown().await.unwrap();
    }

    /// Stores `ranges` of `data` in `blobs` as a fetch would: verified bao from another store.
    async fn arrive(blobs: &Blobs, source: &Blobs, hash: Hash, ranges: ChunkRanges) {
        let bao = source
            .store()
            .export_bao(hash, ranges.clone())
            .bao_to_vec()
            .await
            .unwrap();
        blobs
            .store()
            .import_bao_bytes(hash, ranges, bao)
            .await
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn export_arriving_writes_the_file_as_it_comes_in() {
        let dir = tempfile::tempdir().unwrap();
        let source = open_in(&dir.path().join("source")).await;
        let blobs = Arc::new(open_in(&dir.path().join("receiver")).await);
        let data = bytes_of(5 * 1024 * 1024 + 1000, "arriving");
        let added = source.add_bytes(Bytes::from(data.clone())).await.unwrap();
        let hash = hash_of(&added.cid).unwrap();
        let chunks = (data.len() as u64).div_ceil(1024);

        // The middle first (as a fetch split among peers does), then the start, then the end.
        arrive(&blobs, &source, hash, ChunkRanges::chunks(2048..4096)).await;
        let dest = dir.path().join("out.bin");
        let export = tokio::spawn({
            let (blobs, dest, cid) = (blobs.clone(), dest.clone(), added.cid);
            async move {
                blobs
                    .export_arriving(&cid, &dest, Duration::from_secs(30))
                    .await
            }
        });
        // It waits for the rest, and `dest` stays absent meanwhile.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!export.is_finished());
        assert!(!dest.exists());
        arrive(&blobs, &source, hash, ChunkRanges::chunks(..2048)).await;
        arrive(&blobs, &source, hash, ChunkRanges::chunks(4096..chunks)).await;
        let size = tokio::time::timeout(Duration::from_secs(30), export)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(size, data.len() as u64);
        assert_eq!(std::fs::read(&dest).unwrap(), data);
        assert_eq!(names_in(dir.path()), ["out.bin", "receiver", "source"]);

        // Held now: exported as any held file.
        let again = dir.path().join("again.bin");
        assert_eq!(
            blobs
                .export_arriving(&added.cid, &again, Duration::from_secs(1))
                .await
                .unwrap(),
            size
        );
        assert_eq!(std::fs::read(&again).unwrap(), data);
        Arc::into_inner(blobs).unwrap().shutdown().await.unwrap();
        source.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn export_arriving_gives_up_when_the_file_stops_coming() {
        let dir = tempfile::tempdir().unwrap();
        let source = open_in(&dir.path().join("source")).await;
        let blobs = open_in(&dir.path().join("receiver")).await;
        let data = bytes_of(1024 * 1024, "stalls");
        let added = source.add_bytes(Bytes::from(data)).await.unwrap();
        let hash = hash_of(&added.cid).unwrap();
        arrive(&blobs, &source, hash, ChunkRanges::chunks(..300)).await;
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        let err = blobs
            .export_arriving(&added.cid, &out.join("x.bin"), Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(matches!(err, BlobError::Stalled { .. }), "{err}");
        // Neither the file nor its temp file is left.
        assert!(names_in(&out).is_empty(), "{:?}", names_in(&out));
        blobs.shutdown().await.unwrap();
        source.shutdown().await.unwrap();
    }

    #[test]
    fn copy_range_copies_to_the_same_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let data = bytes_of(100_000, "ranges");
        std::fs::write(dir.path().join("from"), &data).unwrap();
        let from = std::fs::File::open(dir.path().join("from")).unwrap();
        let to = std::fs::File::create(dir.path().join("to")).unwrap();
        assert_eq!(copy_range(&from, &to, 60_000..100_000).unwrap(), 40_000);
        assert_eq!(copy_range(&from, &to, 0..60_000).unwrap(), 60_000);
        // Past the end of `from`: fewer bytes.
        assert_eq!(copy_range(&from, &to, 90_000..110_000).unwrap(), 10_000);
        assert_eq!(std::fs::read(dir.path().join("to")).unwrap(), data);
    }

    #[test]
    fn byte_ranges_of_chunks() {
        let size = 10 * 1024 + 5;
        assert_eq!(byte_ranges(&ChunkRanges::all(), size), vec![0..size]);
        assert_eq!(
            byte_ranges(&ChunkRanges::chunks(2..4), size),
            vec![2048..4096]
        );
        let two = ChunkRanges::chunks(..1) | ChunkRanges::chunks(10..);
        assert_eq!(byte_ranges(&two, size), vec![0..1024, 10240..size]);
        assert_eq!(byte_ranges(&ChunkRanges::chunks(20..30), size), vec![]);
        assert!(byte_ranges(&ChunkRanges::empty(), size).is_empty());
    }

    #[test]
    fn hash_in_name_reads_hex_stems() {
        let hash = Hash::new(b"x");
        let path = PathBuf::from(format!("/a/{}.obao4", hash.to_hex()));
        assert_eq!(hash_in_name(&path), Some(hash));
        assert_eq!(hash_in_name(Path::new("/a/upload-1.part")), None);
    }
}

//! Files whose bytes live in an S3-compatible bucket (`blobs.store: s3`).
//!
//! # Layout
//!
//! ```text
//! <bucket>/<prefix>/blobs/<BLAKE3 hex>   the file's bytes, nothing else (any S3 tool reads them)
//! <repo>/blobs/s3/<BLAKE3 hex>.obao4     the file's size (8 bytes, little endian) and its BLAKE3
//!                                        outboard (pre-order, 16 KiB chunk groups, as iroh-blobs
//!                                        keeps it): what verified reads and peers need
//! <repo>/blobs/s3/uploads/<id>           an upload in flight: its key and multipart id
//! ```
//!
//! The outboard is about 0.4 % of the file and stays on the node's disk: serving a range to a
//! peer or the gateway needs the tree nodes above it before the bytes, and a round trip to the
//! bucket for each would cost more than the bytes themselves. The objects hold only the bytes,
//! so the bucket stays readable with any S3 tool and a file's object is the same whichever
//! node wrote it.
//!
//! An index file's presence is what says "this node holds that file in the bucket"; the set is
//! read at start and kept in memory.
//!
//! # Writing
//!
//! A file is hashed first (its BLAKE3 outboard, one pass over a local file), since its name is
//! its hash and S3 fixes an object's name when an upload starts. If the bucket already has
//! an object of that name and size (another node, or an earlier run, wrote it) nothing is sent.
//! Otherwise it is sent in parts of [`PART`] bytes, [`PARTS_AT_ONCE`] at a time, and hashed
//! again as it is read, so what reaches the bucket is what was hashed; a file that changed
//! between the two passes is refused and its upload aborted. Files of up to one part go in one
//! conditional `PUT` (`If-None-Match: *`); multipart uploads are completed without the
//! condition, which object_store does not offer for them, and overwriting an object with the
//! same bytes under the same name changes nothing.
//!
//! An upload is written down under `uploads/` before it starts and forgotten once it is
//! complete or aborted. A process killed in between leaves no object (an unfinished multipart
//! upload is not one) and the next start aborts what is written down, so the bucket does not
//! keep the parts either.
//!
//! # Reading
//!
//! Reads go through [`ObjectReader`], which fetches aligned windows of [`WINDOW`] bytes with
//! ranged `GET`s, [`WINDOWS_AHEAD`] ahead of the reader, and every chunk group is checked
//! against the outboard before it is used (by the same bao-tree code iroh-blobs uses for its
//! own files), so an object changed or damaged in the bucket gives an error, never wrong bytes.

use std::{
    collections::{HashMap, VecDeque},
    io::{self, Read as _},
    ops::Range,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError, RwLock},
    time::Duration,
};

use bao_tree::{
    BaoTree,
    io::{
        mixed::ReadBytesAt,
        outboard::{PreOrderMemOutboard, PreOrderOutboard},
        sync::CreateOutboard,
    },
};
use bytes::Bytes;
use futures::{StreamExt as _, TryStreamExt as _};
use iroh_blobs::{Hash, store::IROH_BLOCK_SIZE};
use mnode_config::S3Config;
use object_store::{
    ClientOptions, ObjectStore, ObjectStoreExt as _, PutMode, PutOptions, PutPayload, RetryConfig,
    aws::{AmazonS3, AmazonS3Builder, S3ConditionalPut},
    multipart::{MultipartStore, PartId},
    path::Path as Key,
};
use tokio::runtime::Handle;
use tracing::{debug, info, warn};

use super::{BlobError, io_error};

/// Size of one part of a multipart upload, and the largest file sent in one `PUT`.
pub(crate) const PART: u64 = 16 << 20;
/// Parts of one upload in flight at once.
const PARTS_AT_ONCE: usize = 4;
/// A read fetches this many bytes at a time (a multiple of the 16 KiB chunk group).
pub(crate) const WINDOW: u64 = 8 << 20;
/// Windows fetched ahead of a sequential reader.
const WINDOWS_AHEAD: usize = 3;
/// Sub-directory of the index for uploads in flight.
const UPLOADS: &str = "uploads";

/// The bucket and this node's index of what it holds there.
pub(crate) struct Bucket {
    store: Arc<AmazonS3>,
    /// `<prefix>/blobs`.
    objects: Key,
    /// The index: `<hash>.obao4` files.
    dir: PathBuf,
    uploads: PathBuf,
    /// The files held in the bucket, and their sizes.
    held: RwLock<HashMap<Hash, u64>>,
    shared: bool,
    /// `s3://bucket/prefix at endpoint`, for messages.
    name: String,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket")
            .field("name", &self.name)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Bucket {
    /// Connects to the bucket `config` names, with the index in `dir`: checks that the bucket
    /// answers, reads the index and aborts the uploads a crash left.
    pub(crate) async fn open(config: &S3Config, dir: &Path) -> Result<Self, BlobError> {
        let name = describe(config);
        if config.bucket.is_empty() {
            return Err(BlobError::Bucket(
                "blobs.store is s3, but blobs.s3.bucket is empty: name the bucket (it must exist)"
                    .into(),
            ));
        }
        let timeout = Duration::from_secs(config.timeout_secs.max(1));
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_virtual_hosted_style_request(!config.path_style)
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            // Bodies are not hashed into the request's signature (a SHA-256 of every byte
            // sent, a quarter of `mnode add`'s CPU): what is stored is checked against its
            // BLAKE3 tree whenever it is read, which a signature would not add to.
            .with_unsigned_payload(true)
            .with_client_options(
                ClientOptions::new()
                    .with_timeout(timeout)
                    .with_connect_timeout(timeout.min(Duration::from_secs(10))),
            )
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: timeout * 2,
                ..RetryConfig::default()
            });
        if !config.endpoint.is_empty() {
            builder = builder
                .with_endpoint(&config.endpoint)
                .with_allow_http(config.endpoint.starts_with("http://"));
        }
        if !config.access_key_id.is_empty() {
            builder = builder.with_access_key_id(&config.access_key_id);
        }
        if !config.secret_access_key.is_empty() {
            builder = builder.with_secret_access_key(&config.secret_access_key);
        }
        let store = builder
            .build()
            .map_err(|e| BlobError::Bucket(format!("cannot use {name}: {e}")))?;
        let prefix = config.prefix.trim_matches('/');
        let objects = if prefix.is_empty() {
            Key::from("blobs")
        } else {
            Key::from(format!("{prefix}/blobs"))
        };
        let uploads = dir.join(UPLOADS);
        tokio::fs::create_dir_all(&uploads)
            .await
            .map_err(|e| io_error(format!("creating {}", uploads.display()), e))?;
        let bucket = Self {
            store: Arc::new(store),
            objects,
            dir: dir.to_owned(),
            uploads,
            held: RwLock::new(HashMap::new()),
            shared: config.shared,
            name,
        };
        // One request that needs the bucket, the credentials and the network to be right.
        bucket
            .store
            .list_with_delimiter(Some(&bucket.objects))
            .await
            .map_err(|e| bucket.error("cannot reach", e))?;
        bucket.load().await?;
        bucket.abort_leftovers().await?;
        Ok(bucket)
    }

    /// Reads the index into memory.
    async fn load(&self) -> Result<(), BlobError> {
        let dir = self.dir.clone();
        let held = tokio::task::spawn_blocking(move || -> Result<HashMap<Hash, u64>, BlobError> {
            let read_error = |e| io_error(format!("reading {}", dir.display()), e);
            let mut held = HashMap::new();
            for entry in std::fs::read_dir(&dir).map_err(read_error)? {
                let path = entry.map_err(read_error)?.path();
                let Some(hash) = hash_in_name(&path) else {
                    if path.extension().is_some_and(|e| e == "part") {
                        // An index file a crash interrupted before it was moved into place.
                        std::fs::remove_file(&path).ok();
                    }
                    continue;
                };
                let mut size = [0u8; 8];
                match std::fs::File::open(&path).and_then(|mut f| f.read_exact(&mut size)) {
                    Ok(()) => {
                        held.insert(hash, u64::from_le_bytes(size));
                    }
                    Err(e) => {
                        warn!(path = %path.display(), "skipping an unreadable index file: {e}")
                    }
                }
            }
            Ok(held)
        })
        .await
        .map_err(|e| BlobError::Store(format!("reading the bucket index: {e}")))??;
        info!(files = held.len(), bucket = %self.name, "files in the bucket");
        *self.held.write().unwrap_or_else(PoisonError::into_inner) = held;
        Ok(())
    }

    /// Aborts the multipart uploads written down under `uploads/` (a crash interrupted them).
    async fn abort_leftovers(&self) -> Result<(), BlobError> {
        let read_error = |e| io_error(format!("reading {}", self.uploads.display()), e);
        let mut entries = tokio::fs::read_dir(&self.uploads)
            .await
            .map_err(read_error)?;
        while let Some(entry) = entries.next_entry().await.map_err(read_error)? {
            let path = entry.path();
            let text = tokio::fs::read_to_string(&path).await.unwrap_or_default();
            if let Some((key, id)) = text.split_once('\n') {
                let key = Key::from(key);
                match self
                    .store
                    .abort_multipart(&key, &id.trim().to_owned())
                    .await
                {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                        info!(%key, "aborted an upload a crash interrupted");
                    }
                    Err(e) => {
                        // Keep the note: the next start tries again.
                        warn!(%key, "cannot abort an interrupted upload yet: {e}");
                        continue;
                    }
                }
            }
            tokio::fs::remove_file(&path)
                .await
                .map_err(|e| io_error(format!("removing {}", path.display()), e))?;
        }
        Ok(())
    }

    /// `s3://bucket/prefix at endpoint`.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The size of a file held in the bucket.
    pub(crate) fn size(&self, hash: &Hash) -> Option<u64> {
        self.read_held().get(hash).copied()
    }

    /// Every file held in the bucket, and its size.
    pub(crate) fn list(&self) -> Vec<(Hash, u64)> {
        self.read_held().iter().map(|(h, s)| (*h, *s)).collect()
    }

    fn read_held(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Hash, u64>> {
        self.held.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn key(&self, hash: &Hash) -> Key {
        self.objects.clone().join(hash.to_hex().to_string())
    }

    fn index_path(&self, hash: &Hash) -> PathBuf {
        self.dir.join(format!("{}.obao4", hash.to_hex()))
    }

    fn error(&self, doing: &str, e: object_store::Error) -> BlobError {
        BlobError::Bucket(format!("{doing} {}: {e}", self.name))
    }

    /// Puts a file into the bucket (see the module docs), given its outboard (from
    /// [`outboard_of_file`] or [`outboard_of_bytes`]), and counts it as held. The file is
    /// only read; one that no longer hashes to `outboard`'s root is refused.
    pub(crate) async fn put(
        &self,
        source: Source<'_>,
        outboard: PreOrderMemOutboard,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(Hash, u64), BlobError> {
        let hash = Hash::from_bytes(*outboard.root.as_bytes());
        let size = outboard.tree.size();
        let key = self.key(&hash);
        // Asked even for a file held already: adding it again repairs a lost object.
        if !self.present(&key, size).await? {
            match source {
                Source::File(path) if size <= PART => {
                    let data = tokio::fs::read(path)
                        .await
                        .map_err(|e| io_error(format!("reading {}", path.display()), e))?;
                    let data = Bytes::from(data);
                    if blake3::hash(&data).as_bytes() != hash.as_bytes() {
                        return Err(changed(path));
                    }
                    self.put_small(&key, data).await?;
                }
                Source::File(path) => self.put_parts(&key, path, size, hash, progress).await?,
                Source::Bytes(data) if size <= PART => self.put_small(&key, data).await?,
                Source::Bytes(data) => {
                    let upload = self.begin(&key).await?;
                    let parts = (0..size.div_ceil(PART)).map(|i| {
                        let start = (i * PART) as usize;
                        let end = ((i + 1) * PART).min(size) as usize;
                        Ok::<_, BlobError>(data.slice(start..end))
                    });
                    let sent = self
                        .send_parts(&key, &upload, futures::stream::iter(parts), progress)
                        .await;
                    self.finish(&key, upload, sent).await?;
                }
            }
            progress(size);
            debug!(%key, size, "stored in the bucket");
        }
        if self.size(&hash).is_none() {
            self.remember(hash, outboard).await?;
        }
        Ok((hash, size))
    }

    /// Whether the bucket has an object named `key` of `size` bytes already.
    async fn present(&self, key: &Key, size: u64) -> Result<bool, BlobError> {
        match self.store.head(key).await {
            Ok(meta) if meta.size == size => Ok(true),
            Ok(meta) => {
                warn!(%key, found = meta.size, expected = size, "replacing a damaged object");
                Ok(false)
            }
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.error("cannot look into", e)),
        }
    }

    /// One conditional `PUT`: an object already there (same name, so same bytes) is success.
    async fn put_small(&self, key: &Key, data: Bytes) -> Result<(), BlobError> {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self.store.put_opts(key, PutPayload::from(data), opts).await {
            Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(self.error("cannot write to", e)),
        }
    }

    /// Starts a multipart upload, written down so that a crash does not leave it open.
    async fn begin(&self, key: &Key) -> Result<Upload, BlobError> {
        let id = self
            .store
            .create_multipart(key)
            .await
            .map_err(|e| self.error("cannot start an upload to", e))?;
        let note = self.uploads.join(super::unique_name("upload"));
        write_synced(&note, format!("{key}\n{id}").as_bytes()).await?;
        Ok(Upload { id, note })
    }

    /// Sends a file in parts, hashing what it sends; aborts unless it hashes to `hash`.
    async fn put_parts(
        &self,
        key: &Key,
        path: &Path,
        size: u64,
        hash: Hash,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), BlobError> {
        let file = Arc::new(
            std::fs::File::open(path)
                .map_err(|e| io_error(format!("reading {}", path.display()), e))?,
        );
        let id = self.begin(key).await?;
        let hasher = Arc::new(Mutex::new(blake3::Hasher::new()));
        // The parts are read (and hashed) in order, one at a time; sending them overlaps.
        let parts = futures::stream::iter(0..size.div_ceil(PART)).then({
            let hasher = hasher.clone();
            let path = path.to_owned();
            move |i| {
                let file = file.clone();
                let hasher = hasher.clone();
                let path = path.clone();
                async move {
                    tokio::task::spawn_blocking(move || {
                        let range = i * PART..((i + 1) * PART).min(size);
                        let data = read_at(&file, range)
                            .map_err(|e| io_error(format!("reading {}", path.display()), e))?;
                        hasher
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .update(&data);
                        Ok(data)
                    })
                    .await
                    .map_err(|e| BlobError::Store(format!("reading a part: {e}")))?
                }
            }
        });
        let sent = self.send_parts(key, &id, parts, progress).await;
        let same = hasher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .finalize()
            .as_bytes()
            == hash.as_bytes();
        let sent = sent.and_then(|ids| if same { Ok(ids) } else { Err(changed(path)) });
        self.finish(key, id, sent).await
    }

    /// Completes an upload whose parts were all `sent`, or aborts it.
    async fn finish(
        &self,
        key: &Key,
        upload: Upload,
        sent: Result<Vec<PartId>, BlobError>,
    ) -> Result<(), BlobError> {
        match sent {
            Ok(parts) => self.complete(key, upload, parts).await,
            Err(e) => {
                self.abort(key, upload).await;
                Err(e)
            }
        }
    }

    /// Sends `parts`, [`PARTS_AT_ONCE`] at a time; the upload stays open.
    async fn send_parts(
        &self,
        key: &Key,
        upload: &Upload,
        parts: impl futures::Stream<Item = Result<Bytes, BlobError>> + Send,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<PartId>, BlobError> {
        let sent = std::sync::atomic::AtomicU64::new(0);
        let sent = &sent;
        parts
            .enumerate()
            .map(|(i, data)| async move {
                let data = data?;
                let len = data.len() as u64;
                let id = self
                    .store
                    .put_part(key, &upload.id, i, PutPayload::from(data))
                    .await
                    .map_err(|e| self.error("cannot write to", e))?;
                progress(sent.fetch_add(len, std::sync::atomic::Ordering::Relaxed) + len);
                Ok(id)
            })
            .buffered(PARTS_AT_ONCE)
            .try_collect()
            .await
    }

    async fn complete(
        &self,
        key: &Key,
        upload: Upload,
        parts: Vec<PartId>,
    ) -> Result<(), BlobError> {
        let done = self.store.complete_multipart(key, &upload.id, parts).await;
        if let Err(e) = done {
            self.abort(key, upload).await;
            return Err(self.error("cannot finish an upload to", e));
        }
        upload.forget().await;
        Ok(())
    }

    /// Aborts an upload; if the bucket cannot be told now, the note stays for the next start.
    async fn abort(&self, key: &Key, upload: Upload) {
        match self.store.abort_multipart(key, &upload.id).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => upload.forget().await,
            Err(e) => warn!(%key, "cannot abort an upload; the next start tries again: {e}"),
        }
    }

    /// Writes the index file of a file now in the bucket, then counts it as held.
    async fn remember(&self, hash: Hash, outboard: PreOrderMemOutboard) -> Result<(), BlobError> {
        let size = outboard.tree.size();
        let path = self.index_path(&hash);
        let temp = self.dir.join(super::unique_name("index"));
        write_synced(&temp, &outboard.into_inner_with_prefix()).await?;
        tokio::fs::rename(&temp, &path)
            .await
            .map_err(|e| io_error(format!("moving {} into place", temp.display()), e))?;
        self.held
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(hash, size);
        Ok(())
    }

    /// Forgets a file and, unless the bucket is shared, removes its object. `true` if it was
    /// held.
    pub(crate) async fn remove(&self, hash: &Hash) -> Result<bool, BlobError> {
        if self.size(hash).is_none() {
            return Ok(false);
        }
        if !self.shared {
            match self.store.delete(&self.key(hash)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                // Still held; the next GC tries again.
                Err(e) => return Err(self.error("cannot delete from", e)),
            }
        }
        let path = self.index_path(hash);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(format!("removing {}", path.display()), e)),
        }
        self.held
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(hash);
        Ok(true)
    }

    /// The outboard of a file held in the bucket.
    pub(crate) fn outboard(&self, hash: &Hash) -> io::Result<PreOrderMemOutboard> {
        let path = self.index_path(hash);
        let bytes = std::fs::read(&path)?;
        let (size, data) = bytes
            .split_first_chunk::<8>()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "index file too short"))?;
        let tree = BaoTree::new(u64::from_le_bytes(*size), IROH_BLOCK_SIZE);
        if data.len() as u64 != tree.outboard_size() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} has the wrong length", path.display()),
            ));
        }
        Ok(PreOrderMemOutboard {
            root: blake3::Hash::from_bytes(*hash.as_bytes()),
            tree,
            data: data.to_vec(),
        })
    }

    /// A reader of the object of a file held in the bucket, for a blocking thread.
    pub(crate) fn reader(&self, hash: &Hash, size: u64) -> ObjectReader {
        ObjectReader {
            store: self.store.clone(),
            key: self.key(hash),
            name: self.name.clone(),
            size,
            handle: Handle::current(),
            windows: Mutex::new(VecDeque::new()),
        }
    }

    /// Checks that the object of a held file is there with its size: a clear message if not.
    pub(crate) async fn check_object(&self, hash: &Hash, size: u64) -> Result<(), String> {
        let key = self.key(hash);
        match self.store.head(&key).await {
            Ok(meta) if meta.size == size => Ok(()),
            Ok(meta) => Err(format!(
                "the object {key} in {} has {} bytes, not {size}",
                self.name, meta.size
            )),
            Err(object_store::Error::NotFound { .. }) => {
                Err(format!("the object {key} is missing from {}", self.name))
            }
            Err(e) => Err(format!("cannot look into {}: {e}", self.name)),
        }
    }
}

/// An open multipart upload and the note that stands for it.
struct Upload {
    id: String,
    note: PathBuf,
}

impl Upload {
    async fn forget(self) {
        if let Err(e) = tokio::fs::remove_file(&self.note).await {
            warn!(note = %self.note.display(), "cannot remove an upload note: {e}");
        }
    }
}

/// Reads an object in windows, ahead of a sequential reader: [`ReadBytesAt`] for bao-tree's
/// verified traversal, which runs on a blocking thread (it blocks on the fetches).
pub(crate) struct ObjectReader {
    store: Arc<AmazonS3>,
    key: Key,
    name: String,
    size: u64,
    handle: Handle,
    /// Windows fetched or being fetched, by start offset, in order.
    windows: Mutex<VecDeque<Window>>,
}

struct Window {
    start: u64,
    data: WindowData,
}

enum WindowData {
    Fetching(tokio::task::JoinHandle<object_store::Result<Bytes>>),
    Ready(Bytes),
}

impl ObjectReader {
    fn fetch(&self, start: u64) -> Window {
        let range = start..(start + WINDOW).min(self.size);
        let store = self.store.clone();
        let key = self.key.clone();
        Window {
            start,
            data: WindowData::Fetching(
                self.handle
                    .spawn(async move { store.get_range(&key, range).await }),
            ),
        }
    }

    /// The window that starts at `start`, fetched; the ones after it requested.
    fn window(&self, start: u64) -> io::Result<Bytes> {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        while windows.front().is_some_and(|w| w.start != start) {
            windows.pop_front();
        }
        if windows.is_empty() {
            windows.push_back(self.fetch(start));
        }
        // Keep the windows after this one coming.
        let mut next = windows.back().map_or(start, |w| w.start) + WINDOW;
        while windows.len() <= WINDOWS_AHEAD && next < self.size {
            windows.push_back(self.fetch(next));
            next += WINDOW;
        }
        let Some(window) = windows.front_mut() else {
            return Err(io::Error::other("no window"));
        };
        if let WindowData::Fetching(task) = &mut window.data {
            let fetched = self
                .handle
                .block_on(task)
                .map_err(|e| io::Error::other(format!("reading from {}: {e}", self.name)))?;
            let data = fetched.map_err(|e| {
                io::Error::other(format!("reading {} from {}: {e}", self.key, self.name))
            })?;
            window.data = WindowData::Ready(data);
        }
        match &window.data {
            WindowData::Ready(data) => Ok(data.clone()),
            WindowData::Fetching(_) => Err(io::Error::other("window not fetched")),
        }
    }
}

impl Drop for ObjectReader {
    fn drop(&mut self) {
        for window in self
            .windows
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            if let WindowData::Fetching(task) = window.data {
                task.abort();
            }
        }
    }
}

impl ReadBytesAt for ObjectReader {
    fn read_bytes_at(&self, offset: u64, size: usize) -> io::Result<Bytes> {
        let end = offset + size as u64;
        if end > self.size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("read past the end of {}", self.key),
            ));
        }
        let mut out = Vec::new();
        let mut at = offset;
        while at < end {
            let start = at - at % WINDOW;
            let window = self.window(start)?;
            let from = (at - start) as usize;
            let to = ((end - start) as usize).min(window.len());
            if to <= from {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{} in {} is shorter than its file", self.key, self.name),
                ));
            }
            if at == offset && end - start <= window.len() as u64 {
                // The common case: the whole read is in one window, no copy.
                return Ok(window.slice(from..to));
            }
            out.extend_from_slice(&window[from..to]);
            at = start + to as u64;
        }
        Ok(Bytes::from(out))
    }
}

/// How many files the index in `dir` names (0 if there is none).
pub(crate) fn index_count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|e| hash_in_name(&e.path()).is_some())
            .count()
    })
}

/// Where the bytes of a file to put come from.
pub(crate) enum Source<'a> {
    /// A local file, read twice: hashed, then sent (and hashed again).
    File(&'a Path),
    /// Bytes in memory.
    Bytes(Bytes),
}

/// The BLAKE3 outboard of bytes in memory.
pub(crate) async fn outboard_of_bytes(data: Bytes) -> Result<PreOrderMemOutboard, BlobError> {
    tokio::task::spawn_blocking(move || PreOrderMemOutboard::create(&data, IROH_BLOCK_SIZE))
        .await
        .map_err(|e| BlobError::Store(format!("hashing: {e}")))
}

/// The BLAKE3 outboard of a local file; its root is the file's hash.
pub(crate) async fn outboard_of_file(path: &Path) -> Result<PreOrderMemOutboard, BlobError> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let read_error = |e| io_error(format!("reading {}", path.display()), e);
        let file = std::fs::File::open(&path).map_err(read_error)?;
        let size = file.metadata().map_err(read_error)?.len();
        let reader = io::BufReader::with_capacity(1 << 20, file);
        let outboard = PreOrderOutboard::<Vec<u8>>::create_sized(reader, size, IROH_BLOCK_SIZE)
            .map_err(read_error)?;
        Ok(PreOrderMemOutboard {
            root: outboard.root,
            tree: outboard.tree,
            data: outboard.data,
        })
    })
    .await
    .map_err(|e| BlobError::Store(format!("hashing: {e}")))?
}

/// Bytes `range` of a file.
fn read_at(file: &std::fs::File, range: Range<u64>) -> io::Result<Bytes> {
    use std::os::unix::fs::FileExt as _;
    let mut buf = vec![0u8; (range.end - range.start) as usize];
    file.read_exact_at(&mut buf, range.start)?;
    Ok(Bytes::from(buf))
}

/// Writes `data` to a new file at `path` and flushes it to disk.
async fn write_synced(path: &Path, data: &[u8]) -> Result<(), BlobError> {
    use tokio::io::AsyncWriteExt as _;
    let write_error = |e| io_error(format!("writing {}", path.display()), e);
    let mut file = tokio::fs::File::create(path).await.map_err(write_error)?;
    file.write_all(data).await.map_err(write_error)?;
    file.sync_all().await.map_err(write_error)
}

fn changed(path: &Path) -> BlobError {
    io_error(
        format!("adding {}", path.display()),
        io::Error::new(
            io::ErrorKind::InvalidData,
            "the file changed while it was being added; add it again",
        ),
    )
}

fn hash_in_name(path: &Path) -> Option<Hash> {
    let name = path.file_name()?.to_str()?.strip_suffix(".obao4")?;
    let bytes: [u8; 32] = hex::decode(name).ok()?.try_into().ok()?;
    Some(Hash::from_bytes(bytes))
}

fn describe(config: &S3Config) -> String {
    let at = if config.endpoint.is_empty() {
        format!("AWS S3 ({})", config.region)
    } else {
        config.endpoint.clone()
    };
    let prefix = config.prefix.trim_matches('/');
    if prefix.is_empty() {
        format!("s3://{} at {at}", config.bucket)
    } else {
        format!("s3://{}/{prefix} at {at}", config.bucket)
    }
}

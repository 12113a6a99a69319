//! Files' UnixFS views ([`mnode_dag::unixfs`]) from the blob store: built while a file is
//! uploaded, or by reading a held blob once; and the bytes of a view's leaf, read out of the
//! blob it indexes and checked against the leaf's CID before they are served.

use std::{
    io,
    path::Path,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use futures_lite::StreamExt as _;
use mnode_dag::{
    Cid,
    unixfs::{self, Builder, Layout, Leaf, View},
};
use tokio::io::{AsyncRead, ReadBuf};

use super::{Added, BlobError, Blobs, io_error};

/// The size of the reads that build a view from a file on disk (whole leaves).
const READ: usize = 8 << 20;

/// An [`AsyncRead`] that feeds what passes through it to a view [`Builder`].
struct Viewing<R> {
    inner: R,
    builder: Builder,
}

impl<R: AsyncRead + Unpin> AsyncRead for Viewing<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled
            && let Some(new) = buf.filled().get(before..)
        {
            this.builder.update(new);
        }
        polled
    }
}

/// The view of the file at `path`, on a blocking thread (see [`view_of_file`]).
pub(crate) async fn view_of_path(path: &Path) -> Result<View, BlobError> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || view_of_file(&path))
        .await
        .map_err(|e| BlobError::Store(format!("the UnixFS view task failed: {e}")))?
}

/// The UnixFS view of the file at `path` as it is now, read and hashed on all cores at once:
/// each thread reads every n-th [`READ`] bytes and hashes their 1 MiB leaves. SHA-256 is most
/// of a view's cost (more than the BLAKE3 pass of the import beside it), and reading in the
/// same threads overlaps the reads with the hashing.
pub fn view_of_file(path: &Path) -> Result<View, BlobError> {
    use std::os::unix::fs::FileExt as _;

    let what = || format!("reading {} for its UnixFS view", path.display());
    let file = std::fs::File::open(path).map_err(|e| io_error(what(), e))?;
    let size = file.metadata().map_err(|e| io_error(what(), e))?.len();
    let layout = Layout::default();
    let chunk = layout.chunk;
    let per_read = (READ as u64 / chunk).max(1);
    let reads = size.div_ceil(per_read * chunk);
    let threads = (std::thread::available_parallelism().map_or(1, usize::from) as u64)
        .min(reads)
        .max(1);
    let hash = |first: u64| -> io::Result<Vec<Leaf>> {
        // A small file needs a small buffer (a folder's files are mostly small).
        let mut buf = vec![0u8; usize::try_from((per_read * chunk).min(size)).unwrap_or(READ)];
        let mut leaves = Vec::new();
        let mut read = first;
        while read < reads {
            let start = read * per_read * chunk;
            let len = (per_read * chunk).min(size - start);
            let piece = buf
                .get_mut(..usize::try_from(len).unwrap_or(READ))
                .unwrap_or_default();
            file.read_exact_at(piece, start)?;
            for (i, bytes) in piece
                .chunks(usize::try_from(chunk).unwrap_or(READ))
                .enumerate()
            {
                leaves.push(Leaf {
                    cid: unixfs::leaf_cid(bytes),
                    offset: start + i as u64 * chunk,
                    len: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
                });
            }
            read += threads;
        }
        Ok(leaves)
    };
    let parts: Vec<io::Result<Vec<Leaf>>> = std::thread::scope(|s| {
        let hash = &hash;
        let spawned: Vec<_> = (1..threads).map(|t| s.spawn(move || hash(t))).collect();
        let mut parts = vec![hash(0)];
        parts.extend(spawned.into_iter().map(|h| {
            h.join()
                .unwrap_or_else(|_| Err(io::Error::other("a hashing thread panicked")))
        }));
        parts
    });
    let mut leaves = Vec::new();
    for part in parts {
        leaves.extend(part.map_err(|e| io_error(what(), e))?);
    }
    leaves.sort_unstable_by_key(|l| l.offset);
    if leaves.is_empty() {
        leaves.push(Leaf {
            cid: unixfs::leaf_cid(b""),
            offset: 0,
            len: 0,
        });
    }
    Ok(View::from_leaves(leaves, layout))
}

impl Blobs {
    /// Like [`Blobs::add_reader`], and builds the file's UnixFS view from the same bytes as
    /// they pass (a SHA-256 of each 1 MiB leaf; nothing is read twice).
    pub async fn add_reader_viewed<R: AsyncRead + Unpin + Send>(
        &self,
        reader: R,
        progress: impl FnMut(u64) + Send,
    ) -> Result<(Added, View), BlobError> {
        let mut viewing = Viewing {
            inner: reader,
            builder: Builder::new(Layout::default()),
        };
        let added = self.add_reader(&mut viewing, progress).await?;
        Ok((added, viewing.builder.finish()))
    }

    /// Like [`Blobs::add_path_committing`], and builds the file's UnixFS view from a second
    /// read of the file that runs beside the import (on the other core, from the page cache).
    /// If the file changed in between, the view is built again from the stored blob.
    pub async fn add_path_viewed(
        &self,
        path: &Path,
        mode: super::ImportMode,
        commit: super::Commit,
        progress: impl FnMut(u64) + Send,
    ) -> Result<(Added, View), BlobError> {
        let (added, view) = tokio::join!(
            self.add_path_committing(path, mode, commit, progress),
            view_of_path(path)
        );
        let added = added?;
        match view {
            Ok(view) if view.size == added.size => Ok((added, view)),
            _ => {
                let view = self.unixfs_view(&added.cid).await?;
                Ok((added, view))
            }
        }
    }

    /// The UnixFS view of a held blob, built by reading it once: from the store's own file in
    /// large reads where there is one, else through the store's checked chunks.
    pub async fn unixfs_view(&self, cid: &Cid) -> Result<View, BlobError> {
        if let Some((path, size)) = self.owned_file(cid).await? {
            let view = view_of_path(&path).await?;
            if view.size == size {
                return Ok(view);
            }
        }
        let mut builder = Builder::new(Layout::default());
        let mut stream = self.read_range(cid, 0, None).await?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| super::read_error(cid, e))?;
            builder.update(&chunk);
        }
        Ok(builder.finish())
    }

    /// The bytes of the UnixFS leaf `leaf`, `len` bytes at `offset` of the blob `blob`, if the
    /// blob is held and they hash to the leaf's CID (else `None`: the index is stale).
    pub async fn read_leaf(
        &self,
        leaf: &Cid,
        blob: &Cid,
        offset: u64,
        len: u32,
    ) -> Result<Option<Bytes>, BlobError> {
        if !self.has(blob).await? {
            return Ok(None);
        }
        let end = offset + u64::from(len);
        let mut out = Vec::with_capacity(len as usize);
        if len > 0 {
            let mut stream = self.read_range(blob, offset, Some(end)).await?;
            while let Some(chunk) = stream.next().await {
                out.extend_from_slice(&chunk.map_err(|e| super::read_error(blob, e))?);
            }
        }
        if out.len() != len as usize || unixfs::leaf_cid(&out) != *leaf {
            tracing::warn!(%leaf, %blob, offset, len, "a UnixFS leaf does not match its file");
            return Ok(None);
        }
        Ok(Some(Bytes::from(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_read_and_hashed_on_all_cores_has_the_view_of_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mib = 1 << 20;
        // Around a leaf (1 MiB) and a read (8 MiB), and more reads than cores.
        for len in [
            0,
            1,
            mib,
            mib + 1,
            READ,
            READ + 1,
            2 * READ + mib + 5,
            3 * READ,
        ] {
            let data = mnode_dag::testing::noise(len, len as u64);
            let path = dir.path().join(format!("{len}.bin"));
            std::fs::write(&path, &data).unwrap();
            let view = view_of_file(&path).unwrap();
            assert_eq!(view, View::of(&data, Layout::default()), "{len} bytes");
        }
        let gone = view_of_file(&dir.path().join("gone.bin")).unwrap_err();
        assert!(gone.to_string().contains("gone.bin"), "{gone}");
    }
}

//! Files' UnixFS views ([`mnode_dag::unixfs`]) from the blob store: built while a file is
//! uploaded, or by reading a held blob once; and the bytes of a view's leaf, read out of the
//! blob it indexes and checked against the leaf's CID before they are served.

use std::{
    io::{self, Read as _},
    path::Path,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use futures_lite::StreamExt as _;
use mnode_dag::{
    Cid,
    unixfs::{self, Builder, Layout, View},
};
use tokio::io::{AsyncRead, ReadBuf};

use super::{Added, BlobError, Blobs, io_error};

/// The size of the reads that build a view from a file on disk.
const READ: usize = 4 << 20;

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

/// The view of the file at `path`, read in large pieces on a blocking thread.
pub(crate) async fn view_of_path(path: &Path) -> Result<View, BlobError> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let what = || format!("reading {} for its UnixFS view", path.display());
        let mut file = std::fs::File::open(&path).map_err(|e| io_error(what(), e))?;
        let mut builder = Builder::new(Layout::default());
        let mut buf = vec![0u8; READ];
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error(what(), e)),
            };
            builder.update(buf.get(..n).unwrap_or_default());
        }
        Ok(builder.finish())
    })
    .await
    .map_err(|e| BlobError::Store(format!("the UnixFS view task failed: {e}")))?
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

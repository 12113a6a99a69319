//! Sealed files in the blob store ([`mnode_dag::sealed_file`]): sealing while a file is added,
//! and reading any range of the plaintext back out of the stored ciphertext.
//!
//! The store only ever holds the sealed bytes; the key lives in the private record that names
//! the blob, and readers pass it in.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use futures_lite::{Stream, StreamExt as _};
use mnode_dag::{
    Cid,
    sealed_file::{self, FileKey, Opener, SEALED_CHUNK, Sealer},
};
use tokio::io::{AsyncRead, ReadBuf};

use super::{Added, BlobError, Blobs};

/// The bytes read from the inner reader at a time.
const READ: usize = 64 * 1024;

/// An [`AsyncRead`] that yields the sealed form of what `inner` yields.
struct SealingReader<R> {
    inner: R,
    sealer: Option<Sealer>,
    buf: Vec<u8>,
    /// Sealed bytes not handed out yet, from `out_at`.
    out: Vec<u8>,
    out_at: usize,
}

impl<R> SealingReader<R> {
    fn new(inner: R, key: &FileKey) -> Self {
        Self {
            inner,
            sealer: Some(Sealer::new(key)),
            buf: vec![0; READ],
            out: Vec::new(),
            out_at: 0,
        }
    }
}

fn seal_error(e: sealed_file::SealError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e)
}

impl<R: AsyncRead + Unpin> AsyncRead for SealingReader<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        dest: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.out_at < this.out.len() {
                let ready = this.out.get(this.out_at..).unwrap_or_default();
                let n = ready.len().min(dest.remaining());
                dest.put_slice(ready.get(..n).unwrap_or_default());
                this.out_at += n;
                return Poll::Ready(Ok(()));
            }
            this.out.clear();
            this.out_at = 0;
            let Some(sealer) = this.sealer.as_mut() else {
                return Poll::Ready(Ok(()));
            };
            let mut read = ReadBuf::new(&mut this.buf);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                if let Some(sealer) = this.sealer.take() {
                    sealer.finish(&mut this.out).map_err(seal_error)?;
                }
            } else {
                sealer
                    .update(read.filled(), &mut this.out)
                    .map_err(seal_error)?;
            }
        }
    }
}

impl Blobs {
    /// Stores what `reader` yields sealed under `key`, as [`Blobs::add_reader`] stores a plain
    /// upload: the plaintext never reaches the disk. The answer is the sealed blob's CID and
    /// size; `progress` counts sealed bytes.
    pub async fn add_reader_sealed<R: AsyncRead + Unpin + Send>(
        &self,
        reader: R,
        key: &FileKey,
        progress: impl FnMut(u64) + Send,
    ) -> Result<Added, BlobError> {
        self.add_reader(SealingReader::new(reader, key), progress)
            .await
    }

    /// Bytes `start..end` of the file sealed under `key` in blob `cid` (`end` exclusive,
    /// clamped to the file's size; `None` for the end), decrypted chunk by chunk as the stream
    /// is polled. A chunk that does not open (a wrong key, a changed blob) ends the stream with
    /// an `InvalidData` error; nothing unverified is yielded.
    pub async fn read_range_opened(
        &self,
        cid: &Cid,
        key: &FileKey,
        start: u64,
        end: Option<u64>,
    ) -> Result<impl Stream<Item = io::Result<Bytes>> + Send + Unpin + 'static, BlobError> {
        let blob_size = self.size(cid).await?.ok_or(BlobError::NotFound(*cid))?;
        let size = sealed_file::plain_size(blob_size).map_err(|e| BlobError::Sealed {
            cid: *cid,
            detail: e.to_string(),
        })?;
        let end = end.map_or(size, |end| end.min(size));
        if size > 0 && start >= size {
            return Err(BlobError::RangeNotSatisfiable {
                cid: *cid,
                start,
                size,
            });
        }
        let (chunks, span) = sealed_file::chunk_span(size, start, end);
        let sealed = self
            .read_range(cid, span.start, Some(span.end))
            .await?
            .boxed();
        let state = OpenState {
            sealed,
            opener: Opener::new(key, size),
            next: chunks.start,
            held: Vec::with_capacity(SEALED_CHUNK as usize),
            // Plaintext offset of the next chunk's first byte.
            at: chunks.start * sealed_file::CHUNK,
            start,
            end,
            cid: *cid,
            done: end <= start,
        };
        Ok(futures_lite::stream::unfold(state, OpenState::next_chunk).boxed())
    }
}

struct OpenState {
    sealed: futures_lite::stream::Boxed<io::Result<Bytes>>,
    opener: Opener,
    next: u64,
    held: Vec<u8>,
    at: u64,
    start: u64,
    end: u64,
    cid: Cid,
    done: bool,
}

impl OpenState {
    /// The next opened chunk, clipped to the range.
    async fn next_chunk(mut self) -> Option<(io::Result<Bytes>, Self)> {
        loop {
            if self.done {
                return None;
            }
            // Fill one sealed chunk (the last one may be shorter).
            if (self.held.len() as u64) < SEALED_CHUNK {
                match self.sealed.next().await {
                    Some(Ok(bytes)) => {
                        self.held.extend_from_slice(&bytes);
                        if (self.held.len() as u64) < SEALED_CHUNK {
                            continue;
                        }
                    }
                    Some(Err(e)) => {
                        self.done = true;
                        return Some((Err(e), self));
                    }
                    None if self.held.is_empty() => return None,
                    None => {}
                }
            }
            let rest = if self.held.len() as u64 > SEALED_CHUNK {
                self.held.split_off(SEALED_CHUNK as usize)
            } else {
                Vec::new()
            };
            let mut chunk = std::mem::replace(&mut self.held, rest);
            if let Err(e) = self.opener.open(self.next, &mut chunk) {
                self.done = true;
                let error = BlobError::Sealed {
                    cid: self.cid,
                    detail: e.to_string(),
                };
                return Some((Err(io::Error::new(io::ErrorKind::InvalidData, error)), self));
            }
            let from = self.at;
            self.at += chunk.len() as u64;
            self.next += 1;
            if self.at >= self.end {
                self.done = true;
            }
            let lo = self.start.saturating_sub(from) as usize;
            let hi = (self.end.min(self.at) - from) as usize;
            let piece = Bytes::from(chunk).slice(lo.min(hi)..hi);
            if !piece.is_empty() {
                return Some((Ok(piece), self));
            }
        }
    }
}

//! CAR v1: a header naming the roots, then blocks, each as `varint(len) CID bytes`.
//!
//! The reader streams: it holds one block at a time, checks each block against its CID and
//! bounds every length it is told before allocating.

use std::io::{self, BufRead, BufReader, Read, Write};

use serde::{Deserialize, Serialize};

use crate::{
    cbor::{self, DecodeError},
    cids::{self, Cid, CidError},
};

/// Largest header accepted.
pub const MAX_HEADER_LEN: u64 = 1 << 20;
/// Largest block accepted by default (a block is one record or one file in mnode's CARs).
pub const DEFAULT_MAX_BLOCK_LEN: u64 = 64 << 20;

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    roots: Vec<Cid>,
    version: u64,
}

/// Why a CAR could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CarError {
    /// Reading failed.
    #[error("reading the CAR failed: {0}")]
    Io(#[from] io::Error),
    /// The header is not a CAR v1 header.
    #[error("not a CAR v1 file: {0}")]
    Header(String),
    /// A length prefix is malformed or larger than allowed.
    #[error("bad section length at block {index}: {reason}")]
    Length {
        /// Which block (0-based).
        index: u64,
        /// What is wrong.
        reason: String,
    },
    /// A section's CID does not parse.
    #[error("block {index} has an invalid CID: {reason}")]
    Cid {
        /// Which block.
        index: u64,
        /// Why.
        reason: String,
    },
    /// A block does not hash to its CID.
    #[error("block {index}: {error}")]
    Block {
        /// Which block.
        index: u64,
        /// Why.
        error: CidError,
    },
    /// The file ended inside a block.
    #[error("the CAR ends inside block {0}")]
    Truncated(u64),
}

/// Writes a CAR v1 stream.
#[derive(Debug)]
pub struct CarWriter<W: Write> {
    w: W,
}

impl<W: Write> CarWriter<W> {
    /// Starts a CAR with these roots.
    pub fn new(mut w: W, roots: &[Cid]) -> io::Result<Self> {
        let header = cbor::encode(&Header {
            roots: roots.to_vec(),
            version: 1,
        })
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        write_varint(&mut w, header.len() as u64)?;
        w.write_all(&header)?;
        Ok(Self { w })
    }

    /// Appends a block. The caller vouches that `data` hashes to `cid`.
    pub fn write_block(&mut self, cid: &Cid, data: &[u8]) -> io::Result<()> {
        let cid_bytes = cid.to_bytes();
        write_varint(&mut self.w, (cid_bytes.len() + data.len()) as u64)?;
        self.w.write_all(&cid_bytes)?;
        self.w.write_all(data)
    }

    /// Starts a block of `data_len` bytes whose data the caller then writes to the returned
    /// writer (for files too large to hold in memory). The caller vouches for the hash and
    /// must write exactly `data_len` bytes before the next block.
    pub fn begin_block(&mut self, cid: &Cid, data_len: u64) -> io::Result<&mut W> {
        let cid_bytes = cid.to_bytes();
        write_varint(&mut self.w, cid_bytes.len() as u64 + data_len)?;
        self.w.write_all(&cid_bytes)?;
        Ok(&mut self.w)
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }
}

fn write_varint(w: &mut impl Write, n: u64) -> io::Result<()> {
    let mut buf = unsigned_varint::encode::u64_buffer();
    w.write_all(unsigned_varint::encode::u64(n, &mut buf))
}

/// Reads a CAR v1 stream block by block, verifying each.
#[derive(Debug)]
pub struct CarReader<R: Read> {
    r: BufReader<R>,
    roots: Vec<Cid>,
    index: u64,
    max_block_len: u64,
}

impl<R: Read> CarReader<R> {
    /// Reads the header.
    pub fn new(r: R) -> Result<Self, CarError> {
        let mut r = BufReader::new(r);
        let len =
            unsigned_varint::io::read_u64(&mut r).map_err(|e| CarError::Header(e.to_string()))?;
        if len == 0 || len > MAX_HEADER_LEN {
            return Err(CarError::Header(format!(
                "header length {len} is out of range"
            )));
        }
        let mut buf = vec![0; len as usize];
        r.read_exact(&mut buf)
            .map_err(|e| CarError::Header(e.to_string()))?;
        let header: Header =
            cbor::decode(&buf).map_err(|e: DecodeError| CarError::Header(e.to_string()))?;
        if header.version != 1 {
            return Err(CarError::Header(format!(
                "version {} is not supported (only 1)",
                header.version
            )));
        }
        Ok(Self {
            r,
            roots: header.roots,
            index: 0,
            max_block_len: DEFAULT_MAX_BLOCK_LEN,
        })
    }

    /// Sets the largest block accepted.
    pub fn with_max_block_len(mut self, max: u64) -> Self {
        self.max_block_len = max;
        self
    }

    /// The roots named in the header.
    pub fn roots(&self) -> &[Cid] {
        &self.roots
    }

    /// The next block, checked against its CID; `None` at the end.
    pub fn next_block(&mut self) -> Result<Option<(Cid, Vec<u8>)>, CarError> {
        if self.r.fill_buf()?.is_empty() {
            return Ok(None);
        }
        let index = self.index;
        let len = unsigned_varint::io::read_u64(&mut self.r).map_err(|e| match e {
            unsigned_varint::io::ReadError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                CarError::Truncated(index)
            }
            e => CarError::Length {
                index,
                reason: e.to_string(),
            },
        })?;
        // A CIDv1 with a 32-byte digest is 36 bytes; allow for longer CIDs.
        if len == 0 || len > self.max_block_len + 128 {
            return Err(CarError::Length {
                index,
                reason: format!("{len} bytes is out of range"),
            });
        }
        let mut section = vec![0; len as usize];
        self.r
            .read_exact(&mut section)
            .map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => CarError::Truncated(index),
                _ => CarError::Io(e),
            })?;
        let mut cursor = io::Cursor::new(&section[..]);
        let cid = Cid::read_bytes(&mut cursor).map_err(|e| CarError::Cid {
            index,
            reason: e.to_string(),
        })?;
        let data = section.split_off(cursor.position() as usize);
        cids::verify_block(&cid, &data).map_err(|error| CarError::Block { index, error })?;
        self.index += 1;
        Ok(Some((cid, data)))
    }
}

impl<R: Read> Iterator for CarReader<R> {
    type Item = Result<(Cid, Vec<u8>), CarError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_block().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Vec<u8>, Vec<(Cid, Vec<u8>)>) {
        let blocks: Vec<(Cid, Vec<u8>)> = (0..5u8)
            .map(|i| {
                let data = cbor::encode(&ipld_core::ipld!({ "n": i })).unwrap();
                (cids::record_cid(&data), data)
            })
            .chain(std::iter::once((
                cids::blob_cid_of(b"file"),
                b"file".to_vec(),
            )))
            .collect();
        let mut w = CarWriter::new(Vec::new(), &[blocks[0].0]).unwrap();
        for (c, d) in &blocks {
            w.write_block(c, d).unwrap();
        }
        (w.finish().unwrap(), blocks)
    }

    #[test]
    fn round_trips() {
        let (car, blocks) = sample();
        let r = CarReader::new(&car[..]).unwrap();
        assert_eq!(r.roots(), &[blocks[0].0]);
        let read: Vec<_> = r.collect::<Result<_, _>>().unwrap();
        assert_eq!(read, blocks);
    }

    #[test]
    fn rejects_corruption_and_truncation() {
        let (car, _) = sample();
        let mut bad = car.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let err = CarReader::new(&bad[..])
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap_err();
        assert!(matches!(err, CarError::Block { index: 5, .. }), "{err}");
        let err = CarReader::new(&car[..car.len() - 2])
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap_err();
        assert!(matches!(err, CarError::Truncated(5)), "{err}");
        assert!(CarReader::new(&b"\x05hello"[..]).is_err());
        assert!(CarReader::new(&b""[..]).is_err());
        // a huge length prefix is refused before any allocation
        let mut huge = car[..car[0] as usize + 1].to_vec();
        huge.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        let err = CarReader::new(&huge[..]).unwrap().next_block().unwrap_err();
        assert!(matches!(err, CarError::Length { .. }), "{err}");
    }
}

//! Sealed files: the bytes of a private record's file, encrypted before they become a blob.
//!
//! A private record hides its body (see [`crate::private`]), but the file it names would still
//! be plaintext in the blob store, served by its BLAKE3 CID to anyone who asks. A sealed file's
//! blob is instead the file encrypted under a fresh 256-bit key, which only the record's
//! readers see (in [`FileSeal`], inside the sealed body); the blob's CID names the ciphertext.
//!
//! The format (`v` 1) is STREAM (Hoang, Reyhanitabar, Rogaway, Vizár, eprint 2015/189) over
//! XChaCha20-Poly1305, as the `aead-stream` crate's `StreamBE32` implements it: the plaintext
//! is cut into [`CHUNK`]-byte chunks (the last one shorter, or empty for an empty file), and
//! chunk `i` is sealed with the nonce `[0; 19] ‖ i (u32, big-endian) ‖ last (1 on the last
//! chunk, else 0)` and the associated data [`AAD`]. Each chunk grows by a 16-byte tag, so the
//! blob is `size + 16 × max(1, ⌈size / CHUNK⌉)` bytes. The zero nonce prefix is safe because
//! a key seals one file only. Chunks open independently, so a reader can read any range, and
//! the last-chunk flag means a blob cut short at a chunk boundary does not open.

use aead_stream::{NewStream as _, StreamBE32, StreamPrimitive as _};
use chacha20poly1305::{KeyInit as _, XChaCha20Poly1305};
use rand::CryptoRng;
use zeroize::Zeroizing;

/// Plaintext bytes per chunk.
pub const CHUNK: u64 = 64 * 1024;
/// Bytes an AEAD tag adds to each chunk.
pub const TAG: u64 = 16;
/// A sealed chunk, tag included (all but the last are this long).
pub const SEALED_CHUNK: u64 = CHUNK + TAG;
/// Associated data of every chunk: the format's name.
pub const AAD: &[u8] = b"mnode/file/1";
/// The only format version there is.
pub const VERSION: u32 = 1;

/// Why a sealed file does not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The key is not 64 hex digits.
    #[error("a file key is 64 lowercase hex digits")]
    BadKey,
    /// A chunk's tag does not check: wrong key, or the blob was changed or cut.
    #[error("chunk {0} of the sealed file does not decrypt: wrong key, or the file was changed")]
    Decrypt(u64),
    /// A blob too short to be a sealed file of any size.
    #[error("{0} bytes cannot be a sealed file (at least {TAG})")]
    TooShort(u64),
    /// More chunks than the format counts.
    #[error("the file is too large to seal ({0} bytes)")]
    TooLarge(u64),
}

/// A file's key.
#[derive(Clone)]
pub struct FileKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for FileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileKey(…)")
    }
}

impl FileKey {
    /// A fresh random key.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(key.as_mut());
        Self(key)
    }

    /// A key from its text form (64 lowercase hex digits, as [`FileKey::to_hex`] writes it).
    pub fn from_hex(text: &str) -> Result<Self, SealError> {
        if text.len() != 64 || text.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(SealError::BadKey);
        }
        let mut key = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text, key.as_mut()).map_err(|_| SealError::BadKey)?;
        Ok(Self(key))
    }

    /// The key as 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.as_ref())
    }

    fn stream(&self) -> StreamBE32<XChaCha20Poly1305> {
        let aead = XChaCha20Poly1305::new(&(*self.0).into());
        StreamBE32::from_aead(aead, &Default::default())
    }
}

/// The number of chunks of a `size`-byte file.
pub fn chunks(size: u64) -> u64 {
    size.div_ceil(CHUNK).max(1)
}

/// The size of the blob a `size`-byte file seals to.
pub fn sealed_size(size: u64) -> u64 {
    size + TAG * chunks(size)
}

/// The size of the file a `sealed`-byte blob holds.
pub fn plain_size(sealed: u64) -> Result<u64, SealError> {
    if sealed < TAG {
        return Err(SealError::TooShort(sealed));
    }
    let n = sealed.div_ceil(SEALED_CHUNK).max(1);
    // A blob whose last chunk would hold nothing but part of a tag is no sealed file.
    let plain = sealed - TAG * n;
    if sealed_size(plain) != sealed {
        return Err(SealError::TooShort(sealed));
    }
    Ok(plain)
}

/// The chunks holding plaintext bytes `start..end` of a `size`-byte file, and where their
/// ciphertext lies in the blob (`start..end`, bytes).
pub fn chunk_span(size: u64, start: u64, end: u64) -> (std::ops::Range<u64>, std::ops::Range<u64>) {
    let last = chunks(size) - 1;
    let first = (start / CHUNK).min(last);
    let upto = if end <= start {
        first
    } else {
        ((end - 1) / CHUNK).min(last)
    };
    let blob_end = ((upto + 1) * SEALED_CHUNK).min(sealed_size(size));
    (first..upto + 1, first * SEALED_CHUNK..blob_end)
}

/// Seals a file chunk by chunk, as it is read.
pub struct Sealer {
    stream: StreamBE32<XChaCha20Poly1305>,
    /// The plaintext not sealed yet: up to one chunk, held back until the next byte or the
    /// end says whether it is the last.
    pending: Vec<u8>,
    next: u64,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").field("next", &self.next).finish()
    }
}

impl Sealer {
    /// A sealer for one file under `key`.
    pub fn new(key: &FileKey) -> Self {
        Self {
            stream: key.stream(),
            pending: Vec::with_capacity(CHUNK as usize + TAG as usize),
            next: 0,
        }
    }

    /// Takes more plaintext; appends the sealed chunks it completes to `out`.
    pub fn update(&mut self, mut data: &[u8], out: &mut Vec<u8>) -> Result<(), SealError> {
        while !data.is_empty() {
            if self.pending.len() as u64 == CHUNK {
                // More follows, so the held chunk is not the last.
                self.seal_pending(false, out)?;
            }
            let room = CHUNK as usize - self.pending.len();
            let (now, rest) = data.split_at(room.min(data.len()));
            self.pending.extend_from_slice(now);
            data = rest;
        }
        Ok(())
    }

    /// Seals what is held as the last chunk and appends it to `out`.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<(), SealError> {
        self.seal_pending(true, out)
    }

    fn seal_pending(&mut self, last: bool, out: &mut Vec<u8>) -> Result<(), SealError> {
        let position = u32::try_from(self.next)
            .map_err(|_| SealError::TooLarge(self.next.saturating_mul(CHUNK)))?;
        self.stream
            .encrypt_in_place(position, last, AAD, &mut self.pending)
            .map_err(|_| SealError::TooLarge(self.next.saturating_mul(CHUNK)))?;
        out.append(&mut self.pending);
        self.next += 1;
        Ok(())
    }
}

/// Opens sealed chunks of one file.
pub struct Opener {
    stream: StreamBE32<XChaCha20Poly1305>,
    chunks: u64,
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opener")
            .field("chunks", &self.chunks)
            .finish()
    }
}

impl Opener {
    /// An opener for the file of `size` bytes sealed under `key`.
    pub fn new(key: &FileKey, size: u64) -> Self {
        Self {
            stream: key.stream(),
            chunks: chunks(size),
        }
    }

    /// Opens chunk `index` in place: `buf` holds its ciphertext and tag, and holds its
    /// plaintext after.
    pub fn open(&self, index: u64, buf: &mut Vec<u8>) -> Result<(), SealError> {
        let position = u32::try_from(index).map_err(|_| SealError::Decrypt(index))?;
        let last = index + 1 == self.chunks;
        self.stream
            .decrypt_in_place(position, last, AAD, buf)
            .map_err(|_| SealError::Decrypt(index))
    }
}

/// Seals all of `data` (for small files and tests).
pub fn seal(key: &FileKey, data: &[u8]) -> Result<Vec<u8>, SealError> {
    let mut out = Vec::with_capacity(sealed_size(data.len() as u64) as usize);
    let mut sealer = Sealer::new(key);
    sealer.update(data, &mut out)?;
    sealer.finish(&mut out)?;
    Ok(out)
}

/// Opens a whole sealed blob (for small files and tests).
pub fn open(key: &FileKey, blob: &[u8]) -> Result<Vec<u8>, SealError> {
    let size = plain_size(blob.len() as u64)?;
    let opener = Opener::new(key, size);
    let mut out = Vec::with_capacity(size as usize);
    for (i, chunk) in blob.chunks(SEALED_CHUNK as usize).enumerate() {
        let mut buf = chunk.to_vec();
        opener.open(i as u64, &mut buf)?;
        out.append(&mut buf);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng as _;

    use super::*;

    fn key(seed: u64) -> FileKey {
        FileKey::generate(&mut rand::rngs::ChaCha8Rng::seed_from_u64(seed))
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn sizes_round_trip_at_every_boundary() {
        let c = CHUNK as usize;
        for len in [0, 1, c - 1, c, c + 1, 2 * c, 3 * c + 7] {
            let k = key(1);
            let sealed = seal(&k, &data(len)).unwrap();
            assert_eq!(sealed.len() as u64, sealed_size(len as u64), "len {len}");
            assert_eq!(plain_size(sealed.len() as u64).unwrap(), len as u64);
            assert_eq!(open(&k, &sealed).unwrap(), data(len), "len {len}");
        }
    }

    #[test]
    fn fed_in_pieces_seals_the_same() {
        let k = key(2);
        let all = data(3 * CHUNK as usize + 100);
        let mut out = Vec::new();
        let mut sealer = Sealer::new(&k);
        for piece in all.chunks(1000) {
            sealer.update(piece, &mut out).unwrap();
        }
        sealer.finish(&mut out).unwrap();
        assert_eq!(out, seal(&k, &all).unwrap());
        assert_ne!(out[..100], all[..100], "the blob is not the plaintext");
    }

    #[test]
    fn wrong_key_tampering_and_truncation_fail() {
        let k = key(3);
        let all = data(2 * CHUNK as usize + 5);
        let sealed = seal(&k, &all).unwrap();
        assert_eq!(open(&key(4), &sealed), Err(SealError::Decrypt(0)));
        let mut flipped = sealed.clone();
        flipped[SEALED_CHUNK as usize + 3] ^= 1;
        assert_eq!(open(&k, &flipped), Err(SealError::Decrypt(1)));
        // Cut at a chunk boundary: the new last chunk was sealed as not last.
        let cut = &sealed[..2 * SEALED_CHUNK as usize];
        assert_eq!(open(&k, cut), Err(SealError::Decrypt(1)));
        // Chunks swapped.
        let mut swapped = sealed[SEALED_CHUNK as usize..2 * SEALED_CHUNK as usize].to_vec();
        swapped.extend_from_slice(&sealed[..SEALED_CHUNK as usize]);
        swapped.extend_from_slice(&sealed[2 * SEALED_CHUNK as usize..]);
        assert_eq!(open(&k, &swapped), Err(SealError::Decrypt(0)));
    }

    #[test]
    fn a_range_opens_from_its_chunks_alone() {
        let k = key(5);
        let size = 5 * CHUNK + 11;
        let all = data(size as usize);
        let sealed = seal(&k, &all).unwrap();
        let (start, end) = (CHUNK * 2 - 3, CHUNK * 3 + 9);
        let (chunks, bytes) = chunk_span(size, start, end);
        assert_eq!(chunks, 1..4);
        let opener = Opener::new(&k, size);
        let mut plain = Vec::new();
        for (i, chunk) in chunks
            .zip(sealed[bytes.start as usize..bytes.end as usize].chunks(SEALED_CHUNK as usize))
        {
            let mut buf = chunk.to_vec();
            opener.open(i, &mut buf).unwrap();
            plain.append(&mut buf);
        }
        let skip = (start - CHUNK) as usize;
        assert_eq!(
            &plain[skip..skip + (end - start) as usize],
            &all[start as usize..end as usize]
        );
        // The last chunk's span ends at the blob's end.
        assert_eq!(chunk_span(size, size - 1, size).1.end, sealed.len() as u64);
    }

    #[test]
    fn keys_read_back_and_bad_text_is_refused() {
        let k = key(6);
        assert_eq!(FileKey::from_hex(&k.to_hex()).unwrap().to_hex(), k.to_hex());
        assert_eq!(FileKey::from_hex("ab").unwrap_err(), SealError::BadKey);
        assert_eq!(
            FileKey::from_hex(&k.to_hex().to_uppercase()).unwrap_err(),
            SealError::BadKey
        );
        assert_eq!(plain_size(5), Err(SealError::TooShort(5)));
        // One byte past a full chunk cannot be a tag-bearing last chunk.
        assert!(plain_size(SEALED_CHUNK + 3).is_err());
    }
}

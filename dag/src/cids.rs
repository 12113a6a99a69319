//! Content identifiers.
//!
//! Records are CIDv1 with codec dag-cbor (0x71) and a sha2-256 multihash (`bafyrei…`). File
//! contents ("blobs") are CIDv1 with codec raw (0x55) and a blake3 multihash (`bafkr4i…`) whose
//! 32-byte digest is exactly the iroh-blobs hash, so one CID names a file everywhere.

pub use cid::Cid;
use sha2::Digest as _;

/// Multicodec of DAG-CBOR blocks.
pub const DAG_CBOR: u64 = 0x71;
/// Multicodec of raw bytes.
pub const RAW: u64 = 0x55;
/// Multicodec of DAG-PB: CIDv0 input, and the nodes of files' UnixFS views ([`crate::unixfs`]).
pub const DAG_PB: u64 = 0x70;
/// Multihash code of sha2-256.
pub const SHA2_256: u64 = 0x12;
/// Multihash code of blake3 (32-byte digest).
pub const BLAKE3: u64 = 0x1e;
/// Multihash code of the identity "hash" (the data inlined in the CID).
pub const IDENTITY: u64 = 0x00;

/// The multihash type used throughout mnode (digests up to 64 bytes).
pub type Multihash = multihash::Multihash<64>;

/// What a CID points at, as far as mnode is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// A DAG-CBOR block hashed with sha2-256: a signed record or other IPLD data.
    Record,
    /// A raw block hashed with blake3: a file stored in the blob store.
    Blob,
    /// A block of a file's UnixFS view ([`crate::unixfs`]): a dag-pb node or a raw leaf, both
    /// hashed with sha2-256. A record's link of this kind (`FileData::unixfs`) names the same
    /// file as the blob link beside it, for IPFS clients.
    UnixFs,
    /// Anything else (a valid CID mnode can carry but does not produce).
    Other,
}

/// Errors from parsing a CID or checking a block against one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CidError {
    /// The text is not a CID in any supported form.
    #[error("{text:?} is not a CID (CIDs look like bafyrei…, bafkr4i… or Qm…)")]
    NotACid {
        /// The offending input.
        text: String,
    },
    /// The text has a CID's form but does not decode: most likely a typo or a cut copy.
    #[error(
        "{text:?} looks like a CID but does not decode: a character may be missing, extra or \
         mistyped ({reason})"
    )]
    Invalid {
        /// The offending input.
        text: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The block's bytes do not hash to the CID.
    #[error("block does not hash to {0}")]
    HashMismatch(Cid),
    /// The CID uses a hash function mnode cannot check.
    #[error("unsupported multihash code 0x{code:x} in {cid}")]
    UnsupportedHash {
        /// The CID.
        cid: Cid,
        /// Its multihash code.
        code: u64,
    },
}

/// The CID of a record block: CIDv1, dag-cbor, sha2-256.
pub fn record_cid(bytes: &[u8]) -> Cid {
    let digest = sha2::Sha256::digest(bytes);
    Cid::new_v1(DAG_CBOR, wrap(SHA2_256, &digest))
}

/// The record CID (CIDv1, dag-cbor, sha2-256) with the given SHA-256 digest.
pub fn record_cid_from_digest(digest: [u8; 32]) -> Cid {
    Cid::new_v1(DAG_CBOR, wrap(SHA2_256, &digest))
}

/// The CID of a blob whose BLAKE3 hash (the iroh-blobs hash) is `hash`.
pub fn blob_cid(hash: [u8; 32]) -> Cid {
    Cid::new_v1(RAW, wrap(BLAKE3, &hash))
}

/// The CID of a blob held in memory.
pub fn blob_cid_of(data: &[u8]) -> Cid {
    blob_cid(*blake3::hash(data).as_bytes())
}

/// The BLAKE3 hash inside a blob CID, or `None` if `cid` is not a raw/blake3 CID.
pub fn blob_hash(cid: &Cid) -> Option<[u8; 32]> {
    if cid.codec() != RAW || cid.hash().code() != BLAKE3 {
        return None;
    }
    cid.hash().digest().try_into().ok()
}

/// Classifies a CID by codec and hash.
pub fn link_kind(cid: &Cid) -> LinkKind {
    match (cid.version(), cid.codec(), cid.hash().code()) {
        (cid::Version::V1, DAG_CBOR, SHA2_256) => LinkKind::Record,
        (cid::Version::V1, RAW, BLAKE3) if cid.hash().size() == 32 => LinkKind::Blob,
        (cid::Version::V1, DAG_PB | RAW, SHA2_256) if cid.hash().size() == 32 => LinkKind::UnixFs,
        _ => LinkKind::Other,
    }
}

/// Parses a CID from text: multibase CIDv1 (base32 `b…` and the other multibases) or a
/// base58btc CIDv0 (`Qm…`). Surrounding whitespace is ignored.
pub fn parse(text: &str) -> Result<Cid, CidError> {
    let trimmed = text.trim();
    let bad = |reason: String| {
        if looks_like_a_cid(trimmed) {
            CidError::Invalid {
                text: trimmed.to_owned(),
                reason,
            }
        } else {
            CidError::NotACid {
                text: trimmed.to_owned(),
            }
        }
    };
    let cid = Cid::try_from(trimmed).map_err(|e| bad(e.to_string()))?;
    // The cid crate reads a CID from the front of the decoded bytes and ignores the rest, so
    // a text with bytes to spare would name the same CID as its exact form.
    if decoded_len(trimmed) != Some(cid.encoded_len()) {
        return Err(bad("bytes after the CID".into()));
    }
    Ok(cid)
}

/// The length of the bytes a CID's text decodes to: base58btc for a CIDv0 (`Qm…`), else its
/// multibase.
fn decoded_len(text: &str) -> Option<usize> {
    if text.len() == 46 && text.starts_with("Qm") {
        return bs58::decode(text).into_vec().ok().map(|b| b.len());
    }
    multibase::decode(text).ok().map(|(_, b)| b.len())
}

/// Whether text has the shape of a CID (base32 `b…` or base58 `Qm…`/`z…` of a CID's length),
/// so that a failure to decode it is a typo rather than something else given by mistake.
fn looks_like_a_cid(text: &str) -> bool {
    const BASE58: &str = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let in_base = |rest: &str, alphabet: &dyn Fn(char) -> bool| {
        rest.len() >= 30 && rest.chars().all(alphabet)
    };
    if let Some(rest) = text.strip_prefix('b') {
        in_base(rest, &|c| {
            c.is_ascii_lowercase() || ('2'..='7').contains(&c)
        })
    } else if let Some(rest) = text.strip_prefix("Qm").or_else(|| text.strip_prefix('z')) {
        in_base(rest, &|c| BASE58.contains(c))
    } else {
        false
    }
}

/// Checks that `data` hashes to `cid` (sha2-256, blake3 and identity are supported).
pub fn verify_block(cid: &Cid, data: &[u8]) -> Result<(), CidError> {
    let mh = cid.hash();
    let ok = match mh.code() {
        SHA2_256 => sha2::Sha256::digest(data).as_slice() == mh.digest(),
        BLAKE3 => mh.size() == 32 && blake3::hash(data).as_bytes() == mh.digest(),
        IDENTITY => data == mh.digest(),
        code => return Err(CidError::UnsupportedHash { cid: *cid, code }),
    };
    if ok {
        Ok(())
    } else {
        Err(CidError::HashMismatch(*cid))
    }
}

fn wrap(code: u64, digest: &[u8]) -> Multihash {
    // Digests here are 32 bytes and the multihash holds 64, so wrapping cannot fail.
    Multihash::wrap(code, digest).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_in_a_cid_is_told_apart_from_something_else() {
        let good = record_cid(b"\xa0").to_string();
        assert_eq!(parse(&format!(" {good}\n")).unwrap().to_string(), good);
        let cut = &good[..good.len() - 1];
        // Bytes to spare after the CID: the cid crate alone would read the same CID.
        let mut long = parse(&good).unwrap().to_bytes();
        long.push(0);
        let spare = multibase::encode(multibase::Base::Base32Lower, &long);
        let e = parse(&spare).unwrap_err().to_string();
        assert!(e.contains("looks like a CID but does not decode"), "{e}");
        let e = parse(cut).unwrap_err().to_string();
        assert!(e.contains("looks like a CID but does not decode"), "{e}");
        for other in ["hello", "bafy-not-a-cid", "/ipfs/x", ""] {
            let e = parse(other).unwrap_err();
            assert!(matches!(e, CidError::NotACid { .. }), "{other}: {e}");
            assert!(
                e.to_string()
                    .ends_with("is not a CID (CIDs look like bafyrei…, bafkr4i… or Qm…)")
            );
        }
    }

    #[test]
    fn record_cids_are_bafyrei() {
        let cid = record_cid(b"\xa0");
        assert!(cid.to_string().starts_with("bafyrei"), "{cid}");
        assert_eq!(link_kind(&cid), LinkKind::Record);
        verify_block(&cid, b"\xa0").unwrap();
        assert!(matches!(
            verify_block(&cid, b"\xa1"),
            Err(CidError::HashMismatch(_))
        ));
    }

    #[test]
    fn blob_cids_are_bafkr4i_and_carry_the_blake3_hash() {
        let cid = blob_cid_of(b"hello");
        assert!(cid.to_string().starts_with("bafkr4i"), "{cid}");
        assert_eq!(blob_hash(&cid), Some(*blake3::hash(b"hello").as_bytes()));
        assert_eq!(link_kind(&cid), LinkKind::Blob);
        verify_block(&cid, b"hello").unwrap();
        assert!(verify_block(&cid, b"hellO").is_err());
    }

    #[test]
    fn parses_v1_and_v0() {
        let v1 = record_cid(b"x");
        assert_eq!(parse(&format!(" {v1}\n")).unwrap(), v1);
        let v0 = parse("QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n").unwrap();
        assert_eq!(v0.version(), cid::Version::V0);
        assert_eq!(v0.codec(), DAG_PB);
        let err = parse("bafy-not-a-cid").unwrap_err().to_string();
        assert!(err.contains("bafy-not-a-cid"), "{err}");
    }
}

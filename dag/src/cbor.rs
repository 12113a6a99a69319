//! Strict DAG-CBOR.
//!
//! Encoding is canonical: shortest integers and lengths, map keys sorted length-first then
//! bytewise, no indefinite lengths, 64-bit floats only, tag 42 for links and no other tag.
//! Decoding of anything that came from outside rejects every deviation from that form, so a
//! block has exactly one encoding and every IPLD implementation computes the same CID.

use ipld_core::ipld::Ipld;
use serde::{Serialize, de::DeserializeOwned};

/// A value could not be encoded as DAG-CBOR.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode as DAG-CBOR: {0}")]
pub struct EncodeError(pub(crate) String);

/// Bytes were not strict DAG-CBOR, or did not have the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// An indefinite-length string, array or map.
    #[error("non-canonical DAG-CBOR: indefinite-length item")]
    IndefiniteLength,
    /// An integer or length not in its shortest form.
    #[error("non-canonical DAG-CBOR: {0} is not minimally encoded")]
    NonMinimal(String),
    /// Map keys out of order or repeated.
    #[error(
        "non-canonical DAG-CBOR: map keys are not sorted (length-first, then bytewise) or repeat"
    )]
    UnsortedKeys,
    /// A CBOR tag other than 42.
    #[error("DAG-CBOR allows only tag 42 (CID), found tag {0}")]
    ForbiddenTag(u64),
    /// A float that DAG-CBOR forbids (NaN, infinities, or not 64-bit).
    #[error("DAG-CBOR forbids this float: {0}")]
    ForbiddenFloat(String),
    /// Bytes after the first complete item.
    #[error("trailing bytes after the DAG-CBOR item")]
    TrailingBytes,
    /// The input ended inside an item.
    #[error("truncated DAG-CBOR: input ended inside {0}")]
    Truncated(String),
    /// Nesting deeper than the decoder allows.
    #[error("DAG-CBOR nested too deeply")]
    TooDeep,
    /// Well-formed CBOR of the wrong shape for the expected type, or otherwise invalid.
    #[error("invalid DAG-CBOR: {0}")]
    Invalid(String),
    /// A link (tag 42) whose byte string holds more than its CID: the same link could then be
    /// written in many ways.
    #[error("non-canonical DAG-CBOR: a link's byte string holds bytes after its CID")]
    LinkPadding,
}

/// Encodes a value as canonical DAG-CBOR.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, EncodeError> {
    serde_ipld_dagcbor::to_vec(value).map_err(|e| EncodeError(e.to_string()))
}

/// Encodes into an existing buffer (appending), saving an allocation on hot paths.
pub fn encode_into<T: Serialize>(buf: &mut Vec<u8>, value: &T) -> Result<(), EncodeError> {
    serde_ipld_dagcbor::to_writer(buf, value).map_err(|e| EncodeError(e.to_string()))
}

/// Appends the canonical DAG-CBOR encoding of `ipld` to `buf`.
///
/// Same bytes as [`encode`] (a property test holds them equal on arbitrary data), written
/// directly: map entries are sorted by reference instead of being encoded into one buffer each
/// and then sorted, which makes record signing about four times cheaper on encoding.
pub fn encode_ipld_into(buf: &mut Vec<u8>, ipld: &Ipld) -> Result<(), EncodeError> {
    match ipld {
        Ipld::Null => buf.push(0xf6),
        Ipld::Bool(b) => buf.push(if *b { 0xf5 } else { 0xf4 }),
        Ipld::Integer(n) => {
            let out_of_range = || EncodeError(format!("integer {n} is outside the 64-bit range"));
            if *n >= 0 {
                write_head(buf, 0, u64::try_from(*n).map_err(|_| out_of_range())?);
            } else {
                write_head(buf, 1, u64::try_from(-1 - *n).map_err(|_| out_of_range())?);
            }
        }
        Ipld::Float(f) => {
            if !f.is_finite() {
                return Err(EncodeError(format!("DAG-CBOR cannot encode the float {f}")));
            }
            buf.push(0xfb);
            buf.extend_from_slice(&f.to_be_bytes());
        }
        Ipld::String(s) => write_text(buf, s),
        Ipld::Bytes(b) => {
            write_head(buf, 2, b.len() as u64);
            buf.extend_from_slice(b);
        }
        Ipld::List(items) => {
            write_head(buf, 4, items.len() as u64);
            for item in items {
                encode_ipld_into(buf, item)?;
            }
        }
        Ipld::Map(map) => {
            write_head(buf, 5, map.len() as u64);
            let mut entries: Vec<(&String, &Ipld)> = map.iter().collect();
            // BTreeMap order is bytewise; canonical order is length first, then bytewise.
            entries.sort_by(|(a, _), (b, _)| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
            for (k, v) in entries {
                write_text(buf, k);
                encode_ipld_into(buf, v)?;
            }
        }
        Ipld::Link(cid) => write_link(buf, cid),
    }
    Ok(())
}

/// Appends a CBOR head: major type and argument in its shortest form.
pub(crate) fn write_head(buf: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    match n {
        0..=23 => buf.push(m | n as u8),
        24..=0xff => buf.extend_from_slice(&[m | 24, n as u8]),
        0x100..=0xffff => {
            buf.push(m | 25);
            buf.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            buf.push(m | 26);
            buf.extend_from_slice(&(n as u32).to_be_bytes());
        }
        _ => {
            buf.push(m | 27);
            buf.extend_from_slice(&n.to_be_bytes());
        }
    }
}

/// Appends a text string.
pub(crate) fn write_text(buf: &mut Vec<u8>, s: &str) {
    write_head(buf, 3, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

/// Appends a link: tag 42 over the CID's binary form behind the 0x00 multibase prefix.
pub(crate) fn write_link(buf: &mut Vec<u8>, cid: &cid::Cid) {
    buf.extend_from_slice(&[0xd8, 0x2a]);
    write_head(buf, 2, cid.encoded_len() as u64 + 1);
    buf.push(0);
    // Writing into a Vec cannot fail.
    let _ = cid.write_bytes(&mut *buf);
}

/// Decodes strict DAG-CBOR into `T`, rejecting any non-canonical encoding.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let value = serde_ipld_dagcbor::from_slice(bytes).map_err(DecodeError::from)?;
    links_are_exact(bytes)?;
    Ok(value)
}

/// Checks that every link's byte string is exactly `0x00` and one CID.
///
/// `serde_ipld_dagcbor` reads a link's CID from the front of its byte string and ignores what
/// follows, so without this `d8 2a 58 25 00 <35-byte CID> <1 more byte>` would decode like the
/// canonical link. Runs after that decoder accepted `bytes`, so they are well-formed CBOR with
/// definite lengths, shortest heads and no tag but 42; anything else found here is refused.
fn links_are_exact(bytes: &[u8]) -> Result<(), DecodeError> {
    let invalid = || DecodeError::Invalid("malformed item".into());
    // Reads the head at `*pos`: (major type, additional info, argument).
    let head = |pos: &mut usize| -> Result<(u8, u8, u64), DecodeError> {
        let b = *bytes.get(*pos).ok_or_else(invalid)?;
        *pos += 1;
        let (major, info) = (b >> 5, b & 0x1f);
        let len = match info {
            0..=23 => return Ok((major, info, u64::from(info))),
            24 => 1,
            25 => 2,
            26 => 4,
            27 => 8,
            _ => return Err(invalid()),
        };
        let end = pos.checked_add(len).ok_or_else(invalid)?;
        let arg = bytes.get(*pos..end).ok_or_else(invalid)?;
        *pos = end;
        Ok((
            major,
            info,
            arg.iter().fold(0, |n, b| n << 8 | u64::from(*b)),
        ))
    };
    let mut pos = 0;
    let mut items: u64 = 1;
    while items > 0 {
        items -= 1;
        let (major, info, arg) = head(&mut pos)?;
        match major {
            0 | 1 => {}
            2 | 3 => {
                let len = usize::try_from(arg).map_err(|_| invalid())?;
                pos = pos.checked_add(len).ok_or_else(invalid)?;
            }
            4 => items = items.checked_add(arg).ok_or_else(invalid)?,
            5 => {
                let entries = arg.checked_mul(2).ok_or_else(invalid)?;
                items = items.checked_add(entries).ok_or_else(invalid)?;
            }
            6 => {
                let (inner, _, len) = head(&mut pos)?;
                let len = usize::try_from(len).map_err(|_| invalid())?;
                let end = pos.checked_add(len).ok_or_else(invalid)?;
                let link = bytes.get(pos..end).ok_or_else(invalid)?;
                let Some((0, mut cid)) = link.split_first().map(|(p, c)| (*p, c)) else {
                    return Err(invalid());
                };
                if inner != 2 || cid::Cid::read_bytes(&mut cid).is_err() {
                    return Err(invalid());
                }
                if !cid.is_empty() {
                    return Err(DecodeError::LinkPadding);
                }
                pos = end;
            }
            // Simple values carry no bytes; a float's are in its head's argument.
            7 if info <= 27 => {}
            _ => return Err(invalid()),
        }
    }
    Ok(())
}

/// Decodes strict DAG-CBOR into the generic IPLD data model.
pub fn decode_ipld(bytes: &[u8]) -> Result<Ipld, DecodeError> {
    decode(bytes)
}

impl<E: std::fmt::Debug> From<serde_ipld_dagcbor::DecodeError<E>> for DecodeError {
    fn from(e: serde_ipld_dagcbor::DecodeError<E>) -> Self {
        use serde_ipld_dagcbor::DecodeError as D;
        match e {
            D::IndefiniteSize => Self::IndefiniteLength,
            D::NonMinimal { name, .. } => Self::NonMinimal(name.to_owned()),
            D::UnorderedKey => Self::UnsortedKeys,
            D::TrailingData => Self::TrailingBytes,
            D::Eof { name, .. } => Self::Truncated(name.to_owned()),
            D::DepthOverflow { .. } => Self::TooDeep,
            D::Mismatch { name, found } | D::Unsupported { name, found }
                if name.contains("tag") =>
            {
                Self::ForbiddenTag(found.into())
            }
            D::Mismatch { found: 0xfb, .. } => Self::ForbiddenFloat("NaN, infinity or -0.0".into()),
            D::Unsupported {
                found: found @ 0xf9..=0xfa,
                ..
            } => Self::ForbiddenFloat(format!(
                "16- or 32-bit float (head 0x{found:02x}); DAG-CBOR floats are 64-bit"
            )),
            D::Unsupported { found, .. } => {
                Self::Invalid(format!("unsupported CBOR head byte 0x{found:02x}"))
            }
            D::Msg(m) if m.contains("NaN") || m.contains("nfinit") || m.contains("float") => {
                Self::ForbiddenFloat(m)
            }
            D::Msg(m) => Self::Invalid(m),
            other => Self::Invalid(format!("{other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_with_bytes_after_its_cid_is_refused() {
        let cid = crate::cids::record_cid(b"\xa0");
        let mut good = Vec::new();
        write_link(&mut good, &cid);
        assert_eq!(decode_ipld(&good).unwrap(), Ipld::Link(cid));
        // The same CID in a byte string one byte longer, inside a list and a map.
        let bytes = cid.to_bytes();
        let mut padded = vec![0xd8, 0x2a];
        write_head(&mut padded, 2, bytes.len() as u64 + 2);
        padded.push(0);
        padded.extend_from_slice(&bytes);
        padded.push(0x01);
        assert_eq!(decode_ipld(&padded), Err(DecodeError::LinkPadding));
        let in_list = [&[0x82, 0x01][..], &padded].concat();
        assert_eq!(decode_ipld(&in_list), Err(DecodeError::LinkPadding));
        let in_map = [&[0xa1, 0x61, b'a'][..], &padded].concat();
        assert_eq!(decode_ipld(&in_map), Err(DecodeError::LinkPadding));
        // Strings, floats and nesting around a good link still decode.
        let mixed = [
            &[
                0x83, 0x63, b'a', b'b', b'c', 0xfb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0,
            ][..],
            &good,
        ]
        .concat();
        assert!(decode_ipld(&mixed).is_ok());
    }
    use std::collections::BTreeMap;

    fn rejects(hex_bytes: &str) -> DecodeError {
        let bytes = hex::decode(hex_bytes).unwrap();
        decode_ipld(&bytes).expect_err(hex_bytes)
    }

    #[test]
    fn encodes_keys_length_first() {
        let mut m = BTreeMap::new();
        m.insert("bb".to_owned(), Ipld::Integer(1));
        m.insert("a".to_owned(), Ipld::Integer(2));
        m.insert("c".to_owned(), Ipld::Integer(3));
        let bytes = encode(&Ipld::Map(m)).unwrap();
        // {"a": 2, "c": 3, "bb": 1}
        assert_eq!(hex::encode(&bytes), "a361610261630362626201");
    }

    #[test]
    fn rejects_each_non_canonical_form() {
        // unsorted keys: {"b":1,"a":2}
        assert_eq!(rejects("a2616201616102"), DecodeError::UnsortedKeys);
        // duplicate keys
        assert_eq!(rejects("a2616101616102"), DecodeError::UnsortedKeys);
        // longer key before shorter: {"aa":1,"b":2}
        assert_eq!(rejects("a262616101616202"), DecodeError::UnsortedKeys);
        // 1 encoded in one extra byte
        assert!(matches!(rejects("1801"), DecodeError::NonMinimal(_)));
        // indefinite-length array
        assert_eq!(rejects("9f01ff"), DecodeError::IndefiniteLength);
        // tag 1 (epoch time)
        let e = rejects("c11a514b67b0");
        assert!(matches!(e, DecodeError::ForbiddenTag(_)), "{e:?}");
        // NaN and infinity as float64, and any float16/32
        assert!(matches!(
            rejects("fb7ff8000000000000"),
            DecodeError::ForbiddenFloat(_)
        ));
        assert!(matches!(
            rejects("fb7ff0000000000000"),
            DecodeError::ForbiddenFloat(_)
        ));
        assert!(matches!(rejects("f93c00"), DecodeError::ForbiddenFloat(_)));
        // trailing bytes
        assert_eq!(rejects("0101"), DecodeError::TrailingBytes);
        // truncated
        assert!(matches!(rejects("636162"), DecodeError::Truncated(_)));
        assert!(matches!(rejects("6261"), DecodeError::Truncated(_)));
        // undefined (simple 23)
        rejects("f7");
    }

    #[test]
    fn round_trips_links() {
        let cid = crate::cids::record_cid(b"x");
        let bytes = encode(&Ipld::Link(cid)).unwrap();
        assert_eq!(&bytes[..2], &[0xd8, 0x2a]);
        assert_eq!(decode_ipld(&bytes).unwrap(), Ipld::Link(cid));
    }
}

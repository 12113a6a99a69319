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
}

/// Encodes a value as canonical DAG-CBOR.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, EncodeError> {
    serde_ipld_dagcbor::to_vec(value).map_err(|e| EncodeError(e.to_string()))
}

/// Encodes into an existing buffer (appending), saving an allocation on hot paths.
pub fn encode_into<T: Serialize>(buf: &mut Vec<u8>, value: &T) -> Result<(), EncodeError> {
    serde_ipld_dagcbor::to_writer(buf, value).map_err(|e| EncodeError(e.to_string()))
}

/// Decodes strict DAG-CBOR into `T`, rejecting any non-canonical encoding.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    serde_ipld_dagcbor::from_slice(bytes).map_err(DecodeError::from)
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

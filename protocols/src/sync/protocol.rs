//! The wire format of `/mnode/sync/1`: one CBOR request and one CBOR response per stream.

use libp2p::StreamProtocol;
use mnode_dag::Cid;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::GossipTopic;

/// The protocol name.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/mnode/sync/1");

/// Smallest reconciliation frame (negentropy refuses smaller ones).
pub const MIN_FRAME_BYTES: usize = 4096;
/// Largest reconciliation message a node may send (the negentropy frame size limit).
pub const MAX_FRAME_BYTES: usize = 1 << 20;
/// Most CIDs one [`Request::Fetch`] may ask for.
pub const MAX_FETCH_CIDS: usize = 1024;
/// Most bytes of blocks a server puts in one [`Response::Blocks`] (one block of at most
/// [`mnode_dag::record::MAX_RECORD_BYTES`] is always sent, whatever the budget).
pub const MAX_BLOCKS_BYTES: usize = 8 << 20;
/// Smallest block budget a server may use for one response.
pub(super) const MIN_BLOCKS_BYTES: usize = 64 << 10;
/// Room for CBOR framing around the payloads.
const OVERHEAD: usize = 64 << 10;
/// Largest request read: a full reconciliation frame, or a full fetch, plus framing.
pub const MAX_REQUEST_BYTES: usize = MAX_FRAME_BYTES + OVERHEAD;
/// Largest response read: a full block budget, or a full reconciliation frame, plus framing.
pub const MAX_RESPONSE_BYTES: usize = MAX_BLOCKS_BYTES + OVERHEAD;

/// A sync request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// One reconciliation round for a topic's set.
    Reconcile {
        /// The topic, as its gossip name (`/mnode/1/author/<did>`, …).
        topic: String,
        /// The negentropy message.
        #[serde(with = "serde_bytes")]
        msg: Vec<u8>,
    },
    /// The blocks of these record versions, at most [`MAX_FETCH_CIDS`].
    Fetch {
        /// The versions wanted, in the order the server should send them.
        #[serde(with = "cid_list")]
        cids: Vec<Cid>,
    },
}

/// A sync response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// The server's reconciliation message.
    Reconcile {
        /// The negentropy message.
        #[serde(with = "serde_bytes")]
        msg: Vec<u8>,
    },
    /// Blocks asked for by a [`Request::Fetch`], in the order asked, skipping those the server
    /// does not have, and stopping when its byte budget is spent: a CID asked for before the
    /// last block sent and not sent is one the server lacks; the client asks again for the
    /// ones after it.
    Blocks {
        /// The blocks.
        blocks: Vec<ByteBuf>,
    },
    /// The request was refused.
    Error {
        /// Why, for a person.
        message: String,
    },
}

impl Request {
    /// A reconciliation round for `topic`.
    pub fn reconcile(topic: &GossipTopic, msg: Vec<u8>) -> Self {
        Request::Reconcile {
            topic: topic.to_string(),
            msg,
        }
    }
}

/// CIDs as a list of byte strings (their binary form), so the wire does not depend on how a
/// CBOR library treats the CID type.
mod cid_list {
    use mnode_dag::Cid;
    use serde::{Deserialize as _, Deserializer, Serializer, de::Error as _, ser::SerializeSeq};
    use serde_bytes::{ByteBuf, Bytes};

    pub(super) fn serialize<S: Serializer>(cids: &[Cid], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(cids.len()))?;
        for cid in cids {
            seq.serialize_element(Bytes::new(&cid.to_bytes()))?;
        }
        seq.end()
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Cid>, D::Error> {
        Vec::<ByteBuf>::deserialize(d)?
            .iter()
            .map(|b| Cid::try_from(b.as_slice()).map_err(D::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use futures::{executor::block_on, io::Cursor};
    use libp2p::request_response::Codec as _;
    use mnode_dag::cids;

    use super::*;

    type Codec = libp2p::request_response::cbor::codec::Codec<Request, Response>;

    fn codec() -> Codec {
        Codec::default()
            .set_request_size_maximum(MAX_REQUEST_BYTES as u64)
            .set_response_size_maximum(MAX_RESPONSE_BYTES as u64)
    }

    fn round_trip_request(request: Request) -> Request {
        let mut buf = Cursor::new(Vec::new());
        block_on(codec().write_request(&PROTOCOL, &mut buf, request)).unwrap();
        let mut read = Cursor::new(buf.into_inner());
        block_on(codec().read_request(&PROTOCOL, &mut read)).unwrap()
    }

    #[test]
    fn messages_round_trip_through_the_codec() {
        let topic = GossipTopic::Branch(cids::record_cid(b"branch"));
        let requests = [
            Request::reconcile(&topic, vec![0x61, 0, 1, 2]),
            Request::Fetch {
                cids: (0..MAX_FETCH_CIDS as u32)
                    .map(|i| cids::record_cid(&i.to_le_bytes()))
                    .collect(),
            },
        ];
        for request in requests {
            assert_eq!(round_trip_request(request.clone()), request);
        }
        let responses = [
            Response::Reconcile { msg: vec![0x61] },
            Response::Blocks {
                blocks: vec![ByteBuf::from(vec![1; 1000]), ByteBuf::from(vec![])],
            },
            Response::Error {
                message: "no".into(),
            },
        ];
        for response in responses {
            let mut buf = Cursor::new(Vec::new());
            block_on(codec().write_response(&PROTOCOL, &mut buf, response.clone())).unwrap();
            let mut read = Cursor::new(buf.into_inner());
            let back = block_on(codec().read_response(&PROTOCOL, &mut read)).unwrap();
            assert_eq!(back, response);
        }
    }

    #[test]
    fn a_full_fetch_and_a_full_frame_fit_a_request() {
        let fetch = Request::Fetch {
            cids: vec![cids::record_cid(b"x"); MAX_FETCH_CIDS],
        };
        let reconcile = Request::Reconcile {
            topic: format!("/mnode/1/thread/{}", cids::record_cid(b"x")),
            msg: vec![0xff; MAX_FRAME_BYTES],
        };
        for request in [fetch, reconcile] {
            let mut buf = Cursor::new(Vec::new());
            block_on(codec().write_request(&PROTOCOL, &mut buf, request)).unwrap();
            assert!(buf.into_inner().len() <= MAX_REQUEST_BYTES);
        }
    }

    #[test]
    fn a_bad_cid_is_refused() {
        let good = Request::Fetch {
            cids: vec![cids::record_cid(b"x")],
        };
        let mut buf = Cursor::new(Vec::new());
        block_on(codec().write_request(&PROTOCOL, &mut buf, good)).unwrap();
        let mut bytes = buf.into_inner();
        // The message ends with the CID: version, codec, hash code, digest length (0x20) and
        // the 32-byte digest. Claim a 33-byte digest.
        let n = bytes.len();
        assert_eq!(bytes[n - 33], 0x20);
        bytes[n - 33] = 0x21;
        let mut read = Cursor::new(bytes);
        assert!(block_on(codec().read_request(&PROTOCOL, &mut read)).is_err());
        let mut read = Cursor::new(vec![0xa1, 0x65, b'f', b'e', b't', b'c', b'h']);
        assert!(block_on(codec().read_request(&PROTOCOL, &mut read)).is_err());
    }
}

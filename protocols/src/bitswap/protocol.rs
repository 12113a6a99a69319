//! The Bitswap wire format: protobuf messages (bitswap's `message.proto`, written out by hand
//! with prost's derives), CID prefixes, and the unsigned-varint length framing used on a stream.

use std::io;

use bytes::Bytes;
use futures::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use libp2p::StreamProtocol;
use mnode_dag::{
    Cid,
    cids::{self, Multihash},
};
use prost::Message as _;
use sha2::Digest as _;

/// The protocol mnode speaks and opens streams with.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/ipfs/bitswap/1.2.0");
/// The previous version, accepted inbound: same message, without want-have and presences.
pub const PROTOCOL_1_1_0: StreamProtocol = StreamProtocol::new("/ipfs/bitswap/1.1.0");
/// The largest message read or written (4 MiB, what Kubo and Helia accept).
pub const MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;

/// The protobuf messages of bitswap's `message.proto`, field for field.
pub mod proto {
    /// A Bitswap message.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Message {
        /// Blocks the sender wants (or no longer wants).
        #[prost(message, optional, tag = "1")]
        pub wantlist: Option<Wantlist>,
        /// Bitswap 1.0.0 blocks: raw data of CIDv0 blocks.
        #[prost(bytes = "bytes", repeated, tag = "2")]
        pub blocks: Vec<bytes::Bytes>,
        /// Bitswap 1.1.0+ blocks: CID prefix and data.
        #[prost(message, repeated, tag = "3")]
        pub payload: Vec<Block>,
        /// Bitswap 1.2.0 answers to want-have and send-dont-have.
        #[prost(message, repeated, tag = "4")]
        pub block_presences: Vec<BlockPresence>,
        /// Bytes the sender still has queued for the receiver.
        #[prost(int32, tag = "5")]
        pub pending_bytes: i32,
    }

    /// A wantlist: entries, and whether they replace the previous wantlist.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Wantlist {
        /// The entries.
        #[prost(message, repeated, tag = "1")]
        pub entries: Vec<Entry>,
        /// Whether this is the sender's whole wantlist (replacing the previous one).
        #[prost(bool, tag = "2")]
        pub full: bool,
    }

    /// One wantlist entry.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Entry {
        /// The CID, in binary form.
        #[prost(bytes = "vec", tag = "1")]
        pub block: Vec<u8>,
        /// Relative priority (higher first).
        #[prost(int32, tag = "2")]
        pub priority: i32,
        /// Removes the entry instead of adding it.
        #[prost(bool, tag = "3")]
        pub cancel: bool,
        /// [`WantType`].
        #[prost(enumeration = "WantType", tag = "4")]
        pub want_type: i32,
        /// Asks for an explicit "don't have" answer.
        #[prost(bool, tag = "5")]
        pub send_dont_have: bool,
    }

    /// What a wantlist entry asks for.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum WantType {
        /// The block itself.
        Block = 0,
        /// Only whether the receiver has it.
        Have = 1,
    }

    /// A block with its CID prefix.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Block {
        /// CID version, codec, multihash code and digest length, as unsigned varints.
        #[prost(bytes = "vec", tag = "1")]
        pub prefix: Vec<u8>,
        /// The block's bytes.
        #[prost(bytes = "bytes", tag = "2")]
        pub data: bytes::Bytes,
    }

    /// Whether the sender has a block.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct BlockPresence {
        /// The CID, in binary form.
        #[prost(bytes = "vec", tag = "1")]
        pub cid: Vec<u8>,
        /// [`BlockPresenceType`].
        #[prost(enumeration = "BlockPresenceType", tag = "2")]
        pub r#type: i32,
    }

    /// The two presences.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum BlockPresenceType {
        /// The sender has the block.
        Have = 0,
        /// The sender does not have the block.
        DontHave = 1,
    }
}

/// What a want asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WantType {
    /// Send the block.
    Block,
    /// Say whether you have the block.
    Have,
}

/// One entry of a wantlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantlistEntry {
    /// The wanted block.
    pub cid: Cid,
    /// Relative priority (higher first).
    pub priority: i32,
    /// Removes a previous want for `cid` instead of adding one.
    pub cancel: bool,
    /// Block or presence.
    pub want_type: WantType,
    /// Asks for an explicit [`Presence::DontHave`] when the block is missing.
    pub send_dont_have: bool,
}

impl WantlistEntry {
    /// A want for the block itself, asking to be told when it is missing.
    pub fn want_block(cid: Cid) -> Self {
        Self {
            cid,
            priority: 1,
            cancel: false,
            want_type: WantType::Block,
            send_dont_have: true,
        }
    }

    /// A want for the presence of a block, asking to be told when it is missing.
    pub fn want_have(cid: Cid) -> Self {
        Self {
            want_type: WantType::Have,
            ..Self::want_block(cid)
        }
    }

    /// Withdraws a previous want for `cid`.
    pub fn cancel(cid: Cid) -> Self {
        Self {
            cid,
            priority: 0,
            cancel: true,
            want_type: WantType::Block,
            send_dont_have: false,
        }
    }
}

/// Whether a peer has a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Presence {
    /// It has the block.
    Have,
    /// It does not have the block.
    DontHave,
}

/// A presence answer about one block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockPresence {
    /// The block.
    pub cid: Cid,
    /// Whether the sender has it.
    pub presence: Presence,
}

/// A block as sent on the wire: the prefix of its CID and its bytes. The receiver rebuilds the
/// CID by hashing the bytes, so the bytes can only ever match the CID they produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Version, codec and multihash parameters of the block's CID.
    pub prefix: Prefix,
    /// The block's bytes.
    pub data: Bytes,
}

impl Block {
    /// The block `data` whose CID is `cid` (the caller vouches for the pairing).
    pub fn new(cid: &Cid, data: Bytes) -> Self {
        Self {
            prefix: Prefix::of(cid),
            data,
        }
    }

    /// The CID the bytes hash to under the prefix.
    pub fn cid(&self) -> Result<Cid, PrefixError> {
        self.prefix.cid_for(&self.data)
    }

    /// Size of this block inside an encoded [`proto::Message`] (tag and length included).
    pub(crate) fn encoded_field_len(&self) -> usize {
        let len = proto::Block {
            prefix: self.prefix.to_bytes(),
            data: Bytes::new(),
        }
        .encoded_len()
            + prost::encoding::key_len(2)
            + prost::encoding::encoded_len_varint(self.data.len() as u64)
            + self.data.len();
        field_len(3, len)
    }
}

/// A Bitswap message in typed form: CIDs parsed, enums checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// Wantlist entries (wants and cancels).
    pub wantlist: Vec<WantlistEntry>,
    /// Whether `wantlist` replaces the sender's previous wantlist.
    pub full: bool,
    /// Blocks.
    pub blocks: Vec<Block>,
    /// Have / don't-have answers.
    pub presences: Vec<BlockPresence>,
    /// Bytes the sender still has queued for the receiver.
    pub pending_bytes: i32,
}

/// A message that could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not a valid protobuf `Message`.
    #[error("malformed bitswap protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// A wantlist entry or presence names an invalid CID.
    #[error("invalid CID in bitswap message: {0}")]
    Cid(String),
    /// A block's CID prefix is malformed.
    #[error("invalid block prefix in bitswap message: {0}")]
    Prefix(#[from] PrefixError),
}

impl Message {
    /// Whether the message carries nothing.
    pub fn is_empty(&self) -> bool {
        self.wantlist.is_empty()
            && !self.full
            && self.blocks.is_empty()
            && self.presences.is_empty()
    }

    /// The protobuf form. Blocks always go in `payload` (1.1.0+).
    pub fn to_proto(&self) -> proto::Message {
        let wantlist = (!self.wantlist.is_empty() || self.full).then(|| proto::Wantlist {
            entries: self
                .wantlist
                .iter()
                .map(|e| proto::Entry {
                    block: e.cid.to_bytes(),
                    priority: e.priority,
                    cancel: e.cancel,
                    want_type: match e.want_type {
                        WantType::Block => proto::WantType::Block,
                        WantType::Have => proto::WantType::Have,
                    } as i32,
                    send_dont_have: e.send_dont_have,
                })
                .collect(),
            full: self.full,
        });
        proto::Message {
            wantlist,
            blocks: Vec::new(),
            payload: self
                .blocks
                .iter()
                .map(|b| proto::Block {
                    prefix: b.prefix.to_bytes(),
                    data: b.data.clone(),
                })
                .collect(),
            block_presences: self
                .presences
                .iter()
                .map(|p| proto::BlockPresence {
                    cid: p.cid.to_bytes(),
                    r#type: match p.presence {
                        Presence::Have => proto::BlockPresenceType::Have,
                        Presence::DontHave => proto::BlockPresenceType::DontHave,
                    } as i32,
                })
                .collect(),
            pending_bytes: self.pending_bytes,
        }
    }

    /// The typed form of a protobuf message. Like Kubo, a message with an invalid CID or prefix
    /// anywhere is rejected whole. Unknown enum values read as the default (block, have).
    pub fn from_proto(msg: proto::Message) -> Result<Self, DecodeError> {
        let cid = |bytes: &[u8]| Cid::try_from(bytes).map_err(|e| DecodeError::Cid(e.to_string()));
        let (wantlist, full) = match msg.wantlist {
            Some(w) => {
                let entries = w
                    .entries
                    .iter()
                    .map(|e| {
                        Ok(WantlistEntry {
                            cid: cid(&e.block)?,
                            priority: e.priority,
                            cancel: e.cancel,
                            want_type: match proto::WantType::try_from(e.want_type) {
                                Ok(proto::WantType::Have) => WantType::Have,
                                _ => WantType::Block,
                            },
                            send_dont_have: e.send_dont_have,
                        })
                    })
                    .collect::<Result<Vec<_>, DecodeError>>()?;
                (entries, w.full)
            }
            None => (Vec::new(), false),
        };
        let mut blocks = Vec::with_capacity(msg.blocks.len() + msg.payload.len());
        for data in msg.blocks {
            blocks.push(Block {
                prefix: Prefix::V0,
                data,
            });
        }
        for b in msg.payload {
            blocks.push(Block {
                prefix: Prefix::from_bytes(&b.prefix)?,
                data: b.data,
            });
        }
        let presences = msg
            .block_presences
            .iter()
            .map(|p| {
                Ok(BlockPresence {
                    cid: cid(&p.cid)?,
                    presence: match proto::BlockPresenceType::try_from(p.r#type) {
                        Ok(proto::BlockPresenceType::DontHave) => Presence::DontHave,
                        _ => Presence::Have,
                    },
                })
            })
            .collect::<Result<Vec<_>, DecodeError>>()?;
        Ok(Self {
            wantlist,
            full,
            blocks,
            presences,
            pending_bytes: msg.pending_bytes,
        })
    }

    /// The encoded protobuf bytes (without the length prefix).
    pub fn encode(&self) -> Vec<u8> {
        self.to_proto().encode_to_vec()
    }

    /// Decodes protobuf bytes (without the length prefix). Block data shares `bytes`.
    pub fn decode(bytes: Bytes) -> Result<Self, DecodeError> {
        Self::from_proto(proto::Message::decode(bytes)?)
    }

    /// Size of the encoded message.
    pub fn encoded_len(&self) -> usize {
        self.to_proto().encoded_len()
    }
}

/// Size of a length-delimited protobuf field whose content is `len` bytes.
pub(crate) fn field_len(tag: u32, len: usize) -> usize {
    prost::encoding::key_len(tag) + prost::encoding::encoded_len_varint(len as u64) + len
}

/// Size of a presence inside an encoded [`proto::Message`] (tag and length included).
pub(crate) fn presence_field_len(presence: &BlockPresence) -> usize {
    let len = proto::BlockPresence {
        cid: presence.cid.to_bytes(),
        r#type: 1,
    }
    .encoded_len();
    field_len(4, len)
}

/// The parameters of a CID without its digest: what a receiver needs to rebuild the CID of a
/// block by hashing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    /// CID version (0 or 1).
    pub version: u64,
    /// Multicodec of the content.
    pub codec: u64,
    /// Multihash code.
    pub mh_type: u64,
    /// Digest length in bytes.
    pub mh_len: u64,
}

/// A prefix that is malformed or names a hash mnode cannot compute.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrefixError {
    /// The bytes are not four unsigned varints.
    #[error("malformed CID prefix {0:02x?}")]
    Malformed(Vec<u8>),
    /// The CID version is neither 0 nor 1, or a CIDv0 prefix is not dag-pb/sha2-256/32.
    #[error("unsupported CID version {version} with codec 0x{codec:x}")]
    UnsupportedVersion {
        /// The version.
        version: u64,
        /// The codec.
        codec: u64,
    },
    /// The multihash is not sha2-256 or blake3, or its digest length is not 32.
    #[error("unsupported multihash 0x{code:x} with a {len}-byte digest")]
    UnsupportedHash {
        /// Multihash code.
        code: u64,
        /// Digest length.
        len: u64,
    },
}

impl Prefix {
    /// The prefix of every CIDv0: dag-pb, sha2-256, 32 bytes.
    pub const V0: Prefix = Prefix {
        version: 0,
        codec: cids::DAG_PB,
        mh_type: cids::SHA2_256,
        mh_len: 32,
    };

    /// The prefix of `cid`.
    pub fn of(cid: &Cid) -> Self {
        Self {
            version: u64::from(cid.version()),
            codec: cid.codec(),
            mh_type: cid.hash().code(),
            mh_len: u64::from(cid.hash().size()),
        }
    }

    /// The four varints.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8);
        for v in [self.version, self.codec, self.mh_type, self.mh_len] {
            out.extend_from_slice(unsigned_varint::encode::u64(
                v,
                &mut unsigned_varint::encode::u64_buffer(),
            ));
        }
        out
    }

    /// Parses the four varints (trailing bytes are an error).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PrefixError> {
        let malformed = || PrefixError::Malformed(bytes.to_vec());
        let mut rest = bytes;
        let mut next = || -> Result<u64, PrefixError> {
            let (v, r) = unsigned_varint::decode::u64(rest).map_err(|_| malformed())?;
            rest = r;
            Ok(v)
        };
        let prefix = Self {
            version: next()?,
            codec: next()?,
            mh_type: next()?,
            mh_len: next()?,
        };
        if !rest.is_empty() {
            return Err(malformed());
        }
        Ok(prefix)
    }

    /// Whether [`Prefix::cid_for`] can compute CIDs with this prefix: CIDv1 (or the CIDv0
    /// prefix) with a 32-byte sha2-256 or blake3 digest.
    pub fn is_supported(&self) -> bool {
        matches!(
            (self.mh_type, self.mh_len),
            (cids::SHA2_256, 32) | (cids::BLAKE3, 32)
        ) && (self.version == 1 || *self == Self::V0)
    }

    /// The CID of `data` under this prefix. Only sha2-256 and blake3 with 32-byte digests are
    /// computed; anything else is refused rather than trusted.
    pub fn cid_for(&self, data: &[u8]) -> Result<Cid, PrefixError> {
        let digest: [u8; 32] = match (self.mh_type, self.mh_len) {
            (cids::SHA2_256, 32) => sha2::Sha256::digest(data).into(),
            (cids::BLAKE3, 32) => {
                cids::blob_hash(&cids::blob_cid_of(data)).ok_or(PrefixError::UnsupportedHash {
                    code: self.mh_type,
                    len: self.mh_len,
                })?
            }
            (code, len) => return Err(PrefixError::UnsupportedHash { code, len }),
        };
        let unsupported_version = PrefixError::UnsupportedVersion {
            version: self.version,
            codec: self.codec,
        };
        let mh =
            Multihash::wrap(self.mh_type, &digest).map_err(|_| PrefixError::UnsupportedHash {
                code: self.mh_type,
                len: self.mh_len,
            })?;
        match self.version {
            0 if *self == Self::V0 => Cid::new_v0(mh).map_err(|_| unsupported_version),
            1 => Ok(Cid::new_v1(self.codec, mh)),
            _ => Err(unsupported_version),
        }
    }
}

/// Reading a length-prefixed message failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The stream failed or ended inside a message.
    #[error("bitswap stream: {0}")]
    Io(#[from] io::Error),
    /// The length prefix announces more than the limit.
    #[error("bitswap message of {size} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Announced size.
        size: u64,
        /// The limit.
        max: usize,
    },
    /// The length prefix is not a valid unsigned varint.
    #[error("malformed length prefix on bitswap stream")]
    BadLength,
}

/// Reads one unsigned-varint length-prefixed message of at most `max` bytes. `Ok(None)` is a
/// clean end of stream (between messages).
pub async fn read_message<R: AsyncRead + Unpin>(
    io: &mut R,
    max: usize,
) -> Result<Option<Bytes>, ReadError> {
    let mut len: u64 = 0;
    let mut byte = [0u8; 1];
    // 4 MiB needs 4 varint bytes; anything up to u64 is still read so it can be reported.
    for i in 0..10 {
        let n = io.read(&mut byte).await?;
        if n == 0 {
            if i == 0 {
                return Ok(None);
            }
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
        }
        len |= u64::from(byte[0] & 0x7f) << (7 * i);
        if byte[0] & 0x80 == 0 {
            if len > max as u64 {
                return Err(ReadError::TooLarge { size: len, max });
            }
            let mut buf = vec![0u8; len as usize];
            io.read_exact(&mut buf).await?;
            return Ok(Some(Bytes::from(buf)));
        }
    }
    Err(ReadError::BadLength)
}

/// Writes `frame` with its unsigned-varint length prefix and flushes.
pub async fn write_message<W: AsyncWrite + Unpin>(io: &mut W, frame: &[u8]) -> io::Result<()> {
    let mut buf = unsigned_varint::encode::usize_buffer();
    let prefix = unsigned_varint::encode::usize(frame.len(), &mut buf);
    let mut out = Vec::with_capacity(prefix.len() + frame.len());
    out.extend_from_slice(prefix);
    out.extend_from_slice(frame);
    io.write_all(&out).await?;
    io.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    fn sample() -> Message {
        let a = cids::record_cid(b"\xa1\x61a\x01");
        let b = cids::blob_cid_of(b"blob");
        Message {
            wantlist: vec![
                WantlistEntry::want_block(a),
                WantlistEntry::want_have(b),
                WantlistEntry::cancel(cids::record_cid(b"\xa0")),
            ],
            full: true,
            blocks: vec![
                Block::new(&a, Bytes::from_static(b"\xa1\x61a\x01")),
                Block::new(&b, Bytes::from_static(b"blob")),
            ],
            presences: vec![
                BlockPresence {
                    cid: a,
                    presence: Presence::Have,
                },
                BlockPresence {
                    cid: b,
                    presence: Presence::DontHave,
                },
            ],
            pending_bytes: 7,
        }
    }

    #[test]
    fn message_round_trips() {
        let msg = sample();
        let bytes = msg.encode();
        assert_eq!(bytes.len(), msg.encoded_len());
        let back = Message::decode(Bytes::from(bytes)).unwrap();
        assert_eq!(back, msg);
        assert_eq!(back.blocks[0].cid().unwrap(), msg.wantlist[0].cid);
        assert_eq!(back.blocks[1].cid().unwrap(), msg.wantlist[1].cid);
    }

    #[test]
    fn empty_message_is_empty_on_the_wire() {
        assert!(Message::default().is_empty());
        assert!(Message::default().encode().is_empty());
        assert_eq!(Message::decode(Bytes::new()).unwrap(), Message::default());
    }

    #[test]
    fn field_numbers_match_message_proto() {
        // Hand-encoded: wantlist{entries{block=[1], priority=2, cancel, wantType=Have,
        // sendDontHave}, full}, payload{prefix=[1,0x71,0x12,0x20], data="x"},
        // blockPresences{cid=[1], type=DontHave}, pendingBytes=9.
        let cid = cids::record_cid(b"x");
        let c = cid.to_bytes();
        let mut entry = vec![0x0a, c.len() as u8];
        entry.extend_from_slice(&c);
        entry.extend_from_slice(&[0x10, 2, 0x18, 1, 0x20, 1, 0x28, 1]);
        let mut wantlist = vec![0x0a, entry.len() as u8];
        wantlist.extend_from_slice(&entry);
        wantlist.extend_from_slice(&[0x10, 1]);
        let mut presence = vec![0x0a, c.len() as u8];
        presence.extend_from_slice(&c);
        presence.extend_from_slice(&[0x10, 1]);
        let block = [0x0a, 4, 1, 0x71, 0x12, 0x20, 0x12, 1, b'x'];

        let mut wire = vec![0x0a, wantlist.len() as u8];
        wire.extend_from_slice(&wantlist);
        wire.extend_from_slice(&[0x1a, block.len() as u8]);
        wire.extend_from_slice(&block);
        wire.extend_from_slice(&[0x22, presence.len() as u8]);
        wire.extend_from_slice(&presence);
        wire.extend_from_slice(&[0x28, 9]);

        let msg = Message::decode(Bytes::from(wire.clone())).unwrap();
        assert_eq!(
            msg,
            Message {
                wantlist: vec![WantlistEntry {
                    cid,
                    priority: 2,
                    cancel: true,
                    want_type: WantType::Have,
                    send_dont_have: true,
                }],
                full: true,
                blocks: vec![Block::new(&cid, Bytes::from_static(b"x"))],
                presences: vec![BlockPresence {
                    cid,
                    presence: Presence::DontHave,
                }],
                pending_bytes: 9,
            }
        );
        assert_eq!(msg.encode(), wire);
    }

    #[test]
    fn legacy_blocks_are_cidv0() {
        let wire = proto::Message {
            blocks: vec![Bytes::from_static(b"hello")],
            ..Default::default()
        }
        .encode_to_vec();
        let msg = Message::decode(Bytes::from(wire)).unwrap();
        let cid = msg.blocks[0].cid().unwrap();
        assert_eq!(u64::from(cid.version()), 0);
        assert!(cid.to_string().starts_with("Qm"), "{cid}");
        cids::verify_block(&cid, b"hello").unwrap();
    }

    #[test]
    fn invalid_cids_and_prefixes_reject_the_message() {
        let bad_cid = proto::Message {
            block_presences: vec![proto::BlockPresence {
                cid: vec![1, 2, 3],
                r#type: 0,
            }],
            ..Default::default()
        };
        assert!(matches!(
            Message::from_proto(bad_cid),
            Err(DecodeError::Cid(_))
        ));
        let bad_prefix = proto::Message {
            payload: vec![proto::Block {
                prefix: vec![1, 0x71, 0x12],
                data: Bytes::new(),
            }],
            ..Default::default()
        };
        assert!(matches!(
            Message::from_proto(bad_prefix),
            Err(DecodeError::Prefix(PrefixError::Malformed(_)))
        ));
        assert!(Message::decode(Bytes::from_static(&[0x0a, 0xff])).is_err());
    }

    #[test]
    fn prefix_round_trips_and_rebuilds_cids() {
        let rec = cids::record_cid(b"\xa0");
        let p = Prefix::of(&rec);
        assert_eq!(p.to_bytes(), [0x01, 0x71, 0x12, 0x20]);
        assert_eq!(Prefix::from_bytes(&p.to_bytes()).unwrap(), p);
        assert_eq!(p.cid_for(b"\xa0").unwrap(), rec);
        assert_ne!(p.cid_for(b"\xa1").unwrap(), rec);

        let blob = cids::blob_cid_of(b"file");
        let p = Prefix::of(&blob);
        assert_eq!(p.to_bytes(), [0x01, 0x55, 0x1e, 0x20]);
        assert_eq!(p.cid_for(b"file").unwrap(), blob);

        let v0 = cids::parse("QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n").unwrap();
        assert_eq!(Prefix::of(&v0), Prefix::V0);
        assert_eq!(Prefix::V0.to_bytes(), [0x00, 0x70, 0x12, 0x20]);

        // Multi-byte varints (codec 0x0129 = dag-json).
        let p = Prefix {
            codec: 0x0129,
            ..Prefix::of(&rec)
        };
        assert_eq!(p.to_bytes(), [0x01, 0xa9, 0x02, 0x12, 0x20]);
        assert_eq!(Prefix::from_bytes(&p.to_bytes()).unwrap(), p);
    }

    #[test]
    fn prefix_rejects_unknown_hashes_and_versions() {
        let sha512 = Prefix {
            version: 1,
            codec: cids::RAW,
            mh_type: 0x13,
            mh_len: 64,
        };
        assert!(matches!(
            sha512.cid_for(b"x"),
            Err(PrefixError::UnsupportedHash { code: 0x13, .. })
        ));
        let short = Prefix {
            mh_len: 20,
            ..Prefix::of(&cids::record_cid(b"x"))
        };
        assert!(short.cid_for(b"x").is_err());
        let v2 = Prefix {
            version: 2,
            ..Prefix::of(&cids::record_cid(b"x"))
        };
        assert!(matches!(
            v2.cid_for(b"x"),
            Err(PrefixError::UnsupportedVersion { version: 2, .. })
        ));
        let bad_v0 = Prefix {
            codec: cids::RAW,
            ..Prefix::V0
        };
        assert!(bad_v0.cid_for(b"x").is_err());
        assert!(Prefix::from_bytes(&[1, 0x71, 0x12, 0x20, 0]).is_err());
        assert!(Prefix::from_bytes(&[0x80]).is_err());
    }

    #[test]
    fn block_field_len_matches_the_encoding() {
        let cid = cids::record_cid(&[7u8; 300]);
        let block = Block::new(&cid, Bytes::from(vec![7u8; 300]));
        let msg = Message {
            blocks: vec![block.clone()],
            ..Default::default()
        };
        assert_eq!(block.encoded_field_len(), msg.encoded_len());
        let p = BlockPresence {
            cid,
            presence: Presence::DontHave,
        };
        let msg = Message {
            presences: vec![p.clone()],
            ..Default::default()
        };
        assert_eq!(presence_field_len(&p), msg.encoded_len());
    }

    #[test]
    fn frames_round_trip_and_respect_the_limit() {
        block_on(async {
            let mut wire = Vec::new();
            write_message(&mut wire, b"hello").await.unwrap();
            write_message(&mut wire, &[9u8; 300]).await.unwrap();
            assert_eq!(&wire[..6], b"\x05hello");
            let mut r = futures::io::Cursor::new(wire.clone());
            assert_eq!(
                read_message(&mut r, 1024).await.unwrap().unwrap(),
                &b"hello"[..]
            );
            assert_eq!(
                read_message(&mut r, 1024).await.unwrap().unwrap().len(),
                300
            );
            assert!(read_message(&mut r, 1024).await.unwrap().is_none());

            let mut r = futures::io::Cursor::new(wire.clone());
            read_message(&mut r, 1024).await.unwrap();
            assert!(matches!(
                read_message(&mut r, 299).await,
                Err(ReadError::TooLarge {
                    size: 300,
                    max: 299
                })
            ));

            // A 4 MiB + 1 announcement is refused before anything is allocated or read.
            let mut big = Vec::new();
            big.extend_from_slice(unsigned_varint::encode::usize(
                MAX_MESSAGE_SIZE + 1,
                &mut unsigned_varint::encode::usize_buffer(),
            ));
            let mut r = futures::io::Cursor::new(big);
            assert!(matches!(
                read_message(&mut r, MAX_MESSAGE_SIZE).await,
                Err(ReadError::TooLarge { .. })
            ));

            // Truncated body and truncated length are errors, not clean ends.
            let mut r = futures::io::Cursor::new(wire[..4].to_vec());
            assert!(matches!(
                read_message(&mut r, 1024).await,
                Err(ReadError::Io(_))
            ));
            let mut r = futures::io::Cursor::new(vec![0x80u8]);
            assert!(matches!(
                read_message(&mut r, 1024).await,
                Err(ReadError::Io(_))
            ));
            let mut r = futures::io::Cursor::new(vec![0xffu8; 11]);
            assert!(matches!(
                read_message(&mut r, 1024).await,
                Err(ReadError::BadLength)
            ));
        });
    }
}

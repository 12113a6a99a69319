//! The UnixFS view of a file, so that IPFS clients (Kubo, Helia, `@helia/verified-fetch`) can
//! fetch mnode files by a CID they know how to walk.
//!
//! A file's mnode CID names its bytes with BLAKE3 (see [`crate::cids`]); IPFS clients expect a
//! UnixFS DAG instead. The view built here is exactly what `ipfs-unixfs-importer` (17.1.1) builds
//! with the `unixfs-v1-2025` profile, so the root CID is the one any IPFS tool computes for the
//! same bytes:
//!
//! - the file is cut into fixed-size chunks of [`CHUNK`] bytes (the last one shorter);
//! - each chunk is a raw leaf: CIDv1, codec raw (0x55), sha2-256 — the leaves are slices of the
//!   stored blob, so a node can serve them without storing them again;
//! - the leaves are grouped in file order, at most [`MAX_LINKS`] per dag-pb node, and those
//!   nodes again, level by level, until one node is left (the "balanced" layout). A group of one
//!   still gets its own parent node, as the importer does;
//! - a file of one chunk (including the empty file) is its own root: the raw leaf's CID.
//!
//! Internal nodes are dag-pb (CIDv1, 0x70, sha2-256) in canonical form, holding a UnixFS `Data`
//! message of type File with `filesize` and one `blocksizes` entry per link.
//!
//! The protobuf is written and read by hand. The messages are tiny and fixed, and the crates
//! that exist do not fit: `prost` writes fields by tag number, which would put `Data` before
//! `Links` (not canonical dag-pb); `ipld-dagpb` decodes leniently (it accepts repeated and
//! out-of-order link fields, which the dag-pb spec and `@ipld/dag-pb` reject), copies its input
//! into `Bytes`, and would bring `quick-protobuf` and a second `thiserror` just for this.

use sha2::Digest as _;

use crate::{
    Cid,
    cids::{Multihash, RAW, SHA2_256},
};

/// Multicodec of dag-pb, the codec of the internal UnixFS nodes.
pub const DAG_PB: u64 = crate::cids::DAG_PB;
/// Leaf size of the `unixfs-v1-2025` profile (1 MiB).
pub const CHUNK: u64 = 1 << 20;
/// Links per dag-pb node in the `unixfs-v1-2025` profile.
pub const MAX_LINKS: usize = 1024;

/// Chunk size and fan-out of a UnixFS DAG. `Layout::default()` is the `unixfs-v1-2025` profile;
/// other values exist for tests (deep trees from small files).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Bytes per leaf (the last leaf may be shorter). Clamped to `1..=u32::MAX`.
    pub chunk: u64,
    /// Links per dag-pb node. Clamped to at least 2 (with 1 the tree would never close).
    pub max_links: usize,
}

impl Default for Layout {
    fn default() -> Self {
        Self {
            chunk: CHUNK,
            max_links: MAX_LINKS,
        }
    }
}

impl Layout {
    /// The layout with its values brought into range (see the fields).
    fn clamped(self) -> Self {
        Self {
            chunk: self.chunk.clamp(1, u64::from(u32::MAX)),
            max_links: self.max_links.max(2),
        }
    }
}

/// One raw leaf of a file's UnixFS DAG: its CID (CIDv1 raw sha2-256) and where its bytes are in
/// the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leaf {
    /// The leaf's CID.
    pub cid: Cid,
    /// Offset of the leaf's first byte in the file.
    pub offset: u64,
    /// Length of the leaf in bytes.
    pub len: u32,
}

/// A file's UnixFS view: its root CID, its leaves (slices of the file) and its internal nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// The file's UnixFS CID: the leaf's CID for a file of one chunk (or none), else the dag-pb
    /// root's.
    pub root: Cid,
    /// The file's size in bytes.
    pub size: u64,
    /// The raw leaves, in file order; one empty leaf for the empty file. Repeated content gives
    /// the same CID at several offsets.
    pub leaves: Vec<Leaf>,
    /// The dag-pb nodes (CIDv1 dag-pb sha2-256) with their bytes, each once (identical
    /// subtrees, as in a file of zeros, are one node), children before parents and the root
    /// last; empty for a file of one chunk.
    pub nodes: Vec<(Cid, Vec<u8>)>,
}

impl View {
    /// The view of a file held in memory.
    pub fn of(data: &[u8], layout: Layout) -> View {
        let mut builder = Builder::new(layout);
        builder.update(data);
        builder.finish()
    }

    /// The view of a file whose leaves were hashed elsewhere (on several threads, say): the
    /// leaves of `layout`'s chunks in file order, each [`leaf_cid`] of its bytes, and one empty
    /// leaf for the empty file.
    pub fn from_leaves(leaves: Vec<Leaf>, layout: Layout) -> View {
        let (root, nodes) = tree(&leaves, layout.clamped().max_links);
        View {
            root,
            size: leaves.iter().map(|l| u64::from(l.len)).sum(),
            leaves,
            nodes,
        }
    }
}

/// Builds a [`View`] from a file's bytes fed in pieces of any size. It keeps no copy of the
/// bytes: each piece is hashed as it comes, and only the current chunk's hasher state is held.
#[derive(Debug, Clone)]
pub struct Builder {
    layout: Layout,
    hasher: sha2::Sha256,
    /// Bytes of the current (unfinished) chunk hashed so far.
    in_chunk: u64,
    /// Bytes fed so far.
    size: u64,
    leaves: Vec<Leaf>,
}

impl Builder {
    /// A builder for a file cut and grouped by `layout`.
    pub fn new(layout: Layout) -> Self {
        Self {
            layout: layout.clamped(),
            hasher: sha2::Sha256::new(),
            in_chunk: 0,
            size: 0,
            leaves: Vec::new(),
        }
    }

    /// Feeds the next bytes of the file.
    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = self.layout.chunk - self.in_chunk;
            // `room` may exceed usize on 32-bit targets; then all of `data` fits.
            let take = usize::try_from(room).map_or(data.len(), |room| room.min(data.len()));
            let (now, rest) = data.split_at(take);
            self.hasher.update(now);
            self.in_chunk += take as u64;
            self.size += take as u64;
            data = rest;
            // The importer closes a chunk as soon as it is full, so a file of exactly n chunks
            // has n leaves and no empty one after them.
            if self.in_chunk == self.layout.chunk {
                self.close_leaf();
            }
        }
    }

    /// Ends the current chunk as a leaf.
    fn close_leaf(&mut self) {
        let digest = self.hasher.finalize_reset();
        let len = self.in_chunk;
        self.leaves.push(Leaf {
            cid: sha256_cid(RAW, &digest),
            offset: self.size - len,
            // The chunk is at most u32::MAX (see `Layout::clamped`).
            len: u32::try_from(len).unwrap_or(u32::MAX),
        });
        self.in_chunk = 0;
    }

    /// The view of the bytes fed so far.
    pub fn finish(mut self) -> View {
        // The importer's chunker yields the rest, or one empty chunk for an empty file.
        if self.in_chunk > 0 || self.leaves.is_empty() {
            self.close_leaf();
        }
        let (root, nodes) = tree(&self.leaves, self.layout.max_links);
        View {
            root,
            size: self.size,
            leaves: self.leaves,
            nodes,
        }
    }
}

impl std::io::Write for Builder {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The CID of a raw leaf of `data` (CIDv1 raw sha2-256).
pub fn leaf_cid(data: &[u8]) -> Cid {
    sha256_cid(RAW, &sha2::Sha256::digest(data))
}

fn sha256_cid(codec: u64, digest: &[u8]) -> Cid {
    // A 32-byte digest always fits the 64-byte multihash.
    Cid::new_v1(codec, Multihash::wrap(SHA2_256, digest).unwrap_or_default())
}

/// A child as its parent sees it.
struct Child {
    cid: Cid,
    /// The link's Tsize: the bytes of the child's whole DAG (blocks, not file bytes).
    tsize: u64,
    /// The file bytes under the child (its `blocksizes` entry).
    filesize: u64,
}

/// The root and the dag-pb nodes of the balanced layout over `leaves`, as
/// `ipfs-unixfs-importer`'s `balanced()` builds it: batches of `max_links` in order, level by
/// level, every batch (even of one) becoming a node, until one is left.
fn tree(leaves: &[Leaf], max_links: usize) -> (Cid, Vec<(Cid, Vec<u8>)>) {
    let mut nodes = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut level: Vec<Child> = leaves
        .iter()
        .map(|leaf| Child {
            cid: leaf.cid,
            tsize: u64::from(leaf.len),
            filesize: u64::from(leaf.len),
        })
        .collect();
    // reduceSingleLeafToSelf: one leaf is the whole file.
    while level.len() > 1 {
        level = level
            .chunks(max_links)
            .map(|group| {
                let bytes = encode_node(group);
                let cid = sha256_cid(DAG_PB, &sha2::Sha256::digest(&bytes));
                let child = Child {
                    cid,
                    tsize: bytes.len() as u64 + group.iter().map(|c| c.tsize).sum::<u64>(),
                    filesize: group.iter().map(|c| c.filesize).sum(),
                };
                // Repeated content (a file of zeros) gives identical subtrees: list each once.
                if seen.insert(cid) {
                    nodes.push((cid, bytes));
                }
                child
            })
            .collect();
    }
    // `leaves` is never empty (an empty file has one empty leaf); the fallback is the empty
    // file's CID all the same.
    let root = level.first().map_or_else(|| leaf_cid(&[]), |c| c.cid);
    (root, nodes)
}

// Protobuf keys (field number << 3 | wire type) of the fields written.
const PB_DATA: u8 = 0x0a; // PBNode field 1, length-delimited
const PB_LINKS: u8 = 0x12; // PBNode field 2, length-delimited
const LINK_HASH: u8 = 0x0a; // PBLink field 1, length-delimited
const LINK_NAME: u8 = 0x12; // PBLink field 2, length-delimited
const LINK_TSIZE: u8 = 0x18; // PBLink field 3, varint
const UNIXFS_TYPE: u8 = 0x08; // Data field 1, varint
const UNIXFS_FILESIZE: u8 = 0x18; // Data field 3, varint
const UNIXFS_BLOCKSIZE: u8 = 0x20; // Data field 4, varint (repeated, not packed: proto2)
/// UnixFS Data.DataType File.
const UNIXFS_FILE: u64 = 2;

/// The canonical dag-pb bytes of a UnixFS File node over `children`, byte for byte what
/// `@ipld/dag-pb` encodes for the importer's node: links first, each with Hash, an empty Name
/// (written, as a zero-length field) and Tsize; then Data.
fn encode_node(children: &[Child]) -> Vec<u8> {
    let mut data = Vec::with_capacity(16 + 11 * children.len());
    data.push(UNIXFS_TYPE);
    put_varint(&mut data, UNIXFS_FILE);
    data.push(UNIXFS_FILESIZE);
    put_varint(&mut data, children.iter().map(|c| c.filesize).sum());
    for child in children {
        data.push(UNIXFS_BLOCKSIZE);
        put_varint(&mut data, child.filesize);
    }

    let mut out = Vec::with_capacity(data.len() + 8 + children.len() * 56);
    for child in children {
        let hash = child.cid.to_bytes();
        let link_len =
            1 + varint_len(hash.len() as u64) + hash.len() + 2 + 1 + varint_len(child.tsize);
        out.push(PB_LINKS);
        put_varint(&mut out, link_len as u64);
        out.push(LINK_HASH);
        put_varint(&mut out, hash.len() as u64);
        out.extend_from_slice(&hash);
        out.extend_from_slice(&[LINK_NAME, 0]);
        out.push(LINK_TSIZE);
        put_varint(&mut out, child.tsize);
    }
    out.push(PB_DATA);
    put_varint(&mut out, data.len() as u64);
    out.extend_from_slice(&data);
    out
}

fn put_varint(out: &mut Vec<u8>, value: u64) {
    let mut buf = unsigned_varint::encode::u64_buffer();
    out.extend_from_slice(unsigned_varint::encode::u64(value, &mut buf));
}

fn varint_len(value: u64) -> usize {
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

/// Why bytes are not a well-formed dag-pb node.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnixfsError {
    /// The bytes end inside a field.
    #[error("dag-pb node is cut short")]
    Truncated,
    /// A varint runs past 64 bits.
    #[error("dag-pb node has a varint longer than 64 bits")]
    VarintOverflow,
    /// A field dag-pb does not have, or a known field with the wrong wire type.
    #[error("dag-pb {message} has an unexpected field {field} (wire type {wire_type})")]
    UnexpectedField {
        /// `PBNode` or `PBLink`.
        message: &'static str,
        /// The field number.
        field: u64,
        /// The protobuf wire type.
        wire_type: u8,
    },
    /// A field is repeated, or fields come in an order the dag-pb spec forbids.
    #[error("dag-pb node is not in canonical form: {0}")]
    NotCanonical(&'static str),
    /// A link has no Hash.
    #[error("dag-pb link has no Hash")]
    MissingHash,
    /// A link's Hash is not exactly one binary CID.
    #[error("dag-pb link Hash is not a CID: {0}")]
    BadHash(String),
    /// A link's Name is not UTF-8.
    #[error("dag-pb link Name is not UTF-8")]
    BadName,
}

/// The links of a dag-pb node's bytes: each child's CID with its Tsize (0 when the link has
/// none), in order. Checks that the bytes are a well-formed dag-pb node as the dag-pb spec and
/// `@ipld/dag-pb` read it: only the PBNode/PBLink fields with their wire types, link fields in
/// schema order and none repeated, one Data at most, Links not split around Data (either order
/// of the two is accepted, as IPFS data exists in both), every link with a Hash that is a CID.
/// Names are checked to be UTF-8 and then dropped. The Data (UnixFS or not) is not looked into.
pub fn links(node: &[u8]) -> Result<Vec<(Cid, u64)>, UnixfsError> {
    let mut reader = Reader(node);
    let mut links = Vec::new();
    let mut data_seen = false;
    let mut links_before_data = false;
    while !reader.0.is_empty() {
        let (field, wire_type) = reader.key()?;
        match (field, wire_type) {
            (1, 2) => {
                if data_seen {
                    return Err(UnixfsError::NotCanonical("Data appears twice"));
                }
                reader.bytes()?;
                data_seen = true;
                links_before_data = !links.is_empty();
            }
            (2, 2) => {
                if links_before_data {
                    return Err(UnixfsError::NotCanonical("Links on both sides of Data"));
                }
                links.push(link(reader.bytes()?)?);
            }
            (field, wire_type) => {
                return Err(UnixfsError::UnexpectedField {
                    message: "PBNode",
                    field,
                    wire_type,
                });
            }
        }
    }
    Ok(links)
}

/// One PBLink: Hash, then optional Name, then optional Tsize.
fn link(bytes: &[u8]) -> Result<(Cid, u64), UnixfsError> {
    let mut reader = Reader(bytes);
    let mut hash = None;
    // The last field read (1 Hash, 2 Name, 3 Tsize): each must come after the one before.
    let mut last = 0;
    let mut tsize = 0;
    while !reader.0.is_empty() {
        let (field, wire_type) = reader.key()?;
        if (1..=3).contains(&field) && field <= last {
            return Err(UnixfsError::NotCanonical(
                "PBLink fields repeated or out of order",
            ));
        }
        match (field, wire_type) {
            (1, 2) => {
                let raw = reader.bytes()?;
                let cid = Cid::read_bytes(raw).map_err(|e| UnixfsError::BadHash(e.to_string()))?;
                if cid.encoded_len() != raw.len() {
                    return Err(UnixfsError::BadHash("bytes after the CID".into()));
                }
                hash = Some(cid);
            }
            (2, 2) => {
                std::str::from_utf8(reader.bytes()?).map_err(|_| UnixfsError::BadName)?;
            }
            (3, 0) => tsize = reader.varint()?,
            (field, wire_type) => {
                return Err(UnixfsError::UnexpectedField {
                    message: "PBLink",
                    field,
                    wire_type,
                });
            }
        }
        last = field;
    }
    Ok((hash.ok_or(UnixfsError::MissingHash)?, tsize))
}

/// Reads protobuf from the front of a slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// A varint; non-minimal forms are accepted, as protobuf (and `@ipld/dag-pb`) does.
    fn varint(&mut self) -> Result<u64, UnixfsError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.0.split_first().ok_or(UnixfsError::Truncated)?;
            self.0 = rest;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(UnixfsError::VarintOverflow);
            }
            value |= bits << shift;
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(UnixfsError::VarintOverflow)
    }

    /// A field key: (field number, wire type).
    fn key(&mut self) -> Result<(u64, u8), UnixfsError> {
        let key = self.varint()?;
        Ok((key >> 3, (key & 7) as u8))
    }

    /// A length-delimited field's bytes.
    fn bytes(&mut self) -> Result<&'a [u8], UnixfsError> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| UnixfsError::Truncated)?;
        if len > self.0.len() {
            return Err(UnixfsError::Truncated);
        }
        let (bytes, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cid(text: &str) -> Cid {
        text.parse().unwrap()
    }

    #[test]
    fn small_files_are_their_raw_leaf() {
        // What ipfs-unixfs-importer 17.1.1 gives with the unixfs-v1-2025 profile.
        let empty = View::of(b"", Layout::default());
        assert_eq!(
            empty.root,
            cid("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
        );
        assert_eq!(empty.leaves.len(), 1);
        assert_eq!(empty.leaves[0].len, 0);
        assert!(empty.nodes.is_empty());
        let a = View::of(b"a", Layout::default());
        assert_eq!(
            a.root,
            cid("bafkreigks6arfsq3xxfpvqrrwonchxcnu6do76auprhhfomao6c273sixm")
        );
        assert_eq!(a.root, leaf_cid(b"a"));
        assert_eq!(a.size, 1);
    }

    #[test]
    fn a_view_from_leaves_hashed_elsewhere_is_the_same_view() {
        let layout = Layout {
            chunk: 16,
            max_links: 3,
        };
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 31 % 251) as u8).collect();
        for len in [0, 1, 15, 16, 17, 48, 500, 1000] {
            let data = &data[..len];
            let mut leaves: Vec<Leaf> = data
                .chunks(16)
                .enumerate()
                .map(|(i, c)| Leaf {
                    cid: leaf_cid(c),
                    offset: i as u64 * 16,
                    len: c.len() as u32,
                })
                .collect();
            if leaves.is_empty() {
                leaves.push(Leaf {
                    cid: leaf_cid(b""),
                    offset: 0,
                    len: 0,
                });
            }
            assert_eq!(
                View::from_leaves(leaves, layout),
                View::of(data, layout),
                "{len}"
            );
        }
    }

    #[test]
    fn a_lone_last_leaf_gets_its_own_parent() {
        let data = vec![7u8; 5 * 4];
        let view = View::of(
            &data,
            Layout {
                chunk: 4,
                max_links: 4,
            },
        );
        // 5 leaves: [4] [1] under two nodes, and the root over them.
        assert_eq!(view.leaves.len(), 5);
        assert_eq!(view.nodes.len(), 3);
        assert_eq!(
            links(&view.nodes[1].1).unwrap(),
            vec![(view.leaves[4].cid, 4)]
        );
        let root = links(&view.nodes[2].1).unwrap();
        assert_eq!(root.len(), 2);
        assert_eq!(view.root, view.nodes[2].0);
    }

    #[test]
    fn nodes_are_canonical_dag_pb() {
        let view = View::of(
            b"abcdef",
            Layout {
                chunk: 3,
                max_links: 4,
            },
        );
        let (_, bytes) = &view.nodes[0];
        let hash = view.leaves[0].cid.to_bytes();
        let mut expected = vec![0x12, 42, 0x0a, 36];
        expected.extend_from_slice(&hash);
        expected.extend_from_slice(&[0x12, 0, 0x18, 3]);
        assert_eq!(&bytes[..expected.len()], expected.as_slice());
        // Data: Type File, filesize 6, blocksizes 3 and 3 (not packed).
        assert_eq!(
            &bytes[bytes.len() - 10..],
            &[0x0a, 8, 0x08, 2, 0x18, 6, 0x20, 3, 0x20, 3]
        );
    }

    #[test]
    fn varints_round_trip() {
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
            assert_eq!(Reader(&out).varint().unwrap(), v);
        }
        let too_long = [0xffu8; 10];
        assert_eq!(Reader(&too_long).varint(), Err(UnixfsError::VarintOverflow));
    }
}

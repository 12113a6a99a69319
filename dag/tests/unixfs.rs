//! The UnixFS view of files (`mnode_dag::unixfs`): its structure, its streaming builder, its
//! dag-pb reader, and — the point of it — agreement with `ipfs-unixfs-importer` 17.1.1
//! (`unixfs-v1-2025` profile), run by `tests/interop/unixfs.mjs`, on the root CID and on every
//! block of the DAG.
//!
//! The JS check needs Node.js (>= 20.19) and npm on PATH, like `js_interop.rs`: a missing `node`
//! fails the test rather than skipping it, and a missing `ipfs-unixfs-importer` under
//! `tests/interop/node_modules` is installed with `npm ci` first.
#![allow(clippy::unwrap_used)]

use std::{
    collections::{BTreeSet, HashMap},
    io::ErrorKind,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use mnode_dag::{
    Cid, cids,
    unixfs::{self, Builder, CHUNK, Layout, Leaf, MAX_LINKS, UnixfsError, View},
};
use proptest::prelude::*;

/// `len` pseudo-random bytes from `seed` (splitmix64), the same on every run.
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn layout(chunk: u64, max_links: usize) -> Layout {
    Layout { chunk, max_links }
}

/// The Tsize of the DAG under `cid` in `view` (what the parent's link says).
fn tsize(view: &View, cid: &Cid) -> u64 {
    match view.nodes.iter().find(|(c, _)| c == cid) {
        Some((_, bytes)) => {
            bytes.len() as u64
                + unixfs::links(bytes)
                    .unwrap()
                    .iter()
                    .map(|(_, t)| t)
                    .sum::<u64>()
        }
        None => u64::from(view.leaves.iter().find(|l| l.cid == *cid).unwrap().len),
    }
}

/// Checks everything a view promises about itself and `data`; returns the tree's depth.
fn check_view(view: &View, data: &[u8], layout: Layout) -> usize {
    assert_eq!(view.size, data.len() as u64);

    // The leaves cut the file exactly, in order, full chunks but the last.
    let mut offset = 0u64;
    for (i, leaf) in view.leaves.iter().enumerate() {
        assert_eq!(leaf.offset, offset, "leaf {i}");
        let end = (leaf.offset + u64::from(leaf.len)) as usize;
        let slice = &data[leaf.offset as usize..end];
        assert_eq!(leaf.cid, unixfs::leaf_cid(slice), "leaf {i}");
        assert_eq!(leaf.cid.codec(), cids::RAW);
        if i + 1 < view.leaves.len() {
            assert_eq!(u64::from(leaf.len), layout.chunk, "leaf {i} is not full");
        } else {
            assert!(u64::from(leaf.len) <= layout.chunk);
        }
        offset = end as u64;
    }
    assert_eq!(
        offset,
        data.len() as u64,
        "the leaves do not cover the file"
    );
    let expected_leaves = data.len().div_ceil(layout.chunk as usize).max(1);
    assert_eq!(view.leaves.len(), expected_leaves);

    if view.leaves.len() == 1 {
        assert!(view.nodes.is_empty());
        assert_eq!(view.root, view.leaves[0].cid);
        return 0;
    }

    // Every node hashes to its CID, lists its children (nodes before it, or leaves) with their
    // Tsize, and a walk from the root meets the leaves in file order and every node once.
    let position: HashMap<Cid, usize> = view
        .nodes
        .iter()
        .enumerate()
        .map(|(i, (cid, _))| (*cid, i))
        .collect();
    assert_eq!(position.len(), view.nodes.len(), "a node is listed twice");
    assert_eq!(
        view.nodes.last().unwrap().0,
        view.root,
        "the root is not last"
    );
    for (i, (cid, bytes)) in view.nodes.iter().enumerate() {
        assert_eq!(cid.codec(), unixfs::DAG_PB);
        assert_eq!(cid.version(), cid::Version::V1);
        cids::verify_block(cid, bytes).unwrap();
        let links = unixfs::links(bytes).unwrap();
        assert!(!links.is_empty() && links.len() <= layout.max_links);
        for (child, child_tsize) in links {
            if let Some(&j) = position.get(&child) {
                assert!(j < i, "node {i} comes before its child {j}");
            }
            assert_eq!(child_tsize, tsize(view, &child));
        }
    }
    let mut walked_leaves = Vec::new();
    let mut walked_nodes = BTreeSet::new();
    let mut depths = BTreeSet::new();
    let mut stack = vec![(view.root, 0usize)];
    while let Some((cid, depth)) = stack.pop() {
        match position.get(&cid) {
            Some(&i) => {
                walked_nodes.insert(cid);
                let links = unixfs::links(&view.nodes[i].1).unwrap();
                stack.extend(links.iter().rev().map(|(c, _)| (*c, depth + 1)));
            }
            None => {
                walked_leaves.push(cid);
                depths.insert(depth);
            }
        }
    }
    assert_eq!(walked_nodes.len(), view.nodes.len(), "unreachable nodes");
    let leaves: Vec<Cid> = view.leaves.iter().map(|l| l.cid).collect();
    assert_eq!(walked_leaves, leaves);
    // Balanced: every leaf at the same depth.
    assert_eq!(depths.len(), 1, "leaves at depths {depths:?}");
    depths.into_iter().next().unwrap()
}

#[test]
fn the_default_layout_is_the_2025_profile() {
    assert_eq!(Layout::default(), layout(1 << 20, 1024));
    assert_eq!((CHUNK, MAX_LINKS), (1_048_576, 1024));
    assert_eq!(unixfs::DAG_PB, 0x70);
}

#[test]
fn views_are_well_formed_balanced_trees() {
    let cases: &[(u64, usize, usize, usize)] = &[
        // (chunk, max_links, size, depth)
        (4, 4, 0, 0),
        (4, 4, 4, 0),
        (4, 4, 5, 1),
        (4, 4, 16, 1),
        (4, 4, 17, 2),
        (4, 4, 64, 2),
        (4, 4, 65, 3),
        (4, 3, 4 * 27, 3),
        (4, 3, 4 * 27 + 1, 4),
        (1, 2, 9, 4),
        (7, 5, 1000, 4),
    ];
    for &(chunk, max_links, size, depth) in cases {
        let layout = layout(chunk, max_links);
        let data = bytes(size as u64, size);
        let view = View::of(&data, layout);
        assert_eq!(
            check_view(&view, &data, layout),
            depth,
            "chunk {chunk}, max_links {max_links}, size {size}"
        );
    }
}

#[test]
fn a_one_chunk_file_is_its_raw_leaf() {
    for size in [0, 1, CHUNK as usize - 1, CHUNK as usize] {
        let data = bytes(1, size);
        let view = View::of(&data, Layout::default());
        assert_eq!(view.root, unixfs::leaf_cid(&data));
        assert_eq!(
            view.leaves,
            vec![Leaf {
                cid: view.root,
                offset: 0,
                len: size as u32
            }]
        );
        assert!(view.nodes.is_empty());
    }
    let two = View::of(&bytes(1, CHUNK as usize + 1), Layout::default());
    assert_eq!(two.leaves.len(), 2);
    assert_eq!(two.leaves[1].len, 1);
    assert_eq!(two.nodes.len(), 1);
    assert_eq!(two.root.codec(), unixfs::DAG_PB);
}

#[test]
fn identical_subtrees_are_one_node() {
    let data = vec![0u8; 64];
    let layout = layout(4, 2);
    let view = View::of(&data, layout);
    // 16 equal leaves, then 8, 4, 2 and 1 equal nodes: one node per level.
    assert_eq!(view.leaves.len(), 16);
    assert!(view.leaves.iter().all(|l| l.cid == view.leaves[0].cid));
    assert_eq!(view.nodes.len(), 4);
    assert_eq!(check_view(&view, &data, layout), 4);
}

#[test]
fn out_of_range_layouts_are_clamped_not_looped() {
    let data = bytes(2, 10);
    // max_links 1 would never reduce to one root; chunk 0 would never fill.
    let view = View::of(&data, layout(1, 1));
    assert_eq!(view, View::of(&data, layout(1, 2)));
    assert_eq!(View::of(&data, layout(0, 3)), View::of(&data, layout(1, 3)));
}

#[test]
fn builder_is_an_io_write() {
    let data = bytes(3, 10_000);
    let mut builder = Builder::new(layout(100, 3));
    std::io::copy(&mut data.as_slice(), &mut builder).unwrap();
    assert_eq!(builder.finish(), View::of(&data, layout(100, 3)));
}

proptest! {
    #[test]
    fn builder_fed_in_pieces_equals_view_of(
        size in 0usize..3000,
        seed in any::<u64>(),
        chunk in 1u64..200,
        max_links in 2usize..6,
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let data = bytes(seed, size);
        let layout = layout(chunk, max_links);
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(size + 1)).collect();
        points.extend([0, size]);
        points.sort_unstable();
        let mut builder = Builder::new(layout);
        for pair in points.windows(2) {
            builder.update(&data[pair[0]..pair[1]]);
        }
        let view = builder.finish();
        prop_assert_eq!(&view, &View::of(&data, layout));
        check_view(&view, &data, layout);
    }

    #[test]
    fn links_never_panics(node in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = unixfs::links(&node);
    }

    #[test]
    fn every_cut_of_a_node_is_an_error_or_a_prefix_of_its_links(
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let data = bytes(4, 40);
        let view = View::of(&data, layout(10, 4));
        let node = &view.nodes[0].1;
        let all = unixfs::links(node).unwrap();
        let cut = cut.index(node.len());
        if let Ok(some) = unixfs::links(&node[..cut]) {
            prop_assert!(some.len() <= all.len() && some == all[..some.len()]);
        }
        let mut flipped = node.clone();
        flipped[flip.index(node.len())] ^= 1 << bit;
        let _ = unixfs::links(&flipped);
    }
}

/// A PBLink's bytes: each part is (key, payload), written as given.
fn link_bytes(fields: &[(u8, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, payload) in fields {
        out.push(*key);
        if key & 7 == 2 {
            out.push(payload.len() as u8);
        }
        out.extend_from_slice(payload);
    }
    out
}

fn node_bytes(fields: &[(u8, &[u8])]) -> Vec<u8> {
    link_bytes(fields)
}

#[test]
fn well_formed_dag_pb_is_read() {
    let leaf = unixfs::leaf_cid(b"x");
    let hash = leaf.to_bytes();
    let link = link_bytes(&[(0x0a, &hash), (0x12, b"name"), (0x18, &[0x80, 0x01])]);
    let bare = link_bytes(&[(0x0a, &hash)]);
    // Links then Data (canonical), Data then Links (legacy go-ipfs), no Data, no Links.
    for (node, expected) in [
        (
            node_bytes(&[(0x12, &link), (0x0a, b"d")]),
            vec![(leaf, 128)],
        ),
        (
            node_bytes(&[(0x0a, b"d"), (0x12, &link), (0x12, &bare)]),
            vec![(leaf, 128), (leaf, 0)],
        ),
        (node_bytes(&[(0x12, &bare)]), vec![(leaf, 0)]),
        (node_bytes(&[(0x0a, b"")]), vec![]),
        (vec![], vec![]),
    ] {
        assert_eq!(unixfs::links(&node).unwrap(), expected, "{node:02x?}");
    }
    // A CIDv0 (sha2-256 multihash alone) is a CID too.
    let v0: Cid = "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n"
        .parse()
        .unwrap();
    let v0_link = link_bytes(&[(0x0a, &v0.to_bytes())]);
    assert_eq!(
        unixfs::links(&node_bytes(&[(0x12, &v0_link)])).unwrap(),
        vec![(v0, 0)]
    );
}

#[test]
fn malformed_dag_pb_is_an_error() {
    let hash = unixfs::leaf_cid(b"x").to_bytes();
    let good = link_bytes(&[(0x0a, &hash), (0x12, b""), (0x18, &[5])]);
    let mut long_hash = hash.clone();
    long_hash.push(0);
    let link = |fields: &[(u8, &[u8])]| node_bytes(&[(0x12, &link_bytes(fields))]);
    type Case = (&'static str, Vec<u8>, fn(&UnixfsError) -> bool);
    let cases: Vec<Case> = vec![
        (
            "cut in a link",
            node_bytes(&[(0x12, &good)])[..20].to_vec(),
            |e| matches!(e, UnixfsError::Truncated),
        ),
        ("cut in a key", vec![0x80], |e| {
            matches!(e, UnixfsError::Truncated)
        }),
        ("length past the end", vec![0x0a, 5, 1, 2], |e| {
            matches!(e, UnixfsError::Truncated)
        }),
        (
            "varint over 64 bits",
            [vec![0x0a], vec![0xff; 10], vec![1]].concat(),
            |e| matches!(e, UnixfsError::VarintOverflow),
        ),
        (
            "Data twice",
            node_bytes(&[(0x0a, b"a"), (0x0a, b"b")]),
            |e| matches!(e, UnixfsError::NotCanonical(_)),
        ),
        (
            "Links on both sides of Data",
            node_bytes(&[(0x12, &good), (0x0a, b"a"), (0x12, &good)]),
            |e| matches!(e, UnixfsError::NotCanonical(_)),
        ),
        ("unknown PBNode field", node_bytes(&[(0x1a, b"a")]), |e| {
            matches!(
                e,
                UnixfsError::UnexpectedField {
                    message: "PBNode",
                    field: 3,
                    ..
                }
            )
        }),
        ("Data as a varint", vec![0x08, 1], |e| {
            matches!(
                e,
                UnixfsError::UnexpectedField {
                    field: 1,
                    wire_type: 0,
                    ..
                }
            )
        }),
        (
            "Name before Hash",
            link(&[(0x12, b""), (0x0a, &hash)]),
            |e| matches!(e, UnixfsError::NotCanonical(_)),
        ),
        (
            "Tsize before Name",
            link(&[(0x0a, &hash), (0x18, &[1]), (0x12, b"")]),
            |e| matches!(e, UnixfsError::NotCanonical(_)),
        ),
        ("Hash twice", link(&[(0x0a, &hash), (0x0a, &hash)]), |e| {
            matches!(e, UnixfsError::NotCanonical(_))
        }),
        (
            "Tsize twice",
            link(&[(0x0a, &hash), (0x18, &[1]), (0x18, &[1])]),
            |e| matches!(e, UnixfsError::NotCanonical(_)),
        ),
        (
            "Tsize as bytes",
            link(&[(0x0a, &hash), (0x1a, b"1")]),
            |e| {
                matches!(
                    e,
                    UnixfsError::UnexpectedField {
                        message: "PBLink",
                        field: 3,
                        wire_type: 2
                    }
                )
            },
        ),
        (
            "unknown PBLink field",
            link(&[(0x0a, &hash), (0x20, &[1])]),
            |e| {
                matches!(
                    e,
                    UnixfsError::UnexpectedField {
                        message: "PBLink",
                        field: 4,
                        ..
                    }
                )
            },
        ),
        ("no Hash", link(&[(0x12, b"a")]), |e| {
            matches!(e, UnixfsError::MissingHash)
        }),
        ("empty link", node_bytes(&[(0x12, b"")]), |e| {
            matches!(e, UnixfsError::MissingHash)
        }),
        ("Hash not a CID", link(&[(0x0a, b"abc")]), |e| {
            matches!(e, UnixfsError::BadHash(_))
        }),
        ("bytes after the CID", link(&[(0x0a, &long_hash)]), |e| {
            matches!(e, UnixfsError::BadHash(_))
        }),
        (
            "Name not UTF-8",
            link(&[(0x0a, &hash), (0x12, &[0xff, 0xfe])]),
            |e| matches!(e, UnixfsError::BadName),
        ),
    ];
    for (what, node, expected) in cases {
        match unixfs::links(&node) {
            Err(e) => assert!(expected(&e), "{what}: wrong error {e:?}"),
            Ok(links) => panic!("{what}: {node:02x?} read as {links:?}"),
        }
    }
}

// ---- Interop with ipfs-unixfs-importer -------------------------------------------------------

/// This crate's folder, as the test runner says when the test runs (see `js_interop.rs`).
fn crate_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), Into::into)
}

/// Runs `program args` in `dir`, failing the test with a clear message if it can't be started.
fn run(dir: &Path, program: &str, args: &[&str]) -> Output {
    match Command::new(program).args(args).current_dir(dir).output() {
        Ok(output) => output,
        Err(e) if e.kind() == ErrorKind::NotFound => panic!(
            "`{program}` was not found on PATH: the UnixFS interop check needs Node.js \
             (>= 20.19) and npm (e.g. `apt-get install nodejs npm`)"
        ),
        Err(e) => panic!(
            "could not run `{program} {}` in {}: {e}",
            args.join(" "),
            dir.display()
        ),
    }
}

fn assert_success(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "`{what}` failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}

#[derive(Debug, serde::Deserialize)]
struct Imported {
    root: String,
    size: u64,
    blocks: Vec<String>,
}

/// What the importer makes of files of `sizes` bytes (`None`: the profile's own layout).
fn import(dir: &Path, name: &str, files: &[Vec<u8>], layout: Option<Layout>) -> Vec<Imported> {
    let interop = crate_dir().join("tests/interop");
    let mut args = vec!["unixfs.mjs".to_owned()];
    if let Some(layout) = layout {
        args.extend([
            "--chunk".into(),
            layout.chunk.to_string(),
            "--max-links".into(),
            layout.max_links.to_string(),
        ]);
    }
    for (i, data) in files.iter().enumerate() {
        let path = dir.join(format!("{name}-{i}"));
        std::fs::write(&path, data).unwrap();
        args.push(path.to_str().unwrap().to_owned());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = run(&interop, "node", &args);
    assert_success("node unixfs.mjs", &output);
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Compares mnode's view of pseudo-random files of `sizes` bytes with the importer's.
fn compare(dir: &Path, name: &str, sizes: &[usize], layout: Option<Layout>) {
    let files: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &size)| bytes(i as u64 * 1000 + size as u64, size))
        .collect();
    compare_files(dir, name, &files, layout);
}

/// Compares mnode's view of `files` with the importer's.
fn compare_files(dir: &Path, name: &str, files: &[Vec<u8>], layout: Option<Layout>) {
    let imported = import(dir, name, files, layout);
    assert_eq!(imported.len(), files.len());
    for (data, js) in files.iter().zip(&imported) {
        let ours = View::of(data, layout.unwrap_or_default());
        let what = format!("{name}: {} bytes", data.len());
        assert_eq!(ours.root.to_string(), js.root, "{what}: root");
        let blocks: BTreeSet<String> = ours
            .leaves
            .iter()
            .map(|l| l.cid)
            .chain(ours.nodes.iter().map(|(c, _)| *c))
            .map(|c| c.to_string())
            .collect();
        let theirs: BTreeSet<String> = js.blocks.iter().cloned().collect();
        assert_eq!(blocks, theirs, "{what}: blocks");
        assert_eq!(tsize(&ours, &ours.root), js.size, "{what}: DAG size");
    }
}

#[test]
fn roots_and_blocks_match_ipfs_unixfs_importer() {
    let interop = crate_dir().join("tests/interop");
    let version = run(&interop, "node", &["--version"]);
    assert_success("node --version", &version);
    if !interop.join("node_modules/ipfs-unixfs-importer").is_dir() {
        let install = run(&interop, "npm", &["ci", "--no-audit", "--no-fund"]);
        assert_success("npm ci --no-audit --no-fund", &install);
    }

    let dir = std::env::temp_dir().join(format!("mnode-unixfs-interop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let c = CHUNK as usize;
    compare(&dir, "default", &[0, 1, c - 1, c, c + 1, 3 * c + 5], None);
    let k = 1024;
    // 4 links: 1 leaf; 2 and 4 leaves (one level); 5 (a lone leaf in the last group), 16 and
    // 17 (two levels); 18 and 65 leaves (three and four levels, partial last groups).
    compare(
        &dir,
        "4-links",
        &[
            k,
            k + 1,
            4 * k,
            4 * k + 1,
            16 * k,
            16 * k + 1,
            17 * k + 1,
            64 * k + 3,
        ],
        Some(layout(k as u64, 4)),
    );
    // 3 links: 3, 4, 9, 10, 27 and 28 leaves.
    compare(
        &dir,
        "3-links",
        &[3 * k, 4 * k - 1, 9 * k, 9 * k + 7, 27 * k, 27 * k + 1],
        Some(layout(k as u64, 3)),
    );
    // A chunk size that is no power of two, and the smallest fan-out.
    compare(
        &dir,
        "2-links",
        &[0, 999, 1000, 4321],
        Some(layout(1000, 2)),
    );
    // Repeated content: identical leaves and identical subtrees.
    compare_files(&dir, "zeros", &[vec![0; 3 * c + 1]], None);
    compare_files(
        &dir,
        "zeros-4-links",
        &[vec![0; 20 * k], vec![0; 64 * k + 1]],
        Some(layout(k as u64, 4)),
    );

    std::fs::remove_dir_all(&dir).unwrap();
}

//! Replays every committed fuzz seed and crash file (`fuzz/corpus/<target>/`,
//! `fuzz/artifacts/<target>/`) through the entry points of `mnode_tests::fuzz`, so a decoder
//! that once broke on an input is held to it on every `cargo test`.
//!
//! The seeds are made from the golden vectors by `write_seed_corpora`, run by hand:
//! `cargo test -p mnode-tests --test corpus -- --ignored write_seed_corpora`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use mnode_dag::{Record, car::CarWriter, cbor, json};
use mnode_protocols::{
    GossipTopic,
    bitswap::protocol::{Block, Message as BitswapMessage, WantlistEntry},
    gossip,
    sync::{self, Session, SyncSet},
};
use mnode_tests::fuzz::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn every_seed_and_crash_file_is_handled() {
    for (name, target) in TARGETS {
        let seeds = files(&fuzz_dir().join("corpus").join(name));
        assert!(
            seeds.len() >= 3,
            "fuzz/corpus/{name} has {} seeds; run write_seed_corpora",
            seeds.len()
        );
        let crashes = files(&fuzz_dir().join("artifacts").join(name));
        for file in seeds.iter().chain(&crashes) {
            let data = std::fs::read(file).unwrap();
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name} panicked on {}", file.display());
        }
    }
}

/// The golden vectors' records.
fn vectors() -> Vec<Record> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dag/tests/vectors");
    files(&dir)
        .iter()
        .map(|p| {
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
            let hex = v["cbor_hex"].as_str().unwrap();
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            Record::decode(&bytes).unwrap()
        })
        .collect()
}

#[test]
#[ignore = "writes fuzz/corpus; run by hand when the vectors change"]
fn write_seed_corpora() {
    let records = vectors();
    let mut seeds: Vec<(&str, String, Vec<u8>)> = Vec::new();
    for r in &records {
        let name = r.cid().to_string();
        seeds.push(("dag_cbor", name.clone(), r.bytes().to_vec()));
        seeds.push(("record", name.clone(), r.bytes().to_vec()));
        let ipld = cbor::decode_ipld(r.bytes()).unwrap();
        seeds.push((
            "dag_json",
            name.clone(),
            json::to_dag_json(&ipld).unwrap().into_bytes(),
        ));
        seeds.push(("gossip", name.clone(), gossip::Message::new(r).to_bytes()));
        let block = BitswapMessage {
            blocks: vec![Block::new(
                &r.cid(),
                bytes::Bytes::copy_from_slice(r.bytes()),
            )],
            ..BitswapMessage::default()
        };
        seeds.push(("bitswap", format!("block-{name}"), block.encode()));
        let want = BitswapMessage {
            wantlist: vec![WantlistEntry::want_block(r.cid())],
            full: true,
            ..BitswapMessage::default()
        };
        seeds.push(("bitswap", format!("want-{name}"), want.encode()));
    }
    // CARs: all the vectors under one root, one record alone, and a header with no blocks.
    for (label, blocks) in [
        ("all", &records[..]),
        ("one", &records[..1]),
        ("none", &[][..]),
    ] {
        let roots: Vec<_> = blocks.iter().take(1).map(Record::cid).collect();
        let mut w = CarWriter::new(Vec::new(), &roots).unwrap();
        for r in blocks {
            w.write_block(&r.cid(), r.bytes()).unwrap();
        }
        seeds.push(("car", label.to_owned(), w.finish().unwrap()));
    }
    for (i, q) in [
        "art.artists.list()",
        "social.posts.tag = 'jazz'",
        "art.releases.tag = 'music/folk'.limit(5)",
        "social.posts.count()",
        "core.profiles.author = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK'",
    ]
    .iter()
    .enumerate()
    {
        seeds.push(("query", format!("q{i}"), q.as_bytes().to_vec()));
    }
    // A client's first reconciliation message, for sets of several sizes.
    for n in [0, 1, records.len()] {
        let set = SyncSet::new(records.iter().take(n).map(sync::item_of));
        let topic = GossipTopic::Author(*records[0].author());
        let (_, first) = Session::new(topic, &set, &sync::Config::default()).unwrap();
        seeds.push(("sync_reconcile", format!("first-{n}"), first));
    }
    for (target, name, data) in seeds {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), data).unwrap();
    }
}

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

/// This crate's folder, as the test runner says when the test runs: a binary built in another
/// checkout that shares the target dir (and counts as fresh here) carries that checkout's path.
fn crate_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), Into::into)
}

fn fuzz_dir() -> PathBuf {
    crate_dir().join("../fuzz")
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
    let dir = crate_dir().join("../dag/tests/vectors");
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
    blob_exchange_seeds(&records, &mut seeds);
    upload_seeds(&mut seeds);
    // dag-pb nodes of UnixFS views: a 1024-link root, a two-level tree's nodes, and a node
    // with one link.
    for (label, len, chunk, max_links) in [
        ("wide", 4_000_000, 4096, 1024),
        ("deep", 20_000, 1000, 4),
        ("one", 1500, 1000, 1024),
    ] {
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        let view =
            mnode_dag::unixfs::View::of(&data, mnode_dag::unixfs::Layout { chunk, max_links });
        for (i, (_, node)) in view.nodes.iter().enumerate().take(3) {
            seeds.push(("dag_pb", format!("{label}-{i}"), node.clone()));
        }
    }
    let default = mnode_config::Config::default().to_commented_yaml();
    seeds.push(("config", "default".into(), default.into_bytes()));
    for (i, text) in [
        "api:\n  listen: 127.0.0.1:5002\n  open_registration: false\n",
        "network:\n  listen: [/ip4/127.0.0.1/tcp/0]\n  bootstrap: []\n",
        "store:\n  cache_mb: 64\nlog:\n  level: debug\n",
    ]
    .iter()
    .enumerate()
    {
        // Seeds the fuzzer starts from are configs a node accepts.
        mnode_config::Config::parse(text, "seed").unwrap();
        seeds.push(("config", format!("c{i}"), text.as_bytes().to_vec()));
    }
    for (target, name, data) in seeds {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), data).unwrap();
    }
}

/// Requests and answers of the blob-address exchange, as the node's codec writes them.
fn blob_exchange_seeds(records: &[Record], seeds: &mut Vec<(&str, String, Vec<u8>)>) {
    use futures::executor::block_on;
    use libp2p::request_response::{Codec as _, cbor::codec::Codec};
    use mnode_protocols::blobs::{PROTOCOL, Request, Response};
    let mut codec = Codec::<Request, Response>::default();
    let cids: Vec<_> = records.iter().map(Record::cid).collect();
    let addrs = vec![
        "127.0.0.1:4002".parse().unwrap(),
        "[::1]:4002".parse().unwrap(),
    ];
    for (name, req) in [("addr", Request::Addr), ("has", Request::Has(cids.clone()))] {
        let mut out = futures::io::Cursor::new(Vec::new());
        block_on(codec.write_request(&PROTOCOL, &mut out, req)).unwrap();
        seeds.push(("blob_exchange", format!("request-{name}"), out.into_inner()));
    }
    for (name, resp) in [
        ("addr", Response::Addr(addrs.clone())),
        (
            "has",
            Response::Has {
                have: cids.iter().map(|c| c.to_bytes()[3] % 2 == 0).collect(),
                addrs,
                relay: Some("http://203.0.113.10:3340/".into()),
            },
        ),
        ("error", Response::Error("too many CIDs".into())),
    ] {
        let mut out = futures::io::Cursor::new(Vec::new());
        block_on(codec.write_response(&PROTOCOL, &mut out, resp)).unwrap();
        seeds.push((
            "blob_exchange",
            format!("response-{name}"),
            out.into_inner(),
        ));
    }
}

/// Multipart uploads: `Content-Type` on the first line, the body after it.
fn upload_seeds(seeds: &mut Vec<(&str, String, Vec<u8>)>) {
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x02\0\0\0\x03\x08\x06\0\0\0".to_vec();
    let part = |name: &str, headers: &str, body: &[u8]| {
        [
            format!("--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"{headers}\r\n\r\n")
                .into_bytes(),
            body.to_vec(),
            b"\r\n".to_vec(),
        ]
        .concat()
    };
    let upload = |parts: Vec<Vec<u8>>| {
        [
            b"multipart/form-data; boundary=XyZ\n".to_vec(),
            parts.concat(),
            b"--XyZ--\r\n".to_vec(),
        ]
        .concat()
    };
    seeds.push((
        "upload",
        "image".into(),
        upload(vec![part(
            "file",
            "; filename=\"cover.png\"\r\nContent-Type: image/png",
            &png,
        )]),
    ));
    seeds.push((
        "upload",
        "named-text".into(),
        upload(vec![
            part("name", "", b"Liner notes.md"),
            part(
                "file",
                "; filename=\"../notes.txt\"\r\nContent-Type: text/plain",
                b"# Notes\n",
            ),
        ]),
    ));
    seeds.push((
        "upload",
        "two-files".into(),
        upload(vec![
            part("file", "; filename=\"a.flac\"", &[0, 1, 2, 3]),
            part(
                "file",
                "\r\nContent-Type: application/x-www-form-urlencoded",
                b"plain words",
            ),
            part("other", "", b"ignored"),
        ]),
    ));
}

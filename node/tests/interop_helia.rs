//! Helia fetches a release from a running node over Bitswap, with the fetch script of the
//! protocols crate (`protocols/tests/interop/bitswap.mjs`: TCP, noise, yamux and identify;
//! Bitswap is Helia's only block broker).
//!
//! Needs Node.js (>= 20.19) and `npm ci` in `protocols/tests/interop`. Without `node_modules`
//! the test prints why and passes, unless `CI` is set, where it fails.

mod support;

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use mnode_dag::{
    Cid, Record,
    cids::{self, LinkKind},
    example::ExampleGen,
    model::art::Release,
    walk,
};
use support::{Script, spawn};

const HELIA: &str = "protocols/tests/interop";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_helia_fetches_a_release() {
    if !support::js_installed(HELIA) {
        return;
    }
    let a = spawn().await;

    // A release with its artist and file records, and the files they name.
    let mut g = ExampleGen::new(12);
    let release = g.record::<Release>();
    let made = g.take_blocks();
    let blocks: HashMap<Cid, Vec<u8>> = made.iter().cloned().collect();
    let mut dag = Vec::new();
    let missing = walk::walk(
        &[release.cid()],
        |cid| Ok::<_, std::convert::Infallible>(blocks.get(cid).cloned()),
        |cid, _| {
            dag.push(*cid);
            Ok(())
        },
    )
    .expect("walk");
    assert!(
        missing.is_empty(),
        "the example links blocks it did not make"
    );
    let in_dag: HashSet<Cid> = dag.iter().copied().collect();

    // Into node A: records (in the order made: linked items first) and files.
    let mut records = Vec::new();
    for (cid, bytes) in made.iter().filter(|(c, _)| in_dag.contains(c)) {
        match cids::link_kind(cid) {
            LinkKind::Record => records.push(Record::decode(bytes).expect("record")),
            LinkKind::Blob => {
                let added = a.h.blobs().add_bytes(Bytes::from(bytes.clone())).await;
                assert_eq!(added.expect("add file").cid, *cid);
            }
            LinkKind::Other => panic!("{cid} is neither a record nor a file"),
        }
    }
    let n = records.len();
    assert!(n >= 5, "a release DAG, got {n} records");
    a.h.publish(records).await.expect("publish");

    // Helia fetches every record of the DAG by CID, in walk order. Files travel over iroh-blobs,
    // not Bitswap.
    let wanted: Vec<Cid> = dag
        .iter()
        .copied()
        .filter(|c| cids::link_kind(c) == LinkKind::Record)
        .collect();
    assert_eq!(wanted.len(), n);
    let mut args = vec!["fetch".to_owned(), a.addr().await];
    args.extend(wanted.iter().map(Cid::to_string));
    let mut script = Script::start(HELIA, "bitswap.mjs", &args);
    let report = script.next("the fetched blocks").await;
    script.finish().await;
    assert_eq!(report["remote"], a.h.peer_id().to_string());
    let got = report["blocks"].as_array().expect("blocks");
    assert_eq!(got.len(), wanted.len());
    let mut fetched = HashMap::new();
    for (cid, entry) in wanted.iter().zip(got) {
        assert_eq!(entry["cid"], cid.to_string());
        let bytes = hex::decode(entry["hex"].as_str().expect("hex")).expect("hex");
        cids::verify_block(cid, &bytes).expect("the block Helia got hashes to its CID");
        assert_eq!(&bytes, &blocks[cid], "{cid}");
        fetched.insert(*cid, bytes);
    }

    // What Helia fetched, with the files, is the whole release again.
    let missing = walk::walk(
        &[release.cid()],
        |cid| {
            Ok::<_, std::convert::Infallible>(match cids::link_kind(cid) {
                LinkKind::Blob => blocks.get(cid).cloned(),
                _ => fetched.get(cid).cloned(),
            })
        },
        |_, _| Ok(()),
    )
    .expect("walk");
    assert!(missing.is_empty(), "Helia's blocks lack {missing:?}");
    println!(
        "Helia fetched the {} records of release {} over Bitswap",
        wanted.len(),
        release.cid()
    );
    a.node.shutdown().await.expect("shutdown");
}

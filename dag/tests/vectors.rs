//! Golden vectors: `tests/vectors/*.json`, one signed example of every registered kind, a
//! three-version chain and a tombstone, each as `{name, type, dag_json, cbor_hex, cid}`.
//!
//! The test regenerates every vector from the seeded generator and compares it byte for byte
//! with the committed file, so any change to encoding, signing or the generator shows up here.
//! After an intended change, `MNODE_BLESS=1 cargo nextest run -p mnode-dag --test vectors`
//! rewrites the files; review the diff.

#![allow(clippy::unwrap_used)]

use std::{collections::BTreeMap, fs, path::PathBuf};

use mnode_dag::{Ipld, KINDS, Record, cbor, cids, example::ExampleGen, json, model::social::Post};
use serde_json::{Value, json};

/// This crate's folder, as the test runner says when the test runs: a binary built in another
/// checkout that shares the target dir (and counts as fresh here) carries that checkout's path.
fn crate_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), Into::into)
}

fn vectors_dir() -> PathBuf {
    crate_dir().join("tests/vectors")
}

fn vector(name: &str, record: &Record) -> Value {
    let ipld: Ipld = cbor::decode_ipld(record.bytes()).unwrap();
    json!({
        "name": name,
        "type": record.kind(),
        "dag_json": json::to_json_value(&ipld).unwrap(),
        "cbor_hex": hex::encode(record.bytes()),
        "cid": record.cid().to_string(),
    })
}

fn expected() -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for kind in KINDS {
        let record = ExampleGen::new(1).record_of(kind).unwrap();
        out.insert(kind.name.to_owned(), vector(kind.name, &record));
    }
    let mut g = ExampleGen::new(2);
    let v0 = g.record::<Post>();
    let v1 = g.update(&v0).unwrap();
    let v2 = g.update(&v1).unwrap();
    for (i, r) in [v0, v1, v2].iter().enumerate() {
        let name = format!("chain.social.post.v{i}");
        out.insert(name.clone(), vector(&name, r));
    }
    let mut g = ExampleGen::new(3);
    let v0 = g.record::<mnode_dag::model::art::Release>();
    let gone = g.delete(&v0).unwrap();
    out.insert(
        "tombstone.art.release.v0".into(),
        vector("tombstone.art.release.v0", &v0),
    );
    out.insert(
        "tombstone.art.release.v1".into(),
        vector("tombstone.art.release.v1", &gone),
    );
    out
}

#[test]
fn vectors_match_byte_for_byte() {
    let expected = expected();
    let dir = vectors_dir();
    if std::env::var_os("MNODE_BLESS").is_some() {
        fs::create_dir_all(&dir).unwrap();
        for entry in fs::read_dir(&dir).unwrap() {
            fs::remove_file(entry.unwrap().path()).unwrap();
        }
        for (name, v) in &expected {
            let text = serde_json::to_string_pretty(v).unwrap() + "\n";
            fs::write(dir.join(format!("{name}.json")), text).unwrap();
        }
    }
    let mut on_disk = BTreeMap::new();
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = fs::read_to_string(&path).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        on_disk.insert(v["name"].as_str().unwrap().to_owned(), v);
    }
    assert_eq!(
        on_disk.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "vector files differ from the generated set"
    );
    for (name, v) in &expected {
        let d = &on_disk[name];
        for field in ["type", "cbor_hex", "cid", "dag_json"] {
            assert_eq!(d[field], v[field], "vector {name}: {field} differs");
        }
    }
}

#[test]
fn vectors_verify_independently_of_the_generator() {
    for entry in fs::read_dir(vectors_dir()).unwrap() {
        let v: Value =
            serde_json::from_str(&fs::read_to_string(entry.unwrap().path()).unwrap()).unwrap();
        let name = v["name"].as_str().unwrap();
        let bytes = hex::decode(v["cbor_hex"].as_str().unwrap()).unwrap();
        // The CID is sha2-256 over exactly these bytes.
        assert_eq!(cids::record_cid(&bytes).to_string(), v["cid"], "{name}");
        // Strict decode, signature, version rules and schema all pass.
        let record = Record::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(record.kind(), v["type"], "{name}");
        // DAG-JSON converts back to the identical bytes.
        let from_json = json::from_json_value(&v["dag_json"]).unwrap();
        assert_eq!(
            cbor::encode(&from_json).unwrap(),
            bytes,
            "{name}: DAG-JSON round trip"
        );
    }
}

#[test]
fn the_chain_vectors_form_a_valid_chain() {
    let load = |n: &str| {
        let text = fs::read_to_string(vectors_dir().join(format!("{n}.json"))).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        Record::decode(&hex::decode(v["cbor_hex"].as_str().unwrap()).unwrap()).unwrap()
    };
    let (v0, v1, v2) = (
        load("chain.social.post.v0"),
        load("chain.social.post.v1"),
        load("chain.social.post.v2"),
    );
    v1.verify_follows(&v0).unwrap();
    v2.verify_follows(&v1).unwrap();
    assert_eq!(v2.id(), v0.cid());
    let (t0, t1) = (
        load("tombstone.art.release.v0"),
        load("tombstone.art.release.v1"),
    );
    t1.verify_follows(&t0).unwrap();
    assert!(t1.is_tombstone());
}

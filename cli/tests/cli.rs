//! The `mnode` binary as a person uses it: real processes, real files.

#![allow(clippy::unwrap_used)]

use std::{
    path::Path,
    process::{Command, Output},
};

use mnode_dag::{Cid, car::CarWriter, example::ExampleGen, model::social::Post};

fn mnode(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mnode"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write_car(path: &Path, roots: &[Cid], blocks: &[(Cid, Vec<u8>)]) {
    let mut w = CarWriter::new(std::fs::File::create(path).unwrap(), roots).unwrap();
    for (c, b) in blocks {
        w.write_block(c, b).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn types_lists_every_registered_kind() {
    let o = mnode(&["types"]);
    assert!(o.status.success());
    for k in mnode_dag::KINDS {
        assert!(stdout(&o).contains(k.name), "{} missing", k.name);
    }
    let o = mnode(&["types", "--json", "--schema"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), mnode_dag::KINDS.len());
    let release = v
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "art.release")
        .unwrap();
    assert_eq!(release["collection"], "art.releases");
    assert!(release["schema"]["properties"]["title"].is_object());
}

#[test]
fn example_is_deterministic_and_its_car_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let car = dir.path().join("release.car");
    let o = mnode(&[
        "--json",
        "example",
        "art.release",
        "--seed",
        "7",
        "--car",
        car.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let again: serde_json::Value =
        serde_json::from_slice(&mnode(&["--json", "example", "art.release", "--seed", "7"]).stdout)
            .unwrap();
    assert_eq!(v["cid"], again["cid"]);
    assert_eq!(v["record"]["type"], "art.release");
    assert!(v["cid"].as_str().unwrap().starts_with("bafyrei"));

    let o = mnode(&["--json", "verify", car.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stdout(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["roots"][0], v["cid"]);
    assert_eq!(report["links_missing"], 0);
    assert!(
        report["raw"].as_u64().unwrap() >= 3,
        "the release's files are in the CAR: {report}"
    );
    assert_eq!(report["blocks"], v["car"]["blocks"]);

    let text = stdout(&mnode(&["verify", car.to_str().unwrap()]));
    assert!(text.contains("result    OK"), "{text}");
}

#[test]
fn verify_checks_chains_across_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = ExampleGen::new(5);
    let v0 = g.record::<Post>();
    let v1 = g.update(&v0).unwrap();
    let v2 = g.update(&v1).unwrap();
    let good = dir.path().join("chain.car");
    write_car(&good, &[v2.cid()], g.blocks());
    let o = mnode(&["--json", "verify", good.to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(o.status.success(), "{report}");
    assert_eq!(report["chain_links"], 2);

    // A validly signed v2 whose seq skips one: every block verifies alone, the chain does not.
    let mut env = v2.envelope().clone();
    env.seq = 3;
    let bytes = env.resign(g.key(0)).unwrap();
    let skipped = mnode_dag::Record::decode(&bytes).unwrap();
    let mut blocks = g.blocks().to_vec();
    blocks.retain(|(c, _)| *c != v2.cid());
    blocks.push((skipped.cid(), bytes));
    let bad = dir.path().join("bad-chain.car");
    write_car(&bad, &[skipped.cid()], &blocks);
    let o = mnode(&["verify", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("seq is 3, expected 2"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("result    FAILED"));
}

#[test]
fn verify_fails_on_a_corrupted_or_truncated_car() {
    let dir = tempfile::tempdir().unwrap();
    let car = dir.path().join("post.car");
    assert!(
        mnode(&["example", "social.post", "--car", car.to_str().unwrap()])
            .status
            .success()
    );
    let bytes = std::fs::read(&car).unwrap();

    // Flip one byte inside the last block.
    let mut corrupted = bytes.clone();
    let n = corrupted.len();
    corrupted[n - 3] ^= 0x40;
    let path = dir.path().join("corrupted.car");
    std::fs::write(&path, &corrupted).unwrap();
    let o = mnode(&["verify", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("does not hash to"), "{}", stdout(&o));

    let path = dir.path().join("truncated.car");
    std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let o = mnode(&["verify", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("ends inside block"), "{}", stdout(&o));

    // Not a CAR at all, and a missing file: clear errors, non-zero exit.
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "hello").unwrap();
    let o = mnode(&["verify", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("is not a readable CAR"),
        "{}",
        stderr(&o)
    );
    let o = mnode(&["verify", dir.path().join("nope.car").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cannot open"), "{}", stderr(&o));
}

#[test]
fn verify_rejects_a_record_with_a_forged_signature() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = ExampleGen::new(6);
    let post = g.record::<Post>();
    // Same fields, body text changed, signature kept: a new CID whose signature is wrong.
    let mut env = post.envelope().clone();
    if let Some(mnode_dag::Ipld::Map(body)) = &mut env.body {
        body.insert(
            "text".into(),
            mnode_dag::Ipld::String("I never said this.".into()),
        );
    }
    let forged = mnode_dag::cbor::encode(&env).unwrap();
    let cid = mnode_dag::cids::record_cid(&forged);
    let path = dir.path().join("forged.car");
    write_car(&path, &[cid], &[(cid, forged)]);
    let o = mnode(&["verify", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("signature does not verify"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn unknown_kind_is_a_clear_error() {
    let o = mnode(&["example", "art.relase"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("unknown kind \"art.relase\""),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("art.release"));
    let o = mnode(&["--json", "example", "nope"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown kind")
    );
}

//! `@helia/verified-fetch`, the IPFS project's trustless HTTP client, fetches from a running
//! node's gateway (`api/tests/interop/verified_fetch.mjs`): a record's raw block, the record
//! as DAG-CBOR (and that as DAG-JSON), its DAG as a CAR (which verified-fetch builds from blocks it fetched with
//! `?format=raw`), the gateway's own CAR read with `@ipld/car`, and a file named by a BLAKE3
//! CID; and a 10 MiB upload by its UnixFS CID, whole and in byte ranges. The gateway is the
//! client's only source: no delegated routing, no libp2p.
//!
//! Needs Node.js (>= 20.19) and `npm ci` in `api/tests/interop`. Without `node_modules` the
//! test prints why and passes, unless `CI` or `MNODE_REQUIRE_INTEROP` is set, where it fails.

mod support;

use std::{
    io::{BufRead as _, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use axum::{body::Body, http::StatusCode};
use bytes::Bytes;
use mnode_dag::{
    Cid, Keypair, Record, cbor, cids,
    model::{
        Link,
        core::{File, FileKind},
        social::Post,
    },
    unixfs::{self, Layout, View},
};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// This crate's folder, as the test runner says when the test runs: a binary built in another
/// checkout that shares the target dir (and counts as fresh here) carries that checkout's path.
fn crate_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), Into::into)
}

const JS: &str = "api/tests/interop";
/// How long the script may take for one line (Helia starts and fetches well within it).
const WAIT: Duration = Duration::from_secs(60);

fn js_dir(rel: &str) -> PathBuf {
    let api = &crate_dir();
    api.parent().unwrap_or(api).join(rel)
}

fn flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Whether the scripts in `rel` are installed; when they are not, outside CI, says so and
/// returns false.
fn js_installed(rel: &str) -> bool {
    let modules = js_dir(rel).join("node_modules");
    if modules.is_dir() {
        return true;
    }
    assert!(
        !flag("CI") && !flag("MNODE_REQUIRE_INTEROP"),
        "{} is missing: run `npm ci` in {rel} (CI must run it)",
        modules.display()
    );
    println!(
        "SKIPPED: {} is missing; run `npm ci --prefix {rel}` to run this interop test",
        modules.display()
    );
    false
}

/// A running `node <script> <args>…` whose stdout is one JSON object a line. Killed when
/// dropped.
struct Script {
    child: Child,
    lines: mpsc::Receiver<std::io::Result<String>>,
    name: String,
}

impl Script {
    fn start(rel: &str, script: &str, args: &[String]) -> Script {
        let mut child = Command::new("node")
            .current_dir(js_dir(rel))
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("could not run `node` (Node.js >= 20.19 must be on PATH)");
        let stdout = child.stdout.take().expect("stdout");
        // Blocking reads on a thread of their own (this crate's tokio has no process support).
        let (tx, lines) = mpsc::channel(64);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.blocking_send(line).is_err() {
                    break;
                }
            }
        });
        Script {
            child,
            lines,
            name: script.to_owned(),
        }
    }

    /// The next line, which must have `"event": event`; fails on an error line, on the end of
    /// output and after [`WAIT`].
    async fn expect_event(&mut self, event: &str) -> Value {
        let line = tokio::time::timeout(WAIT, self.lines.recv())
            .await
            .unwrap_or_else(|_| panic!("{}: timed out waiting for {event}", self.name))
            .unwrap_or_else(|| panic!("{} exited before {event}", self.name))
            .expect("read the script's output");
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("{}: not a JSON line ({e}): {line}", self.name));
        assert!(
            v["event"] != "error",
            "{} failed before {event}: {}",
            self.name,
            v["error"].as_str().unwrap_or(&line)
        );
        assert_eq!(v["event"], event, "{}: unexpected line {v}", self.name);
        v
    }

    /// Waits for the script to exit cleanly.
    async fn finish(mut self) {
        drop(self.child.stdin.take());
        loop {
            let line = tokio::time::timeout(WAIT, self.lines.recv())
                .await
                .unwrap_or_else(|_| panic!("{} did not stop", self.name));
            match line {
                Some(line) => println!("{}: {}", self.name, line.unwrap_or_default()),
                None => break,
            }
        }
        let status = self.child.wait().expect("wait for the script");
        assert!(status.success(), "{} exited with {status}", self.name);
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn hex_field(v: &Value) -> Vec<u8> {
    hex::decode(v["hex"].as_str().expect("hex")).expect("hex")
}

/// The CIDs and bytes of the blocks of a `car` line, after checking its root.
fn car_blocks(v: &Value, root: &Cid) -> Vec<(String, Vec<u8>)> {
    assert_eq!(v["roots"], serde_json::json!([root.to_string()]), "{v}");
    v["blocks"]
        .as_array()
        .expect("blocks")
        .iter()
        .map(|b| (b["cid"].as_str().expect("cid").to_owned(), hex_field(b)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_fetch_gets_records_a_car_and_a_file_from_the_gateway() {
    if !js_installed(JS) {
        return;
    }
    let support::TestApi {
        node,
        router: _,
        dir: _dir,
    } = support::setup().await;
    let h = node.handle();

    // A post whose media is a core.file record, which names a file (under the 2 MiB that
    // Helia takes as one block).
    let key = Keypair::derive(3, "verified-fetch");
    let file: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let blob = h
        .blobs()
        .add_bytes(Bytes::from(file.clone()))
        .await
        .expect("add")
        .cid;
    let file_record = Record::create(&File {
        blob: Link(blob),
        name: "pattern.bin".into(),
        media_type: "application/octet-stream".into(),
        size: file.len() as u64,
        kind: FileKind::Other,
        sealed: None,
        unixfs: None,
    })
    .expect("file")
    .sign(&key)
    .expect("sign");
    let post = Record::create(&Post {
        text: "fetched and verified by Helia".into(),
        media: vec![Link(file_record.cid())],
        ..Post::default()
    })
    .expect("post")
    .sign(&key)
    .expect("sign");
    h.publish(vec![file_record.clone(), post.clone()])
        .await
        .expect("publish");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let cancel = CancellationToken::new();
    let router = mnode_api::router(mnode_api::ApiState::new(h.clone(), "unused-token"));
    let server = tokio::spawn(mnode_api::serve(listener, router, cancel.clone()));

    let args = [
        format!("http://{addr}"),
        post.cid().to_string(),
        file_record.cid().to_string(),
        blob.to_string(),
    ];
    let mut script = Script::start(JS, "verified_fetch.mjs", &args);

    // The raw blocks, as the node holds them.
    for record in [&post, &file_record] {
        let v = script.expect_event("raw").await;
        assert_eq!(v["cid"], record.cid().to_string());
        assert_eq!(hex_field(&v), record.bytes(), "{}", record.cid());
    }

    // The post as DAG-CBOR, and as DAG-JSON made from it by the JS codecs: the same data
    // model as the node's own DAG-JSON of the block.
    let v = script.expect_event("dag-json").await;
    assert_eq!(v["content_type"], "application/vnd.ipld.dag-cbor");
    assert_eq!(hex_field(&v), post.bytes());
    let theirs: Value = serde_json::from_str(v["text"].as_str().expect("text")).expect("json");
    let ipld = cbor::decode_ipld(post.bytes()).expect("decode");
    let ours = mnode_dag::json::to_json_value(&ipld).expect("dag-json");
    assert_eq!(theirs, ours);

    // The DAG as a CAR, both as verified-fetch assembles it and as the gateway streams it:
    // the post, its file record and the file, depth first.
    let expected = vec![
        (post.cid().to_string(), post.bytes().to_vec()),
        (file_record.cid().to_string(), file_record.bytes().to_vec()),
        (blob.to_string(), file.clone()),
    ];
    for source in ["verified-fetch", "gateway"] {
        let v = script.expect_event("car").await;
        assert_eq!(v["source"], source);
        assert_eq!(
            v["content_type"], "application/vnd.ipld.car; version=1; order=dfs; dups=n",
            "{source}"
        );
        assert_eq!(car_blocks(&v, &post.cid()), expected, "{source}");
    }

    // The file, checked by Helia against its BLAKE3 CID.
    let v = script.expect_event("file").await;
    assert_eq!(v["cid"], blob.to_string());
    assert_eq!(hex_field(&v), file);

    script.expect_event("done").await;
    script.finish().await;
    println!(
        "verified-fetch got {} (its file record, its file {}) from the gateway on {addr}",
        post.cid(),
        blob
    );
    cancel.cancel();
    server.await.expect("join").expect("serve");
    node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_fetch_gets_an_upload_by_its_unixfs_cid_from_the_gateway() {
    if !js_installed(JS) {
        return;
    }
    let support::TestApi {
        node,
        router,
        dir: _dir,
    } = support::setup().await;
    let h = node.handle();

    // 10 MiB through the API, as a person uploads a file.
    const MIB: usize = 1 << 20;
    let file = mnode_dag::testing::noise(10 * MIB, 21);
    let token = support::register_and_login(&router, "alice").await;
    let req = support::req("PUT", "/api/v1/files?name=noise.bin")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::from(file.clone()))
        .expect("request");
    let (status, _, body) = support::call(&router, req).await;
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let blob = cids::parse(v["cid"].as_str().expect("cid")).expect("cid");
    assert_eq!(blob, cids::blob_cid_of(&file));
    let root = cids::parse(v["unixfs"].as_str().expect("the upload's unixfs CID")).expect("cid");
    // The node's view is the builder's (which dag/tests/unixfs.rs holds to ipfs-unixfs-importer).
    let view = View::of(&file, Layout::default());
    assert_eq!(root, view.root);
    assert_eq!(root.codec(), unixfs::DAG_PB);
    assert_eq!(view.leaves.len(), 10);
    // The file's record links the view beside the blob.
    let record_cid = cids::parse(v["record"]["cid"].as_str().expect("record")).expect("cid");
    let record = h
        .repo()
        .store()
        .block(&record_cid)
        .expect("store")
        .expect("the file's record");
    let record = Record::decode(&record).expect("record");
    let body = record.body_as::<File>().expect("core.file").expect("body");
    assert_eq!(body.blob, Link(blob));
    assert_eq!(body.unixfs, Some(Link(root)));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let cancel = CancellationToken::new();
    let server = tokio::spawn(mnode_api::serve(listener, router, cancel.clone()));

    // The whole file, then ranges: within one leaf, across the boundary of two, and the file's
    // last bytes (in its last leaf).
    let ranges = [
        (3 * MIB + 12_345, 3 * MIB + 12_345 + 999),
        (5 * MIB - 700, 5 * MIB + 299),
        (10 * MIB - 100, 10 * MIB - 1),
    ];
    let mut args = vec![
        "unixfs".to_owned(),
        format!("http://{addr}"),
        root.to_string(),
    ];
    args.extend(ranges.iter().map(|(a, b)| format!("{a}-{b}")));
    let mut script = Script::start(JS, "verified_fetch.mjs", &args);

    let v = script.expect_event("unixfs").await;
    assert_eq!(v["cid"], root.to_string());
    assert_eq!(v["status"], 200);
    assert_eq!(v["size"], file.len());
    // Byte for byte: the SHA-256 and the BLAKE3 of what verified-fetch returned are the
    // upload's (its leaf CID's digest is the SHA-256 of the bytes; its blob CID, the BLAKE3).
    let sha256 = hex::encode(unixfs::leaf_cid(&file).hash().digest());
    assert_eq!(v["sha256"], sha256);
    assert_eq!(v["blake3"], hex::encode(blob.hash().digest()));

    for (first, last) in ranges {
        let v = script.expect_event("range").await;
        assert_eq!(v["range"], format!("bytes={first}-{last}"));
        assert_eq!(v["status"], 206, "{v}");
        assert_eq!(
            v["content_range"],
            format!("bytes {first}-{last}/{}", file.len())
        );
        assert_eq!(hex_field(&v), file[first..=last], "bytes {first}-{last}");
    }

    script.expect_event("done").await;
    script.finish().await;
    println!(
        "verified-fetch got the 10 MiB upload {blob} by its UnixFS CID {root} from the gateway \
         on {addr}"
    );
    cancel.cancel();
    server.await.expect("join").expect("serve");
    node.shutdown().await.expect("shutdown");
}

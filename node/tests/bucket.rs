//! Files in an S3-compatible bucket (`blobs.store: s3`), against a real S3 server: s3s-fs's
//! implementation, run in the test process over TCP (`mnode_bench_support::S3Server`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use bytes::Bytes;
use futures_lite::StreamExt as _;
use mnode_bench_support::{S3_ACCESS_KEY, S3_SECRET_KEY, S3Server};
use mnode_dag::{
    Cid, Keypair, Link, Record,
    cids::blob_hash,
    model::core::{File, FileKind},
};
use mnode_node::{
    blobs::{Blobs, ImportMode},
    config::{BlobStoreKind, BlobsConfig, S3Config},
};
use support::{TestNode, spawn, spawn_with};
use tempfile::TempDir;

const BUCKET: &str = "mnode-test";

/// A server over a fresh folder.
fn server() -> (S3Server, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let server = S3Server::start(&dir.path().join("s3"), BUCKET);
    (server, dir)
}

fn config(server: &S3Server, prefix: &str) -> BlobsConfig {
    BlobsConfig {
        store: BlobStoreKind::S3,
        s3: S3Config {
            endpoint: server.endpoint(),
            bucket: BUCKET.into(),
            prefix: prefix.into(),
            access_key_id: S3_ACCESS_KEY.into(),
            secret_access_key: S3_SECRET_KEY.into(),
            timeout_secs: 5,
            ..S3Config::default()
        },
    }
}

/// Where `s3s-fs` keeps the object of `cid` under `prefix`.
fn object(dir: &TempDir, prefix: &str, cid: &Cid) -> PathBuf {
    let hash = blob_hash(cid).unwrap();
    dir.path()
        .join("s3")
        .join(BUCKET)
        .join(prefix)
        .join("blobs")
        .join(hex::encode(hash))
}

fn data(len: usize, seed: u8) -> Bytes {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(&[seed])
        .finalize_xof()
        .fill(&mut out);
    Bytes::from(out)
}

async fn open(dir: &Path, config: &BlobsConfig) -> Blobs {
    Blobs::open_with(&dir.join("blobs"), &dir.join("tmp"), config)
        .await
        .expect("open with a bucket")
}

async fn read_all(blobs: &Blobs, cid: &Cid) -> std::io::Result<Vec<u8>> {
    read(blobs, cid, 0, None).await
}

async fn read(blobs: &Blobs, cid: &Cid, start: u64, end: Option<u64>) -> std::io::Result<Vec<u8>> {
    let mut stream = std::pin::pin!(blobs.read_range(cid, start, end).await.unwrap());
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

/// The files the local store keeps on disk (data and outboards), not counting the bucket's.
fn local_files(repo: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for sub in ["blobs/data", "blobs/uploads"] {
        if let Ok(entries) = std::fs::read_dir(repo.join(sub)) {
            for entry in entries {
                names.push(entry.unwrap().file_name().to_string_lossy().into_owned());
            }
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_live_in_the_bucket_and_read_back_verified() {
    let (_server, dir) = server();
    let server = &_server;
    let repo = dir.path().join("repo");
    let config = config(server, "node");
    let blobs = open(&repo, &config).await;
    assert!(
        blobs
            .bucket()
            .unwrap()
            .starts_with("s3://mnode-test/node at http://127.0.0.1:")
    );

    // Bytes in memory (one PUT), a file of three parts (multipart), an upload stream.
    let small = data(3 << 20, 1);
    let a = blobs.add_bytes(small.clone()).await.unwrap();
    let file = dir.path().join("big.bin");
    let big = data((40 << 20) + 12_345, 2);
    std::fs::write(&file, &big).unwrap();
    let b = blobs
        .add_path(&file, ImportMode::Copy, |_| {})
        .await
        .unwrap();
    let streamed = data((20 << 20) + 7, 3);
    let c = blobs
        .add_reader(std::io::Cursor::new(streamed.to_vec()), |_| {})
        .await
        .unwrap();
    for (added, bytes) in [(&a, &small), (&b, &big), (&c, &streamed)] {
        assert_eq!(added.size, bytes.len() as u64);
        let stored = std::fs::read(object(&dir, "node", &added.cid)).unwrap();
        assert!(stored == bytes[..], "the object holds the file's bytes");
        assert!(blobs.has(&added.cid).await.unwrap());
        assert_eq!(blobs.size(&added.cid).await.unwrap(), Some(added.size));
        assert!(!blobs.in_place(&added.cid).await.unwrap());
        assert_eq!(blobs.owned_file(&added.cid).await.unwrap(), None);
    }
    // A file of up to 16 KiB stays in the local database.
    let tiny = blobs.add_bytes(data(1000, 4)).await.unwrap();
    assert!(!object(&dir, "node", &tiny.cid).exists());
    assert!(
        local_files(&repo).is_empty(),
        "no file bytes on the local disk: {:?}",
        local_files(&repo)
    );
    assert!(
        std::fs::read_dir(repo.join("tmp"))
            .unwrap()
            .next()
            .is_none(),
        "no temp files left"
    );

    // Reads: whole, ranges inside a chunk group, across windows, the last byte.
    assert!(read(&blobs, &b.cid, 0, None).await.unwrap() == big[..]);
    let len = big.len() as u64;
    for (start, end) in [
        (5, 100_000),
        (16_383, 16_385),
        ((8 << 20) - 3, (8 << 20) + 3),
        (len - 1, len),
        (1 << 20, 30 << 20),
    ] {
        let got = read(&blobs, &b.cid, start, Some(end)).await.unwrap();
        assert!(got == big[start as usize..end as usize], "{start}..{end}");
    }
    assert_eq!(
        blobs.read_to_bytes(&a.cid).await.unwrap(),
        small,
        "read_to_bytes"
    );
    let out = dir.path().join("out.bin");
    assert_eq!(blobs.export(&c.cid, &out).await.unwrap(), c.size);
    assert!(std::fs::read(&out).unwrap() == streamed[..]);

    let mut listed = blobs.list().await.unwrap();
    listed.sort();
    let mut expected = vec![
        (a.cid, a.size),
        (b.cid, b.size),
        (c.cid, c.size),
        (tiny.cid, tiny.size),
    ];
    expected.sort();
    assert_eq!(listed, expected);
    assert!(blobs.verify_all().await.unwrap().is_empty());

    // Adding the same bytes again sends nothing and keeps one object.
    let again = blobs.add_bytes(small.clone()).await.unwrap();
    assert_eq!(again, a);

    // After a restart the node still knows its files in the bucket.
    blobs.shutdown().await.unwrap();
    let blobs = open(&repo, &config).await;
    assert!(read(&blobs, &b.cid, 0, None).await.unwrap() == big[..]);

    // Deleting removes the object.
    assert!(blobs.delete(&b.cid).await.unwrap());
    assert!(!object(&dir, "node", &b.cid).exists());
    assert!(!blobs.has(&b.cid).await.unwrap());
    assert!(blobs.has(&a.cid).await.unwrap());
    blobs.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_or_missing_object_is_an_error_never_wrong_bytes() {
    let (server, dir) = server();
    let repo = dir.path().join("repo");
    let blobs = open(&repo, &config(&server, "node")).await;
    let one = blobs.add_bytes(data(1 << 20, 5)).await.unwrap();
    let two = blobs.add_bytes(data(1 << 20, 6)).await.unwrap();

    // Someone changes a byte of the first object in the bucket.
    let path = object(&dir, "node", &one.cid);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[700_000] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let error = read(&blobs, &one.cid, 0, None).await.unwrap_err();
    assert!(
        error.to_string().contains("damaged"),
        "a damaged object is said so: {error}"
    );
    // The parts before the damage still read.
    assert_eq!(
        read(&blobs, &one.cid, 0, Some(16_384)).await.unwrap().len(),
        16_384
    );
    assert_eq!(blobs.verify_all().await.unwrap(), vec![one.cid]);

    // And removes the second.
    std::fs::remove_file(object(&dir, "node", &two.cid)).unwrap();
    let mut failed = blobs.verify_all().await.unwrap();
    failed.sort();
    let mut expected = vec![one.cid, two.cid];
    expected.sort();
    assert_eq!(failed, expected);
    assert!(read(&blobs, &two.cid, 0, None).await.is_err());

    // Adding the file again repairs it.
    blobs.add_bytes(data(1 << 20, 6)).await.unwrap();
    assert_eq!(
        read(&blobs, &two.cid, 0, None).await.unwrap(),
        data(1 << 20, 6)
    );
    blobs.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_gives_a_clear_error_and_the_node_recovers() {
    let (mut server, dir) = server();
    let repo = dir.path().join("repo");
    let blobs = open(&repo, &config(&server, "node")).await;
    let kept = data(64 << 20, 7);
    let added = blobs.add_bytes(kept.clone()).await.unwrap();

    // The server goes away in the middle of a read.
    let mut stream = std::pin::pin!(blobs.read_range(&added.cid, 0, None).await.unwrap());
    let first = stream.next().await.unwrap().unwrap();
    assert!(first[..] == kept[..first.len()]);
    server.stop();
    let started = Instant::now();
    let mut got = first.len();
    let error = loop {
        match stream.next().await {
            Some(Ok(chunk)) => got += chunk.len(),
            Some(Err(e)) => break e,
            None => panic!("the read ended without an error after {got} bytes"),
        }
    };
    assert!(got < kept.len(), "it stopped before the end");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "gave up after {:?}",
        started.elapsed()
    );
    assert!(
        error.to_string().contains("s3://mnode-test/node"),
        "the error names the bucket: {error}"
    );
    // A new read fails the same way.
    assert!(read_all(&blobs, &added.cid).await.is_err());
    let refused = blobs.add_bytes(data(1 << 20, 8)).await.unwrap_err();
    assert!(
        refused.to_string().contains("s3://mnode-test/node"),
        "{refused}"
    );
    // The node still answers what it knows without the bucket.
    assert_eq!(blobs.size(&added.cid).await.unwrap(), Some(added.size));

    server.resume();
    assert!(read(&blobs, &added.cid, 0, None).await.unwrap() == kept[..]);
    let later = blobs.add_bytes(data(1 << 20, 8)).await.unwrap();
    assert!(blobs.has(&later.cid).await.unwrap());
    blobs.shutdown().await.unwrap();
}

async fn connect(a: &TestNode, b: &TestNode) {
    let info = b.h.info().await.expect("info");
    let addr = info.addrs[0].parse().expect("multiaddr");
    a.h.connect(addr).await.expect("connect");
}

fn file_record(cid: Cid, size: u64) -> Record {
    Record::create(&File {
        blob: Link(cid),
        name: "track.bin".into(),
        media_type: "application/octet-stream".into(),
        size,
        kind: FileKind::Other,
        sealed: None,
        unixfs: None,
    })
    .expect("file")
    .at(1_700_000_000_000)
    .sign(&Keypair::derive(5, "artist"))
    .expect("sign")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_fetch_from_a_node_whose_files_are_in_a_bucket_and_into_one() {
    let (server, dir) = server();
    let a = spawn_with(&config(&server, "a")).await;
    let b = spawn().await;
    let c = spawn_with(&config(&server, "c")).await;
    connect(&b, &a).await;
    connect(&c, &a).await;
    let bytes = data((5 << 20) + 99, 9);
    let added = a.h.blobs().add_bytes(bytes.clone()).await.expect("add");
    assert!(object(&dir, "a", &added.cid).exists());
    a.h.publish(vec![file_record(added.cid, added.size)])
        .await
        .expect("publish");

    // B keeps files on its disk: it gets them from A's bucket, verified, over iroh-blobs.
    let got = b.h.fetch_file(added.cid, |_| {}).await.expect("b fetches");
    assert_eq!(got.size, added.size);
    assert_eq!(b.h.blobs().read_to_bytes(&added.cid).await.unwrap(), bytes);

    // C keeps files in a bucket too: what it fetches ends up there, not on its disk.
    c.h.fetch_file(added.cid, |_| {}).await.expect("c fetches");
    assert_eq!(c.h.blobs().read_to_bytes(&added.cid).await.unwrap(), bytes);
    assert!(
        object(&dir, "c", &added.cid).exists(),
        "in C's bucket prefix"
    );
    assert!(
        !c.h.blobs().in_place(&added.cid).await.unwrap()
            && c.h.blobs().owned_file(&added.cid).await.unwrap().is_none(),
        "C holds no local copy"
    );
    for node in [a, b, c] {
        node.node.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_sharing_a_bucket_store_a_file_once_and_keep_each_others() {
    let (server, dir) = server();
    let mut shared = config(&server, "shared");
    shared.s3.shared = true;
    let one = open(&dir.path().join("one"), &shared).await;
    let two = open(&dir.path().join("two"), &shared).await;
    let bytes = data(3 << 20, 11);
    let a = one.add_bytes(bytes.clone()).await.unwrap();
    let path = object(&dir, "shared", &a.cid);
    let written = std::fs::metadata(&path).unwrap().modified().unwrap();
    let b = two.add_bytes(bytes.clone()).await.unwrap();
    assert_eq!(a, b);
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        written,
        "the second node found the object and sent nothing"
    );

    // One node removes the file: the other still has it.
    assert!(one.delete(&a.cid).await.unwrap());
    assert!(!one.has(&a.cid).await.unwrap());
    assert!(path.exists(), "a shared bucket keeps the object");
    assert_eq!(read_all(&two, &a.cid).await.unwrap(), bytes);
    one.shutdown().await.unwrap();
    two.shutdown().await.unwrap();
}

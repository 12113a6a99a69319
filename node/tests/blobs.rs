//! The blob store against a real iroh-blobs file store in a temp folder.

#![allow(clippy::unwrap_used)]

use std::{
    io,
    path::{Path, PathBuf},
    pin::Pin,
    task::{Context, Poll},
    time::{Duration, SystemTime},
};

use bao_tree::{ChunkNum, ChunkRanges};
use bytes::Bytes;
use futures_lite::StreamExt;
use mnode_dag::{
    Cid,
    cids::{blob_cid_of, record_cid},
};
use mnode_node::blobs::{BlobError, Blobs, Commit, ImportMode};
use tokio::io::{AsyncRead, ReadBuf};

const MIB: usize = 1024 * 1024;

struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn blobs_dir(&self) -> PathBuf {
        self.dir.path().join("blobs")
    }

    fn tmp_dir(&self) -> PathBuf {
        self.dir.path().join("tmp")
    }

    /// A folder outside the store, for files to import.
    fn outside(&self) -> PathBuf {
        let dir = self.dir.path().join("outside");
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    async fn open(&self) -> Blobs {
        Blobs::open(&self.blobs_dir(), &self.tmp_dir())
            .await
            .unwrap()
    }
}

/// Deterministic pseudo-random bytes (xorshift), different for each seed.
fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            total += dir_size(&entry.path());
        } else {
            total += meta.len();
        }
    }
    total
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

async fn read_all(blobs: &Blobs, cid: &Cid, start: u64, end: Option<u64>) -> Vec<u8> {
    let mut stream = Box::pin(blobs.read_range(cid, start, end).await.unwrap());
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

/// Yields `good` bytes in small pieces, then fails.
struct FailingReader {
    data: Vec<u8>,
    pos: usize,
}

impl AsyncRead for FailingReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.pos >= self.data.len() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "client went away",
            )));
        }
        let n = buf
            .remaining()
            .min(64 * 1024)
            .min(self.data.len() - self.pos);
        let start = self.pos;
        buf.put_slice(&self.data[start..start + n]);
        self.pos += n;
        Poll::Ready(Ok(()))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn all_ways_of_adding_give_the_same_cid() {
    let repo = Repo::new();
    let blobs = repo.open().await;
    // empty, inlined, one chunk group, several MiB (outboard in a file), several copy steps
    // and read blocks of the copy-while-hashing import with a ragged end
    for (i, len) in [
        0usize,
        10,
        16 * 1024,
        16 * 1024 + 1,
        100_000,
        5 * MIB + 3,
        17 * MIB + 5,
    ]
    .into_iter()
    .enumerate()
    {
        let data = random(len, i as u64 + 1);
        let expected = blob_cid_of(&data);
        assert!(expected.to_string().starts_with("bafkr4i"), "{expected}");

        let a = blobs.add_bytes(Bytes::from(data.clone())).await.unwrap();
        assert_eq!((a.cid, a.size), (expected, len as u64));

        let path = repo.outside().join(format!("file{i}"));
        std::fs::write(&path, &data).unwrap();
        let mut last = 0;
        let b = blobs
            .add_path(&path, ImportMode::Copy, |n| last = n)
            .await
            .unwrap();
        assert_eq!((b.cid, b.size), (expected, len as u64));
        assert_eq!(last, len as u64);

        let mut seen = Vec::new();
        let c = blobs.add_reader(&data[..], |n| seen.push(n)).await.unwrap();
        assert_eq!((c.cid, c.size), (expected, len as u64));
        assert!(seen.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(seen.last().copied().unwrap_or(0), len as u64);

        assert!(blobs.has(&expected).await.unwrap());
        assert_eq!(blobs.size(&expected).await.unwrap(), Some(len as u64));
        assert_eq!(blobs.read_to_bytes(&expected).await.unwrap(), data);
    }
    // the content was stored once: no uploads/ file next to the owned copies
    assert!(files_in(&repo.blobs_dir().join("uploads")).is_empty());
    assert!(files_in(&repo.tmp_dir()).is_empty());
    assert_eq!(blobs.verify_all().await.unwrap(), Vec::<Cid>::new());
    blobs.shutdown().await.unwrap();
}

/// A copy import hashes the copy while the kernel writes it: what is stored is the file as it
/// was, owned by the store, whatever happens to the original afterwards.
#[tokio::test(flavor = "multi_thread")]
async fn a_copied_file_is_independent_of_the_original() {
    let repo = Repo::new();
    let blobs = repo.open().await;
    let data = random(20 * MIB + 7, 41);
    let path = repo.outside().join("original");
    std::fs::write(&path, &data).unwrap();
    let mut seen = Vec::new();
    let added = blobs
        .add_path(&path, ImportMode::Copy, |n| seen.push(n))
        .await
        .unwrap();
    assert_eq!(added.cid, blob_cid_of(&data));
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    assert_eq!(seen.last().copied(), Some(data.len() as u64));
    // several progress reports along the way, not one per 16 KiB chunk group
    assert!(seen.len() >= 2 && seen.len() < 100, "{}", seen.len());

    std::fs::write(&path, random(data.len(), 42)).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(blobs.read_to_bytes(&added.cid).await.unwrap(), data);
    assert_eq!(blobs.verify_all().await.unwrap(), Vec::<Cid>::new());
    assert!(files_in(&repo.tmp_dir()).is_empty());
    blobs.shutdown().await.unwrap();

    // and after reopening
    let blobs = repo.open().await;
    assert_eq!(blobs.read_to_bytes(&added.cid).await.unwrap(), data);
    blobs.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn add_reader_places_the_file_without_a_copy() {
    let repo = Repo::new();
    let blobs = repo.open().await;
    let data = random(3 * MIB, 7);
    let before = dir_size(&repo.blobs_dir());
    let added = blobs.add_reader(&data[..], |_| {}).await.unwrap();
    let uploads = files_in(&repo.blobs_dir().join("uploads"));
    assert_eq!(uploads.len(), 1, "{uploads:?}");
    // one copy of the data, plus outboard and metadata
    let grown = dir_size(&repo.blobs_dir()) - before;
    assert!(
        grown < data.len() as u64 + MIB as u64 / 2,
        "grew by {grown}"
    );
    assert!(files_in(&repo.tmp_dir()).is_empty());
    assert_eq!(read_all(&blobs, &added.cid, 0, None).await, data);

    // the same content again: kept once
    let again = blobs.add_reader(&data[..], |_| {}).await.unwrap();
    assert_eq!(again, added);
    assert_eq!(files_in(&repo.blobs_dir().join("uploads")), uploads);

    // an owned copy takes over from the upload file
    let path = repo.outside().join("same");
    std::fs::write(&path, &data).unwrap();
    blobs
        .add_path(&path, ImportMode::Copy, |_| {})
        .await
        .unwrap();
    assert!(files_in(&repo.blobs_dir().join("uploads")).is_empty());
    assert_eq!(read_all(&blobs, &added.cid, 0, None).await, data);
    assert!(blobs.verify_all().await.unwrap().is_empty());
    blobs.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn in_place_import_does_not_copy() {
    let repo = Repo::new();
    let blobs = repo.open().await;
    let data = random(5 * MIB, 3);
    let path = repo.outside().join("big.bin");
    std::fs::write(&path, &data).unwrap();

    let before = dir_size(&repo.blobs_dir());
    let added = blobs
        .add_path(&path, ImportMode::InPlace, |_| {})
        .await
        .unwrap();
    assert_eq!(added.cid, blob_cid_of(&data));
    let grown = dir_size(&repo.blobs_dir()) - before;
    assert!(grown < 256 * 1024, "the store grew by {grown} bytes");
    assert_eq!(blobs.read_to_bytes(&added.cid).await.unwrap(), data);

    // for comparison, a copy of other data does grow the store by its size
    let other = random(5 * MIB, 4);
    let other_path = repo.outside().join("other.bin");
    std::fs::write(&other_path, &other).unwrap();
    let before = dir_size(&repo.blobs_dir());
    blobs
        .add_path(&other_path, ImportMode::Copy, |_| {})
        .await
        .unwrap();
    assert!(dir_size(&repo.blobs_dir()) - before >= other.len() as u64);

    // deleting the blob leaves the file it was imported from alone
    assert!(blobs.delete(&added.cid).await.unwrap());
    assert!(!blobs.has(&added.cid).await.unwrap());
    assert_eq!(std::fs::read(&path).unwrap(), data);
    blobs.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn read_range_returns_the_slice() {
    let repo = Repo::new();
    let blobs = repo.open().await;
    let data = random(3 * MIB, 11);
    let len = data.len() as u64;
    let cid = blobs
        .add_bytes(Bytes::from(data.clone()))
        .await
        .unwrap()
        .cid;

    assert_eq!(read_all(&blobs, &cid, 0, None).await, data);
    let cases: [(u64, Option<u64>); 8] = [
        (0, Some(1)),
        (1000, Some(1_000_000)),
        (16 * 1024 - 1, Some(16 * 1024 + 1)),
        (len - 10, None),
        (len - 1, Some(len)),
        (123_457, Some(len + 5_000)),
        (5, Some(u64::MAX)),
        (42, Some(42)),
    ];
    for (start, end) in cases {
        let e = end.map_or(len, |e| e.min(len)) as usize;
        let expected = &data[start as usize..e.max(start as usize)];
        assert_eq!(
            read_all(&blobs, &cid, start, end).await,
            expected,
            "{start}..{end:?}"
        );
    }
    for start in [len, len + 1, u64::MAX] {
        match blobs.read_range(&cid, start, None).await {
            Err(BlobError::RangeNotSatisfiable { size, start: s, .. }) => {
                assert_eq!((size, s), (len, start));
            }
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("read at {start} succeeded"),
        }
    }

    // small (inlined) and empty blobs
    let small = blobs
        .add_bytes(Bytes::from_static(b"hello world"))
        .await
        .unwrap();
    assert_eq!(read_all(&blobs, &small.cid, 6, None).await, b"world");
    assert_eq!(read_all(&blobs, &small.cid, 0, Some(5)).await, b"hello");
    let empty = blobs.add_bytes(Bytes::new()).await.unwrap();
    assert!(read_all(&blobs, &empty.cid, 0, None).await.is_empty());

    let missing = blob_cid_of(b"never added");
    assert!(matches!(
        blobs.read_range(&missing, 0, None).await,
        Err(BlobError::NotFound(c)) if c == missing
    ));
    blobs.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_removes_entry_and_files() {
    let repo = Repo::new();
    let blobs = repo.open().await;
    let copied = random(3 * MIB, 21);
    let uploaded = random(2 * MIB, 22);
    let small = random(1000, 23);
    let a = blobs.add_bytes(Bytes::from(copied.clone())).await.unwrap();
    let b = blobs.add_reader(&uploaded[..], |_| {}).await.unwrap();
    let c = blobs.add_bytes(Bytes::from(small.clone())).await.unwrap();
    let keep = blobs
        .add_bytes(Bytes::from(random(100_000, 24)))
        .await
        .unwrap();
    assert_eq!(blobs.list().await.unwrap().len(), 4);

    let full = dir_size(&repo.blobs_dir());
    assert!(blobs.delete(&a.cid).await.unwrap());
    let after_a = dir_size(&repo.blobs_dir());
    assert!(after_a + copied.len() as u64 <= full, "{after_a} vs {full}");

    assert!(blobs.delete(&b.cid).await.unwrap());
    assert!(files_in(&repo.blobs_dir().join("uploads")).is_empty());
    assert!(dir_size(&repo.blobs_dir()) + uploaded.len() as u64 <= after_a);

    assert!(blobs.delete(&c.cid).await.unwrap());
    for added in [&a, &b, &c] {
        assert!(!blobs.has(&added.cid).await.unwrap());
        assert_eq!(blobs.size(&added.cid).await.unwrap(), None);
        assert!(matches!(
            blobs.read_to_bytes(&added.cid).await,
            Err(BlobError::NotFound(_))
        ));
        assert!(matches!(
            blobs.read_range(&added.cid, 0, None).await,
            Err(BlobError::NotFound(_))
        ));
        assert!(!blobs.delete(&added.cid).await.unwrap());
    }
    let listed = blobs.list().await.unwrap();
    assert_eq!(listed, vec![(keep.cid, keep.size)]);
    // no file of the deleted blobs is left in the data dir
    let data_files = files_in(&repo.blobs_dir().join("data"));
    for added in [&a, &b] {
        let hex = hex::encode(mnode_dag::cids::blob_hash(&added.cid).unwrap());
        assert!(
            !data_files.iter().any(|f| f.starts_with(&hex)),
            "{data_files:?}"
        );
    }
    // and the blob can be added again
    let again = blobs.add_bytes(Bytes::from(copied.clone())).await.unwrap();
    assert_eq!(again.cid, a.cid);
    assert_eq!(blobs.read_to_bytes(&a.cid).await.unwrap(), copied);

    // several at once
    assert_eq!(
        blobs.delete_many(&[a.cid, keep.cid, c.cid]).await.unwrap(),
        2
    );
    assert!(blobs.list().await.unwrap().is_empty());
    blobs.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_upload_leaves_nothing() {
    let repo = Repo::new();
    let blobs = repo.open().await;
    let reader = FailingReader {
        data: random(MIB, 31),
        pos: 0,
    };
    let mut seen = 0;
    match blobs.add_reader(reader, |n| seen = n).await {
        Err(BlobError::Upload { received, source }) => {
            assert_eq!(received, MIB as u64);
            assert_eq!(source.kind(), io::ErrorKind::ConnectionReset);
        }
        other => panic!("expected an upload error, got {other:?}"),
    }
    assert_eq!(seen, MIB as u64);
    assert!(files_in(&repo.tmp_dir()).is_empty());
    assert!(files_in(&repo.blobs_dir().join("uploads")).is_empty());
    assert!(blobs.list().await.unwrap().is_empty());
    assert!(!blobs.has(&blob_cid_of(&random(MIB, 31))).await.unwrap());
    blobs.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn clean_tmp_removes_only_old_temp_files() {
    let repo = Repo::new();
    let blobs = repo.open().await;
    let tmp = repo.tmp_dir();
    let two_hours_ago = SystemTime::now() - Duration::from_secs(2 * 3600);
    let make = |name: &str, old: bool| {
        let path = tmp.join(name);
        std::fs::write(&path, b"partial").unwrap();
        if old {
            let file = std::fs::File::options().write(true).open(&path).unwrap();
            file.set_modified(two_hours_ago).unwrap();
        }
    };
    make("upload-1-aa-0.part", true);
    make("0123456789abcdef0123456789abcdef.temp", true);
    make("upload-2-bb-1.part", false);
    make("fedcba9876543210fedcba9876543210.temp", false);
    make("notes.txt", true);

    assert_eq!(blobs.clean_tmp(Duration::from_secs(3600)).unwrap(), 2);
    assert_eq!(
        files_in(&tmp),
        vec![
            "fedcba9876543210fedcba9876543210.temp",
            "notes.txt",
            "upload-2-bb-1.part"
        ]
    );
    assert_eq!(blobs.clean_tmp(Duration::from_secs(3600)).unwrap(), 0);
    assert_eq!(blobs.clean_tmp(Duration::ZERO).unwrap(), 2);
    assert_eq!(files_in(&tmp), vec!["notes.txt"]);
    blobs.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_all_reports_a_changed_in_place_file() {
    let repo = Repo::new();
    let blobs = repo.open().await;
    let data = random(200_000, 41);
    let path = repo.outside().join("in-place.bin");
    std::fs::write(&path, &data).unwrap();
    let in_place = blobs
        .add_path(&path, ImportMode::InPlace, |_| {})
        .await
        .unwrap();
    let copied = blobs
        .add_bytes(Bytes::from(random(200_000, 42)))
        .await
        .unwrap();
    let uploaded = blobs
        .add_reader(&random(300_000, 43)[..], |_| {})
        .await
        .unwrap();
    assert!(blobs.verify_all().await.unwrap().is_empty());

    // change the middle of the file, in place
    let mut changed = data.clone();
    changed[100_000] ^= 0xff;
    std::fs::write(&path, &changed).unwrap();

    assert_eq!(blobs.verify_all().await.unwrap(), vec![in_place.cid]);
    // reads are checked too: the damaged part is an error, not wrong bytes
    let err = blobs.read_to_bytes(&in_place.cid).await.unwrap_err();
    assert!(matches!(err, BlobError::Io { .. }), "{err}");
    let mut stream = Box::pin(blobs.read_range(&in_place.cid, 90_000, None).await.unwrap());
    let mut failed = false;
    while let Some(chunk) = stream.next().await {
        if let Err(e) = chunk {
            assert_eq!(e.kind(), io::ErrorKind::InvalidData);
            failed = true;
        }
    }
    assert!(failed);
    // untouched parts still read fine
    assert_eq!(
        read_all(&blobs, &in_place.cid, 0, Some(1000)).await,
        data[..1000]
    );

    // a removed file fails as well
    std::fs::remove_file(&path).unwrap();
    blobs.shutdown().await.unwrap();
    let blobs = repo.open().await;
    assert_eq!(blobs.verify_all().await.unwrap(), vec![in_place.cid]);
    assert!(blobs.has(&copied.cid).await.unwrap());
    assert!(blobs.has(&uploaded.cid).await.unwrap());

    // adding the original content as a copy repairs the blob
    let copy = repo.outside().join("original.bin");
    std::fs::write(&copy, &data).unwrap();
    blobs
        .add_path(&copy, ImportMode::Copy, |_| {})
        .await
        .unwrap();
    assert!(blobs.verify_all().await.unwrap().is_empty());
    assert_eq!(blobs.read_to_bytes(&in_place.cid).await.unwrap(), data);
    blobs.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn blobs_survive_reopening() {
    let repo = Repo::new();
    let blobs = repo.open().await;
    let mut added = Vec::new();
    for (i, len) in [5usize, 20_000, 2 * MIB].into_iter().enumerate() {
        let data = random(len, 50 + i as u64);
        let a = blobs.add_bytes(Bytes::from(data.clone())).await.unwrap();
        added.push((a.cid, data));
    }
    let big = random(3 * MIB, 60);
    let b = blobs.add_reader(&big[..], |_| {}).await.unwrap();
    added.push((b.cid, big));
    let mut listed = blobs.list().await.unwrap();
    blobs.shutdown().await.unwrap();

    let blobs = repo.open().await;
    for (cid, data) in &added {
        assert!(blobs.has(cid).await.unwrap());
        assert_eq!(&blobs.read_to_bytes(cid).await.unwrap()[..], &data[..]);
    }
    let mut relisted = blobs.list().await.unwrap();
    listed.sort_by_key(|(c, _)| c.to_string());
    relisted.sort_by_key(|(c, _)| c.to_string());
    assert_eq!(listed, relisted);
    assert!(blobs.verify_all().await.unwrap().is_empty());
    blobs.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn open_cleans_up_after_a_crash() {
    let repo = Repo::new();
    let blobs = repo.open().await;
    let kept = blobs
        .add_bytes(Bytes::from(random(100_000, 70)))
        .await
        .unwrap();
    // an import whose tag was never set (as if the process died before)
    let untagged = random(100_000, 71);
    let tt = blobs
        .store()
        .blobs()
        .add_bytes(untagged.clone())
        .temp_tag()
        .await
        .unwrap();
    drop(tt);
    assert!(blobs.has(&blob_cid_of(&untagged)).await.unwrap());
    blobs.shutdown().await.unwrap();

    // an upload moved into place whose entry was never committed
    let orphan = random(50_000, 72);
    let orphan_hash = blake3::hash(&orphan);
    let orphan_path = repo
        .blobs_dir()
        .join("uploads")
        .join(format!("{}.data", orphan_hash.to_hex()));
    std::fs::write(&orphan_path, &orphan).unwrap();
    let data_orphan = repo
        .blobs_dir()
        .join("data")
        .join(format!("{}.data", orphan_hash.to_hex()));
    std::fs::write(&data_orphan, &orphan).unwrap();

    let blobs = repo.open().await;
    assert!(!blobs.has(&blob_cid_of(&untagged)).await.unwrap());
    assert!(!orphan_path.exists());
    assert!(!data_orphan.exists());
    assert_eq!(blobs.list().await.unwrap(), vec![(kept.cid, kept.size)]);
    blobs.shutdown().await.unwrap();
}

/// Set in the child that [`files_added_for_a_later_commit_survive_a_crash_once_committed`]
/// starts: the repo folder, and whether to commit before dying.
const CRASH_CHILD: &str = "MNODE_TEST_LATER_COMMIT_CHILD";

/// The files the crashing child adds: 40 of 4–64 KiB (most over the 16 KiB the store keeps in
/// its database, so each has a data file of its own).
fn later_files() -> Vec<Vec<u8>> {
    (0..40u64)
        .map(|i| random(4096 + (i as usize * 1531) % (60 * 1024), 900 + i))
        .collect()
}

/// In the child: adds the files for a later commit, commits if asked, and ends the process
/// without closing the store (its database thread dies with it, as in a crash).
async fn later_commit_child(spec: &str) -> ! {
    let (dir, commit) = spec.split_once('|').unwrap();
    let dir = Path::new(dir);
    let blobs = Blobs::open(&dir.join("blobs"), &dir.join("tmp"))
        .await
        .unwrap();
    let outside = dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    for (i, data) in later_files().into_iter().enumerate() {
        let path = outside.join(format!("f{i}"));
        std::fs::write(&path, &data).unwrap();
        blobs
            .add_path_committing(&path, ImportMode::Copy, Commit::Later, |_| {})
            .await
            .unwrap();
    }
    if commit == "commit" {
        blobs.commit().await.unwrap();
    }
    std::fs::write(dir.join("added"), "").unwrap();
    std::process::exit(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn files_added_for_a_later_commit_survive_a_crash_once_committed() {
    if let Ok(spec) = std::env::var(CRASH_CHILD) {
        later_commit_child(&spec).await;
    }
    for commit in ["commit", "no-commit"] {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "files_added_for_a_later_commit_survive_a_crash_once_committed",
                "--nocapture",
            ])
            .env(CRASH_CHILD, format!("{}|{commit}", dir.path().display()))
            .status()
            .unwrap();
        assert!(status.success(), "{commit}: the child failed: {status}");
        assert!(
            dir.path().join("added").exists(),
            "{commit}: the child did not add"
        );
        let blobs = Blobs::open(&dir.path().join("blobs"), &dir.path().join("tmp"))
            .await
            .unwrap();
        let mut held = 0;
        for data in later_files() {
            let cid = blob_cid_of(&data);
            if blobs.has(&cid).await.unwrap() {
                held += 1;
                assert_eq!(&blobs.read_to_bytes(&cid).await.unwrap()[..], &data[..]);
            }
        }
        // Committed, every file is there after the crash; not committed, each file is whole
        // or absent, and the store is sound either way.
        if commit == "commit" {
            assert_eq!(held, 40, "files held after the crash");
        }
        println!("{commit}: {held} of 40 files held after the crash");
        assert!(blobs.verify_all().await.unwrap().is_empty());
        blobs.shutdown().await.unwrap();
    }
}

/// Set in the child that [`a_fetched_file_completed_just_before_a_crash_is_fetched_again_whole`]
/// starts: the repo folder.
const FETCH_CRASH_CHILD: &str = "MNODE_TEST_FETCH_CRASH_CHILD";

/// The files the crashing child fetches: 20 of 20–400 KiB, each over the 16 KiB the store keeps
/// in its database, so each arrives into files of its own (data, outboard, sizes, bitfield).
fn fetched_files() -> Vec<Vec<u8>> {
    (0..20u64)
        .map(|i| random(20 * 1024 + (i as usize * 19_937) % (380 * 1024), 1_700 + i))
        .collect()
}

/// The first half of `data`'s chunks, in whole 16 KiB chunk groups (at least one).
fn first_half(data: &[u8]) -> ChunkRanges {
    let groups = (data.len() as u64).div_ceil(16 * 1024) / 2;
    ChunkRanges::from(..ChunkNum(groups.max(1) * 16))
}

/// A store in `dir` holding every one of [`fetched_files`], to take them from as a peer would
/// send them (bao-encoded, verified as they are stored).
async fn fetch_source(dir: &Path) -> Blobs {
    let source = Blobs::open(&dir.join("source"), &dir.join("tmp"))
        .await
        .unwrap();
    for data in fetched_files() {
        source.add_bytes(Bytes::from(data)).await.unwrap();
    }
    source
}

/// Stores `ranges` of `data` in `into`, taken from `source`, as a fetch does.
async fn receive(source: &Blobs, into: &Blobs, data: &[u8], ranges: ChunkRanges) {
    let hash = iroh_blobs::Hash::new(data);
    let bao = source
        .store()
        .export_bao(hash, ranges.clone())
        .bao_to_vec()
        .await
        .unwrap();
    into.store()
        .import_bao_bytes(hash, ranges, bao)
        .await
        .unwrap();
}

/// In the child: receives the first half of each file and commits, then the rest (which makes
/// each file complete and drops its sizes and bitfield files), and ends the process without a
/// commit or closing the store (its database thread dies with it, as in a crash).
async fn fetch_crash_child(dir: &str) -> ! {
    let dir = Path::new(dir);
    let source = fetch_source(dir).await;
    let blobs = Blobs::open(&dir.join("blobs"), &dir.join("tmp"))
        .await
        .unwrap();
    for data in fetched_files() {
        // Tagged as a kept file is (a fetch keeps what an earlier one left).
        let hash = iroh_blobs::Hash::new(&data);
        let tag = blob_cid_of(&data).to_string();
        blobs
            .store()
            .tags()
            .set(tag, iroh_blobs::HashAndFormat::raw(hash))
            .await
            .unwrap();
        receive(&source, &blobs, &data, first_half(&data)).await;
    }
    blobs.commit().await.unwrap();
    for data in fetched_files() {
        receive(&source, &blobs, &data, ChunkRanges::all()).await;
        assert!(blobs.has(&blob_cid_of(&data)).await.unwrap());
    }
    // The store's database thread commits a write batch once no command came for 500 ms:
    // wait for the batch that holds the completions to be committed (not synced).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    std::fs::write(dir.join("fetched"), "").unwrap();
    std::process::exit(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fetched_file_completed_just_before_a_crash_is_fetched_again_whole() {
    if let Ok(dir) = std::env::var(FETCH_CRASH_CHILD) {
        fetch_crash_child(&dir).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_fetched_file_completed_just_before_a_crash_is_fetched_again_whole",
            "--nocapture",
        ])
        .env(FETCH_CRASH_CHILD, dir.path())
        .status()
        .unwrap();
    assert!(status.success(), "the child failed: {status}");
    assert!(
        dir.path().join("fetched").exists(),
        "the child did not fetch"
    );
    let blobs = Blobs::open(&dir.path().join("blobs"), &dir.path().join("tmp"))
        .await
        .unwrap();
    // Each file is whole, or back to partial with its sizes and bitfield files gone (the
    // completion was not committed): the store is sound either way...
    let mut whole = 0;
    for data in fetched_files() {
        let cid = blob_cid_of(&data);
        if blobs.has(&cid).await.unwrap() {
            whole += 1;
            assert_eq!(&blobs.read_to_bytes(&cid).await.unwrap()[..], &data[..]);
        }
    }
    println!("{whole} of 20 files whole after the crash");
    assert!(
        whole < 20,
        "every completion survived the crash: this test no longer reaches a partial entry \
         that lost its sizes and bitfield files"
    );
    assert!(blobs.verify_all().await.unwrap().is_empty());
    // ... and fetching them again makes each whole, byte for byte.
    let source = fetch_source(dir.path()).await;
    for data in fetched_files() {
        receive(&source, &blobs, &data, ChunkRanges::all()).await;
        let cid = blob_cid_of(&data);
        assert!(blobs.has(&cid).await.unwrap(), "{cid} is not whole");
        assert_eq!(&blobs.read_to_bytes(&cid).await.unwrap()[..], &data[..]);
    }
    assert!(blobs.verify_all().await.unwrap().is_empty());
    blobs.shutdown().await.unwrap();
    source.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn export_writes_the_file() {
    let repo = Repo::new();
    let blobs = repo.open().await;
    let data = random(MIB + 17, 80);
    let cid = blobs
        .add_bytes(Bytes::from(data.clone()))
        .await
        .unwrap()
        .cid;
    let dest = repo.outside().join("sub").join("out.bin");
    assert_eq!(blobs.export(&cid, &dest).await.unwrap(), data.len() as u64);
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    // replaces an existing file, leaves no temp file
    let small = blobs.add_bytes(Bytes::from_static(b"tiny")).await.unwrap();
    assert_eq!(blobs.export(&small.cid, &dest).await.unwrap(), 4);
    assert_eq!(std::fs::read(&dest).unwrap(), b"tiny");
    assert_eq!(files_in(dest.parent().unwrap()), vec!["out.bin"]);
    let missing = blob_cid_of(b"nope");
    assert!(matches!(
        blobs.export(&missing, &dest).await,
        Err(BlobError::NotFound(_))
    ));
    blobs.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn record_cids_are_rejected() {
    let repo = Repo::new();
    let blobs = repo.open().await;
    let cid = record_cid(b"x");
    let not_a_blob = |r: Result<(), BlobError>| {
        assert!(
            matches!(r, Err(BlobError::NotABlobCid(c)) if c == cid),
            "{r:?}"
        );
    };
    not_a_blob(blobs.has(&cid).await.map(drop));
    not_a_blob(blobs.size(&cid).await.map(drop));
    not_a_blob(blobs.read_range(&cid, 0, None).await.map(drop));
    not_a_blob(blobs.read_to_bytes(&cid).await.map(drop));
    not_a_blob(blobs.delete(&cid).await.map(drop));
    not_a_blob(
        blobs
            .export(&cid, &repo.outside().join("x"))
            .await
            .map(drop),
    );
    blobs.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn adding_a_directory_fails() {
    let repo = Repo::new();
    let blobs = repo.open().await;
    let err = blobs
        .add_path(&repo.outside(), ImportMode::Copy, |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, BlobError::Io { .. }), "{err}");
    let err = blobs
        .add_path(&repo.outside().join("missing"), ImportMode::InPlace, |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(err, BlobError::Io { ref source, .. } if source.kind() == io::ErrorKind::NotFound)
    );
    blobs.shutdown().await.unwrap();
}

/// The store works on a current-thread runtime too (it runs its own runtime inside).
#[tokio::test]
async fn works_on_a_current_thread_runtime() {
    let repo = Repo::new();
    let blobs = repo.open().await;
    let data = random(200_000, 90);
    let a = blobs.add_reader(&data[..], |_| {}).await.unwrap();
    assert_eq!(read_all(&blobs, &a.cid, 10, Some(20)).await, data[10..20]);
    assert!(blobs.delete(&a.cid).await.unwrap());
    assert!(blobs.list().await.unwrap().is_empty());
    blobs.shutdown().await.unwrap();
}

/// Adds running while deletes run GC passes keep their blobs, and every future is `Send`.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_adds_survive_deletes() {
    let repo = Repo::new();
    let blobs = std::sync::Arc::new(repo.open().await);
    let outside = repo.outside();
    let victims: Vec<Cid> = {
        let mut v = Vec::new();
        for i in 0..8 {
            let data = Bytes::from(random(40_000, 1000 + i));
            v.push(blobs.add_bytes(data).await.unwrap().cid);
        }
        v
    };
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..24u64 {
        let blobs = blobs.clone();
        let path = outside.join(format!("c{i}"));
        tasks.spawn(async move {
            let data = random(20_000 + (i as usize) * 7_000, 2000 + i);
            let added = match i % 3 {
                0 => blobs.add_bytes(Bytes::from(data.clone())).await.unwrap(),
                1 => blobs.add_reader(&data[..], |_| {}).await.unwrap(),
                _ => {
                    std::fs::write(&path, &data).unwrap();
                    blobs
                        .add_path(&path, ImportMode::Copy, |_| {})
                        .await
                        .unwrap()
                }
            };
            (added.cid, data)
        });
    }
    let deleter = {
        let blobs = blobs.clone();
        tokio::spawn(async move {
            for cid in victims {
                assert!(blobs.delete(&cid).await.unwrap());
            }
        })
    };
    let mut kept = Vec::new();
    while let Some(res) = tasks.join_next().await {
        kept.push(res.unwrap());
    }
    deleter.await.unwrap();
    // one more pass after everything settled
    blobs.delete(&blob_cid_of(b"not there")).await.unwrap();
    for (cid, data) in &kept {
        assert_eq!(&blobs.read_to_bytes(cid).await.unwrap()[..], &data[..]);
    }
    assert_eq!(blobs.list().await.unwrap().len(), kept.len());
    assert!(blobs.verify_all().await.unwrap().is_empty());
    let stream = blobs.read_range(&kept[0].0, 0, None).await.unwrap();
    tokio::spawn(async move { stream.count().await })
        .await
        .unwrap();
    std::sync::Arc::into_inner(blobs)
        .unwrap()
        .shutdown()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_copy_repairs_a_changed_in_place_blob() {
    let repo = Repo::new();
    let blobs = repo.open().await;
    let data = random(100_000, 95);
    let path = repo.outside().join("in-place.bin");
    std::fs::write(&path, &data).unwrap();
    let added = blobs
        .add_path(&path, ImportMode::InPlace, |_| {})
        .await
        .unwrap();
    assert_eq!(blobs.read_to_bytes(&added.cid).await.unwrap(), data);
    std::fs::write(&path, random(100_000, 96)).unwrap();
    assert_eq!(blobs.verify_all().await.unwrap(), vec![added.cid]);
    let again = blobs.add_bytes(Bytes::from(data.clone())).await.unwrap();
    assert_eq!(again, added);
    assert!(blobs.verify_all().await.unwrap().is_empty());
    assert_eq!(blobs.read_to_bytes(&added.cid).await.unwrap(), data);
    blobs.shutdown().await.unwrap();
}

async fn read_opened(
    blobs: &Blobs,
    cid: &Cid,
    key: &mnode_dag::sealed_file::FileKey,
    start: u64,
    end: Option<u64>,
) -> io::Result<Vec<u8>> {
    let mut stream = blobs.read_range_opened(cid, key, start, end).await.unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sealed_upload_stores_only_ciphertext_and_reads_back_any_range() {
    use mnode_dag::sealed_file::{CHUNK, FileKey, sealed_size};
    let repo = Repo::new();
    let blobs = repo.open().await;
    let data = random(3 * CHUNK as usize + 1234, 7);
    let key = FileKey::generate(&mut rand::rng());
    let added = blobs
        .add_reader_sealed(&data[..], &key, |_| {})
        .await
        .unwrap();
    assert_eq!(added.size, sealed_size(data.len() as u64));
    assert_ne!(
        added.cid,
        blob_cid_of(&data),
        "the blob is named by its ciphertext"
    );
    // The stored bytes are not the file: no 64-byte run of it appears in the blob.
    let stored = read_all(&blobs, &added.cid, 0, None).await;
    assert!(!stored.windows(64).any(|w| w == &data[1000..1064]));

    assert_eq!(
        read_opened(&blobs, &added.cid, &key, 0, None)
            .await
            .unwrap(),
        data
    );
    let c = CHUNK;
    for (start, end) in [
        (0, 1),
        (c - 1, c + 1),
        (c, 2 * c),
        (5, 3 * c + 1000),
        (3 * c + 1233, 3 * c + 1234),
    ] {
        assert_eq!(
            read_opened(&blobs, &added.cid, &key, start, Some(end))
                .await
                .unwrap(),
            &data[start as usize..end as usize],
            "{start}..{end}"
        );
    }
    // A range past the end is refused, as for a plain blob.
    assert!(matches!(
        blobs
            .read_range_opened(&added.cid, &key, data.len() as u64, None)
            .await,
        Err(BlobError::RangeNotSatisfiable { .. })
    ));
    // The wrong key yields an error, never bytes.
    let other = FileKey::generate(&mut rand::rng());
    let err = read_opened(&blobs, &added.cid, &other, 0, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("does not open"), "{err}");

    // An empty file seals to one tag and opens to nothing.
    let empty = blobs
        .add_reader_sealed(&b""[..], &key, |_| {})
        .await
        .unwrap();
    assert_eq!(empty.size, 16);
    assert!(
        read_opened(&blobs, &empty.cid, &key, 0, None)
            .await
            .unwrap()
            .is_empty()
    );
}

//! Helia fetches a release from a running node over Bitswap, with the fetch script of the
//! protocols crate (`protocols/tests/interop/bitswap.mjs`: TCP, noise, yamux and identify;
//! Bitswap is Helia's only block broker): its records, and its files through the UnixFS views
//! the records link (`@helia/unixfs`).
//!
//! Needs Node.js (>= 20.19) and `npm ci` in `protocols/tests/interop`. Without `node_modules`
//! the test prints why and passes, unless `CI` is set, where it fails.

mod support;

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use mnode_dag::{
    Cid, Keypair, Record,
    cids::{self, LinkKind},
    example::ExampleGen,
    model::{
        Link, TitleData,
        art::{Artist, Audio, Image, Release, ReleaseKind},
        core::{File, FileData},
    },
    unixfs::{self, Layout, View},
    walk,
};
use sha2::{Digest as _, Sha256};
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
            LinkKind::UnixFs | LinkKind::Other => panic!("{cid} is neither a record nor a file"),
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

/// A `len`-byte WAV file (8 kHz, 8-bit mono) of white noise.
fn wav(len: usize, seed: u64) -> Vec<u8> {
    let samples = u32::try_from(len - 44).expect("a small WAV");
    let mut b = Vec::with_capacity(len);
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + samples).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes()); // PCM
    b.extend_from_slice(&1u16.to_le_bytes()); // mono
    b.extend_from_slice(&8000u32.to_le_bytes()); // samples a second
    b.extend_from_slice(&8000u32.to_le_bytes()); // bytes a second
    b.extend_from_slice(&1u16.to_le_bytes()); // bytes a frame
    b.extend_from_slice(&8u16.to_le_bytes()); // bits a sample
    b.extend_from_slice(b"data");
    b.extend_from_slice(&samples.to_le_bytes());
    b.extend(mnode_dag::testing::noise(len - 44, seed));
    b
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The file a record made here names: its `FileData` (`core.file` has the same fields).
fn file_data(record: &Record) -> FileData {
    match record.kind() {
        "art.image" => {
            record
                .body_as::<Image>()
                .expect("image")
                .expect("body")
                .file
        }
        "art.audio" => {
            record
                .body_as::<Audio>()
                .expect("audio")
                .expect("body")
                .file
        }
        "core.file" => {
            let f = record.body_as::<File>().expect("file").expect("body");
            FileData {
                blob: f.blob,
                name: f.name,
                media_type: f.media_type,
                size: f.size,
                sealed: f.sealed,
                unixfs: f.unixfs,
            }
        }
        other => panic!("{} is a {other}, not a file record", record.cid()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_helia_fetches_a_release_s_files_by_their_unixfs_views() {
    if !support::js_installed(HELIA) {
        return;
    }
    let a = spawn().await;

    // Three files, one of each UnixFS shape: a tiny image (one short leaf, the leaf is the
    // root), a track of 3 MiB and a few bytes (four leaves under a dag-pb root, the last one
    // short), and notes of exactly 1 MiB (one full leaf, no empty leaf after it).
    let mut g = ExampleGen::new(12);
    let mut cover = g.image(24, 16);
    let cover_bytes = g.take_blocks().pop().expect("the image's bytes").1;
    let track_bytes = wav(3 * (1 << 20) + 4, 1);
    let notes_bytes = mnode_dag::testing::noise(1 << 20, 2);
    let mut track = FileData {
        blob: Link(cids::blob_cid_of(&track_bytes)),
        name: "noise.wav".into(),
        media_type: "audio/wav".into(),
        size: track_bytes.len() as u64,
        sealed: None,
        unixfs: None,
    };
    let mut notes = FileData {
        blob: Link(cids::blob_cid_of(&notes_bytes)),
        name: "notes.bin".into(),
        media_type: "application/octet-stream".into(),
        size: notes_bytes.len() as u64,
        sealed: None,
        unixfs: None,
    };

    // Into node A's blob store, each indexed: its view kept, announced, and linked from the
    // file's record.
    let mut originals: HashMap<Cid, &[u8]> = HashMap::new();
    for (file, bytes) in [
        (&mut cover, &cover_bytes),
        (&mut track, &track_bytes),
        (&mut notes, &notes_bytes),
    ] {
        let added = a.h.blobs().add_bytes(Bytes::from(bytes.clone())).await;
        assert_eq!(added.expect("add file").cid, file.blob.0);
        let root = a.h.index_file(&file.blob.0).await.expect("index file");
        let view = View::of(bytes, Layout::default());
        assert_eq!(root, view.root, "{}", file.name);
        assert_eq!(cids::link_kind(&root), LinkKind::UnixFs);
        file.unixfs = Some(Link(root));
        originals.insert(root, bytes);
        originals.insert(file.blob.0, bytes);
    }
    let shape = |f: &FileData| f.unixfs.expect("unixfs").0.codec();
    assert_eq!(shape(&cover), cids::RAW, "a tiny file is its own leaf");
    assert_eq!(shape(&notes), cids::RAW, "1 MiB is one leaf");
    assert_eq!(shape(&track), unixfs::DAG_PB, "3 MiB and more is a tree");
    assert_eq!(View::of(&track_bytes, Layout::default()).leaves.len(), 4);

    // The release and its records, made here rather than by ExampleGen (whose output the
    // golden vectors pin), signed by one key.
    let key = Keypair::derive(12, "helia-unixfs");
    let sign = |draft: mnode_dag::record::Draft| draft.sign(&key).expect("sign");
    let artist = sign(
        Record::create(&Artist {
            name: TitleData::new("White Noise Ensemble"),
            profile: Some(*key.did()),
            ..Artist::default()
        })
        .expect("artist"),
    );
    let by = vec![Link(artist.cid())];
    let image = sign(
        Record::create(&Image {
            file: cover.clone(),
            width: Some(24),
            height: Some(16),
            alt: Some("A gradient".into()),
            title: None,
        })
        .expect("image"),
    );
    let audio = sign(
        Record::create(&Audio {
            file: track.clone(),
            title: Some(TitleData::new("Hiss")),
            artists: by.clone(),
            duration_ms: Some(track.size * 1000 / 8000),
            track: Some(1),
        })
        .expect("audio"),
    );
    let file = sign(Record::create(&File::new(notes.clone())).expect("file"));
    let release = sign(
        Record::create(&Release {
            title: TitleData::new("Static"),
            kind: ReleaseKind::Album,
            artists: by,
            files: vec![Link(image.cid()), Link(audio.cid()), Link(file.cid())],
            cover: Some(Link(image.cid())),
            ..Release::default()
        })
        .expect("release"),
    );
    let records = [artist, image, audio, file, release.clone()];
    let blocks: HashMap<Cid, Vec<u8>> = records
        .iter()
        .map(|r| (r.cid(), r.bytes().to_vec()))
        .collect();
    a.h.publish(records.to_vec()).await.expect("publish");

    // The release's DAG: its records, then (not blocks of the record store) the files' blobs and
    // UnixFS roots.
    let mut wanted = Vec::new();
    let beyond = walk::walk(
        &[release.cid()],
        |cid| Ok::<_, std::convert::Infallible>(blocks.get(cid).cloned()),
        |cid, _| {
            wanted.push(*cid);
            Ok(())
        },
    )
    .expect("walk");
    assert_eq!(wanted.len(), records.len());
    let beyond: HashSet<Cid> = beyond.into_iter().collect();
    let files: HashSet<Cid> = originals.keys().copied().collect();
    assert_eq!(
        beyond, files,
        "the records link each file by blob and by view"
    );

    // Helia fetches the records over Bitswap...
    let mut args = vec!["fetch".to_owned(), a.addr().await];
    args.extend(wanted.iter().map(Cid::to_string));
    let mut script = Script::start(HELIA, "bitswap.mjs", &args);
    let report = script.next("the fetched records").await;
    script.finish().await;
    let got = report["blocks"].as_array().expect("blocks");
    assert_eq!(got.len(), wanted.len());
    let mut fetched = Vec::new();
    for (cid, entry) in wanted.iter().zip(got) {
        assert_eq!(entry["cid"], cid.to_string());
        let bytes = hex::decode(entry["hex"].as_str().expect("hex")).expect("hex");
        assert_eq!(&bytes, &blocks[cid], "{cid}");
        let record = Record::decode(&bytes).expect("record");
        if matches!(record.kind(), "art.image" | "art.audio" | "core.file") {
            fetched.push(file_data(&record));
        }
    }
    assert_eq!(fetched.len(), 3, "the release's three file records");

    // ...then every file by the UnixFS link of its record, with @helia/unixfs (every dag-pb node
    // and leaf over Bitswap, each checked by Helia), and the files of up to 2 MiB also by their
    // BLAKE3 CIDs as one raw block each. Helia 7 has no BLAKE3 hasher of its own (sha2-256 and
    // identity in createHeliaLight, sha2-512 too in createHelia): the script gives it
    // @noble/hashes' as a custom hasher, as an application fetching mnode files would.
    let mut cat: Vec<Cid> = fetched
        .iter()
        .map(|f| f.unixfs.expect("a unixfs link").0)
        .collect();
    cat.extend(
        fetched
            .iter()
            .filter(|f| f.size <= 2 << 20)
            .map(|f| f.blob.0),
    );
    assert_eq!(cat.len(), 5, "three views and two small blobs");
    let mut args = vec!["cat".to_owned(), a.addr().await];
    args.extend(cat.iter().map(Cid::to_string));
    let mut script = Script::start(HELIA, "bitswap.mjs", &args);
    let report = script.next("the files").await;
    script.finish().await;
    assert_eq!(report["remote"], a.h.peer_id().to_string());
    let got = report["files"].as_array().expect("files");
    assert_eq!(got.len(), cat.len());
    for (cid, entry) in cat.iter().zip(got) {
        let original = originals[cid];
        assert_eq!(entry["cid"], cid.to_string());
        assert_eq!(entry["size"], original.len(), "{cid}");
        assert_eq!(entry["sha256"], sha256_hex(original), "{cid}");
    }
    println!(
        "Helia fetched the {} records of release {} and its files ({} bytes) by their UnixFS \
         views over Bitswap",
        wanted.len(),
        release.cid(),
        fetched.iter().map(|f| f.size).sum::<u64>()
    );
    a.node.shutdown().await.expect("shutdown");
}

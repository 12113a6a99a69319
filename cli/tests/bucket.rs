//! A node whose files live in an S3-compatible bucket, driven as an operator would: the CLI
//! and the daemon's API and gateway, against a real S3 server: s3s-fs's implementation,
//! run in the test process over TCP (`mnode_bench_support::S3Server`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use mnode_bench_support::{S3_ACCESS_KEY, S3_SECRET_KEY, S3Server};
use support::{http::Api, init_with, json, mnode, run};
use tempfile::TempDir;

const BUCKET: &str = "mnode-cli";

/// A server over a fresh folder.
fn server() -> (S3Server, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let server = S3Server::start(&dir.path().join("s3"), BUCKET);
    (server, dir)
}

/// The settings that point a repo at the server's bucket (`store`: `s3` or `local`).
fn settings(server: &S3Server, store: &str) -> Vec<String> {
    vec![
        format!("blobs.store={store}"),
        format!("blobs.s3.endpoint={}", server.endpoint()),
        format!("blobs.s3.bucket={BUCKET}"),
        "blobs.s3.prefix=shop".into(),
        format!("blobs.s3.access_key_id={S3_ACCESS_KEY}"),
        format!("blobs.s3.secret_access_key={S3_SECRET_KEY}"),
        "blobs.s3.timeout_secs=5".into(),
    ]
}

fn repo_on(dir: &TempDir, server: &S3Server, store: &str) -> PathBuf {
    let settings = settings(server, store);
    let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
    init_with(dir.path(), "repo", &settings)
}

/// The objects under the repo's prefix, by name.
fn objects(dir: &TempDir) -> Vec<String> {
    let blobs = dir.path().join("s3").join(BUCKET).join("shop/blobs");
    let mut names: Vec<String> = std::fs::read_dir(blobs)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Multipart uploads the server holds parts of.
fn open_uploads(dir: &TempDir) -> Vec<String> {
    let mut names = Vec::new();
    for entry in walk(&dir.path().join("s3")) {
        let name = entry.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with(".upload") {
            names.push(name);
        }
    }
    names
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Files on the repo's local disk that hold file bytes.
fn local_bytes(repo: &Path) -> Vec<PathBuf> {
    ["blobs/data", "blobs/uploads", "tmp"]
        .iter()
        .flat_map(|sub| walk(&repo.join(sub)))
        .collect()
}

fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(&seed.to_le_bytes())
        .finalize_xof()
        .fill(&mut out);
    out
}

#[test]
fn a_node_on_a_bucket_adds_serves_ranges_and_deletes() {
    let (server, dir) = server();
    let repo = repo_on(&dir, &server, "s3");
    let daemon = run(&repo);
    let api = Api::of(&repo);

    // `mnode add` through the daemon.
    let file = dir.path().join("track.flac");
    let data = content(1, (9 << 20) + 321);
    std::fs::write(&file, &data).unwrap();
    let added = json(&repo, &["add", file.to_str().unwrap()]);
    let cid = added[0]["cid"].as_str().unwrap().to_owned();
    assert_eq!(
        objects(&dir).len(),
        1,
        "the file is an object in the bucket"
    );
    assert!(
        local_bytes(&repo).is_empty(),
        "nothing on the local disk: {:?}",
        local_bytes(&repo)
    );

    // The gateway: the whole file, and ranges, read from the bucket.
    let whole = api.get(&format!("/ipfs/{cid}")).unwrap();
    assert_eq!(whole.status, 200);
    assert!(whole.body == data, "the gateway serves the file's bytes");
    for (start, end) in [
        (0u64, 99u64),
        (5_000_000, 9_000_000),
        (9 << 20, (9 << 20) + 320),
    ] {
        let a = api
            .get_with(
                &format!("/ipfs/{cid}"),
                &[("Range", &format!("bytes={start}-{end}"))],
            )
            .unwrap();
        assert_eq!(a.status, 206, "{start}-{end}: {}", a.text());
        assert!(
            a.body == data[start as usize..=end as usize],
            "{start}-{end}"
        );
    }

    // An upload over the API goes to the bucket too.
    let up = api
        .put_bytes("/api/v1/files?name=cover.png", &content(2, 2 << 20))
        .unwrap();
    assert!(up.ok(), "{}", up.text());
    let up_cid = up.json()["cid"].as_str().unwrap().to_owned();
    assert_eq!(objects(&dir).len(), 2);

    // `mnode get` writes it out.
    let out = dir.path().join("copy.flac");
    json(&repo, &["get", &cid, "-o", out.to_str().unwrap()]);
    assert!(std::fs::read(&out).unwrap() == data);

    let verify = json(&repo, &["repo", "verify"]);
    assert_eq!(verify["ok"], true, "{verify}");

    // Deleting a file removes its object.
    let gone = api.delete(&format!("/api/v1/files/{up_cid}")).unwrap();
    assert!(gone.ok(), "{}", gone.text());
    assert_eq!(objects(&dir).len(), 1);
    assert_eq!(api.get(&format!("/ipfs/{up_cid}")).unwrap().status, 404);
    drop(daemon);
}

/// The daemon's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_200_mb_upload_to_a_bucket_keeps_memory_flat() {
    let (server, dir) = server();
    let repo = repo_on(&dir, &server, "s3");
    let daemon = run(&repo);
    let api = Api::of(&repo);
    let pid = daemon.child.id();
    let data = content(3, 200 << 20);
    let before = rss_kib(pid);
    let done = std::sync::atomic::AtomicBool::new(false);
    let peak = std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let mut peak = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss_kib(pid));
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        });
        let up = api
            .put_bytes("/api/v1/files?name=master.wav", &data)
            .unwrap();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(up.ok(), "{}", up.text());
        watcher.join().unwrap()
    });
    let grew_mib = peak.saturating_sub(before) / 1024;
    eprintln!(
        "daemon RSS {} MiB before, peak {} MiB",
        before / 1024,
        peak / 1024
    );
    assert!(
        grew_mib < 96,
        "a 200 MiB upload grew the daemon by {grew_mib} MiB: it is buffered somewhere"
    );
    assert_eq!(objects(&dir).len(), 1);
    assert!(local_bytes(&repo).is_empty(), "{:?}", local_bytes(&repo));
    drop(daemon);
}

#[test]
fn kill_9_during_an_upload_to_a_bucket_leaves_nothing_behind() {
    let (server, dir) = server();
    let repo = repo_on(&dir, &server, "s3");
    let file = dir.path().join("album.zip");
    std::fs::write(&file, content(4, 300 << 20)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mnode"))
        .arg("--repo")
        .arg(&repo)
        .args(["add", file.to_str().unwrap()])
        .env("MNODE_PASSPHRASE", "a test passphrase")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed once the bucket holds some of its parts, and before it is done.
    let started = Instant::now();
    while open_uploads(&dir)
        .iter()
        .filter(|n| n.contains(".part-"))
        .count()
        < 2
    {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the add finished before it could be killed"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no upload started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(objects(&dir).is_empty(), "no object: {:?}", objects(&dir));

    // The next command that opens the repo aborts the upload the kill interrupted.
    let stat = json(&repo, &["repo", "stat"]);
    assert_eq!(stat["files"], 0, "{stat}");
    assert!(
        open_uploads(&dir).is_empty(),
        "the parts are gone: {:?}",
        open_uploads(&dir)
    );
    assert!(local_bytes(&repo).is_empty(), "{:?}", local_bytes(&repo));
    assert!(
        walk(&repo.join("blobs/s3")).is_empty(),
        "no index entry or upload note: {:?}",
        walk(&repo.join("blobs/s3"))
    );

    // And the same file adds fine afterwards.
    let added = json(&repo, &["add", file.to_str().unwrap()]);
    assert_eq!(added[0]["size"], 300 << 20);
    assert_eq!(objects(&dir).len(), 1);
}

#[test]
fn a_repo_of_1000_files_moves_to_the_bucket_and_back_verified() {
    let (server, dir) = server();
    let repo = repo_on(&dir, &server, "local");
    let files = dir.path().join("photos");
    std::fs::create_dir_all(&files).unwrap();
    for i in 0..1000u64 {
        let len = 17_000 + (i as usize * 37) % 20_000;
        std::fs::write(files.join(format!("{i:04}.jpg")), content(100 + i, len)).unwrap();
    }
    let added = json(&repo, &["add", files.to_str().unwrap()]);
    assert_eq!(added.as_array().unwrap().len(), 1000);
    let one = added[7]["cid"].as_str().unwrap().to_owned();
    let one_bytes = std::fs::read(files.join("0007.jpg")).unwrap();
    assert!(objects(&dir).is_empty());

    let moved = json(&repo, &["repo", "migrate-blobs", "--to", "s3"]);
    assert_eq!(moved["moved"]["files"], 1000, "{moved}");
    assert_eq!(objects(&dir).len(), 1000);
    assert!(local_bytes(&repo).is_empty(), "{:?}", local_bytes(&repo));
    let store = mnode(&repo, &["config", "get", "blobs.store"]);
    assert_eq!(String::from_utf8_lossy(&store.stdout).trim(), "s3");
    let verify = json(&repo, &["repo", "verify"]);
    assert_eq!(verify["ok"], true, "{verify}");
    let out = dir.path().join("one.jpg");
    json(&repo, &["get", &one, "-o", out.to_str().unwrap()]);
    assert!(std::fs::read(&out).unwrap() == one_bytes);

    // Running it again moves nothing.
    let again = json(&repo, &["repo", "migrate-blobs", "--to", "s3"]);
    assert_eq!(again["moved"]["files"], 0, "{again}");

    // A node told to look on its disk while its files are in the bucket says so.
    let refused = mnode(&repo, &["-c", "blobs.store=local", "repo", "stat"]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("1000 files") && said.contains("migrate-blobs --to local"),
        "{said}"
    );

    // An object removed behind the node's back is reported by verify.
    let victim = objects(&dir)[0].clone();
    std::fs::remove_file(
        dir.path()
            .join("s3")
            .join(BUCKET)
            .join("shop/blobs")
            .join(&victim),
    )
    .unwrap();
    let o = mnode(&repo, &["repo", "verify"]);
    assert!(!o.status.success(), "verify fails");
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(
        said.contains("is missing from s3://mnode-cli/shop"),
        "{said}"
    );

    // Back to the local disk: everything but the lost file, which stays in the index until
    // it is added again.
    let o = mnode(&repo, &["--json", "repo", "migrate-blobs", "--to", "local"]);
    assert!(!o.status.success(), "a lost object stops the move back");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(said.contains("s3://mnode-cli/shop"), "{said}");
    let lost = added
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            let cid = mnode_dag::cids::parse(f["cid"].as_str().unwrap()).unwrap();
            hex::encode(mnode_dag::cids::blob_hash(&cid).unwrap()) == victim
        })
        .unwrap();
    json(&repo, &["add", lost["path"].as_str().unwrap()]);
    let back = json(&repo, &["repo", "migrate-blobs", "--to", "local"]);
    assert!(back["moved"]["files"].as_u64().unwrap() >= 1, "{back}");
    assert!(objects(&dir).is_empty(), "{:?}", objects(&dir).len());
    let store = mnode(&repo, &["config", "get", "blobs.store"]);
    assert_eq!(String::from_utf8_lossy(&store.stdout).trim(), "local");
    let o = mnode(&repo, &["--json", "repo", "verify"]);
    let verify: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(verify["ok"], true, "{verify}");
    assert_eq!(verify["report"]["blobs"], 1000, "{verify}");
    let out = dir.path().join("one-again.jpg");
    json(&repo, &["get", &one, "-o", out.to_str().unwrap()]);
    assert!(std::fs::read(&out).unwrap() == one_bytes);
}

//! Getting files out and moving them between nodes, as a user does it, each row next to its
//! reference measured in the same run (release build, 127.0.0.1, one file of
//! `MNODE_BENCH_TRANSFER_MIB`, default 1024). Sections (all by default; name some to run only
//! those: `cargo bench -p mnode --bench transfer -- held peer small`):
//!
//! - `held`: `cp` of the file (the reference), `mnode get CID -o FILE` of a file the repo holds,
//!   without a daemon and through one, and a copy in 1 MiB reads with BLAKE3 over each (what
//!   re-hashing the store's own file on export would cost), in this process.
//! - `peer`: the transport's ceiling, one QUIC stream between two iroh endpoints built as the
//!   node builds its blob endpoint (each on a runtime of its own, in this process), sending the
//!   page-cached file in 1 MiB reads, the receiver dropping it or writing it to a file; iroh-blobs
//!   alone (a get between two bare `FsStore`s, into a `MemStore`, and through iroh-blobs'
//!   `Downloader` as the node fetches); `mnode fetch CID` between two daemons; `mnode get CID -o
//!   FILE` from a peer (the file is written while it arrives), and `mnode fetch` followed by
//!   `mnode get`; `sendme receive` of the same file from `sendme send`, relays off, when a
//!   `sendme` binary is found (in `PATH` or `$HOME/.cache/mnode-tools/bin`). The in-process rows
//!   run on this bench's allocator (the system's), the daemons on jemalloc.
//! - `small`: `MNODE_BENCH_SMALL_FILES` (default 10,000, the most one release holds) files of
//!   4–64 KiB (seeded sizes): `mnode add DIR` (without and through a daemon) and `mnode publish
//!   release DIR` against `cp -r` + `b3sum` of every file, and a second daemon fetching the
//!   release whole (`mnode fetch RELEASE`: its records over Bitswap, then every file) against
//!   `mnode fetch` of one file of the same bytes. Needs `b3sum` (installed with apt-get if
//!   missing).
//!
//! - `s3`: a node whose files live in an S3 bucket (`blobs.store: s3`) on a real S3 server
//!   (s3s-fs's, in this process, on a folder beside the others): `mnode add FILE` into the
//!   bucket against `aws s3 cp FILE s3://…` to the same server, and a download of the file
//!   through the daemon's gateway (`curl`, written to disk) against `aws s3 cp s3://… OUT`. The
//!   AWS CLI (PyPI `awscli`) is installed into `$HOME/.cache/mnode-tools/awscli` if missing.
//!
//! Every timed run starts after `sync`, and every written file is checked (size, and its BLAKE3
//! hash against the CID once per row). Best of `MNODE_BENCH_TRANSFER_RUNS` (default 3).
//!
//! Work files go under `$MNODE_BENCH_DIR` (default: a folder in the system temp dir); at 1 GiB
//! it needs about 4 GiB free there.

#![allow(clippy::unwrap_used)]

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use mnode_bench_support::{Rng, bench_dir, best_of, big_file, env_num, met, run, sync_disk};
use serde_json::Value;

const MNODE: &str = env!("CARGO_BIN_EXE_mnode");
/// Where `cargo install --root` puts tools for the benches.
const TOOLS: &str = ".cache/mnode-tools";

fn mnode(repo: &Path) -> Command {
    let mut c = Command::new(MNODE);
    c.arg("--repo").arg(repo);
    c
}

/// `mnode init` of a repo that listens on 127.0.0.1 only, on ports of its own.
fn init(repo: &Path) {
    init_with(repo, &[]);
}

/// [`init`] with more settings (`key=value`).
fn init_with(repo: &Path, settings: &[String]) {
    let _ = std::fs::remove_dir_all(repo);
    let mut cmd = mnode(repo);
    for s in settings {
        cmd.arg("-c").arg(s);
    }
    run(cmd.args([
        "-c",
        r#"network.listen=["/ip4/127.0.0.1/tcp/0"]"#,
        "-c",
        "network.blobs_listen=127.0.0.1:0",
        "-c",
        "api.listen=127.0.0.1:0",
        "init",
        "--no-password",
    ]));
}

/// An `mnode daemon` on a repo, stopped (SIGTERM, waited for) on drop.
struct Daemon {
    child: Child,
    info: Value,
}

impl Daemon {
    fn start(repo: &Path) -> Self {
        let info_file = repo.join("daemon.json");
        let _ = std::fs::remove_file(&info_file);
        let log = std::fs::File::create(repo.with_extension("log")).unwrap();
        let child = mnode(repo)
            .arg("daemon")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let info = loop {
            if let Ok(text) = std::fs::read(&info_file)
                && let Ok(v) = serde_json::from_slice::<Value>(&text)
            {
                break v;
            }
            assert!(
                Instant::now() < deadline,
                "the daemon in {repo:?} did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Self { child, info }
    }

    fn addr(&self) -> String {
        self.info["addrs"][0].as_str().unwrap().to_owned()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        mnode_bench_support::terminate(&mut self.child);
    }
}

/// Times `cmd` (run to success) after flushing what earlier runs left to write.
fn timed(cmd: &mut Command) -> (Duration, String) {
    sync_disk();
    let start = Instant::now();
    let out = run(cmd);
    (start.elapsed(), out)
}

/// Checks that `path` holds the blob `cid` names: its size, and (when `hash`) its BLAKE3 hash.
fn check(path: &Path, cid: &str, size: u64, hash: bool) {
    assert_eq!(std::fs::metadata(path).unwrap().len(), size, "{path:?}");
    if !hash {
        return;
    }
    let cid: mnode_dag::Cid = cid.parse().unwrap();
    let want = mnode_dag::cids::blob_hash(&cid).unwrap();
    let mut hasher = blake3::Hasher::new();
    hasher
        .update_reader(std::fs::File::open(path).unwrap())
        .unwrap();
    assert_eq!(hasher.finalize().as_bytes(), &want, "{path:?} is not {cid}");
}

/// The best of `runs` of `f`, which gets the run's number; the last run's file is hashed.
fn rows(runs: u64, mut f: impl FnMut(u64) -> Duration) -> Duration {
    let mut n = 0;
    best_of(runs as usize, || {
        n += 1;
        f(n)
    })
}

/// Copies `from` to `to` in 1 MiB reads, hashing each, then flushes `to` to disk: what an
/// export that re-verifies the store's file would do. Returns the hash.
fn hashing_copy(from: &Path, to: &Path) -> [u8; 32] {
    let mut src = std::fs::File::open(from).unwrap();
    let mut dst = std::fs::File::create(to).unwrap();
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = src.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        dst.write_all(&buf[..n]).unwrap();
    }
    dst.sync_all().unwrap();
    *hasher.finalize().as_bytes()
}

/// A `sendme` binary: in `PATH`, else where `cargo install --root ~/.cache/mnode-tools` puts it.
fn sendme_bin() -> Option<PathBuf> {
    let in_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let tools = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(TOOLS).join("bin"));
    in_path
        .into_iter()
        .chain(tools)
        .map(|d| d.join("sendme"))
        .find(|p| p.is_file())
}

/// `sendme receive` of `file` from a `sendme send` on this machine, relays off, IPv4 on
/// 127.0.0.1 only (its ticket then names only that address; no internet is needed): best of
/// `runs`, or why it could not run. Checked with sendme 0.37.1.
fn sendme(bin: &Path, dir: &Path, file: &Path, size: u64, runs: u64) -> Result<Duration, String> {
    let send_dir = dir.join("sendme-send");
    let _ = std::fs::remove_dir_all(&send_dir);
    std::fs::create_dir_all(&send_dir).unwrap();
    let mut sender = Command::new(bin)
        .args(["send", "--relay", "disabled", "--ticket-type", "addresses"])
        .args(["--magic-ipv4-addr", "127.0.0.1:0", "--no-progress"])
        .arg(file)
        .current_dir(&send_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let mut lines = BufReader::new(sender.stdout.take().unwrap()).lines();
    let ticket = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("sendme receive ").map(str::to_owned));
    // Keep reading what it prints, so that it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    let result = match ticket {
        None => Err("`sendme send` printed no ticket".to_owned()),
        Some(ticket) => {
            let name = file.file_name().unwrap();
            let recv_dir = dir.join("sendme-recv");
            let mut failed = None;
            let took = rows(runs, |_| {
                let _ = std::fs::remove_dir_all(&recv_dir);
                std::fs::create_dir_all(&recv_dir).unwrap();
                sync_disk();
                let start = Instant::now();
                let out = Command::new(bin)
                    .args(["receive", "--relay", "disabled", "--no-progress"])
                    .args(["--magic-ipv4-addr", "127.0.0.1:0", &ticket])
                    .current_dir(&recv_dir)
                    .stdin(Stdio::null())
                    .output()
                    .unwrap();
                let took = start.elapsed();
                if !out.status.success() {
                    failed = Some(String::from_utf8_lossy(&out.stderr).into_owned());
                }
                let got = std::fs::metadata(recv_dir.join(name)).map(|m| m.len()).ok();
                if failed.is_none() && got != Some(size) {
                    failed = Some(format!("received {got:?} bytes, not {size}"));
                }
                took
            });
            let _ = std::fs::remove_dir_all(&recv_dir);
            failed.map_or(Ok(took), |e| Err(format!("`sendme receive` failed: {e}")))
        }
    };
    let _ = Command::new("kill")
        .args(["-INT", &sender.id().to_string()])
        .status();
    let _ = sender.wait();
    let _ = std::fs::remove_dir_all(&send_dir);
    result
}

/// A tokio runtime of its own for one side of an in-process transfer, as each daemon has one.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// An iroh endpoint built as the node builds its blob endpoint
/// ([`mnode_node::node::endpoint_builder`]: no relay, no lookup, no port mapping) on 127.0.0.1.
async fn endpoint(alpns: Vec<Vec<u8>>) -> iroh::Endpoint {
    mnode_node::node::endpoint_builder("127.0.0.1:0".parse().unwrap())
        .unwrap()
        .alpns(alpns)
        .bind()
        .await
        .unwrap()
}

fn endpoint_addr(ep: &iroh::Endpoint) -> iroh::EndpointAddr {
    iroh::EndpointAddr::new(ep.id()).with_ip_addr(ep.bound_sockets()[0])
}

/// An endpoint built as the node's that knows where `addr` listens.
async fn endpoint_knowing(addr: &iroh::EndpointAddr) -> iroh::Endpoint {
    let lookup = iroh::address_lookup::MemoryLookup::new();
    lookup.add_endpoint_info(addr.clone());
    mnode_node::node::endpoint_builder("127.0.0.1:0".parse().unwrap())
        .unwrap()
        .address_lookup(lookup)
        .bind()
        .await
        .unwrap()
}

/// `store` served by iroh-blobs' `BlobsProtocol` on an endpoint built as the node's.
async fn serve_blobs(store: &iroh_blobs::store::fs::FsStore) -> iroh::protocol::Router {
    let ep = endpoint(vec![]).await;
    iroh::protocol::Router::builder(ep)
        .accept(
            iroh_blobs::ALPN,
            iroh_blobs::BlobsProtocol::new(store, None),
        )
        .spawn()
}

/// The transport's ceiling: one QUIC stream between two endpoints built as the node's, each on
/// a runtime of its own. The receiver connects and asks (a few bytes on a bidirectional
/// stream, as an iroh-blobs get does); the sender answers with `file` in 1 MiB reads (it is in
/// the page cache). The receiver drops what arrives, or, with `to`, writes it there in 1 MiB
/// writes. Timed at the receiver, from connecting to the stream's end.
fn bare_quic(file: &Path, size: u64, to: Option<&Path>) -> Duration {
    const ALPN: &[u8] = b"mnode-bench/bare-quic";
    let (rt_send, rt_recv) = (runtime(), runtime());
    let sender = rt_send.block_on(endpoint(vec![ALPN.to_vec()]));
    let receiver = rt_recv.block_on(endpoint(vec![]));
    let addr = endpoint_addr(&sender);
    let file = file.to_owned();
    let serving = rt_send.spawn(async move {
        let conn = sender.accept().await.unwrap().await.unwrap();
        let (mut send, mut recv) = conn.accept_bi().await.unwrap();
        recv.read_to_end(64).await.unwrap();
        let mut src = std::fs::File::open(&file).unwrap();
        loop {
            let mut buf = vec![0u8; 1 << 20];
            let n = src.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            buf.truncate(n);
            send.write_chunk(buf.into()).await.unwrap();
        }
        send.finish().unwrap();
        conn.closed().await;
        sender.close().await;
    });
    let took = rt_recv.block_on(async {
        let start = Instant::now();
        let conn = receiver.connect(addr, ALPN).await.unwrap();
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        send.write_all(b"get").await.unwrap();
        send.finish().unwrap();
        let mut out = to
            .map(|p| std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(p).unwrap()));
        let mut received = 0u64;
        while let Some(chunk) = recv.read_chunk(1 << 20).await.unwrap() {
            received += chunk.len() as u64;
            if let Some(out) = &mut out {
                out.write_all(&chunk).unwrap();
            }
        }
        if let Some(out) = &mut out {
            out.flush().unwrap();
        }
        let took = start.elapsed();
        assert_eq!(received, size);
        conn.close(0u32.into(), b"done");
        receiver.close().await;
        took
    });
    rt_send.block_on(serving).unwrap();
    took
}

/// Where the received blob goes in [`bare_blobs`].
#[derive(Clone, Copy, PartialEq)]
enum Receiver {
    /// An `FsStore` in a fresh folder, as a node's.
    Fs,
    /// A `MemStore`: iroh-blobs' get and verification without a store on disk.
    Mem,
    /// An `FsStore` through iroh-blobs' `Downloader`, as the node fetches (its connection
    /// pool, and progress forwarded item by item).
    FsDownloader,
}

/// iroh-blobs alone, no node around it: a get of `file` (added to a bare `FsStore` served by
/// `BlobsProtocol` on an endpoint built as the node's) into a fresh store, over one connection
/// between two endpoints on runtimes of their own. Best of `runs`, timed from connecting until
/// the blob is complete. Each received blob is checked complete.
fn bare_blobs(dir: &Path, file: &Path, size: u64, runs: u64, into: Receiver) -> Duration {
    use iroh_blobs::store::fs::FsStore;
    let (rt_send, rt_recv) = (runtime(), runtime());
    let store_dir = dir.join("bare-provider");
    let _ = std::fs::remove_dir_all(&store_dir);
    let (router, hash, provider) = rt_send.block_on(async {
        let store = FsStore::load(&store_dir).await.unwrap();
        let hash = store.add_path(file).await.unwrap().hash;
        let router = serve_blobs(&store).await;
        (router, hash, store)
    });
    let addr = endpoint_addr(router.endpoint());
    let recv_dir = dir.join("bare-receiver");
    let took = rows(runs, |_| {
        let _ = std::fs::remove_dir_all(&recv_dir);
        sync_disk();
        rt_recv.block_on(async {
            let fs = match into {
                Receiver::Fs | Receiver::FsDownloader => {
                    Some(FsStore::load(&recv_dir).await.unwrap())
                }
                Receiver::Mem => None,
            };
            let store: iroh_blobs::api::Store = match &fs {
                Some(fs) => fs.clone().into(),
                None => iroh_blobs::store::mem::MemStore::new().into(),
            };
            let ep = endpoint_knowing(&addr).await;
            let start = Instant::now();
            let conn = if into == Receiver::FsDownloader {
                let downloader = iroh_blobs::api::downloader::Downloader::new(&store, &ep);
                downloader.download(hash, vec![addr.id]).await.unwrap();
                None
            } else {
                let conn = ep.connect(addr.clone(), iroh_blobs::ALPN).await.unwrap();
                store
                    .remote()
                    .fetch(conn.clone(), hash)
                    .complete()
                    .await
                    .unwrap();
                Some(conn)
            };
            let took = start.elapsed();
            let status = store.blobs().status(hash).await.unwrap();
            assert!(
                matches!(status, iroh_blobs::api::blobs::BlobStatus::Complete { size: s } if s == size),
                "{status:?}"
            );
            if let Some(conn) = conn {
                conn.close(0u32.into(), b"done");
            }
            ep.close().await;
            store.shutdown().await.unwrap();
            took
        })
    });
    rt_send.block_on(async {
        // The router's shutdown may already have stopped the store.
        let _ = router.shutdown().await;
        let _ = provider.shutdown().await;
    });
    let _ = std::fs::remove_dir_all(&recv_dir);
    let _ = std::fs::remove_dir_all(&store_dir);
    took
}

/// iroh-blobs alone on many files, no node around it: `add_path` of each of `files` into a
/// fresh bare `FsStore`, one at a time (best of `runs`); then one GetMany request of them all
/// from that store, served by `BlobsProtocol`, into another fresh `FsStore` over one connection
/// (best of `runs`, every blob checked complete). The floor the store and protocol set under
/// `mnode add DIR` and `mnode fetch RELEASE`.
fn bare_blobs_many(dir: &Path, files: &[PathBuf], runs: u64) -> (Duration, Duration) {
    use iroh_blobs::{protocol::GetManyRequest, store::fs::FsStore};
    let (rt_send, rt_recv) = (runtime(), runtime());
    let store_dir = dir.join("bare-many-provider");
    let add = rows(runs, |_| {
        let _ = std::fs::remove_dir_all(&store_dir);
        sync_disk();
        rt_send.block_on(async {
            let store = FsStore::load(&store_dir).await.unwrap();
            let start = Instant::now();
            for f in files {
                store.add_path(f).await.unwrap();
            }
            let took = start.elapsed();
            store.shutdown().await.unwrap();
            took
        })
    });
    let (router, hashes, provider) = rt_send.block_on(async {
        let store = FsStore::load(&store_dir).await.unwrap();
        let mut hashes = Vec::with_capacity(files.len());
        for f in files {
            hashes.push(store.add_path(f).await.unwrap().hash);
        }
        let router = serve_blobs(&store).await;
        (router, hashes, store)
    });
    let addr = endpoint_addr(router.endpoint());
    let recv_dir = dir.join("bare-many-receiver");
    let get = rows(runs, |_| {
        let _ = std::fs::remove_dir_all(&recv_dir);
        sync_disk();
        rt_recv.block_on(async {
            let store = FsStore::load(&recv_dir).await.unwrap();
            let ep = endpoint_knowing(&addr).await;
            let start = Instant::now();
            let conn = ep.connect(addr.clone(), iroh_blobs::ALPN).await.unwrap();
            let request: GetManyRequest = hashes.iter().copied().collect();
            store
                .remote()
                .execute_get_many(conn.clone(), request)
                .await
                .unwrap();
            let took = start.elapsed();
            for h in &hashes {
                let status = store.blobs().status(*h).await.unwrap();
                assert!(
                    matches!(status, iroh_blobs::api::blobs::BlobStatus::Complete { .. }),
                    "{status:?}"
                );
            }
            conn.close(0u32.into(), b"done");
            ep.close().await;
            store.shutdown().await.unwrap();
            took
        })
    });
    rt_send.block_on(async {
        let _ = router.shutdown().await;
        let _ = provider.shutdown().await;
    });
    let _ = std::fs::remove_dir_all(&recv_dir);
    let _ = std::fs::remove_dir_all(&store_dir);
    (add, get)
}

/// The rows of one section: what ran, in order, each with its time and reference.
struct Table {
    size: u64,
    lines: Vec<String>,
}

impl Table {
    fn row(&mut self, what: &str, d: Duration, reference: Option<(&str, Duration)>) {
        let mbs = self.size as f64 / 1e6 / d.as_secs_f64();
        let (name, x) = match reference {
            Some((name, r)) => (name, format!("{:.2}", r.as_secs_f64() / d.as_secs_f64())),
            None => ("–", "–".to_owned()),
        };
        self.lines.push(format!(
            "| {what} | {:.2} | {mbs:.0} | {name} | {x} |",
            d.as_secs_f64()
        ));
    }

    fn print(&self, title: &str) {
        println!("\n### {title}\n");
        println!("| run | seconds | MB/s | reference | × reference |");
        println!("|---|---:|---:|---|---:|");
        for l in &self.lines {
            println!("{l}");
        }
    }
}

fn ratio(reference: Duration, d: Duration) -> f64 {
    reference.as_secs_f64() / d.as_secs_f64()
}

/// `cp` against `mnode get -o` of a held file, without and through a daemon.
fn held(dir: &Path, file: &Path, size: u64, runs: u64) {
    let out = dir.join("out.bin");
    let fresh_out = || {
        let _ = std::fs::remove_file(&out);
    };
    let cp = rows(runs, |_| {
        fresh_out();
        let (took, _) = timed(Command::new("cp").arg(file).arg(&out));
        check(&out, "", size, false);
        took
    });
    // The same, re-hashing on the way (an export that does not trust the store's file).
    let rehash = rows(runs, |_| {
        fresh_out();
        sync_disk();
        let start = Instant::now();
        hashing_copy(file, &out);
        start.elapsed()
    });
    let repo_a = dir.join("a");
    init(&repo_a);
    let cid = add(&repo_a, file);
    let held_local = rows(runs, |n| get(&repo_a, &cid, &out, size, n == runs).0);
    let a = Daemon::start(&repo_a);
    let held_daemon = rows(runs, |n| get(&repo_a, &cid, &out, size, n == runs).0);
    drop(a);
    fresh_out();
    let _ = std::fs::remove_dir_all(&repo_a);

    let mut t = Table {
        size,
        lines: Vec::new(),
    };
    t.row("`cp FILE OUT`", cp, None);
    let vs_cp = Some(("`cp`", cp));
    t.row("`mnode get CID -o OUT`, held, no daemon", held_local, vs_cp);
    t.row(
        "`mnode get CID -o OUT`, held, through the daemon",
        held_daemon,
        vs_cp,
    );
    t.row(
        "copy in 1 MiB reads + BLAKE3 of each, fsync (re-hashing on export; in this process)",
        rehash,
        vs_cp,
    );
    t.print(&format!(
        "getting a held {} MiB file out (best of {runs})",
        size >> 20
    ));
    let worst = held_local.max(held_daemon);
    println!(
        "\nget of a held file (slower of the two) = {:.2} × cp (target ≥ 0.80): {}",
        ratio(cp, worst),
        met(ratio(cp, worst) >= 0.8)
    );
}

/// `mnode add FILE` into `repo`; its CID.
fn add(repo: &Path, file: &Path) -> String {
    let added: Value =
        serde_json::from_str(&run(mnode(repo).arg("--json").arg("add").arg(file))).unwrap();
    added[0]["cid"].as_str().unwrap().to_owned()
}

/// `mnode get CID -o OUT` on `repo`, timed; checks the written file (its hash when `hash`).
fn get(repo: &Path, cid: &str, out: &Path, size: u64, hash: bool) -> (Duration, Value) {
    let _ = std::fs::remove_file(out);
    let (took, text) = timed(mnode(repo).args(["--json", "get", cid, "-o"]).arg(out));
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["size"].as_u64(), Some(size), "{v}");
    check(out, cid, size, hash);
    (took, v)
}

/// The peer rows: the transport's ceiling and iroh-blobs alone (in this process), `mnode
/// fetch` and `mnode get` between two daemons, and `sendme` when there is one.
fn peer(dir: &Path, file: &Path, size: u64, runs: u64) {
    let out = dir.join("out.bin");
    let ceiling = rows(runs, |_| {
        sync_disk();
        bare_quic(file, size, None)
    });
    let ceiling_file = rows(runs, |_| {
        let _ = std::fs::remove_file(&out);
        sync_disk();
        let took = bare_quic(file, size, Some(&out));
        check(&out, "", size, false);
        took
    });
    let _ = std::fs::remove_file(&out);
    let blobs_fs = bare_blobs(dir, file, size, runs, Receiver::Fs);
    let blobs_mem = bare_blobs(dir, file, size, runs, Receiver::Mem);
    let blobs_dl = bare_blobs(dir, file, size, runs, Receiver::FsDownloader);

    let repo_a = dir.join("a");
    init(&repo_a);
    let cid = add(&repo_a, file);
    let a = Daemon::start(&repo_a);
    // A second daemon, fresh for every run, that gets the file from the first.
    let repo_b = dir.join("b");
    let peer = || fresh_peer(&repo_b, &a);
    let fetch = rows(runs, |_| {
        let _b = peer();
        let (took, v) = fetch_json(&repo_b, &cid);
        assert_eq!(v["transferred"].as_u64(), Some(size), "{v}");
        took
    });
    let from_peer = rows(runs, |n| {
        let _b = peer();
        let (took, v) = get(&repo_b, &cid, &out, size, n == runs);
        assert_eq!(v["transferred"].as_u64(), Some(size), "{v}");
        took
    });
    let fetch_then_get = rows(runs, |n| {
        let _b = peer();
        let (fetched, _) = timed(mnode(&repo_b).args(["--json", "fetch", &cid]));
        let (took, v) = get(&repo_b, &cid, &out, size, n == runs);
        assert_eq!(v["transferred"].as_u64(), Some(0), "{v}");
        fetched + took
    });
    let _ = std::fs::remove_file(&out);
    drop(a);
    let _ = std::fs::remove_dir_all(&repo_b);
    let _ = std::fs::remove_dir_all(&repo_a);

    let sendme = match sendme_bin() {
        Some(bin) => sendme(&bin, dir, file, size, runs),
        None => Err(
            "no `sendme` in PATH or ~/.cache/mnode-tools/bin; install it with \
             `cargo install sendme --locked --root $HOME/.cache/mnode-tools`"
                .to_owned(),
        ),
    };

    let mut t = Table {
        size,
        lines: Vec::new(),
    };
    t.row(
        "transport ceiling: one QUIC stream between two endpoints built as the node's, from the page-cached file, dropped on arrival",
        ceiling,
        None,
    );
    let vs_ceiling = Some(("ceiling", ceiling));
    t.row(
        "the same, written to a file on arrival (1 MiB writes)",
        ceiling_file,
        vs_ceiling,
    );
    t.row(
        "iroh-blobs alone: get from a bare `FsStore` into a bare `FsStore` (verified, stored; no node)",
        blobs_fs,
        vs_ceiling,
    );
    t.row(
        "iroh-blobs alone: get from a bare `FsStore` into a `MemStore` (verified, no disk on the receiver)",
        blobs_mem,
        vs_ceiling,
    );
    t.row(
        "iroh-blobs alone through its `Downloader` (as the node fetches), `FsStore` → `FsStore`",
        blobs_dl,
        vs_ceiling,
    );
    t.row("`mnode fetch CID`, two daemons", fetch, vs_ceiling);
    match &sendme {
        Ok(d) => t.row("`sendme receive` (relays off), file on disk", *d, None),
        Err(why) => t
            .lines
            .push(format!("| `sendme receive` | – | – | not run: {why} | – |")),
    }
    let peer_ref = sendme.as_ref().ok().map(|d| ("`sendme receive`", *d));
    let get_ref = peer_ref.or(Some(("ceiling, to a file", ceiling_file)));
    t.row(
        "`mnode get CID -o OUT` from a peer (written while it arrives)",
        from_peer,
        get_ref,
    );
    t.row(
        "`mnode fetch CID`, then `mnode get CID -o OUT` (for comparison)",
        fetch_then_get,
        Some(("`mnode get` from a peer", from_peer)),
    );
    t.print(&format!(
        "getting a {} MiB file from a peer (best of {runs})",
        size >> 20
    ));
    println!(
        "\nmnode fetch = {:.2} × the transport ceiling (target ≥ 0.80): {}",
        ratio(ceiling, fetch),
        met(ratio(ceiling, fetch) >= 0.8)
    );
    println!(
        "iroh-blobs alone (FsStore → FsStore) = {:.2} × the ceiling; mnode fetch = {:.2} × iroh-blobs alone",
        ratio(ceiling, blobs_fs),
        ratio(blobs_fs, fetch)
    );
    println!(
        "get from a peer = {:.2} s = the fetch alone + {:.2} s (fetch, then get: + {:.2} s)",
        from_peer.as_secs_f64(),
        from_peer.as_secs_f64() - fetch.as_secs_f64(),
        fetch_then_get.as_secs_f64() - fetch.as_secs_f64()
    );
    match peer_ref {
        Some((_, r)) => println!(
            "get from a peer = {:.2} × sendme receive (target ≥ 1.00): {}",
            ratio(r, from_peer),
            met(ratio(r, from_peer) >= 1.0)
        ),
        None => println!("get from a peer vs sendme receive: not measured (no `sendme`)"),
    }
}

/// A daemon on `repo`, made anew, connected to `to`.
fn fresh_peer(repo: &Path, to: &Daemon) -> Daemon {
    init(repo);
    let d = Daemon::start(repo);
    run(mnode(repo).arg("connect").arg(to.addr()));
    d
}

/// `mnode --json fetch CID` on `repo`, timed, and its answer.
fn fetch_json(repo: &Path, cid: &str) -> (Duration, Value) {
    let (took, text) = timed(mnode(repo).args(["--json", "fetch", cid]));
    (took, serde_json::from_str(&text).unwrap())
}

/// Every file under `dir`.
fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            collect(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// `count` files of 4–64 KiB (sizes drawn with seed 21, incompressible bytes), in 100 folders
/// of `dir`, made once and read into the page cache, and one file `joined` holding all their
/// bytes in a row. Returns the folder, the joined file and the total size.
fn small_files(dir: &Path, count: u64) -> (PathBuf, PathBuf, u64) {
    let root = dir.join(format!("small-{count}"));
    let joined = dir.join(format!("small-{count}-joined.bin"));
    let marker = dir.join(format!("small-{count}.complete"));
    if !marker.is_file() || !joined.is_file() {
        let _ = std::fs::remove_dir_all(&root);
        let mut rng = Rng(21);
        let mut all = std::io::BufWriter::new(std::fs::File::create(&joined).unwrap());
        for i in 0..count {
            let sub = root.join(format!("{:02}", i % 100));
            std::fs::create_dir_all(&sub).unwrap();
            let size = 4096 + rng.next() % (60 * 1024 + 1);
            let mut bytes = vec![0u8; size as usize];
            blake3::Hasher::new()
                .update(&i.to_le_bytes())
                .finalize_xof()
                .fill(&mut bytes);
            std::fs::write(sub.join(format!("{i:05}.bin")), &bytes).unwrap();
            all.write_all(&bytes).unwrap();
        }
        all.flush().unwrap();
        std::fs::write(&marker, b"").unwrap();
    }
    let total = std::fs::metadata(&joined).unwrap().len();
    // Into the page cache, as the big file is.
    run(Command::new("sh").arg("-c").arg(format!(
        "find '{}' -type f -print0 | xargs -0 cat > /dev/null; cat '{}' > /dev/null",
        root.display(),
        joined.display()
    )));
    (root, joined, total)
}

/// `mnode add DIR` (`--json`): the CIDs of its files, sorted.
fn add_dir(repo: &Path, dir: &Path) -> (Duration, Vec<String>) {
    let (took, text) = timed(mnode(repo).arg("--json").arg("add").arg(dir));
    let added: Value = serde_json::from_str(&text).unwrap();
    let mut cids: Vec<String> = added
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["cid"].as_str().unwrap().to_owned())
        .collect();
    cids.sort();
    (took, cids)
}

/// 10,000 small files: `mnode add DIR` and `mnode publish release DIR` against `cp -r` +
/// `b3sum` of every file, and a second node fetching the release whole against one file of the
/// same total size.
fn small(dir: &Path, runs: u64) {
    let count = env_num("MNODE_BENCH_SMALL_FILES", 10_000);
    let b3sum = mnode_bench_support::tool(&["/usr/bin/b3sum", "/usr/local/bin/b3sum"], &["b3sum"]);
    let (src, joined, total) = small_files(&bench_dir(), count);
    let copy = dir.join("small-copy");
    let cp_b3sum = rows(runs, |_| {
        let _ = std::fs::remove_dir_all(&copy);
        sync_disk();
        let start = Instant::now();
        run(Command::new("cp").arg("-r").arg(&src).arg(&copy));
        run(Command::new("sh").arg("-c").arg(format!(
            "find '{}' -type f -name '*.bin' -print0 | xargs -0 '{}' > /dev/null",
            copy.display(),
            b3sum.display()
        )));
        start.elapsed()
    });
    let _ = std::fs::remove_dir_all(&copy);
    let mut files = Vec::new();
    collect(&src, &mut files);
    files.sort();
    let (bare_add, bare_get) = bare_blobs_many(dir, &files, runs);
    let repo_a = dir.join("small-a");
    let mut cids = Vec::new();
    let add_local = rows(runs, |_| {
        init(&repo_a);
        let (took, c) = add_dir(&repo_a, &src);
        assert_eq!(c.len() as u64, count);
        cids = c;
        took
    });
    // Through the daemon too (it imports each file, then signs all the records in one batch).
    let add_daemon = rows(runs, |n| {
        init(&repo_a);
        let _a = Daemon::start(&repo_a);
        let (took, c) = add_dir(&repo_a, &src);
        assert_eq!(c, cids, "run {n}");
        took
    });
    // Published as one release (its files and a record for each, and the release).
    let mut release = String::new();
    let publish = rows(runs, |_| {
        init(&repo_a);
        let _a = Daemon::start(&repo_a);
        let (took, text) = timed(
            mnode(&repo_a)
                .arg("--json")
                .args(["publish", "release"])
                .arg(&src)
                .args(["--title", "Ten thousand"]),
        );
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v["files"].as_array().map(Vec::len),
            Some(count as usize),
            "{v}"
        );
        release = v["release"].as_str().unwrap().to_owned();
        took
    });
    // The repo now holds them all (the last run's), and the joined file too.
    let joined_cid = add(&repo_a, &joined);
    let a = Daemon::start(&repo_a);

    let repo_b = dir.join("small-b");
    let peer = || fresh_peer(&repo_b, &a);
    let one_file = rows(runs, |_| {
        let _b = peer();
        let (took, v) = fetch_json(&repo_b, &joined_cid);
        assert_eq!(v["transferred"].as_u64(), Some(total), "{v}");
        took
    });
    // The release whole, by its id: its records over Bitswap, then every file.
    let whole = rows(runs, |_| {
        let _b = peer();
        let (took, v) = fetch_json(&repo_b, &release);
        assert_eq!(v["complete"], true, "{v}");
        assert_eq!(v["files"].as_u64(), Some(count), "{v}");
        assert_eq!(v["transferred"].as_u64(), Some(total), "{v}");
        // Every file is held now: a second fetch of one moves nothing (spot check).
        for cid in cids.iter().step_by((count as usize / 20).max(1)) {
            let (_, v) = fetch_json(&repo_b, cid);
            assert_eq!(v["transferred"].as_u64(), Some(0), "{v}");
        }
        took
    });
    drop(a);
    let _ = std::fs::remove_dir_all(&repo_b);
    let _ = std::fs::remove_dir_all(&repo_a);

    let mut t = Table {
        size: total,
        lines: Vec::new(),
    };
    t.row(
        &format!("`cp -r DIR` + `b3sum` of every file ({count} files)"),
        cp_b3sum,
        None,
    );
    let vs_cp = Some(("`cp -r` + `b3sum`", cp_b3sum));
    t.row(
        "iroh-blobs alone: `add_path` of every file into a bare `FsStore`, one at a time (no node)",
        bare_add,
        vs_cp,
    );
    t.row("`mnode add DIR`, no daemon", add_local, vs_cp);
    t.row("`mnode add DIR`, through the daemon", add_daemon, vs_cp);
    t.row(
        "`mnode publish release DIR`, through the daemon",
        publish,
        vs_cp,
    );
    t.row(
        "`mnode fetch CID` of one file of the same total size, two daemons",
        one_file,
        None,
    );
    t.row(
        &format!(
            "iroh-blobs alone: one GetMany of all {count} between two bare `FsStore`s (no node)"
        ),
        bare_get,
        Some(("one file", one_file)),
    );
    t.row(
        &format!("second node: `mnode fetch RELEASE`, all {count} files and their records"),
        whole,
        Some(("one file", one_file)),
    );
    t.print(&format!(
        "{count} small files of 4–64 KiB, {} MiB in all (best of {runs})",
        total >> 20
    ));
    let worst_add = add_local.max(add_daemon);
    println!(
        "\nmnode add DIR (slower of the two) = {:.2} × cp -r + b3sum (target ≥ 0.80): {}",
        ratio(cp_b3sum, worst_add),
        met(ratio(cp_b3sum, worst_add) >= 0.8)
    );
    println!(
        "second node holds all {count} in {:.2} × the time of one file of the same size (target ≤ 2.00): {}",
        whole.as_secs_f64() / one_file.as_secs_f64(),
        met(whole.as_secs_f64() / one_file.as_secs_f64() <= 2.0)
    );
    println!(
        "iroh-blobs alone: add = {:.2} × cp -r + b3sum; GetMany of all = {:.2} × one file through the node (mnode add DIR = {:.2} × it, mnode fetch RELEASE = {:.2} × it)",
        ratio(cp_b3sum, bare_add),
        bare_get.as_secs_f64() / one_file.as_secs_f64(),
        ratio(bare_add, worst_add),
        ratio(bare_get, whole)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    // `cargo bench -p mnode --bench transfer -- [held] [peer] [small]`: all by default.
    let picked: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |s: &str| picked.is_empty() || picked.contains(&s);
    let size = env_num("MNODE_BENCH_TRANSFER_MIB", 1024) << 20;
    let runs = env_num("MNODE_BENCH_TRANSFER_RUNS", 3);
    let dir = bench_dir().join("transfer");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = big_file(&bench_dir(), "transfer", size);
    if wants("held") {
        held(&dir, &file, size, runs);
    }
    if wants("peer") {
        peer(&dir, &file, size, runs);
    }
    if wants("small") {
        small(&dir, runs);
    }
    if wants("s3") {
        s3(&dir, &file, size, runs);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The AWS CLI, installed with pip into a venv of its own if missing.
fn aws_cli() -> PathBuf {
    const AWSCLI: &str = "1.46.3";
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap();
    let venv = home.join(TOOLS).join("awscli");
    let bin = venv.join("bin/aws");
    if !bin.exists() {
        eprintln!("installing awscli {AWSCLI} into {}", venv.display());
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv));
        run(Command::new(venv.join("bin/pip"))
            .args(["install", "-q"])
            .arg(format!("awscli=={AWSCLI}")));
    }
    bin
}

/// `aws s3 cp FROM TO` against `endpoint`, timed.
fn aws_cp(aws: &Path, endpoint: &str, from: &str, to: &str) -> Duration {
    timed(
        Command::new(aws)
            .args([
                "s3",
                "cp",
                "--only-show-errors",
                "--endpoint-url",
                endpoint,
                from,
                to,
            ])
            .env("AWS_ACCESS_KEY_ID", mnode_bench_support::S3_ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", mnode_bench_support::S3_SECRET_KEY)
            .env("AWS_DEFAULT_REGION", "us-east-1"),
    )
    .0
}

/// A node on a bucket against the AWS CLI on the same server: `mnode add` into it, and a
/// gateway download out of it.
fn s3(dir: &Path, file: &Path, size: u64, runs: u64) {
    const BUCKET: &str = "bench";
    let aws = aws_cli();
    let server = mnode_bench_support::S3Server::start(&dir.join("s3"), BUCKET);
    let endpoint = server.endpoint();
    let object = format!("s3://{BUCKET}/reference/file.bin");
    let out = dir.join("out.bin");
    let fresh_out = || {
        let _ = std::fs::remove_file(&out);
    };

    let aws_up = rows(runs, |_| {
        aws_cp(&aws, &endpoint, file.to_str().unwrap(), &object)
    });
    let aws_down = rows(runs, |_| {
        fresh_out();
        let took = aws_cp(&aws, &endpoint, &object, out.to_str().unwrap());
        check(&out, "", size, false);
        took
    });

    let repo = dir.join("bucket-node");
    let settings = [
        "blobs.store=s3".to_owned(),
        format!("blobs.s3.endpoint={endpoint}"),
        format!("blobs.s3.bucket={BUCKET}"),
        "blobs.s3.prefix=node".to_owned(),
        format!(
            "blobs.s3.access_key_id={}",
            mnode_bench_support::S3_ACCESS_KEY
        ),
        format!(
            "blobs.s3.secret_access_key={}",
            mnode_bench_support::S3_SECRET_KEY
        ),
    ];
    let mut cid = String::new();
    let add = rows(runs, |_| {
        // A fresh repo and an empty prefix each time: the object is sent every run.
        init_with(&repo, &settings);
        let _ = std::fs::remove_dir_all(dir.join("s3").join(BUCKET).join("node"));
        let (took, text) = timed(mnode(&repo).args(["--json", "add"]).arg(file));
        let added: Value = serde_json::from_str(&text).unwrap();
        cid = added[0]["cid"].as_str().unwrap().to_owned();
        took
    });
    let stored = dir.join("s3").join(BUCKET).join("node/blobs");
    assert_eq!(
        std::fs::read_dir(&stored).unwrap().count(),
        1,
        "the file is one object in the bucket"
    );
    let daemon = Daemon::start(&repo);
    let api = daemon.info["api"].as_str().unwrap().to_owned();
    let gateway = rows(runs, |n| {
        fresh_out();
        let (took, _) = timed(
            Command::new("curl")
                .args(["-sSf", "-o"])
                .arg(&out)
                .arg(format!("{api}/ipfs/{cid}")),
        );
        check(&out, &cid, size, n == runs);
        took
    });
    drop(daemon);
    fresh_out();
    drop(server);
    let _ = std::fs::remove_dir_all(&repo);
    let _ = std::fs::remove_dir_all(dir.join("s3"));

    let mut t = Table {
        size,
        lines: Vec::new(),
    };
    t.row("`aws s3 cp FILE s3://…` (upload)", aws_up, None);
    t.row(
        "`mnode add FILE`, files in the bucket",
        add,
        Some(("aws upload", aws_up)),
    );
    t.row("`aws s3 cp s3://… OUT` (download)", aws_down, None);
    t.row(
        "`curl -o OUT /ipfs/CID` from the daemon, files in the bucket",
        gateway,
        Some(("aws download", aws_down)),
    );
    t.print(&format!(
        "a {} MiB file in an S3 bucket (s3s-fs, in this process; best of {runs})",
        size >> 20
    ));
    println!(
        "\nadd into the bucket = {:.2} × aws upload (target ≥ 0.80): {}",
        ratio(aws_up, add),
        met(ratio(aws_up, add) >= 0.8)
    );
    println!(
        "gateway download from the bucket = {:.2} × aws download (target ≥ 0.80): {}",
        ratio(aws_down, gateway),
        met(ratio(aws_down, gateway) >= 0.8)
    );
}

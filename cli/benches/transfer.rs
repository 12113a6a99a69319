//! Getting a file out, as a user does it, each row next to its reference measured in the same
//! run (release build, 127.0.0.1, one file of `MNODE_BENCH_TRANSFER_MIB`, default 1024):
//!
//! - `cp` of the file (the reference of the held rows);
//! - `mnode get CID -o FILE` of a file the repo holds, without a daemon and through one;
//! - the same copy done in 1 MiB reads with BLAKE3 over each (what re-hashing the store's own
//!   file on export would cost), in this process;
//! - `mnode fetch CID` between two daemons, and `mnode get CID -o FILE` from a peer (the file is
//!   written while it arrives), and, for comparison, `mnode fetch` followed by `mnode get`;
//! - `sendme receive` of the same file from `sendme send`, relays off, when a `sendme` binary is
//!   found (in `PATH` or `$HOME/.cache/mnode-tools/bin`): the reference of the peer rows.
//!
//! Every timed run starts after `sync`, and every written file is checked (size, and its BLAKE3
//! hash against the CID once per row). Best of `MNODE_BENCH_TRANSFER_RUNS` (default 3).
//!
//! Run: `cargo bench -p mnode --bench transfer`. Work files go under `$MNODE_BENCH_DIR`
//! (default: a folder in the system temp dir); at 1 GiB it needs about 4 GiB free there.

#![allow(clippy::unwrap_used)]

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use mnode_bench_support::{bench_dir, best_of, big_file, env_num, met, run, sync_disk};
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
    let _ = std::fs::remove_dir_all(repo);
    run(mnode(repo).args([
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
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
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

/// `sendme receive` of `file` from a `sendme send` on this machine, relays off: best of `runs`,
/// or why it could not run.
fn sendme(bin: &Path, dir: &Path, file: &Path, size: u64, runs: u64) -> Result<Duration, String> {
    let send_dir = dir.join("sendme-send");
    let _ = std::fs::remove_dir_all(&send_dir);
    std::fs::create_dir_all(&send_dir).unwrap();
    let mut sender = Command::new(bin)
        .args(["send", "--relay", "disabled", "--ticket-type", "addresses"])
        .arg("--no-progress")
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
                    .args(["receive", "--relay", "disabled", "--no-progress", &ticket])
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

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let size = env_num("MNODE_BENCH_TRANSFER_MIB", 1024) << 20;
    let runs = env_num("MNODE_BENCH_TRANSFER_RUNS", 3);
    let dir = bench_dir().join("transfer");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = big_file(&bench_dir(), "transfer", size);
    let out = dir.join("out.bin");
    let fresh_out = || {
        let _ = std::fs::remove_file(&out);
    };

    // Reference: cp.
    let cp = rows(runs, |_| {
        fresh_out();
        let (took, _) = timed(Command::new("cp").arg(&file).arg(&out));
        check(&out, "", size, false);
        took
    });

    // The same, re-hashing on the way (an export that does not trust the store's file).
    let rehash = rows(runs, |_| {
        fresh_out();
        sync_disk();
        let start = Instant::now();
        hashing_copy(&file, &out);
        start.elapsed()
    });
    fresh_out();

    // A repo that holds the file (copied in: the store owns its file).
    let repo_a = dir.join("a");
    init(&repo_a);
    let added: Value =
        serde_json::from_str(&run(mnode(&repo_a).arg("--json").arg("add").arg(&file))).unwrap();
    let cid = added[0]["cid"].as_str().unwrap().to_owned();
    let get = |repo: &Path, n: u64| {
        fresh_out();
        let (took, text) = timed(mnode(repo).args(["--json", "get", &cid, "-o"]).arg(&out));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["size"].as_u64(), Some(size), "{v}");
        check(&out, &cid, size, n == runs);
        (took, v)
    };
    let held_local = rows(runs, |n| get(&repo_a, n).0);

    let a = Daemon::start(&repo_a);
    let held_daemon = rows(runs, |n| get(&repo_a, n).0);
    fresh_out();

    // A second daemon, fresh for every run, that gets the file from the first.
    let repo_b = dir.join("b");
    let peer = || {
        init(&repo_b);
        let b = Daemon::start(&repo_b);
        run(mnode(&repo_b).arg("connect").arg(a.addr()));
        b
    };
    let fetch = rows(runs, |_| {
        let _b = peer();
        let (took, text) = timed(mnode(&repo_b).args(["--json", "fetch", &cid]));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["transferred"].as_u64(), Some(size), "{v}");
        took
    });
    let from_peer = rows(runs, |n| {
        let _b = peer();
        let (took, v) = get(&repo_b, n);
        assert_eq!(v["transferred"].as_u64(), Some(size), "{v}");
        took
    });
    let fetch_then_get = rows(runs, |n| {
        let _b = peer();
        let (fetched, _) = timed(mnode(&repo_b).args(["--json", "fetch", &cid]));
        let (took, v) = get(&repo_b, n);
        assert_eq!(v["transferred"].as_u64(), Some(0), "{v}");
        fetched + took
    });
    fresh_out();
    drop(a);
    let _ = std::fs::remove_dir_all(&repo_b);
    let _ = std::fs::remove_dir_all(&repo_a);

    let sendme = match sendme_bin() {
        Some(bin) => sendme(&bin, &dir, &file, size, runs),
        None => Err(
            "no `sendme` in PATH or ~/.cache/mnode-tools/bin; install it with \
             `cargo install sendme --locked --root $HOME/.cache/mnode-tools`"
                .to_owned(),
        ),
    };
    let _ = std::fs::remove_dir_all(&dir);

    let mbs = |d: Duration| size as f64 / 1e6 / d.as_secs_f64();
    let ratio = |reference: Duration, d: Duration| reference.as_secs_f64() / d.as_secs_f64();
    println!(
        "\n### getting a {} MiB file out (best of {runs})\n",
        size >> 20
    );
    println!("| run | seconds | MB/s | reference | × reference |");
    println!("|---|---:|---:|---|---:|");
    let row = |what: &str, d: Duration, reference: &str, x: Option<f64>| {
        println!(
            "| {what} | {:.2} | {:.0} | {reference} | {} |",
            d.as_secs_f64(),
            mbs(d),
            x.map_or("–".to_owned(), |x| format!("{x:.2}"))
        );
    };
    row("`cp FILE OUT`", cp, "–", None);
    row(
        "`mnode get CID -o OUT`, held, no daemon",
        held_local,
        "`cp`",
        Some(ratio(cp, held_local)),
    );
    row(
        "`mnode get CID -o OUT`, held, through the daemon",
        held_daemon,
        "`cp`",
        Some(ratio(cp, held_daemon)),
    );
    row(
        "copy in 1 MiB reads + BLAKE3 of each, fsync (re-hashing on export; in this process)",
        rehash,
        "`cp`",
        Some(ratio(cp, rehash)),
    );
    let peer_ref = sendme.as_ref().ok().copied();
    match &sendme {
        Ok(d) => row("`sendme receive` (relays off)", *d, "–", None),
        Err(why) => println!("| `sendme receive` | – | – | not run: {why} | – |"),
    }
    let vs_sendme = |d: Duration| peer_ref.map(|r| ratio(r, d));
    let sendme_name = if peer_ref.is_some() {
        "`sendme receive`"
    } else {
        "`sendme receive` (not run)"
    };
    row(
        "`mnode fetch CID`, two daemons",
        fetch,
        sendme_name,
        vs_sendme(fetch),
    );
    row(
        "`mnode get CID -o OUT` from a peer (written while it arrives)",
        from_peer,
        sendme_name,
        vs_sendme(from_peer),
    );
    row(
        "`mnode fetch CID`, then `mnode get CID -o OUT` (for comparison)",
        fetch_then_get,
        "`mnode get` from a peer",
        Some(ratio(from_peer, fetch_then_get)),
    );
    let held = held_local.max(held_daemon);
    println!(
        "\nget of a held file (slower of the two) = {:.2} × cp (target ≥ 0.80): {}",
        ratio(cp, held),
        met(ratio(cp, held) >= 0.8)
    );
    println!(
        "get from a peer = {:.2} s = the fetch alone + {:.2} s (fetch, then get: + {:.2} s)",
        from_peer.as_secs_f64(),
        from_peer.as_secs_f64() - fetch.as_secs_f64(),
        fetch_then_get.as_secs_f64() - fetch.as_secs_f64()
    );
    match peer_ref {
        Some(r) => println!(
            "get from a peer = {:.2} × sendme receive (target ≥ 1.00): {}",
            ratio(r, from_peer),
            met(ratio(r, from_peer) >= 1.0)
        ),
        None => println!("get from a peer vs sendme receive: not measured (no `sendme`)"),
    }
}

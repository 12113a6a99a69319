//! The repo's figures, each next to its reference measured in the same run:
//!
//! - `add`: `mnode add` of a 1 GiB file vs `cp` followed by `b3sum` of the same file, and the
//!   ceiling for an add that also builds the file's UnixFS view: `cp` + `b3sum` beside a
//!   SHA-256 of every 1 MiB leaf on all cores.
//! - `writes`: records created, signed and stored through the library in batches, on one
//!   thread, vs a bare loop of ed25519 sign + sha256 + RocksDB put.
//! - `startup`: a repo holding 1,000,000 records: time for `mnode` to open it and list the
//!   newest 20 posts, and the process's peak memory.
//!
//! Run: `cargo bench -p mnode --bench repo [-- add|writes|startup]` (all three by default).
//! Needs `b3sum` and GNU `time` (`apt-get install b3sum time`). Work files go under
//! `$MNODE_BENCH_DIR` (default: a folder in the system temp dir) on the same disk as the repo.

#![allow(clippy::unwrap_used)]

use std::{
    hint::black_box,
    io::Write as _,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use ed25519_dalek::{Signer as _, SigningKey};
use mnode_bench_support::{bench_dir, best_of, run};
use mnode_dag::{Keypair, Record, model::social::Post};
use mnode_node::{
    blobs::view_of_file,
    repo::{InitOptions, Repo},
    store::Store,
};
use sha2::Digest as _;

const MNODE: &str = env!("CARGO_BIN_EXE_mnode");

fn add(dir: &Path) {
    let size: u64 = std::env::var("MNODE_BENCH_ADD_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1024)
        << 20;
    let file = dir.join("big.bin");
    if std::fs::metadata(&file).ok().map(|m| m.len()) != Some(size) {
        // Incompressible, deterministic content.
        let mut f = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        let mut out = blake3::Hasher::new().update(b"mnode bench").finalize_xof();
        let mut buf = vec![0u8; 1 << 20];
        for _ in 0..size >> 20 {
            out.fill(&mut buf);
            f.write_all(&buf).unwrap();
        }
        f.flush().unwrap();
    }
    // Both runs read a file that is in the page cache.
    run(Command::new("cat")
        .arg(&file)
        .stdout(std::process::Stdio::null()));
    let copy = dir.join("big.copy");
    let reference = best_of(3, || {
        let _ = std::fs::remove_file(&copy);
        let start = Instant::now();
        run(Command::new("cp").arg(&file).arg(&copy));
        run(Command::new("b3sum").arg(&copy));
        start.elapsed()
    });
    // The UnixFS view's extra work, without a store: a SHA-256 of every 1 MiB leaf of the
    // file on all cores (the node's own function), alone, and beside the reference's copy and
    // BLAKE3 pass (as the add runs them side by side). No add that builds the view does better
    // on the same cores.
    let view_alone = best_of(3, || {
        let start = Instant::now();
        black_box(view_of_file(&file).unwrap());
        start.elapsed()
    });
    let ceiling = best_of(3, || {
        let _ = std::fs::remove_file(&copy);
        let start = Instant::now();
        std::thread::scope(|s| {
            s.spawn(|| {
                run(Command::new("cp").arg(&file).arg(&copy));
                run(Command::new("b3sum").arg(&copy));
            });
            black_box(view_of_file(&file).unwrap());
        });
        start.elapsed()
    });
    let _ = std::fs::remove_file(&copy);
    let repo = dir.join("add-repo");
    // `mnode add ARGS FILE` into a fresh repo, best of three.
    let add_with = |args: &[&str]| {
        best_of(3, || {
            let _ = std::fs::remove_dir_all(&repo);
            run(Command::new(MNODE)
                .arg("--repo")
                .arg(&repo)
                .args(["init", "--no-password"]));
            let start = Instant::now();
            run(Command::new(MNODE)
                .arg("--repo")
                .arg(&repo)
                .arg("add")
                .args(args)
                .arg(&file));
            start.elapsed()
        })
    };
    let ours = add_with(&[]);
    // Not the target's run: the file is referenced where it is, so this is hashing (building
    // the BLAKE3 tree) and the record without the copy.
    let in_place = add_with(&["--in-place"]);
    let _ = std::fs::remove_dir_all(&repo);
    let mbs = |d: Duration| size as f64 / 1e6 / d.as_secs_f64();
    println!("\n### add a {} MiB file\n", size >> 20);
    println!("| run | seconds | MB/s |");
    println!("|---|---:|---:|");
    println!(
        "| `cp` + `b3sum` (reference) | {:.2} | {:.0} |",
        reference.as_secs_f64(),
        mbs(reference)
    );
    println!(
        "| SHA-256 of every 1 MiB UnixFS leaf, all cores, in this process (the view's extra work) | {:.2} | {:.0} |",
        view_alone.as_secs_f64(),
        mbs(view_alone)
    );
    println!(
        "| ceiling: `cp` + `b3sum` beside the view's SHA-256 of every leaf | {:.2} | {:.0} |",
        ceiling.as_secs_f64(),
        mbs(ceiling)
    );
    println!(
        "| `mnode add` (copy into the store, hash, UnixFS view, record) | {:.2} | {:.0} |",
        ours.as_secs_f64(),
        mbs(ours)
    );
    println!(
        "| `mnode add --in-place` (no copy: hash, record; for comparison) | {:.2} | {:.0} |",
        in_place.as_secs_f64(),
        mbs(in_place)
    );
    let ratio = reference.as_secs_f64() / ours.as_secs_f64();
    println!(
        "\nmnode add = {ratio:.2} × cp+b3sum speed (target ≥ 0.80): {}",
        if ratio >= 0.8 { "met" } else { "NOT met" }
    );
    println!(
        "ceiling = {:.2} × cp+b3sum speed; mnode add = {:.2} × the ceiling",
        reference.as_secs_f64() / ceiling.as_secs_f64(),
        ceiling.as_secs_f64() / ours.as_secs_f64()
    );
}

fn post(i: u64) -> Post {
    Post {
        text: format!(
            "Post number {i}. Finished the last mix of the album tonight: three years of field \
             recordings from the coast and a borrowed upright piano."
        ),
        tags: vec![["music/ambient", "music/jazz", "visual/photo"][(i % 3) as usize].into()],
        ..Post::default()
    }
}

fn writes(dir: &Path) {
    let n: u64 = std::env::var("MNODE_BENCH_WRITES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let batch = 1000u64;
    let key = Keypair::derive(1, "bench");

    // Reference: sign + sha256 + RocksDB put of bytes of the same size, batched the same way.
    let bare_dir = dir.join("bare-db");
    let _ = std::fs::remove_dir_all(&bare_dir);
    let db = rocksdb::DB::open_default(&bare_dir).unwrap();
    let signing = SigningKey::from_bytes(&key.secret_bytes());
    let sample = Record::create(&post(0)).unwrap().at(1).sign(&key).unwrap();
    let template = sample.bytes().to_vec();
    let start = Instant::now();
    for b in 0..n / batch {
        let mut wb = rocksdb::WriteBatch::default();
        for i in 0..batch {
            let mut msg = template.clone();
            msg[..8].copy_from_slice(&(b * batch + i).to_le_bytes());
            let sig = signing.sign(&msg);
            let hash = sha2::Sha256::digest(&msg);
            msg.extend_from_slice(&sig.to_bytes());
            wb.put(hash, &msg);
        }
        db.write(wb).unwrap();
    }
    let bare = start.elapsed();
    drop(db);

    // Ours: create + sign + store (verified chain rules, item, every index), batched.
    let store_dir = dir.join("writes-db");
    let _ = std::fs::remove_dir_all(&store_dir);
    let store = Store::open(&store_dir, 64).unwrap();
    let start = Instant::now();
    for b in 0..n / batch {
        let records: Vec<Record> = (0..batch)
            .map(|i| {
                let i = b * batch + i;
                Record::create(&post(i))
                    .unwrap()
                    .at(1_732_400_000_000 + i)
                    .sign(&key)
                    .unwrap()
            })
            .collect();
        black_box(store.put_batch(records).unwrap());
    }
    let ours = start.elapsed();
    drop(store);
    let _ = std::fs::remove_dir_all(&store_dir);
    let _ = std::fs::remove_dir_all(&bare_dir);

    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!("\n### record writes, {n} records in batches of {batch}, one thread\n");
    println!("| run | records/s | µs/record |");
    println!("|---|---:|---:|");
    println!(
        "| bare loop: ed25519 sign + sha256 + RocksDB put (reference) | {:.0} | {:.2} |",
        rate(bare),
        1e6 / rate(bare)
    );
    println!(
        "| mnode: create + sign + store (chain rules, item, indexes) | {:.0} | {:.2} |",
        rate(ours),
        1e6 / rate(ours)
    );
    let ratio = rate(ours) / rate(bare);
    println!(
        "\nmnode = {:.0} records/s (target ≥ 50,000: {}) = {ratio:.2} × the bare loop (target ≥ 0.50: {})",
        rate(ours),
        if rate(ours) >= 50_000.0 {
            "met"
        } else {
            "NOT met"
        },
        if ratio >= 0.5 { "met" } else { "NOT met" }
    );
}

fn startup(dir: &Path) {
    let n: u64 = std::env::var("MNODE_BENCH_RECORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let repo_dir = dir.join(format!("startup-repo-{n}"));
    if !repo_dir.join("version").exists() {
        let _ = std::fs::remove_dir_all(&repo_dir);
        let repo = Repo::init(&repo_dir, &InitOptions::default()).unwrap();
        let key = repo.accounts().signing_key("owner").unwrap();
        let start = Instant::now();
        for b in 0..n / 10_000 {
            let records: Vec<Record> = (0..10_000)
                .map(|i| {
                    let i = b * 10_000 + i;
                    Record::create(&post(i))
                        .unwrap()
                        .at(1_732_400_000_000 + i)
                        .sign(&key)
                        .unwrap()
                })
                .collect();
            repo.store().put_batch(records).unwrap();
        }
        repo.store().flush().unwrap();
        eprintln!(
            "built a {n}-record repo in {:.1} s",
            start.elapsed().as_secs_f64()
        );
    }
    let du = run(Command::new("du").args(["-sm"]).arg(&repo_dir));
    let mut samples = Vec::new();
    let mut peak_kb = 0u64;
    for _ in 0..5 {
        let start = Instant::now();
        let out = Command::new("/usr/bin/time")
            .args(["-f", "%M"])
            .arg(MNODE)
            .arg("--repo")
            .arg(&repo_dir)
            .args(["--json", "record", "list", "social.post", "--limit", "20"])
            .output()
            .unwrap();
        samples.push(start.elapsed());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(listed["items"].as_array().unwrap().len(), 20);
        let kb: u64 = String::from_utf8_lossy(&out.stderr)
            .trim()
            .lines()
            .last()
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        peak_kb = peak_kb.max(kb);
    }
    samples.sort();
    let median = samples[samples.len() / 2];
    println!(
        "\n### startup with {n} records ({} MB on disk)\n",
        du.split_whitespace().next().unwrap_or("?")
    );
    println!("| run | best s | median s | peak memory |");
    println!("|---|---:|---:|---:|");
    println!(
        "| `mnode record list social.post --limit 20` (open repo, unlock keystore, list) | {:.3} | {:.3} | {:.1} MiB |",
        samples[0].as_secs_f64(),
        median.as_secs_f64(),
        peak_kb as f64 / 1024.0
    );
    println!(
        "\nstartup median {:.3} s (target < 1 s): {}",
        median.as_secs_f64(),
        if median < Duration::from_secs(1) {
            "met"
        } else {
            "NOT met"
        }
    );
}

fn main() {
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |name: &str| which.is_empty() || which.iter().any(|w| w == name);
    let dir = bench_dir();
    if want("writes") {
        writes(&dir);
    }
    if want("startup") {
        startup(&dir);
    }
    if want("add") {
        add(&dir);
    }
}

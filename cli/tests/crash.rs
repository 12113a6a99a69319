//! Crash safety: a `kill -9` at any point of an ingest or a write leaves no half-written blob or
//! record visible, and the next start cleans up what the dead process left behind.

#![cfg(unix)]
#![allow(clippy::unwrap_used)]

use std::{
    collections::BTreeSet,
    fs,
    io::Write as _,
    os::unix::process::ExitStatusExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

/// Size of the big files. In a debug build the copy and the BLAKE3 pass over them take some
/// 50-150 ms, after some 450 ms of opening the repo; the odd rounds aim at that window.
const BIG: usize = 48 << 20;
/// Children killed in all, cycling through the kinds of [`Kind`].
const KILLS: usize = 30;
/// `repo verify` after this many kills (and at the end).
const VERIFY_EVERY: usize = 6;
/// An uninterrupted `record create` after every this many iterations.
const RECORD_EVERY: usize = 4;
/// The signal that `Child::kill` sends.
const SIGKILL: i32 = 9;
/// The earliest kill, after the spawn.
const MIN_DELAY_MS: u64 = 5;

/// The command a child runs before it is killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `add BIG`: mid-ingest (copy into the store + hash).
    Add,
    /// `add --in-place BIG`: mid-ingest (hash + outboard), the store references the file.
    AddInPlace,
    /// `seed --count 3 --seed N`: mid-write of many files and records.
    Seed,
}

const KINDS: [Kind; 3] = [Kind::Add, Kind::AddInPlace, Kind::Seed];

/// A tiny deterministic generator (Knuth's MMIX LCG).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

/// `BIG` pseudo-random bytes (splitmix64), the same in every run.
fn base_data() -> Vec<u8> {
    let mut data = vec![0u8; BIG];
    let mut x: u64 = 0x5eed_cafe_f00d_d00d;
    for chunk in data.chunks_exact_mut(8) {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    data
}

/// The big file of content `tag`: the base data with its first 8 bytes replaced by `tag`, so
/// every tag is new content and dedup cannot short-circuit the ingest.
fn big_content(base: &[u8], tag: u64) -> Vec<u8> {
    let mut data = base.to_vec();
    data[..8].copy_from_slice(&tag.to_le_bytes());
    data
}

/// Writes the big file of content `tag` to `path` (without copying the base in memory).
fn write_big(base: &[u8], tag: u64, path: &Path) {
    let mut f = fs::File::create(path).unwrap();
    f.write_all(&tag.to_le_bytes()).unwrap();
    f.write_all(&base[8..]).unwrap();
    f.sync_all().unwrap();
}

struct Repo {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl Repo {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("repo");
        let repo = Self { dir, path };
        repo.ok(&["init", "--no-password"]);
        repo
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mnode"));
        c.arg("--repo")
            .arg(&self.path)
            .args(args)
            .env_remove("MNODE_REPO")
            .env_remove("MNODE_PASSPHRASE")
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> Vec<u8> {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "mnode {args:?} failed ({}):\n{}\n{}",
            o.status,
            text(&o.stdout),
            text(&o.stderr)
        );
        o.stdout
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_slice(&self.ok(&all)).unwrap()
    }

    /// Starts a child whose stdout is dropped and whose stderr goes to `stderr`.
    fn spawn(&self, args: &[&str], stderr: &Path) -> Child {
        self.command(args)
            .stdout(Stdio::null())
            .stderr(fs::File::create(stderr).unwrap())
            .spawn()
            .unwrap()
    }

    /// `repo verify` must pass, and the temp dir must be empty (the verify run opened the repo,
    /// which removes what killed processes left there).
    fn verify(&self, after: &str) {
        let o = self.run(&["--json", "repo", "verify"]);
        let report: Option<Value> = serde_json::from_slice(&o.stdout).ok();
        let ok = report
            .as_ref()
            .is_some_and(|r| r["ok"] == Value::Bool(true));
        assert!(
            o.status.success() && ok,
            "repo verify failed {after} (status {}):\n{}\n{}",
            o.status,
            text(&o.stdout),
            text(&o.stderr)
        );
        let left: Vec<String> = fs::read_dir(self.path.join("tmp"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            left.is_empty(),
            "{}/tmp still holds {left:?} {after}",
            self.path.display()
        );
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// How long an uninterrupted run takes, in ms.
fn timed(f: impl FnOnce()) -> u64 {
    let start = Instant::now();
    f();
    millis(start.elapsed())
}

/// When a child is killed.
#[derive(Debug, Clone, Copy)]
enum Plan {
    /// This many ms after it was started.
    AfterSpawn(u64),
    /// This many ms after a file showed up in the repo's temp dir.
    AfterImportStarts(u64),
}

impl std::fmt::Display for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Plan::AfterSpawn(ms) => write!(f, "{ms} ms after the start"),
            Plan::AfterImportStarts(ms) => write!(f, "{ms} ms into the import"),
        }
    }
}

/// The names in the repo's temp dir.
fn temp_names(repo: &Repo) -> BTreeSet<String> {
    fs::read_dir(repo.path.join("tmp"))
        .unwrap()
        .filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
        .collect()
}

/// How many files in the repo's temp dir are not among `old` (what a killed child left there
/// before this one started, until this one's open removes it): those of an import under way.
fn new_temp_files(repo: &Repo, old: &BTreeSet<String>) -> usize {
    temp_names(repo).difference(old).count()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap()
}

/// Runs a child to its end, uninterrupted; returns how long it ran and when a temp file first
/// showed up in the repo's temp dir (an import started), in ms after the start.
fn watched_run(repo: &Repo, args: &[&str], log: &Path) -> (u64, Option<u64>) {
    let old = temp_names(repo);
    let start = Instant::now();
    let mut child = repo.spawn(args, log);
    let mut import = None;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if import.is_none() && new_temp_files(repo, &old) > 0 {
            import = Some(millis(start.elapsed()));
        }
        thread::sleep(Duration::from_millis(1));
    };
    assert!(
        status.success(),
        "mnode {args:?} failed ({status}):\n{}",
        fs::read_to_string(log).unwrap_or_default()
    );
    (millis(start.elapsed()), import)
}

/// Waits until a new temp file (not among `old`) shows up in the repo's temp dir (`true`), or
/// the child exits or `limit` passes (`false`).
fn wait_for_import(
    repo: &Repo,
    old: &BTreeSet<String>,
    child: &mut Child,
    limit: Duration,
) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if new_temp_files(repo, old) > 0 {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        thread::sleep(Duration::from_millis(1));
    }
    false
}

/// Per kind: how often a child was killed while running, and how often it had finished.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    killed: usize,
    /// Killed after its import had started (a temp file of its own showed up).
    after_import_start: usize,
    /// Killed while the repo's temp dir held files it had made: mid-copy or mid-hash.
    with_temp_files: usize,
    finished: usize,
}

#[test]
fn killed_mid_ingest_and_mid_write_leaves_a_verifiable_repo() {
    let started = Instant::now();
    let repo = Repo::new();
    let work = repo.dir.path();
    // Files imported in place must stay as they are for as long as the repo refers to them: each
    // gets its own path, kept until the end. Sources of copies are removed after their run.
    let in_place_dir = work.join("in-place");
    let copy_dir = work.join("copies");
    let logs = work.join("logs");
    for d in [&in_place_dir, &copy_dir, &logs] {
        fs::create_dir_all(d).unwrap();
    }
    let base = base_data();
    let mut kept: Vec<(PathBuf, u64)> = Vec::new();

    // How long each kind of child lives when it is not killed, on this machine, now, and when
    // an import starts in it: the kills are spread over these windows. `open_ms` is what opening
    // the repo (RocksDB, the blob store with its crash recovery) and closing it again takes.
    let open_ms = timed(|| {
        repo.json(&["repo", "stat"]);
    });
    let calibration = copy_dir.join("calibration");
    write_big(&base, u64::MAX, &calibration);
    let log = logs.join("calibration.stderr");
    let (add_ms, add_import) = watched_run(&repo, &["add", calibration.to_str().unwrap()], &log);
    fs::remove_file(&calibration).unwrap();
    let calibration = in_place_dir.join("calibration");
    write_big(&base, u64::MAX - 1, &calibration);
    let (in_place_ms, in_place_import) = watched_run(
        &repo,
        &["add", "--in-place", calibration.to_str().unwrap()],
        &log,
    );
    kept.push((calibration, u64::MAX - 1));
    let seed_ms = timed(|| {
        repo.json(&["seed", "--count", "3", "--seed", "999999"]);
    });
    println!(
        "uninterrupted: open+close {open_ms} ms, add {add_ms} ms (import from \
         {add_import:?} ms), add --in-place {in_place_ms} ms (import from {in_place_import:?} \
         ms), seed --count 3 {seed_ms} ms"
    );

    let mut rng = Lcg(0x00c0_ffee);
    let mut tally = [Tally::default(); 3];
    let mut records = 0;
    // Kills planned to wait for an import (none for `add --in-place` if its calibration run
    // showed no temp file, which a busy machine can make too short to see).
    let mut aimed = 0;
    for i in 0..KILLS {
        let kind = KINDS[i % KINDS.len()];
        let round = i / KINDS.len();
        let tag = i as u64;
        let (args, source): (Vec<String>, Option<PathBuf>) = match kind {
            Kind::Add => {
                let p = copy_dir.join(format!("big-{i}"));
                write_big(&base, tag, &p);
                (
                    vec!["--json".into(), "add".into(), p.display().to_string()],
                    Some(p),
                )
            }
            Kind::AddInPlace => {
                let p = in_place_dir.join(format!("big-{i}"));
                write_big(&base, tag, &p);
                kept.push((p.clone(), tag));
                (
                    vec![
                        "--json".into(),
                        "add".into(),
                        "--in-place".into(),
                        p.display().to_string(),
                    ],
                    None,
                )
            }
            Kind::Seed => (
                vec![
                    "--json".into(),
                    "seed".into(),
                    "--count".into(),
                    "3".into(),
                    "--seed".into(),
                    (1000 + i).to_string(),
                ],
                None,
            ),
        };
        let (lifetime, import) = match kind {
            Kind::Add => (add_ms, add_import),
            Kind::AddInPlace => (in_place_ms, in_place_import),
            Kind::Seed => (seed_ms, None),
        };
        let lifetime = lifetime.max(MIN_DELAY_MS + 20);
        // Even rounds: anywhere in the child's life, including the open and the crash recovery
        // of the previous kill. Odd rounds: once an import is under way (a temp file shows up),
        // somewhere in the rest of the child's life: mid-copy, mid-hash, while the blob and the
        // record are committed. Every other odd round kills the moment the import shows, so
        // some kills land mid-copy however slow or busy the machine is. Without an import to
        // wait for: after the open.
        let plan = match import {
            Some(_) if round % 4 == 1 => Plan::AfterImportStarts(0),
            Some(start) if !round.is_multiple_of(2) => Plan::AfterImportStarts(
                (lifetime.saturating_sub(start).max(20)) * (rng.next() % 1001) / 1000,
            ),
            _ => {
                let from = if round.is_multiple_of(2) {
                    MIN_DELAY_MS
                } else {
                    (open_ms * 3 / 4).clamp(MIN_DELAY_MS, lifetime * 3 / 4)
                };
                Plan::AfterSpawn(from + (lifetime - from) * (rng.next() % 1001) / 1000)
            }
        };

        let log = logs.join(format!("{i}.stderr"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let old = temp_names(&repo);
        let mut child = repo.spawn(&args, &log);
        let import_started = match plan {
            Plan::AfterSpawn(ms) => {
                thread::sleep(Duration::from_millis(ms));
                false
            }
            Plan::AfterImportStarts(ms) => {
                aimed += 1;
                let started =
                    wait_for_import(&repo, &old, &mut child, Duration::from_millis(lifetime * 4));
                if started {
                    thread::sleep(Duration::from_millis(ms));
                }
                started
            }
        };
        // What the child is doing: temp files of its own mean an import is under way.
        let temp_files = new_temp_files(&repo, &old);
        let running = child.try_wait().unwrap().is_none();
        if running {
            child.kill().unwrap();
        }
        let status: ExitStatus = child.wait().unwrap();
        // A child that was not killed (it had finished, or it finished just before the kill)
        // must have succeeded: the crash recovery of the previous kill must not break it.
        assert!(
            status.signal() == Some(SIGKILL) || status.success(),
            "iteration {i}: {args:?} failed on its own ({status}):\n{}",
            fs::read_to_string(&log).unwrap_or_default()
        );
        let t = &mut tally[i % KINDS.len()];
        if running {
            t.killed += 1;
            t.after_import_start += usize::from(import_started);
            t.with_temp_files += usize::from(temp_files > 0);
        } else {
            t.finished += 1;
        }
        println!(
            "iteration {i:2}: {kind:?} {plan}: {}",
            if running {
                format!("killed ({status}), {temp_files} new files in tmp/")
            } else {
                "had finished".to_owned()
            }
        );
        if let Some(p) = source {
            // The store made its own copy, if it got that far.
            fs::remove_file(p).unwrap();
        }

        if i % RECORD_EVERY == RECORD_EVERY - 1 {
            let text = format!("text=iteration {i}");
            repo.ok(&["record", "create", "social.post", "--set", &text]);
            records += 1;
        }
        if (i + 1) % VERIFY_EVERY == 0 {
            repo.verify(&format!("after {} kills", i + 1));
        }
    }
    if !KILLS.is_multiple_of(VERIFY_EVERY) {
        repo.verify("after the last kill");
    }

    let killed: usize = tally.iter().map(|t| t.killed).sum();
    for (kind, t) in KINDS.iter().zip(&tally) {
        println!(
            "{kind:?}: {} killed while running ({} after the import started, {} while its temp \
             files were there), {} had finished",
            t.killed, t.after_import_start, t.with_temp_files, t.finished
        );
    }
    println!("{records} records created between kills");
    assert!(
        killed * 2 >= KILLS,
        "only {killed} of {KILLS} children were still running when killed: {tally:?}"
    );
    // In the odd rounds (half of the `add` kills: up to KILLS / 3 of them) the kill waits for
    // the import to start: at least half of those must have killed the child after that, and
    // some while its temp files were there (mid-copy, mid-hash).
    let after_import_start = tally[0].after_import_start + tally[1].after_import_start;
    let mid_import = tally[0].with_temp_files + tally[1].with_temp_files;
    assert!(
        aimed * 6 >= KILLS && after_import_start * 2 >= aimed && mid_import >= 2,
        "only {after_import_start} of {aimed} `add` children aimed at their import were killed \
         after it started, {mid_import} while its temp files were there: {tally:?}"
    );

    // The repo is still usable: the content of the first (interrupted) copy is added again,
    // uninterrupted, and reads back byte for byte.
    let data = big_content(&base, 0);
    let again = copy_dir.join("again");
    write_big(&base, 0, &again);
    let added = repo.json(&["add", again.to_str().unwrap()]);
    let cid = added[0]["cid"].as_str().unwrap().to_owned();
    assert_eq!(cid, mnode_dag::cids::blob_cid_of(&data).to_string());
    assert_eq!(added[0]["size"].as_u64(), Some(BIG as u64));
    fs::remove_file(&again).unwrap();
    let read = repo.ok(&["cat", &cid]);
    assert_eq!(read.len(), data.len());
    assert!(read == data, "cat {cid} returned other bytes");
    drop(read);

    repo.verify("at the end");
    let stat = repo.json(&["repo", "stat"]);
    assert!(stat["files"].as_u64().unwrap() >= 3, "{stat}");
    assert!(
        stat["records"]["items"].as_u64().unwrap() >= records + 2,
        "{stat}"
    );

    // Nothing touched the files imported in place.
    for (path, tag) in &kept {
        let on_disk = fs::read(path).unwrap();
        assert!(
            on_disk[..8] == tag.to_le_bytes() && on_disk[8..] == base[8..],
            "{} was changed",
            path.display()
        );
    }

    // The blob store's files all belong to readable blobs: recovery left no orphans of the
    // killed imports behind.
    let hashes: BTreeSet<String> = fs::read_dir(repo.path.join("blobs").join("data"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .filter_map(|p| {
            let stem = p.file_stem()?.to_str()?.to_owned();
            (stem.len() == 64 && hex::decode(&stem).is_ok()).then_some(stem)
        })
        .collect();
    assert!(!hashes.is_empty());
    for hash in &hashes {
        let bytes: [u8; 32] = hex::decode(hash).unwrap().try_into().unwrap();
        let cid = mnode_dag::cids::blob_cid(bytes).to_string();
        let o = repo.run(&["cat", "--range", "0-0", &cid]);
        assert!(
            o.status.success() && o.stdout.len() == 1,
            "blobs/data holds files of {hash}, which is not a readable blob: {}",
            text(&o.stderr)
        );
    }
    println!(
        "{} blob hashes with files in blobs/data, all readable; total {:.1} s",
        hashes.len(),
        started.elapsed().as_secs_f64()
    );
}

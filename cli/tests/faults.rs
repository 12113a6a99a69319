//! Faults a node survives. `kill -9` of a running daemon at random moments while a client
//! writes records through the API as fast as it can, while a client uploads files, while a
//! second daemon catches up from a first (the receiver is killed), and while GC runs: after
//! each kill the repo opens (the daemon starts again), `repo verify` passes, every write that
//! was answered 2xx is there with its exact content, nothing half-written is visible, and the
//! temp files of the killed daemon are gone. And a disk that fills up under a running daemon:
//! uploads and record writes answer 507 `disk_full`, reads go on, and writes work again once
//! there is room, without a restart (also after a commit of the blob store's database failed).
//!
//! The kill points come from a seeded generator; the seed is printed, and
//! `MNODE_FAULTS_SEED=<seed>` repeats it. Nothing here asserts on how long anything takes: a
//! kill that lands before the work started is a valid round too.

#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

mod support;

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use rand::{RngExt as _, SeedableRng as _, rngs::StdRng};
use serde_json::{Value, json};
use support::{Daemon, http::Api, init_with, json, kill9, run_logged, wait_until};

/// Kills per scenario.
const KILLS: usize = 20;
/// Records A makes for B to catch up with, per round.
const BATCH: usize = 400;

fn now_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// The generator of one test, from `MNODE_FAULTS_SEED` or the clock; prints the seed.
fn rng(test: &str) -> StdRng {
    let seed = std::env::var("MNODE_FAULTS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("{test}: seed {seed} (MNODE_FAULTS_SEED={seed} repeats these kill points)");
    StdRng::seed_from_u64(seed)
}

/// `len` bytes that no other `key` gives (splitmix64).
fn content(key: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    let mut x = key.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5eed;
    while out.len() < len {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// One daemon's repo, its log, and the daemon while it runs.
struct Node {
    repo: PathBuf,
    log: PathBuf,
    daemon: Option<Daemon>,
    kills: usize,
    /// Kills that found the daemon still running (not exited on its own).
    killed_running: usize,
}

impl Node {
    fn new(dir: &Path, name: &str) -> Self {
        let repo = init_with(dir, name, &[]);
        let log = dir.join(format!("{name}.log"));
        let mut n = Self {
            repo,
            log,
            daemon: None,
            kills: 0,
            killed_running: 0,
        };
        n.start();
        n
    }

    /// Starts the daemon: the repo opens. What the last one left in `tmp/` must be gone then.
    fn start(&mut self) {
        assert!(self.daemon.is_none());
        self.daemon = Some(run_logged(&self.repo, &self.log));
        let left: Vec<String> = fs::read_dir(self.repo.join("tmp"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            left.is_empty(),
            "{}/tmp still holds {left:?} after the start",
            self.repo.display()
        );
    }

    fn api(&self) -> Api {
        Api::of(&self.repo)
    }

    fn kill(&mut self) {
        let mut d = self.daemon.take().unwrap();
        let running = d.child.try_wait().unwrap().is_none();
        let status = kill9(d);
        assert!(
            status.signal() == Some(9),
            "the daemon had exited by itself ({status}):\n{}",
            fs::read_to_string(&self.log).unwrap_or_default()
        );
        self.kills += 1;
        self.killed_running += usize::from(running);
    }

    /// Stops the daemon (SIGTERM), as a person would.
    fn stop(&mut self) {
        drop(self.daemon.take());
    }

    /// `repo verify` through the daemon.
    fn verify(&self, after: &str) {
        let report = self.api().ok("POST", "/api/v1/repo/verify", None);
        assert_eq!(report["ok"], true, "repo verify failed {after}: {report}");
    }

    /// Stops the daemon and runs `mnode repo verify` on the closed repo.
    fn stop_and_verify(&mut self) {
        self.stop();
        let report = json(&self.repo, &["repo", "verify"]);
        assert_eq!(report["ok"], true, "{report}");
    }
}

use std::os::unix::process::ExitStatusExt as _;

/// Every item of `kind` (all pages).
fn list_all(api: &Api, kind: &str) -> Vec<Value> {
    let mut items = vec![];
    let mut cursor = String::new();
    loop {
        let page = api.ok(
            "GET",
            &format!("/api/v1/records?kind={kind}&limit=1000{cursor}"),
            None,
        );
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return items,
        }
    }
}

fn ids(items: &[Value]) -> BTreeSet<String> {
    items
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A client thread that works until told to stop or until the daemon is gone; returns what
/// was acknowledged and every answer that was not a success.
struct Client<A: Send + 'static> {
    stop: Arc<AtomicBool>,
    handle: thread::JoinHandle<(Vec<A>, Vec<String>)>,
}

impl<A: Send + 'static> Client<A> {
    fn start(mut step: impl FnMut(u64) -> Step<A> + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let stop = stop.clone();
            thread::spawn(move || {
                let (mut acked, mut refused) = (vec![], vec![]);
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    match step(n) {
                        Step::Acked(a) => acked.push(a),
                        Step::Refused(why) => refused.push(why),
                        Step::Gone => break,
                    }
                    n += 1;
                }
                (acked, refused)
            })
        };
        Self { stop, handle }
    }

    fn finish(self) -> (Vec<A>, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().unwrap()
    }
}

enum Step<A> {
    Acked(A),
    Refused(String),
    Gone,
}

fn create_post(api: &Api, text: &str) -> Step<(String, String)> {
    let body = json!({ "kind": "social.post", "body": { "text": text } });
    match api.post("/api/v1/records", &body) {
        Ok(a) if a.ok() => Step::Acked((a.json()["cid"].as_str().unwrap().to_owned(), text.into())),
        Ok(a) => Step::Refused(format!("{} {}", a.status, a.text())),
        Err(_) => Step::Gone,
    }
}

/// The record `cid` names holds exactly this post.
fn assert_post(api: &Api, cid: &str, text: &str, after: &str) {
    let a = api
        .get(&format!("/api/v1/records/{cid}?exact=true"))
        .unwrap();
    assert!(
        a.ok(),
        "acknowledged record {cid} ({text:?}) is lost {after}: {} {}",
        a.status,
        a.text()
    );
    let v = a.json();
    assert_eq!(v["cid"], cid, "{after}");
    assert_eq!(v["record"]["body"]["text"], text, "{cid} {after}");
}

fn sleep_ms(ms: u64) {
    thread::sleep(Duration::from_millis(ms));
}

#[test]
fn kill_9_during_record_writes_loses_nothing_acknowledged() {
    let started = Instant::now();
    let mut rng = rng("record writes");
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::new(dir.path(), "node");
    let mut all: Vec<(String, String)> = vec![];
    for round in 0..KILLS {
        let api = node.api();
        // Two writers: puts wait for one another on the store's writer lock.
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let api = api.clone();
                Client::start(move |n| create_post(&api, &format!("round {round} writer {w} #{n}")))
            })
            .collect();
        sleep_ms(rng.random_range(0..=600));
        node.kill();
        let mut acked = vec![];
        for w in writers {
            let (a, refused) = w.finish();
            assert!(refused.is_empty(), "round {round}: refused {refused:?}");
            acked.extend(a);
        }
        node.start();
        let after = format!("after kill {}", round + 1);
        node.verify(&after);
        let api = node.api();
        for (cid, text) in &acked {
            assert_post(&api, cid, text, &after);
        }
        println!(
            "round {round}: {} writes acknowledged before the kill",
            acked.len()
        );
        all.extend(acked);
    }
    // Everything acknowledged in every round is still listed.
    let listed = ids(&list_all(&node.api(), "social.post"));
    for (cid, _) in &all {
        assert!(listed.contains(cid), "{cid} is not listed");
    }
    node.stop_and_verify();
    println!(
        "record writes: {} kills ({} while running), {} writes acknowledged, all kept; {:.1} s",
        node.kills,
        node.killed_running,
        all.len(),
        started.elapsed().as_secs_f64()
    );
}

/// An acknowledged upload: the file's CID, its content key and size, its record.
#[derive(Debug, Clone)]
struct Upload {
    cid: String,
    key: u64,
    size: usize,
    record: String,
}

/// Nothing half-uploaded is visible: every file record names a file the node holds, at the
/// record's size, and every file under `blobs/uploads/` is a file the node holds.
fn assert_no_partial_files(api: &Api, repo: &Path, after: &str) {
    for item in list_all(api, "core.file") {
        let id = item["id"].as_str().unwrap();
        let v = api.ok("GET", &format!("/api/v1/records/{id}"), None);
        let body = &v["record"]["body"];
        let blob = body["blob"]["/"].as_str().unwrap();
        let a = api.get(&format!("/api/v1/files/{blob}")).unwrap();
        assert!(
            a.ok(),
            "file record {id} names {blob}, which the node does not hold {after}: {}",
            a.text()
        );
        assert_eq!(a.json()["size"], body["size"], "{blob} {after}");
    }
    for e in fs::read_dir(repo.join("blobs/uploads")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        let hash = name.strip_suffix(".data").unwrap();
        let bytes: [u8; 32] = hex::decode(hash).unwrap().try_into().unwrap();
        let cid = mnode_dag::cids::blob_cid(bytes).to_string();
        let a = api.get(&format!("/api/v1/files/{cid}")).unwrap();
        assert!(
            a.ok(),
            "blobs/uploads/{name} is no file the node holds {after}"
        );
    }
}

fn upload(api: &Api, key: u64, size: usize, name: &str) -> Step<Upload> {
    let data = content(key, size);
    match api.put_bytes(&format!("/api/v1/files?name={name}"), &data) {
        Ok(a) if a.ok() => {
            let v = a.json();
            Step::Acked(Upload {
                cid: v["cid"].as_str().unwrap().to_owned(),
                key,
                size,
                record: v["record"]["id"].as_str().unwrap().to_owned(),
            })
        }
        Ok(a) => Step::Refused(format!("{} {}", a.status, a.text())),
        Err(_) => Step::Gone,
    }
}

fn assert_upload(api: &Api, u: &Upload, after: &str) {
    let a = api.get(&format!("/ipfs/{}", u.cid)).unwrap();
    assert!(
        a.ok(),
        "acknowledged file {} is lost {after}: {}",
        u.cid,
        a.status
    );
    assert!(
        a.body == content(u.key, u.size),
        "file {} reads back other bytes {after}",
        u.cid
    );
    let r = api.ok("GET", &format!("/api/v1/records/{}", u.record), None);
    // Random bytes now and then sniff as a media type (an MP3 frame header, say), and a
    // media record keeps its file under `file`.
    let body = &r["record"]["body"];
    let file = if body["file"].is_object() {
        &body["file"]
    } else {
        body
    };
    assert_eq!(
        file["blob"]["/"],
        u.cid.as_str(),
        "record {} of file {} {after}: {r}",
        u.record,
        u.cid
    );
}

#[test]
fn kill_9_during_uploads_keeps_every_acknowledged_file_and_shows_no_partial_one() {
    let started = Instant::now();
    let mut rng = rng("uploads");
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::new(dir.path(), "node");
    let mut all: Vec<Upload> = vec![];
    let mut sizes = 0usize;
    for round in 0..KILLS {
        let api = node.api();
        let seed: u64 = rng.random();
        // 1 to 3 MiB, not a multiple of anything.
        let sizes_of_round: Vec<usize> = (0..64)
            .map(|_| rng.random_range((1 << 20)..(3 << 20)))
            .collect();
        let client = Client::start(move |n| {
            let size = sizes_of_round[n as usize % sizes_of_round.len()];
            upload(&api, seed ^ n, size, &format!("r{round}-{n}.bin"))
        });
        sleep_ms(rng.random_range(0..=700));
        node.kill();
        let (acked, refused) = client.finish();
        assert!(refused.is_empty(), "round {round}: refused {refused:?}");
        node.start();
        let after = format!("after kill {}", round + 1);
        node.verify(&after);
        let api = node.api();
        for u in &acked {
            assert_upload(&api, u, &after);
        }
        assert_no_partial_files(&node.api(), &node.repo, &after);
        println!(
            "round {round}: {} uploads acknowledged before the kill",
            acked.len()
        );
        sizes += acked.iter().map(|u| u.size).sum::<usize>();
        all.extend(acked);
    }
    let api = node.api();
    for u in &all {
        assert_upload(&api, u, "at the end");
    }
    node.stop_and_verify();
    println!(
        "uploads: {} kills ({} while running), {} uploads ({:.0} MiB) acknowledged, all kept; \
         {:.1} s",
        node.kills,
        node.killed_running,
        all.len(),
        sizes as f64 / f64::from(1 << 20),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn kill_9_of_a_daemon_catching_up_keeps_what_it_stored_and_finishes_later() {
    let started = Instant::now();
    let mut rng = rng("catch-up");
    let dir = tempfile::tempdir().unwrap();
    let a = Node::new(dir.path(), "a");
    let mut b = Node::new(dir.path(), "b");
    let (api_a, api_b) = (a.api(), b.api());
    let node_a = api_a.ok("GET", "/api/v1/node", None);
    let owner_a = node_a["owner_did"].as_str().unwrap().to_owned();
    api_b.ok(
        "POST",
        "/api/v1/follows",
        Some(&json!({ "topic": owner_a })),
    );
    api_b.ok(
        "POST",
        "/api/v1/peers",
        Some(&json!({ "addr": node_a["addrs"][0] })),
    );
    // A's posts, by id, as its batch answers name them.
    let mut of_a: BTreeSet<String> = BTreeSet::new();
    let mut batch = |round: usize| {
        let records: Vec<Value> = (0..BATCH)
            .map(|i| json!({ "kind": "social.post", "body": { "text": format!("A {round}/{i}") } }))
            .collect();
        let since = now_ms();
        let made = api_a.ok(
            "POST",
            "/api/v1/records/batch",
            Some(&json!({ "records": records })),
        );
        for r in made["records"].as_array().unwrap() {
            of_a.insert(r["id"].as_str().unwrap().to_owned());
        }
        (since, of_a.clone())
    };
    let count = |api: &Api| list_all(api, "social.post").len();
    // A first round, uninterrupted: how long a catch-up of a batch takes here, now.
    b.stop();
    batch(0);
    b.start();
    let t = Instant::now();
    wait_until("B to catch up", || count(&b.api()) == BATCH);
    let window = u64::try_from(t.elapsed().as_millis()).unwrap().max(50);
    println!("catch-up of {BATCH} records after a start: {window} ms");

    let (mut none, mut mid, mut whole) = (0, 0, 0);
    let mut stored_on_b = ids(&list_all(&b.api(), "social.post"));
    for round in 1..=KILLS {
        // A writes while B is down; B's start dials A and catches up.
        b.stop();
        let (since, of_a) = batch(round);
        b.start();
        let api_b = b.api();
        sleep_ms(rng.random_range(0..=window * 5 / 4));
        // What B holds of this batch just before the kill: stored, as B's API said.
        let page = api_b.ok(
            "GET",
            &format!("/api/v1/records?kind=social.post&since={since}&limit=1000"),
            None,
        );
        let this_round = ids(page["items"].as_array().unwrap());
        b.kill();
        b.start();
        let after = format!("after kill {round}");
        b.verify(&after);
        let api_b = b.api();
        let held = ids(&list_all(&api_b, "social.post"));
        let lost: Vec<_> = stored_on_b
            .union(&this_round)
            .filter(|id| !held.contains(*id))
            .collect();
        assert!(lost.is_empty(), "{after}: B lost {lost:?}");
        let foreign: Vec<_> = held.difference(&of_a).collect();
        assert!(
            foreign.is_empty(),
            "{after}: B holds records A never made: {foreign:?}"
        );
        match this_round.len() {
            0 => none += 1,
            BATCH => whole += 1,
            _ => mid += 1,
        }
        println!(
            "round {round}: B held {} of the {BATCH} new records before the kill, {} of {} \
             after the start",
            this_round.len(),
            held.len(),
            of_a.len()
        );
        // The same bytes on both nodes (their CIDs match; here the bodies too).
        for id in this_round.iter().take(3) {
            let on_a = api_a.ok("GET", &format!("/api/v1/records/{id}?exact=true"), None);
            let on_b = api_b.ok("GET", &format!("/api/v1/records/{id}?exact=true"), None);
            assert_eq!(on_a["record"], on_b["record"], "{after}");
        }
        stored_on_b = held;
    }
    let total = BATCH * (KILLS + 1);
    wait_until("B to finish catching up after the kills", || {
        count(&b.api()) == total
    });
    b.stop_and_verify();
    let mut a = a;
    a.stop_and_verify();
    println!(
        "catch-up: {} kills of the receiver ({} while running; the round's batch was stored \
         {none}× not yet, {mid}× in part, {whole}× whole), {total} records caught up in the end; \
         {:.1} s",
        b.kills,
        b.killed_running,
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn kill_9_during_gc_keeps_what_is_pinned_and_written_meanwhile() {
    let started = Instant::now();
    let mut rng = rng("gc");
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::new(dir.path(), "node");
    let mut kept_posts: Vec<(String, String)> = vec![];
    let mut kept_files: Vec<Upload> = vec![];
    let mut gc_ms = 0;
    let mut completed = 0;
    for round in 0..=KILLS {
        let api = node.api();
        // Garbage: records and files, unpinned.
        let records: Vec<Value> = (0..300)
            .map(|i| json!({ "kind": "social.post", "body": { "text": format!("garbage {round}/{i}") } }))
            .collect();
        let made = api.ok(
            "POST",
            "/api/v1/records/batch",
            Some(&json!({ "records": records })),
        );
        for r in made["records"].as_array().unwrap() {
            api.ok(
                "DELETE",
                &format!("/api/v1/pins/{}", r["id"].as_str().unwrap()),
                None,
            );
        }
        for i in 0..3u64 {
            let Step::Acked(u) = upload(&api, 1_000_000 + round as u64 * 10 + i, 100_000, "g.bin")
            else {
                panic!("a garbage upload failed");
            };
            api.ok("DELETE", &format!("/api/v1/pins/{}", u.record), None);
        }
        // Kept: a pinned file, and the posts a writer makes while GC runs.
        let Step::Acked(keep) = upload(&api, 2_000_000 + round as u64, 200_000, "keep.bin") else {
            panic!("an upload failed");
        };
        kept_files.push(keep);
        let writer = {
            let api = api.clone();
            Client::start(move |n| create_post(&api, &format!("kept {round}/{n}")))
        };
        let gc = {
            let api = api.clone();
            thread::spawn(move || {
                let t = Instant::now();
                let a = api.call("POST", "/api/v1/repo/gc", None, &[]);
                (a, t.elapsed())
            })
        };
        if round == 0 {
            // Uninterrupted: how long a GC of this much takes, here, now.
            let (a, took) = gc.join().unwrap();
            let a = a.unwrap();
            assert!(a.ok(), "{}", a.text());
            gc_ms = u64::try_from(took.as_millis()).unwrap().max(20);
            println!("uninterrupted gc: {gc_ms} ms: {}", a.text());
            let (acked, refused) = writer.finish();
            assert!(refused.is_empty(), "{refused:?}");
            let after = "after an uninterrupted gc";
            for (cid, text) in &acked {
                assert_post(&api, cid, text, after);
            }
            kept_posts.extend(acked);
            continue;
        }
        sleep_ms(rng.random_range(0..=gc_ms * 5 / 4));
        node.kill();
        let (acked, refused) = writer.finish();
        assert!(refused.is_empty(), "round {round}: refused {refused:?}");
        let (answer, _) = gc.join().unwrap();
        completed += usize::from(answer.is_ok_and(|a| a.ok()));
        node.start();
        let after = format!("after kill {round}");
        node.verify(&after);
        let api = node.api();
        for (cid, text) in kept_posts.iter().chain(&acked) {
            assert_post(&api, cid, text, &after);
        }
        for u in &kept_files {
            assert_upload(&api, u, &after);
        }
        assert_no_partial_files(&node.api(), &node.repo, &after);
        kept_posts.extend(acked);
    }
    // A GC that runs to its end removes the rest of the garbage and keeps the rest.
    let api = node.api();
    api.ok("POST", "/api/v1/repo/gc", None);
    for (cid, text) in &kept_posts {
        assert_post(&api, cid, text, "after the last gc");
    }
    for u in &kept_files {
        assert_upload(&api, u, "after the last gc");
    }
    // Posts the writer made whose answer the kill cut off may be there too (they were pinned);
    // no garbage is.
    let kept: BTreeSet<&str> = kept_posts.iter().map(|(cid, _)| cid.as_str()).collect();
    for id in ids(&list_all(&api, "social.post")) {
        if kept.contains(id.as_str()) {
            continue;
        }
        let v = api.ok("GET", &format!("/api/v1/records/{id}"), None);
        let text = v["record"]["body"]["text"].as_str().unwrap();
        assert!(
            text.starts_with("kept "),
            "after the last gc, {id} is left: {text:?}"
        );
    }
    node.stop_and_verify();
    println!(
        "gc: {} kills ({} while running; {completed} gc calls had answered), {} posts written \
         during the gcs and {} files kept; {:.1} s",
        node.kills,
        node.killed_running,
        kept_posts.len(),
        kept_files.len(),
        started.elapsed().as_secs_f64()
    );
}

/// A tmpfs mounted in a temp dir; unmounted when dropped (after the daemon on it stopped).
struct Mount {
    path: PathBuf,
}

impl Mount {
    fn tmpfs(path: &Path, size: &str) -> Self {
        fs::create_dir_all(path).unwrap();
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "cannot mount a tmpfs at {} (the disk-full test needs root, or `unshare \
             --user --map-root-user --mount`): {}",
            path.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        Self {
            path: path.to_owned(),
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Something still holds it: detach it now, the kernel frees it when released.
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

/// Whether this process may mount file systems: root, or else re-run this test as root of a
/// new user and mount namespace. `false`: the caller is that re-run's parent, done.
fn as_root(test: &str) -> bool {
    let uid = Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() == "0" {
        return true;
    }
    assert!(
        std::env::var_os("MNODE_FAULTS_NS").is_none(),
        "still not root inside `unshare --user --map-root-user`"
    );
    let o = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "--"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env("MNODE_FAULTS_NS", "1")
        .output();
    match o {
        Ok(o) if o.status.success() => {
            println!("{}", String::from_utf8_lossy(&o.stdout));
            false
        }
        Ok(o) => panic!(
            "{test} as root of a user namespace failed ({}):\n{}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!(
            "{test} needs root or `unshare --user --map-root-user --mount` (to mount a small \
             tmpfs) and has neither: {e}"
        ),
    }
}

/// Writes to `path` until the disk is full.
fn fill(path: &Path) -> u64 {
    use std::io::Write as _;
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let chunk = vec![0xa5u8; 64 << 10];
    let mut written = 0;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    written
}

/// The last lines of a daemon's log.
/// What takes room under `dir`: each file's size, largest first (at most 20), and the total.
fn disk_usage(dir: &Path) -> String {
    fn walk(dir: &Path, out: &mut Vec<(u64, PathBuf)>) {
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            match entry.metadata() {
                Ok(m) if m.is_dir() => walk(&path, out),
                Ok(m) => out.push((m.len(), path)),
                Err(_) => {}
            }
        }
    }
    let mut files = vec![];
    walk(dir, &mut files);
    files.sort_by(|a, b| b.cmp(a));
    let total: u64 = files.iter().map(|(n, _)| n).sum();
    let mut out: Vec<String> = files
        .iter()
        .take(20)
        .map(|(n, p)| format!("{n:>12} {}", p.display()))
        .collect();
    out.push(format!("{total:>12} in {} files", files.len()));
    if let Ok(df) = std::process::Command::new("df").arg("-k").arg(dir).output() {
        out.push(String::from_utf8_lossy(&df.stdout).trim_end().to_owned());
    }
    out.join("\n")
}

fn log_tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// How many commits of the blob store's database have failed on a full disk, as the daemon's
/// log says.
fn commit_failures(log: &Path) -> usize {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("metadata db") && l.contains("No space left on device"))
        .count()
}

/// Frees `bytes` of what `fill` wrote to `path`.
fn free(path: &Path, bytes: u64) {
    let f = fs::OpenOptions::new().write(true).open(path).unwrap();
    let len = f.metadata().unwrap().len();
    f.set_len(len - bytes).unwrap();
}

/// The answer says the disk is full, as the API documents it.
fn assert_disk_full(a: &support::http::Answer, what: &str) {
    assert_eq!(a.status, 507, "{what}: {} {}", a.status, a.text());
    let v = a.json();
    assert_eq!(v["error"]["code"], "disk_full", "{what}: {v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("disk") && message.contains("full"),
        "{what}: {message}"
    );
    assert!(
        !message.contains("IO error"),
        "{what} leaks RocksDB's words: {message}"
    );
}

#[test]
fn a_full_disk_refuses_writes_clearly_serves_reads_and_recovers_without_a_restart() {
    const TEST: &str =
        "a_full_disk_refuses_writes_clearly_serves_reads_and_recovers_without_a_restart";
    if !as_root(TEST) {
        return;
    }
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    // Declared first, dropped last: after the daemon on it has stopped.
    // Big enough that, with the filler gone, more than one memtable (64 MiB) is free: RocksDB
    // resumes writing only then. At 96 MiB the repo (its logs and files, some 37 MiB) left
    // 58 MiB free in one run in four, and writes never resumed.
    let disk = Mount::tmpfs(&dir.path().join("disk"), "192m");
    let repo = init_with(&disk.path, "repo", &[]);
    let log = dir.path().join("daemon.log");
    let mut d = run_logged(&repo, &log);
    let pid = d.child.id();
    let api = Api::of(&repo);

    // Something to read while the disk is full.
    let Step::Acked((post, text)) = create_post(&api, "written before the disk filled up") else {
        panic!("the first post failed");
    };
    let Step::Acked(file) = upload(&api, 7, 3 << 20, "before.bin") else {
        panic!("the first upload failed");
    };

    // The disk fills up during an upload: 2 MiB left, 8 MiB sent.
    let filler = disk.path.join("filler");
    fill(&filler);
    free(&filler, 2 << 20);
    let a = api
        .put_bytes("/api/v1/files?name=big.bin", &content(8, 8 << 20))
        .unwrap();
    assert_disk_full(&a, "an upload that fills the disk");

    // Room for an upload's temp file, not for the blob store's database to grow: files of up
    // to 16 KiB go into that database (redb), so 4 KiB uploads go on until one of its commits
    // fails on the full disk. An upload refused for want of room for its temp file frees one
    // more page. The refused upload answers 507 and leaves nothing behind; every acknowledged
    // one is kept (checked again after a restart at the end).
    fill(&filler);
    let failed_before = commit_failures(&log);
    let mut small: Vec<Upload> = vec![];
    let mut key = 1_000;
    let refused = loop {
        assert!(
            key < 3_000,
            "the blob store's database never ran out of room"
        );
        key += 1;
        let data = content(key, 4 << 10);
        let a = api
            .put_bytes(&format!("/api/v1/files?name=small-{key}.bin"), &data)
            .unwrap();
        if a.ok() {
            let v = a.json();
            small.push(Upload {
                cid: v["cid"].as_str().unwrap().to_owned(),
                key,
                size: data.len(),
                record: v["record"]["id"].as_str().unwrap().to_owned(),
            });
            continue;
        }
        if commit_failures(&log) > failed_before {
            break a;
        }
        assert_disk_full(
            &a,
            &format!(
                "a small upload on a full disk; the daemon said:\n{}",
                log_tail(&log)
            ),
        );
        free(&filler, 4 << 10);
    };
    assert_disk_full(
        &refused,
        &format!(
            "a small upload when the blob store's database cannot grow; the daemon said:\n{}",
            log_tail(&log)
        ),
    );
    assert_no_partial_files(&api, &repo, "after a commit of the blob store failed");
    for u in &small {
        assert_upload(&api, u, "after a commit of the blob store failed");
    }
    // Full to the last byte. RocksDB writes into the space it set aside for its log at first;
    // record writes go on until that is used up too, then they are refused.
    fill(&filler);
    let mut written: Vec<(String, String)> = vec![];
    let refused = loop {
        assert!(
            written.len() < 200_000,
            "record writes never ran out of room"
        );
        let n = written.len();
        let records: Vec<Value> = (n..n + 500)
            .map(|i| json!({ "kind": "social.post", "body": { "text": format!("full {i}") } }))
            .collect();
        let a = api
            .post("/api/v1/records/batch", &json!({ "records": records }))
            .unwrap();
        if !a.ok() {
            break a;
        }
        for (i, r) in a.json()["records"].as_array().unwrap().iter().enumerate() {
            written.push((
                r["cid"].as_str().unwrap().to_owned(),
                format!("full {}", n + i),
            ));
        }
    };
    assert_disk_full(&refused, "a record write on a full disk");
    let body = json!({ "kind": "social.post", "body": { "text": "on a full disk" } });
    let a = api.post("/api/v1/records", &body).unwrap();
    assert_disk_full(&a, "a record write on a full disk");
    let a = api
        .put_bytes("/api/v1/files?name=small.bin", &content(9, 100_000))
        .unwrap();
    assert_disk_full(&a, "an upload on a full disk");
    let a = api
        .put_bytes("/api/v1/files?name=tiny.txt", b"tiny")
        .unwrap();
    assert_disk_full(&a, "a tiny upload on a full disk");
    assert_no_partial_files(&api, &repo, "after uploads on a full disk");

    // Reads go on: records, listings, files, pages.
    assert_post(&api, &post, &text, "while the disk is full");
    assert_upload(&api, &file, "while the disk is full");
    assert_eq!(list_all(&api, "social.post").len(), written.len() + 1);
    for (cid, text) in written.iter().step_by(97) {
        assert_post(&api, cid, text, "while the disk is full");
    }
    for page in ["/", "/social/posts", &format!("/social/posts/{post}")] {
        let a = api.get(page).unwrap();
        assert_eq!(
            a.status,
            200,
            "GET {page} while the disk is full: {}",
            a.text()
        );
    }
    let partial: Vec<_> = fs::read_dir(repo.join("tmp")).unwrap().collect();
    assert!(
        partial.is_empty(),
        "temp files of the refused uploads: {partial:?}"
    );

    // Space comes back: writes work again, in the same process.
    fs::remove_file(&filler).unwrap();
    // RocksDB looks for room every few seconds and backs off while it finds none; on a machine
    // busy with other builds that can take a while, so the wait is generous and a timeout says
    // what the disk and the daemon looked like.
    let mut refused = 0;
    let since = Instant::now();
    let (cid, text) = loop {
        match create_post(&api, "written after the disk had room again") {
            Step::Acked(a) => break a,
            Step::Refused(why) => {
                assert!(why.starts_with("507"), "{why}");
                refused += 1;
            }
            Step::Gone => panic!("the daemon is gone:\n{}", log_tail(&log)),
        }
        assert!(
            since.elapsed() < Duration::from_secs(180),
            "no record write succeeded in 180 s after space came back ({refused} refused); \
             the disk holds:\n{}\nthe daemon said:\n{}",
            disk_usage(&disk.path),
            log_tail(&log)
        );
        thread::sleep(Duration::from_millis(200));
    };
    assert_post(&api, &cid, &text, "after the disk had room again");
    let Step::Acked(u) = upload(&api, 10, 8 << 20, "after.bin") else {
        panic!("an upload failed after the disk had room again");
    };
    assert_upload(&api, &u, "after the disk had room again");
    // A small one goes into the blob store's database, whose commit had failed.
    let Step::Acked(s) = upload(&api, 11, 4 << 10, "after-small.bin") else {
        panic!("a small upload failed after the disk had room again");
    };
    assert_upload(&api, &s, "after the disk had room again");
    assert_no_partial_files(&api, &repo, "after the disk had room again");
    assert!(d.child.try_wait().unwrap().is_none(), "the daemon stopped");
    assert_eq!(Api::of(&repo).addr, api.addr, "the daemon restarted");
    let _ = pid;
    let report = api.ok("POST", "/api/v1/repo/verify", None);
    assert_eq!(report["ok"], true, "{report}");
    drop(d);
    let report = json(&repo, &["repo", "verify"]);
    assert_eq!(report["ok"], true, "{report}");
    // Every upload that was acknowledged is stored for good, the small ones around the failed
    // commit of the blob store too.
    let d = run_logged(&repo, &log);
    let api = Api::of(&repo);
    for u in small.iter().chain([&file, &u, &s]) {
        assert_upload(&api, u, "after a restart");
    }
    assert_no_partial_files(&api, &repo, "after a restart");
    drop(d);
    println!(
        "disk full: {} small files stored until a commit of the blob store failed, {} records \
         written into RocksDB's log reserve, then record writes and uploads refused with 507, \
         reads served, writes again after {refused} refusals once there was room, no restart; \
         {:.1} s",
        small.len(),
        written.len(),
        started.elapsed().as_secs_f64()
    );
    drop(disk);
}

//! Sustained load on a real `mnode daemon` (release build, 127.0.0.1 only), for
//! RELIABILITY.md:
//!
//! - `wrk` on the gateway (a 1 MiB file, `/ipfs/{cid}`) and on record reads
//!   (`/api/v1/records/{id}` over 1,000 posts, a different one each request), while
//! - a writer creates posts through the API as fast as the node answers (one request at a
//!   time, the admin token),
//!
//! for `MNODE_BENCH_SOAK_SECS` (default 600) after `MNODE_BENCH_SOAK_WARMUP_SECS` (default 30)
//! of the same load not counted. It reports requests, requests/s, p50/p99 and errors for each
//! stream, and the daemon's resident memory (VmRSS) after the warm-up, its peak and at the end.
//! Done when: 0 errors in every stream and the RSS at the end within 64 MiB of the RSS after
//! the warm-up. The writer uses the admin token, which the rate limits never apply to, and
//! reads are not limited: this measures the node, not its limits.
//!
//! Run: `cargo bench -p mnode --bench soak` (needs `wrk`, installed with apt-get if missing).

#![allow(clippy::unwrap_used)]

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use mnode_api::client::Client;
use mnode_bench_support::{WrkResult, bench_dir, big_file, env_num, met, run, wrk_bin};
use serde_json::{Value, json};

const MNODE: &str = env!("CARGO_BIN_EXE_mnode");
/// Posts the record readers pick from.
const POSTS: usize = 1000;
/// Seconds between the RSS samples printed.
const SAMPLE_EVERY: u64 = 60;
/// The most the daemon's RSS may grow from the end of the warm-up to the end of the run.
const RSS_SLACK: u64 = 64 << 20;

/// The daemon, stopped (SIGTERM, then waited for) on drop.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn mnode(repo: &Path) -> Command {
    let mut c = Command::new(MNODE);
    c.arg("--repo")
        .arg(repo)
        .env("MNODE_PASSPHRASE", "a bench passphrase");
    c
}

/// VmRSS of `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    kib << 10
}

/// `wrk` with a Lua script that asks for `paths` in turn, for `secs` seconds.
fn wrk_paths(dir: &Path, name: &str, base: &str, paths: &[String], secs: u64) -> Child {
    let script = dir.join(format!("{name}.lua"));
    let list: Vec<String> = paths.iter().map(|p| format!("{p:?}")).collect();
    std::fs::write(
        &script,
        format!(
            "local paths = {{{}}}\nlocal i = 0\nrequest = function()\n  i = i % #paths + 1\n  return wrk.format(\"GET\", paths[i])\nend\n",
            list.join(",")
        ),
    )
    .unwrap();
    Command::new(wrk_bin())
        .args(["--latency", "-t1", "-c8", &format!("-d{secs}s"), "-s"])
        .arg(&script)
        .arg(base)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wrk_result(child: Child) -> WrkResult {
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    mnode_bench_support::parse_wrk(&text).unwrap_or_else(|| panic!("cannot read wrk:\n{text}"))
}

/// The writer's figures.
#[derive(Default)]
struct Writes {
    latencies: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
}

async fn write_until(client: Client, stop: Arc<AtomicBool>) -> Writes {
    let mut w = Writes::default();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let start = Instant::now();
        let body = json!({ "text": format!("soak post {n}: a line long enough to look like one"), "tags": ["soak"] });
        match client.create("social.post", body, None).await {
            Ok(_) => w.latencies.push(start.elapsed()),
            Err(e) => {
                w.errors += 1;
                w.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    w
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

fn mib(b: u64) -> String {
    format!("{:.1}", b as f64 / f64::from(1 << 20))
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let secs = env_num("MNODE_BENCH_SOAK_SECS", 600);
    let warmup = env_num("MNODE_BENCH_SOAK_WARMUP_SECS", 30);
    let dir: PathBuf = bench_dir().join("soak");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let repo = dir.join("repo");
    let mut init = mnode(&repo);
    init.arg("init");
    for s in [
        r#"network.listen=["/ip4/127.0.0.1/tcp/0"]"#,
        "network.blobs_listen=127.0.0.1:0",
        "api.listen=127.0.0.1:0",
    ] {
        init.args(["-c", s]);
    }
    run(&mut init);
    let log = std::fs::File::create(dir.join("daemon.log")).unwrap();
    let daemon = Daemon(
        mnode(&repo)
            .arg("daemon")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    while !repo.join("daemon.json").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the daemon did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(repo.join("daemon.json")).unwrap()).unwrap();
    let base = info["api"].as_str().unwrap().to_owned();
    let token = std::fs::read_to_string(repo.join("api.token"))
        .unwrap()
        .trim()
        .to_owned();
    let client = Client::new(&base, &token);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();

    // Seed: a 1 MiB file and the posts readers pick from.
    let file = big_file(&dir, "soak", 1 << 20);
    let up = rt.block_on(client.upload(&file, None, |_| {})).unwrap();
    let file_path = format!("/ipfs/{}", up["cid"].as_str().unwrap());
    let mut record_paths = Vec::with_capacity(POSTS);
    for chunk in 0..POSTS / 100 {
        let batch: Vec<(String, Value)> = (0..100)
            .map(|i| {
                let text = format!("seed post {}", chunk * 100 + i);
                ("social.post".to_owned(), json!({ "text": text }))
            })
            .collect();
        let made = rt.block_on(client.create_batch(&batch, None)).unwrap();
        for r in made["records"].as_array().unwrap() {
            record_paths.push(format!("/api/v1/records/{}", r["id"].as_str().unwrap()));
        }
    }

    let pid = daemon.0.id();
    let phase = |secs: u64| {
        let gateway = wrk_paths(
            &dir,
            "gateway",
            &base,
            std::slice::from_ref(&file_path),
            secs,
        );
        let records = wrk_paths(&dir, "records", &base, &record_paths, secs);
        let stop = Arc::new(AtomicBool::new(false));
        let writer = rt.spawn(write_until(client.clone(), stop.clone()));
        let mut peak = 0;
        let mut series = Vec::new();
        let begin = Instant::now();
        let until = begin + Duration::from_secs(secs);
        while Instant::now() < until {
            let now = rss(pid);
            peak = peak.max(now);
            let at = begin.elapsed().as_secs();
            if series.last().is_none_or(|(t, _)| at >= t + SAMPLE_EVERY) {
                series.push((at, now));
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        series.push((secs, rss(pid)));
        let (g, r) = (wrk_result(gateway), wrk_result(records));
        stop.store(true, Ordering::Relaxed);
        let w = rt.block_on(writer).unwrap();
        (g, r, w, peak, series)
    };
    eprintln!("warm-up: {warmup} s");
    let _ = phase(warmup);
    let rss_warm = rss(pid);
    eprintln!("load: {secs} s (RSS after warm-up {} MiB)", mib(rss_warm));
    let (g, r, mut w, peak, series) = phase(secs);
    let rss_end = rss(pid);
    w.latencies.sort();
    let writes = w.latencies.len() as u64;

    println!(
        "\n### Sustained load: {secs} s after {warmup} s of warm-up (wrk -t1 -c8 per read stream, one writer)\n"
    );
    println!("| stream | requests | requests/s | p50 ms | p99 ms | errors |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, x) in [
        ("gateway `/ipfs/{cid}` (1 MiB file)", g),
        ("record reads `/api/v1/records/{id}`", r),
    ] {
        println!(
            "| {name} | {:.0} | {:.0} | {} | {} | {} |",
            x.rps * secs as f64,
            x.rps,
            ms(x.p50),
            ms(x.p99),
            x.errors
        );
    }
    println!(
        "| writer `POST /api/v1/records` | {writes} | {:.0} | {} | {} | {} |",
        writes as f64 / secs as f64,
        ms(percentile(&w.latencies, 0.50)),
        ms(percentile(&w.latencies, 0.99)),
        w.errors
    );
    println!("\n| daemon RSS | MiB |\n|---|---:|");
    println!("| after warm-up | {} |", mib(rss_warm));
    println!("| peak during the run | {} |", mib(peak));
    println!("| at the end | {} |", mib(rss_end));
    let line: Vec<String> = series
        .iter()
        .map(|(t, b)| format!("{t} s: {}", mib(*b)))
        .collect();
    println!("\nRSS (MiB) through the run: {}", line.join(", "));
    let grew = rss_end.saturating_sub(rss_warm);
    let errors = g.errors + r.errors + w.errors;
    if let Some(e) = &w.first_error {
        println!("\nfirst write error: {e}");
    }
    println!(
        "\nerrors: {errors} (target 0): {}; RSS growth {} MiB (target ≤ {} MiB): {}",
        met(errors == 0),
        mib(grew),
        mib(RSS_SLACK),
        met(grew <= RSS_SLACK)
    );
    drop(daemon);
    if errors > 0 || grew > RSS_SLACK {
        std::process::exit(1);
    }
}

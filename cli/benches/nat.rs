//! A file between two homes behind NAT routers, after hole punching, against the same file
//! between two hosts on the open network (network namespaces; root only):
//! `cargo bench -p mnode --bench nat`. Prints a table; `BENCHMARKS.md` has the figures.
//!
//! Both pairs are on the same simulated internet (a bridge), with the same daemons and the
//! same commands: `mnode fetch CID` of a 64 MiB file (`MNODE_BENCH_MIB`), best of 3
//! (`MNODE_BENCH_RUNS`), each run a new file. Behind the routers the pair first meets through a
//! relay and punches a hole; the figure counts the bytes that came direct and relayed.

#![allow(clippy::unwrap_used)]

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use mnode_bench_support::{
    bench_dir, env_num, met,
    netns::{Daemon, Nat, Net, within},
};

const MNODE: &str = env!("CARGO_BIN_EXE_mnode");

fn start(dir: &Path, ns: &str, name: &str, settings: &[String]) -> Daemon {
    Daemon::start(Path::new(MNODE), dir, ns, name, settings)
}

/// A fresh file of `size` bytes.
fn file(dir: &Path, run: u64, size: u64) -> PathBuf {
    let path = dir.join(format!("nat-{run}.bin"));
    let mut data = vec![0u8; usize::try_from(size).unwrap()];
    let mut h = blake3::Hasher::new();
    h.update(&run.to_le_bytes());
    h.finalize_xof().fill(&mut data);
    std::fs::write(&path, &data).unwrap();
    path
}

/// Best of `runs` fetches by `to` of a new file added on `from`; the bytes that came direct
/// and relayed over all runs.
fn fetches(
    dir: &Path,
    from: &Daemon,
    to: &Daemon,
    size: u64,
    runs: u64,
    first: u64,
) -> (Duration, u64, u64) {
    let mut best = Duration::MAX;
    let before = to.received();
    for run in first..first + runs {
        let path = file(dir, run, size);
        let cid = from.json(&["add", path.to_str().unwrap()])[0]["cid"]
            .as_str()
            .unwrap()
            .to_owned();
        let start = Instant::now();
        let v = to.json(&["fetch", &cid]);
        best = best.min(start.elapsed());
        assert_eq!(v["size"], size);
        std::fs::remove_file(&path).unwrap();
    }
    let after = to.received();
    (best, after.0 - before.0, after.1 - before.1)
}

fn main() {
    if !Net::available() {
        return;
    }
    let dir = bench_dir().join("nat");
    std::fs::create_dir_all(&dir).unwrap();
    let size = env_num("MNODE_BENCH_MIB", 64) << 20;
    let runs = env_num("MNODE_BENCH_RUNS", 3);
    let mut net = Net::new();

    // Two hosts on the open network.
    let p_ns = net.public("p", "203.0.113.41");
    let q_ns = net.public("q", "203.0.113.42");
    let p = start(&dir, &p_ns, "p", &[]);
    let q = start(&dir, &q_ns, "q", &[]);
    q.json(&[
        "connect",
        &format!("/ip4/203.0.113.41/tcp/4001/p2p/{}", p.peer_id()),
    ]);
    let (open, _, _) = fetches(&dir, &p, &q, size, runs, 0);

    // Two homes behind cone NATs, a relay between them.
    let relay_ns = net.public("relay", "203.0.113.10");
    let relay = start(
        &dir,
        &relay_ns,
        "relay",
        &[
            "network.relay_server=true".to_owned(),
            r#"network.external_addresses=["/ip4/203.0.113.10/tcp/4001","/ip4/203.0.113.10/udp/4001/quic-v1"]"#.to_owned(),
            "network.relay_limits.iroh_listen=203.0.113.10:3340".to_owned(),
        ],
    );
    let home = [
        format!(
            r#"network.relays=["/ip4/203.0.113.10/tcp/4001/p2p/{}"]"#,
            relay.peer_id()
        ),
        r#"network.relay_urls=["http://203.0.113.10:3340"]"#.to_owned(),
    ];
    let (a_ns, _) = net.home("a", "203.0.113.21", Nat::Cone);
    let (b_ns, _) = net.home("b", "203.0.113.22", Nat::Cone);
    let a = start(&dir, &a_ns, "a", &home);
    let b = start(&dir, &b_ns, "b", &home);
    let b_id = b.peer_id();
    let b_addr = b.relayed_addr();
    a.json(&["connect", &b_addr]);
    // Measured from the dial through the relay.
    let to_direct = within(Duration::from_secs(60), || {
        a.peer(&b_id).is_some_and(|p| p["relayed"] == false)
    })
    .expect("no hole was punched");
    // A first small file sets up the file endpoint's punched path.
    fetches(&dir, &b, &a, 1 << 20, 1, 100);
    let (homes, direct, relayed) = fetches(&dir, &b, &a, size, runs, 200);

    let mib = size as f64 / f64::from(1 << 20);
    let rate = |d: Duration| mib / d.as_secs_f64();
    let ratio = open.as_secs_f64() / homes.as_secs_f64();
    println!("| run | s | MiB/s | × reference |");
    println!("|---|---:|---:|---:|");
    println!(
        "| `mnode fetch` {mib} MiB, two hosts on the open network | {:.3} | {:.0} | – |",
        open.as_secs_f64(),
        rate(open)
    );
    println!(
        "| `mnode fetch` {mib} MiB, two homes behind NAT, after hole punching | {:.3} | {:.0} | {ratio:.2} (target ≥ 0.80, {}) |",
        homes.as_secs_f64(),
        rate(homes),
        met(ratio >= 0.8)
    );
    println!(
        "\nlibp2p connection direct {:.0} ms after the relayed dial; file bytes over {runs} runs: {} MiB direct, {} KiB relayed",
        to_direct.as_secs_f64() * 1e3,
        direct >> 20,
        relayed >> 10
    );
}

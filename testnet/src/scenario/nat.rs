//! `nat`: home nodes behind NAT routers and public relays, on simulated networks (network
//! namespaces, veth links, iptables MASQUERADE; root only). Every home holds a slot on every
//! relay; each home then connects to the next `--peers` homes behind other routers through a
//! relay, by their relayed addresses. Reports how many of those connections a hole punch made
//! direct, how long that took, and how a file moved between each pair: the bytes that came
//! straight and through a relay. The per-node bytes put the relays first.
//!
//! Nodes are `mnode daemon` processes in their namespaces, driven with the `mnode` CLI run in
//! the same namespace (`ip netns exec`), as a person at that home would.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use mnode_bench_support::netns::{Daemon, Nat as NatKind, Net, within};
use serde::Serialize;

use super::ProcessArgs;
use crate::{Report, report::Memory};

/// Parameters of `nat`.
#[derive(Debug, Clone, Serialize, clap::Args)]
pub struct Nat {
    /// Home nodes, spread evenly over the routers.
    #[arg(long, default_value_t = 20)]
    pub homes: usize,
    /// Home routers (cone NATs: each keeps a LAN socket's port for every destination).
    #[arg(long, default_value_t = 10)]
    pub routers: usize,
    /// Of those routers, how many are symmetric NATs (a new port per destination: no hole can
    /// be punched to the homes behind them).
    #[arg(long, default_value_t = 0)]
    pub symmetric: usize,
    /// Public nodes running relays.
    #[arg(long, default_value_t = 2)]
    pub relays: usize,
    /// Homes each home connects to (the next ones behind other routers).
    #[arg(long, default_value_t = 2)]
    pub peers: usize,
    /// Size of the file each pair moves once connected, MiB (0: none).
    #[arg(long, default_value_t = 4)]
    pub file_mib: usize,
    /// Seconds to wait between the hole punches and the files (people fetch later, over
    /// connections that may have gone idle and closed meanwhile).
    #[arg(long, default_value_t = 0)]
    pub later_secs: u64,
    /// The daemons' `log.level` (default: info, and debug for mnode's node crate).
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Where to copy every daemon's log at the end (`NAME.log`), for a failure to be read.
    #[arg(long, value_name = "DIR")]
    #[serde(skip)]
    pub logs: Option<PathBuf>,
    /// The `mnode` binary (default: the one next to this program).
    #[arg(long, value_name = "PATH")]
    #[serde(skip)]
    pub mnode: Option<PathBuf>,
}

impl Nat {
    /// The small size CI runs: 4 homes behind 2 routers, 1 relay.
    pub fn small() -> Self {
        Self {
            homes: 4,
            routers: 2,
            symmetric: 0,
            relays: 1,
            peers: 1,
            file_mib: 2,
            later_secs: 0,
            log_level: None,
            logs: None,
            mnode: None,
        }
    }
}

/// Runs `nat`.
pub async fn run(p: &Nat) -> anyhow::Result<Report> {
    let p = p.clone();
    tokio::task::spawn_blocking(move || run_blocking(&p)).await?
}

fn run_blocking(p: &Nat) -> anyhow::Result<Report> {
    if !Net::available() {
        bail!("the nat scenario makes network namespaces: run it as root, with ip and iptables");
    }
    if p.homes < 2 || p.routers == 0 || p.relays == 0 {
        bail!("nat needs at least 2 homes, 1 router and 1 relay");
    }
    let mnode = ProcessArgs {
        processes: true,
        mnode: p.mnode.clone(),
    }
    .binary()?
    .context("no mnode binary")?;
    let started = Instant::now();
    let temp = tempfile::tempdir()?;
    let mut net = Net::new();
    let mut relays = Vec::new();
    let log_setting = p.log_level.as_ref().map(|l| format!("log.level={l}"));
    for r in 0..p.relays {
        let ip = format!("203.0.113.{}", 10 + r);
        let ns = net.public(&format!("relay{r}"), &ip);
        let mut settings = vec![
            "network.relay_server=true".to_owned(),
            format!(
                r#"network.external_addresses=["/ip4/{ip}/tcp/4001","/ip4/{ip}/udp/4001/quic-v1"]"#
            ),
            format!("network.relay_limits.iroh_listen={ip}:3340"),
        ];
        settings.extend(log_setting.clone());
        let node = Daemon::start(&mnode, temp.path(), &ns, &format!("relay{r}"), &settings);
        relays.push((ip, node));
    }
    let relay_addrs = serde_json::to_string(
        &relays
            .iter()
            .map(|(ip, n)| format!("/ip4/{ip}/tcp/4001/p2p/{}", n.peer_id()))
            .collect::<Vec<_>>(),
    )?;
    let relay_urls = serde_json::to_string(
        &relays
            .iter()
            .map(|(ip, _)| format!("http://{ip}:3340"))
            .collect::<Vec<_>>(),
    )?;
    let mut home_settings = vec![
        format!("network.relays={relay_addrs}"),
        format!("network.relay_urls={relay_urls}"),
        format!("network.bootstrap={relay_addrs}"),
    ];
    home_settings.extend(log_setting);
    let routers: Vec<_> = (0..p.routers)
        .map(|r| {
            let kind = if r < p.symmetric {
                NatKind::Symmetric
            } else {
                NatKind::Cone
            };
            net.router(&format!("r{r}"), &format!("203.0.113.{}", 100 + r), kind)
        })
        .collect();
    let mut homes = Vec::new();
    for h in 0..p.homes {
        let router = h % p.routers;
        let (ns, _) = net.behind(&routers[router], &format!("h{h}"));
        // Homes on one LAN listen on ports of their own, as Linux's NAT keeps a port only
        // while no other host on the LAN uses it (a second node on the same port would look
        // like one behind a symmetric NAT).
        let port = 4001 + 10 * (h / p.routers);
        let mut settings = home_settings.clone();
        settings.push(format!(
            r#"network.listen=["/ip4/0.0.0.0/tcp/{port}","/ip4/0.0.0.0/udp/{port}/quic-v1"]"#
        ));
        settings.push(format!("network.blobs_listen=0.0.0.0:{}", port + 1));
        let home = Daemon::start(&mnode, temp.path(), &ns, &format!("h{h}"), &settings);
        let id = home.peer_id();
        homes.push((router, home, id));
    }

    // Every home's relayed address, once its slots are taken.
    let relayed: Vec<String> = homes.iter().map(|(_, h, _)| h.relayed_addr()).collect();

    // Each home dials the next homes behind other routers, all at once, through the relays.
    let mut pairs = Vec::new();
    for i in 0..homes.len() {
        let mut j = i;
        let mut added = 0;
        while added < p.peers.min(homes.len() - 1) {
            j = (j + 1) % homes.len();
            if j == i {
                break;
            }
            if homes[j].0 != homes[i].0 && !pairs.contains(&(j, i)) {
                pairs.push((i, j));
                added += 1;
            }
        }
    }
    let dialled = Instant::now();
    let mut problems = Vec::new();
    for &(i, j) in &pairs {
        if let Err(e) = homes[i].1.cli(&["connect", &relayed[j]]) {
            problems.push(format!("h{i} → h{j}: {e}"));
        }
    }
    let mut to_direct: Vec<Option<Duration>> = vec![None; pairs.len()];
    within(Duration::from_secs(60), || {
        for (k, &(i, j)) in pairs.iter().enumerate() {
            if to_direct[k].is_some() {
                continue;
            }
            let direct = homes[i]
                .1
                .peer(&homes[j].2)
                .is_some_and(|q| q["relayed"] == false);
            if direct {
                to_direct[k] = Some(dialled.elapsed());
            }
        }
        to_direct.iter().all(Option::is_some)
    });

    std::thread::sleep(Duration::from_secs(p.later_secs));
    // A file across each pair: from j's home to i's.
    let (mut direct_bytes, mut relayed_bytes) = (0u64, 0u64);
    let mut file_secs = Vec::new();
    if p.file_mib > 0 {
        for (k, &(i, j)) in pairs.iter().enumerate() {
            let path = temp.path().join(format!("file-{k}.bin"));
            let mut data = vec![0u8; p.file_mib << 20];
            let mut h = blake3::Hasher::new();
            h.update(&(k as u64).to_le_bytes());
            h.finalize_xof().fill(&mut data);
            std::fs::write(&path, &data)?;
            let path_text = path.to_str().unwrap_or_default();
            let cid = homes[j]
                .1
                .cli(&["add", path_text])
                .map_err(anyhow::Error::msg)?[0]["cid"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let before = homes[i].1.received();
            let t = Instant::now();
            match homes[i]
                .1
                .cli_within(Duration::from_secs(60), &["fetch", &cid])
            {
                Ok(_) => file_secs.push(t.elapsed()),
                Err(e) => problems.push(format!("file h{j} → h{i}: {e}")),
            }
            let after = homes[i].1.received();
            direct_bytes += after.0.saturating_sub(before.0);
            relayed_bytes += after.1.saturating_sub(before.1);
        }
    }

    let mut report = Report::bare(
        "nat",
        homes.len() + relays.len(),
        &format!(
            "{} homes behind {} routers, {} relays",
            p.homes, p.routers, p.relays
        ),
        pairs.len(),
        p,
        Memory::default(),
    );
    let times: Vec<Duration> = to_direct.iter().flatten().copied().collect();
    let cone_pairs: Vec<usize> = (0..pairs.len())
        .filter(|&k| homes[pairs[k].0].0 >= p.symmetric && homes[pairs[k].1].0 >= p.symmetric)
        .collect();
    let cone_direct = cone_pairs
        .iter()
        .filter(|&&k| to_direct[k].is_some())
        .count();
    let share = if cone_pairs.is_empty() {
        1.0
    } else {
        cone_direct as f64 / cone_pairs.len() as f64
    };
    report.figure("pairs", pairs.len() as f64);
    report.figure("pairs_direct", times.len() as f64);
    report.figure("cone_pairs", cone_pairs.len() as f64);
    report.figure("cone_pairs_direct_share", share);
    if !times.is_empty() {
        report.latencies(&times);
        report.figure(
            "time_to_direct_p50_ms",
            crate::report::Percentiles::of(&times).p50,
        );
    }
    report.figure("file_bytes_direct", direct_bytes as f64);
    report.figure("file_bytes_relayed", relayed_bytes as f64);
    if !file_secs.is_empty() {
        report.figure(
            "file_seconds_p50",
            crate::report::Percentiles::of(&file_secs).p50 / 1000.0,
        );
    }
    report.target(
        "home-to-home connections behind cone NATs that became direct ≥ 90 %",
        share,
        share >= 0.9,
    );
    // What each node moved over libp2p: a relay's bytes are the circuits it carried.
    let all = relays
        .iter()
        .map(|(_, d)| d)
        .chain(homes.iter().map(|(_, d, _)| d));
    for (node, d) in all.enumerate() {
        let traffic = &d.json(&["id"])["traffic"];
        report.bytes.push(crate::report::NodeBytes {
            node,
            p2p_sent: traffic["sent"].as_u64().unwrap_or(0),
            p2p_received: traffic["received"].as_u64().unwrap_or(0),
            file_bytes_served: 0,
        });
    }
    let relayed_p2p: u64 = report.bytes[..relays.len()]
        .iter()
        .map(|b| b.p2p_sent)
        .sum();
    report.figure("relay_p2p_bytes_sent", relayed_p2p as f64);
    report.problems = problems;
    if let Some(dir) = &p.logs {
        std::fs::create_dir_all(dir)?;
        let named = relays
            .iter()
            .enumerate()
            .map(|(r, (_, d))| (format!("relay{r}"), d))
            .chain(
                homes
                    .iter()
                    .enumerate()
                    .map(|(h, (_, d, _))| (format!("h{h}"), d)),
            );
        let mut ids = String::new();
        for (name, d) in named {
            std::fs::write(dir.join(format!("{name}.log")), d.log())?;
            ids.push_str(&format!("{name} {}\n", d.peer_id()));
        }
        std::fs::write(dir.join("peer-ids.txt"), ids)?;
    }
    report.seconds = started.elapsed().as_secs_f64();
    drop(homes);
    drop(relays);
    drop(net);
    Ok(report)
}

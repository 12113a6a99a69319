//! `hostile_peer`: honest authors post at a steady rate, first undisturbed (the baseline), then
//! while a hostile peer linked to some nodes floods them with invalid and oversized messages.
//! Honest delivery must stay within 2× the baseline latency, and every node the hostile peer
//! reached must score it down and cut it off.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Authors, NetArgs, all_delivered, deliveries, node_bytes, post, publish_at_rate};
use crate::{HostilePeer, Ledger, Report, topology::Topology};

/// Parameters of `hostile_peer`.
#[derive(Debug, Clone, Serialize, clap::Args)]
pub struct Hostile {
    /// The testnet.
    #[command(flatten)]
    pub net: NetArgs,
    /// Authors.
    #[arg(long, default_value_t = 2)]
    pub authors: usize,
    /// Posts in each phase (baseline, then under attack).
    #[arg(long, default_value_t = 200)]
    pub posts: usize,
    /// Posts per second.
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Nodes the hostile peer links to.
    #[arg(long, default_value_t = 4)]
    pub victims: usize,
    /// Invalid messages per second it tries to send.
    #[arg(long, default_value_t = 1000)]
    pub flood: u64,
}

impl Hostile {
    /// The small size CI runs: `n` nodes, 60 posts a phase.
    pub fn small(n: usize) -> Self {
        Self {
            net: NetArgs::small(n),
            authors: 2,
            posts: 60,
            rate: 30.0,
            victims: 3,
            flood: 1000,
        }
    }
}

/// How many nodes rejected a message from `peer` since the `from`th rejection.
fn reached(l: &Ledger, from: usize, peer: libp2p::PeerId) -> usize {
    l.rejected[from..]
        .iter()
        .filter(|r| r.1 == peer)
        .map(|r| r.0)
        .collect::<std::collections::HashSet<usize>>()
        .len()
}

/// The longest each phase waits for deliveries, the attack and the cut-offs (they end as
/// soon as what they wait for holds; a slow debug build on a loaded machine needs the room).
const WAIT: Duration = Duration::from_secs(90);

/// Runs `hostile_peer`.
pub async fn run(p: &Hostile) -> anyhow::Result<Report> {
    let (net, memory) = p.net.spawn(Topology::RandomRegular { degree: 4 }).await?;
    let n = net.len();
    let authors = Authors::follow_all(&net, p.authors).await?;
    let everyone: Vec<usize> = (0..n).collect();

    // Baseline.
    let start = Instant::now();
    let base = publish_at_rate(&authors.publishers, p.posts, p.rate, |k| authors.post(k)).await?;
    net.wait_until(WAIT, |l| all_delivered(l, &base, &everyone))
        .await;

    // Under attack: the hostile peer links to nodes that do not publish, spread out.
    let victims: Vec<usize> = (0..n)
        .filter(|i| !authors.nodes.contains(i))
        .take(p.victims.max(1))
        .collect();
    let mut addrs = Vec::new();
    for &v in &victims {
        let info = net.node(v).info().await?;
        let a = info
            .addrs
            .iter()
            .find(|a| a.contains("/tcp/"))
            .ok_or_else(|| anyhow::anyhow!("node {v} has no TCP address"))?;
        addrs.push(a.parse()?);
    }
    let genuine = post(&authors.keys[0], u64::MAX, None, None);
    let rejected_before = net.ledger().rejected.len();
    let hostile = HostilePeer::spawn(&authors.topics, addrs, &genuine, p.flood)?;
    let hostile_id = hostile.peer_id();
    // The attack is under way once a victim has rejected something.
    let attacked = net
        .wait_until(WAIT, |l| l.rejected.len() > rejected_before)
        .await;
    let attack_start = Instant::now();
    let under = publish_at_rate(&authors.publishers, p.posts, p.rate, |k| {
        authors.post(p.posts + k)
    })
    .await?;
    net.wait_until(WAIT, |l| all_delivered(l, &under, &everyone))
        .await;
    // Each victim cuts it off once its score falls below the graylist threshold.
    net.wait_until(WAIT, |l| {
        l.banned.iter().filter(|b| b.1 == hostile_id).count()
            >= reached(l, rejected_before, hostile_id)
    })
    .await;
    let stats = hostile.stop().await?;
    let seconds = start.elapsed().as_secs_f64();

    let mut report = Report::new("hostile_peer", &net, p, memory);
    report.seconds = seconds;
    let (d0, d1, rejected, banned_by, reached) = {
        let l = net.ledger();
        let d0 = deliveries(&l, &base, &everyone, start);
        let d1 = deliveries(&l, &under, &everyone, attack_start);
        let rejected = l.rejected[rejected_before..]
            .iter()
            .filter(|r| r.1 == hostile_id)
            .count();
        let mut banned_by: Vec<(usize, f64)> = l
            .banned
            .iter()
            .filter(|b| b.1 == hostile_id)
            .map(|b| (b.0, b.2))
            .collect();
        banned_by.sort_by_key(|b| b.0);
        (
            d0,
            d1,
            rejected,
            banned_by,
            reached(&l, rejected_before, hostile_id),
        )
    };
    let mut still_linked = 0;
    for &(v, _) in &banned_by {
        let id = hostile_id.to_string();
        if net.node(v).peers().await?.iter().any(|p| p.peer_id == id) {
            still_linked += 1;
        }
    }
    let l0 = crate::report::Percentiles::of(&d0.latencies);
    let l1 = crate::report::Percentiles::of(&d1.latencies);
    report.latencies(&d1.latencies);
    report.arrivals(
        d0.arrivals.iter().chain(&d1.arrivals).copied().collect(),
        d0.expected + d1.expected,
    );
    report.figure("baseline p50 ms", l0.p50);
    report.figure("baseline p99 ms", l0.p99);
    report.figure("under attack p50 ms", l1.p50);
    report.figure("under attack p99 ms", l1.p99);
    report.figure("baseline delivery ratio", d0.ratio());
    report.figure("under attack delivery ratio", d1.ratio());
    report.figure("invalid messages the hostile peer sent", stats.sent as f64);
    report.figure("invalid messages rejected by the victims", rejected as f64);
    report.figure("victims", victims.len() as f64);
    report.figure("victims that received invalid messages", reached as f64);
    report.figure("victims that cut it off", banned_by.len() as f64);
    report.figure(
        "lowest score a victim gave it",
        banned_by.iter().map(|b| b.1).fold(0.0, f64::min),
    );
    let ratio = l1.p99 / l0.p99.max(1e-3);
    report.figure("p99 under attack / baseline", ratio);
    report.target("attack started", f64::from(u8::from(attacked)), attacked);
    report.target(
        "delivery ratio = 1, both phases",
        d1.ratio().min(d0.ratio()),
        d0.delivered == d0.expected && d1.delivered == d1.expected,
    );
    report.target("p99 under attack ≤ 2 × baseline", ratio, ratio <= 2.0);
    // A victim cuts it off once enough invalid messages reached it: every one they reached
    // must have, and none may still be linked to it.
    report.target(
        "every victim it reached scored it down and cut it off",
        banned_by.len() as f64,
        reached > 0 && banned_by.len() >= reached && still_linked == 0,
    );
    report.bytes = node_bytes(&net, &Default::default()).await?;
    net.shutdown().await?;
    Ok(report)
}

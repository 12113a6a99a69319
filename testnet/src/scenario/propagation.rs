//! `propagation`: authors post at a set rate; every node follows every author; each post must
//! reach every follower. Reports delivery latency percentiles and the delivery ratio.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::{
    Authors, NetArgs, ProcessArgs, all_delivered, deliveries, node_bytes, publish_at_rate,
};
use crate::{Report, topology::Topology};

/// Parameters of `propagation`.
#[derive(Debug, Clone, Serialize, clap::Args)]
pub struct Propagation {
    #[command(flatten)]
    /// The testnet.
    pub net: NetArgs,
    /// Daemon processes instead of in-process nodes (latency then includes the HTTP publish
    /// and the event stream's hop).
    #[command(flatten)]
    pub procs: ProcessArgs,
    /// Authors, each posting from its own node (spread over the testnet).
    #[arg(long, default_value_t = 3)]
    pub authors: usize,
    /// Posts in all.
    #[arg(long, default_value_t = 200)]
    pub posts: usize,
    /// Posts per second, all authors together.
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// The p99 latency target, in ms.
    #[arg(long, default_value_t = 250.0)]
    pub p99_target_ms: f64,
}

impl Propagation {
    /// The small size CI runs: `n` nodes, 60 posts at 30/s.
    pub fn small(n: usize) -> Self {
        Self {
            net: NetArgs::small(n),
            procs: ProcessArgs::default(),
            authors: 2,
            posts: 60,
            rate: 30.0,
            p99_target_ms: 250.0,
        }
    }
}

/// Runs `propagation`.
pub async fn run(p: &Propagation) -> anyhow::Result<Report> {
    let (net, memory) = p
        .net
        .spawn_with(Topology::RandomRegular { degree: 4 }, &p.procs)
        .await?;
    let n = net.len();
    let authors = Authors::follow_all(&net, p.authors).await?;

    let start = Instant::now();
    let cids = publish_at_rate(&authors.publishers, p.posts, p.rate, |k| authors.post(k)).await?;
    let everyone: Vec<usize> = (0..n).collect();
    net.wait_until(Duration::from_secs(30), |l| {
        all_delivered(l, &cids, &everyone)
    })
    .await;
    let seconds = start.elapsed().as_secs_f64();

    let mut report = Report::new("propagation", &net, p, memory);
    report.seconds = seconds;
    let d = deliveries(&net.ledger(), &cids, &everyone, start);
    report.latencies(&d.latencies);
    report.arrivals(d.arrivals.clone(), d.expected);
    report.figure("posts", cids.len() as f64);
    report.figure("deliveries expected", d.expected as f64);
    report.figure("deliveries", d.delivered as f64);
    report.figure("delivered by catch-up", d.via_sync as f64);
    report.figure("delivery ratio", d.ratio());
    report.target("delivery ratio = 1", d.ratio(), d.delivered == d.expected);
    let p99 = report.latency_ms.map_or(0.0, |l| l.p99);
    report.target(
        &format!("p99 latency ≤ {} ms", p.p99_target_ms),
        p99,
        p99 <= p.p99_target_ms,
    );
    report.bytes = node_bytes(&net, &Default::default()).await?;
    net.shutdown().await?;
    Ok(report)
}

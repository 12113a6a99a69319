//! `churn`: authors post at a steady rate while, every interval, X% of the other nodes stop
//! and start again. Reports the delivery ratio (what a restarted node missed must come back by
//! catch-up) and the latency percentiles. With `--processes` every node is a daemon process
//! and a restart is kill -9, as a crash.

use std::time::{Duration, Instant};

use rand::{SeedableRng as _, rngs::ChaCha8Rng, seq::SliceRandom as _};
use serde::Serialize;

use super::{
    Authors, NetArgs, ProcessArgs, all_delivered, deliveries, node_bytes, publish_at_rate,
};
use crate::{Report, topology::Topology};

/// Parameters of `churn`.
#[derive(Debug, Clone, Serialize, clap::Args)]
pub struct Churn {
    /// The testnet.
    #[command(flatten)]
    pub net: NetArgs,
    /// Daemon processes, restarted by kill -9, instead of in-process nodes stopped cleanly.
    #[command(flatten)]
    pub procs: ProcessArgs,
    /// Authors (their nodes stay up).
    #[arg(long, default_value_t = 2)]
    pub authors: usize,
    /// Per cent of the other nodes restarted each interval.
    #[arg(long, default_value_t = 20.0)]
    pub percent: f64,
    /// Seconds between restarts.
    #[arg(long, default_value_t = 5.0)]
    pub interval: f64,
    /// How long a restarted node stays down, ms.
    #[arg(long, default_value_t = 1000)]
    pub down_ms: u64,
    /// Seconds the run lasts.
    #[arg(long, default_value_t = 30.0)]
    pub seconds: f64,
    /// Posts per second, all authors together.
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
}

impl Churn {
    /// The small size CI runs: `n` nodes, 6 s, a quarter restarted every 2 s.
    pub fn small(n: usize) -> Self {
        Self {
            net: NetArgs::small(n),
            procs: ProcessArgs::default(),
            authors: 2,
            percent: 25.0,
            interval: 2.0,
            down_ms: 500,
            seconds: 6.0,
            rate: 10.0,
        }
    }
}

/// Runs `churn`.
pub async fn run(p: &Churn) -> anyhow::Result<Report> {
    let (mut net, memory) = p
        .net
        .spawn_with(Topology::RandomRegular { degree: 4 }, &p.procs)
        .await?;
    let kill = net.is_processes();
    let n = net.len();
    let authors = Authors::follow_all(&net, p.authors).await?;

    let posts = (p.seconds * p.rate).round().max(1.0) as usize;
    let start = Instant::now();
    let rate = p.rate;
    let mut others: Vec<usize> = (0..n).filter(|i| !authors.nodes.contains(i)).collect();
    let publishing = tokio::spawn(async move {
        publish_at_rate(&authors.publishers, posts, rate, |k| authors.post(k)).await
    });
    let per_round = ((others.len() as f64 * p.percent / 100.0).round() as usize).min(others.len());
    let mut rng = ChaCha8Rng::seed_from_u64(net.seed());
    let mut restarts = 0;
    let mut down_time = Duration::ZERO;
    let interval = Duration::from_secs_f64(p.interval.max(0.1));
    let mut next = start + interval;
    while next + Duration::from_millis(p.down_ms) < start + Duration::from_secs_f64(p.seconds) {
        tokio::time::sleep_until(next.into()).await;
        others.shuffle(&mut rng);
        let chosen: Vec<usize> = others[..per_round].to_vec();
        let t = Instant::now();
        for &i in &chosen {
            if kill {
                net.kill(i).await?;
            } else {
                net.stop(i).await?;
            }
        }
        tokio::time::sleep(Duration::from_millis(p.down_ms)).await;
        for &i in &chosen {
            net.start(i).await?;
        }
        down_time += t.elapsed();
        restarts += chosen.len();
        next += interval;
    }
    let cids = publishing.await??;
    let everyone: Vec<usize> = (0..n).collect();
    // A post that reached a restarted node by neither gossip nor the catch-ups at connect is
    // brought by its periodic sync, which first runs a sync interval after the restart: wait
    // for that, with room for a loaded machine.
    let sync_interval = mnode_node::config::NetworkConfig::default().sync_interval_secs;
    let complete = net
        .wait_until(Duration::from_secs(sync_interval + 30), |l| {
            all_delivered(l, &cids, &everyone)
        })
        .await;
    let seconds = start.elapsed().as_secs_f64();

    let mut report = Report::new("churn", &net, p, memory);
    report.seconds = seconds;
    let d = deliveries(&net.ledger(), &cids, &everyone, start);
    report.latencies(&d.latencies);
    report.arrivals(d.arrivals.clone(), d.expected);
    report.figure("posts", cids.len() as f64);
    report.figure("restarts", restarts as f64);
    report.figure(
        "restarts by kill -9",
        if kill { restarts as f64 } else { 0.0 },
    );
    report.figure("nodes restarted per interval", per_round as f64);
    report.figure("deliveries expected", d.expected as f64);
    report.figure("deliveries", d.delivered as f64);
    report.figure("delivered by catch-up", d.via_sync as f64);
    report.figure(
        "deliveries found in a repo at restart, unreported",
        net.ledger().found_at_restart.len() as f64,
    );
    report.figure("delivery ratio", d.ratio());
    report.target("delivery ratio = 1", d.ratio(), complete);
    report.bytes = node_bytes(&net, &Default::default()).await?;
    net.shutdown().await?;
    Ok(report)
}

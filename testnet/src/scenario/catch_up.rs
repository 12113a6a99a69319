//! `catch_up`: one node is stopped while K posts go into a forum branch, then started again;
//! reports the time until it holds all K and the bytes that moved for it against the bytes of
//! the records it missed.

use std::time::{Duration, Instant};

use mnode_dag::Record;
use mnode_protocols::GossipTopic;
use serde::Serialize;

use super::{NetArgs, forum_and_branch, node_bytes, post};
use crate::{Report, topology::Topology};

/// Parameters of `catch_up`.
#[derive(Debug, Clone, Serialize, clap::Args)]
pub struct CatchUp {
    /// The testnet.
    #[command(flatten)]
    pub net: NetArgs,
    /// Posts published into the branch while the node is away.
    #[arg(long, default_value_t = 10_000)]
    pub posts: usize,
    /// Posts per publish call.
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// The records/s target.
    #[arg(long, default_value_t = 5000.0)]
    pub rate_target: f64,
}

impl CatchUp {
    /// The small size CI runs: `n` nodes, 1,000 posts.
    pub fn small(n: usize) -> Self {
        Self {
            net: NetArgs::small(n),
            posts: 1000,
            batch: 250,
            rate_target: 5000.0,
        }
    }
}

/// Runs `catch_up`.
pub async fn run(p: &CatchUp) -> anyhow::Result<Report> {
    let (mut net, memory) = p.net.spawn(Topology::RandomRegular { degree: 3 }).await?;
    let n = net.len();
    anyhow::ensure!(n >= 2, "catch_up needs at least 2 nodes");
    let away = n - 1;
    let (forum, branch) = forum_and_branch(&net.author(0), "Field recordings", "Coast")?;
    let topic = GossipTopic::Branch(branch.id());
    net.follow(topic, 0..n).await?;
    net.wait_subscribed(&[topic], super::settle(&net)).await?;
    net.publish(0, vec![forum, branch.clone()]).await?;

    net.stop(away).await?;
    let writers: Vec<_> = (0..4).map(|a| net.author(a)).collect();
    let records: Vec<Record> = (0..p.posts)
        .map(|i| {
            post(
                &writers[i % writers.len()],
                i as u64,
                Some(branch.id()),
                None,
            )
        })
        .collect();
    let cids: Vec<_> = records.iter().map(Record::cid).collect();
    let missing_bytes: u64 = records.iter().map(|r| r.bytes().len() as u64).sum();
    for chunk in records.chunks(p.batch.max(1)) {
        net.publish(0, chunk.to_vec()).await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The others must hold everything first (gossip may drop some of a burst: catch-up among
    // them fills the gaps), so that what is measured is the returning node alone.
    let online: Vec<usize> = (1..away).collect();
    let mut held = false;
    for _ in 0..12 {
        held = net
            .wait_until(Duration::from_secs(5), |l| {
                cids.iter().all(|c| online.iter().all(|&i| l.holds(i, c)))
            })
            .await;
        if held {
            break;
        }
        for &i in &online {
            net.node(i).sync(topic).await?;
        }
    }
    anyhow::ensure!(held, "the nodes that stayed did not all receive the posts");

    let synced_before = net.ledger().synced.len();
    let start = Instant::now();
    net.start(away).await?;
    let linked = start.elapsed();
    let complete = net
        .wait_until(Duration::from_secs(300), |l| {
            cids.iter().all(|c| l.holds(away, c))
        })
        .await;
    let took = start.elapsed();

    let mut report = Report::new("catch_up", &net, p, memory);
    report.seconds = took.as_secs_f64();
    let (mut stored, mut block_bytes, mut reconcile_bytes, mut exchanges) = (0, 0, 0, 0);
    let mut arrivals = Vec::new();
    {
        let l = net.ledger();
        for &(i, _, s, b, r) in &l.synced[synced_before..] {
            if i == away {
                stored += s;
                block_bytes += b;
                reconcile_bytes += r;
                exchanges += 1;
            }
        }
        for c in &cids {
            if let Some(&(at, _)) = l.stored.get(c).and_then(|m| m.get(&away)) {
                arrivals.push(at.saturating_duration_since(start).as_secs_f64());
            }
        }
    }
    let got = arrivals.len();
    report.arrivals(arrivals, cids.len());
    let received = net.traffic(away).await?.received;
    let rate = got as f64 / took.as_secs_f64();
    report.figure("posts missed", cids.len() as f64);
    report.figure("posts caught up", got as f64);
    report.figure("seconds from restart to holding all", took.as_secs_f64());
    report.figure("seconds from restart to links up", linked.as_secs_f64());
    report.figure("records/s from restart", rate);
    report.figure(
        "records/s once linked",
        got as f64 / (took - linked).as_secs_f64().max(1e-6),
    );
    report.figure("bytes of the missed records", missing_bytes as f64);
    report.figure("catch-up record bytes received", block_bytes as f64);
    report.figure("catch-up reconcile bytes", reconcile_bytes as f64);
    report.figure("catch-up exchanges", exchanges as f64);
    report.figure("records stored by catch-up", stored as f64);
    report.figure("libp2p bytes received by the node", received as f64);
    report.figure(
        "received / missed bytes",
        received as f64 / missing_bytes.max(1) as f64,
    );
    report.target("every missed post held", got as f64, complete);
    report.target(
        &format!("≥ {} records/s from restart", p.rate_target),
        rate,
        rate >= p.rate_target,
    );
    report.bytes = node_bytes(&net, &Default::default()).await?;
    net.shutdown().await?;
    Ok(report)
}

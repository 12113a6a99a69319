//! `partition_heal`: the testnet splits in two for T seconds while both sides post, to their
//! own feeds and to one shared thread, and one person edits the same item on both sides (a
//! version fork); then the cut heals. Reports the time until every node holds every record and
//! the same head for every item, and that nothing was lost.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use mnode_dag::{
    Cid, Link, Record,
    model::social::{Post, Thread},
};
use mnode_protocols::GossipTopic;
use serde::Serialize;

use super::{NetArgs, Publisher, forum_and_branch, node_bytes, post, sign};
use crate::{Report, Testnet, topology::Topology};

/// Parameters of `partition_heal`.
#[derive(Debug, Clone, Serialize, clap::Args)]
pub struct PartitionHeal {
    /// The testnet.
    #[command(flatten)]
    pub net: NetArgs,
    /// Seconds the two sides stay apart.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Posts per second on each side while apart.
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// Seconds after healing by which every node must agree.
    #[arg(long, default_value_t = 5.0)]
    pub target_secs: f64,
}

impl PartitionHeal {
    /// The small size CI runs: `n` nodes apart for 2 s.
    pub fn small(n: usize) -> Self {
        Self {
            net: NetArgs::small(n),
            seconds: 2.0,
            rate: 10.0,
            target_secs: 5.0,
        }
    }
}

/// Every node's view: which of `cids` it lacks, and the heads of `items`.
fn views(net: &Testnet, cids: &[Cid], items: &[Cid]) -> anyhow::Result<(usize, usize)> {
    let mut missing = 0;
    let mut heads: HashSet<Vec<Option<Cid>>> = HashSet::new();
    for i in 0..net.len() {
        let store = net.node(i).repo().store();
        for c in cids {
            if !store.has_block(c)? {
                missing += 1;
            }
        }
        let mut h = Vec::with_capacity(items.len());
        for id in items {
            h.push(store.item(id)?.map(|it| it.head));
        }
        heads.insert(h);
    }
    Ok((missing, heads.len()))
}

/// Runs `partition_heal`.
pub async fn run(p: &PartitionHeal) -> anyhow::Result<Report> {
    let (mut net, memory) = p
        .net
        .spawn(Topology::TwoClusters {
            degree: 3,
            bridges: 1,
        })
        .await?;
    let n = net.len();
    anyhow::ensure!(n >= 2, "partition_heal needs at least 2 nodes");
    let (left, right) = (0, n - 1);
    let (a, b, shared) = (net.author(0), net.author(1), net.author(2));
    let (forum, branch) = forum_and_branch(&a, "Listening room", "New releases")?;
    let thread = sign(
        Record::create(&Thread {
            branch: Link(branch.id()),
            title: "What are you listening to?".into(),
            tags: vec![],
            fork: None,
        }),
        &a,
    )?;
    let note = sign(
        Record::create(&Post {
            text: "Tour dates: to be announced.".into(),
            ..Post::default()
        }),
        &shared,
    )?;
    let topics = [
        GossipTopic::Author(*a.did()),
        GossipTopic::Author(*b.did()),
        GossipTopic::Author(*shared.did()),
        GossipTopic::Thread(thread.id()),
    ];
    for t in topics {
        net.follow(t, 0..n).await?;
    }
    net.wait_subscribed(&topics, super::settle(&net)).await?;
    let setup = vec![forum, branch, thread.clone(), note.clone()];
    let setup_cids: Vec<Cid> = setup.iter().map(Record::cid).collect();
    net.publish(left, setup).await?;
    let everyone: Vec<usize> = (0..n).collect();
    anyhow::ensure!(
        net.wait_until(Duration::from_secs(30), |l| super::all_delivered(
            l,
            &setup_cids,
            &everyone
        ))
        .await,
        "the setup records did not reach every node"
    );

    let side_a: Vec<usize> = (0..n).filter(|&i| Topology::side(n, i) == 0).collect();
    net.partition(&side_a).await?;
    let (pa, pb) = (Publisher::new(&net, left), Publisher::new(&net, right));
    let per_side = (p.seconds * p.rate).ceil().max(1.0) as usize;
    let period = Duration::from_secs_f64(1.0 / p.rate.max(0.001));
    let mut tick = tokio::time::interval(period);
    let mut cids = Vec::new();
    let mut items = vec![thread.id(), note.id()];
    for k in 0..per_side {
        tick.tick().await;
        // Alternately a reply in the shared thread and a post to the author's own feed.
        let in_thread = (k % 2 == 0).then(|| thread.id());
        let ra = post(&a, 2 * k as u64, None, in_thread);
        let rb = post(&b, 2 * k as u64 + 1, None, in_thread);
        if k == per_side / 2 {
            // The same person edits the same note on both sides: two versions, one prev.
            let ea = sign(
                note.update(&Post {
                    text: "Tour dates: Lisbon, Porto.".into(),
                    ..Post::default()
                }),
                &shared,
            )?;
            let eb = sign(
                note.update(&Post {
                    text: "Tour dates: Oslo, Bergen.".into(),
                    ..Post::default()
                }),
                &shared,
            )?;
            cids.extend([ea.cid(), eb.cid()]);
            pa.publish(vec![ea]).await?;
            pb.publish(vec![eb]).await?;
        }
        cids.extend([ra.cid(), rb.cid()]);
        items.extend([ra.id(), rb.id()]);
        pa.publish(vec![ra]).await?;
        pb.publish(vec![rb]).await?;
    }
    let (missing_apart, _) = views(&net, &cids, &items)?;

    let healed = Instant::now();
    net.heal().await?;
    let mut converged = None;
    let mut last = (0, 0);
    while healed.elapsed() < Duration::from_secs(60) {
        last = views(&net, &cids, &items)?;
        if last == (0, 1) {
            converged = Some(healed.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let forks = net
        .node(0)
        .repo()
        .store()
        .item(&note.id())?
        .map_or(0, |it| it.tips.len());

    let mut report = Report::new("partition_heal", &net, p, memory);
    report.seconds = healed.elapsed().as_secs_f64();
    let secs = converged.map_or(f64::INFINITY, |d| d.as_secs_f64());
    report.figure("records published while apart", cids.len() as f64);
    report.figure(
        "record copies missing when the cut healed",
        missing_apart as f64,
    );
    report.figure("seconds from heal to equal heads", secs);
    report.figure("tips of the note edited on both sides", forks as f64);
    report.figure("records lost", last.0 as f64);
    report.target(
        &format!("heads equal within {} s of healing", p.target_secs),
        secs,
        secs <= p.target_secs,
    );
    report.target("no record lost", last.0 as f64, last.0 == 0);
    report.target("the fork is kept (2 tips)", forks as f64, forks == 2);
    if converged.is_none() {
        report.problems.push(format!(
            "after 60 s, {} record copies missing and {} different views of the heads",
            last.0, last.1
        ));
    }
    report.bytes = node_bytes(&net, &Default::default()).await?;
    net.shutdown().await?;
    Ok(report)
}

//! `release_spread`: one node publishes a release of F MiB of files; every node follows its
//! author and fetches the files when the release arrives. Reports the time until the last node
//! holds them and how much each node served: fan-out spreads the load over the nodes that
//! already hold the files instead of pulling everything from the publisher.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use bytes::Bytes;
use mnode_dag::{
    Cid, Link, Record,
    model::{
        TitleData,
        art::Release,
        core::{File, FileKind},
    },
    record::now_ms,
};
use mnode_node::node::NodeError;
use mnode_protocols::GossipTopic;
use serde::Serialize;

use super::{NetArgs, node_bytes};
use crate::{Report, topology::Topology};

/// Parameters of `release_spread`.
#[derive(Debug, Clone, Serialize, clap::Args)]
pub struct ReleaseSpread {
    /// The testnet.
    #[command(flatten)]
    pub net: NetArgs,
    /// Size of the release, MiB, split evenly over its files.
    #[arg(long, default_value_t = 64)]
    pub mib: u64,
    /// Files in the release.
    #[arg(long, default_value_t = 4)]
    pub files: usize,
}

impl ReleaseSpread {
    /// The small size CI runs: `n` nodes, 8 MiB in 2 files.
    pub fn small(n: usize) -> Self {
        Self {
            net: NetArgs::small(n),
            mib: 8,
            files: 2,
        }
    }
}

/// Deterministic incompressible bytes.
fn data(len: usize, seed: u64, i: usize) -> Bytes {
    let mut out = vec![0u8; len];
    let mut h = blake3::Hasher::new();
    h.update(&seed.to_le_bytes())
        .update(&(i as u64).to_le_bytes());
    h.finalize_xof().fill(&mut out);
    Bytes::from(out)
}

/// What one node did: when it held every file, and who served it how much.
struct Fetch {
    node: usize,
    done: Option<Duration>,
    from: Vec<(libp2p::PeerId, u64)>,
    error: Option<String>,
}

/// Runs `release_spread`.
pub async fn run(p: &ReleaseSpread) -> anyhow::Result<Report> {
    let (net, memory) = p.net.spawn(Topology::RandomRegular { degree: 3 }).await?;
    let n = net.len();
    let artist = net.author(0);
    let topic = GossipTopic::Author(*artist.did());
    net.follow(topic, 0..n).await?;
    net.wait_subscribed(&[topic], super::settle(&net)).await?;

    let files = p.files.max(1);
    let each = ((p.mib << 20) / files as u64).max(1) as usize;
    let mut records = Vec::new();
    let mut blobs: Vec<Cid> = Vec::new();
    for i in 0..files {
        let added = net
            .node(0)
            .blobs()
            .add_bytes(data(each, net.seed(), i))
            .await?;
        blobs.push(added.cid);
        records.push(
            Record::create(&File {
                blob: Link(added.cid),
                name: format!("track-{:02}.flac", i + 1),
                media_type: "audio/flac".into(),
                size: added.size,
                kind: FileKind::Audio,
                sealed: None,
                unixfs: None,
            })?
            .at(now_ms())
            .sign(&artist)?,
        );
    }
    let release = Record::create(&Release {
        title: TitleData::new("Tidal Recordings"),
        files: records.iter().map(|r| Link(r.id())).collect(),
        ..Release::default()
    })?
    .at(now_ms())
    .sign(&artist)?;
    let release_cid = release.cid();
    records.push(release);
    let total = each as u64 * files as u64;

    let start = Instant::now();
    let deadline = start + Duration::from_secs(600);
    let mut tasks = Vec::new();
    for i in 1..n {
        let h = net.node(i).clone();
        let blobs = blobs.clone();
        tasks.push(tokio::spawn(async move {
            let mut f = Fetch {
                node: i,
                done: None,
                from: Vec::new(),
                error: None,
            };
            // The release arrives by gossip; then each file, from whichever peers hold it.
            while !h.repo().store().has_block(&release_cid).unwrap_or(false) {
                if Instant::now() > deadline {
                    f.error = Some("the release record never arrived".into());
                    return f;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            for cid in blobs {
                loop {
                    match h.fetch_file(cid, |_| {}).await {
                        Ok(got) => {
                            f.from.extend(got.from);
                            break;
                        }
                        // No neighbour holds it yet: ask again shortly.
                        Err(NodeError::NotFound(_) | NodeError::Fetch { .. })
                            if Instant::now() < deadline =>
                        {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(e) => {
                            f.error = Some(e.to_string());
                            return f;
                        }
                    }
                }
            }
            f.done = Some(start.elapsed());
            f
        }));
    }
    net.publish(0, records).await?;
    let mut fetches = Vec::new();
    for t in tasks {
        fetches.push(t.await?);
    }
    let seconds = start.elapsed().as_secs_f64();

    let mut report = Report::new("release_spread", &net, p, memory);
    report.seconds = seconds;
    let mut served: HashMap<usize, u64> = HashMap::new();
    let index: HashMap<_, _> = (0..n).map(|i| (net.peer_id(i), i)).collect();
    for f in &fetches {
        for (peer, b) in &f.from {
            if let Some(&i) = index.get(peer) {
                *served.entry(i).or_default() += b;
            }
        }
        if let Some(e) = &f.error {
            report.problems.push(format!("node {}: {e}", f.node));
        }
    }
    // Every copy is checked where it landed, not just reported.
    let mut verified = 0;
    for i in 1..n {
        let mut all = true;
        for cid in &blobs {
            all &= net.node(i).blobs().has(cid).await.unwrap_or(false);
        }
        verified += usize::from(all);
    }
    let arrivals: Vec<f64> = fetches
        .iter()
        .filter_map(|f| f.done.map(|d| d.as_secs_f64()))
        .collect();
    let last = arrivals.iter().copied().fold(0.0, f64::max);
    report.arrivals(arrivals, n - 1);
    let served_total: u64 = served.values().sum();
    let by_publisher = served.get(&0).copied().unwrap_or(0);
    let share = by_publisher as f64 / served_total.max(1) as f64;
    let publisher_links = net
        .edges()
        .iter()
        .filter(|&&(a, b)| a == 0 || b == 0)
        .count();
    report.figure("release bytes", total as f64);
    report.figure("nodes holding every file", (verified + 1) as f64);
    report.figure("seconds until the last node held it", last);
    report.figure("bytes fetched in all", served_total as f64);
    report.figure("bytes served by the publisher", by_publisher as f64);
    report.figure("publisher's share of the bytes served", share);
    report.figure(
        "nodes that served files",
        served.values().filter(|&&b| b > 0).count() as f64,
    );
    report.figure(
        "MB/s delivered (all copies / time to the last)",
        served_total as f64 / 1e6 / last.max(1e-6),
    );
    report.target(
        "every node holds every file, verified",
        (verified + 1) as f64,
        verified == n - 1,
    );
    if n - 1 > publisher_links {
        // Nodes not linked to the publisher can only have fetched from other nodes.
        report.target(
            "publisher served < all the bytes (fan-out)",
            share,
            share < 1.0,
        );
    }
    report.bytes = node_bytes(&net, &served).await?;
    net.shutdown().await?;
    Ok(report)
}

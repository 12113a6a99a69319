//! The scenarios: each starts a testnet, does something to it, measures, and returns a
//! [`Report`]. Their parameters default to the small sizes CI runs; the README gives the
//! large ones.

pub mod catch_up;
pub mod churn;
pub mod discussion;
pub mod hostile_peer;
pub mod nat;
pub mod partition_heal;
pub mod propagation;
pub mod release_spread;

use std::{
    collections::HashMap,
    path::PathBuf,
    time::{Duration, Instant},
};

use mnode_dag::{
    Cid, Keypair, Link, Record,
    model::social::{Branch, Forum, Post},
    record::{Draft, RecordError, now_ms},
};
use mnode_protocols::GossipTopic;
use serde::Serialize;

pub use crate::net::Publisher;
use crate::{
    net::{Ledger, Testnet},
    report::{Memory, NodeBytes},
    topology::Topology,
};

/// The testnet a scenario runs on.
#[derive(Debug, Clone, Serialize, clap::Args)]
pub struct NetArgs {
    /// Nodes to start.
    #[arg(long, default_value_t = 8)]
    pub nodes: usize,
    /// Seed of keys and random topologies.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// line, ring, star, regular[:DEGREE] or clusters[:DEGREE[:BRIDGES]] (default: the
    /// scenario's).
    #[arg(long)]
    pub topology: Option<Topology>,
    /// A node config setting, `key=value` (repeatable), as `mnode -c`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub settings: Vec<String>,
    /// Where the node repos go (default: a temp folder, removed afterwards).
    #[arg(long)]
    #[serde(skip)]
    pub repos: Option<PathBuf>,
}

/// Daemon processes instead of in-process nodes, for the scenarios that can drive them.
#[derive(Debug, Clone, Default, Serialize, clap::Args)]
pub struct ProcessArgs {
    /// Run every node as its own `mnode daemon` process, driven over its HTTP API.
    #[arg(long)]
    pub processes: bool,
    /// The `mnode` binary for --processes (default: the one next to this program).
    #[arg(long, value_name = "PATH")]
    #[serde(skip)]
    pub mnode: Option<PathBuf>,
}

impl ProcessArgs {
    /// Daemon processes of the `mnode` binary next to this program (or `mnode`).
    pub fn daemons(mnode: Option<PathBuf>) -> Self {
        Self {
            processes: true,
            mnode,
        }
    }

    /// The `mnode` binary to run, when processes are asked for: `--mnode`, else `mnode` next
    /// to this program or one folder up (where a test binary's is).
    pub fn binary(&self) -> anyhow::Result<Option<PathBuf>> {
        if !self.processes {
            return Ok(None);
        }
        if let Some(m) = &self.mnode {
            return Ok(Some(m.clone()));
        }
        let exe = std::env::current_exe()?;
        let found = exe
            .ancestors()
            .skip(1)
            .take(2)
            .map(|d| d.join(format!("mnode{}", std::env::consts::EXE_SUFFIX)))
            .find(|p| p.is_file());
        match found {
            Some(p) => Ok(Some(p)),
            None => anyhow::bail!(
                "no mnode binary next to {}: build it (cargo build -p mnode) or pass --mnode PATH",
                exe.display()
            ),
        }
    }
}

impl NetArgs {
    /// `n` nodes, seed 1, the scenario's topology.
    pub fn small(n: usize) -> Self {
        Self {
            nodes: n,
            seed: 1,
            topology: None,
            settings: Vec::new(),
            repos: None,
        }
    }

    /// Starts the testnet in this process and measures the memory it took.
    pub async fn spawn(&self, default: Topology) -> anyhow::Result<(Testnet, Memory)> {
        self.spawn_with(default, &ProcessArgs::default()).await
    }

    /// Starts the testnet, as daemon processes if `procs` says so, and measures the memory
    /// the nodes took.
    pub async fn spawn_with(
        &self,
        default: Topology,
        procs: &ProcessArgs,
    ) -> anyhow::Result<(Testnet, Memory)> {
        let before = Testnet::rss_bytes();
        let mut b = Testnet::builder()
            .nodes(self.nodes)
            .seed(self.seed)
            .topology(self.topology.unwrap_or(default));
        if let Some(d) = &self.repos {
            b = b.dir(d);
        }
        for s in &self.settings {
            b = b.setting(s.clone());
        }
        if let Some(mnode) = procs.binary()? {
            b = b.processes(mnode);
        }
        let net = b.spawn().await?;
        if net.is_processes() {
            let rss: u64 = (0..net.len()).filter_map(|i| net.node_rss_bytes(i)).sum();
            let memory = Memory {
                rss_bytes: rss,
                per_node_bytes: rss / self.nodes.max(1) as u64,
            };
            return Ok((net, memory));
        }
        let rss = Testnet::rss_bytes();
        let memory = Memory {
            rss_bytes: rss,
            per_node_bytes: rss.saturating_sub(before) / self.nodes.max(1) as u64,
        };
        Ok((net, memory))
    }
}

/// Authors posting to their feeds, each from its own node (spread over the testnet), with
/// every node following every author.
pub struct Authors {
    /// Their keys.
    pub keys: Vec<Keypair>,
    /// The node each publishes from.
    pub nodes: Vec<usize>,
    /// Their feeds.
    pub topics: Vec<GossipTopic>,
    /// A publisher on each author's node.
    pub publishers: Vec<Publisher>,
}

impl Authors {
    /// `count` authors (1 to the node count): every node follows them, and this returns once
    /// the gossip meshes of their feeds have formed.
    pub async fn follow_all(net: &Testnet, count: usize) -> anyhow::Result<Self> {
        let n = net.len();
        let count = count.clamp(1, n);
        let keys: Vec<Keypair> = (0..count).map(|a| net.author(a)).collect();
        let nodes: Vec<usize> = (0..count).map(|a| a * n / count).collect();
        let topics: Vec<GossipTopic> = keys.iter().map(|k| GossipTopic::Author(*k.did())).collect();
        for t in &topics {
            net.follow(*t, 0..n).await?;
        }
        net.wait_subscribed(&topics, settle(net)).await?;
        let publishers = nodes.iter().map(|&i| Publisher::new(net, i)).collect();
        Ok(Self {
            keys,
            nodes,
            topics,
            publishers,
        })
    }

    /// The `k`th post of a round robin over the authors: (the author's index, the post).
    pub fn post(&self, k: usize) -> (usize, Record) {
        let a = k % self.keys.len();
        (a, post(&self.keys[a], k as u64, None, None))
    }
}

/// Signs a draft as `key`, stamped now.
pub fn sign(draft: Result<Draft, RecordError>, key: &Keypair) -> anyhow::Result<Record> {
    Ok(draft?.at(now_ms()).sign(key)?)
}

/// A forum and a branch in it, both by `key`.
pub fn forum_and_branch(
    key: &Keypair,
    forum: &str,
    branch: &str,
) -> anyhow::Result<(Record, Record)> {
    let f = sign(
        Record::create(&Forum {
            name: forum.into(),
            ..Forum::default()
        }),
        key,
    )?;
    let b = sign(
        Record::create(&Branch {
            forum: Link(f.id()),
            name: branch.into(),
            description: None,
            parent: None,
            tags: vec![],
        }),
        key,
    )?;
    Ok((f, b))
}

/// A post by `author`, optionally in a branch or thread.
pub fn post(author: &Keypair, i: u64, branch: Option<Cid>, thread: Option<Cid>) -> Record {
    #[allow(clippy::expect_used)]
    Record::create(&Post {
        text: format!(
            "Post {i}: finished the last mix of the album tonight, three years of field \
             recordings from the coast and a borrowed upright piano."
        ),
        tags: vec![["music/ambient", "music/jazz", "visual/photo"][(i % 3) as usize].into()],
        branch: branch.map(Link),
        thread: thread.map(Link),
        ..Post::default()
    })
    .expect("a post is valid")
    .at(now_ms())
    .sign(author)
    .expect("signing cannot fail")
}

/// What arrived of what was published.
#[derive(Debug, Default)]
pub struct Deliveries {
    /// Publish-to-store latency of every delivery.
    pub latencies: Vec<Duration>,
    /// Arrival times, in seconds since the start.
    pub arrivals: Vec<f64>,
    /// Deliveries that came by catch-up sync rather than gossip.
    pub via_sync: usize,
    /// Deliveries that arrived.
    pub delivered: usize,
    /// Deliveries expected.
    pub expected: usize,
}

impl Deliveries {
    /// Delivered / expected (1 when nothing was expected).
    pub fn ratio(&self) -> f64 {
        if self.expected == 0 {
            1.0
        } else {
            self.delivered as f64 / self.expected as f64
        }
    }
}

/// Counts, for every record in `cids`, its arrival at every node of `followers` except the
/// one that published it.
pub fn deliveries(
    ledger: &Ledger,
    cids: &[Cid],
    followers: &[usize],
    start: Instant,
) -> Deliveries {
    let mut d = Deliveries::default();
    for cid in cids {
        let Some(&(from, sent)) = ledger.sent.get(cid) else {
            continue;
        };
        let got = ledger.stored.get(cid);
        for &i in followers.iter().filter(|&&i| i != from) {
            d.expected += 1;
            if let Some(&(at, via)) = got.and_then(|m| m.get(&i)) {
                d.delivered += 1;
                d.latencies.push(at.saturating_duration_since(sent));
                d.arrivals
                    .push(at.saturating_duration_since(start).as_secs_f64());
                if via == mnode_node::node::Via::Sync {
                    d.via_sync += 1;
                }
            }
        }
    }
    d
}

/// Whether every follower (but the publisher) holds every record of `cids`.
pub fn all_delivered(ledger: &Ledger, cids: &[Cid], followers: &[usize]) -> bool {
    cids.iter().all(|cid| {
        let from = ledger.sent.get(cid).map(|s| s.0);
        followers
            .iter()
            .filter(|&&i| Some(i) != from)
            .all(|&i| ledger.holds(i, cid))
    })
}

/// Bytes per node: libp2p traffic and the file bytes each served.
pub async fn node_bytes(
    net: &Testnet,
    served: &HashMap<usize, u64>,
) -> anyhow::Result<Vec<NodeBytes>> {
    let mut all = Vec::with_capacity(net.len());
    for i in 0..net.len() {
        let t = net.traffic(i).await?;
        all.push(NodeBytes {
            node: i,
            p2p_sent: t.sent,
            p2p_received: t.received,
            file_bytes_served: served.get(&i).copied().unwrap_or(0),
        });
    }
    Ok(all)
}

/// Publishes `count` records made by `make(k)` (returning the node and the record) at `rate`
/// per second; returns their CIDs in order.
pub async fn publish_at_rate(
    publishers: &[Publisher],
    count: usize,
    rate: f64,
    mut make: impl FnMut(usize) -> (usize, Record),
) -> anyhow::Result<Vec<Cid>> {
    let period = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut cids = Vec::with_capacity(count);
    for k in 0..count {
        tick.tick().await;
        let (p, r) = make(k);
        cids.push(r.cid());
        publishers[p].publish(vec![r]).await?;
    }
    Ok(cids)
}

/// How long gossip meshes need to form once peers see each other's subscriptions: a few
/// heartbeats.
pub fn settle(net: &Testnet) -> Duration {
    3 * net.gossip_heartbeat().max(Duration::from_millis(50))
}

//! N real nodes: the same [`Node`] the daemon runs, in this process (the default) or each as
//! its own `mnode daemon` process driven over its HTTP API ([`Builder::processes`]: for kill -9
//! and process isolation). Each has its own repo, keys derived from the seed, and listens on
//! 127.0.0.1 port 0; they are linked in a [`Topology`].
//!
//! Links outside the topology are refused with the node's own peer ban (the DHT and identify
//! would otherwise connect everyone to everyone), and a partition is the same ban applied to
//! every pair across the cut. A [`Ledger`] records what every node saw, with the time it saw
//! it, for the scenarios to measure.

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use libp2p::{Multiaddr, PeerId};
use mnode_api::client::Client;
use mnode_dag::{Cid, Keypair, Record};
use mnode_node::{
    blobs::Blobs,
    node::{Node, NodeEvent, NodeHandle, Traffic, Via},
    repo::{InitOptions, Repo},
};
use mnode_protocols::GossipTopic;
use tokio::{sync::Notify, task::JoinHandle};

use crate::{daemon::Daemon, topology::Topology};

/// How long the testnet waits for its own plumbing (connections, subscriptions) at most.
const SETUP_WAIT: Duration = Duration::from_secs(60);

/// What every node saw, and when.
#[derive(Debug, Default)]
pub struct Ledger {
    /// When each record was handed to [`Testnet::publish`], and by which node.
    pub sent: HashMap<Cid, (usize, Instant)>,
    /// Which nodes stored each record (from a peer), when and how.
    pub stored: HashMap<Cid, HashMap<usize, (Instant, Via)>>,
    /// Peers' subscriptions each node saw: (node, peer, topic).
    pub subscribed: HashSet<(usize, PeerId, String)>,
    /// Messages each node rejected: (node, sender, when).
    pub rejected: Vec<(usize, PeerId, Instant)>,
    /// Peers each node disconnected for misbehaving: (node, peer, score, when).
    pub banned: Vec<(usize, PeerId, f64, Instant)>,
    /// Finished catch-up exchanges: (node, when, records stored, block bytes, reconcile bytes).
    pub synced: Vec<(usize, Instant, usize, u64, u64)>,
    /// Records a node held when it started again with no `Stored` event seen for them: a
    /// process killed (kill -9) between storing a record and reporting it. Each is in
    /// [`Ledger::stored`] too, at the moment the node was halted (when it arrived, before
    /// that, is unknown; counted as gossip).
    pub found_at_restart: Vec<(usize, Cid)>,
}

impl Ledger {
    /// Whether node `i` stored (or published) `cid`.
    pub fn holds(&self, i: usize, cid: &Cid) -> bool {
        self.sent.get(cid).is_some_and(|(by, _)| *by == i)
            || self.stored.get(cid).is_some_and(|m| m.contains_key(&i))
    }
}

/// How to build a [`Testnet`].
#[derive(Debug, Clone)]
pub struct Builder {
    nodes: usize,
    seed: u64,
    topology: Topology,
    dir: Option<PathBuf>,
    settings: Vec<String>,
    mnode: Option<PathBuf>,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            nodes: 5,
            seed: 1,
            topology: Topology::RandomRegular { degree: 3 },
            dir: None,
            settings: Vec::new(),
            mnode: None,
        }
    }
}

impl Builder {
    /// How many nodes (default 5).
    pub fn nodes(mut self, n: usize) -> Self {
        self.nodes = n;
        self
    }

    /// The seed of node keys, author keys and random topologies (default 1).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The shape (default a random regular graph of degree 3).
    pub fn topology(mut self, t: Topology) -> Self {
        self.topology = t;
        self
    }

    /// Where the repos go (default: a temp folder removed with the testnet).
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// A `key=value` config setting for every node (as `mnode -c`).
    pub fn setting(mut self, s: impl Into<String>) -> Self {
        self.settings.push(s.into());
        self
    }

    /// Runs every node as its own `mnode daemon` process (this `mnode` binary), driven over its
    /// HTTP API, so that [`Testnet::kill`] can kill -9 one. Default: every node in this process.
    pub fn processes(mut self, mnode: impl Into<PathBuf>) -> Self {
        self.mnode = Some(mnode.into());
        self
    }

    /// Starts the nodes and links them: every pair outside the topology refuses the other,
    /// every link is dialled, and this returns once every link is up.
    pub async fn spawn(self) -> anyhow::Result<Testnet> {
        if self.nodes == 0 {
            bail!("a testnet needs at least one node");
        }
        let (root, _temp) = match &self.dir {
            Some(d) => {
                std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
                (d.clone(), None)
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix("mnode-testnet-")
                    .tempdir()?;
                (t.path().to_owned(), Some(t))
            }
        };
        let edges = self.topology.edges(self.nodes, self.seed);
        let mut net = Testnet {
            mnode: self.mnode.clone(),
            heartbeat: Duration::ZERO,
            seed: self.seed,
            topology: self.topology,
            edges,
            slots: Vec::with_capacity(self.nodes),
            ledger: Arc::default(),
            notify: Arc::new(Notify::new()),
            bans: HashSet::new(),
            root,
            _temp,
        };
        for i in 0..self.nodes {
            let path = net.root.join(format!("node-{i}"));
            if path.exists() {
                std::fs::remove_dir_all(&path)?;
            }
            let mut settings = vec![
                r#"network.listen=["/ip4/127.0.0.1/tcp/0"]"#.to_owned(),
                "network.blobs_listen=127.0.0.1:0".to_owned(),
                // The testnet dials each node's links itself, after it applies the node's
                // refusals (a partition): a node redialling peers it remembers would cross a
                // cut, and would catch up before its events are watched.
                "network.redial_peers=0".to_owned(),
                "api.listen=127.0.0.1:0".to_owned(),
            ];
            settings.extend(self.settings.iter().cloned());
            let repo = Repo::init(
                &path,
                &InitOptions {
                    settings,
                    node_key: Some(Keypair::derive(self.seed, &format!("node-{i}"))),
                    ..InitOptions::default()
                },
            )
            .with_context(|| format!("init node {i}"))?;
            net.heartbeat = Duration::from_millis(repo.config().network.gossip_heartbeat_ms);
            let slot = match &net.mnode {
                Some(mnode) => {
                    drop(repo);
                    Slot::start_daemon(i, mnode, path, &net.ledger, &net.notify).await?
                }
                None => Slot::start(i, path, repo, &net.ledger, &net.notify).await?,
            };
            net.slots.push(slot);
        }
        let n = self.nodes;
        for a in 0..n {
            for b in 0..n {
                if a != b && !net.adjacent(a, b) {
                    net.bans.insert((a, b));
                }
            }
        }
        for i in 0..n {
            net.apply_bans(i).await?;
        }
        let edges = net.edges.clone();
        for (a, b) in edges {
            net.dial(a, b).await?;
        }
        net.wait_links().await?;
        Ok(net)
    }
}

/// One node of the testnet, running or stopped.
struct Slot {
    path: PathBuf,
    peer_id: PeerId,
    /// Set while it runs. Nothing else in the testnet keeps a handle, so that stopping it
    /// closes its repo.
    run: Option<Run>,
    addr: Multiaddr,
    /// Traffic of earlier runs of this node (counters restart with it).
    traffic_before: Traffic,
    /// When it was last stopped or killed.
    halted: Option<Instant>,
}

/// A running node: in this process, or a daemon process.
enum Run {
    Local {
        node: Node,
        handle: NodeHandle,
        forwarder: JoinHandle<()>,
    },
    Daemon(Daemon),
}

impl Run {
    async fn follow(&self, topic: GossipTopic) -> anyhow::Result<()> {
        match self {
            Run::Local { handle, .. } => handle.follow(topic).await?,
            Run::Daemon(d) => {
                d.client.follow(&topic.to_string(), true).await?;
            }
        }
        Ok(())
    }

    /// Bans (or lets back) `peer`. In force once [`Run::peers`] answers after it.
    async fn ban(&self, peer: PeerId, ban: bool) -> anyhow::Result<()> {
        match self {
            Run::Local { handle, .. } => handle.ban(peer, ban).await?,
            Run::Daemon(d) => {
                d.client.ban(&peer.to_string(), ban).await?;
            }
        }
        Ok(())
    }

    /// The peer ids it is connected to.
    async fn peers(&self) -> anyhow::Result<Vec<String>> {
        Ok(match self {
            Run::Local { handle, .. } => handle
                .peers()
                .await?
                .into_iter()
                .map(|p| p.peer_id)
                .collect(),
            Run::Daemon(d) => d.client.peers().await?["peers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["peer_id"].as_str().map(str::to_owned))
                .collect(),
        })
    }

    async fn connect(&self, addr: &Multiaddr) -> anyhow::Result<()> {
        match self {
            Run::Local { handle, .. } => {
                handle.connect(addr.clone()).await?;
            }
            Run::Daemon(d) => {
                d.client.connect(&addr.to_string()).await?;
            }
        }
        Ok(())
    }

    async fn traffic(&self) -> anyhow::Result<Traffic> {
        match self {
            Run::Local { handle, .. } => Ok(handle.traffic()),
            Run::Daemon(d) => d.traffic().await,
        }
    }
}

impl Slot {
    async fn start(
        i: usize,
        path: PathBuf,
        repo: Repo,
        ledger: &Arc<Mutex<Ledger>>,
        notify: &Arc<Notify>,
    ) -> anyhow::Result<Slot> {
        let blobs = Blobs::open(&repo.blobs_dir(), &repo.tmp_dir()).await?;
        let node = Node::spawn(repo, blobs)
            .await
            .with_context(|| format!("start node {i}"))?;
        let handle = node.handle();
        // Before anything else: the node's first events must reach the ledger too.
        let forwarder = forward(i, handle.clone(), ledger.clone(), notify.clone());
        let info = handle.info().await?;
        let addr = info
            .addrs
            .iter()
            .find(|a| a.contains("/tcp/"))
            .context("a TCP listen address")?
            .parse()?;
        Ok(Slot {
            path,
            peer_id: handle.peer_id(),
            run: Some(Run::Local {
                node,
                handle,
                forwarder,
            }),
            addr,
            traffic_before: Traffic::default(),
            halted: None,
        })
    }

    async fn start_daemon(
        i: usize,
        mnode: &Path,
        path: PathBuf,
        ledger: &Arc<Mutex<Ledger>>,
        notify: &Arc<Notify>,
    ) -> anyhow::Result<Slot> {
        let d = Daemon::spawn(i, mnode, &path, ledger, notify).await?;
        Ok(Slot {
            path,
            peer_id: d.peer_id,
            addr: d.addr.clone(),
            run: Some(Run::Daemon(d)),
            traffic_before: Traffic::default(),
            halted: None,
        })
    }
}

/// Copies node `i`'s events into the ledger until the node stops.
fn forward(
    i: usize,
    h: NodeHandle,
    ledger: Arc<Mutex<Ledger>>,
    notify: Arc<Notify>,
) -> JoinHandle<()> {
    let mut rx = h.events();
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(ev) => note(&ledger, &notify, i, ev, Instant::now()),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(k)) => {
                    tracing::warn!(node = i, "the testnet missed {k} events");
                }
                Err(_) => return,
            }
        }
    })
}

/// Notes node `i`'s event `ev`, seen at `now`, in the ledger, and wakes its waiters.
pub(crate) fn note(ledger: &Mutex<Ledger>, notify: &Notify, i: usize, ev: NodeEvent, now: Instant) {
    {
        let mut l = lock(ledger);
        match ev {
            NodeEvent::Stored { cid, via, .. } => {
                l.stored
                    .entry(cid)
                    .or_default()
                    .entry(i)
                    .or_insert((now, via));
            }
            NodeEvent::PeerSubscribed { peer, topic } => {
                l.subscribed.insert((i, peer, topic));
            }
            NodeEvent::Rejected { from, .. } => l.rejected.push((i, from, now)),
            NodeEvent::PeerBanned { peer, score } => l.banned.push((i, peer, score, now)),
            NodeEvent::Synced {
                stored,
                bytes,
                reconcile_bytes,
                ..
            } => l.synced.push((i, now, stored, bytes, reconcile_bytes)),
            _ => return,
        }
    }
    notify.notify_waiters();
}

/// `VmRSS` of a `/proc/…/status` file, bytes.
pub(crate) fn rss_of(status: &str) -> Option<u64> {
    std::fs::read_to_string(status).ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    })
}

fn lock(l: &Mutex<Ledger>) -> MutexGuard<'_, Ledger> {
    l.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Publishes records from one node and notes when, without borrowing the testnet (so that
/// another task may stop and start other nodes meanwhile).
#[derive(Clone)]
pub struct Publisher {
    node: usize,
    target: Target,
    ledger: Arc<Mutex<Ledger>>,
}

#[derive(Clone)]
enum Target {
    Local(NodeHandle),
    Daemon(Client),
}

impl Publisher {
    /// A publisher on node `i` of `net` (for as long as that node runs).
    pub fn new(net: &Testnet, i: usize) -> Self {
        let target = match net.run(i) {
            Run::Local { handle, .. } => Target::Local(handle.clone()),
            Run::Daemon(d) => Target::Daemon(d.client.clone()),
        };
        Self {
            node: i,
            target,
            ledger: net.ledger.clone(),
        }
    }

    /// Stores and gossips `records`.
    pub async fn publish(&self, records: Vec<Record>) -> anyhow::Result<()> {
        let now = Instant::now();
        {
            let mut l = lock(&self.ledger);
            for r in &records {
                l.sent.insert(r.cid(), (self.node, now));
            }
        }
        match &self.target {
            Target::Local(h) => {
                h.publish(records).await?;
            }
            Target::Daemon(c) => crate::daemon::publish_over(c, &records).await?,
        }
        Ok(())
    }
}

/// A running testnet. Dropping it without [`Testnet::shutdown`] leaves the nodes to the
/// runtime's end.
pub struct Testnet {
    /// The `mnode` binary when nodes are daemon processes.
    mnode: Option<PathBuf>,
    heartbeat: Duration,
    seed: u64,
    topology: Topology,
    edges: Vec<(usize, usize)>,
    slots: Vec<Slot>,
    ledger: Arc<Mutex<Ledger>>,
    notify: Arc<Notify>,
    /// Directed refusals in force: (a, b) means a refuses b.
    bans: HashSet<(usize, usize)>,
    root: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for Testnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Testnet")
            .field("nodes", &self.slots.len())
            .field("topology", &self.topology)
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

impl Testnet {
    /// A builder with the defaults (5 nodes, seed 1, random regular graph of degree 3).
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// How many nodes.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no nodes (never, once spawned).
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The shape.
    pub fn topology(&self) -> Topology {
        self.topology
    }

    /// The links, `(a, b)` with `a < b`.
    pub fn edges(&self) -> &[(usize, usize)] {
        &self.edges
    }

    /// Where the repos are.
    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// Whether the nodes are daemon processes ([`Builder::processes`]).
    pub fn is_processes(&self) -> bool {
        self.mnode.is_some()
    }

    /// The nodes' gossip heartbeat (`network.gossip_heartbeat_ms`).
    pub fn gossip_heartbeat(&self) -> Duration {
        self.heartbeat
    }

    /// Node `i`'s handle (of its current run). Panics if it is stopped (see
    /// [`Testnet::is_running`]) or a daemon process (see [`Testnet::is_processes`]).
    pub fn node(&self, i: usize) -> &NodeHandle {
        match self.run(i) {
            Run::Local { handle, .. } => handle,
            Run::Daemon(_) => panic!("node {i} is a daemon process: it has no handle here"),
        }
    }

    fn run(&self, i: usize) -> &Run {
        match &self.slots[i].run {
            Some(r) => r,
            None => panic!("node {i} is stopped"),
        }
    }

    /// Node `i`'s peer id (the same across restarts).
    pub fn peer_id(&self, i: usize) -> PeerId {
        self.slots[i].peer_id
    }

    /// Whether node `i` runs.
    pub fn is_running(&self, i: usize) -> bool {
        self.slots[i].run.is_some()
    }

    /// An author key derived from the seed: the same `i` names the same person in every run.
    pub fn author(&self, i: usize) -> Keypair {
        Keypair::derive(self.seed, &format!("author-{i}"))
    }

    /// Whether `a` and `b` are linked in the topology.
    pub fn adjacent(&self, a: usize, b: usize) -> bool {
        self.edges.binary_search(&(a.min(b), a.max(b))).is_ok()
    }

    /// The ledger, locked: read it and let go.
    pub fn ledger(&self) -> MutexGuard<'_, Ledger> {
        lock(&self.ledger)
    }

    /// Waits until `done` holds for the ledger, at most `limit`; returns whether it did.
    pub async fn wait_until(&self, limit: Duration, mut done: impl FnMut(&Ledger) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.notify.notified();
            if done(&self.ledger()) {
                return true;
            }
            // Woken by each event, and at least every 50 ms for conditions on time.
            let wake = deadline.min(tokio::time::Instant::now() + Duration::from_millis(50));
            let _ = tokio::time::timeout_at(wake, notified).await;
            if tokio::time::Instant::now() >= deadline {
                return done(&self.ledger());
            }
        }
    }

    /// Makes each of `nodes` follow `topic`.
    pub async fn follow(
        &self,
        topic: GossipTopic,
        nodes: impl IntoIterator<Item = usize>,
    ) -> anyhow::Result<()> {
        for i in nodes {
            self.run(i).follow(topic).await?;
        }
        Ok(())
    }

    /// Waits until both ends of every running link saw the other subscribe to each of
    /// `topics` (every node follows them), then for `settle` (gossip meshes form on heartbeats).
    pub async fn wait_subscribed(
        &self,
        topics: &[GossipTopic],
        settle: Duration,
    ) -> anyhow::Result<()> {
        let mut wanted = Vec::new();
        for &(a, b) in &self.edges {
            if !self.is_running(a) || !self.is_running(b) || self.bans.contains(&(a, b)) {
                continue;
            }
            for t in topics {
                wanted.push((a, self.peer_id(b), t.to_string()));
                wanted.push((b, self.peer_id(a), t.to_string()));
            }
        }
        let ok = self
            .wait_until(SETUP_WAIT, |l| {
                wanted.iter().all(|w| l.subscribed.contains(w))
            })
            .await;
        if !ok {
            bail!("peers did not see each other's subscriptions within {SETUP_WAIT:?}");
        }
        tokio::time::sleep(settle).await;
        Ok(())
    }

    /// Stores `records` on node `i` and gossips them, noting when they were sent.
    pub async fn publish(&self, i: usize, records: Vec<Record>) -> anyhow::Result<()> {
        Publisher::new(self, i).publish(records).await
    }

    /// Bytes node `i`'s libp2p transports moved over all its runs (a killed run's up to just
    /// before the kill).
    pub async fn traffic(&self, i: usize) -> anyhow::Result<Traffic> {
        let s = &self.slots[i];
        let now = match &s.run {
            Some(r) => r.traffic().await?,
            None => Traffic::default(),
        };
        Ok(Traffic {
            sent: s.traffic_before.sent + now.sent,
            received: s.traffic_before.received + now.received,
        })
    }

    /// Resident memory of node `i`'s daemon process, bytes (`None` in-process, stopped, or
    /// not on Linux).
    pub fn node_rss_bytes(&self, i: usize) -> Option<u64> {
        match &self.slots[i].run {
            Some(Run::Daemon(d)) => d.rss_bytes(),
            _ => None,
        }
    }

    /// Stops node `i` cleanly (its repo stays): a daemon process gets SIGTERM.
    pub async fn stop(&mut self, i: usize) -> anyhow::Result<()> {
        self.halt(i, false).await
    }

    /// Kills node `i`'s daemon process with SIGKILL, as a crash would; it starts again with
    /// [`Testnet::start`] on the same repo. Only for daemon processes.
    pub async fn kill(&mut self, i: usize) -> anyhow::Result<()> {
        if !self.is_processes() {
            bail!("kill needs daemon processes (Builder::processes); stop node {i} instead");
        }
        self.halt(i, true).await
    }

    async fn halt(&mut self, i: usize, kill: bool) -> anyhow::Result<()> {
        let slot = &mut self.slots[i];
        let Some(run) = slot.run.take() else {
            return Ok(());
        };
        match run.traffic().await {
            Ok(t) => {
                slot.traffic_before.sent += t.sent;
                slot.traffic_before.received += t.received;
            }
            Err(e) => tracing::warn!(node = i, "traffic not read before the stop: {e:#}"),
        }
        match run {
            Run::Local {
                node,
                handle,
                forwarder,
            } => {
                drop(handle);
                node.shutdown().await?;
                // The forwarder ends once it has copied every event the node sent before it
                // stopped (the event channel closes with the node's last handle): a record
                // stored just before the stop must be in the ledger, or it would count as
                // never delivered.
                let mut forwarder = forwarder;
                if tokio::time::timeout(Duration::from_secs(5), &mut forwarder)
                    .await
                    .is_err()
                {
                    tracing::warn!(
                        node = i,
                        "its event forwarder did not end: a handle is still held"
                    );
                    forwarder.abort();
                }
            }
            Run::Daemon(d) => d.stop(i, kill).await?,
        }
        self.slots[i].halted = Some(Instant::now());
        Ok(())
    }

    /// Starts node `i` again on its repo, refuses whom it should, and dials its links that
    /// are not cut.
    pub async fn start(&mut self, i: usize) -> anyhow::Result<()> {
        if self.is_running(i) {
            return Ok(());
        }
        let path = self.slots[i].path.clone();
        // Tasks of the last run may hold the store for a moment after it stopped.
        let mut tries = 0;
        let repo = loop {
            match Repo::open(&path, std::iter::empty(), &[]) {
                Ok(r) => break r,
                Err(mnode_node::repo::RepoError::Locked(_)) if tries < 100 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e).with_context(|| format!("reopen node {i}")),
            }
        };
        self.note_held(i, &repo)?;
        let (before, halted) = (self.slots[i].traffic_before, self.slots[i].halted);
        let mut slot = match &self.mnode {
            Some(mnode) => {
                drop(repo);
                Slot::start_daemon(i, mnode, path, &self.ledger, &self.notify).await?
            }
            None => Slot::start(i, path, repo, &self.ledger, &self.notify).await?,
        };
        slot.traffic_before = before;
        slot.halted = halted;
        self.slots[i] = slot;
        self.relink(i).await
    }

    /// Notes in the ledger the records node `i`'s repo holds with no `Stored` event seen
    /// (see [`Ledger::found_at_restart`]), before the node starts again.
    fn note_held(&self, i: usize, repo: &Repo) -> anyhow::Result<()> {
        let at = self.slots[i].halted.unwrap_or_else(Instant::now);
        let mut l = lock(&self.ledger);
        let unseen: Vec<Cid> = l
            .sent
            .keys()
            .filter(|cid| !l.holds(i, cid))
            .copied()
            .collect();
        for cid in unseen {
            if repo.store().has_block(&cid)? {
                l.stored
                    .entry(cid)
                    .or_default()
                    .insert(i, (at, Via::Gossip));
                l.found_at_restart.push((i, cid));
            }
        }
        Ok(())
    }

    /// Applies node `i`'s refusals, then dials its links that are not cut.
    async fn relink(&mut self, i: usize) -> anyhow::Result<()> {
        self.apply_bans(i).await?;
        let links: Vec<usize> = self.links_of(i);
        for j in links {
            if self.is_running(j) && !self.bans.contains(&(i, j)) && !self.bans.contains(&(j, i)) {
                self.dial(i, j).await?;
            }
        }
        Ok(())
    }

    /// Cuts every pair across `group` and the rest: each side refuses the other and the
    /// connections close. Returns once no connection crosses the cut.
    pub async fn partition(&mut self, group: &[usize]) -> anyhow::Result<()> {
        let inside: HashSet<usize> = group.iter().copied().collect();
        let n = self.len();
        for a in 0..n {
            for b in 0..n {
                if a != b && inside.contains(&a) != inside.contains(&b) {
                    self.bans.insert((a, b));
                    if self.is_running(a) {
                        self.run(a).ban(self.peer_id(b), true).await?;
                    }
                }
            }
        }
        let deadline = Instant::now() + SETUP_WAIT;
        loop {
            let mut crossing = 0;
            for a in 0..n {
                if !self.is_running(a) {
                    continue;
                }
                for p in self.run(a).peers().await? {
                    let b = self.index_of(&p);
                    if b.is_some_and(|b| inside.contains(&a) != inside.contains(&b)) {
                        crossing += 1;
                    }
                }
            }
            if crossing == 0 {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{crossing} connections still cross the partition");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Lifts every cut between linked nodes and dials the links again; returns once they are
    /// up.
    pub async fn heal(&mut self) -> anyhow::Result<()> {
        let lifted: Vec<(usize, usize)> = self
            .bans
            .iter()
            .copied()
            .filter(|&(a, b)| self.adjacent(a, b))
            .collect();
        for &(a, b) in &lifted {
            self.bans.remove(&(a, b));
            if self.is_running(a) {
                self.run(a).ban(self.peer_id(b), false).await?;
            }
        }
        for &(a, _) in &lifted {
            self.flush(a).await?;
        }
        for &(a, b) in &lifted {
            if a < b && self.is_running(a) && self.is_running(b) {
                self.dial(a, b).await?;
            }
        }
        self.wait_links().await
    }

    /// Stops every node.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        for i in 0..self.len() {
            self.stop(i).await?;
        }
        Ok(())
    }

    /// Resident memory of this process, in bytes (Linux; 0 elsewhere).
    pub fn rss_bytes() -> u64 {
        rss_of("/proc/self/status").unwrap_or(0)
    }

    fn links_of(&self, i: usize) -> Vec<usize> {
        self.edges
            .iter()
            .filter_map(|&(a, b)| {
                if a == i {
                    Some(b)
                } else if b == i {
                    Some(a)
                } else {
                    None
                }
            })
            .collect()
    }

    fn index_of(&self, peer: &str) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.peer_id.to_string() == peer)
    }

    async fn apply_bans(&self, i: usize) -> anyhow::Result<()> {
        for &(a, b) in &self.bans {
            if a == i {
                self.run(i).ban(self.peer_id(b), true).await?;
            }
        }
        self.flush(i).await
    }

    /// Returns once node `i` has handled every command sent to it so far (they are handled
    /// in order), so that a ban or unban is in force before a dial that depends on it.
    async fn flush(&self, i: usize) -> anyhow::Result<()> {
        if self.is_running(i) {
            self.run(i).peers().await?;
        }
        Ok(())
    }

    async fn dial(&self, a: usize, b: usize) -> anyhow::Result<()> {
        let addr = self.slots[b].addr.clone();
        let mut tries = 0;
        loop {
            match self.run(a).connect(&addr).await {
                Ok(_) => return Ok(()),
                // A restarted node's old connection may still be closing on the other side.
                Err(e) if tries < 20 => {
                    tracing::debug!(a, b, "dial failed, again: {e}");
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e).with_context(|| format!("node {a} dials node {b}")),
            }
        }
    }

    /// Waits until every running, uncut link is connected, as both ends see it; dials a
    /// link again when it stays down (a dial can race a ban being lifted on the other end).
    async fn wait_links(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + SETUP_WAIT;
        let mut redial = Instant::now() + Duration::from_secs(1);
        loop {
            let mut missing = Vec::new();
            for &(a, b) in &self.edges {
                if !self.is_running(a)
                    || !self.is_running(b)
                    || self.bans.contains(&(a, b))
                    || self.bans.contains(&(b, a))
                {
                    continue;
                }
                let (pa, pb) = (self.peer_id(a).to_string(), self.peer_id(b).to_string());
                let a_sees = self.run(a).peers().await?.contains(&pb);
                let b_sees = self.run(b).peers().await?.contains(&pa);
                if !(a_sees && b_sees) {
                    missing.push((a, b));
                }
            }
            if missing.is_empty() {
                return Ok(());
            }
            if Instant::now() > redial {
                for &(a, b) in &missing {
                    if let Err(e) = self.dial(a, b).await {
                        tracing::debug!("redial {a} → {b}: {e:#}");
                    }
                }
                redial = Instant::now() + Duration::from_secs(1);
            }
            if Instant::now() > deadline {
                bail!("links not up within {SETUP_WAIT:?}: {missing:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

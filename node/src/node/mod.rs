//! A running node: the swarm event loop, the iroh endpoint that moves files, and the handle
//! the rest of the program uses.
//!
//! [`Node::spawn`] starts everything; [`NodeHandle`] (cheap to clone) talks to the event loop
//! through a bounded command channel; [`Node::shutdown`] stops it and waits. Records received
//! from peers go through the same [`crate::store::Store::put_batch`] as local writes.

mod behaviour;
mod blobs_net;
mod event_json;
mod event_loop;
mod fetch;
mod nat;
mod relay;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use libp2p::identity;
pub use libp2p::{Multiaddr, PeerId};
use mnode_dag::{
    Cid, Record,
    cids::{self, LinkKind},
    unixfs::View,
};
use mnode_protocols::{GossipTopic, bitswap};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

pub use self::{
    behaviour::{KAD_PROTOCOL, PROTOCOL_VERSION, SwarmError},
    blobs_net::endpoint_builder,
    fetch::{FetchedMany, ManyProgress},
    nat::{NatInfo, NatStatus},
};
use self::{
    blobs_net::BlobNet,
    event_loop::{EventLoop, Parts},
};
use crate::{
    blobs::{BlobError, Blobs},
    config::NetworkConfig,
    peers::KnownPeer,
    repo::{Repo, RepoError},
    store::{Put, StoreError},
};

/// Commands waiting in the event loop's queue at most.
const COMMAND_QUEUE: usize = 256;
/// Events buffered for each [`NodeHandle::events`] subscriber.
const EVENT_QUEUE: usize = 4096;

/// Why a node operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
    /// The network could not start.
    #[error(transparent)]
    Swarm(#[from] SwarmError),
    /// A listen address is malformed or could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The iroh endpoint could not start.
    #[error("cannot start the file transfer endpoint on {addr}: {reason}")]
    Endpoint {
        /// The bind address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// A multiaddr could not be dialled.
    #[error("cannot connect to {addr}: {reason}")]
    Dial {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The store failed or refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The repo failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// The blob store failed.
    #[error(transparent)]
    Blobs(#[from] BlobError),
    /// No connected peer or provider has the file or block.
    #[error("no peer has {0}")]
    NotFound(Cid),
    /// A transfer failed.
    #[error("fetching {cid} failed: {reason}")]
    Fetch {
        /// What was fetched.
        cid: Cid,
        /// Why.
        reason: String,
    },
    /// A block could not be fetched over Bitswap.
    #[error(transparent)]
    Bitswap(#[from] bitswap::FetchError),
    /// A background task panicked or was cancelled.
    #[error("internal task failed: {0}")]
    Task(String),
    /// A network setting has a value the node cannot use.
    #[error("{key}: {value:?} {reason}")]
    Setting {
        /// The setting, such as `network.relays`.
        key: &'static str,
        /// The value refused.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Refuses relay and external addresses the node could not use, before it starts.
fn check_addresses(config: &NetworkConfig) -> Result<(), NodeError> {
    let bad = |key, value: &String, reason: String| NodeError::Setting {
        key,
        value: value.clone(),
        reason,
    };
    for addr in &config.relays {
        let ma: Multiaddr = addr
            .parse()
            .map_err(|e| bad("network.relays", addr, format!("is not a multiaddr: {e}")))?;
        if !matches!(ma.iter().last(), Some(libp2p::multiaddr::Protocol::P2p(_))) {
            return Err(bad(
                "network.relays",
                addr,
                "does not name the relay: it must end in /p2p/<the relay's peer id>".into(),
            ));
        }
    }
    for addr in &config.external_addresses {
        addr.parse::<Multiaddr>().map_err(|e| {
            bad(
                "network.external_addresses",
                addr,
                format!("is not a multiaddr: {e}"),
            )
        })?;
    }
    Ok(())
}

/// Where a node can be reached, as written to `daemon.json` and printed by `mnode id --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeInfo {
    /// The libp2p peer id (from the node key).
    pub peer_id: String,
    /// Listen addresses, each ending in `/p2p/<peer id>`.
    pub addrs: Vec<String>,
    /// The iroh endpoint: its id (the same key) and socket addresses.
    pub blobs: BlobsInfo,
    /// Whether peers can dial it, and where.
    pub nat: NatInfo,
}

/// The iroh endpoint of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlobsInfo {
    /// The endpoint id (hex public key).
    pub endpoint_id: String,
    /// The socket addresses peers are told to try.
    pub addrs: Vec<SocketAddr>,
    /// The relay it is reached through (`network.relay_urls`), once connected to it.
    pub relay: Option<String>,
    /// Bytes of file transfers received straight from peers since the start.
    pub received_direct: u64,
    /// Bytes of file transfers received through a relay since the start.
    pub received_relayed: u64,
}

/// A connected peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerInfo {
    /// Its peer id.
    pub peer_id: String,
    /// The addresses of our connections to it.
    pub addrs: Vec<String>,
    /// Its agent version, once identify has run.
    pub agent: Option<String>,
    /// Whether every connection to it goes through a relay (no hole punched yet).
    pub relayed: bool,
}

/// Something that happened, for subscribers of [`NodeHandle::events`] (tests, live updates).
///
/// Serializes to JSON as `{"event": "stored", "cid": "bafy…", …}` (snake-case event names,
/// peer ids, CIDs and topics as text), and reads back from it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum NodeEvent {
    /// A connection to a peer was established.
    PeerConnected(PeerId),
    /// The last connection to a peer closed.
    PeerDisconnected(PeerId),
    /// A peer subscribed to a topic.
    PeerSubscribed {
        /// The peer.
        peer: PeerId,
        /// The topic (gossipsub topic string).
        topic: String,
    },
    /// A record from a peer was stored.
    Stored {
        /// Its CID.
        cid: Cid,
        /// Its item's id.
        id: Cid,
        /// Its kind.
        kind: String,
        /// The peer it came from.
        from: PeerId,
        /// How it came: gossip or sync.
        via: Via,
    },
    /// A record made on this node ([`NodeHandle::publish`]) was stored.
    Published {
        /// Its CID.
        cid: Cid,
        /// Its item's id.
        id: Cid,
    },
    /// A message from a peer was rejected.
    Rejected {
        /// The peer that sent it.
        from: PeerId,
        /// Why.
        reason: String,
    },
    /// A peer that sent invalid records was disconnected and is refused for
    /// `network.misbehaviour_ban_secs`.
    PeerBanned {
        /// The peer.
        peer: PeerId,
        /// Its gossip score when it crossed the graylist threshold.
        score: f64,
    },
    /// A catch-up exchange with a peer finished.
    Synced {
        /// The topic.
        topic: GossipTopic,
        /// The peer.
        peer: PeerId,
        /// Records fetched and stored.
        stored: usize,
        /// Bytes of record blocks received.
        bytes: u64,
        /// Bytes of reconciliation messages sent and received.
        reconcile_bytes: u64,
        /// Reconciliation rounds.
        rounds: u32,
    },
}

/// How a record arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// In a gossip message.
    Gossip,
    /// By catch-up sync.
    Sync,
}

/// Progress of a file fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchProgress {
    /// The size is known.
    Size(u64),
    /// Bytes held so far, including what an earlier interrupted fetch left.
    Bytes(u64),
}

/// A finished file fetch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fetched {
    /// The file's size.
    pub size: u64,
    /// Bytes this fetch transferred (less than the size when it resumed an earlier one, zero
    /// when the file was already here).
    pub transferred: u64,
    /// Which peers served how many of those bytes.
    pub from: Vec<(PeerId, u64)>,
}

/// Bytes a node's libp2p transports moved since it started (every protocol, framing
/// included; file transfers over iroh are not in it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Traffic {
    /// Bytes sent.
    pub sent: u64,
    /// Bytes received.
    pub received: u64,
}

impl Traffic {
    /// Sums the `libp2p_bandwidth_bytes` counters of `registry`.
    fn read(registry: &prometheus_client::registry::Registry) -> Self {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, registry).is_err() {
            return Self::default();
        }
        let mut t = Self::default();
        for line in text.lines().filter(|l| l.starts_with("libp2p_bandwidth")) {
            let Some(n) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else {
                continue;
            };
            let n = n as u64;
            if line.contains("direction=\"Inbound\"") {
                t.received += n;
            } else if line.contains("direction=\"Outbound\"") {
                t.sent += n;
            }
        }
        t
    }
}

pub(crate) enum Command {
    Info(oneshot::Sender<NodeInfo>),
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    Remembered(oneshot::Sender<Vec<KnownPeer>>),
    Dial {
        addr: Multiaddr,
        reply: oneshot::Sender<Result<PeerId, NodeError>>,
    },
    Follow {
        topic: GossipTopic,
        follow: bool,
        reply: oneshot::Sender<Result<(), NodeError>>,
    },
    Publish {
        records: Vec<Record>,
        reply: oneshot::Sender<Result<Vec<Put>, NodeError>>,
    },
    Sync {
        topic: GossipTopic,
        reply: oneshot::Sender<usize>,
    },
    Provide(Vec<Cid>),
    FindProviders {
        cid: Cid,
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    /// Asks `peers` (every connected peer if `None`; else DHT providers, dialled if need be)
    /// which of `cids` they hold.
    BlobAddrs {
        peers: Option<Vec<PeerId>>,
        cids: Vec<Cid>,
        reply: oneshot::Sender<Vec<event_loop::Holder>>,
    },
    Ban {
        peer: PeerId,
        ban: bool,
    },
    Score {
        peer: PeerId,
        reply: oneshot::Sender<Option<f64>>,
    },
}

/// Talks to a running node. Cheap to clone.
#[derive(Clone)]
pub struct NodeHandle {
    tx: mpsc::Sender<Command>,
    events: broadcast::Sender<NodeEvent>,
    peer_id: PeerId,
    repo: Arc<Repo>,
    blobs: Arc<Blobs>,
    net: Arc<BlobNet>,
    bitswap: bitswap::Bitswap,
    /// Serialises accounts' follow changes, so the node-level follow matches their union.
    account_follows: Arc<tokio::sync::Mutex<()>>,
    /// The transports' byte counters.
    metrics: Arc<prometheus_client::registry::Registry>,
}

/// What Bitswap serves: the record store's blocks, the blocks of files' UnixFS views (leaves
/// read out of the files), and files small enough to be one block.
struct RepoBlocks {
    repo: Arc<Repo>,
    blobs: Arc<Blobs>,
    /// Runs the blob store's reads: the service calls on a blocking thread.
    rt: tokio::runtime::Handle,
}

/// The largest file Bitswap serves as one raw block (by its BLAKE3 CID): the block size
/// IPFS implementations accept.
const MAX_BITSWAP_FILE: u64 = 2 << 20;

impl bitswap::BlockSource for RepoBlocks {
    fn has(&self, cid: &Cid) -> bool {
        let store = self.repo.store();
        match cids::link_kind(cid) {
            LinkKind::UnixFs => store.has_view_block(cid).unwrap_or(false),
            LinkKind::Blob => self
                .rt
                .block_on(self.blobs.size(cid))
                .ok()
                .flatten()
                .is_some_and(|size| size <= MAX_BITSWAP_FILE),
            _ => store.has_block(cid).unwrap_or(false),
        }
    }

    fn get(&self, cid: &Cid) -> Option<Vec<u8>> {
        let store = self.repo.store();
        match cids::link_kind(cid) {
            LinkKind::UnixFs => self
                .rt
                .block_on(crate::unixfs::view_block(store, &self.blobs, cid))
                .ok()
                .flatten(),
            LinkKind::Blob => self.rt.block_on(async {
                let size = self.blobs.size(cid).await.ok().flatten()?;
                if size > MAX_BITSWAP_FILE {
                    return None;
                }
                self.blobs.read_to_bytes(cid).await.ok().map(|b| b.to_vec())
            }),
            _ => store.block(cid).ok().flatten(),
        }
    }
}

impl std::fmt::Debug for NodeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeHandle")
            .field("peer_id", &self.peer_id)
            .finish_non_exhaustive()
    }
}

impl NodeHandle {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NodeError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)
    }

    /// The node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The repo the node runs on.
    pub fn repo(&self) -> &Arc<Repo> {
        &self.repo
    }

    /// The blob store.
    pub fn blobs(&self) -> &Arc<Blobs> {
        &self.blobs
    }

    /// Bytes the node's libp2p transports moved since it started.
    pub fn traffic(&self) -> Traffic {
        Traffic::read(&self.metrics)
    }

    /// Events from now on.
    pub fn events(&self) -> broadcast::Receiver<NodeEvent> {
        self.events.subscribe()
    }

    /// Where the node can be reached.
    pub async fn info(&self) -> Result<NodeInfo, NodeError> {
        self.ask(Command::Info).await
    }

    /// Connected peers.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, NodeError> {
        self.ask(Command::Peers).await
    }

    /// Peers this node reached, now or before a restart (connected or not), the most
    /// recently seen first: the ones it dials again at start.
    pub async fn remembered_peers(&self) -> Result<Vec<KnownPeer>, NodeError> {
        self.ask(Command::Remembered).await
    }

    /// Connects to a peer and waits until the connection is up.
    pub async fn connect(&self, addr: Multiaddr) -> Result<PeerId, NodeError> {
        self.ask(|reply| Command::Dial { addr, reply }).await?
    }

    /// Follows a feed, branch or thread: remembers it, subscribes, and catches up from
    /// connected peers.
    pub async fn follow(&self, topic: GossipTopic) -> Result<(), NodeError> {
        self.ask(|reply| Command::Follow {
            topic,
            follow: true,
            reply,
        })
        .await?
    }

    /// Stops following a topic: unsubscribes; what was stored stays until GC.
    pub async fn unfollow(&self, topic: GossipTopic) -> Result<(), NodeError> {
        self.ask(|reply| Command::Follow {
            topic,
            follow: false,
            reply,
        })
        .await?
    }

    /// Makes the account `handle` follow `topic`, and the node with it if no account did yet
    /// (the node subscribes to the union of its accounts' follows). Returns whether the account
    /// did not follow it already.
    pub async fn follow_as(&self, handle: &str, topic: GossipTopic) -> Result<bool, NodeError> {
        let _guard = self.account_follows.lock().await;
        let (repo, h) = (self.repo.clone(), handle.to_owned());
        let (added, node_follows) = tokio::task::spawn_blocking(move || {
            let added = repo.store().account_follow(&h, &topic)?;
            let node_follows = repo.store().follows()?.contains(&topic);
            Ok::<_, StoreError>((added, node_follows))
        })
        .await
        .map_err(|e| NodeError::Task(e.to_string()))??;
        if !node_follows {
            self.follow(topic).await?;
        }
        Ok(added)
    }

    /// Makes the account `handle` stop following `topic`, and the node with it when no account
    /// follows it any more. Returns whether the account followed it.
    pub async fn unfollow_as(&self, handle: &str, topic: GossipTopic) -> Result<bool, NodeError> {
        let _guard = self.account_follows.lock().await;
        let (repo, h) = (self.repo.clone(), handle.to_owned());
        let (removed, last) = tokio::task::spawn_blocking(move || {
            let removed = repo.store().account_unfollow(&h, &topic)?;
            let last = removed && repo.store().topic_followers(&topic)?.is_empty();
            Ok::<_, StoreError>((removed, last))
        })
        .await
        .map_err(|e| NodeError::Task(e.to_string()))??;
        if last {
            self.unfollow(topic).await?;
        }
        Ok(removed)
    }

    /// Stores records (all or none) and gossips each new one into its topics.
    pub async fn publish(&self, records: Vec<Record>) -> Result<Vec<Put>, NodeError> {
        self.ask(|reply| Command::Publish { records, reply })
            .await?
    }

    /// Starts catch-up of `topic` with every connected peer; returns how many exchanges began.
    /// Their results arrive as [`NodeEvent::Synced`].
    pub async fn sync(&self, topic: GossipTopic) -> Result<usize, NodeError> {
        self.ask(|reply| Command::Sync { topic, reply }).await
    }

    /// Announces in the DHT that this node provides `cids`.
    pub async fn provide(&self, cids: Vec<Cid>) -> Result<(), NodeError> {
        self.tx
            .send(Command::Provide(cids))
            .await
            .map_err(|_| NodeError::Stopped)
    }

    /// Peers that announced `cid` in the DHT.
    pub async fn find_providers(&self, cid: Cid) -> Result<Vec<PeerId>, NodeError> {
        self.ask(|reply| Command::FindProviders { cid, reply })
            .await
    }

    /// Disconnects and refuses a peer (`ban = false` lets it back).
    pub async fn ban(&self, peer: PeerId, ban: bool) -> Result<(), NodeError> {
        self.tx
            .send(Command::Ban { peer, ban })
            .await
            .map_err(|_| NodeError::Stopped)
    }

    /// The gossipsub score this node gives `peer` (None if it is not a gossip peer).
    pub async fn peer_score(&self, peer: PeerId) -> Result<Option<f64>, NodeError> {
        self.ask(|reply| Command::Score { peer, reply }).await
    }

    /// Fetches one block over Bitswap from connected peers (verified against its CID) and
    /// stores it if it is a valid record. Returns its bytes.
    pub async fn fetch_block(&self, cid: Cid, timeout: Duration) -> Result<Vec<u8>, NodeError> {
        if let Some(b) = self.repo.store().block(&cid)? {
            return Ok(b);
        }
        let bytes = self.bitswap.fetch(cid, vec![], timeout).await?;
        Ok(bytes)
    }

    /// Keeps `view` as the UnixFS view of the held file `blob` and announces its root, so
    /// IPFS clients find and fetch the file by it (Bitswap, the gateway).
    pub async fn add_view(&self, blob: &Cid, view: &View) -> Result<(), NodeError> {
        self.add_views(vec![(*blob, view.clone())]).await
    }

    /// [`NodeHandle::add_view`] of many files: one write, and one announcement of their
    /// roots.
    pub async fn add_views(&self, views: Vec<(Cid, View)>) -> Result<(), NodeError> {
        let repo = Arc::clone(&self.repo);
        let roots = views.iter().map(|(_, v)| v.root).collect();
        tokio::task::spawn_blocking(move || {
            repo.store().put_views(views.iter().map(|(b, v)| (b, v)))
        })
        .await
        .map_err(|e| NodeError::Blobs(crate::blobs::BlobError::Store(e.to_string())))??;
        self.provide(roots).await
    }

    /// Builds the UnixFS view of a held file (reading it once), keeps and announces it, and
    /// returns its root. Files already indexed are not read again.
    pub async fn index_file(&self, blob: &Cid) -> Result<Cid, NodeError> {
        if let Some(root) = self.repo.store().view_of(blob)? {
            return Ok(root);
        }
        let view = self.blobs.unixfs_view(blob).await?;
        self.add_view(blob, &view).await?;
        Ok(view.root)
    }

    /// Makes the UnixFS views of files that just arrived, for IPFS clients, in the background
    /// (one read of each; the fetch does not wait for that).
    fn index_later(&self, cids: Vec<Cid>) {
        let me = self.clone();
        tokio::spawn(async move {
            for cid in cids {
                if let Err(e) = me.index_file(&cid).await {
                    tracing::warn!(%cid, "cannot index the fetched file's UnixFS view: {e}");
                }
            }
        });
    }

    /// Builds, keeps and announces the UnixFS views of the held files that have none, one file
    /// at a time; returns how many it made.
    pub async fn index_missing_views(&self) -> usize {
        let held = match self.blobs.list().await {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!("cannot list files to index their UnixFS views: {e}");
                return 0;
            }
        };
        let mut made = 0;
        for (cid, _) in held {
            if !matches!(self.repo.store().view_of(&cid), Ok(None)) {
                continue;
            }
            match self.index_file(&cid).await {
                Ok(_) => made += 1,
                // Deleted meanwhile, say: it is tried again at the next start.
                Err(e) => tracing::debug!(%cid, "no UnixFS view made: {e}"),
            }
        }
        if made > 0 {
            tracing::info!(
                files = made,
                "made the UnixFS views of files held without one"
            );
        }
        made
    }

    /// Fetches a file from peers that hold it (connected peers that say so, then DHT
    /// providers), verified as it streams, resuming what an earlier fetch left, and keeps it.
    pub async fn fetch_file(
        &self,
        cid: Cid,
        progress: impl FnMut(FetchProgress) + Send,
    ) -> Result<Fetched, NodeError> {
        tracing::debug!(%cid, "fetch: start");
        if self.blobs.has(&cid).await.unwrap_or(false) {
            let added = self.blobs.keep(&cid).await?;
            tracing::debug!(%cid, "fetch: the file is held here already");
            return Ok(Fetched {
                size: added.size,
                transferred: 0,
                from: Vec::new(),
            });
        }
        // Connected peers first: one round trip. The DHT only if none of them holds it.
        let start = std::time::Instant::now();
        let providers = self
            .holders(vec![cid])
            .await?
            .pop()
            .map(|(_, holders)| holders)
            .unwrap_or_default();
        tracing::debug!(%cid, holders = providers.len(), ms = start.elapsed().as_millis(), "fetch: found its holders");
        if providers.is_empty() {
            return Err(NodeError::NotFound(cid));
        }
        let fetched = self
            .net
            .fetch(&self.blobs, cid, providers, progress)
            .await?;
        self.blobs.keep(&cid).await?;
        self.provide(vec![cid]).await?;
        self.index_later(vec![cid]);
        tracing::info!(
            %cid,
            size = fetched.size,
            transferred = fetched.transferred,
            from = fetched.from.len(),
            "fetched a file"
        );
        Ok(fetched)
    }
}

/// Refuses a listen address whose port something already holds.
///
/// libp2p's TCP transport sets `SO_REUSEPORT` on its listeners (so that dials can leave from
/// the listen port), and so a second daemon given the same port binds it without error and
/// takes a share of the connections meant for the first. A plain bind, without that option,
/// fails while any socket listens on the port. QUIC's UDP socket has no such option and its
/// own bind would fail; probing it too gives the same clear error.
fn check_port_free(ma: &Multiaddr) -> Result<(), String> {
    use libp2p::multiaddr::Protocol;
    let mut parts = ma.iter();
    let ip: std::net::IpAddr = match parts.next() {
        Some(Protocol::Ip4(ip)) => ip.into(),
        Some(Protocol::Ip6(ip)) => ip.into(),
        _ => return Ok(()),
    };
    let addr = match parts.next() {
        Some(Protocol::Tcp(port) | Protocol::Udp(port)) if port != 0 => SocketAddr::new(ip, port),
        _ => return Ok(()),
    };
    let tcp = ma.iter().any(|p| matches!(p, Protocol::Tcp(_)));
    // A relayed address names the relay's port, not one of ours.
    if nat::is_relayed(ma) {
        return Ok(());
    }
    let probe = if tcp {
        std::net::TcpListener::bind(addr).map(drop)
    } else {
        std::net::UdpSocket::bind(addr).map(drop)
    };
    probe.map_err(|e| describe_bind_error(&e))
}

/// A bind failure, said so that a person knows what to change.
fn describe_bind_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => "the port is in use by another program (another mnode \
             daemon?); stop it or choose another port in network.listen"
            .into(),
        std::io::ErrorKind::AddrNotAvailable => {
            "no network interface of this machine has that address".into()
        }
        _ => e.to_string(),
    }
}

/// Why `listen_on` refused an address.
fn listen_error(e: &libp2p::TransportError<std::io::Error>) -> String {
    match e {
        libp2p::TransportError::MultiaddrNotSupported(_) => {
            "not an address the node can listen on (use /ip4|ip6/…/tcp/PORT or …/udp/PORT/quic-v1)"
                .into()
        }
        libp2p::TransportError::Other(io) => describe_bind_error(io),
    }
}

/// A running node.
pub struct Node {
    handle: NodeHandle,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    /// The iroh relay this node runs for others (`network.relay_server`).
    relay_server: Option<Box<iroh_relay::server::Server>>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

impl Node {
    /// Starts the node on an open repo and its blob store: binds the libp2p listen addresses
    /// and the iroh endpoint from the repo's config, subscribes to followed topics, dials the
    /// bootstrap peers, and runs the event loop until [`Node::shutdown`].
    pub async fn spawn(repo: Repo, blobs: Blobs) -> Result<Node, NodeError> {
        let repo = Arc::new(repo);
        let blobs = Arc::new(blobs);
        let node_key = repo.node_key()?;
        let key = identity::Keypair::ed25519_from_bytes(node_key.secret_bytes())
            .map_err(|e| NodeError::Swarm(SwarmError::Build(e.to_string())))?;
        let peer_id = key.public().to_peer_id();
        let config = repo.config().network.clone();
        check_addresses(&config)?;
        let mut metrics = prometheus_client::registry::Registry::default();
        let mut swarm = behaviour::build(&key, &config, &mut metrics)?;
        let bitswap = bitswap::Bitswap::spawn(
            swarm.behaviour().stream.new_control(),
            Arc::new(RepoBlocks {
                repo: repo.clone(),
                blobs: blobs.clone(),
                rt: tokio::runtime::Handle::current(),
            }),
            bitswap::Config::default(),
        )
        .map_err(|e| NodeError::Swarm(SwarmError::Build(e.to_string())))?;
        let mut listen = Vec::with_capacity(config.listen.len());
        for addr in &config.listen {
            let ma: Multiaddr = addr.parse().map_err(|e| NodeError::Listen {
                addr: addr.clone(),
                reason: format!("{e}"),
            })?;
            listen.push((addr, ma));
        }
        // All checked before any is bound: the node's own listeners would fail the check.
        for (addr, ma) in &listen {
            check_port_free(ma).map_err(|reason| NodeError::Listen {
                addr: (*addr).clone(),
                reason,
            })?;
        }
        for (addr, ma) in listen {
            swarm.listen_on(ma).map_err(|e| NodeError::Listen {
                addr: addr.clone(),
                reason: listen_error(&e),
            })?;
        }
        let blobs_addrs = blobs_net::bind_addrs(&config)?;
        let relays = relay::relays(&config)?;
        let net =
            Arc::new(BlobNet::bind(node_key.secret_bytes(), &blobs_addrs, relays, &blobs).await?);
        let relay_server = if config.relay_server {
            Some(Box::new(
                relay::spawn(&node_key.secret_bytes(), &config.relay_limits).await?,
            ))
        } else {
            None
        };
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let (events, _) = broadcast::channel(EVENT_QUEUE);
        let cancel = CancellationToken::new();
        let handle = NodeHandle {
            tx,
            events: events.clone(),
            peer_id,
            repo: repo.clone(),
            blobs: blobs.clone(),
            net: net.clone(),
            bitswap: bitswap.clone(),
            account_follows: Arc::default(),
            metrics: Arc::new(metrics),
        };
        let mut event_loop = EventLoop::new(Parts {
            swarm,
            rx,
            cancel: cancel.clone(),
            events,
            repo,
            net,
            blobs,
            bitswap,
            config,
        })?;
        // Wait for the listeners, so that `info()` right after `spawn` has real ports.
        event_loop.wait_listening(Duration::from_secs(5)).await?;
        let task = tokio::spawn(event_loop.run());
        // Files held without a UnixFS view (added before views existed, or while a view could
        // not be made) get theirs in the background, one at a time.
        let indexer = handle.clone();
        let stop = cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = stop.cancelled() => {}
                _ = indexer.index_missing_views() => {}
            }
        });
        Ok(Node {
            handle,
            cancel,
            task,
            relay_server,
        })
    }

    /// A handle to the node.
    pub fn handle(&self) -> NodeHandle {
        self.handle.clone()
    }

    /// Stops the event loop and the endpoint, flushes the store, and closes the blob store.
    pub async fn shutdown(self) -> Result<(), NodeError> {
        self.cancel.cancel();
        self.task
            .await
            .map_err(|e| NodeError::Task(e.to_string()))?;
        if let Some(relay) = self.relay_server
            && let Err(e) = relay.shutdown().await
        {
            tracing::warn!("the iroh relay did not stop cleanly: {e}");
        }
        let NodeHandle {
            repo,
            blobs,
            net,
            bitswap,
            ..
        } = self.handle;
        bitswap.shutdown().await;
        net.shutdown().await;
        repo.store().flush()?;
        // The endpoint's blobs protocol has shut the store down with it; closing it again
        // (when this was the last handle) only stops the GC and confirms.
        if let Ok(blobs) = Arc::try_unwrap(blobs)
            && let Err(e) = blobs.shutdown().await
        {
            tracing::debug!("blob store already closed: {e}");
        }
        Ok(())
    }
}

//! The one task that owns the swarm.
//!
//! Commands arrive on a bounded channel; swarm events are handled as they come. Anything that
//! touches the disk or verifies signatures runs on the blocking pool through `tasks`, whose
//! results come back into this loop, so the loop never waits on slow work.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::Arc,
    time::Duration,
};

use futures::StreamExt;
use libp2p::{
    Multiaddr, PeerId, Swarm,
    core::transport::ListenerId,
    gossipsub::{self, MessageId},
    identify, kad,
    multiaddr::Protocol,
    request_response::{self, OutboundRequestId, ResponseChannel},
    swarm::{
        ConnectionId, DialError, SwarmEvent,
        dial_opts::{DialOpts, PeerCondition},
    },
};
use mnode_dag::registry::Topic;
use mnode_dag::{
    Cid, Record,
    cids::{self, LinkKind},
};
use mnode_protocols::{GossipTopic, bitswap::Bitswap, blobs, gossip, sync};
use tokio::{
    sync::{broadcast, mpsc, oneshot},
    task::JoinSet,
};
use tokio_util::sync::CancellationToken;

use super::{
    BlobsInfo, Command, NodeError, NodeEvent, NodeInfo, PeerInfo, Via,
    behaviour::{BLOBS_REQUEST_TIMEOUT, Behaviour, BehaviourEvent},
    blobs_net::{BlobNet, EndpointAt},
    nat::{self, Reach},
};
use crate::{
    blobs::Blobs,
    config::NetworkConfig,
    peers::{KnownPeer, MAX_REMEMBERED, PeerMemory},
    repo::Repo,
    store::{Put, StoreError},
};

/// How often the node walks the DHT to refresh its routing table, once it has peers.
const BOOTSTRAP_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// How long a relayed connection stays open once a direct one to the same peer exists, so that
/// what runs on it (a catch-up, a request) can finish.
const RELAYED_GRACE: Duration = Duration::from_secs(10);
/// How long the node waits before asking a relay for a slot again after losing it.
const RELAY_RETRY: Duration = Duration::from_secs(10);
/// DHT announcements of held files running at once (see [`EventLoop::provide`]).
const PROVIDES_AT_ONCE: usize = 32;
/// How often the held files are announced again, through the same queue: Kademlia's own
/// republishing (off, see `behaviour.rs`) would start them all at once. Provider records live
/// 48 h in the DHT.
const REANNOUNCE_INTERVAL: Duration = Duration::from_secs(12 * 60 * 60);

/// Results of blocking work, handed back to the loop.
enum Done {
    /// Topics followed on the node's own initiative (the branches of a followed forum):
    /// subscribe and catch up.
    AutoFollow(Vec<GossipTopic>),
    /// A question of which files peers hold is answered with what has come by now.
    BlobQueryExpired(u64),
    Gossip {
        id: MessageId,
        source: PeerId,
        topic: Option<GossipTopic>,
        verdict: gossip::Verdict,
        stored: Vec<(Cid, Cid, String)>,
        reason: Option<String>,
        missing_prev: bool,
        /// Another topic to catch up when something is missing: the feed of the identity a
        /// rotated key signed for, where its key log travels.
        also: Option<GossipTopic>,
    },
    Published {
        reply: oneshot::Sender<Result<Vec<Put>, NodeError>>,
        result: Result<Prepared, NodeError>,
    },
    Respond {
        channel: ResponseChannel<sync::Response>,
        response: sync::Response,
    },
    RespondBlobs {
        channel: ResponseChannel<blobs::Response>,
        response: blobs::Response,
    },
    SyncStart {
        topic: GossipTopic,
        peer: PeerId,
        set: Result<sync::SyncSet, StoreError>,
    },
    /// A catch-up's response, checked (its records decoded and verified) off the loop.
    SyncHandled {
        job: u64,
        catch_up: Box<sync::CatchUp>,
        result: Result<sync::Progress, sync::SyncError>,
    },
    SyncStored {
        job: u64,
        stored: Vec<(Cid, Cid, String)>,
    },
    /// Files this node holds, to announce in the DHT.
    Provide(Vec<Cid>),
    Followed {
        topic: GossipTopic,
        follow: bool,
        result: Result<(), NodeError>,
        reply: oneshot::Sender<Result<(), NodeError>>,
    },
    /// Gossip messages for records a catch-up brought.
    Regossip(Vec<(GossipTopic, Vec<u8>)>),
    /// A direct connection to the peer exists since a while: close the relayed ones.
    CloseRelayed(PeerId),
    /// Ask the relay at this address for a slot again.
    Relisten(Multiaddr),
    Nothing,
}

/// Stored puts, the gossip messages to send (topic, data), the CIDs to announce and the kinds
/// of the records put.
type Prepared = (Vec<Put>, Vec<(GossipTopic, Vec<u8>)>, Vec<Cid>, Vec<String>);
/// A peer that holds some of the files asked about: where its iroh endpoint listens, and one
/// flag per asked CID, in order.
#[derive(Debug, Clone)]
pub(crate) struct Holder {
    pub(crate) peer: PeerId,
    pub(crate) at: EndpointAt,
    pub(crate) have: Vec<bool>,
}
/// A DHT provider query: who answered so far, and who waits for the answer.
type ProviderQuery = (HashSet<PeerId>, Option<oneshot::Sender<Vec<PeerId>>>);

/// How long the other peers asked which files they hold may still answer once one has said
/// it holds some (a fetch from several holders splits the file between them).
const HOLDERS_GRACE: Duration = Duration::from_secs(1);

/// A catch-up of one topic from one peer.
struct SyncJob {
    peer: PeerId,
    topic: GossipTopic,
    /// `None` while a response is being checked on the blocking pool.
    catch_up: Option<Box<sync::CatchUp>>,
    /// Store tasks still running for this job.
    storing: usize,
    stored: usize,
    /// What it stored, to gossip on when it is little (see [`REGOSSIP_MAX`]).
    new: Vec<Cid>,
    /// Set when the exchange is over.
    summary: Option<sync::Summary>,
}

/// A catch-up that stores at most this many records gossips them on to the node's other
/// peers: a healed partition or a node back from a short absence then spreads what it learnt
/// at gossip speed, instead of each of its neighbours waiting for their next periodic sync. A
/// longer catch-up (a new follower taking a whole history) is not re-gossiped.
const REGOSSIP_MAX: usize = 512;

/// A question to peers about which of `asked` files they hold, in chunks of
/// [`blobs::MAX_HAS`] CIDs a request.
struct BlobQuery {
    asked: usize,
    /// Per peer, the answers (one per chunk of the question) still to come.
    pending: HashMap<PeerId, usize>,
    /// Whether a holder has answered in full: the others then get [`HOLDERS_GRACE`] more.
    found_one: bool,
    found: HashMap<PeerId, Holder>,
    reply: Option<oneshot::Sender<Vec<Holder>>>,
}

pub(crate) struct EventLoop {
    swarm: Swarm<Behaviour>,
    rx: mpsc::Receiver<Command>,
    cancel: CancellationToken,
    events: broadcast::Sender<NodeEvent>,
    repo: Arc<Repo>,
    net: Arc<BlobNet>,
    blobs: Arc<Blobs>,
    bitswap: Bitswap,
    config: NetworkConfig,
    tasks: JoinSet<Done>,
    listening: Vec<Multiaddr>,
    agents: HashMap<PeerId, String>,
    /// The remote address of each open connection, by peer.
    conns: HashMap<PeerId, Vec<(ConnectionId, Multiaddr)>>,
    /// Peers reached now or before (as on disk, see [`crate::peers`]), bounded.
    known: HashMap<PeerId, KnownPeer>,
    dials: HashMap<ConnectionId, (Multiaddr, oneshot::Sender<Result<PeerId, NodeError>>)>,
    providers: HashMap<kad::QueryId, ProviderQuery>,
    blob_queries: HashMap<u64, BlobQuery>,
    /// Each `Has` request's query and the offset of its first CID in the query.
    blob_requests: HashMap<OutboundRequestId, (u64, usize)>,
    jobs: HashMap<u64, SyncJob>,
    pending: HashMap<OutboundRequestId, u64>,
    /// Peers waiting to catch a topic up with this node, by topic. A topic has at most one
    /// catch-up running (its key is here while it does): the peers after the first reconcile
    /// against what the ones before brought, instead of each fetching the same records.
    sync_queue: HashMap<GossipTopic, VecDeque<PeerId>>,
    sync_config: sync::Config,
    next_id: u64,
    subscribed: HashSet<GossipTopic>,
    /// Whether the held files were announced since the node started.
    announced: bool,
    /// Files waiting to be announced in the DHT, and the announcement queries running: at most
    /// [`PROVIDES_AT_ONCE`] at a time (see [`EventLoop::provide`]).
    to_provide: VecDeque<Cid>,
    providing: HashSet<kad::QueryId>,
    /// Peers refused for misbehaving, until when.
    misbehaving: HashMap<PeerId, tokio::time::Instant>,
    /// What each author may still put into each shared topic this minute.
    budget: Arc<std::sync::Mutex<gossip::AuthorBudget>>,
    /// Reachability: AutoNAT's findings, relay slots, hole punches.
    reach: Reach,
    /// The listeners on relays (`…/p2p-circuit`), each with its relay's address.
    relay_listeners: HashMap<ListenerId, Multiaddr>,
    /// Whether the DHT was walked since its routing table got its first peer.
    bootstrapped: bool,
}

/// What the event loop is made of.
pub(crate) struct Parts {
    pub(crate) swarm: Swarm<Behaviour>,
    pub(crate) rx: mpsc::Receiver<Command>,
    pub(crate) cancel: CancellationToken,
    pub(crate) events: broadcast::Sender<NodeEvent>,
    pub(crate) repo: Arc<Repo>,
    pub(crate) net: Arc<BlobNet>,
    pub(crate) blobs: Arc<Blobs>,
    pub(crate) bitswap: Bitswap,
    pub(crate) config: NetworkConfig,
}

impl EventLoop {
    pub(crate) fn new(parts: Parts) -> Result<Self, NodeError> {
        let Parts {
            swarm,
            rx,
            cancel,
            events,
            repo,
            net,
            blobs,
            bitswap,
            config,
        } = parts;
        let budget = gossip::AuthorBudget::new(config.gossip_author_per_minute, 60_000);
        let mut this = Self {
            swarm,
            rx,
            cancel,
            events,
            repo,
            net,
            blobs,
            bitswap,
            config,
            tasks: JoinSet::new(),
            listening: vec![],
            agents: HashMap::new(),
            conns: HashMap::new(),
            known: HashMap::new(),
            dials: HashMap::new(),
            providers: HashMap::new(),
            blob_queries: HashMap::new(),
            blob_requests: HashMap::new(),
            jobs: HashMap::new(),
            pending: HashMap::new(),
            sync_queue: HashMap::new(),
            sync_config: sync::Config::default(),
            next_id: 0,
            subscribed: HashSet::new(),
            announced: false,
            to_provide: VecDeque::new(),
            providing: HashSet::new(),
            misbehaving: HashMap::new(),
            budget: Arc::new(std::sync::Mutex::new(budget)),
            reach: Reach::default(),
            relay_listeners: HashMap::new(),
            bootstrapped: false,
        };
        // Each account hosted here hears what is said to it: replies and notes about its
        // records travel on its feed's topic too.
        let accounts = this.repo.accounts().list().unwrap_or_default();
        // An account that rotated hears on its identity's feed and its current key's.
        for a in &accounts {
            for did in a.identity().into_iter().chain(a.did()) {
                this.subscribe(GossipTopic::Author(*did));
            }
        }
        for topic in this.repo.store().follows()? {
            this.subscribe(topic);
        }
        for addr in this.config.bootstrap.clone() {
            match addr.parse::<Multiaddr>() {
                Ok(ma) => {
                    // The DHT starts from the bootstrap peers: its first walk asks them.
                    if let Some(Protocol::P2p(peer)) = ma.iter().last() {
                        this.swarm
                            .behaviour_mut()
                            .kad
                            .add_address(&peer, ma.clone());
                    }
                    if let Err(e) = this.swarm.dial(ma) {
                        tracing::warn!(%addr, "bootstrap dial failed: {e}");
                    }
                }
                Err(e) => tracing::warn!(%addr, "bad bootstrap address: {e}"),
            }
        }
        for addr in this.config.external_addresses.clone() {
            match addr.parse::<Multiaddr>() {
                Ok(ma) => this.swarm.add_external_address(ma),
                Err(e) => tracing::warn!(%addr, "bad external address: {e}"),
            }
        }
        this.redial_known();
        Ok(this)
    }

    /// Reserves a slot on the relay at `relay` and listens through it (`…/p2p-circuit`): peers
    /// that cannot dial this node reach it there.
    fn listen_via(&mut self, relay: Multiaddr) {
        match self
            .swarm
            .listen_on(relay.clone().with(Protocol::P2pCircuit))
        {
            Ok(id) => {
                self.relay_listeners.insert(id, relay);
            }
            Err(e) => tracing::warn!(%relay, "cannot listen through the relay: {e}"),
        }
    }

    /// Loads the peers reached before and dials the most recently seen of them
    /// (`network.redial_peers`).
    fn redial_known(&mut self) {
        let known = match PeerMemory::new(self.repo.store()).list() {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!("cannot read the peers reached before: {e}");
                return;
            }
        };
        let me = *self.swarm.local_peer_id();
        let mut dialled = 0;
        for peer in known.iter().take(self.config.redial_peers) {
            if peer.peer_id == me || peer.addrs.is_empty() {
                continue;
            }
            let opts = DialOpts::peer_id(peer.peer_id)
                .addresses(peer.addrs.clone())
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            match self.swarm.dial(opts) {
                Ok(()) => dialled += 1,
                Err(e) => tracing::debug!(peer = %peer.peer_id, "not redialled: {e}"),
            }
        }
        if dialled > 0 {
            tracing::info!("dialling {dialled} peers reached before");
        }
        self.known = known
            .into_iter()
            .take(MAX_REMEMBERED)
            .map(|p| (p.peer_id, p))
            .collect();
    }

    /// Runs the swarm until it reports its first listen address (or `limit` passes). A
    /// listener that fails meanwhile fails the start.
    pub(crate) async fn wait_listening(&mut self, limit: Duration) -> Result<(), NodeError> {
        let deadline = tokio::time::Instant::now() + limit;
        while self.listening.len() < self.config.listen.len() {
            tokio::select! {
                ev = self.swarm.select_next_some() => match ev {
                    SwarmEvent::ListenerClosed { addresses, reason: Err(e), .. } => {
                        let addrs: Vec<String> = addresses.iter().map(ToString::to_string).collect();
                        return Err(NodeError::Listen {
                            addr: addrs.join(", "),
                            reason: e.to_string(),
                        });
                    }
                    SwarmEvent::ListenerError { error, .. } => {
                        return Err(NodeError::Listen {
                            addr: self.config.listen.join(", "),
                            reason: error.to_string(),
                        });
                    }
                    ev => self.on_swarm_event(ev),
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        Ok(())
    }

    /// Notes that `peer` was reached on `addrs` (see [`KnownPeer::seen`]) and writes it down.
    fn remember(&mut self, peer: PeerId, addrs: Vec<Multiaddr>) {
        // A refused peer is not remembered, even from what it sent before the refusal closed
        // its connection (an identify answer still on its way).
        if peer == *self.swarm.local_peer_id()
            || self
                .swarm
                .behaviour()
                .blocked
                .blocked_peers()
                .contains(&peer)
        {
            return;
        }
        let entry = self.known.entry(peer).or_insert_with(|| KnownPeer {
            peer_id: peer,
            addrs: Vec::new(),
            last_seen: 0,
        });
        entry.seen(addrs, mnode_dag::record::now_ms());
        if entry.addrs.is_empty() {
            // Nothing to dial it by (it has only dialled us, and not said where it listens).
            self.known.remove(&peer);
            return;
        }
        let value = entry.clone();
        let mut evicted = None;
        if self.known.len() > MAX_REMEMBERED
            && let Some(oldest) = self
                .known
                .values()
                .min_by_key(|k| k.last_seen)
                .map(|k| k.peer_id)
        {
            self.known.remove(&oldest);
            evicted = Some(oldest);
        }
        let repo = self.repo.clone();
        self.tasks.spawn_blocking(move || {
            let memory = PeerMemory::new(repo.store());
            let written = memory
                .put(&value)
                .and_then(|()| evicted.map_or(Ok(()), |p| memory.forget(&p)));
            if let Err(e) = written {
                tracing::warn!(peer = %value.peer_id, "cannot remember a peer: {e}");
            }
            Done::Nothing
        });
    }

    /// Forgets `peer` (it is not dialled again at start).
    fn forget(&mut self, peer: PeerId) {
        if self.known.remove(&peer).is_none() {
            return;
        }
        let repo = self.repo.clone();
        self.tasks.spawn_blocking(move || {
            if let Err(e) = PeerMemory::new(repo.store()).forget(&peer) {
                tracing::warn!(%peer, "cannot forget a peer: {e}");
            }
            Done::Nothing
        });
    }

    /// Refreshes the DHT routing table, if it has anyone to ask (Kademlia's own periodic
    /// bootstrap is off: with no peers it only warns).
    fn bootstrap_dht(&mut self) {
        let kad = &mut self.swarm.behaviour_mut().kad;
        if kad.kbuckets().all(|b| b.num_entries() == 0) {
            return;
        }
        self.bootstrapped = true;
        if let Err(e) = kad.bootstrap() {
            tracing::debug!("DHT bootstrap: {e}");
        }
    }

    pub(crate) async fn run(mut self) {
        // After the node's own listeners are up (see `wait_listening`): a relay that cannot
        // be reached is asked again later, it does not stop the start.
        for addr in self.config.relays.clone() {
            match addr.parse::<Multiaddr>() {
                Ok(ma) => self.listen_via(ma),
                Err(e) => tracing::warn!(%addr, "bad relay address: {e}"),
            }
        }
        let period = Duration::from_secs(self.config.sync_interval_secs.max(1));
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        let mut bootstrap = tokio::time::interval_at(
            tokio::time::Instant::now() + BOOTSTRAP_INTERVAL,
            BOOTSTRAP_INTERVAL,
        );
        let mut reannounce = tokio::time::interval_at(
            tokio::time::Instant::now() + REANNOUNCE_INTERVAL,
            REANNOUNCE_INTERVAL,
        );
        loop {
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => break,
                Some(done) = self.tasks.join_next(), if !self.tasks.is_empty() => match done {
                    Ok(done) => self.on_done(done),
                    Err(e) => tracing::error!("node task failed: {e}"),
                },
                cmd = self.rx.recv() => match cmd {
                    Some(c) => self.on_command(c),
                    None => break,
                },
                ev = self.swarm.select_next_some() => self.on_swarm_event(ev),
                _ = tick.tick() => {
                    self.expire_bans();
                    self.periodic_sync();
                }
                _ = bootstrap.tick() => self.bootstrap_dht(),
                // Not before the first peer (the first announcement is still to come), nor while
                // the last is still being made.
                _ = reannounce.tick(), if self.announced && self.to_provide.is_empty() => {
                    self.announce_held();
                }
            }
        }
        // Work already running on the blocking pool (stores of gossiped or caught-up records)
        // finishes whatever happens: report it, so that every record this run stored has its
        // `Stored` event before the event channel closes. Work not yet started is dropped.
        self.tasks.abort_all();
        while let Some(done) = self.tasks.join_next().await {
            if let Ok(done) = done {
                self.on_done(done);
                // What handling it started is not wanted any more.
                self.tasks.abort_all();
            }
        }
        // Writes of the peers reached may have been among the work dropped: write them all.
        let (repo, known) = (
            self.repo.clone(),
            self.known.into_values().collect::<Vec<_>>(),
        );
        match tokio::task::spawn_blocking(move || PeerMemory::new(repo.store()).replace_all(&known))
            .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("cannot remember the peers reached: {e}"),
            Err(e) => tracing::warn!("cannot remember the peers reached: {e}"),
        }
    }

    fn emit(&mut self, ev: NodeEvent) {
        if let NodeEvent::Stored { cid, id, kind, .. } = &ev {
            let _ = self.bitswap.block_added(*cid);
            self.after_stored(*id, kind);
        }
        let _ = self.events.send(ev);
    }

    /// What a new record sets in motion: a branch of a followed forum is followed too.
    fn after_stored(&mut self, id: Cid, kind: &str) {
        if kind != "social.branch" {
            return;
        }
        let repo = self.repo.clone();
        self.tasks.spawn_blocking(move || {
            let Ok(Some(record)) = repo.store().record(&id) else {
                return Done::Nothing;
            };
            let forums = record.index().topics.iter().filter_map(|t| match t {
                Topic::Forum(f) => Some(*f),
                _ => None,
            });
            let mut out = vec![];
            for forum in forums {
                match follow_branches(&repo, forum, &[id]) {
                    Ok(t) => out.extend(t),
                    Err(e) => tracing::warn!(%forum, "cannot follow a new branch: {e}"),
                }
            }
            Done::AutoFollow(out)
        });
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn info(&self) -> NodeInfo {
        let peer_id = *self.swarm.local_peer_id();
        NodeInfo {
            nat: self.reach.info(self.swarm.external_addresses(), peer_id),
            peer_id: peer_id.to_string(),
            addrs: self
                .listening
                .iter()
                .map(|a| format!("{a}/p2p/{peer_id}"))
                .collect(),
            blobs: {
                let (received_direct, received_relayed) = self.net.received();
                let at = self.net.at();
                BlobsInfo {
                    endpoint_id: self.net.endpoint_id_hex(),
                    addrs: blobs::advertised(&at.addrs),
                    relay: at.relay.map(|r| r.to_string()),
                    received_direct,
                    received_relayed,
                }
            },
        }
    }

    fn subscribe(&mut self, topic: GossipTopic) {
        let t = gossip::ident(&topic);
        let gs = &mut self.swarm.behaviour_mut().gossipsub;
        if let Err(e) = gs.subscribe(&t) {
            tracing::warn!(%topic, "subscribe failed: {e}");
            return;
        }
        if let Err(e) = gs.set_topic_params(t, gossip::topic_params()) {
            tracing::warn!(%topic, "topic scoring: {e}");
        }
        self.subscribed.insert(topic);
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Info(reply) => {
                let _ = reply.send(self.info());
            }
            Command::Peers(reply) => {
                let peers = self
                    .swarm
                    .connected_peers()
                    .map(|p| PeerInfo {
                        peer_id: p.to_string(),
                        addrs: self
                            .conns
                            .get(p)
                            .map(|c| c.iter().map(|(_, a)| a.to_string()).collect())
                            .unwrap_or_default(),
                        agent: self.agents.get(p).cloned(),
                        relayed: self
                            .conns
                            .get(p)
                            .is_some_and(|c| c.iter().all(|(_, a)| nat::is_relayed(a))),
                    })
                    .collect();
                let _ = reply.send(peers);
            }
            Command::Remembered(reply) => {
                let mut known: Vec<KnownPeer> = self.known.values().cloned().collect();
                known.sort_by_key(|k| std::cmp::Reverse(k.last_seen));
                let _ = reply.send(known);
            }
            Command::Dial { addr, reply } => {
                let opts = DialOpts::from(addr.clone());
                let id = opts.connection_id();
                match self.swarm.dial(opts) {
                    Ok(()) => {
                        self.dials.insert(id, (addr, reply));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(NodeError::Dial {
                            addr: addr.to_string(),
                            reason: dial_error(&e),
                        }));
                    }
                }
            }
            Command::Follow {
                topic,
                follow,
                reply,
            } => {
                let repo = self.repo.clone();
                self.tasks.spawn_blocking(move || {
                    let result = if follow {
                        repo.store().follow(&topic)
                    } else {
                        repo.store().unfollow(&topic).map(|_| ())
                    }
                    .map_err(NodeError::from);
                    Done::Followed {
                        topic,
                        follow,
                        result,
                        reply,
                    }
                });
            }
            Command::Publish { records, reply } => {
                let repo = self.repo.clone();
                let limit = self.config.gossip_max_message_bytes;
                self.tasks.spawn_blocking(move || Done::Published {
                    reply,
                    result: store_and_prepare(&repo, records, limit),
                });
            }
            Command::Sync { topic, reply } => {
                let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
                for p in &peers {
                    self.start_sync(topic, *p);
                }
                let _ = reply.send(peers.len());
            }
            Command::Provide(cids) => self.provide(cids),
            Command::FindProviders { cid, reply } => {
                let q = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .get_providers(kad::RecordKey::new(&cid.to_bytes()));
                self.providers.insert(q, (HashSet::new(), Some(reply)));
            }
            Command::BlobAddrs { peers, cids, reply } => {
                let me = *self.swarm.local_peer_id();
                let mut peers =
                    peers.unwrap_or_else(|| self.swarm.connected_peers().copied().collect());
                peers.sort();
                peers.dedup();
                peers.retain(|p| *p != me);
                if peers.is_empty() || cids.is_empty() {
                    let _ = reply.send(vec![]);
                    return;
                }
                let q = self.id();
                let chunks = cids.len().div_ceil(blobs::MAX_HAS);
                for p in &peers {
                    for (i, chunk) in cids.chunks(blobs::MAX_HAS).enumerate() {
                        let r = self
                            .swarm
                            .behaviour_mut()
                            .blobs
                            .send_request(p, blobs::Request::Has(chunk.to_vec()));
                        self.blob_requests.insert(r, (q, i * blobs::MAX_HAS));
                    }
                }
                self.blob_queries.insert(
                    q,
                    BlobQuery {
                        asked: cids.len(),
                        pending: peers.iter().map(|p| (*p, chunks)).collect(),
                        found_one: false,
                        found: HashMap::new(),
                        reply: Some(reply),
                    },
                );
                // Every question ends in an answer or a failure within the request timeout;
                // should one go missing all the same, the query answers with what it has.
                self.tasks.spawn(async move {
                    tokio::time::sleep(BLOBS_REQUEST_TIMEOUT + Duration::from_secs(5)).await;
                    Done::BlobQueryExpired(q)
                });
            }
            Command::Score { peer, reply } => {
                let _ = reply.send(self.swarm.behaviour().gossipsub.peer_score(&peer));
            }
            Command::Ban { peer, ban } => {
                let b = &mut self.swarm.behaviour_mut().blocked;
                if ban {
                    b.block_peer(peer);
                    self.forget(peer);
                } else {
                    b.unblock_peer(peer);
                }
            }
        }
    }

    /// Whether `peer` is on this machine: a connection to it is on loopback.
    fn is_local(&self, peer: &PeerId) -> bool {
        self.conns
            .get(peer)
            .is_some_and(|c| c.iter().any(|(_, a)| is_loopback(a)))
    }

    /// Closes `peer`'s relayed connections if a direct one is open.
    fn close_relayed(&mut self, peer: PeerId) {
        let Some(conns) = self.conns.get(&peer) else {
            return;
        };
        if conns.iter().all(|(_, a)| nat::is_relayed(a)) {
            return;
        }
        let relayed: Vec<ConnectionId> = conns
            .iter()
            .filter(|(_, a)| nat::is_relayed(a))
            .map(|(id, _)| *id)
            .collect();
        for id in relayed {
            tracing::debug!(%peer, "closing the relayed connection: a direct one is open");
            self.swarm.close_connection(id);
        }
    }

    /// Announces `cids` in the DHT, [`PROVIDES_AT_ONCE`] queries at a time. Started all at
    /// once, the 20,000 announcements of a node holding 10,000 files (with their UnixFS roots)
    /// kept its event loop busy for 15 s: Kademlia goes through every running query each time
    /// it is polled, so nothing else (a peer's question, gossip) was answered meanwhile.
    ///
    /// Before the first peer came there is no one to announce to, and each query would still
    /// walk the empty routing table on the loop (4 % of the daemon's CPU while it added a
    /// folder of 10,000 files): [`EventLoop::announce_held`] announces every held file, these
    /// too, once a peer is here.
    fn provide(&mut self, cids: Vec<Cid>) {
        if !self.announced {
            return;
        }
        self.to_provide.extend(cids);
        self.provide_more();
    }

    /// Announces every held file and the root of its UnixFS view (which IPFS clients look
    /// for), once they are listed off the loop.
    fn announce_held(&mut self) {
        let blobs = self.blobs.clone();
        let repo = self.repo.clone();
        self.tasks.spawn(async move {
            match blobs.list().await {
                Ok(held) => {
                    let views = repo.store().views().unwrap_or_default();
                    Done::Provide(
                        held.into_iter()
                            .map(|(c, _)| c)
                            .chain(views.into_iter().map(|(_, root)| root))
                            .collect(),
                    )
                }
                Err(e) => {
                    tracing::warn!("cannot list files to announce: {e}");
                    Done::Nothing
                }
            }
        });
    }

    /// Starts queued announcements while fewer than [`PROVIDES_AT_ONCE`] run.
    fn provide_more(&mut self) {
        while self.providing.len() < PROVIDES_AT_ONCE {
            let Some(cid) = self.to_provide.pop_front() else {
                return;
            };
            match self
                .swarm
                .behaviour_mut()
                .kad
                .start_providing(kad::RecordKey::new(&cid.to_bytes()))
            {
                Ok(id) => {
                    self.providing.insert(id);
                }
                Err(e) => tracing::warn!(%cid, "cannot announce: {e}"),
            }
        }
    }

    /// Disconnects and refuses (for `misbehaviour_ban_secs`) a peer whose gossip score fell
    /// below the graylist threshold: gossipsub already ignores what it sends, this also stops
    /// it costing us connections and validation work.
    fn check_misbehaviour(&mut self, peer: PeerId) {
        let Some(score) = self.swarm.behaviour().gossipsub.peer_score(&peer) else {
            return;
        };
        if score >= gossip::thresholds().graylist_threshold || self.misbehaving.contains_key(&peer)
        {
            return;
        }
        let until =
            tokio::time::Instant::now() + Duration::from_secs(self.config.misbehaviour_ban_secs);
        tracing::info!(%peer, score, "refusing a peer that sent invalid records");
        self.misbehaving.insert(peer, until);
        self.swarm.behaviour_mut().blocked.block_peer(peer);
        self.forget(peer);
        self.emit(NodeEvent::PeerBanned { peer, score });
    }

    /// Lets back misbehaving peers whose time is up.
    fn expire_bans(&mut self) {
        let now = tokio::time::Instant::now();
        let expired: Vec<PeerId> = self
            .misbehaving
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(p, _)| *p)
            .collect();
        for peer in expired {
            self.misbehaving.remove(&peer);
            self.swarm.behaviour_mut().blocked.unblock_peer(peer);
        }
    }

    fn on_done(&mut self, done: Done) {
        match done {
            Done::Nothing => {}
            Done::CloseRelayed(peer) => self.close_relayed(peer),
            Done::BlobQueryExpired(q) => self.finish_blob_query(q),
            Done::Relisten(relay) => {
                if !self.relay_listeners.values().any(|r| *r == relay) {
                    self.listen_via(relay);
                }
            }
            Done::AutoFollow(topics) => {
                let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
                for topic in topics {
                    self.subscribe(topic);
                    for p in &peers {
                        self.start_sync(topic, *p);
                    }
                }
            }
            Done::Regossip(messages) => {
                for (topic, data) in messages {
                    // Peers that have it already drop it as a duplicate.
                    if let Err(e) = self
                        .swarm
                        .behaviour_mut()
                        .gossipsub
                        .publish(gossip::ident(&topic), data)
                    {
                        tracing::trace!(%topic, "not gossiped on: {e}");
                    }
                }
            }
            Done::Provide(cids) => self.provide(cids),
            Done::Gossip {
                id,
                source,
                topic,
                verdict,
                stored,
                reason,
                missing_prev,
                also,
            } => {
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&id, &source, verdict.into());
                for (cid, item, kind) in stored {
                    self.emit(NodeEvent::Stored {
                        cid,
                        id: item,
                        kind,
                        from: source,
                        via: Via::Gossip,
                    });
                }
                if let Some(reason) = reason {
                    tracing::debug!(%source, ?topic, "rejected gossip: {reason}");
                    self.emit(NodeEvent::Rejected {
                        from: source,
                        reason,
                    });
                    self.check_misbehaviour(source);
                }
                if let (true, Some(topic)) = (missing_prev, topic) {
                    self.start_sync(topic, source);
                }
                if let (true, Some(also)) = (missing_prev, also) {
                    self.start_sync(also, source);
                }
            }
            Done::Published { reply, result } => match result {
                Ok((puts, messages, provide, kinds)) => {
                    for (p, kind) in puts.iter().zip(&kinds) {
                        if let Put::Stored { cid, id, .. } = p {
                            let _ = self.bitswap.block_added(*cid);
                            self.after_stored(*id, kind);
                            let _ = self
                                .events
                                .send(NodeEvent::Published { cid: *cid, id: *id });
                        }
                    }
                    for (topic, data) in messages {
                        if let Err(e) = self
                            .swarm
                            .behaviour_mut()
                            .gossipsub
                            .publish(gossip::ident(&topic), data)
                        {
                            tracing::debug!(%topic, "not gossiped now: {e}");
                        }
                    }
                    self.provide(provide);
                    let _ = reply.send(Ok(puts));
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Done::Respond { channel, response } => {
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, response);
            }
            Done::RespondBlobs { channel, response } => {
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .blobs
                    .send_response(channel, response);
            }
            Done::SyncStart { topic, peer, set } => {
                let set = match set {
                    Ok(set) => set,
                    Err(e) => {
                        tracing::warn!(%topic, "cannot read sync set: {e}");
                        return self.next_sync(topic);
                    }
                };
                match sync::CatchUp::new(topic, &set, &self.sync_config) {
                    Ok((catch_up, request)) => {
                        let job = self.id();
                        let r = self.swarm.behaviour_mut().sync.send_request(&peer, request);
                        self.pending.insert(r, job);
                        self.jobs.insert(
                            job,
                            SyncJob {
                                peer,
                                topic,
                                catch_up: Some(Box::new(catch_up)),
                                storing: 0,
                                stored: 0,
                                new: Vec::new(),
                                summary: None,
                            },
                        );
                    }
                    Err(e) => {
                        tracing::warn!(%topic, "cannot start sync: {e}");
                        self.next_sync(topic);
                    }
                }
            }
            Done::SyncHandled {
                job,
                catch_up,
                result,
            } => self.on_sync_handled(job, catch_up, result),
            Done::SyncStored { job, stored } => {
                let Some(j) = self.jobs.get_mut(&job) else {
                    return;
                };
                j.storing -= 1;
                j.stored += stored.len();
                if j.stored <= REGOSSIP_MAX {
                    j.new.extend(stored.iter().map(|s| s.0));
                }
                let peer = j.peer;
                for (cid, item, kind) in stored {
                    self.emit(NodeEvent::Stored {
                        cid,
                        id: item,
                        kind,
                        from: peer,
                        via: Via::Sync,
                    });
                }
                self.maybe_finish(job);
            }
            Done::Followed {
                topic,
                follow,
                result,
                reply,
            } => {
                if result.is_ok() {
                    if let (true, GossipTopic::Forum(forum)) = (follow, topic) {
                        let repo = self.repo.clone();
                        self.tasks.spawn_blocking(move || {
                            match follow_branches(&repo, forum, &[]) {
                                Ok(t) => Done::AutoFollow(t),
                                Err(e) => {
                                    tracing::warn!(%forum, "cannot follow its branches: {e}");
                                    Done::Nothing
                                }
                            }
                        });
                    }
                    if follow {
                        self.subscribe(topic);
                        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
                        for p in peers {
                            self.start_sync(topic, p);
                        }
                    } else {
                        self.swarm
                            .behaviour_mut()
                            .gossipsub
                            .unsubscribe(&gossip::ident(&topic));
                        self.subscribed.remove(&topic);
                    }
                }
                let _ = reply.send(result);
            }
        }
    }

    /// Reports a catch-up once its exchange is over and its records are stored.
    fn maybe_finish(&mut self, job: u64) {
        let done = self
            .jobs
            .get(&job)
            .is_some_and(|j| j.storing == 0 && j.summary.is_some());
        if !done {
            return;
        }
        if let Some(j) = self.jobs.remove(&job) {
            if j.stored > 0 && j.stored <= REGOSSIP_MAX {
                let (repo, cids) = (self.repo.clone(), j.new);
                let limit = self.config.gossip_max_message_bytes;
                self.tasks.spawn_blocking(move || {
                    let mut messages = Vec::new();
                    for cid in cids {
                        if let Ok(Some(record)) = repo.store().record(&cid) {
                            messages.extend(gossip_messages(&repo, &record, limit));
                        }
                    }
                    Done::Regossip(messages)
                });
            }
            let summary = j.summary.unwrap_or_default();
            self.emit(NodeEvent::Synced {
                topic: j.topic,
                peer: j.peer,
                stored: j.stored,
                bytes: summary.block_bytes,
                reconcile_bytes: summary.reconcile_bytes_sent + summary.reconcile_bytes_received,
                rounds: summary.rounds,
            });
            self.next_sync(j.topic);
        }
    }

    /// Catches `topic` up with `peer`: now, or after the catch-up of `topic` running now.
    fn start_sync(&mut self, topic: GossipTopic, peer: PeerId) {
        match self.sync_queue.get_mut(&topic) {
            Some(queue) => {
                if !queue.contains(&peer) {
                    queue.push_back(peer);
                }
            }
            None => {
                self.sync_queue.insert(topic, VecDeque::new());
                self.run_sync(topic, peer);
            }
        }
    }

    /// Starts the catch-up of `topic` with the next peer waiting for it that is still
    /// connected, if any.
    fn next_sync(&mut self, topic: GossipTopic) {
        while let Some(peer) = self
            .sync_queue
            .get_mut(&topic)
            .and_then(VecDeque::pop_front)
        {
            if self.swarm.is_connected(&peer) {
                return self.run_sync(topic, peer);
            }
        }
        self.sync_queue.remove(&topic);
    }

    fn run_sync(&mut self, topic: GossipTopic, peer: PeerId) {
        let repo = self.repo.clone();
        self.tasks.spawn_blocking(move || Done::SyncStart {
            topic,
            peer,
            set: repo.store().sync_items(&topic).map(sync::SyncSet::from),
        });
    }

    fn periodic_sync(&mut self) {
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        if peers.is_empty() {
            return;
        }
        let topics: Vec<GossipTopic> = self.subscribed.iter().copied().collect();
        for (i, topic) in topics.into_iter().enumerate() {
            let peer = peers[(i + self.next_id as usize) % peers.len()];
            self.start_sync(topic, peer);
        }
        self.next_id += 1;
    }

    fn on_sync_event(&mut self, ev: sync::Event) {
        match ev {
            request_response::Event::Message { message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let repo = self.repo.clone();
                    let config = self.sync_config.clone();
                    self.tasks.spawn_blocking(move || Done::Respond {
                        channel,
                        response: sync::serve(&SyncStore(&repo), request, &config),
                    });
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => self.on_sync_response(request_id, response),
            },
            request_response::Event::OutboundFailure {
                request_id,
                error,
                peer,
                ..
            } => {
                tracing::debug!(%peer, "sync request failed: {error}");
                if let Some(job) = self.pending.remove(&request_id) {
                    if let Some(j) = self.jobs.get_mut(&job) {
                        j.summary = j.catch_up.as_ref().map(|c| c.summary().clone());
                    }
                    self.maybe_finish(job);
                }
            }
            _ => {}
        }
    }

    fn on_sync_response(&mut self, request_id: OutboundRequestId, response: sync::Response) {
        let Some(job) = self.pending.remove(&request_id) else {
            return;
        };
        let Some(mut catch_up) = self.jobs.get_mut(&job).and_then(|j| j.catch_up.take()) else {
            return;
        };
        // Checking a response decodes and verifies every record in it (hundreds of
        // signatures): CPU work that would hold up gossip if it ran on the loop.
        let rt = tokio::runtime::Handle::current();
        self.tasks.spawn_blocking(move || {
            let result = catch_up.handle_with(response, |blocks| decode_fetched(&rt, blocks));
            Done::SyncHandled {
                job,
                catch_up,
                result,
            }
        });
    }

    /// Stores what a checked response brought and sends the catch-up's next request.
    fn on_sync_handled(
        &mut self,
        job: u64,
        catch_up: Box<sync::CatchUp>,
        result: Result<sync::Progress, sync::SyncError>,
    ) {
        let Some(j) = self.jobs.get_mut(&job) else {
            return;
        };
        match result {
            Ok(progress) => {
                if !progress.records.is_empty() {
                    j.storing += 1;
                    let repo = self.repo.clone();
                    let records = progress.records;
                    self.tasks
                        .spawn_blocking(move || store_fetched(&repo, job, records));
                }
                match progress.next {
                    sync::Next::Send(request) => {
                        let r = self
                            .swarm
                            .behaviour_mut()
                            .sync
                            .send_request(&j.peer, request);
                        self.pending.insert(r, job);
                    }
                    sync::Next::Done(summary) => j.summary = Some(summary),
                }
            }
            Err(e) => {
                tracing::debug!(peer = %j.peer, "catch-up failed: {e}");
                j.summary = Some(catch_up.summary().clone());
            }
        }
        j.catch_up = Some(catch_up);
        self.maybe_finish(job);
    }

    fn on_blobs_event(&mut self, ev: request_response::Event<blobs::Request, blobs::Response>) {
        match ev {
            request_response::Event::Message { message, peer, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let _ = peer;
                    let at = self.net.at();
                    let addrs = blobs::advertised(&at.addrs);
                    let relay = at.relay.map(|r| r.to_string());
                    let store = self.blobs.clone();
                    self.tasks.spawn(async move {
                        let response = match request {
                            blobs::Request::Addr => blobs::Response::Addr(addrs),
                            blobs::Request::Has(cids) if cids.len() > blobs::MAX_HAS => {
                                blobs::Response::Error(format!(
                                    "at most {} CIDs per question",
                                    blobs::MAX_HAS
                                ))
                            }
                            blobs::Request::Has(cids) => {
                                let mut have = Vec::with_capacity(cids.len());
                                for c in &cids {
                                    have.push(store.has(c).await.unwrap_or(false));
                                }
                                blobs::Response::Has { have, addrs, relay }
                            }
                        };
                        Done::RespondBlobs { channel, response }
                    });
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    let Some((q, offset)) = self.blob_requests.remove(&request_id) else {
                        return;
                    };
                    // A loopback address is this machine's: it names the peer only if the peer
                    // is on this machine too.
                    let local = self.is_local(&peer);
                    if let blobs::Response::Has { have, addrs, relay } = response
                        && have.contains(&true)
                        && let at = (EndpointAt {
                            addrs: addrs
                                .into_iter()
                                .filter(|a| local || !a.ip().is_loopback())
                                .collect(),
                            relay: relay.and_then(|r| r.parse().ok()),
                        })
                        && (!at.addrs.is_empty() || at.relay.is_some())
                        && let Some(bq) = self.blob_queries.get_mut(&q)
                    {
                        let asked = bq.asked;
                        let h = bq.found.entry(peer).or_insert_with(|| Holder {
                            peer,
                            at,
                            have: vec![false; asked],
                        });
                        // A longer answer than the question is cut to it.
                        for (i, has) in have.into_iter().enumerate() {
                            if let Some(slot) = h.have.get_mut(offset + i) {
                                *slot = has;
                            }
                        }
                    }
                    self.blob_answered(q, peer);
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if let Some((q, _)) = self.blob_requests.remove(&request_id) {
                    tracing::debug!(%peer, "no answer to which files it holds: {error}");
                    self.blob_answered(q, peer);
                }
            }
            _ => {}
        }
    }

    fn blob_answered(&mut self, q: u64, peer: PeerId) {
        if let Some(bq) = self.blob_queries.get_mut(&q) {
            let done = match bq.pending.get_mut(&peer) {
                Some(left) => {
                    *left = left.saturating_sub(1);
                    *left == 0
                }
                None => false,
            };
            if done {
                bq.pending.remove(&peer);
                // One slow or silent peer does not hold up a fetch others can serve: once a
                // holder has answered in full, the rest get a moment more.
                if !bq.found_one && bq.found.contains_key(&peer) {
                    bq.found_one = true;
                    self.tasks.spawn(async move {
                        tokio::time::sleep(HOLDERS_GRACE).await;
                        Done::BlobQueryExpired(q)
                    });
                }
            }
            if bq.pending.is_empty() {
                self.finish_blob_query(q);
            }
        }
    }

    /// Answers the question `q` of which files peers hold with what has come, naming in the
    /// log the peers still silent.
    fn finish_blob_query(&mut self, q: u64) {
        if let Some(mut bq) = self.blob_queries.remove(&q) {
            if !bq.pending.is_empty() {
                let silent: Vec<&PeerId> = bq.pending.keys().collect();
                tracing::debug!(?silent, "no answer in time to which files they hold");
            }
            if let Some(reply) = bq.reply.take() {
                let _ = reply.send(bq.found.into_values().collect());
            }
        }
    }

    fn on_gossip(&mut self, ev: gossipsub::Event) {
        match ev {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                let repo = self.repo.clone();
                let max = self.config.gossip_max_message_bytes;
                let budget = self.budget.clone();
                self.tasks.spawn_blocking(move || {
                    receive_gossip(&repo, &budget, propagation_source, message_id, message, max)
                });
            }
            gossipsub::Event::Subscribed { peer_id, topic } => {
                self.emit(NodeEvent::PeerSubscribed {
                    peer: peer_id,
                    topic: topic.into_string(),
                });
            }
            _ => {}
        }
    }

    fn on_swarm_event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::NewListenAddr { address, .. } => {
                // The daemon prints its addresses once it is ready; a library user asks `info()`.
                tracing::debug!("listening on {address}/p2p/{}", self.swarm.local_peer_id());
                self.listening.push(address);
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listening.retain(|a| *a != address);
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                addresses,
                reason,
            } => {
                for a in &addresses {
                    self.listening.retain(|l| l != a);
                }
                if let Some(relay) = self.relay_listeners.remove(&listener_id) {
                    let why = reason.err().map(|e| format!(": {e}")).unwrap_or_default();
                    tracing::info!(%relay, "no slot on the relay{why}; asking again shortly");
                    self.tasks.spawn(async move {
                        tokio::time::sleep(RELAY_RETRY).await;
                        Done::Relisten(relay)
                    });
                } else if let Err(e) = reason {
                    tracing::error!(
                        addrs = ?addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
                        "a listener failed and closed: {e}"
                    );
                }
            }
            SwarmEvent::ExternalAddrConfirmed { address } => {
                tracing::info!("peers can reach this node at {address}");
            }
            SwarmEvent::ListenerError { error, .. } => {
                tracing::warn!("listener error: {error}");
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                num_established,
                endpoint,
                ..
            } => {
                if let Some((_, reply)) = self.dials.remove(&connection_id) {
                    let _ = reply.send(Ok(peer_id));
                }
                let remote = endpoint.get_remote_address().clone();
                let conns = self.conns.entry(peer_id).or_default();
                conns.push((connection_id, remote.clone()));
                if !nat::is_relayed(&remote) && conns.iter().any(|(_, a)| nat::is_relayed(a)) {
                    // Traffic moves to the direct connection once the relayed ones close.
                    self.tasks.spawn(async move {
                        tokio::time::sleep(RELAYED_GRACE).await;
                        Done::CloseRelayed(peer_id)
                    });
                }
                if endpoint.is_dialer() {
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer_id, remote.clone());
                    self.remember(peer_id, vec![remote.clone()]);
                }
                if num_established.get() == 1 {
                    tracing::info!(peer = %peer_id, addr = %remote, "peer connected");
                    let _ = self.bitswap.peer_connected(peer_id);
                    if !self.announced {
                        // The DHT needs a peer to hold the announcements: make them once the
                        // first one is here (and again every REANNOUNCE_INTERVAL).
                        self.announced = true;
                        self.announce_held();
                    }
                    self.emit(NodeEvent::PeerConnected(peer_id));
                    let topics: Vec<GossipTopic> = self.subscribed.iter().copied().collect();
                    for t in topics {
                        self.start_sync(t, peer_id);
                    }
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                ..
            } => {
                if let Some(c) = self.conns.get_mut(&peer_id) {
                    c.retain(|(id, _)| *id != connection_id);
                }
                if num_established == 0 {
                    self.conns.remove(&peer_id);
                    self.reach.relay_gone(&peer_id);
                    tracing::info!(peer = %peer_id, "peer left");
                    let _ = self.bitswap.peer_disconnected(peer_id);
                    self.agents.remove(&peer_id);
                    self.emit(NodeEvent::PeerDisconnected(peer_id));
                }
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                if let Some((addr, reply)) = self.dials.remove(&connection_id) {
                    let _ = reply.send(Err(NodeError::Dial {
                        addr: addr.to_string(),
                        reason: dial_error(&error),
                    }));
                } else if let Some(peer) = peer_id {
                    tracing::debug!(%peer, "dial failed: {}", dial_error(&error));
                }
            }
            SwarmEvent::Behaviour(ev) => match ev {
                BehaviourEvent::Gossipsub(ev) => self.on_gossip(ev),
                BehaviourEvent::Sync(ev) => self.on_sync_event(ev),
                BehaviourEvent::Blobs(ev) => self.on_blobs_event(ev),
                BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                    // A loopback address names the peer only if it is on this machine, which
                    // a loopback connection to it shows. Given to the DHT, it would send other
                    // nodes to themselves.
                    let local = self.is_local(&peer_id);
                    let addrs: Vec<Multiaddr> = info
                        .listen_addrs
                        .into_iter()
                        .filter(|a| local || !is_loopback(a))
                        .collect();
                    for addr in &addrs {
                        self.swarm
                            .behaviour_mut()
                            .kad
                            .add_address(&peer_id, addr.clone());
                    }
                    self.remember(peer_id, addrs);
                    self.agents.insert(peer_id, info.agent_version);
                }
                BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                    id,
                    result: kad::QueryResult::StartProviding(r),
                    step,
                    ..
                }) => {
                    if let Err(e) = r {
                        tracing::debug!("an announcement reached too few peers: {e}");
                    }
                    if step.last && self.providing.remove(&id) {
                        self.provide_more();
                    }
                }
                BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                    id,
                    result: kad::QueryResult::GetProviders(r),
                    step,
                    ..
                }) => {
                    if let Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) = r
                        && let Some((set, Some(_))) = self.providers.get_mut(&id)
                    {
                        // Their addresses are known while the query runs (Kademlia gives them
                        // to the dial): dial them now, so that asking them what they hold
                        // finds them connected.
                        for p in &providers {
                            if self.swarm.is_connected(p) {
                                continue;
                            }
                            let opts = DialOpts::peer_id(*p)
                                .condition(PeerCondition::DisconnectedAndNotDialing)
                                .build();
                            if let Err(e) = self.swarm.dial(opts) {
                                tracing::debug!(peer = %p, "cannot dial a provider: {e}");
                            }
                        }
                        set.extend(providers);
                    }
                    // The first providers found answer the caller; the walk goes on (it fills
                    // the routing table) with no one waiting for it.
                    if let Some((set, reply)) = self.providers.get_mut(&id)
                        && (step.last || !set.is_empty())
                        && let Some(reply) = reply.take()
                    {
                        let _ = reply.send(set.iter().copied().collect());
                    }
                    if step.last {
                        self.providers.remove(&id);
                    }
                }
                BehaviourEvent::Kad(kad::Event::RoutingUpdated { .. }) if !self.bootstrapped => {
                    // The first peer in the routing table: walk the DHT from it now rather
                    // than at the first periodic walk.
                    self.bootstrap_dht();
                }
                BehaviourEvent::Autonat(ev) => self.reach.on_autonat(ev),
                BehaviourEvent::Relay(ev) => self.reach.on_relay_client(ev),
                BehaviourEvent::Dcutr(ev) => self.reach.on_dcutr(ev),
                BehaviourEvent::RelayServer(ev) => nat::log_relay_server(&ev),
                BehaviourEvent::Mdns(libp2p::mdns::Event::Discovered(found)) => {
                    for (peer, addr) in found {
                        self.swarm
                            .behaviour_mut()
                            .kad
                            .add_address(&peer, addr.clone());
                        let _ = self.swarm.dial(addr);
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }
}

/// Whether `addr` is on a loopback interface.
fn is_loopback(addr: &Multiaddr) -> bool {
    match addr.iter().next() {
        Some(libp2p::multiaddr::Protocol::Ip4(ip)) => ip.is_loopback(),
        Some(libp2p::multiaddr::Protocol::Ip6(ip)) => ip.is_loopback(),
        _ => false,
    }
}

/// Why a dial failed, in words: which peer answered instead, or what each address said.
fn dial_error(e: &DialError) -> String {
    match e {
        DialError::WrongPeerId { obtained, .. } => format!(
            "another node answers there (peer id {obtained}); the address is stale or names \
             the wrong peer"
        ),
        DialError::LocalPeerId { .. } => "that address is this node itself".into(),
        DialError::Denied { .. } => "refused by this node (the peer is banned, or the \
             connection limit is reached)"
            .into(),
        DialError::Transport(errors) => errors
            .iter()
            .map(|(_, e)| match e {
                libp2p::TransportError::MultiaddrNotSupported(a) => {
                    format!("{a} is not an address this node can dial")
                }
                libp2p::TransportError::Other(io) => innermost(io),
            })
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

/// The innermost cause of a transport error (the transports wrap each other's errors; the
/// socket's says the most, as in "Connection refused").
fn innermost(io: &std::io::Error) -> String {
    let mut e: &(dyn std::error::Error + 'static) = match io.get_ref() {
        Some(inner) => inner,
        None => io,
    };
    while let Some(source) = e.source() {
        e = source;
    }
    e.to_string()
}

/// Stores records made on this node and prepares their gossip messages and DHT
/// announcements.
fn store_and_prepare(
    repo: &Repo,
    records: Vec<Record>,
    limit: usize,
) -> Result<Prepared, NodeError> {
    let kinds = records.iter().map(|r| r.kind().to_owned()).collect();
    // Local writes pin their new items, in the same write (docs/decisions.md).
    let puts = repo.store().put_batch_pinned(records.clone())?;
    let mut messages = vec![];
    let mut provide = vec![];
    for (record, put) in records.iter().zip(&puts) {
        if !matches!(put, Put::Stored { .. }) {
            continue;
        }
        messages.extend(gossip_messages(repo, record, limit));
        let blobs: Vec<Cid> = record
            .links()
            .into_iter()
            .filter(|c| cids::link_kind(c) == LinkKind::Blob)
            .collect();
        if !blobs.is_empty() {
            provide.push(record.id());
            provide.extend(blobs);
        }
    }
    Ok((puts, messages, provide, kinds))
}

/// Follows `branches` of `forum` (all its stored branches when empty) if the node follows the
/// forum, for the node and for each account following the forum; returns the topics the node
/// did not follow yet.
fn follow_branches(
    repo: &Repo,
    forum: Cid,
    branches: &[Cid],
) -> Result<Vec<GossipTopic>, StoreError> {
    let store = repo.store();
    let forum_topic = GossipTopic::Forum(forum);
    let follows = store.follows()?;
    if !follows.contains(&forum_topic) {
        return Ok(vec![]);
    }
    let branches = if branches.is_empty() {
        let filter = branches_of(forum);
        store
            .list(&filter)?
            .items
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    } else {
        branches.to_vec()
    };
    let followers = store.topic_followers(&forum_topic)?;
    let mut out = vec![];
    for b in branches {
        let topic = GossipTopic::Branch(b);
        for h in &followers {
            store.account_follow(h, &topic)?;
        }
        if !follows.contains(&topic) {
            store.follow(&topic)?;
            out.push(topic);
        }
    }
    Ok(out)
}

/// The branches of `forum`.
fn branches_of(forum: Cid) -> crate::store::ListFilter {
    crate::store::ListFilter {
        kind: Some("social.branch".into()),
        topic: Some(Topic::Forum(forum)),
        ..crate::store::ListFilter::default()
    }
}

/// The gossip message of a stored record (with its previous version and the records it
/// answers attached when small), once for each of its topics: its own and its targets'.
fn gossip_messages(repo: &Repo, record: &Record, limit: usize) -> Vec<(GossipTopic, Vec<u8>)> {
    let mut msg = gossip::Message::new(record);
    let attach_limit = limit.min(gossip::Config::default().attach_blocks_under);
    if let Some(prev) = record.envelope().prev
        && let Ok(Some(block)) = repo.store().block(&prev)
    {
        msg.attach(block, attach_limit);
    }
    let targets = repo.store().targets(record).unwrap_or_default();
    for t in &targets {
        // A receiver that does not hold the target can then check the topic it came on.
        msg.attach(t.bytes().to_vec(), attach_limit);
    }
    let data = msg.to_bytes();
    // As stored: a tombstone of a group's item has its predecessor's `$owner`.
    let info = repo
        .store()
        .version_info(&record.id(), record.seq(), &record.cid())
        .ok()
        .flatten()
        .unwrap_or_else(|| record.info());
    crate::store::version_topics(record, &info, &targets)
        .into_iter()
        .map(|topic| (topic, data.clone()))
        .collect()
}

/// Reads a gossip message as [`gossip::Message::decode`] does, also taking a tombstone of a
/// group's item on the group's topic, where its author publishes it
/// ([`crate::store::version_topics`]). The tombstone names no `$owner` (its body is null):
/// it belongs there when the version it replaces is that group's, as this node holds it or,
/// failing that, as attached to the message (checked against its CID). Tied to no group or
/// another one, it is on the wrong topic; tied to nothing (neither held nor attached), it is
/// [`gossip::MessageError::UnknownTarget`]: ignored, not the sender's fault.
fn decode_message(
    store: &crate::store::Store,
    data: &[u8],
    topic: &GossipTopic,
    max: usize,
) -> Result<(Record, Vec<Vec<u8>>), gossip::MessageError> {
    let known = |c: &Cid| store.record(c).ok().flatten();
    let (cid, name) = match gossip::Message::decode(data, topic, max, known) {
        Err(gossip::MessageError::WrongTopic { cid, topic: name }) => (cid, name),
        other => return other,
    };
    let wrong = |name| Err(gossip::MessageError::WrongTopic { cid, topic: name });
    let GossipTopic::Group(group) = *topic else {
        return wrong(name);
    };
    let msg: gossip::Message = mnode_dag::cbor::decode(data)?;
    let record = Record::decode_owned(msg.record.into_vec())?;
    let (true, Some(prev)) = (record.is_tombstone(), record.envelope().prev) else {
        return wrong(name);
    };
    let blocks: Vec<Vec<u8>> = msg.blocks.into_iter().map(|b| b.into_vec()).collect();
    let held = store
        .version_info(&record.id(), record.seq().saturating_sub(1), &prev)
        .ok()
        .flatten()
        .map(|info| info.owner);
    let owner = held.or_else(|| {
        blocks
            .iter()
            .filter(|b| cids::verify_block(&prev, b).is_ok())
            .find_map(|b| Record::decode(b).ok())
            .map(|r| r.owner())
    });
    match owner {
        Some(Some(o)) if o.group == group => Ok((record, blocks)),
        Some(_) => wrong(name),
        None => Err(gossip::MessageError::UnknownTarget { cid, topic: name }),
    }
}

/// Verifies and stores a gossiped record (and the blocks that came with it).
fn receive_gossip(
    repo: &Repo,
    budget: &std::sync::Mutex<gossip::AuthorBudget>,
    source: PeerId,
    id: MessageId,
    message: gossipsub::Message,
    max: usize,
) -> Done {
    let done = |verdict, stored, reason: Option<String>, missing_prev, topic| Done::Gossip {
        id: id.clone(),
        source,
        topic,
        verdict,
        stored,
        reason,
        missing_prev,
        also: None,
    };
    let Ok(t) = message.topic.as_str().parse::<GossipTopic>() else {
        let reason = format!("unknown topic {}", message.topic);
        return done(gossip::Verdict::Reject, vec![], Some(reason), false, None);
    };
    let (record, blocks) = match decode_message(repo.store(), &message.data, &t, max) {
        Ok(x) => x,
        Err(gossip::MessageError::UnknownTarget { .. }) => {
            return done(gossip::Verdict::Ignore, vec![], None, false, Some(t));
        }
        Err(e) => {
            let reason = Some(e.to_string());
            return done(gossip::Verdict::Reject, vec![], reason, false, Some(t));
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    if !budget.lock().is_ok_and(|mut b| b.allow(&record, &t, now)) {
        tracing::debug!(author = %record.author(), topic = %t, "over its budget: dropped");
        return done(gossip::Verdict::Ignore, vec![], None, false, Some(t));
    }
    let topic = Some(t);
    let targets = &record.index().targets;
    let (mut records, answered): (Vec<Record>, Vec<Record>) = blocks
        .into_iter()
        .filter_map(|b| Record::decode_owned(b).ok())
        .filter(|r| !repo.store().has_block(&r.cid()).unwrap_or(false))
        .filter(|r| r.id() == record.id() || targets.contains(&r.cid()))
        .partition(|r| r.id() == record.id());
    // The records it answers came along so that the topic could be checked; keep those that
    // fit (a later version whose history the node lacks waits for catch-up).
    for r in answered {
        if let Err(e) = repo.store().put(r) {
            tracing::debug!("attached record not kept: {e}");
        }
    }
    records.sort_by_key(Record::seq);
    // A version a rotated key signed relies on its identity's key log, found on that feed.
    let identity = (record.identity() != record.author()).then(|| *record.identity());
    records.push(record);
    match repo.store().put_batch(records.clone()) {
        Ok(puts) => {
            let stored = stored(&puts, &records);
            let verdict = if stored.is_empty() {
                gossip::Verdict::Ignore
            } else {
                gossip::Verdict::Accept
            };
            done(verdict, stored, None, false, topic)
        }
        Err(StoreError::MissingPrev { .. } | StoreError::MissingAuthority { .. }) => {
            let mut d = done(gossip::Verdict::Ignore, vec![], None, true, topic);
            if let Done::Gossip { also, .. } = &mut d {
                *also = identity.map(GossipTopic::Author);
            }
            d
        }
        Err(StoreError::Record(e)) => done(
            gossip::Verdict::Reject,
            vec![],
            Some(e.to_string()),
            false,
            topic,
        ),
        Err(e) => {
            tracing::warn!("storing gossip failed: {e}");
            done(gossip::Verdict::Ignore, vec![], None, false, topic)
        }
    }
}

/// (CID, item id, kind) of each record a put stored (not the duplicates).
fn stored(puts: &[Put], records: &[Record]) -> Vec<(Cid, Cid, String)> {
    puts.iter()
        .zip(records)
        .filter_map(|(p, r)| match p {
            Put::Stored { cid, id, .. } => Some((*cid, *id, r.kind().to_owned())),
            Put::Duplicate(_) => None,
        })
        .collect()
}

/// The repo as the sync protocol sees it.
struct SyncStore<'a>(&'a Repo);

impl sync::Store for SyncStore<'_> {
    type Error = StoreError;

    fn sync_set(&self, topic: &GossipTopic) -> Result<Option<sync::SyncSet>, StoreError> {
        let items = self.0.store().sync_items(topic)?;
        if items.is_empty() && !self.0.store().follows()?.contains(topic) {
            return Ok(None);
        }
        Ok(Some(sync::SyncSet::from(items)))
    }

    fn block(&self, cid: &Cid) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.store().block(cid)
    }
}

/// Fewest records worth a second thread when a catch-up response is checked: below this a
/// batch's multiscalar multiplication gains little per signature.
const MIN_RECORDS_PER_THREAD: usize = 64;

/// Most blocking-pool threads checking one catch-up response.
const MAX_CHECK_THREADS: usize = 4;

/// Decodes and verifies a catch-up response's blocks ([`Record::decode_batch`]: signatures
/// checked in batches), split over the machine's cores: a response of hundreds of records is
/// the node's biggest piece of CPU work while catching up, and the next request waits for it.
/// Runs on the blocking pool; the other parts go to the same pool. One result per block, in
/// order (fewer only if the runtime shuts down meanwhile, when the catch-up is dropped anyway).
fn decode_fetched(
    rt: &tokio::runtime::Handle,
    blocks: Vec<Vec<u8>>,
) -> Vec<Result<Record, mnode_dag::RecordError>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let parts = cores
        .min(MAX_CHECK_THREADS)
        .min(blocks.len() / MIN_RECORDS_PER_THREAD)
        .max(1);
    if parts == 1 {
        return Record::decode_batch(blocks);
    }
    let per_part = blocks.len().div_ceil(parts);
    let mut blocks = blocks.into_iter();
    let here: Vec<Vec<u8>> = blocks.by_ref().take(per_part).collect();
    let mut others = Vec::with_capacity(parts - 1);
    loop {
        let part: Vec<Vec<u8>> = blocks.by_ref().take(per_part).collect();
        if part.is_empty() {
            break;
        }
        others.push(rt.spawn_blocking(move || Record::decode_batch(part)));
    }
    let mut out = Record::decode_batch(here);
    for other in others {
        match rt.block_on(other) {
            Ok(results) => out.extend(results),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => break,
        }
    }
    out
}

/// Stores records fetched by catch-up (already verified and in put order).
fn store_fetched(repo: &Repo, job: u64, records: Vec<Record>) -> Done {
    let mut stored = vec![];
    match repo.store().put_batch(records.clone()) {
        Ok(puts) => stored = self::stored(&puts, &records),
        Err(_) => {
            // One at a time: keep what can be stored, log the rest.
            for r in records {
                match repo.store().put(r.clone()) {
                    Ok(Put::Stored { cid, id, .. }) => stored.push((cid, id, r.kind().to_owned())),
                    Ok(Put::Duplicate(_)) => {}
                    Err(e) => tracing::debug!(cid = %r.cid(), "fetched record refused: {e}"),
                }
            }
        }
    }
    Done::SyncStored { job, stored }
}

#[cfg(test)]
mod tests {
    use mnode_dag::{
        Keypair, Record,
        model::core::Role,
        testing::band::{body, cite, group},
    };
    use mnode_protocols::{GossipTopic, gossip};

    use super::decode_message;
    use crate::store::Store;

    const MAX: usize = gossip::DEFAULT_MAX_MESSAGE;

    /// A group (owner `o`, admin `a`), a page of it by `o`, the admin's tombstone of the
    /// page, and a plain post of `o`'s with its tombstone.
    struct Fixture {
        g0: Record,
        page: Record,
        gone: Record,
        post: Record,
        post_gone: Record,
    }

    fn fixture() -> Fixture {
        let (o, a) = (Keypair::derive(43, "o"), Keypair::derive(43, "a"));
        let g0 = Record::create(&group(&[(&o, Role::Owner), (&a, Role::Admin)]))
            .unwrap()
            .at(1_000)
            .sign(&o)
            .unwrap();
        let page = mnode_dag::Draft::new("art.artist_group", body("The Band"))
            .owned_by(cite(&g0, &g0))
            .at(2_000)
            .sign(&o)
            .unwrap();
        let gone = page.delete().at(3_000).sign(&a).unwrap();
        let post = Record::create(&mnode_dag::model::social::Post {
            text: "mine".into(),
            ..Default::default()
        })
        .unwrap()
        .at(2_000)
        .sign(&o)
        .unwrap();
        let post_gone = post.delete().at(3_000).sign(&o).unwrap();
        Fixture {
            g0,
            page,
            gone,
            post,
            post_gone,
        }
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("db"), 8).unwrap();
        (dir, s)
    }

    /// The gossip message of `record`, with `attached` blocks.
    fn message(record: &Record, attached: &[&Record]) -> Vec<u8> {
        let mut m = gossip::Message::new(record);
        for r in attached {
            assert!(m.attach(r.bytes().to_vec(), MAX));
        }
        m.to_bytes()
    }

    #[test]
    fn a_tombstone_of_a_groups_item_belongs_on_that_groups_topic_only() {
        let f = fixture();
        let ours = GossipTopic::Group(f.g0.id());
        let other = GossipTopic::Group(f.post.id());
        let (_d, s) = store();
        s.put_batch(vec![f.g0.clone(), f.page.clone(), f.post.clone()])
            .unwrap();
        // Held: the page's version says which group.
        let bare = message(&f.gone, &[]);
        let (r, _) = decode_message(&s, &bare, &ours, MAX).unwrap();
        assert_eq!(r.cid(), f.gone.cid());
        assert!(matches!(
            decode_message(&s, &bare, &other, MAX),
            Err(gossip::MessageError::WrongTopic { .. })
        ));
        // Its author's feed still takes it, as before.
        let feed = GossipTopic::Author(*f.gone.author());
        assert!(decode_message(&s, &bare, &feed, MAX).is_ok());
        // A plain item's tombstone is in no group's topic.
        let plain = message(&f.post_gone, &[&f.post]);
        assert!(matches!(
            decode_message(&s, &plain, &ours, MAX),
            Err(gossip::MessageError::WrongTopic { .. })
        ));
        // Nor is a version that names its group, on another group's topic.
        assert!(matches!(
            decode_message(&s, &message(&f.page, &[]), &other, MAX),
            Err(gossip::MessageError::WrongTopic { .. })
        ));
    }

    #[test]
    fn a_tombstone_of_an_item_not_held_is_tied_by_its_attached_predecessor_or_ignored() {
        let f = fixture();
        let ours = GossipTopic::Group(f.g0.id());
        let other = GossipTopic::Group(f.post.id());
        let (_d, s) = store();
        let with_prev = message(&f.gone, &[&f.page]);
        let (r, blocks) = decode_message(&s, &with_prev, &ours, MAX).unwrap();
        assert_eq!(r.cid(), f.gone.cid());
        assert_eq!(blocks, vec![f.page.bytes().to_vec()]);
        assert!(matches!(
            decode_message(&s, &with_prev, &other, MAX),
            Err(gossip::MessageError::WrongTopic { .. })
        ));
        // A block that is not the predecessor ties nothing.
        for attached in [&[][..], &[&f.post][..]] {
            assert!(matches!(
                decode_message(&s, &message(&f.gone, attached), &ours, MAX),
                Err(gossip::MessageError::UnknownTarget { .. })
            ));
        }
    }

    /// A catch-up response checked in parts on the blocking pool gives what checking each
    /// block alone gives, in order, a bad block failing alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_response_checked_in_parts_keeps_its_order() {
        let key = Keypair::derive(1, "parts");
        let mut blocks: Vec<Vec<u8>> = (0..300u64)
            .map(|i| {
                let post = mnode_dag::model::social::Post {
                    text: format!("post {i:03}"),
                    ..Default::default()
                };
                Record::create(&post)
                    .unwrap()
                    .at(1_000 + i)
                    .sign(&key)
                    .unwrap()
                    .bytes()
                    .to_vec()
            })
            .collect();
        for bad in [10, 250] {
            let text = format!("post {bad:03}");
            let at = blocks[bad]
                .windows(text.len())
                .position(|w| w == text.as_bytes())
                .unwrap();
            blocks[bad][at] = b'P';
        }
        let one_by_one: Vec<Result<mnode_dag::Cid, String>> = blocks
            .iter()
            .map(|b| {
                Record::decode_owned(b.clone())
                    .map(|r| r.cid())
                    .map_err(|e| e.to_string())
            })
            .collect();
        let rt = tokio::runtime::Handle::current();
        let in_parts: Vec<Result<mnode_dag::Cid, String>> =
            tokio::task::spawn_blocking(move || super::decode_fetched(&rt, blocks))
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.map(|r| r.cid()).map_err(|e| e.to_string()))
                .collect();
        assert_eq!(in_parts, one_by_one);
        assert_eq!(in_parts.iter().filter(|r| r.is_err()).count(), 2);
    }
}

//! The IO-free Bitswap state machine: what to send, look up and report for each event.
//!
//! [`State::handle`] takes an [`Event`] (a message from a peer, a fetch request, a lookup
//! result, a peer coming or going) and returns the [`Action`]s the caller must carry out. It
//! never touches the network, the block store or the clock, so it is tested without sockets
//! and the service around it stays a thin loop.
//!
//! Server side: each peer's wants for blocks we do not hold (yet) are remembered, at most
//! [`Config::max_wants_per_peer`] per peer, so that [`Event::BlockAdded`] answers them.
//! Client side: a fetch sends want-block with send-dont-have to its candidate peers; it ends
//! with the first block that hashes to its CID, or when every candidate has said it does not
//! have the block, sent a wrong block, or gone away.

use std::{
    collections::{BTreeMap, HashMap, HashSet, VecDeque, hash_map::Entry},
    time::Instant,
};

use bytes::Bytes;
use libp2p::PeerId;
use mnode_dag::{Cid, cids};

use super::{
    config::Config,
    protocol::{
        Block, BlockPresence, Message, Prefix, PrefixError, Presence, WantType, WantlistEntry,
        presence_field_len,
    },
};

/// Room left in every message for the fields outside blocks and presences.
const MESSAGE_SLACK: usize = 64;

/// Identifies one [`Event::Fetch`] so that its [`Action::Complete`] can be matched to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Why fetching a block failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// Every peer asked answered that it does not have the block.
    #[error("block {0} not found: every peer asked said it does not have it")]
    NotFound(Cid),
    /// No peer sent the block in time.
    #[error("timed out fetching block {0}")]
    Timeout(Cid),
    /// A peer sent bytes that do not hash to the CID, and no other peer had it.
    #[error("a peer sent data that does not hash to {0}, and no other peer had the block")]
    HashMismatch(Cid),
    /// No peers were given and none is connected.
    #[error("no peer to fetch block {0} from: none was given and none is connected")]
    NoPeers(Cid),
    /// No peer asked could be reached (or all disconnected before answering).
    #[error("none of the peers asked for block {0} could be reached")]
    Unreachable(Cid),
    /// The CID's hash cannot be checked, so a block for it could never be trusted.
    #[error(
        "block {cid} uses multihash 0x{code:x}; bitswap checks only 32-byte sha2-256 and blake3"
    )]
    UnsupportedHash {
        /// The CID.
        cid: Cid,
        /// Its multihash code.
        code: u64,
    },
    /// Too many blocks are being fetched at once.
    #[error("too many blocks are being fetched at once (limit {0}); try again later")]
    Overloaded(usize),
    /// The service stopped before the fetch ended.
    #[error("the bitswap service stopped")]
    Stopped,
}

/// Something a peer did that a well-behaved Bitswap peer does not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Misbehaviour {
    /// It sent a block we did not ask it for; when we had asked it for blocks with the same
    /// CID prefix, those fetches count it as a hash mismatch.
    #[error("sent block {0}, which was not asked for")]
    UnwantedBlock(Cid),
    /// It sent a block whose prefix names a hash we cannot check.
    #[error("sent a block with an unusable prefix: {0}")]
    BadPrefix(PrefixError),
    /// It sent a message that does not decode.
    #[error("sent a malformed message: {0}")]
    Malformed(String),
    /// It announced a message over the size limit (its stream was dropped).
    #[error("sent a {size}-byte message, over the limit")]
    Oversized {
        /// Announced size.
        size: u64,
    },
}

/// The result of looking up one want in the block store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Looked {
    /// For a want-have: whether the block is held.
    Have {
        /// The block.
        cid: Cid,
        /// Whether it is held.
        has: bool,
    },
    /// For a want-block: the block's bytes, if held.
    Block {
        /// The block.
        cid: Cid,
        /// Its bytes.
        data: Option<Bytes>,
    },
}

/// An input to [`State::handle`].
#[derive(Debug, Clone)]
pub enum Event {
    /// Fetch `cid` from `peers` (all connected peers, and those that connect later, when
    /// empty) until `deadline`.
    Fetch {
        /// Matches the [`Action::Complete`] that ends this request.
        id: RequestId,
        /// The block.
        cid: Cid,
        /// Candidate peers.
        peers: Vec<PeerId>,
        /// When to give up.
        deadline: Instant,
    },
    /// A message arrived from a peer.
    Message {
        /// The sender.
        peer: PeerId,
        /// The message.
        message: Message,
    },
    /// The answer to an [`Action::Lookup`].
    Looked {
        /// The peer the lookup was for.
        peer: PeerId,
        /// One result per looked-up want.
        results: Vec<Looked>,
    },
    /// A block was added to the store.
    BlockAdded(Cid),
    /// The answer to an [`Action::Load`].
    Loaded {
        /// The block.
        cid: Cid,
        /// Its bytes, if still held.
        data: Option<Bytes>,
    },
    /// A connection to a peer was established.
    PeerConnected(PeerId),
    /// The last connection to a peer closed.
    PeerDisconnected(PeerId),
    /// Sending to a peer failed (no stream could be opened, or writing failed twice).
    Unreachable(PeerId),
    /// Time passed (fetch deadlines are checked on every event; this one carries nothing else).
    Tick,
}

/// An output of [`State::handle`], for the caller to carry out.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send `message` to `peer`.
    Send {
        /// The receiver.
        peer: PeerId,
        /// The message (within the size limit).
        message: Message,
    },
    /// Look these wants up in the block store and answer with [`Event::Looked`].
    Lookup {
        /// The peer that wants them.
        peer: PeerId,
        /// The wanted blocks and what is wanted of each.
        wants: Vec<(Cid, WantType)>,
    },
    /// Read this block from the store and answer with [`Event::Loaded`].
    Load(Cid),
    /// A fetch ended.
    Complete {
        /// The request.
        id: RequestId,
        /// The verified block, or why there is none.
        result: Result<Bytes, FetchError>,
    },
    /// A peer misbehaved (the caller may lower its score or disconnect it).
    Misbehaved {
        /// The peer.
        peer: PeerId,
        /// What it did.
        reason: Misbehaviour,
    },
}

/// A want a peer sent us.
#[derive(Debug, Clone, Copy)]
struct PeerWant {
    want_type: WantType,
    send_dont_have: bool,
    dont_have_sent: bool,
}

/// Where a peer stands on one of our fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Pending,
    DontHave,
    WrongBlock,
    Gone,
}

/// One of our fetches.
#[derive(Debug)]
struct Fetch {
    prefix: Prefix,
    asked: HashMap<PeerId, Answer>,
    requests: Vec<(RequestId, Instant)>,
    /// Asks every peer that connects, too.
    broadcast: bool,
}

/// A bounded set that forgets its oldest member.
#[derive(Debug)]
struct Recent {
    order: VecDeque<Cid>,
    set: HashSet<Cid>,
    cap: usize,
}

impl Recent {
    fn insert(&mut self, cid: Cid) {
        if self.cap == 0 || !self.set.insert(cid) {
            return;
        }
        self.order.push_back(cid);
        while self.order.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }

    fn remove(&mut self, cid: &Cid) {
        if self.set.remove(cid) {
            self.order.retain(|c| c != cid);
        }
    }
}

/// The Bitswap state machine of one node.
#[derive(Debug)]
pub struct State {
    max_message_size: usize,
    max_wants_per_peer: usize,
    max_fetches: usize,
    connected: HashSet<PeerId>,
    ledgers: HashMap<PeerId, HashMap<Cid, PeerWant>>,
    wanted_by: HashMap<Cid, HashSet<PeerId>>,
    fetches: HashMap<Cid, Fetch>,
    deadlines: BTreeMap<(Instant, RequestId), Cid>,
    recent: Recent,
}

impl State {
    /// A state with the limits of `config`.
    pub fn new(config: &Config) -> Self {
        Self {
            max_message_size: config.max_message_size,
            max_wants_per_peer: config.max_wants_per_peer,
            max_fetches: config.max_fetches,
            connected: HashSet::new(),
            ledgers: HashMap::new(),
            wanted_by: HashMap::new(),
            fetches: HashMap::new(),
            deadlines: BTreeMap::new(),
            recent: Recent {
                order: VecDeque::new(),
                set: HashSet::new(),
                cap: config.recent_fetches,
            },
        }
    }

    /// The earliest fetch deadline: call [`State::handle`] (with [`Event::Tick`]) by then.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.keys().next().map(|(at, _)| *at)
    }

    /// The blocks `peer` wants that we have not sent yet.
    pub fn wants_of(&self, peer: &PeerId) -> Vec<Cid> {
        self.ledgers
            .get(peer)
            .map(|l| l.keys().copied().collect())
            .unwrap_or_default()
    }

    /// How many distinct blocks we are fetching.
    pub fn fetching(&self) -> usize {
        self.fetches.len()
    }

    /// Applies `event` at time `now` and returns what to do.
    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Fetch {
                id,
                cid,
                peers,
                deadline,
            } => self.on_fetch(id, cid, peers, deadline, &mut out),
            Event::Message { peer, message } => {
                self.on_wantlist(peer, message.full, message.wantlist, &mut out);
                // Blocks before presences: a block settles a fetch whatever else is said.
                self.on_blocks(peer, message.blocks, &mut out);
                self.on_presences(peer, message.presences, &mut out);
            }
            Event::Looked { peer, results } => self.on_looked(peer, results, &mut out),
            Event::BlockAdded(cid) => self.on_block_added(cid, &mut out),
            Event::Loaded { cid, data } => self.on_loaded(cid, data, &mut out),
            Event::PeerConnected(peer) => self.on_connected(peer, &mut out),
            Event::PeerDisconnected(peer) => {
                self.connected.remove(&peer);
                if let Some(ledger) = self.ledgers.remove(&peer) {
                    for cid in ledger.keys() {
                        unindex(&mut self.wanted_by, cid, &peer);
                    }
                }
                self.peer_gone(peer, &mut out);
            }
            Event::Unreachable(peer) => self.peer_gone(peer, &mut out),
            Event::Tick => {}
        }
        self.expire(now, &mut out);
        out
    }

    fn budget(&self) -> usize {
        self.max_message_size.saturating_sub(MESSAGE_SLACK)
    }

    // ---- client side ----

    fn on_fetch(
        &mut self,
        id: RequestId,
        cid: Cid,
        peers: Vec<PeerId>,
        deadline: Instant,
        out: &mut Vec<Action>,
    ) {
        let complete = |out: &mut Vec<Action>, result| out.push(Action::Complete { id, result });
        if cid.hash().code() == cids::IDENTITY {
            // The data is the digest; there is nothing to fetch.
            return complete(out, Ok(Bytes::copy_from_slice(cid.hash().digest())));
        }
        let prefix = Prefix::of(&cid);
        if !prefix.is_supported() {
            let code = cid.hash().code();
            return complete(out, Err(FetchError::UnsupportedHash { cid, code }));
        }
        let broadcast = peers.is_empty();
        let candidates: Vec<PeerId> = if broadcast {
            self.connected.iter().copied().collect()
        } else {
            peers
        };
        let busy = self.fetches.len() >= self.max_fetches;
        let fetch = match self.fetches.entry(cid) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                if busy {
                    return complete(out, Err(FetchError::Overloaded(self.max_fetches)));
                }
                if candidates.is_empty() {
                    return complete(out, Err(FetchError::NoPeers(cid)));
                }
                self.recent.remove(&cid);
                e.insert(Fetch {
                    prefix,
                    asked: HashMap::new(),
                    requests: Vec::new(),
                    broadcast,
                })
            }
        };
        fetch.broadcast |= broadcast;
        fetch.requests.push((id, deadline));
        self.deadlines.insert((deadline, id), cid);
        for peer in candidates {
            match fetch.asked.entry(peer) {
                Entry::Occupied(mut e) if *e.get() == Answer::Gone => {
                    e.insert(Answer::Pending);
                }
                Entry::Occupied(_) => continue,
                Entry::Vacant(e) => {
                    e.insert(Answer::Pending);
                }
            }
            out.push(Action::Send {
                peer,
                message: want_message(vec![WantlistEntry::want_block(cid)]),
            });
        }
    }

    fn on_blocks(&mut self, peer: PeerId, blocks: Vec<Block>, out: &mut Vec<Action>) {
        for block in blocks {
            let cid = match block.cid() {
                Ok(cid) => cid,
                Err(e) => {
                    out.push(Action::Misbehaved {
                        peer,
                        reason: Misbehaviour::BadPrefix(e),
                    });
                    continue;
                }
            };
            if self.fetches.contains_key(&cid) {
                // The CID was computed from the bytes, so this holds by construction; checking
                // again keeps the guarantee local.
                if cids::verify_block(&cid, &block.data).is_ok() {
                    self.finish(cid, Ok(block.data), Some(peer), out);
                    continue;
                }
            } else if self.recent.set.contains(&cid) {
                continue; // a duplicate, or a late answer to a fetch that ended
            }
            out.push(Action::Misbehaved {
                peer,
                reason: Misbehaviour::UnwantedBlock(cid),
            });
            // Bytes with the prefix of blocks we asked this peer for, that hash to none of
            // them: for those fetches the peer answered with a wrong block.
            let suspects: Vec<Cid> = self
                .fetches
                .iter_mut()
                .filter(|(_, f)| f.prefix == block.prefix)
                .filter_map(|(c, f)| {
                    let answer = f.asked.get_mut(&peer)?;
                    (*answer == Answer::Pending).then(|| {
                        *answer = Answer::WrongBlock;
                        *c
                    })
                })
                .collect();
            for cid in suspects {
                self.settle_if_exhausted(cid, out);
            }
        }
    }

    fn on_presences(&mut self, peer: PeerId, presences: Vec<BlockPresence>, out: &mut Vec<Action>) {
        for p in presences {
            // A Have answers a want-have, which we never send; the block follows a want-block.
            if p.presence != Presence::DontHave {
                continue;
            }
            let Some(answer) = self
                .fetches
                .get_mut(&p.cid)
                .and_then(|f| f.asked.get_mut(&peer))
            else {
                continue;
            };
            if *answer == Answer::Pending {
                *answer = Answer::DontHave;
                self.settle_if_exhausted(p.cid, out);
            }
        }
    }

    fn on_connected(&mut self, peer: PeerId, out: &mut Vec<Action>) {
        self.connected.insert(peer);
        let mut wants = Vec::new();
        for (cid, fetch) in &mut self.fetches {
            let ask = match fetch.asked.get(&peer) {
                None => fetch.broadcast,
                Some(answer) => *answer == Answer::Gone,
            };
            if ask {
                fetch.asked.insert(peer, Answer::Pending);
                wants.push(WantlistEntry::want_block(*cid));
            }
        }
        if !wants.is_empty() {
            out.push(Action::Send {
                peer,
                message: want_message(wants),
            });
        }
    }

    fn peer_gone(&mut self, peer: PeerId, out: &mut Vec<Action>) {
        let mut touched = Vec::new();
        for (cid, fetch) in &mut self.fetches {
            if let Some(answer) = fetch.asked.get_mut(&peer)
                && *answer == Answer::Pending
            {
                *answer = Answer::Gone;
                touched.push(*cid);
            }
        }
        for cid in touched {
            self.settle_if_exhausted(cid, out);
        }
    }

    fn settle_if_exhausted(&mut self, cid: Cid, out: &mut Vec<Action>) {
        let Some(fetch) = self.fetches.get(&cid) else {
            return;
        };
        let answers = || fetch.asked.values();
        if answers().any(|a| *a == Answer::Pending) {
            return;
        }
        let error = if answers().any(|a| *a == Answer::WrongBlock) {
            FetchError::HashMismatch(cid)
        } else if answers().any(|a| *a == Answer::DontHave) {
            FetchError::NotFound(cid)
        } else {
            FetchError::Unreachable(cid)
        };
        self.finish(cid, Err(error), None, out);
    }

    /// Ends a fetch: completes its requests and cancels the want with the peers that may
    /// still hold it (all but `from`, which sent the block).
    fn finish(
        &mut self,
        cid: Cid,
        result: Result<Bytes, FetchError>,
        from: Option<PeerId>,
        out: &mut Vec<Action>,
    ) {
        let Some(fetch) = self.fetches.remove(&cid) else {
            return;
        };
        for (id, deadline) in fetch.requests {
            self.deadlines.remove(&(deadline, id));
            out.push(Action::Complete {
                id,
                result: result.clone(),
            });
        }
        self.cancel_wants(cid, &fetch.asked, from, out);
        self.recent.insert(cid);
    }

    fn cancel_wants(
        &self,
        cid: Cid,
        asked: &HashMap<PeerId, Answer>,
        from: Option<PeerId>,
        out: &mut Vec<Action>,
    ) {
        for (peer, answer) in asked {
            if Some(*peer) != from && matches!(answer, Answer::Pending | Answer::DontHave) {
                out.push(Action::Send {
                    peer: *peer,
                    message: want_message(vec![WantlistEntry::cancel(cid)]),
                });
            }
        }
    }

    fn expire(&mut self, now: Instant, out: &mut Vec<Action>) {
        while let Some(entry) = self.deadlines.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ((_, id), cid) = entry.remove_entry();
            out.push(Action::Complete {
                id,
                result: Err(FetchError::Timeout(cid)),
            });
            let Some(fetch) = self.fetches.get_mut(&cid) else {
                continue;
            };
            fetch.requests.retain(|(r, _)| *r != id);
            if fetch.requests.is_empty()
                && let Some(fetch) = self.fetches.remove(&cid)
            {
                self.cancel_wants(cid, &fetch.asked, None, out);
                self.recent.insert(cid);
            }
        }
    }

    // ---- server side ----

    fn on_wantlist(
        &mut self,
        peer: PeerId,
        full: bool,
        entries: Vec<WantlistEntry>,
        out: &mut Vec<Action>,
    ) {
        if full && let Some(ledger) = self.ledgers.remove(&peer) {
            for cid in ledger.keys() {
                unindex(&mut self.wanted_by, cid, &peer);
            }
        }
        let mut lookups = Vec::new();
        let mut ignored = 0usize;
        for e in entries {
            if e.cancel {
                self.forget(peer, &e.cid);
                continue;
            }
            let ledger = self.ledgers.entry(peer).or_default();
            let len = ledger.len();
            let want_type = match ledger.entry(e.cid) {
                Entry::Occupied(mut o) => {
                    let w = o.get_mut();
                    // A want-have does not downgrade a want-block.
                    if e.want_type == WantType::Block {
                        w.want_type = WantType::Block;
                    }
                    w.send_dont_have = e.send_dont_have;
                    w.dont_have_sent = false;
                    w.want_type
                }
                Entry::Vacant(v) => {
                    if len >= self.max_wants_per_peer {
                        ignored += 1;
                        continue;
                    }
                    v.insert(PeerWant {
                        want_type: e.want_type,
                        send_dont_have: e.send_dont_have,
                        dont_have_sent: false,
                    });
                    self.wanted_by.entry(e.cid).or_default().insert(peer);
                    e.want_type
                }
            };
            lookups.push((e.cid, want_type));
        }
        if ignored > 0 {
            tracing::debug!(%peer, ignored, "wantlist over the per-peer limit; ignoring the rest");
        }
        if self.ledgers.get(&peer).is_some_and(HashMap::is_empty) {
            self.ledgers.remove(&peer);
        }
        if !lookups.is_empty() {
            out.push(Action::Lookup {
                peer,
                wants: lookups,
            });
        }
    }

    fn forget(&mut self, peer: PeerId, cid: &Cid) {
        if let Some(ledger) = self.ledgers.get_mut(&peer) {
            if ledger.remove(cid).is_some() {
                unindex(&mut self.wanted_by, cid, &peer);
            }
            if ledger.is_empty() {
                self.ledgers.remove(&peer);
            }
        }
    }

    fn on_looked(&mut self, peer: PeerId, results: Vec<Looked>, out: &mut Vec<Action>) {
        let budget = self.budget();
        let mut presences = Vec::new();
        let mut blocks = Vec::new();
        let mut done = Vec::new();
        let Some(ledger) = self.ledgers.get_mut(&peer) else {
            return;
        };
        for result in results {
            let (cid, want_type) = match &result {
                Looked::Have { cid, .. } => (*cid, WantType::Have),
                Looked::Block { cid, .. } => (*cid, WantType::Block),
            };
            // Skipped when cancelled meanwhile, answered already (by a block added since),
            // or upgraded to a want-block whose own lookup will answer.
            let Some(want) = ledger.get_mut(&cid) else {
                continue;
            };
            if want.want_type != want_type {
                continue;
            }
            let dont_have = |want: &mut PeerWant, presences: &mut Vec<BlockPresence>| {
                if want.send_dont_have && !want.dont_have_sent {
                    want.dont_have_sent = true;
                    presences.push(BlockPresence {
                        cid,
                        presence: Presence::DontHave,
                    });
                }
            };
            match result {
                Looked::Have { has: true, .. } => {
                    presences.push(BlockPresence {
                        cid,
                        presence: Presence::Have,
                    });
                    done.push(cid);
                }
                Looked::Block {
                    data: Some(data), ..
                } => {
                    let block = Block::new(&cid, data);
                    if block.encoded_field_len() <= budget {
                        blocks.push(block);
                    } else {
                        // It will never fit, so adding it later would not help either.
                        tracing::warn!(%cid, size = block.data.len(), "block too large for a bitswap message");
                        dont_have(want, &mut presences);
                    }
                    done.push(cid);
                }
                _ => dont_have(want, &mut presences),
            }
        }
        for cid in done {
            self.forget(peer, &cid);
        }
        send_packed(peer, presences, blocks, budget, out);
    }

    fn on_block_added(&mut self, cid: Cid, out: &mut Vec<Action>) {
        let mut load = self.fetches.contains_key(&cid);
        let peers: Vec<PeerId> = self
            .wanted_by
            .get(&cid)
            .map(|p| p.iter().copied().collect())
            .unwrap_or_default();
        for peer in peers {
            let Some(want) = self.ledgers.get(&peer).and_then(|l| l.get(&cid)) else {
                continue;
            };
            match want.want_type {
                WantType::Block => load = true,
                WantType::Have => {
                    self.forget(peer, &cid);
                    out.push(Action::Send {
                        peer,
                        message: Message {
                            presences: vec![BlockPresence {
                                cid,
                                presence: Presence::Have,
                            }],
                            ..Message::default()
                        },
                    });
                }
            }
        }
        if load {
            out.push(Action::Load(cid));
        }
    }

    fn on_loaded(&mut self, cid: Cid, data: Option<Bytes>, out: &mut Vec<Action>) {
        let Some(data) = data else {
            return;
        };
        if cids::verify_block(&cid, &data).is_err() {
            tracing::warn!(%cid, "block store returned bytes that do not hash to the CID");
            return;
        }
        if self.fetches.contains_key(&cid) {
            self.finish(cid, Ok(data.clone()), None, out);
        }
        let budget = self.budget();
        let block = Block::new(&cid, data);
        let fits = block.encoded_field_len() <= budget;
        let peers: Vec<PeerId> = self
            .wanted_by
            .get(&cid)
            .map(|p| p.iter().copied().collect())
            .unwrap_or_default();
        for peer in peers {
            let Some(want) = self.ledgers.get(&peer).and_then(|l| l.get(&cid)).copied() else {
                continue;
            };
            self.forget(peer, &cid);
            let mut message = Message::default();
            match want.want_type {
                WantType::Block if fits => message.blocks.push(block.clone()),
                WantType::Block => {
                    if want.send_dont_have && !want.dont_have_sent {
                        message.presences.push(BlockPresence {
                            cid,
                            presence: Presence::DontHave,
                        });
                    }
                }
                WantType::Have => message.presences.push(BlockPresence {
                    cid,
                    presence: Presence::Have,
                }),
            }
            if !message.is_empty() {
                out.push(Action::Send { peer, message });
            }
        }
    }
}

fn unindex(wanted_by: &mut HashMap<Cid, HashSet<PeerId>>, cid: &Cid, peer: &PeerId) {
    if let Some(peers) = wanted_by.get_mut(cid) {
        peers.remove(peer);
        if peers.is_empty() {
            wanted_by.remove(cid);
        }
    }
}

fn want_message(wantlist: Vec<WantlistEntry>) -> Message {
    Message {
        wantlist,
        ..Message::default()
    }
}

/// Sends presences and blocks to `peer` in as few messages as fit in `budget` bytes each.
fn send_packed(
    peer: PeerId,
    presences: Vec<BlockPresence>,
    blocks: Vec<Block>,
    budget: usize,
    out: &mut Vec<Action>,
) {
    let mut message = Message::default();
    let mut size = 0;
    let mut flush = |message: &mut Message, size: &mut usize| {
        if !message.is_empty() {
            out.push(Action::Send {
                peer,
                message: std::mem::take(message),
            });
        }
        *size = 0;
    };
    for p in presences {
        let len = presence_field_len(&p);
        if size + len > budget {
            flush(&mut message, &mut size);
        }
        size += len;
        message.presences.push(p);
    }
    for b in blocks {
        let len = b.encoded_field_len();
        if size + len > budget {
            flush(&mut message, &mut size);
        }
        size += len;
        message.blocks.push(b);
    }
    flush(&mut message, &mut size);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::bitswap::source::{BlockSource, MemoryBlocks};

    fn peer() -> PeerId {
        PeerId::random()
    }

    fn block(n: u8) -> (Cid, Bytes) {
        let data = vec![0xa1, 0x61, b'n', n];
        (cids::record_cid(&data), Bytes::from(data))
    }

    /// Runs `event`, carrying out lookups and loads against `source`, and returns the rest.
    fn run(state: &mut State, source: &MemoryBlocks, event: Event, now: Instant) -> Vec<Action> {
        let mut queue = vec![event];
        let mut out = Vec::new();
        while let Some(event) = queue.pop() {
            for action in state.handle(event, now) {
                match action {
                    Action::Lookup { peer, wants } => queue.push(Event::Looked {
                        peer,
                        results: wants
                            .into_iter()
                            .map(|(cid, t)| match t {
                                WantType::Have => Looked::Have {
                                    cid,
                                    has: source.has(&cid),
                                },
                                WantType::Block => Looked::Block {
                                    cid,
                                    data: source.get(&cid).map(Bytes::from),
                                },
                            })
                            .collect(),
                    }),
                    Action::Load(cid) => queue.push(Event::Loaded {
                        cid,
                        data: source.get(&cid).map(Bytes::from),
                    }),
                    other => out.push(other),
                }
            }
        }
        out
    }

    fn wants(peer: PeerId, entries: Vec<WantlistEntry>) -> Event {
        Event::Message {
            peer,
            message: want_message(entries),
        }
    }

    fn sent(actions: &[Action]) -> Vec<(PeerId, Message)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send { peer, message } => Some((*peer, message.clone())),
                _ => None,
            })
            .collect()
    }

    fn presence(cid: Cid, presence: Presence) -> BlockPresence {
        BlockPresence { cid, presence }
    }

    fn setup() -> (State, MemoryBlocks, Instant) {
        (
            State::new(&Config::default()),
            MemoryBlocks::new(),
            Instant::now(),
        )
    }

    #[test]
    fn want_have_is_answered_with_have_or_dont_have() {
        let (mut s, src, now) = setup();
        let (a, data) = block(1);
        let (b, _) = block(2);
        src.insert(a, data.to_vec());
        let p = peer();
        let out = run(
            &mut s,
            &src,
            wants(
                p,
                vec![WantlistEntry::want_have(a), WantlistEntry::want_have(b)],
            ),
            now,
        );
        let msgs = sent(&out);
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].0, p);
        assert_eq!(
            msgs[0].1.presences,
            vec![presence(a, Presence::Have), presence(b, Presence::DontHave)]
        );
        assert!(msgs[0].1.blocks.is_empty());
        // The missing one is remembered; the answered one is not.
        assert_eq!(s.wants_of(&p), vec![b]);
    }

    #[test]
    fn missing_block_without_send_dont_have_gets_no_answer() {
        let (mut s, src, now) = setup();
        let (b, _) = block(2);
        let p = peer();
        let entry = WantlistEntry {
            send_dont_have: false,
            ..WantlistEntry::want_block(b)
        };
        assert!(sent(&run(&mut s, &src, wants(p, vec![entry]), now)).is_empty());
        assert_eq!(s.wants_of(&p), vec![b]);
    }

    #[test]
    fn want_block_is_answered_with_the_block_or_dont_have() {
        let (mut s, src, now) = setup();
        let (a, data) = block(1);
        let (b, _) = block(2);
        src.insert(a, data.to_vec());
        let p = peer();
        let out = run(
            &mut s,
            &src,
            wants(
                p,
                vec![WantlistEntry::want_block(a), WantlistEntry::want_block(b)],
            ),
            now,
        );
        let msgs = sent(&out);
        assert_eq!(msgs.len(), 1);
        let msg = &msgs[0].1;
        assert_eq!(msg.blocks, vec![Block::new(&a, data)]);
        assert_eq!(msg.blocks[0].cid().unwrap(), a);
        assert_eq!(msg.presences, vec![presence(b, Presence::DontHave)]);
        // The encoded message decodes back to the same thing.
        assert_eq!(&Message::decode(msg.encode().into()).unwrap(), msg);
    }

    #[test]
    fn block_added_answers_remembered_wants_once() {
        let (mut s, src, now) = setup();
        let (a, data) = block(1);
        let (p, q, r) = (peer(), peer(), peer());
        run(
            &mut s,
            &src,
            wants(p, vec![WantlistEntry::want_block(a)]),
            now,
        );
        run(
            &mut s,
            &src,
            wants(q, vec![WantlistEntry::want_have(a)]),
            now,
        );
        run(
            &mut s,
            &src,
            wants(r, vec![WantlistEntry::want_block(a)]),
            now,
        );
        run(&mut s, &src, wants(r, vec![WantlistEntry::cancel(a)]), now);
        assert!(s.wants_of(&r).is_empty());

        src.insert(a, data.to_vec());
        let out = run(&mut s, &src, Event::BlockAdded(a), now);
        let mut msgs = sent(&out);
        msgs.sort_by_key(|(peer, _)| *peer != p);
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert_eq!(msgs[0].0, p);
        assert_eq!(msgs[0].1.blocks, vec![Block::new(&a, data)]);
        assert_eq!(msgs[1].0, q);
        assert_eq!(msgs[1].1.presences, vec![presence(a, Presence::Have)]);
        assert!(s.wants_of(&p).is_empty() && s.wants_of(&q).is_empty());

        // Answered wants are forgotten: a second add sends nothing.
        assert!(run(&mut s, &src, Event::BlockAdded(a), now).is_empty());
    }

    #[test]
    fn cancel_and_full_wantlist_and_disconnect_forget_wants() {
        let (mut s, src, now) = setup();
        let (a, _) = block(1);
        let (b, _) = block(2);
        let p = peer();
        run(
            &mut s,
            &src,
            wants(
                p,
                vec![WantlistEntry::want_block(a), WantlistEntry::want_have(b)],
            ),
            now,
        );
        assert_eq!(s.wants_of(&p).len(), 2);
        run(&mut s, &src, wants(p, vec![WantlistEntry::cancel(a)]), now);
        assert_eq!(s.wants_of(&p), vec![b]);

        // A full wantlist replaces the previous one.
        let full = Event::Message {
            peer: p,
            message: Message {
                wantlist: vec![WantlistEntry::want_block(a)],
                full: true,
                ..Message::default()
            },
        };
        run(&mut s, &src, full, now);
        assert_eq!(s.wants_of(&p), vec![a]);

        run(&mut s, &src, Event::PeerDisconnected(p), now);
        assert!(s.wants_of(&p).is_empty());
        assert!(s.wanted_by.is_empty() && s.ledgers.is_empty());
    }

    #[test]
    fn a_lookup_answered_after_a_cancel_sends_nothing() {
        let (mut s, _src, now) = setup();
        let (a, data) = block(1);
        let p = peer();
        let out = s.handle(wants(p, vec![WantlistEntry::want_block(a)]), now);
        assert_eq!(
            out,
            vec![Action::Lookup {
                peer: p,
                wants: vec![(a, WantType::Block)]
            }]
        );
        s.handle(wants(p, vec![WantlistEntry::cancel(a)]), now);
        let late = Event::Looked {
            peer: p,
            results: vec![Looked::Block {
                cid: a,
                data: Some(data),
            }],
        };
        assert!(s.handle(late, now).is_empty());
    }

    #[test]
    fn a_block_added_during_a_lookup_is_sent_once() {
        let (mut s, _src, now) = setup();
        let (a, data) = block(1);
        let p = peer();
        s.handle(wants(p, vec![WantlistEntry::want_block(a)]), now);
        // The block lands in the store after the lookup missed it, before its answer.
        assert_eq!(s.handle(Event::BlockAdded(a), now), vec![Action::Load(a)]);
        let loaded = s.handle(
            Event::Loaded {
                cid: a,
                data: Some(data.clone()),
            },
            now,
        );
        assert_eq!(sent(&loaded)[0].1.blocks, vec![Block::new(&a, data)]);
        let missed = Event::Looked {
            peer: p,
            results: vec![Looked::Block { cid: a, data: None }],
        };
        assert!(s.handle(missed, now).is_empty());
    }

    #[test]
    fn wants_per_peer_are_bounded() {
        let config = Config {
            max_wants_per_peer: 3,
            ..Config::default()
        };
        let mut s = State::new(&config);
        let src = MemoryBlocks::new();
        let p = peer();
        let entries = (0..10)
            .map(|n| WantlistEntry::want_have(block(n).0))
            .collect();
        let out = run(&mut s, &src, wants(p, entries), Instant::now());
        assert_eq!(s.wants_of(&p).len(), 3);
        assert_eq!(sent(&out)[0].1.presences.len(), 3);
    }

    #[test]
    fn oversized_answers_are_split_and_too_large_blocks_refused() {
        let config = Config {
            max_message_size: 1000,
            ..Config::default()
        };
        let mut s = State::new(&config);
        let src = MemoryBlocks::new();
        let p = peer();
        let mut entries = Vec::new();
        for n in 0..5u8 {
            let data = vec![n; 400];
            let cid = cids::record_cid(&data);
            src.insert(cid, data);
            entries.push(WantlistEntry::want_block(cid));
        }
        let huge = vec![9u8; 2000];
        let huge_cid = cids::record_cid(&huge);
        src.insert(huge_cid, huge);
        entries.push(WantlistEntry::want_block(huge_cid));

        let msgs = sent(&run(&mut s, &src, wants(p, entries), Instant::now()));
        let blocks: usize = msgs.iter().map(|(_, m)| m.blocks.len()).sum();
        assert_eq!(blocks, 5);
        assert!(msgs.len() >= 3, "two 400-byte blocks at most per message");
        for (_, m) in &msgs {
            assert!(m.encoded_len() <= 1000, "{} bytes", m.encoded_len());
        }
        let dont_have: Vec<_> = msgs.iter().flat_map(|(_, m)| m.presences.clone()).collect();
        assert_eq!(dont_have, vec![presence(huge_cid, Presence::DontHave)]);
        assert!(s.wants_of(&p).is_empty());
    }

    fn fetch(s: &mut State, id: u64, cid: Cid, peers: Vec<PeerId>, now: Instant) -> Vec<Action> {
        s.handle(
            Event::Fetch {
                id: RequestId(id),
                cid,
                peers,
                deadline: now + Duration::from_secs(10),
            },
            now,
        )
    }

    fn completions(actions: &[Action]) -> Vec<(RequestId, Result<Bytes, FetchError>)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Complete { id, result } => Some((*id, result.clone())),
                _ => None,
            })
            .collect()
    }

    fn block_message(cid: &Cid, data: &[u8]) -> Message {
        Message {
            blocks: vec![Block {
                prefix: Prefix::of(cid),
                data: Bytes::copy_from_slice(data),
            }],
            ..Message::default()
        }
    }

    #[test]
    fn fetch_asks_every_candidate_and_cancels_the_rest() {
        let (mut s, _, now) = setup();
        let (a, data) = block(1);
        let (p, q) = (peer(), peer());
        let out = fetch(&mut s, 1, a, vec![p, q], now);
        let msgs = sent(&out);
        assert_eq!(msgs.len(), 2);
        for (_, m) in &msgs {
            assert_eq!(m.wantlist, vec![WantlistEntry::want_block(a)]);
            assert!(m.wantlist[0].send_dont_have);
        }
        // A second request for the same block shares the want.
        assert!(sent(&fetch(&mut s, 2, a, vec![p], now)).is_empty());

        let out = s.handle(
            Event::Message {
                peer: p,
                message: block_message(&a, &data),
            },
            now,
        );
        let done = completions(&out);
        assert_eq!(
            done,
            vec![
                (RequestId(1), Ok(data.clone())),
                (RequestId(2), Ok(data.clone()))
            ]
        );
        assert_eq!(
            sent(&out),
            vec![(q, want_message(vec![WantlistEntry::cancel(a)]))]
        );
        assert_eq!(s.fetching(), 0);
        assert_eq!(s.next_deadline(), None);

        // The same block arriving late from q is a harmless duplicate.
        let late = s.handle(
            Event::Message {
                peer: q,
                message: block_message(&a, &data),
            },
            now,
        );
        assert!(late.is_empty(), "{late:?}");
    }

    #[test]
    fn all_dont_have_is_not_found() {
        let (mut s, _, now) = setup();
        let (a, _) = block(1);
        let (p, q) = (peer(), peer());
        fetch(&mut s, 1, a, vec![p, q], now);
        let dont_have = |peer| Event::Message {
            peer,
            message: Message {
                presences: vec![presence(a, Presence::DontHave)],
                ..Message::default()
            },
        };
        assert!(completions(&s.handle(dont_have(p), now)).is_empty());
        let out = s.handle(dont_have(q), now);
        assert_eq!(
            completions(&out),
            vec![(RequestId(1), Err(FetchError::NotFound(a)))]
        );
        // Both keep our want after a DontHave (to tell us later), so both get a cancel.
        assert_eq!(sent(&out).len(), 2);
    }

    #[test]
    fn a_wrong_block_is_dropped_and_reported() {
        let (mut s, _, now) = setup();
        let (a, data) = block(1);
        let (p, q) = (peer(), peer());
        fetch(&mut s, 1, a, vec![p, q], now);

        // p sends other bytes under a's prefix: dropped, p reported, the fetch goes on.
        let out = s.handle(
            Event::Message {
                peer: p,
                message: block_message(&a, b"\xa1\x61n\xff"),
            },
            now,
        );
        assert!(completions(&out).is_empty());
        let wrong = cids::record_cid(b"\xa1\x61n\xff");
        assert_eq!(
            out,
            vec![Action::Misbehaved {
                peer: p,
                reason: Misbehaviour::UnwantedBlock(wrong)
            }]
        );
        // q has the real one.
        let out = s.handle(
            Event::Message {
                peer: q,
                message: block_message(&a, &data),
            },
            now,
        );
        assert_eq!(completions(&out), vec![(RequestId(1), Ok(data))]);
        assert!(
            sent(&out).is_empty(),
            "p answered, q sent it: nobody to cancel"
        );
    }

    #[test]
    fn only_wrong_blocks_is_a_hash_mismatch() {
        let (mut s, _, now) = setup();
        let (a, _) = block(1);
        let p = peer();
        fetch(&mut s, 1, a, vec![p], now);
        let out = s.handle(
            Event::Message {
                peer: p,
                message: block_message(&a, b"garbage"),
            },
            now,
        );
        assert_eq!(
            completions(&out),
            vec![(RequestId(1), Err(FetchError::HashMismatch(a)))]
        );
        assert!(matches!(
            out[0],
            Action::Misbehaved {
                reason: Misbehaviour::UnwantedBlock(_),
                ..
            }
        ));
    }

    #[test]
    fn unsupported_prefixes_are_reported() {
        let (mut s, _, now) = setup();
        let p = peer();
        let message = Message {
            blocks: vec![Block {
                prefix: Prefix {
                    version: 1,
                    codec: cids::RAW,
                    mh_type: 0x13,
                    mh_len: 64,
                },
                data: Bytes::from_static(b"x"),
            }],
            ..Message::default()
        };
        let out = s.handle(Event::Message { peer: p, message }, now);
        assert!(matches!(
            out[..],
            [Action::Misbehaved {
                reason: Misbehaviour::BadPrefix(PrefixError::UnsupportedHash { code: 0x13, .. }),
                ..
            }]
        ));
    }

    #[test]
    fn fetch_times_out_and_cancels() {
        let (mut s, _, now) = setup();
        let (a, _) = block(1);
        let p = peer();
        fetch(&mut s, 1, a, vec![p], now);
        let deadline = s.next_deadline().unwrap();
        assert_eq!(deadline, now + Duration::from_secs(10));
        assert!(
            s.handle(Event::Tick, deadline - Duration::from_millis(1))
                .is_empty()
        );
        let out = s.handle(Event::Tick, deadline);
        assert_eq!(
            completions(&out),
            vec![(RequestId(1), Err(FetchError::Timeout(a)))]
        );
        assert_eq!(
            sent(&out),
            vec![(p, want_message(vec![WantlistEntry::cancel(a)]))]
        );
        assert_eq!(s.fetching(), 0);
    }

    #[test]
    fn broadcast_fetch_asks_connected_and_new_peers() {
        let (mut s, _, now) = setup();
        let (a, data) = block(1);
        assert_eq!(
            completions(&fetch(&mut s, 1, a, vec![], now)),
            vec![(RequestId(1), Err(FetchError::NoPeers(a)))]
        );
        let (p, q) = (peer(), peer());
        s.handle(Event::PeerConnected(p), now);
        assert_eq!(sent(&fetch(&mut s, 2, a, vec![], now)).len(), 1);
        let out = s.handle(Event::PeerConnected(q), now);
        assert_eq!(
            sent(&out),
            vec![(q, want_message(vec![WantlistEntry::want_block(a)]))]
        );
        let out = s.handle(
            Event::Message {
                peer: q,
                message: block_message(&a, &data),
            },
            now,
        );
        assert_eq!(completions(&out), vec![(RequestId(2), Ok(data))]);
    }

    #[test]
    fn disconnected_candidates_make_a_fetch_unreachable() {
        let (mut s, _, now) = setup();
        let (a, _) = block(1);
        let (p, q) = (peer(), peer());
        fetch(&mut s, 1, a, vec![p, q], now);
        assert!(s.handle(Event::Unreachable(p), now).is_empty());
        let out = s.handle(Event::PeerDisconnected(q), now);
        assert_eq!(
            completions(&out),
            vec![(RequestId(1), Err(FetchError::Unreachable(a)))]
        );
        assert!(sent(&out).is_empty(), "no cancels to peers that are gone");
    }

    #[test]
    fn identity_unsupported_and_overload_are_settled_at_once() {
        let (mut s, _, now) = setup();
        let p = peer();
        let id = Cid::new_v1(
            cids::RAW,
            cids::Multihash::wrap(cids::IDENTITY, b"hi").unwrap(),
        );
        assert_eq!(
            completions(&fetch(&mut s, 1, id, vec![p], now)),
            vec![(RequestId(1), Ok(Bytes::from_static(b"hi")))]
        );
        let sha512 = Cid::new_v1(cids::RAW, cids::Multihash::wrap(0x13, &[0; 64]).unwrap());
        assert_eq!(
            completions(&fetch(&mut s, 2, sha512, vec![p], now)),
            vec![(
                RequestId(2),
                Err(FetchError::UnsupportedHash {
                    cid: sha512,
                    code: 0x13
                })
            )]
        );
        let mut s = State::new(&Config {
            max_fetches: 1,
            ..Config::default()
        });
        fetch(&mut s, 3, block(1).0, vec![p], now);
        assert_eq!(
            completions(&fetch(&mut s, 4, block(2).0, vec![p], now)),
            vec![(RequestId(4), Err(FetchError::Overloaded(1)))]
        );
    }

    #[test]
    fn a_block_added_locally_completes_a_fetch() {
        let (mut s, src, now) = setup();
        let (a, data) = block(1);
        let p = peer();
        fetch(&mut s, 1, a, vec![p], now);
        src.insert(a, data.to_vec());
        let out = run(&mut s, &src, Event::BlockAdded(a), now);
        assert_eq!(completions(&out), vec![(RequestId(1), Ok(data))]);
        assert_eq!(
            sent(&out),
            vec![(p, want_message(vec![WantlistEntry::cancel(a)]))]
        );
    }
}

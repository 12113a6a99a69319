//! The Bitswap service: runs the [`State`] machine over libp2p streams.
//!
//! One event loop owns the state. Around it:
//! - one reader task per inbound stream, reading length-prefixed messages until the stream
//!   ends (Helia and Kubo may open a stream per message, or keep one open);
//! - one writer task per peer, holding one outbound stream that is reused while messages keep
//!   coming, closed when idle, and reopened (once per message) when writing fails;
//! - block store lookups on the blocking pool, in a `JoinSet` the loop polls.
//!
//! Every channel is bounded. The service stops when every [`Bitswap`] handle is dropped or on
//! [`Bitswap::shutdown`].

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::Duration,
};

use bytes::Bytes;
use futures::{
    AsyncReadExt as _, AsyncWriteExt as _, FutureExt as _, StreamExt as _, stream::SelectAll,
};
use libp2p::{PeerId, Stream};
use libp2p_stream::{Control, IncomingStreams, OpenStreamError};
use mnode_dag::Cid;
use tokio::{
    sync::{broadcast, mpsc, oneshot},
    task::{AbortHandle, JoinSet},
    time::Instant,
};

use super::{
    config::Config,
    engine::{Action, Event, FetchError, Looked, Misbehaviour, RequestId, State},
    protocol::{
        Message, PROTOCOL, PROTOCOL_1_1_0, ReadError, WantType, read_message, write_message,
    },
    source::BlockSource,
};

const COMMAND_QUEUE: usize = 64;
const NOTICE_QUEUE: usize = 1024;
const INBOUND_QUEUE: usize = 64;
const FAILURE_QUEUE: usize = 64;
const REPORT_QUEUE: usize = 64;
/// Bytes of messages kept per peer beyond its send queue, sent as the queue drains; messages
/// past this are dropped (the peer asks again or times out).
const OVERFLOW_BYTES: usize = 16 << 20;
/// How often messages kept beyond a full send queue are tried again.
const OVERFLOW_RETRY: Duration = Duration::from_millis(5);

/// A peer misbehaved; see [`Bitswap::misbehaviour`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Misbehaved {
    /// The peer.
    pub peer: PeerId,
    /// What it did.
    pub reason: Misbehaviour,
}

/// The service could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// Another component of this swarm already accepts the Bitswap protocols.
    #[error("the bitswap protocols are already accepted on this libp2p_stream::Control")]
    AlreadyRegistered(#[from] libp2p_stream::AlreadyRegistered),
}

/// A notification could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// The service's notification queue is full; the notification was dropped.
    #[error("the bitswap notification queue is full")]
    Full,
    /// The service stopped.
    #[error("the bitswap service stopped")]
    Stopped,
}

enum Command {
    Fetch {
        cid: Cid,
        peers: Vec<PeerId>,
        timeout: Duration,
        reply: oneshot::Sender<Result<Bytes, FetchError>>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

enum Notice {
    BlockAdded(Cid),
    Connected(PeerId),
    Disconnected(PeerId),
}

enum Inbound {
    Message(PeerId, Message),
    Misbehaved(PeerId, Misbehaviour),
}

/// A handle to a running Bitswap service. Cheap to clone; the service stops when the last
/// handle is dropped.
#[derive(Clone, Debug)]
pub struct Bitswap {
    commands: mpsc::Sender<Command>,
    notices: mpsc::Sender<Notice>,
    reports: broadcast::Sender<Misbehaved>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Fetch { cid, .. } => write!(f, "Fetch({cid})"),
            Command::Shutdown { .. } => write!(f, "Shutdown"),
        }
    }
}

impl std::fmt::Debug for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::BlockAdded(c) => write!(f, "BlockAdded({c})"),
            Notice::Connected(p) => write!(f, "Connected({p})"),
            Notice::Disconnected(p) => write!(f, "Disconnected({p})"),
        }
    }
}

impl Bitswap {
    /// Starts the service on the current tokio runtime: accepts `/ipfs/bitswap/1.2.0` (and
    /// 1.1.0) streams on `control`, serves blocks from `source`, and fetches through
    /// [`Bitswap::fetch`]. The swarm that owns the `libp2p_stream::Behaviour` must be polled
    /// for streams to flow, and should report connections with [`Bitswap::peer_connected`]
    /// and [`Bitswap::peer_disconnected`].
    pub fn spawn(
        mut control: Control,
        source: Arc<dyn BlockSource>,
        config: Config,
    ) -> Result<Self, SpawnError> {
        let mut incoming = SelectAll::new();
        incoming.push(control.accept(PROTOCOL)?);
        incoming.push(control.accept(PROTOCOL_1_1_0)?);
        let (commands, commands_rx) = mpsc::channel(COMMAND_QUEUE);
        let (notices, notices_rx) = mpsc::channel(NOTICE_QUEUE);
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_QUEUE);
        let (failures_tx, failures_rx) = mpsc::channel(FAILURE_QUEUE);
        let (reports, _) = broadcast::channel(REPORT_QUEUE);
        let event_loop = EventLoop {
            state: State::new(&config),
            config,
            source,
            control,
            commands: commands_rx,
            notices: notices_rx,
            incoming,
            inbound_tx,
            inbound_rx,
            readers: JoinSet::new(),
            reader_peers: HashMap::new(),
            readers_by_peer: HashMap::new(),
            lookups: JoinSet::new(),
            writers: HashMap::new(),
            overflow: HashMap::new(),
            failures_tx,
            failures_rx,
            pending: HashMap::new(),
            next_id: 0,
            reports: reports.clone(),
        };
        tokio::spawn(event_loop.run());
        Ok(Self {
            commands,
            notices,
            reports,
        })
    }

    /// Fetches `cid` from `peers` (from every connected peer, and those that connect while
    /// waiting, when `peers` is empty), waiting at most `timeout`. The block returned hashes
    /// to `cid`.
    pub async fn fetch(
        &self,
        cid: Cid,
        peers: Vec<PeerId>,
        timeout: Duration,
    ) -> Result<Vec<u8>, FetchError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Fetch {
                cid,
                peers,
                timeout,
                reply,
            })
            .await
            .map_err(|_| FetchError::Stopped)?;
        rx.await.map_err(|_| FetchError::Stopped)?.map(Vec::from)
    }

    /// Tells the service that `cid` was added to the block source, so peers waiting for it
    /// get it (and a fetch of it ends).
    pub fn block_added(&self, cid: Cid) -> Result<(), NotifyError> {
        self.notify(Notice::BlockAdded(cid))
    }

    /// Tells the service that a connection to `peer` was established (the swarm's
    /// `ConnectionEstablished`).
    pub fn peer_connected(&self, peer: PeerId) -> Result<(), NotifyError> {
        self.notify(Notice::Connected(peer))
    }

    /// Tells the service that the last connection to `peer` closed (the swarm's
    /// `ConnectionClosed` with `num_established == 0`).
    pub fn peer_disconnected(&self, peer: PeerId) -> Result<(), NotifyError> {
        self.notify(Notice::Disconnected(peer))
    }

    /// Reports of misbehaving peers (wrong blocks, malformed or oversized messages). A slow
    /// receiver misses reports rather than slowing the service.
    pub fn misbehaviour(&self) -> broadcast::Receiver<Misbehaved> {
        self.reports.subscribe()
    }

    /// Stops the service and waits until it has; pending fetches fail with
    /// [`FetchError::Stopped`].
    pub async fn shutdown(&self) {
        let (reply, rx) = oneshot::channel();
        if self
            .commands
            .send(Command::Shutdown { reply })
            .await
            .is_ok()
        {
            let _ = rx.await;
        }
    }

    fn notify(&self, notice: Notice) -> Result<(), NotifyError> {
        self.notices.try_send(notice).map_err(|e| match e {
            mpsc::error::TrySendError::Full(n) => {
                tracing::warn!(notice = ?n, "bitswap notification queue full; dropping");
                NotifyError::Full
            }
            mpsc::error::TrySendError::Closed(_) => NotifyError::Stopped,
        })
    }
}

struct EventLoop {
    state: State,
    config: Config,
    source: Arc<dyn BlockSource>,
    control: Control,
    commands: mpsc::Receiver<Command>,
    notices: mpsc::Receiver<Notice>,
    incoming: SelectAll<IncomingStreams>,
    inbound_tx: mpsc::Sender<Inbound>,
    inbound_rx: mpsc::Receiver<Inbound>,
    readers: JoinSet<()>,
    reader_peers: HashMap<tokio::task::Id, PeerId>,
    readers_by_peer: HashMap<PeerId, VecDeque<AbortHandle>>,
    lookups: JoinSet<Event>,
    writers: HashMap<PeerId, mpsc::Sender<Bytes>>,
    /// Messages to each peer that did not fit its send queue, in order, with their bytes.
    overflow: HashMap<PeerId, (VecDeque<Bytes>, usize)>,
    failures_tx: mpsc::Sender<PeerId>,
    failures_rx: mpsc::Receiver<PeerId>,
    pending: HashMap<RequestId, oneshot::Sender<Result<Bytes, FetchError>>>,
    next_id: u64,
    reports: broadcast::Sender<Misbehaved>,
}

impl EventLoop {
    async fn run(mut self) {
        loop {
            if !self.overflow.is_empty() {
                self.flush_overflow();
            }
            let deadline = self.state.next_deadline().map(Instant::from_std);
            let lookups_free = self.lookups.len() < self.config.max_concurrent_lookups;
            tokio::select! {
                biased;
                command = self.commands.recv() => match command {
                    Some(Command::Fetch { cid, peers, timeout, reply }) => {
                        self.on_fetch(cid, peers, timeout, reply);
                    }
                    Some(Command::Shutdown { reply }) => {
                        self.stop().await;
                        // Later calls on any handle see a stopped service.
                        self.commands.close();
                        self.notices.close();
                        let _ = reply.send(());
                        return;
                    }
                    None => break,
                },
                Some(notice) = self.notices.recv() => {
                    let event = match notice {
                        Notice::BlockAdded(cid) => Event::BlockAdded(cid),
                        Notice::Connected(peer) => Event::PeerConnected(peer),
                        Notice::Disconnected(peer) => {
                            self.writers.remove(&peer);
                            self.overflow.remove(&peer);
                            Event::PeerDisconnected(peer)
                        }
                    };
                    self.apply(event);
                }
                Some(done) = self.lookups.join_next() => match done {
                    Ok(event) => self.apply(event),
                    Err(e) => tracing::warn!("bitswap block lookup failed: {e}"),
                },
                Some(peer) = self.failures_rx.recv() => self.apply(Event::Unreachable(peer)),
                Some((peer, stream)) = self.incoming.next() => self.on_stream(peer, stream),
                Some(inbound) = self.inbound_rx.recv(), if lookups_free => match inbound {
                    Inbound::Message(peer, message) => {
                        self.apply(Event::Message { peer, message });
                    }
                    Inbound::Misbehaved(peer, reason) => self.report(peer, reason),
                },
                Some(done) = self.readers.join_next_with_id() => {
                    let id = match done {
                        Ok((id, ())) => id,
                        Err(e) => e.id(),
                    };
                    self.reader_ended(id);
                }
                () = sleep_until(deadline) => self.apply(Event::Tick),
                () = tokio::time::sleep(OVERFLOW_RETRY), if !self.overflow.is_empty() => {
                    self.flush_overflow();
                }
            }
        }
        self.stop().await;
    }

    async fn stop(&mut self) {
        // Writers close their streams once their queues close.
        self.writers.clear();
        self.overflow.clear();
        self.readers.shutdown().await;
        self.lookups.shutdown().await;
        for (_, reply) in self.pending.drain() {
            let _ = reply.send(Err(FetchError::Stopped));
        }
    }

    fn on_fetch(
        &mut self,
        cid: Cid,
        peers: Vec<PeerId>,
        timeout: Duration,
        reply: oneshot::Sender<Result<Bytes, FetchError>>,
    ) {
        // Requests for one block share a want, so bound the requests too.
        if self.pending.len() >= self.config.max_fetches {
            let _ = reply.send(Err(FetchError::Overloaded(self.config.max_fetches)));
            return;
        }
        let id = RequestId(self.next_id);
        self.next_id += 1;
        self.pending.insert(id, reply);
        let deadline = (Instant::now() + timeout).into_std();
        self.apply(Event::Fetch {
            id,
            cid,
            peers,
            deadline,
        });
    }

    fn apply(&mut self, event: Event) {
        let now = Instant::now().into_std();
        for action in self.state.handle(event, now) {
            match action {
                Action::Send { peer, message } => self.send(peer, &message),
                Action::Lookup { peer, wants } => {
                    let source = self.source.clone();
                    self.lookups.spawn_blocking(move || Event::Looked {
                        peer,
                        results: wants
                            .into_iter()
                            .map(|(cid, want)| match want {
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
                    });
                }
                Action::Load(cid) => {
                    let source = self.source.clone();
                    self.lookups.spawn_blocking(move || Event::Loaded {
                        cid,
                        data: source.get(&cid).map(Bytes::from),
                    });
                }
                Action::Complete { id, result } => {
                    if let Some(reply) = self.pending.remove(&id) {
                        let _ = reply.send(result);
                    }
                }
                Action::Misbehaved { peer, reason } => self.report(peer, reason),
            }
        }
    }

    fn report(&self, peer: PeerId, reason: Misbehaviour) {
        tracing::warn!(%peer, %reason, "bitswap peer misbehaved");
        let _ = self.reports.send(Misbehaved { peer, reason });
    }

    fn send(&mut self, peer: PeerId, message: &Message) {
        let frame = Bytes::from(message.encode());
        // Behind messages already waiting, to keep the order.
        if let Some((waiting, bytes)) = self.overflow.get_mut(&peer) {
            if *bytes + frame.len() > OVERFLOW_BYTES {
                tracing::warn!(%peer, "bitswap send queue full; dropping a message");
                return;
            }
            *bytes += frame.len();
            waiting.push_back(frame);
            return;
        }
        for _ in 0..2 {
            let writer = self.writers.entry(peer).or_insert_with(|| {
                let (tx, rx) = mpsc::channel(self.config.send_queue.max(1));
                tokio::spawn(write_loop(
                    peer,
                    self.control.clone(),
                    rx,
                    self.failures_tx.clone(),
                    WriterTimeouts {
                        open: self.config.open_timeout,
                        write: self.config.write_timeout,
                        idle: self.config.stream_idle_timeout,
                    },
                ));
                tx
            });
            match writer.try_send(frame.clone()) {
                Ok(()) => return,
                // Kept, and sent as the queue drains: a burst of fetches (one message each)
                // or of answers must not lose wants or blocks that nothing asks for again.
                Err(mpsc::error::TrySendError::Full(frame)) => {
                    let len = frame.len();
                    self.overflow.insert(peer, (VecDeque::from([frame]), len));
                    return;
                }
                // The writer ended (it only does when its queue closes): start a new one.
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.writers.remove(&peer);
                }
            }
        }
    }

    /// Moves what waits beyond full send queues into them, as far as they have room.
    fn flush_overflow(&mut self) {
        let writers = &self.writers;
        self.overflow.retain(|peer, (waiting, bytes)| {
            let Some(writer) = writers.get(peer) else {
                return false;
            };
            while let Some(frame) = waiting.pop_front() {
                let len = frame.len();
                match writer.try_send(frame) {
                    Ok(()) => *bytes -= len,
                    Err(mpsc::error::TrySendError::Full(frame)) => {
                        waiting.push_front(frame);
                        return true;
                    }
                    // The writer ended: what waits for it goes with it.
                    Err(mpsc::error::TrySendError::Closed(_)) => return false,
                }
            }
            false
        });
    }

    fn on_stream(&mut self, peer: PeerId, stream: Stream) {
        if self.readers.len() >= self.config.max_inbound_streams {
            tracing::debug!(%peer, "too many inbound bitswap streams; refusing one");
            return;
        }
        let per_peer = self.readers_by_peer.entry(peer).or_default();
        while per_peer.len() >= self.config.max_inbound_streams_per_peer.max(1) {
            if let Some(oldest) = per_peer.pop_front() {
                oldest.abort();
            }
        }
        let handle = self.readers.spawn(read_loop(
            peer,
            stream,
            self.inbound_tx.clone(),
            self.config.max_message_size,
        ));
        self.reader_peers.insert(handle.id(), peer);
        per_peer.push_back(handle);
    }

    fn reader_ended(&mut self, id: tokio::task::Id) {
        let Some(peer) = self.reader_peers.remove(&id) else {
            return;
        };
        if let Some(handles) = self.readers_by_peer.get_mut(&peer) {
            handles.retain(|h| h.id() != id);
            if handles.is_empty() {
                self.readers_by_peer.remove(&peer);
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Reads messages from one inbound stream until it ends or misbehaves.
async fn read_loop(peer: PeerId, mut stream: Stream, tx: mpsc::Sender<Inbound>, max: usize) {
    loop {
        let inbound = match read_message(&mut stream, max).await {
            Ok(Some(bytes)) => match Message::decode(bytes) {
                Ok(message) if message.is_empty() => continue,
                Ok(message) => Inbound::Message(peer, message),
                Err(e) => Inbound::Misbehaved(peer, Misbehaviour::Malformed(e.to_string())),
            },
            Ok(None) => return,
            Err(ReadError::TooLarge { size, .. }) => {
                Inbound::Misbehaved(peer, Misbehaviour::Oversized { size })
            }
            Err(e) => {
                tracing::debug!(%peer, "bitswap inbound stream ended: {e}");
                return;
            }
        };
        let stop = matches!(inbound, Inbound::Misbehaved(..));
        if tx.send(inbound).await.is_err() || stop {
            // Dropping the stream resets it.
            return;
        }
    }
}

/// Timeouts of one writer.
#[derive(Debug, Clone, Copy)]
struct WriterTimeouts {
    open: Duration,
    write: Duration,
    idle: Duration,
}

/// Sends queued frames to one peer, reusing one stream while messages keep coming.
///
/// Bitswap has no acknowledgements, so a message written into a stream the peer has just
/// reset is lost. Three things keep that from happening in practice: the stream is closed
/// after [`Config::stream_idle_timeout`] (before Helia's 10 s receive timeout), a reset that
/// already arrived is noticed before reusing the stream, and a failed write is retried once
/// on a new stream. A peer that resets every stream right after reading one message can
/// still lose a message that races its reset; no known implementation does that.
async fn write_loop(
    peer: PeerId,
    mut control: Control,
    mut rx: mpsc::Receiver<Bytes>,
    failures: mpsc::Sender<PeerId>,
    timeouts: WriterTimeouts,
) {
    let mut stream: Option<Stream> = None;
    loop {
        let next = match stream.as_mut() {
            Some(s) => match tokio::time::timeout(timeouts.idle, rx.recv()).await {
                Ok(next) => next,
                Err(_) => {
                    let _ = tokio::time::timeout(timeouts.write, s.close()).await;
                    stream = None;
                    continue;
                }
            },
            None => rx.recv().await,
        };
        let Some(frame) = next else {
            break;
        };
        if stream.as_mut().is_some_and(reset_by_peer) {
            stream = None;
        }
        let mut delivered = false;
        // A reused stream may have been closed by the peer: reopen once and retry.
        for _ in 0..2 {
            let s = match stream.as_mut() {
                Some(s) => s,
                None => match open(&mut control, peer, timeouts.open).await {
                    Ok(s) => stream.insert(s),
                    Err(e) => {
                        tracing::debug!(%peer, "cannot open a bitswap stream: {e}");
                        break;
                    }
                },
            };
            match tokio::time::timeout(timeouts.write, write_message(s, &frame)).await {
                Ok(Ok(())) => {
                    delivered = true;
                    break;
                }
                Ok(Err(e)) => tracing::debug!(%peer, "bitswap write failed: {e}"),
                Err(_) => tracing::debug!(%peer, "bitswap write timed out"),
            }
            stream = None;
        }
        if !delivered && failures.send(peer).await.is_err() {
            break;
        }
    }
    if let Some(mut s) = stream {
        let _ = tokio::time::timeout(timeouts.write, s.close()).await;
    }
}

/// Whether the peer reset our outbound stream (nothing is ever read from it otherwise). End of
/// stream is not a reset: Helia closes its sending side of every inbound stream at once and
/// goes on reading.
fn reset_by_peer(stream: &mut Stream) -> bool {
    let mut buf = [0u8; 64];
    matches!(stream.read(&mut buf).now_or_never(), Some(Err(_)))
}

#[derive(Debug, thiserror::Error)]
enum OpenError {
    #[error(transparent)]
    Stream(#[from] OpenStreamError),
    #[error("timed out")]
    Timeout,
}

async fn open(control: &mut Control, peer: PeerId, timeout: Duration) -> Result<Stream, OpenError> {
    let attempt = async {
        match control.open_stream(peer, PROTOCOL).await {
            Err(OpenStreamError::UnsupportedProtocol(_)) => {
                control.open_stream(peer, PROTOCOL_1_1_0).await
            }
            other => other,
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(OpenError::Timeout),
    }
}

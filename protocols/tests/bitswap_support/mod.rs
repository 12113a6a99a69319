//! Real libp2p nodes on 127.0.0.1 for the Bitswap integration tests: TCP, noise, yamux,
//! identify, ping and `libp2p_stream`, with keys derived from a seed.

#![allow(dead_code, unreachable_pub)]

use std::{collections::HashSet, future::Future, sync::Arc, time::Duration};

use anyhow::{Context as _, Result, anyhow};
use futures::StreamExt as _;
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, SwarmBuilder, identify,
    identity::Keypair,
    noise, ping,
    swarm::{NetworkBehaviour, SwarmEvent},
    tcp, yamux,
};
use mnode_protocols::bitswap::{Bitswap, Config, MemoryBlocks};
use tokio::sync::{mpsc, watch};

/// How long any single step of a test may take before it fails.
pub const STEP: Duration = Duration::from_secs(20);

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub stream: libp2p_stream::Behaviour,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
}

/// A running swarm: its identity, listen address, stream control and connected peers.
pub struct Swarm {
    pub peer: PeerId,
    pub addr: Multiaddr,
    pub control: libp2p_stream::Control,
    dials: mpsc::Sender<Multiaddr>,
    connected: watch::Receiver<HashSet<PeerId>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Swarm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Waits for `fut` at most [`STEP`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> Result<T> {
    tokio::time::timeout(STEP, fut)
        .await
        .map_err(|_| anyhow!("timed out after {STEP:?} waiting for {what}"))
}

impl Swarm {
    /// Starts a swarm whose key comes from `seed`, listening on 127.0.0.1 (port 0), and
    /// calls `on_peer(peer, connected)` when a peer's first connection opens or last closes.
    pub async fn start(seed: u8, on_peer: impl Fn(PeerId, bool) + Send + 'static) -> Result<Self> {
        let key = Keypair::ed25519_from_bytes([seed; 32])?;
        let mut swarm = SwarmBuilder::with_existing_identity(key)
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )?
            .with_behaviour(|key| Behaviour {
                stream: libp2p_stream::Behaviour::new(),
                identify: identify::Behaviour::new(identify::Config::new(
                    "/ipfs/0.1.0".into(),
                    key.public(),
                )),
                ping: ping::Behaviour::default(),
            })?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse()?)?;
        let addr = within("a listen address", async {
            loop {
                if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
                    return address;
                }
            }
        })
        .await?;
        let peer = *swarm.local_peer_id();
        let control = swarm.behaviour().stream.new_control();
        let (dials, mut dial_rx) = mpsc::channel::<Multiaddr>(8);
        let (connected_tx, connected) = watch::channel(HashSet::new());
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    Some(addr) = dial_rx.recv() => {
                        if let Err(e) = swarm.dial(addr) {
                            eprintln!("dial failed: {e}");
                        }
                    }
                    event = swarm.select_next_some() => match event {
                        SwarmEvent::ConnectionEstablished { peer_id, num_established, .. } => {
                            if num_established.get() == 1 {
                                on_peer(peer_id, true);
                            }
                            connected_tx.send_modify(|s| { s.insert(peer_id); });
                        }
                        SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                            on_peer(peer_id, false);
                            connected_tx.send_modify(|s| { s.remove(&peer_id); });
                        }
                        _ => {}
                    },
                }
            }
        });
        Ok(Self {
            peer,
            addr,
            control,
            dials,
            connected,
            task,
        })
    }

    /// Dials `addr` and waits until connected to `peer`.
    pub async fn connect(&self, peer: PeerId, addr: Multiaddr) -> Result<()> {
        self.dials.send(addr).await?;
        self.wait_connected(peer).await
    }

    /// Waits until connected to `peer`.
    pub async fn wait_connected(&self, peer: PeerId) -> Result<()> {
        let mut rx = self.connected.clone();
        within(
            &format!("a connection to {peer}"),
            rx.wait_for(|s| s.contains(&peer)),
        )
        .await?
        .context("swarm stopped")?;
        Ok(())
    }
}

/// A swarm running the Bitswap service over a [`MemoryBlocks`] source.
pub struct Node {
    pub swarm: Swarm,
    pub bitswap: Bitswap,
    pub blocks: Arc<MemoryBlocks>,
}

impl Node {
    pub async fn start(seed: u8) -> Result<Self> {
        Self::start_with(seed, Config::default()).await
    }

    pub async fn start_with(seed: u8, config: Config) -> Result<Self> {
        let (tx, mut rx) = mpsc::channel::<(PeerId, bool)>(64);
        let swarm = Swarm::start(seed, move |peer, up| {
            let _ = tx.try_send((peer, up));
        })
        .await?;
        let blocks = Arc::new(MemoryBlocks::new());
        let bitswap = Bitswap::spawn(swarm.control.clone(), blocks.clone(), config)?;
        let handle = bitswap.clone();
        tokio::spawn(async move {
            while let Some((peer, up)) = rx.recv().await {
                let _ = if up {
                    handle.peer_connected(peer)
                } else {
                    handle.peer_disconnected(peer)
                };
            }
        });
        Ok(Self {
            swarm,
            bitswap,
            blocks,
        })
    }

    pub fn peer(&self) -> PeerId {
        self.swarm.peer
    }

    pub fn addr(&self) -> Multiaddr {
        self.swarm.addr.clone()
    }
}

/// The Bitswap protocol name, for raw streams.
pub fn protocol() -> StreamProtocol {
    mnode_protocols::bitswap::PROTOCOL
}

/// Makes `n` signed example records (and what they link to), as (CID, bytes).
pub fn example_blocks(seed: u64, n: usize) -> Vec<(mnode_dag::Cid, Vec<u8>)> {
    use mnode_dag::model::social;
    let mut g = mnode_dag::example::ExampleGen::new(seed);
    for i in 0..n {
        match i % 3 {
            0 => drop(g.record::<social::Post>()),
            1 => drop(g.record::<social::Branch>()),
            _ => drop(g.record::<social::Thread>()),
        }
    }
    g.take_blocks()
}

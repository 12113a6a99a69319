//! The libp2p side of a node: one composed behaviour and the swarm that drives it.

use std::{
    task::{Context, Poll},
    time::Duration,
};

use libp2p::{
    Multiaddr, PeerId, Swarm, allow_block_list, autonat, connection_limits,
    core::{
        ConnectedPoint, Endpoint, Transport as _,
        muxing::StreamMuxerBox,
        transport::{Boxed, PortUse},
        upgrade,
    },
    dcutr, gossipsub, identify,
    identity::Keypair,
    kad::{self, store::MemoryStore},
    mdns,
    multiaddr::Protocol,
    noise, ping, quic, relay,
    swarm::{
        ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
        THandlerOutEvent, ToSwarm, behaviour::toggle::Toggle,
    },
    tcp, yamux,
};
use mnode_protocols::{blobs, gossip, sync};

use crate::config::{NetworkConfig, RelayLimits};

/// The Kademlia protocol name: mnode nodes form their own DHT, apart from the public IPFS one.
pub const KAD_PROTOCOL: libp2p::StreamProtocol = libp2p::StreamProtocol::new("/mnode/kad/1.0.0");

/// What the node announces in identify.
pub const PROTOCOL_VERSION: &str = "/mnode/1.0.0";
/// Files (keys) the DHT store holds provider records for, this node's own and its peers'
/// together. libp2p's default of 1,024 is less than one photo set: past it, announcing a file
/// fails ("the store cannot contain any more provider records"). A record takes a few hundred
/// bytes, so the cap bounds that memory to a few hundred MiB.
const MAX_PROVIDER_KEYS: usize = 1 << 20;

/// How long a peer may take to answer which files it holds.
pub(crate) const BLOBS_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connection may take to set up (dial, encryption, multiplexing).
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(8);

/// Every protocol a node speaks.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) gossipsub: gossipsub::Behaviour,
    pub(crate) kad: Kad,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    pub(crate) mdns: Toggle<mdns::tokio::Behaviour>,
    pub(crate) autonat: autonat::v2::client::Behaviour,
    pub(crate) autonat_server: autonat::v2::server::Behaviour,
    pub(crate) relay: relay::client::Behaviour,
    pub(crate) relay_server: Toggle<relay::Behaviour>,
    pub(crate) dcutr: dcutr::Behaviour,
    pub(crate) sync: sync::Behaviour,
    pub(crate) blobs: blobs::Behaviour,
    pub(crate) stream: libp2p_stream::Behaviour,
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
}

/// Why the swarm could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SwarmError {
    /// A transport or behaviour failed to start.
    #[error("cannot start the network: {0}")]
    Build(String),
}

/// Builds the swarm: TCP and QUIC, noise, yamux, a relay client, and [`Behaviour`] (with a
/// relay server when `network.relay_server` is on).
///
/// The transports count the bytes they move into `registry` (`libp2p_bandwidth_bytes`).
pub(crate) fn build(
    key: &Keypair,
    config: &NetworkConfig,
    registry: &mut prometheus_client::registry::Registry,
) -> Result<Swarm<Behaviour>, SwarmError> {
    let err = |e: &dyn std::fmt::Display| SwarmError::Build(e.to_string());
    let gossip_cfg = gossip::Config {
        max_message_bytes: config.gossip_max_message_bytes,
        heartbeat_ms: config.gossip_heartbeat_ms,
        ..gossip::Config::default()
    };
    let sync_cfg = sync::Config::default();
    let mdns_on = config.mdns;
    let relay_server = config
        .relay_server
        .then(|| relay_config(&config.relay_limits));
    let limits = connection_limits::ConnectionLimits::default()
        .with_max_established(Some(config.max_connections))
        // Room for the direct connection a hole punch makes next to the relayed ones that
        // dials through both relays, over TCP and QUIC, opened at once.
        .with_max_established_per_peer(Some(8));
    let swarm = libp2p::SwarmBuilder::with_existing_identity(key.clone())
        .with_tokio()
        .with_other_transport(direct_transport)
        .map_err(|e| err(&e))?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| err(&e))?
        .with_bandwidth_metrics(registry)
        .with_behaviour(|key, relay| {
            let peer_id = key.public().to_peer_id();
            let gossipsub = gossip::behaviour(key, &gossip_cfg)?;
            let mut kad_cfg = kad::Config::new(KAD_PROTOCOL);
            kad_cfg.set_query_timeout(Duration::from_secs(30));
            // Its periodic bootstrap warns every five minutes while there is no peer (a lone
            // node, a node with no bootstrap peers); the event loop runs it when there are.
            kad_cfg.set_periodic_bootstrap_interval(None);
            // Its republishing starts a query for every held file at once (20,000 for a node
            // of 10,000 files: ~15 s in which the event loop answers nothing); the event loop
            // announces them again every 12 h, a few at a time.
            kad_cfg.set_provider_publication_interval(None);
            let mut kad = Kad(kad::Behaviour::with_config(
                peer_id,
                MemoryStore::with_config(
                    peer_id,
                    kad::store::MemoryStoreConfig {
                        max_provided_keys: MAX_PROVIDER_KEYS,
                        ..Default::default()
                    },
                ),
                kad_cfg,
            ));
            // Serve the DHT even before AutoNAT confirms a public address: on a LAN or on
            // loopback there is none to confirm.
            kad.set_mode(Some(kad::Mode::Server));
            let identify = identify::Behaviour::new(
                identify::Config::new(PROTOCOL_VERSION.into(), key.public())
                    .with_agent_version(format!("mnode/{}", env!("CARGO_PKG_VERSION"))),
            );
            let mdns = if mdns_on {
                Some(mdns::tokio::Behaviour::new(
                    mdns::Config::default(),
                    peer_id,
                )?)
            } else {
                None
            };
            Ok(Behaviour {
                gossipsub,
                kad,
                identify,
                ping: ping::Behaviour::default(),
                mdns: mdns.into(),
                autonat: autonat::v2::client::Behaviour::default(),
                autonat_server: autonat::v2::server::Behaviour::default(),
                relay,
                relay_server: relay_server
                    .map(|c| relay::Behaviour::new(peer_id, c))
                    .into(),
                dcutr: dcutr::Behaviour::new(peer_id),
                sync: sync::behaviour(&sync_cfg),
                blobs: blobs::behaviour(BLOBS_REQUEST_TIMEOUT),
                stream: libp2p_stream::Behaviour::new(),
                limits: connection_limits::Behaviour::new(limits),
                blocked: allow_block_list::Behaviour::default(),
            })
        })
        .map_err(|e| err(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        // Shorter than AutoNAT's 10 s for a dial-back, so that an address a router silently
        // drops dials to is reported unreachable rather than the test timing out unanswered.
        .with_connection_timeout(CONNECTION_TIMEOUT)
        .build();
    Ok(swarm)
}

/// TCP (noise, yamux) and QUIC, where a dialled connection that reaches another node than the
/// one its address names fails as that address's error.
///
/// libp2p dials a peer's addresses at once and keeps the first connection made, whoever
/// answers; a wrong peer then fails the whole dial (rust-libp2p#6105). A peer's addresses
/// often name other nodes from here: a home's LAN address (`192.168.1.9:4001`), or its
/// loopback one, reaches whatever listens there in this home, perhaps this node itself. With
/// the check in the transport, the dial goes on with the peer's other addresses (its public
/// or relayed ones).
fn direct_transport(
    key: &Keypair,
) -> Result<Boxed<(PeerId, StreamMuxerBox)>, Box<dyn std::error::Error + Send + Sync>> {
    let tcp = tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
        .upgrade(upgrade::Version::V1Lazy)
        .authenticate(noise::Config::new(key)?)
        .multiplex(yamux::Config::default())
        .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)));
    let quic = quic::tokio::Transport::new(quic::Config::new(key))
        .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)));
    Ok(tcp
        .or_transport(quic)
        .map(|either, _| either.into_inner())
        .and_then(|(peer, muxer), endpoint| {
            let named = match &endpoint {
                ConnectedPoint::Dialer { address, .. } => match address.iter().last() {
                    Some(Protocol::P2p(named)) => Some((named, address.clone())),
                    _ => None,
                },
                ConnectedPoint::Listener { .. } => None,
            };
            futures::future::ready(match named {
                Some((named, address)) if named != peer => Err(WrongPeer {
                    address,
                    obtained: peer,
                }),
                _ => Ok((peer, muxer)),
            })
        })
        .boxed())
}

/// A dialled address answered with another node than the one it names.
#[derive(Debug, thiserror::Error)]
#[error(
    "another node answers at {address} (peer id {obtained}): the address is stale or another node's"
)]
struct WrongPeer {
    address: Multiaddr,
    obtained: PeerId,
}

/// The circuit relay's limits from `network.relay_limits`.
fn relay_config(limits: &RelayLimits) -> relay::Config {
    relay::Config {
        max_reservations: limits.max_reservations,
        max_reservations_per_peer: limits.max_reservations_per_peer,
        reservation_duration: Duration::from_secs(limits.reservation_secs),
        max_circuits: limits.max_circuits,
        max_circuits_per_peer: limits.max_circuits_per_peer,
        // libp2p refuses durations past u32::MAX seconds.
        max_circuit_duration: Duration::from_secs(limits.max_circuit_secs.min(u32::MAX.into())),
        max_circuit_bytes: limits.max_circuit_bytes,
        ..relay::Config::default()
    }
}

/// Kademlia, except that a new listen address does not start a DHT bootstrap while the
/// routing table is empty.
///
/// Kademlia bootstraps when the node gets a listen address while no peer is connected (the
/// network may just have come up). With an empty routing table, as at every start without
/// bootstrap peers, that can only fail, and it logs a warning. Nothing else in Kademlia uses
/// that event; the event loop bootstraps periodically once the table has peers.
pub(crate) struct Kad(kad::Behaviour<MemoryStore>);

impl std::ops::Deref for Kad {
    type Target = kad::Behaviour<MemoryStore>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Kad {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl NetworkBehaviour for Kad {
    type ConnectionHandler = <kad::Behaviour<MemoryStore> as NetworkBehaviour>::ConnectionHandler;
    type ToSwarm = kad::Event;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.0
            .handle_pending_inbound_connection(connection_id, local_addr, remote_addr)
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.0
            .handle_established_inbound_connection(connection_id, peer, local_addr, remote_addr)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        maybe_peer: Option<PeerId>,
        addresses: &[Multiaddr],
        effective_role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        self.0.handle_pending_outbound_connection(
            connection_id,
            maybe_peer,
            addresses,
            effective_role,
        )
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        role_override: Endpoint,
        port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.0.handle_established_outbound_connection(
            connection_id,
            peer,
            addr,
            role_override,
            port_use,
        )
    }

    fn on_swarm_event(&mut self, event: FromSwarm<'_>) {
        if matches!(event, FromSwarm::NewListenAddr(_))
            && self.0.kbuckets().all(|b| b.num_entries() == 0)
        {
            return;
        }
        self.0.on_swarm_event(event);
    }

    fn on_connection_handler_event(
        &mut self,
        peer_id: PeerId,
        connection_id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        self.0
            .on_connection_handler_event(peer_id, connection_id, event);
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        self.0.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU8;

    use futures::StreamExt as _;
    use libp2p::swarm::{SwarmEvent, dial_opts::DialOpts};

    use super::*;

    fn swarm() -> Swarm<Behaviour> {
        let mut registry = prometheus_client::registry::Registry::default();
        build(
            &Keypair::generate_ed25519(),
            &NetworkConfig::default(),
            &mut registry,
        )
        .unwrap()
    }

    /// A swarm listening on loopback TCP, driven in the background: its peer id and address.
    async fn running() -> (PeerId, Multiaddr) {
        let mut s = swarm();
        s.listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
            .unwrap();
        let addr = loop {
            if let SwarmEvent::NewListenAddr { address, .. } = s.select_next_some().await {
                break address;
            }
        };
        let id = *s.local_peer_id();
        tokio::spawn(async move {
            loop {
                s.select_next_some().await;
            }
        });
        (id, addr)
    }

    /// Dials `peer` at `addrs`, one after the other: who answered, or the error.
    async fn dial(peer: PeerId, addrs: Vec<Multiaddr>) -> Result<PeerId, String> {
        let mut a = swarm();
        a.dial(
            DialOpts::peer_id(peer)
                .addresses(addrs)
                .override_dial_concurrency_factor(NonZeroU8::MIN)
                .build(),
        )
        .unwrap();
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                match a.select_next_some().await {
                    SwarmEvent::ConnectionEstablished { peer_id, .. } => return Ok(peer_id),
                    SwarmEvent::OutgoingConnectionError { error, .. } => {
                        return Err(error.to_string());
                    }
                    _ => {}
                }
            }
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn a_dial_goes_on_past_an_address_where_another_node_answers() {
        let (b, b_addr) = running().await;
        let (_, c_addr) = running().await;
        // C's address first (say B's stale LAN address, where C listens now): B is still
        // reached at its own.
        assert_eq!(dial(b, vec![c_addr.clone(), b_addr]).await, Ok(b));
        // With only C's address, the dial fails and says who answered.
        let e = dial(b, vec![c_addr]).await.unwrap_err();
        assert!(e.contains("another node answers at"), "{e}");
    }
}

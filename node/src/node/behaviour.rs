//! The libp2p side of a node: one composed behaviour and the swarm that drives it.

use std::time::Duration;

use libp2p::{
    Swarm, allow_block_list, autonat, connection_limits, dcutr, gossipsub, identify,
    identity::Keypair,
    kad::{self, store::MemoryStore},
    mdns, noise, ping, relay,
    swarm::{NetworkBehaviour, behaviour::toggle::Toggle},
    tcp, yamux,
};
use mnode_protocols::{blobs, gossip, sync};

use crate::config::NetworkConfig;

/// The Kademlia protocol name: mnode nodes form their own DHT, apart from the public IPFS one.
pub const KAD_PROTOCOL: libp2p::StreamProtocol = libp2p::StreamProtocol::new("/mnode/kad/1.0.0");

/// What the node announces in identify.
pub const PROTOCOL_VERSION: &str = "/mnode/1.0.0";

/// Every protocol a node speaks.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) gossipsub: gossipsub::Behaviour,
    pub(crate) kad: kad::Behaviour<MemoryStore>,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    pub(crate) mdns: Toggle<mdns::tokio::Behaviour>,
    pub(crate) autonat: autonat::Behaviour,
    pub(crate) relay: relay::client::Behaviour,
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

/// Builds the swarm: TCP and QUIC, noise, yamux, a relay client, and [`Behaviour`].
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
    let limits = connection_limits::ConnectionLimits::default()
        .with_max_established(Some(config.max_connections))
        .with_max_established_per_peer(Some(4));
    let swarm = libp2p::SwarmBuilder::with_existing_identity(key.clone())
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| err(&e))?
        .with_quic()
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| err(&e))?
        .with_bandwidth_metrics(registry)
        .with_behaviour(|key, relay| {
            let peer_id = key.public().to_peer_id();
            let gossipsub = gossip::behaviour(key, &gossip_cfg)?;
            let mut kad_cfg = kad::Config::new(KAD_PROTOCOL);
            kad_cfg.set_query_timeout(Duration::from_secs(30));
            let mut kad = kad::Behaviour::with_config(peer_id, MemoryStore::new(peer_id), kad_cfg);
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
                autonat: autonat::Behaviour::new(peer_id, autonat::Config::default()),
                relay,
                dcutr: dcutr::Behaviour::new(peer_id),
                sync: sync::behaviour(&sync_cfg),
                blobs: blobs::behaviour(Duration::from_secs(10)),
                stream: libp2p_stream::Behaviour::new(),
                limits: connection_limits::Behaviour::new(limits),
                blocked: allow_block_list::Behaviour::default(),
            })
        })
        .map_err(|e| err(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build();
    Ok(swarm)
}

//! Reachability behind routers: what AutoNAT found, which relays hold a slot for this node,
//! and how its hole punches went.

use std::collections::{BTreeSet, HashSet};

use libp2p::{Multiaddr, PeerId, autonat, dcutr, multiaddr::Protocol, relay};
use serde::Serialize;

/// Whether peers outside the node's network can dial it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NatStatus {
    /// An address of the node was dialled back from outside (AutoNAT), or the config names one.
    Public,
    /// AutoNAT found none of its addresses reachable: the node is behind a router, and peers
    /// reach it through its relays.
    Private,
    /// Not tested yet (no peer that runs AutoNAT was asked).
    Unknown,
}

/// What the node knows of its own reachability; `mnode id`, `mnode peers` and the Node page
/// show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NatInfo {
    /// Whether peers can dial the node directly.
    pub status: NatStatus,
    /// The addresses peers are told to dial: confirmed ones, and relayed ones
    /// (`…/p2p-circuit/p2p/<this node>`).
    pub external_addrs: Vec<String>,
    /// The relays holding a reservation for this node (peer ids).
    pub relays: Vec<String>,
    /// Relayed connections a hole punch made direct, since the start.
    pub hole_punches: u64,
    /// Hole punches that failed (the connection stayed relayed), since the start.
    pub hole_punches_failed: u64,
}

/// Whether `addr` goes through a relay.
pub(crate) fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

/// The reachability state the event loop keeps.
#[derive(Debug, Default)]
pub(crate) struct Reach {
    /// Addresses AutoNAT could not be dialled back on.
    unreachable: HashSet<Multiaddr>,
    /// Relays holding a reservation for this node.
    reserved: BTreeSet<PeerId>,
    punched: u64,
    punch_failed: u64,
}

impl Reach {
    /// What the node reports, given its confirmed external addresses.
    pub(crate) fn info<'a>(
        &self,
        external: impl Iterator<Item = &'a Multiaddr>,
        me: PeerId,
    ) -> NatInfo {
        let mut direct = false;
        let external_addrs = external
            .map(|a| {
                direct |= !is_relayed(a);
                let mut a = a.clone();
                if !matches!(a.iter().last(), Some(Protocol::P2p(_))) {
                    a.push(Protocol::P2p(me));
                }
                a.to_string()
            })
            .collect();
        let status = if direct {
            NatStatus::Public
        } else if !self.unreachable.is_empty() {
            NatStatus::Private
        } else {
            NatStatus::Unknown
        };
        NatInfo {
            status,
            external_addrs,
            relays: self.reserved.iter().map(ToString::to_string).collect(),
            hole_punches: self.punched,
            hole_punches_failed: self.punch_failed,
        }
    }

    /// An AutoNAT test's outcome. A success arrives as a confirmed external address as well.
    pub(crate) fn on_autonat(&mut self, ev: autonat::v2::client::Event) {
        match ev.result {
            Ok(()) => {
                tracing::info!(addr = %ev.tested_addr, server = %ev.server, "reachable from outside");
                self.unreachable.remove(&ev.tested_addr);
            }
            // A relayed address (what a peer saw of a connection through a relay) says
            // nothing about this node's router.
            Err(_) if is_relayed(&ev.tested_addr) => {}
            Err(e) => {
                tracing::info!(
                    addr = %ev.tested_addr,
                    server = %ev.server,
                    "not reachable from outside (behind a router?): {e}"
                );
                self.unreachable.insert(ev.tested_addr);
            }
        }
    }

    /// A relay reservation's news.
    pub(crate) fn on_relay_client(&mut self, ev: relay::client::Event) {
        match ev {
            relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                renewal,
                ..
            } => {
                if !renewal {
                    tracing::info!(relay = %relay_peer_id, "the relay holds a slot for this node");
                }
                self.reserved.insert(relay_peer_id);
            }
            relay::client::Event::OutboundCircuitEstablished { relay_peer_id, .. } => {
                tracing::debug!(relay = %relay_peer_id, "connected to a peer through a relay");
            }
            relay::client::Event::InboundCircuitEstablished { src_peer_id, .. } => {
                tracing::debug!(peer = %src_peer_id, "a peer connected through a relay");
            }
        }
    }

    /// The connection to a relay closed: its reservation went with it.
    pub(crate) fn relay_gone(&mut self, peer: &PeerId) {
        if self.reserved.remove(peer) {
            tracing::info!(relay = %peer, "lost the slot on a relay; it is asked again");
        }
    }

    /// A hole punch's outcome.
    pub(crate) fn on_dcutr(&mut self, ev: dcutr::Event) {
        match ev.result {
            Ok(_) => {
                self.punched += 1;
                tracing::info!(peer = %ev.remote_peer_id, "hole punched: the connection is direct");
            }
            Err(e) => {
                self.punch_failed += 1;
                tracing::info!(
                    peer = %ev.remote_peer_id,
                    "hole punch failed, the connection stays relayed: {e}"
                );
            }
        }
    }
}

/// Logs what the relay this node runs does.
pub(crate) fn log_relay_server(ev: &relay::Event) {
    match ev {
        relay::Event::ReservationReqAccepted { src_peer_id, .. } => {
            tracing::debug!(peer = %src_peer_id, "relay: slot reserved");
        }
        relay::Event::ReservationReqDenied {
            src_peer_id,
            status,
        } => {
            tracing::info!(peer = %src_peer_id, "relay: reservation refused ({status:?})");
        }
        relay::Event::CircuitReqDenied {
            src_peer_id,
            dst_peer_id,
            status,
        } => {
            tracing::info!(
                from = %src_peer_id,
                to = %dst_peer_id,
                "relay: circuit refused ({status:?})"
            );
        }
        relay::Event::CircuitReqAccepted {
            src_peer_id,
            dst_peer_id,
        } => {
            tracing::debug!(from = %src_peer_id, to = %dst_peer_id, "relay: circuit open");
        }
        relay::Event::CircuitClosed {
            src_peer_id,
            dst_peer_id,
            error,
        } => {
            tracing::debug!(
                from = %src_peer_id,
                to = %dst_peer_id,
                "relay: circuit closed{}",
                error.as_ref().map(|e| format!(" ({e})")).unwrap_or_default()
            );
        }
        _ => {}
    }
}

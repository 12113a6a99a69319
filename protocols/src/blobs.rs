//! Blob-address exchange: how a peer learns where to reach another peer's iroh endpoint, and
//! which of a list of files it holds.
//!
//! Files move over iroh-blobs, not libp2p. A node's iroh endpoint id is its libp2p ed25519 key,
//! so a provider found on libp2p (Kademlia, a connected peer) is also an iroh endpoint; this
//! protocol only adds the socket addresses that endpoint listens on and a cheap "do you have
//! these?" question.

use std::{net::SocketAddr, time::Duration};

use libp2p::{
    StreamProtocol,
    request_response::{self, ProtocolSupport, cbor},
};
use mnode_dag::Cid;
use serde::{Deserialize, Serialize};

/// The protocol name.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/mnode/blobs/1");

/// Most CIDs asked about in one [`Request::Has`].
pub const MAX_HAS: usize = 1024;

/// A question about files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Where is your iroh endpoint?
    Addr,
    /// Which of these files do you hold completely? (The answer includes the endpoint's
    /// addresses, so one round trip finds a provider and how to reach it.)
    Has(Vec<Cid>),
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The socket addresses the iroh endpoint listens on.
    Addr(Vec<SocketAddr>),
    /// One flag per asked CID, in order, and the endpoint's socket addresses.
    Has {
        /// Whether each CID is held.
        have: Vec<bool>,
        /// Where the iroh endpoint listens.
        addrs: Vec<SocketAddr>,
        /// The iroh relay (URL) the endpoint is reached through when its addresses cannot be
        /// dialled; absent from nodes without one, and from nodes before relays.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        relay: Option<String>,
    },
    /// The request was refused (too many CIDs, …).
    Error(String),
}

/// The request-response behaviour for this protocol.
pub type Behaviour = cbor::Behaviour<Request, Response>;

/// Builds the behaviour.
pub fn behaviour(timeout: Duration) -> Behaviour {
    cbor::Behaviour::new(
        [(PROTOCOL, ProtocolSupport::Full)],
        request_response::Config::default().with_request_timeout(timeout),
    )
}

/// The socket addresses worth telling a peer, most useful first: unspecified binds are
/// replaced by loopback (a peer on the same machine) since the node cannot know its LAN
/// address without asking the OS for interfaces.
pub fn advertised(bound: &[SocketAddr]) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = bound
        .iter()
        .map(|a| {
            if a.ip().is_unspecified() {
                let ip = if a.is_ipv4() {
                    std::net::Ipv4Addr::LOCALHOST.into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                };
                SocketAddr::new(ip, a.port())
            } else {
                *a
            }
        })
        .collect();
    out.sort_by_key(|a| (!a.ip().is_loopback(), a.is_ipv6()));
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_addresses_become_loopback() {
        let bound: Vec<SocketAddr> = vec![
            "0.0.0.0:4100".parse().expect("addr"),
            "[::]:4101".parse().expect("addr"),
            "192.168.1.5:4102".parse().expect("addr"),
        ];
        let out = advertised(&bound);
        assert_eq!(out[0], "127.0.0.1:4100".parse().expect("addr"));
        assert!(out.contains(&"[::1]:4101".parse().expect("addr")));
        assert!(out.contains(&"192.168.1.5:4102".parse().expect("addr")));
    }
}

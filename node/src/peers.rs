//! Peers the node reached, remembered across restarts so that it dials them again at start.
//!
//! The `peers` column family maps a peer id (its bytes) to a [`KnownPeer`]: the addresses that
//! reached it (the address dialled, then the listen addresses it announced) and when it was
//! last connected. The running node keeps the same list in memory and writes each change
//! through; it holds at most [`MAX_REMEMBERED`] peers, forgetting the least recently seen.

use libp2p::{Multiaddr, PeerId, multiaddr::Protocol};
use rocksdb::{IteratorMode, WriteBatch};
use serde::{Deserialize, Serialize};

use crate::store::{Store, StoreError};

pub(crate) const PEERS: &str = "peers";

/// Peers remembered at most; the least recently seen go first.
pub const MAX_REMEMBERED: usize = 1000;
/// Addresses kept for one peer at most, the newest first.
pub const MAX_ADDRS: usize = 8;

/// A peer the node reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownPeer {
    /// Its peer id.
    pub peer_id: PeerId,
    /// Addresses to dial it on, the most recently confirmed first, without `/p2p/`.
    pub addrs: Vec<Multiaddr>,
    /// When it was last connected (ms since the epoch).
    pub last_seen: u64,
}

impl KnownPeer {
    /// Notes that the peer was connected at `now`, reachable on `addrs` (put first; the
    /// addresses known before follow, up to [`MAX_ADDRS`]).
    pub fn seen(&mut self, addrs: impl IntoIterator<Item = Multiaddr>, now: u64) {
        let mut merged: Vec<Multiaddr> = Vec::with_capacity(MAX_ADDRS);
        for a in addrs
            .into_iter()
            .filter_map(dialable)
            .chain(self.addrs.drain(..))
        {
            if merged.len() < MAX_ADDRS && !merged.contains(&a) {
                merged.push(a);
            }
        }
        self.addrs = merged;
        self.last_seen = self.last_seen.max(now);
    }
}

/// `addr` without a trailing `/p2p/…`, if it is a direct IP address (TCP, or QUIC over UDP)
/// with a port: what a redial can use. Relayed and unspecified addresses are not.
pub fn dialable(addr: Multiaddr) -> Option<Multiaddr> {
    let mut addr = addr;
    if matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
        addr.pop();
    }
    let mut parts = addr.iter();
    let ip_ok = match parts.next() {
        Some(Protocol::Ip4(ip)) => !ip.is_unspecified(),
        Some(Protocol::Ip6(ip)) => !ip.is_unspecified(),
        _ => false,
    };
    let port_ok = match parts.next() {
        Some(Protocol::Tcp(p)) => p != 0 && parts.next().is_none(),
        Some(Protocol::Udp(p)) => {
            p != 0 && matches!(parts.next(), Some(Protocol::QuicV1)) && parts.next().is_none()
        }
        _ => false,
    };
    (ip_ok && port_ok).then_some(addr)
}

/// The remembered peers in a store.
#[derive(Debug, Clone, Copy)]
pub struct PeerMemory<'a> {
    store: &'a Store,
}

/// What is stored under a peer id.
#[derive(Serialize, Deserialize)]
struct Stored {
    addrs: Vec<String>,
    last_seen: u64,
}

impl<'a> PeerMemory<'a> {
    /// The peers remembered in `store`.
    pub fn new(store: &'a Store) -> Self {
        Self { store }
    }

    /// Every remembered peer, the most recently seen first. An entry that does not decode is
    /// skipped (it is rewritten when the peer is next seen).
    pub fn list(&self) -> Result<Vec<KnownPeer>, StoreError> {
        let mut out = Vec::new();
        for entry in self
            .store
            .db()
            .iterator_cf(self.store.cf(PEERS)?, IteratorMode::Start)
        {
            let (k, v) = entry?;
            let (Ok(peer_id), Ok(s)) = (
                PeerId::from_bytes(&k),
                mnode_dag::cbor::decode::<Stored>(&v),
            ) else {
                tracing::debug!("skipping a damaged remembered peer");
                continue;
            };
            out.push(KnownPeer {
                peer_id,
                addrs: s.addrs.iter().filter_map(|a| a.parse().ok()).collect(),
                last_seen: s.last_seen,
            });
        }
        out.sort_by_key(|p| std::cmp::Reverse(p.last_seen));
        Ok(out)
    }

    /// Stores `peer` (replacing what was remembered of it).
    pub fn put(&self, peer: &KnownPeer) -> Result<(), StoreError> {
        self.store.db().put_cf(
            self.store.cf(PEERS)?,
            peer.peer_id.to_bytes(),
            encode(peer)?,
        )?;
        Ok(())
    }

    /// Makes `peers` all that is remembered, in one write.
    pub fn replace_all(&self, peers: &[KnownPeer]) -> Result<(), StoreError> {
        let cf = self.store.cf(PEERS)?;
        let mut batch = WriteBatch::default();
        for entry in self.store.db().iterator_cf(cf, IteratorMode::Start) {
            let (k, _) = entry?;
            if !peers.iter().any(|p| p.peer_id.to_bytes() == *k) {
                batch.delete_cf(cf, k);
            }
        }
        for p in peers {
            batch.put_cf(cf, p.peer_id.to_bytes(), encode(p)?);
        }
        self.store.db().write(batch)?;
        Ok(())
    }

    /// Forgets `peer`.
    pub fn forget(&self, peer: &PeerId) -> Result<(), StoreError> {
        self.store
            .db()
            .delete_cf(self.store.cf(PEERS)?, peer.to_bytes())?;
        Ok(())
    }
}

fn encode(peer: &KnownPeer) -> Result<Vec<u8>, StoreError> {
    mnode_dag::cbor::encode(&Stored {
        addrs: peer.addrs.iter().map(ToString::to_string).collect(),
        last_seen: peer.last_seen,
    })
    .map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ma(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_direct_addresses_with_ports_are_kept() {
        let id = PeerId::random();
        assert_eq!(
            dialable(ma(&format!("/ip4/127.0.0.1/tcp/4001/p2p/{id}"))),
            Some(ma("/ip4/127.0.0.1/tcp/4001"))
        );
        assert!(dialable(ma("/ip6/::1/udp/4001/quic-v1")).is_some());
        assert!(dialable(ma("/ip4/0.0.0.0/tcp/4001")).is_none());
        assert!(dialable(ma("/ip4/127.0.0.1/tcp/0")).is_none());
        assert!(dialable(ma("/ip4/127.0.0.1/udp/4001")).is_none());
        assert!(dialable(ma(&format!("/ip4/1.2.3.4/tcp/1/p2p/{id}/p2p-circuit"))).is_none());
        assert!(dialable(ma("/dns4/example.org/tcp/4001")).is_none());
    }

    #[test]
    fn newest_addresses_come_first_and_are_bounded() {
        let mut p = KnownPeer {
            peer_id: PeerId::random(),
            addrs: vec![ma("/ip4/10.0.0.1/tcp/1"), ma("/ip4/10.0.0.2/tcp/2")],
            last_seen: 5,
        };
        p.seen([ma("/ip4/10.0.0.2/tcp/2"), ma("/ip4/10.0.0.3/tcp/3")], 9);
        assert_eq!(
            p.addrs,
            vec![
                ma("/ip4/10.0.0.2/tcp/2"),
                ma("/ip4/10.0.0.3/tcp/3"),
                ma("/ip4/10.0.0.1/tcp/1")
            ]
        );
        assert_eq!(p.last_seen, 9);
        p.seen((0..20).map(|i| ma(&format!("/ip4/10.1.0.{i}/tcp/7"))), 3);
        assert_eq!(p.addrs.len(), MAX_ADDRS);
        assert_eq!(p.addrs[0], ma("/ip4/10.1.0.0/tcp/7"));
        assert_eq!(p.last_seen, 9, "an older sighting does not move it back");
    }

    #[test]
    fn peers_survive_reopening_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (PeerId::random(), PeerId::random());
        {
            let store = Store::open(dir.path(), 8).unwrap();
            let mem = PeerMemory::new(&store);
            for (peer_id, last_seen) in [(a, 1), (b, 2)] {
                mem.put(&KnownPeer {
                    peer_id,
                    addrs: vec![ma("/ip4/127.0.0.1/tcp/4001")],
                    last_seen,
                })
                .unwrap();
            }
            mem.forget(&PeerId::random()).unwrap();
        }
        let store = Store::open(dir.path(), 8).unwrap();
        let mem = PeerMemory::new(&store);
        let list = mem.list().unwrap();
        assert_eq!(
            list.iter().map(|p| p.peer_id).collect::<Vec<_>>(),
            vec![b, a]
        );
        assert_eq!(list[0].addrs, vec![ma("/ip4/127.0.0.1/tcp/4001")]);
        mem.forget(&b).unwrap();
        assert_eq!(mem.list().unwrap().len(), 1);
        let c = KnownPeer {
            peer_id: PeerId::random(),
            addrs: vec![ma("/ip4/127.0.0.1/tcp/4002")],
            last_seen: 3,
        };
        mem.replace_all(std::slice::from_ref(&c)).unwrap();
        assert_eq!(mem.list().unwrap(), vec![c]);
    }
}

//! A misbehaving peer: plain gossipsub with a key of its own, subscribed to the honest nodes'
//! topics, flooding them with records that fail validation (forged signatures, bytes that are
//! not CBOR) and messages over the size limit.

use std::time::Duration;

use futures::StreamExt as _;
use libp2p::{
    Multiaddr, PeerId, SwarmBuilder, gossipsub, identity, noise, swarm::SwarmEvent, tcp, yamux,
};
use mnode_dag::Record;
use mnode_protocols::{GossipTopic, gossip};
use tokio::sync::oneshot;

/// What the hostile peer did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct HostileStats {
    /// Messages handed to gossipsub for sending.
    pub sent: u64,
    /// Publish attempts gossipsub refused (no peer left to send to, …).
    pub refused: u64,
    /// Connections that closed.
    pub disconnects: u64,
}

/// A running hostile peer; [`HostilePeer::stop`] ends it.
#[derive(Debug)]
pub struct HostilePeer {
    peer_id: PeerId,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<HostileStats>,
}

impl HostilePeer {
    /// Dials `targets`, subscribes to `topics` and, from when a target subscribes back,
    /// publishes `per_sec` invalid messages a second, cycling through forged copies of `genuine`
    /// (a signed record whose text it alters), garbage bytes and oversized messages.
    pub fn spawn(
        topics: &[GossipTopic],
        targets: Vec<Multiaddr>,
        genuine: &Record,
        per_sec: u64,
    ) -> anyhow::Result<Self> {
        let key = identity::Keypair::generate_ed25519();
        // It sends up to 4 MiB; honest nodes accept 2 MiB at most.
        let cfg = gossip::Config {
            max_message_bytes: 4 << 20,
            heartbeat_ms: 100,
            ..gossip::Config::default()
        };
        let gs = gossip::behaviour(&key, &cfg).map_err(anyhow::Error::msg)?;
        let mut swarm = SwarmBuilder::with_existing_identity(key)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )?
            .with_behaviour(|_| gs)?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        let peer_id = *swarm.local_peer_id();
        let idents: Vec<_> = topics.iter().map(gossip::ident).collect();
        for t in &idents {
            swarm.behaviour_mut().subscribe(t)?;
        }
        for a in targets {
            swarm.dial(a)?;
        }
        let base = genuine.bytes().to_vec();
        let (stop, mut stopped) = oneshot::channel();
        let period = Duration::from_micros(1_000_000 / per_sec.max(1));
        let task = tokio::spawn(async move {
            let mut stats = HostileStats::default();
            let mut tick = tokio::time::interval(period);
            let mut flooding = false;
            let mut k: u64 = 0;
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    ev = swarm.select_next_some() => match ev {
                        SwarmEvent::Behaviour(gossipsub::Event::Subscribed { .. }) => flooding = true,
                        SwarmEvent::ConnectionClosed { .. } => stats.disconnects += 1,
                        _ => {}
                    },
                    _ = tick.tick(), if flooding => {
                        k += 1;
                        let payload = invalid(&base, k);
                        let t = idents[(k as usize) % idents.len()].clone();
                        match swarm.behaviour_mut().publish(t, payload) {
                            Ok(_) => stats.sent += 1,
                            Err(_) => stats.refused += 1,
                        }
                    }
                }
            }
            stats
        });
        Ok(Self {
            peer_id,
            stop: Some(stop),
            task,
        })
    }

    /// Its peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Stops it; returns what it did.
    pub async fn stop(mut self) -> anyhow::Result<HostileStats> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        Ok((&mut self.task).await?)
    }
}

/// Messages sent before the first oversized one (about a second of flooding). A message over
/// the limit ends the inbound stream it came on, and what the receiver had queued behind it
/// with it, and after a few such ends the receiver stops reading the sender at all; sent too
/// early (a slow receiver still validating the first records) they would spare the attacker
/// the score its invalid records earn. A loaded debug run with 64 here saw a victim reject
/// only two records and never cut the attacker off.
const OVERSIZED_AFTER: u64 = 1024;

/// The `k`th invalid message: a forged record (one byte of the signed body changed), bytes
/// that are not CBOR, or (one in 16, after the first [`OVERSIZED_AFTER`]) a message over
/// honest nodes' size limit. Each differs, so that none is dropped as a duplicate before
/// validation.
fn invalid(genuine: &[u8], k: u64) -> Vec<u8> {
    let tag = k.to_le_bytes();
    match k % 16 {
        0 if k >= OVERSIZED_AFTER => {
            let mut big = vec![0xa5; 3 << 20];
            big[..8].copy_from_slice(&tag);
            big
        }
        r if r % 2 == 1 => {
            let mut forged = genuine.to_vec();
            // Somewhere in the middle: the body, covered by the signature.
            let i = forged.len() / 2;
            forged[i] ^= 0x01 | (k as u8 & 0x7e);
            let msg = gossip::Message {
                blocks: vec![serde_bytes::ByteBuf::from(tag.to_vec())],
                record: serde_bytes::ByteBuf::from(forged),
            };
            msg.to_bytes()
        }
        _ => [&b"\xa1\x00not cbor "[..], &tag].concat(),
    }
}

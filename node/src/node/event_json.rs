//! [`NodeEvent`] as JSON: `{"event": "stored", "cid": "bafy…", …}`, with peer ids, CIDs and
//! topics as their text forms. The API streams node events this way and the testnet reads
//! them back from daemon processes.

use libp2p::PeerId;
use mnode_dag::Cid;
use mnode_protocols::GossipTopic;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{NodeEvent, Via};

/// The serde form: one struct variant per event, tagged by `event`.
#[derive(Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Wire {
    PeerConnected {
        #[serde(with = "text")]
        peer: PeerId,
    },
    PeerDisconnected {
        #[serde(with = "text")]
        peer: PeerId,
    },
    PeerSubscribed {
        #[serde(with = "text")]
        peer: PeerId,
        topic: String,
    },
    Stored {
        #[serde(with = "text")]
        cid: Cid,
        #[serde(with = "text")]
        id: Cid,
        kind: String,
        #[serde(with = "text")]
        from: PeerId,
        via: Via,
    },
    Published {
        #[serde(with = "text")]
        cid: Cid,
        #[serde(with = "text")]
        id: Cid,
    },
    Rejected {
        #[serde(with = "text")]
        from: PeerId,
        reason: String,
    },
    PeerBanned {
        #[serde(with = "text")]
        peer: PeerId,
        score: f64,
    },
    Synced {
        #[serde(with = "text")]
        topic: GossipTopic,
        #[serde(with = "text")]
        peer: PeerId,
        stored: usize,
        bytes: u64,
        reconcile_bytes: u64,
        rounds: u32,
    },
}

impl From<&NodeEvent> for Wire {
    fn from(ev: &NodeEvent) -> Self {
        match ev.clone() {
            NodeEvent::PeerConnected(peer) => Wire::PeerConnected { peer },
            NodeEvent::PeerDisconnected(peer) => Wire::PeerDisconnected { peer },
            NodeEvent::PeerSubscribed { peer, topic } => Wire::PeerSubscribed { peer, topic },
            NodeEvent::Stored {
                cid,
                id,
                kind,
                from,
                via,
            } => Wire::Stored {
                cid,
                id,
                kind,
                from,
                via,
            },
            NodeEvent::Published { cid, id } => Wire::Published { cid, id },
            NodeEvent::Rejected { from, reason } => Wire::Rejected { from, reason },
            NodeEvent::PeerBanned { peer, score } => Wire::PeerBanned { peer, score },
            NodeEvent::Synced {
                topic,
                peer,
                stored,
                bytes,
                reconcile_bytes,
                rounds,
            } => Wire::Synced {
                topic,
                peer,
                stored,
                bytes,
                reconcile_bytes,
                rounds,
            },
        }
    }
}

impl From<Wire> for NodeEvent {
    fn from(w: Wire) -> Self {
        match w {
            Wire::PeerConnected { peer } => NodeEvent::PeerConnected(peer),
            Wire::PeerDisconnected { peer } => NodeEvent::PeerDisconnected(peer),
            Wire::PeerSubscribed { peer, topic } => NodeEvent::PeerSubscribed { peer, topic },
            Wire::Stored {
                cid,
                id,
                kind,
                from,
                via,
            } => NodeEvent::Stored {
                cid,
                id,
                kind,
                from,
                via,
            },
            Wire::Published { cid, id } => NodeEvent::Published { cid, id },
            Wire::Rejected { from, reason } => NodeEvent::Rejected { from, reason },
            Wire::PeerBanned { peer, score } => NodeEvent::PeerBanned { peer, score },
            Wire::Synced {
                topic,
                peer,
                stored,
                bytes,
                reconcile_bytes,
                rounds,
            } => NodeEvent::Synced {
                topic,
                peer,
                stored,
                bytes,
                reconcile_bytes,
                rounds,
            },
        }
    }
}

impl Serialize for NodeEvent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Wire::from(self).serialize(s)
    }
}

impl<'de> Deserialize<'de> for NodeEvent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Wire::deserialize(d).map(NodeEvent::from)
    }
}

/// A value as its `Display` text, read back with `FromStr`.
mod text {
    use std::{fmt::Display, str::FromStr};

    use serde::{Deserialize as _, Deserializer, Serializer, de::Error as _};

    pub(super) fn serialize<T: Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub(super) fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        text.parse().map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_round_trips_through_json() {
        let peer = PeerId::random();
        let cid = mnode_dag::cids::record_cid(b"x");
        let topic: GossipTopic = format!("/mnode/1/branch/{cid}").parse().expect("topic");
        let events = [
            NodeEvent::PeerConnected(peer),
            NodeEvent::PeerDisconnected(peer),
            NodeEvent::PeerSubscribed {
                peer,
                topic: topic.to_string(),
            },
            NodeEvent::Stored {
                cid,
                id: cid,
                kind: "social.post".into(),
                from: peer,
                via: Via::Sync,
            },
            NodeEvent::Published { cid, id: cid },
            NodeEvent::Rejected {
                from: peer,
                reason: "bad signature".into(),
            },
            NodeEvent::PeerBanned {
                peer,
                score: -130.5,
            },
            NodeEvent::Synced {
                topic,
                peer,
                stored: 3,
                bytes: 900,
                reconcile_bytes: 120,
                rounds: 2,
            },
        ];
        for ev in events {
            let text = serde_json::to_string(&ev).expect("serialize");
            let back: NodeEvent = serde_json::from_str(&text).expect("deserialize");
            assert_eq!(back, ev, "{text}");
        }
        let stored = serde_json::to_value(NodeEvent::Stored {
            cid,
            id: cid,
            kind: "social.post".into(),
            from: peer,
            via: Via::Gossip,
        })
        .expect("serialize");
        assert_eq!(stored["event"], "stored");
        assert_eq!(stored["cid"], cid.to_string());
        assert_eq!(stored["from"], peer.to_string());
        assert_eq!(stored["via"], "gossip");
    }

    #[test]
    fn bad_event_json_is_an_error() {
        for bad in [
            r#"{"event":"nope"}"#,
            r#"{"event":"peer_connected","peer":"not a peer"}"#,
            r#"{"event":"published","cid":"bafy-nope","id":"x"}"#,
        ] {
            assert!(serde_json::from_str::<NodeEvent>(bad).is_err(), "{bad}");
        }
    }
}

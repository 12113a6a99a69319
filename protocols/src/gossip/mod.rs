//! Gossip of feeds, forum branches and threads over gossipsub.
//!
//! A gossip message carries one signed record (and, when they are small, blocks it needs such
//! as the previous version), encoded as DAG-CBOR `{"blocks": [bytes…], "record": bytes}`. Every
//! received message goes through the node's one `put` path; [`Verdict`] says what gossipsub
//! should do with it, so peers that send bad records lose score.
//!
//! Message ids are the SHA-256 of topic and data, so the same record published into two topics
//! (an author's feed and a branch) travels in both meshes, and a re-publish of the same bytes
//! into one topic is a duplicate.

use std::time::Duration;

use libp2p::{
    gossipsub::{
        self, IdentTopic, MessageAcceptance, MessageAuthenticity, MessageId, PeerScoreParams,
        PeerScoreThresholds, TopicScoreParams, ValidationMode,
    },
    identity::Keypair,
};
use mnode_dag::{Record, RecordError, cbor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::GossipTopic;

/// Largest gossip message by default: a record is at most 1 MiB, blocks ride along only when
/// the whole stays under this.
pub const DEFAULT_MAX_MESSAGE: usize = 2 << 20;

/// Gossip settings. The default suits a node on a LAN or the internet; tests shorten the
/// heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Largest message accepted or sent, in bytes.
    pub max_message_bytes: usize,
    /// Gossipsub heartbeat, in milliseconds.
    pub heartbeat_ms: u64,
    /// Extra blocks are attached to a message while the message stays under this many bytes.
    pub attach_blocks_under: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_message_bytes: DEFAULT_MAX_MESSAGE,
            heartbeat_ms: 700,
            attach_blocks_under: 64 << 10,
        }
    }
}

/// A gossip message: one record and blocks it needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Blocks the record needs that the receiver may lack (older versions), oldest first.
    pub blocks: Vec<serde_bytes::ByteBuf>,
    /// The record's block.
    pub record: serde_bytes::ByteBuf,
}

/// Why a gossip message could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// Bigger than the configured limit.
    #[error("gossip message of {size} bytes exceeds the {max} byte limit")]
    TooLarge {
        /// The message size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not a canonical DAG-CBOR gossip message.
    #[error("malformed gossip message: {0}")]
    Malformed(#[from] cbor::DecodeError),
    /// The record inside is invalid.
    #[error("invalid record: {0}")]
    Record(#[from] RecordError),
    /// A reply whose `root` is not the root of the conversation its parent is in.
    #[error("reply {cid} does not fit its conversation: {why}")]
    Inconsistent {
        /// The reply.
        cid: mnode_dag::Cid,
        /// What does not fit.
        why: String,
    },
    /// The record came on a topic it may belong in for a record it answers, which neither the
    /// message nor the node holds.
    #[error("record {cid} came on {topic} for a record this node does not hold")]
    UnknownTarget {
        /// The record.
        cid: mnode_dag::Cid,
        /// The topic it arrived on.
        topic: String,
    },
    /// The record does not belong in the topic it came on.
    #[error("record {cid} does not belong in {topic}")]
    WrongTopic {
        /// The record.
        cid: mnode_dag::Cid,
        /// The topic it arrived on.
        topic: String,
    },
}

impl Message {
    /// A message with one record.
    pub fn new(record: &Record) -> Self {
        Self {
            blocks: vec![],
            record: serde_bytes::ByteBuf::from(record.bytes().to_vec()),
        }
    }

    /// Attaches `block` if the message stays under `limit` bytes; says whether it did.
    pub fn attach(&mut self, block: Vec<u8>, limit: usize) -> bool {
        if self.encoded_len_estimate() + block.len() + 8 > limit {
            return false;
        }
        self.blocks.push(serde_bytes::ByteBuf::from(block));
        true
    }

    fn encoded_len_estimate(&self) -> usize {
        16 + self.record.len() + self.blocks.iter().map(|b| b.len() + 5).sum::<usize>()
    }

    /// Canonical DAG-CBOR bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        // A struct of byte strings always encodes.
        cbor::encode(self).unwrap_or_default()
    }

    /// Reads a message strictly: size, canonical DAG-CBOR, then the record (signature, schema)
    /// and its membership of `topic`. Attached blocks are returned as they are; the store
    /// verifies them when it uses them.
    ///
    /// A record that is not in `topic` by itself may be there for a record it answers
    /// ([`GossipTopic::audience`]): those targets are looked for among the attached blocks
    /// (verified here), then with `known` (the node's store). A target found nowhere makes it
    /// [`MessageError::UnknownTarget`]: not judged, not forwarded, not the sender's fault.
    pub fn decode(
        data: &[u8],
        topic: &GossipTopic,
        max: usize,
        known: impl Fn(&mnode_dag::Cid) -> Option<Record>,
    ) -> Result<(Record, Vec<Vec<u8>>), MessageError> {
        if data.len() > max {
            return Err(MessageError::TooLarge {
                size: data.len(),
                max,
            });
        }
        let msg: Message = cbor::decode(data)?;
        let record = Record::decode_owned(msg.record.into_vec())?;
        let own = GossipTopic::of(&record).contains(topic);
        let wanted = &record.index().targets;
        if own && wanted.is_empty() {
            return Ok((
                record,
                msg.blocks.into_iter().map(|b| b.into_vec()).collect(),
            ));
        }
        let mut targets = vec![];
        let mut missing = false;
        for t in wanted.iter().take(GossipTopic::MAX_TARGETS) {
            let attached = msg
                .blocks
                .iter()
                .filter(|b| mnode_dag::cids::verify_block(t, b).is_ok())
                .find_map(|b| Record::decode(b).ok());
            match attached.or_else(|| known(t)) {
                Some(r) => targets.push(r),
                None => missing = true,
            }
        }
        if let Some(why) = inconsistent_reply(&record, &targets) {
            return Err(MessageError::Inconsistent {
                cid: record.cid(),
                why,
            });
        }
        if !own && !GossipTopic::audience(&record, &targets).contains(topic) {
            return Err(if missing {
                MessageError::UnknownTarget {
                    cid: record.cid(),
                    topic: topic.to_string(),
                }
            } else {
                MessageError::WrongTopic {
                    cid: record.cid(),
                    topic: topic.to_string(),
                }
            });
        }
        Ok((
            record,
            msg.blocks.into_iter().map(|b| b.into_vec()).collect(),
        ))
    }
}

/// Why a reply does not fit the conversation of its parent (found among `targets`), if it
/// does not: its `root` must be the parent's root, or the parent itself when the parent
/// answers nothing; and the parent must be a post.
pub fn inconsistent_reply(record: &Record, targets: &[Record]) -> Option<String> {
    use mnode_dag::model::social::Post;
    let post = record.body_as::<Post>().ok().flatten()?;
    let reply = post.reply?;
    let parent = targets
        .iter()
        .find(|t| t.cid() == reply.parent.0 || t.id() == reply.parent.0)?;
    if parent.kind() != "social.post" {
        return Some(format!("its parent is a {}, not a post", parent.kind()));
    }
    let parent_post = parent.body_as::<Post>().ok().flatten()?;
    let ok = match parent_post.reply {
        Some(r) => r.root == reply.root,
        None => reply.root.0 == parent.cid() || reply.root.0 == parent.id(),
    };
    (!ok).then(|| format!("root {} is not its parent's conversation", reply.root.0))
}

/// How many records each author may put into each shared topic per window: a stranger
/// replying in a thread, a branch or someone's feed cannot flood it. An author's own feed is
/// not limited (whoever follows it chose to). IO-free: the caller passes the time.
#[derive(Debug)]
pub struct AuthorBudget {
    per_window: u32,
    window_ms: u64,
    spent: std::collections::HashMap<(mnode_dag::Did, GossipTopic), (u64, u32)>,
}

impl AuthorBudget {
    /// Most entries kept before old windows are dropped.
    const MAX_ENTRIES: usize = 100_000;

    /// `per_window` records per author per topic every `window_ms`.
    pub fn new(per_window: u32, window_ms: u64) -> Self {
        Self {
            per_window,
            window_ms: window_ms.max(1),
            spent: std::collections::HashMap::new(),
        }
    }

    /// Counts `record` arriving on `topic` at `now_ms`; false when its author has spent the
    /// budget of that topic for this window.
    pub fn allow(&mut self, record: &Record, topic: &GossipTopic, now_ms: u64) -> bool {
        let author = *record.author();
        // An author's own feed is never limited: the key's, or the identity's a rotated key
        // signs for.
        if *topic == GossipTopic::Author(author)
            || *topic == GossipTopic::Author(*record.identity())
        {
            return true;
        }
        if self.spent.len() >= Self::MAX_ENTRIES {
            let window = self.window_ms;
            self.spent
                .retain(|_, (start, _)| now_ms.saturating_sub(*start) < window);
        }
        let e = self.spent.entry((author, *topic)).or_insert((now_ms, 0));
        if now_ms.saturating_sub(e.0) >= self.window_ms {
            *e = (now_ms, 0);
        }
        if e.1 >= self.per_window {
            return false;
        }
        e.1 += 1;
        true
    }
}

/// What the node made of a received message, reported back to gossipsub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Stored: forward it.
    Accept,
    /// Already held, or cannot be judged yet (a missing earlier version): drop it, no penalty.
    Ignore,
    /// Bad signature, bad schema, non-canonical bytes, chain violation, oversized: drop it and
    /// penalise the sender.
    Reject,
}

impl From<Verdict> for MessageAcceptance {
    fn from(v: Verdict) -> Self {
        match v {
            Verdict::Accept => MessageAcceptance::Accept,
            Verdict::Ignore => MessageAcceptance::Ignore,
            Verdict::Reject => MessageAcceptance::Reject,
        }
    }
}

/// The gossipsub message id: SHA-256 over the topic and the data.
pub fn message_id(m: &gossipsub::Message) -> MessageId {
    let mut h = Sha256::new();
    h.update(m.topic.as_str().as_bytes());
    h.update([0]);
    h.update(&m.data);
    MessageId::from(h.finalize().to_vec())
}

/// Builds the gossipsub behaviour: signed messages (strict), manual validation, our message
/// ids, size limit, and peer scoring that punishes invalid messages.
pub fn behaviour(key: &Keypair, config: &Config) -> Result<gossipsub::Behaviour, String> {
    let gs = gossipsub::ConfigBuilder::default()
        .validation_mode(ValidationMode::Strict)
        .validate_messages()
        .message_id_fn(message_id)
        .max_transmit_size(config.max_message_bytes)
        .heartbeat_interval(Duration::from_millis(config.heartbeat_ms.max(50)))
        .build()
        .map_err(|e| format!("gossipsub config: {e}"))?;
    let mut b = gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), gs)
        .map_err(|e| format!("gossipsub: {e}"))?;
    b.with_peer_score(PeerScoreParams::default(), thresholds())
        .map_err(|e| format!("gossipsub peer scoring: {e}"))?;
    Ok(b)
}

/// Score thresholds: a peer that sends a few invalid records stops getting our gossip, more and
/// it is graylisted (its messages are ignored).
pub fn thresholds() -> PeerScoreThresholds {
    PeerScoreThresholds {
        gossip_threshold: -10.0,
        publish_threshold: -50.0,
        graylist_threshold: -80.0,
        accept_px_threshold: 10.0,
        opportunistic_graft_threshold: 20.0,
    }
}

/// Per-topic score parameters: first deliveries earn a little, every invalid message costs
/// much (squared), and mesh delivery is not required (quiet feeds are normal).
pub fn topic_params() -> TopicScoreParams {
    TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.01,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 10.0,
        first_message_deliveries_weight: 1.0,
        first_message_deliveries_decay: 0.9,
        first_message_deliveries_cap: 20.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -10.0,
        invalid_message_deliveries_decay: 0.99,
        ..TopicScoreParams::default()
    }
}

/// The gossipsub topic for `t`.
pub fn ident(t: &GossipTopic) -> IdentTopic {
    IdentTopic::new(t.to_string())
}

#[cfg(test)]
mod tests {
    use mnode_dag::{Keypair as DagKey, model::social::Post};

    use super::*;

    fn post(key: &DagKey, text: &str) -> Record {
        let post = Post {
            text: text.into(),
            ..Post::default()
        };
        Record::create(&post)
            .expect("valid post")
            .at(1_700_000_000_000)
            .sign(key)
            .expect("signs")
    }

    #[test]
    fn message_round_trips_and_checks_topic() {
        let key = DagKey::derive(7, "gossip");
        let r = post(&key, "hello");
        let topic = GossipTopic::Author(*key.did());
        let mut m = Message::new(&r);
        assert!(m.attach(vec![1, 2, 3], 1 << 20));
        assert!(!m.attach(vec![0; 2 << 20], 1 << 20));
        let bytes = m.to_bytes();
        let (back, blocks) = Message::decode(&bytes, &topic, 1 << 20, |_| None).expect("decodes");
        assert_eq!(back.cid(), r.cid());
        assert_eq!(blocks, vec![vec![1, 2, 3]]);

        let other = GossipTopic::Author(*DagKey::derive(8, "x").did());
        assert!(matches!(
            Message::decode(&bytes, &other, 1 << 20, |_| None),
            Err(MessageError::WrongTopic { .. })
        ));
        assert!(matches!(
            Message::decode(&bytes, &topic, 10, |_| None),
            Err(MessageError::TooLarge { .. })
        ));
    }

    #[test]
    fn a_reply_on_the_feed_it_answers_is_checked_against_the_post() {
        use mnode_dag::{Link, model::social::ReplyRef};
        let (alice, bob, eve) = (
            DagKey::derive(1, "alice"),
            DagKey::derive(2, "bob"),
            DagKey::derive(3, "eve"),
        );
        let first = post(&alice, "first");
        let reply = Record::create(&Post {
            text: "reply".into(),
            reply: Some(ReplyRef {
                root: Link(first.cid()),
                parent: Link(first.cid()),
            }),
            ..Post::default()
        })
        .unwrap()
        .sign(&bob)
        .unwrap();
        let on_alice = GossipTopic::Author(*alice.did());
        let bare = Message::new(&reply).to_bytes();
        // Nobody holds the post: not judged.
        assert!(matches!(
            Message::decode(&bare, &on_alice, 1 << 20, |_| None),
            Err(MessageError::UnknownTarget { .. })
        ));
        // The node holds it, or it came along: accepted on Alice's feed.
        let held = first.clone();
        assert!(Message::decode(&bare, &on_alice, 1 << 20, |_| Some(held.clone())).is_ok());
        let mut with = Message::new(&reply);
        assert!(with.attach(first.bytes().to_vec(), 1 << 20));
        let with = with.to_bytes();
        assert!(Message::decode(&with, &on_alice, 1 << 20, |_| None).is_ok());
        // But not on Eve's feed: the post it answers is not hers.
        assert!(matches!(
            Message::decode(&with, &GossipTopic::Author(*eve.did()), 1 << 20, |_| None),
            Err(MessageError::WrongTopic { .. })
        ));
        // A forged "post" attached under the target's CID does not verify against it.
        let forged = post(&eve, "first");
        let mut lie = Message::new(&reply);
        assert!(lie.attach(forged.bytes().to_vec(), 1 << 20));
        assert!(matches!(
            Message::decode(&lie.to_bytes(), &on_alice, 1 << 20, |_| None),
            Err(MessageError::UnknownTarget { .. })
        ));
    }

    #[test]
    fn a_reply_must_fit_the_conversation_of_its_parent() {
        use mnode_dag::{Link, model::social::ReplyRef};
        let (alice, bob) = (DagKey::derive(1, "alice"), DagKey::derive(2, "bob"));
        let root = post(&alice, "root");
        let answer = |parent: &Record, root: &Record, text: &str, key: &DagKey| {
            Record::create(&Post {
                text: text.into(),
                reply: Some(ReplyRef {
                    root: Link(root.cid()),
                    parent: Link(parent.cid()),
                }),
                ..Post::default()
            })
            .unwrap()
            .sign(key)
            .unwrap()
        };
        let r1 = answer(&root, &root, "one", &bob);
        let r2 = answer(&r1, &root, "two", &alice);
        assert_eq!(inconsistent_reply(&r1, std::slice::from_ref(&root)), None);
        assert_eq!(inconsistent_reply(&r2, std::slice::from_ref(&r1)), None);
        // A reply to r1 that claims another conversation's root.
        let elsewhere = post(&bob, "another conversation");
        let bad = answer(&r1, &elsewhere, "three", &bob);
        assert!(inconsistent_reply(&bad, std::slice::from_ref(&r1)).is_some());
        let mut m = Message::new(&bad);
        assert!(m.attach(r1.bytes().to_vec(), 1 << 20));
        assert!(matches!(
            Message::decode(
                &m.to_bytes(),
                &GossipTopic::Author(*bob.did()),
                1 << 20,
                |_| None
            ),
            Err(MessageError::Inconsistent { .. })
        ));
        // Without the parent it cannot be judged here: left to whoever holds it.
        assert_eq!(inconsistent_reply(&bad, &[]), None);
    }

    #[test]
    fn each_author_has_a_budget_per_shared_topic() {
        let (alice, bob) = (DagKey::derive(1, "alice"), DagKey::derive(2, "bob"));
        let r = post(&bob, "hi");
        let thread = GossipTopic::Thread(mnode_dag::cids::record_cid(b"t"));
        let mut b = AuthorBudget::new(3, 60_000);
        assert!((0..3).all(|_| b.allow(&r, &thread, 1_000)));
        assert!(!b.allow(&r, &thread, 2_000));
        // Another topic, or the author's own feed, has its own budget.
        assert!(b.allow(&r, &GossipTopic::Author(*alice.did()), 2_000));
        assert!((0..10).all(|_| b.allow(&r, &GossipTopic::Author(*bob.did()), 2_000)));
        // A new window.
        assert!(b.allow(&r, &thread, 61_000));
    }

    #[test]
    fn garbage_and_tampered_records_are_errors() {
        let key = DagKey::derive(7, "gossip");
        let topic = GossipTopic::Author(*key.did());
        assert!(matches!(
            Message::decode(b"\xff\x00", &topic, 1 << 20, |_| None),
            Err(MessageError::Malformed(_))
        ));
        let r = post(&key, "hello");
        let mut bytes = r.bytes().to_vec();
        let i = bytes
            .windows(5)
            .position(|w| w == b"hello")
            .expect("text in block");
        bytes[i] = b'j';
        let m = Message {
            blocks: vec![],
            record: serde_bytes::ByteBuf::from(bytes),
        };
        assert!(matches!(
            Message::decode(&m.to_bytes(), &topic, 1 << 20, |_| None),
            Err(MessageError::Record(_))
        ));
    }

    #[test]
    fn message_ids_differ_by_topic() {
        let mk = |t: &str| gossipsub::Message {
            source: None,
            data: b"same".to_vec(),
            sequence_number: None,
            topic: IdentTopic::new(t).hash(),
        };
        assert_ne!(message_id(&mk("/a")), message_id(&mk("/b")));
        assert_eq!(message_id(&mk("/a")), message_id(&mk("/a")));
    }
}

//! Gossip topics: an author's feed, a forum, a forum branch, a thread, the discussion about a
//! record.
//!
//! A topic is also the unit of catch-up sync: [`GossipTopic::key`] names the set of record
//! versions that belong to it in a node's store.
//!
//! A record goes to the topics it names itself ([`GossipTopic::of`]) and to those of the
//! records it answers or is about ([`GossipTopic::audience`]): a reply reaches whoever follows
//! the post's author, thread or branch, a context note whoever follows the fact.

use std::{fmt, str::FromStr};

use mnode_dag::{Cid, Did, Record, registry::Topic};

/// Prefix of every mnode gossip topic.
pub const PREFIX: &str = "/mnode/1/";

/// A gossipsub topic mnode publishes into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GossipTopic {
    /// Every record an author signs: `/mnode/1/author/<did>`.
    Author(Did),
    /// Posts and threads of a forum branch: `/mnode/1/branch/<branch origin CID>`.
    Branch(Cid),
    /// Replies of a thread: `/mnode/1/thread/<thread origin CID>`. A fork is its own thread.
    Thread(Cid),
    /// A forum: its versions, its branches and its moderation: `/mnode/1/forum/<origin CID>`.
    Forum(Cid),
    /// What is said about a record (context notes, sub-facts, replies to a conversation's
    /// first post): `/mnode/1/about/<origin CID>`.
    About(Cid),
    /// A group's versions (its membership log) and the items it owns:
    /// `/mnode/1/group/<group origin CID>`.
    Group(Cid),
}

/// A topic string that is not an mnode topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "not an mnode topic: {0:?} (expected /mnode/1/author/<did>, /mnode/1/forum/<cid>, /mnode/1/branch/<cid>, /mnode/1/thread/<cid>, /mnode/1/about/<cid> or /mnode/1/group/<cid>)"
)]
pub struct TopicError(pub String);

impl GossipTopic {
    /// The topics a record names itself: its author's feed (the key that signed it, and the
    /// identity it is signed for when that key is a rotated one, so that followers of the
    /// identity hear it; the store checks the claim), a private record's readers' feeds, then
    /// each forum, branch, thread and record it belongs to.
    pub fn of(record: &Record) -> Vec<GossipTopic> {
        let mut out = vec![GossipTopic::Author(*record.author())];
        if record.identity() != record.author() {
            out.push(GossipTopic::Author(*record.identity()));
        }
        // A key log's versions travel on its identity's feed, whichever key signs them.
        if record.kind() == mnode_dag::key_log::KEYS_KIND
            && let Ok(Some(log)) = record.body_as::<mnode_dag::model::core::KeyLog>()
            && let Some(identity) = log.identity
            && identity != *record.author()
        {
            out.push(GossipTopic::Author(identity));
        }
        // A private record's readers hear it on their own feeds' topics, which their nodes
        // follow (the readers' ids are in the clear beside the ciphertext).
        if let Some(Ok(Some(readers))) = record.body().map(mnode_dag::private::recipients) {
            for reader in readers {
                let t = GossipTopic::Author(reader);
                if !out.contains(&t) {
                    out.push(t);
                }
            }
        }
        for t in &record.index().topics {
            let g = match t {
                Topic::Branch(c) => GossipTopic::Branch(*c),
                Topic::Thread(c) => GossipTopic::Thread(*c),
                Topic::Forum(c) => GossipTopic::Forum(*c),
                Topic::About(c) => GossipTopic::About(*c),
                Topic::Group(c) => GossipTopic::Group(*c),
            };
            if !out.contains(&g) {
                out.push(g);
            }
        }
        // A forum, branch or thread is in its own topic, so that following it (or a fork of a
        // thread) brings the record that starts it.
        let own = match record.kind() {
            "social.forum" => Some(GossipTopic::Forum(record.id())),
            "social.branch" => Some(GossipTopic::Branch(record.id())),
            "social.thread" => Some(GossipTopic::Thread(record.id())),
            mnode_dag::group::GROUP_KIND => Some(GossipTopic::Group(record.id())),
            _ => None,
        };
        if let Some(own) = own.filter(|o| !out.contains(o)) {
            out.push(own);
        }
        out
    }

    /// Every topic a record is published into: [`GossipTopic::of`] it, then the topics of each
    /// of its targets (`record.index().targets`) that the caller could find. `targets` holds
    /// those records; others are skipped. A target's own author feed is among them, so the
    /// person answered hears of it.
    pub fn audience(record: &Record, targets: &[Record]) -> Vec<GossipTopic> {
        let mut out = Self::of(record);
        let wanted = &record.index().targets;
        for t in targets
            .iter()
            .filter(|t| wanted.contains(&t.cid()) || wanted.contains(&t.id()))
        {
            for g in Self::of(t) {
                if !out.contains(&g) {
                    out.push(g);
                }
            }
        }
        out
    }

    /// The largest number of targets whose topics a record is published into.
    pub const MAX_TARGETS: usize = 4;

    /// Bytes naming this topic in a store key: a tag byte, then the public key or CID.
    pub fn key(&self) -> Vec<u8> {
        match self {
            GossipTopic::Author(did) => [&[b'a'][..], &did.public_key()].concat(),
            GossipTopic::Branch(cid) => [&[b'b'][..], &cid.to_bytes()].concat(),
            GossipTopic::Thread(cid) => [&[b't'][..], &cid.to_bytes()].concat(),
            GossipTopic::Forum(cid) => [&[b'f'][..], &cid.to_bytes()].concat(),
            GossipTopic::About(cid) => [&[b'r'][..], &cid.to_bytes()].concat(),
            GossipTopic::Group(cid) => [&[b'g'][..], &cid.to_bytes()].concat(),
        }
    }

    /// The inverse of [`GossipTopic::key`].
    pub fn from_key(key: &[u8]) -> Option<Self> {
        let (tag, rest) = key.split_first()?;
        match tag {
            b'a' => {
                let pk: [u8; 32] = rest.try_into().ok()?;
                Did::from_public_key(&pk).ok().map(GossipTopic::Author)
            }
            b'b' => Cid::try_from(rest).ok().map(GossipTopic::Branch),
            b't' => Cid::try_from(rest).ok().map(GossipTopic::Thread),
            b'f' => Cid::try_from(rest).ok().map(GossipTopic::Forum),
            b'r' => Cid::try_from(rest).ok().map(GossipTopic::About),
            b'g' => Cid::try_from(rest).ok().map(GossipTopic::Group),
            _ => None,
        }
    }
}

impl fmt::Display for GossipTopic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GossipTopic::Author(did) => write!(f, "{PREFIX}author/{did}"),
            GossipTopic::Branch(cid) => write!(f, "{PREFIX}branch/{cid}"),
            GossipTopic::Thread(cid) => write!(f, "{PREFIX}thread/{cid}"),
            GossipTopic::Forum(cid) => write!(f, "{PREFIX}forum/{cid}"),
            GossipTopic::About(cid) => write!(f, "{PREFIX}about/{cid}"),
            GossipTopic::Group(cid) => write!(f, "{PREFIX}group/{cid}"),
        }
    }
}

impl FromStr for GossipTopic {
    type Err = TopicError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || TopicError(s.to_owned());
        let rest = s.strip_prefix(PREFIX).ok_or_else(err)?;
        let (kind, value) = rest.split_once('/').ok_or_else(err)?;
        match kind {
            "author" => value.parse().map(GossipTopic::Author).map_err(|_| err()),
            "branch" => value.parse().map(GossipTopic::Branch).map_err(|_| err()),
            "thread" => value.parse().map(GossipTopic::Thread).map_err(|_| err()),
            "forum" => value.parse().map(GossipTopic::Forum).map_err(|_| err()),
            "about" => value.parse().map(GossipTopic::About).map_err(|_| err()),
            "group" => value.parse().map(GossipTopic::Group).map_err(|_| err()),
            _ => Err(err()),
        }
    }
}

#[cfg(test)]
mod tests {
    use mnode_dag::{Keypair, cids};

    use super::*;

    #[test]
    fn topics_round_trip_through_text_and_key() {
        let did = *Keypair::derive(1, "a").did();
        let cid = cids::record_cid(b"x");
        for t in [
            GossipTopic::Author(did),
            GossipTopic::Branch(cid),
            GossipTopic::Thread(cid),
            GossipTopic::Forum(cid),
            GossipTopic::About(cid),
            GossipTopic::Group(cid),
        ] {
            assert_eq!(t.to_string().parse::<GossipTopic>(), Ok(t));
            assert_eq!(GossipTopic::from_key(&t.key()), Some(t));
        }
        assert!(
            GossipTopic::Author(did)
                .to_string()
                .starts_with("/mnode/1/author/did:key:z6Mk")
        );
    }

    fn post(key: &Keypair, body: mnode_dag::model::social::Post) -> Record {
        Record::create(&body)
            .unwrap()
            .at(1_700_000_000_000)
            .sign(key)
            .unwrap()
    }

    #[test]
    fn a_reply_reaches_the_topics_of_what_it_answers() {
        use mnode_dag::{
            Link,
            model::social::{Post, ReplyRef},
        };
        let (alice, bob) = (Keypair::derive(1, "a"), Keypair::derive(2, "b"));
        let thread = cids::record_cid(b"thread");
        let first = post(
            &alice,
            Post {
                text: "first".into(),
                thread: Some(Link(thread)),
                ..Post::default()
            },
        );
        let reply = post(
            &bob,
            Post {
                text: "reply".into(),
                reply: Some(ReplyRef {
                    root: Link(first.cid()),
                    parent: Link(first.cid()),
                }),
                ..Post::default()
            },
        );
        let own = GossipTopic::of(&reply);
        assert_eq!(
            own,
            vec![
                GossipTopic::Author(*bob.did()),
                GossipTopic::About(first.cid())
            ]
        );
        let all = GossipTopic::audience(&reply, std::slice::from_ref(&first));
        assert!(all.contains(&GossipTopic::Author(*alice.did())));
        assert!(all.contains(&GossipTopic::Thread(thread)));
        // A record it does not answer adds nothing.
        let unrelated = post(
            &alice,
            Post {
                text: "x".into(),
                ..Post::default()
            },
        );
        assert_eq!(GossipTopic::audience(&reply, &[unrelated]), own);
    }

    #[test]
    fn a_key_log_travels_on_its_identity_feed_whoever_signs_it() {
        use mnode_dag::{Record, model::core::KeyLog};
        let (first, recovery, next) = (
            Keypair::derive(1, "first"),
            Keypair::derive(1, "recovery"),
            Keypair::derive(1, "next"),
        );
        let root = Record::create(&KeyLog::root(&first, Some(*recovery.did())))
            .unwrap()
            .sign(&first)
            .unwrap();
        assert_eq!(
            GossipTopic::of(&root),
            vec![GossipTopic::Author(*first.did())]
        );
        let fresh = Keypair::derive(1, "fresh recovery");
        let recovered = root
            .update(&KeyLog::grant(
                &next,
                first.did(),
                &root.cid(),
                Some(*fresh.did()),
                vec![],
            ))
            .unwrap()
            .sign(&recovery)
            .unwrap();
        assert_eq!(
            GossipTopic::of(&recovered),
            vec![
                GossipTopic::Author(*recovery.did()),
                GossipTopic::Author(*first.did())
            ]
        );
    }

    #[test]
    fn a_private_record_reaches_its_readers_feeds() {
        use mnode_dag::{Draft, Ipld, private};
        let (ana, ben, cy) = (
            Keypair::derive(1, "ana"),
            Keypair::derive(1, "ben"),
            Keypair::derive(1, "cy"),
        );
        let text = Ipld::Map([("text".to_owned(), Ipld::String("hi".into()))].into());
        let to = [(*ana.did(), *ana.did()), (*ben.did(), *ben.did())];
        let sealed = private::seal(
            "social.message",
            ana.did(),
            None,
            &text,
            &to,
            &mut rand::rng(),
        )
        .unwrap();
        let record = Draft::new("social.message", sealed).sign(&ana).unwrap();
        let topics = GossipTopic::of(&record);
        assert_eq!(
            topics,
            vec![
                GossipTopic::Author(*ana.did()),
                GossipTopic::Author(*ben.did())
            ]
        );
        assert!(!topics.contains(&GossipTopic::Author(*cy.did())));
    }

    #[test]
    fn a_rotated_key_publishes_into_its_identity_feed_too() {
        use mnode_dag::{key_log::SignerCite, model::core::KeyLog};
        let (first, next) = (Keypair::derive(1, "first"), Keypair::derive(1, "next"));
        let root = Record::create(&KeyLog::root(&first, None))
            .unwrap()
            .sign(&first)
            .unwrap();
        let grant = root
            .update(&KeyLog::grant(
                &next,
                first.did(),
                &root.cid(),
                None,
                vec![],
            ))
            .unwrap()
            .sign(&first)
            .unwrap();
        let body = mnode_dag::model::social::Post {
            text: "after the rotation".into(),
            ..Default::default()
        };
        let signed = Record::create(&body)
            .unwrap()
            .signed_as(SignerCite {
                identity: *first.did(),
                at: grant.cid(),
            })
            .sign(&next)
            .unwrap();
        assert_eq!(
            GossipTopic::of(&signed),
            vec![
                GossipTopic::Author(*next.did()),
                GossipTopic::Author(*first.did())
            ]
        );
        // Signed by the identity's first key: its feed only, as before.
        assert_eq!(
            GossipTopic::of(&post(&first, body)),
            vec![GossipTopic::Author(*first.did())]
        );
    }

    #[test]
    fn bad_topics_are_refused() {
        for s in [
            "",
            "/mnode/1/",
            "/mnode/1/author/nope",
            "/mnode/2/branch/x",
            "/mnode/1/feed/x",
        ] {
            assert!(s.parse::<GossipTopic>().is_err(), "{s}");
        }
        assert_eq!(GossipTopic::from_key(b"zz"), None);
    }
}

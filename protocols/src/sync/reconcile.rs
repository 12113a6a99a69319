//! Set reconciliation, IO-free: the client's [`Session`] and the server's [`respond`].

use mnode_dag::Cid;
use negentropy::{Id, Negentropy};

use super::{
    Config, Request, SyncError,
    set::{Storage, SyncSet, record_cid},
};
use crate::GossipTopic;

/// What the client does after a server message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this reconciliation message to the server and hand its reply to
    /// [`Session::handle`].
    Send(Vec<u8>),
    /// The sets are reconciled.
    Done {
        /// Versions the server holds and this node lacks, in id order.
        need: Vec<Cid>,
        /// Versions this node holds and the server lacks, in id order.
        have: Vec<Cid>,
    },
}

/// The client side of one reconciliation of a topic's set with one peer.
#[derive(Debug)]
pub struct Session {
    topic: GossipTopic,
    negentropy: Negentropy<'static, Storage>,
    need: Vec<Id>,
    have: Vec<Id>,
    rounds: u32,
    max_rounds: u32,
    finished: bool,
    bytes_sent: u64,
    bytes_received: u64,
}

impl Session {
    /// Starts reconciling `set`, this node's items of `topic`; returns the session and the
    /// first message to send.
    pub fn new(
        topic: GossipTopic,
        set: &SyncSet,
        config: &Config,
    ) -> Result<(Self, Vec<u8>), SyncError> {
        let mut negentropy =
            Negentropy::owned(set.storage(), config.frame_limit()).map_err(malformed)?;
        let first = negentropy.initiate().map_err(malformed)?;
        let session = Self {
            topic,
            negentropy,
            need: Vec::new(),
            have: Vec::new(),
            rounds: 0,
            max_rounds: config.rounds(),
            finished: false,
            bytes_sent: first.len() as u64,
            bytes_received: 0,
        };
        Ok((session, first))
    }

    /// Takes the server's reply to the last message sent.
    ///
    /// After an error or [`Step::Done`] the session is finished and refuses further replies.
    pub fn handle(&mut self, reply: &[u8]) -> Result<Step, SyncError> {
        if self.finished {
            return Err(SyncError::Finished);
        }
        self.rounds += 1;
        self.bytes_received += reply.len() as u64;
        let next = self
            .negentropy
            .reconcile_with_ids(reply, &mut self.have, &mut self.need)
            .map_err(|e| {
                self.finished = true;
                malformed(e)
            })?;
        match next {
            Some(_) if self.rounds >= self.max_rounds => {
                self.finished = true;
                Err(SyncError::TooManyRounds(self.max_rounds))
            }
            Some(msg) => {
                self.bytes_sent += msg.len() as u64;
                Ok(Step::Send(msg))
            }
            None => {
                self.finished = true;
                Ok(Step::Done {
                    need: into_cids(std::mem::take(&mut self.need)),
                    have: into_cids(std::mem::take(&mut self.have)),
                })
            }
        }
    }

    /// A request carrying `msg` for this session's topic.
    pub fn request(&self, msg: Vec<u8>) -> Request {
        Request::reconcile(&self.topic, msg)
    }

    /// The topic reconciled.
    pub fn topic(&self) -> &GossipTopic {
        &self.topic
    }

    /// Server replies handled so far.
    pub fn rounds(&self) -> u32 {
        self.rounds
    }

    /// Bytes of reconciliation messages produced so far (the first one included).
    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent
    }

    /// Bytes of server replies handled so far.
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received
    }
}

/// The server's answer to a client's reconciliation message `msg`, computed against `set`
/// (this node's items of the topic). The server keeps no state between rounds.
pub fn respond(set: &SyncSet, msg: &[u8], config: &Config) -> Result<Vec<u8>, SyncError> {
    let mut negentropy =
        Negentropy::owned(set.storage(), config.frame_limit()).map_err(malformed)?;
    negentropy.reconcile(msg).map_err(malformed)
}

fn malformed(e: negentropy::Error) -> SyncError {
    SyncError::Malformed(e.to_string())
}

fn into_cids(mut ids: Vec<Id>) -> Vec<Cid> {
    // A frame cut can report an id in two rounds.
    ids.sort_unstable();
    ids.dedup();
    ids.iter().map(|id| record_cid(id.as_bytes())).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use mnode_dag::Keypair;
    use proptest::prelude::*;
    use sha2::{Digest as _, Sha256};

    use super::*;
    use crate::sync::Item;

    fn topic() -> GossipTopic {
        GossipTopic::Author(*Keypair::derive(1, "sync").did())
    }

    /// Item `i`: a pseudo-random id, and a time that several items share.
    fn item(i: u64) -> Item {
        (
            1_700_000_000_000 + i / 3 * 1000,
            Sha256::digest(i.to_le_bytes()).into(),
        )
    }

    fn set(range: impl IntoIterator<Item = u64>) -> SyncSet {
        range.into_iter().map(item).collect()
    }

    struct Outcome {
        need: Vec<Cid>,
        have: Vec<Cid>,
        bytes: usize,
        rounds: u32,
    }

    /// Runs a whole reconciliation of `client` against `server`.
    fn run(client: &SyncSet, server: &SyncSet, config: &Config) -> Outcome {
        let limit = config.frame_limit() as usize;
        let (mut session, mut msg) = Session::new(topic(), client, config).unwrap();
        let mut bytes = msg.len();
        loop {
            assert!(msg.len() <= limit, "client message of {} bytes", msg.len());
            let reply = respond(server, &msg, config).unwrap();
            assert!(
                reply.len() <= limit,
                "server message of {} bytes",
                reply.len()
            );
            bytes += reply.len();
            match session.handle(&reply).unwrap() {
                Step::Send(next) => {
                    bytes += next.len();
                    msg = next;
                }
                Step::Done { need, have } => {
                    assert_eq!(
                        session.bytes_sent() + session.bytes_received(),
                        bytes as u64
                    );
                    assert!(matches!(session.handle(&reply), Err(SyncError::Finished)));
                    return Outcome {
                        need,
                        have,
                        bytes,
                        rounds: session.rounds(),
                    };
                }
            }
        }
    }

    /// The CIDs of the items in `a` and not in `b`, in the order a session reports them.
    fn difference(a: &SyncSet, b: &SyncSet) -> Vec<Cid> {
        let b: BTreeSet<Item> = b.iter().collect();
        let mut ids: Vec<[u8; 32]> = a.iter().filter(|i| !b.contains(i)).map(|i| i.1).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.iter().map(record_cid).collect()
    }

    fn check(client: &SyncSet, server: &SyncSet, config: &Config) -> Outcome {
        let out = run(client, server, config);
        assert_eq!(out.need, difference(server, client), "need");
        assert_eq!(out.have, difference(client, server), "have");
        out
    }

    #[test]
    fn identical_sets_need_nothing() {
        let a = set(0..10_000);
        let out = check(&a, &a.clone(), &Config::default());
        assert!(out.need.is_empty() && out.have.is_empty());
        assert_eq!(out.rounds, 1);
        // One round of 16 fingerprints each way.
        assert!(out.bytes < 1_000, "{} bytes", out.bytes);
    }

    #[test]
    fn disjoint_sets_swap_everything() {
        let out = check(&set(0..500), &set(500..1_300), &Config::default());
        assert_eq!((out.need.len(), out.have.len()), (800, 500));
    }

    #[test]
    fn empty_sets_need_nothing() {
        let out = check(&SyncSet::default(), &SyncSet::default(), &Config::default());
        assert!(out.need.is_empty() && out.have.is_empty());
    }

    /// Sending every id of 10,000 one way.
    const ALL_IDS: usize = 10_000 * 32;

    fn report(case: &str, out: &Outcome) {
        println!(
            "{case}: {} bytes in {} rounds, {:.1}% of the {ALL_IDS} bytes of all ids",
            out.bytes,
            out.rounds,
            100.0 * out.bytes as f64 / ALL_IDS as f64
        );
    }

    #[test]
    fn a_hundred_missing_of_ten_thousand() {
        let server = set(0..10_000);
        // Spread evenly through the history: the costliest place for them to be.
        let client = set((0..10_000).filter(|i| i % 100 != 7));
        let out = check(&client, &server, &Config::default());
        assert_eq!((out.need.len(), out.have.len()), (100, 0));
        report("100 missing of 10,000, spread", &out);
        assert!(out.bytes * 4 < ALL_IDS, "{} bytes", out.bytes);

        // The newest 100, as after time offline.
        let client = set(0..9_900);
        let out = check(&client, &server, &Config::default());
        assert_eq!((out.need.len(), out.have.len()), (100, 0));
        report("100 missing of 10,000, newest", &out);
        assert!(out.bytes * 20 < ALL_IDS, "{} bytes", out.bytes);
    }

    #[test]
    fn a_hundred_missing_on_each_side_of_ten_thousand() {
        // Both hold 9,900 of 10,000 items; each lacks 100 the other has, spread evenly.
        let client = set((0..10_000).filter(|i| i % 100 != 7));
        let server = set((0..10_000).filter(|i| i % 100 != 42));
        let out = check(&client, &server, &Config::default());
        assert_eq!((out.need.len(), out.have.len()), (100, 100));
        report("100 + 100 missing of 10,000, spread", &out);
        assert!(out.bytes * 3 < ALL_IDS, "{} bytes", out.bytes);
    }

    #[test]
    fn empty_client_gets_ten_thousand() {
        let full = set(0..10_000);
        let out = check(&SyncSet::default(), &full, &Config::default());
        assert_eq!(out.need.len(), 10_000);
        let out = check(&full, &SyncSet::default(), &Config::default());
        assert_eq!(out.have.len(), 10_000);
    }

    #[test]
    fn small_frames_take_more_rounds_and_miss_nothing() {
        let config = Config {
            frame_bytes: MIN_FRAME,
            max_rounds: 1_000,
            ..Config::default()
        };
        let client = set((0..10_000).filter(|i| i % 3 != 0));
        let server = set((0..10_000).filter(|i| i % 5 != 0));
        let out = check(&client, &server, &config);
        assert!(out.rounds > 5, "{} rounds", out.rounds);
        let out = check(&SyncSet::default(), &server, &config);
        assert_eq!(out.need.len(), 8_000);
    }

    const MIN_FRAME: usize = crate::sync::MIN_FRAME_BYTES;

    #[test]
    fn a_peer_that_keeps_going_is_cut_off() {
        let config = Config {
            frame_bytes: MIN_FRAME,
            max_rounds: 2,
            ..Config::default()
        };
        let server = set(0..10_000);
        let (mut session, mut msg) = Session::new(topic(), &SyncSet::default(), &config).unwrap();
        let err = loop {
            let reply = respond(&server, &msg, &config).unwrap();
            match session.handle(&reply) {
                Ok(Step::Send(next)) => msg = next,
                Ok(Step::Done { .. }) => panic!("finished within 2 rounds"),
                Err(e) => break e,
            }
        };
        assert!(matches!(err, SyncError::TooManyRounds(2)), "{err}");
        assert_eq!(session.rounds(), 2);
    }

    #[test]
    fn malformed_messages_are_errors() {
        let server = set(0..100);
        let config = Config::default();
        let mut bad: Vec<Vec<u8>> = vec![
            vec![],
            vec![0x42],
            // Right version, then a bound with an id longer than 32 bytes.
            vec![0x61, 0x00, 0x21],
            // An unknown mode.
            vec![0x61, 0x00, 0x00, 0x07],
            // A fingerprint cut short.
            vec![0x61, 0x00, 0x00, 0x01, 0xaa],
            // An id list claiming 2^34 ids.
            vec![0x61, 0x00, 0x00, 0x02, 0xc0, 0x80, 0x80, 0x80, 0x00],
        ];
        let (_, mut good) = Session::new(topic(), &set(0..1_000), &config).unwrap();
        good.truncate(good.len() - 3);
        bad.push(good);
        for msg in &bad {
            assert!(
                matches!(respond(&server, msg, &config), Err(SyncError::Malformed(_))),
                "{msg:02x?}"
            );
            let (mut session, _) = Session::new(topic(), &server, &config).unwrap();
            assert!(
                matches!(session.handle(msg), Err(SyncError::Malformed(_))),
                "{msg:02x?}"
            );
            assert!(matches!(session.handle(msg), Err(SyncError::Finished)));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        /// Any two sets reconcile to exactly their differences, with ties in time and frames
        /// small enough to cut.
        #[test]
        fn any_two_sets_reconcile_exactly(
            items in proptest::collection::vec((0u64..40, any::<[u8; 32]>(), 0u8..4), 0..400),
            small_frames in any::<bool>(),
        ) {
            // Side 0: both; 1: client only; 2: server only; 3: both (shared items dominate).
            let client = SyncSet::new(items.iter().filter(|i| i.2 != 2).map(|i| (i.0, i.1)));
            let server = SyncSet::new(items.iter().filter(|i| i.2 != 1).map(|i| (i.0, i.1)));
            let config = Config {
                frame_bytes: if small_frames { MIN_FRAME } else { 512 << 10 },
                ..Config::default()
            };
            check(&client, &server, &config);
        }

        /// Garbage never panics either side.
        #[test]
        fn garbage_is_an_error_or_an_answer(msg in proptest::collection::vec(any::<u8>(), 0..200)) {
            let config = Config::default();
            let set = set(0..200);
            let _ = respond(&set, &msg, &config);
            let (mut session, _) = Session::new(topic(), &set, &config).unwrap();
            let _ = session.handle(&msg);
            let mut with_version = vec![0x61];
            with_version.extend(&msg);
            let _ = respond(&set, &with_version, &config);
            let (mut session, _) = Session::new(topic(), &set, &config).unwrap();
            let _ = session.handle(&with_version);
        }
    }
}

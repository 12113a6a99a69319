//! One whole catch-up with one peer, IO-free: reconcile, then fetch, handing out records in
//! an order a store can put them in.

use std::collections::{HashMap, HashSet};

use mnode_dag::{Cid, Record, RecordError};

use super::{
    Config, Fetcher, Request, Response, Session, Step, SyncError, order_for_put, set::SyncSet,
};
use crate::GossipTopic;

/// What to do after a response.
#[derive(Debug)]
pub enum Next {
    /// Send this request to the same peer and hand its response to [`CatchUp::handle`].
    Send(Request),
    /// The catch-up is over.
    Done(Summary),
}

/// The result of handling one response.
#[derive(Debug)]
#[must_use = "the records should be stored and the next request sent"]
pub struct Progress {
    /// Verified records received, each after the version it replaces when that version also
    /// came in this catch-up. Put them in this order.
    pub records: Vec<Record>,
    /// What to do next.
    pub next: Next,
}

/// How a catch-up went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Versions the peer had and this node lacked.
    pub needed: usize,
    /// Of those, how many were received.
    pub received: usize,
    /// Versions the peer advertised but did not send.
    pub missing: Vec<Cid>,
    /// Versions this node holds and the peer lacks (the peer can catch up from us).
    pub have: Vec<Cid>,
    /// Reconciliation rounds.
    pub rounds: u32,
    /// Bytes of reconciliation messages sent.
    pub reconcile_bytes_sent: u64,
    /// Bytes of reconciliation messages received.
    pub reconcile_bytes_received: u64,
    /// Bytes of blocks received.
    pub block_bytes: u64,
}

#[derive(Debug)]
enum Phase {
    Reconciling,
    Fetching(Fetcher),
    Done,
}

/// A catch-up of one topic from one peer: [`Session`] rounds, then [`Fetcher`] rounds.
///
/// A version whose previous version is also being fetched is held back until that one
/// arrives (or the fetch ends), since batches arrive in id order, not history order.
#[derive(Debug)]
pub struct CatchUp {
    session: Session,
    phase: Phase,
    config: Config,
    summary: Summary,
    /// Everything being fetched.
    wanted: HashSet<Cid>,
    /// Fetched and handed out.
    delivered: HashSet<Cid>,
    /// Fetched, waiting for the version they replace, keyed by that version.
    parked: HashMap<Cid, Vec<Record>>,
}

impl CatchUp {
    /// Starts catching up `topic`, whose items this node holds in `set`; returns the state and
    /// the first request to send.
    pub fn new(
        topic: GossipTopic,
        set: &SyncSet,
        config: &Config,
    ) -> Result<(Self, Request), SyncError> {
        let (session, first) = Session::new(topic, set, config)?;
        let request = session.request(first);
        let this = Self {
            session,
            phase: Phase::Reconciling,
            config: config.clone(),
            summary: Summary::default(),
            wanted: HashSet::new(),
            delivered: HashSet::new(),
            parked: HashMap::new(),
        };
        Ok((this, request))
    }

    /// The topic caught up.
    pub fn topic(&self) -> &GossipTopic {
        self.session.topic()
    }

    /// Takes the peer's response to the last request.
    ///
    /// An error ends the catch-up with this peer; records already handed out stay good.
    pub fn handle(&mut self, response: Response) -> Result<Progress, SyncError> {
        self.handle_with(response, Record::decode_batch)
    }

    /// As [`CatchUp::handle`], decoding and verifying fetched blocks with `decode`, as
    /// [`Fetcher::handle_with`] does.
    pub fn handle_with(
        &mut self,
        response: Response,
        decode: impl FnOnce(Vec<Vec<u8>>) -> Vec<Result<Record, RecordError>>,
    ) -> Result<Progress, SyncError> {
        match &mut self.phase {
            Phase::Done => Err(SyncError::Finished),
            Phase::Reconciling => {
                let msg = match response {
                    Response::Reconcile { msg } => msg,
                    Response::Error { message } => {
                        self.phase = Phase::Done;
                        return Err(SyncError::Remote(message));
                    }
                    Response::Blocks { .. } => {
                        self.phase = Phase::Done;
                        return Err(SyncError::UnexpectedResponse("reconcile"));
                    }
                };
                let step = self.session.handle(&msg).inspect_err(|_| {
                    self.phase = Phase::Done;
                })?;
                self.summary.rounds = self.session.rounds();
                self.summary.reconcile_bytes_sent = self.session.bytes_sent();
                self.summary.reconcile_bytes_received = self.session.bytes_received();
                match step {
                    Step::Send(msg) => Ok(Progress {
                        records: Vec::new(),
                        next: Next::Send(self.session.request(msg)),
                    }),
                    Step::Done { need, have } => {
                        self.summary.needed = need.len();
                        self.summary.have = have;
                        self.wanted = need.iter().copied().collect();
                        self.phase = Phase::Fetching(Fetcher::new(need, &self.config));
                        Ok(self.advance(Vec::new()))
                    }
                }
            }
            Phase::Fetching(fetcher) => {
                let records = match fetcher.handle_with(response, decode) {
                    Ok(records) => records,
                    Err(e) => {
                        self.phase = Phase::Done;
                        return Err(e);
                    }
                };
                let ready = self.release(records);
                Ok(self.advance(ready))
            }
        }
    }

    /// How the catch-up has gone so far.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Sends the next fetch, or ends the catch-up, handing out `records` on the way.
    fn advance(&mut self, mut records: Vec<Record>) -> Progress {
        let Phase::Fetching(fetcher) = &mut self.phase else {
            return Progress {
                records,
                next: Next::Done(self.summary.clone()),
            };
        };
        self.summary.received = fetcher.received();
        self.summary.block_bytes = fetcher.bytes_received();
        if let Some(request) = fetcher.next_request() {
            return Progress {
                records,
                next: Next::Send(request),
            };
        }
        self.summary.missing = fetcher.missing().to_vec();
        self.phase = Phase::Done;
        // What is still parked waits for a version the peer did not send.
        let parked: Vec<Record> = self.parked.drain().flat_map(|(_, r)| r).collect();
        records.extend(order_for_put(parked));
        Progress {
            records,
            next: Next::Done(self.summary.clone()),
        }
    }

    /// Puts `records` in an order a store can put them in, holding back those whose previous
    /// version is still to come.
    fn release(&mut self, records: Vec<Record>) -> Vec<Record> {
        let mut out = Vec::with_capacity(records.len());
        for record in order_for_put(records) {
            match record.envelope().prev {
                Some(prev) if self.wanted.contains(&prev) && !self.delivered.contains(&prev) => {
                    self.parked.entry(prev).or_default().push(record);
                }
                _ => self.deliver(record, &mut out),
            }
        }
        out
    }

    fn deliver(&mut self, record: Record, out: &mut Vec<Record>) {
        let mut stack = vec![record];
        while let Some(record) = stack.pop() {
            let cid = record.cid();
            self.delivered.insert(cid);
            out.push(record);
            if let Some(children) = self.parked.remove(&cid) {
                stack.extend(children);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::{
        item_of, serve,
        testing::{MemStore, posts},
    };

    /// Runs a catch-up of `have` against `peer` to the end.
    fn drive(
        topic: GossipTopic,
        have: &[Record],
        peer: &MemStore,
        config: &Config,
    ) -> Result<(Vec<Record>, Summary), SyncError> {
        let set: SyncSet = have.iter().map(item_of).collect();
        let (mut catch_up, mut request) = CatchUp::new(topic, &set, config)?;
        let mut got = Vec::new();
        loop {
            let progress = catch_up.handle(serve(peer, request, config))?;
            got.extend(progress.records);
            match progress.next {
                Next::Send(next) => request = next,
                Next::Done(summary) => {
                    assert_eq!(&summary, catch_up.summary());
                    return Ok((got, summary));
                }
            }
        }
    }

    /// Every record comes after the version it replaces, whether stored before or received.
    fn assert_puttable(have: &[Record], got: &[Record]) {
        let mut stored: HashSet<Cid> = have.iter().map(Record::cid).collect();
        for r in got {
            if let Some(prev) = r.envelope().prev {
                assert!(stored.contains(&prev), "{} before {prev}", r.cid());
            }
            stored.insert(r.cid());
        }
    }

    #[test]
    fn catches_up_in_an_order_a_store_can_put() {
        let (topic, records) = posts(300);
        let peer = MemStore::new(topic, &records);
        // Lacks every fourth version, originals and edits alike; small batches so that an
        // edit can arrive before the post it edits.
        let (have, lack): (Vec<_>, Vec<_>) =
            records.iter().enumerate().partition(|(i, _)| i % 4 != 0);
        let have: Vec<Record> = have.into_iter().map(|(_, r)| r.clone()).collect();
        let lack: Vec<Record> = lack.into_iter().map(|(_, r)| r.clone()).collect();
        let config = Config {
            max_fetch_cids: 8,
            ..Config::default()
        };
        let (got, summary) = drive(topic, &have, &peer, &config).unwrap();
        let mut want: Vec<Cid> = lack.iter().map(Record::cid).collect();
        let mut cids: Vec<Cid> = got.iter().map(Record::cid).collect();
        want.sort();
        cids.sort();
        assert_eq!(cids, want);
        assert_puttable(&have, &got);
        assert_eq!((summary.needed, summary.received), (lack.len(), lack.len()));
        assert!(summary.missing.is_empty() && summary.have.is_empty());
        let block_bytes: usize = lack.iter().map(|r| r.bytes().len()).sum();
        assert_eq!(summary.block_bytes, block_bytes as u64);
    }

    #[test]
    fn versions_the_peer_does_not_send_are_reported() {
        let (topic, records) = posts(50);
        let mut peer = MemStore::new(topic, &records);
        // The peer advertises post 0 but cannot send it; its edit still comes, last.
        peer.blocks.remove(&records[0].cid());
        let (got, summary) = drive(topic, &[], &peer, &Config::default()).unwrap();
        assert_eq!(summary.missing, vec![records[0].cid()]);
        assert_eq!(got.len(), records.len() - 1);
        assert_eq!(
            got.last().map(|r| r.envelope().prev),
            Some(Some(records[0].cid()))
        );
    }

    #[test]
    fn a_peer_in_sync_sends_nothing() {
        let (topic, records) = posts(50);
        let peer = MemStore::new(topic, &records);
        let (got, summary) = drive(topic, &records, &peer, &Config::default()).unwrap();
        assert!(got.is_empty());
        assert_eq!((summary.needed, summary.rounds), (0, 1));
    }

    #[test]
    fn a_refusal_ends_the_catch_up() {
        let (topic, records) = posts(5);
        let peer = MemStore::default();
        let err = drive(topic, &records, &peer, &Config::default()).unwrap_err();
        assert!(
            matches!(err, SyncError::Remote(ref m) if m.contains("not kept")),
            "{err}"
        );
        let set = SyncSet::default();
        let (mut catch_up, _) = CatchUp::new(topic, &set, &Config::default()).unwrap();
        let err = catch_up
            .handle(Response::Blocks { blocks: vec![] })
            .unwrap_err();
        assert!(matches!(err, SyncError::UnexpectedResponse(_)));
        assert!(matches!(
            catch_up.handle(Response::Reconcile { msg: vec![0x61] }),
            Err(SyncError::Finished)
        ));
    }
}

//! Fetching the versions reconciliation found missing, IO-free.

use std::collections::VecDeque;

use mnode_dag::{Cid, Record, RecordError};

use super::{Config, Request, Response, SyncError};

/// The client side of fetching a list of record versions from one peer, a bounded batch per
/// request. Every block received is decoded and verified (strict encoding, signature, and that
/// it is the version asked for) before it is handed out.
#[derive(Debug)]
pub struct Fetcher {
    queue: VecDeque<Cid>,
    in_flight: Vec<Cid>,
    missing: Vec<Cid>,
    batch: usize,
    received: usize,
    bytes_received: u64,
}

impl Fetcher {
    /// A fetch of `cids`, in that order.
    pub fn new(cids: Vec<Cid>, config: &Config) -> Self {
        Self {
            queue: cids.into(),
            in_flight: Vec::new(),
            missing: Vec::new(),
            batch: config.fetch_cids(),
            received: 0,
            bytes_received: 0,
        }
    }

    /// The next request to send, or `None` when every CID was received or found missing.
    /// While a request is unanswered this returns it again (to retry it, here or elsewhere).
    pub fn next_request(&mut self) -> Option<Request> {
        if self.in_flight.is_empty() {
            let n = self.batch.min(self.queue.len());
            self.in_flight.extend(self.queue.drain(..n));
        }
        if self.in_flight.is_empty() {
            return None;
        }
        Some(Request::Fetch {
            cids: self.in_flight.clone(),
        })
    }

    /// Takes the answer to the last request, returning the verified records in it.
    ///
    /// If the answer is refused (an error response, a bad or unasked-for block) nothing of it is
    /// kept and the request stays unanswered.
    pub fn handle(&mut self, response: Response) -> Result<Vec<Record>, SyncError> {
        self.handle_with(response, Record::decode_batch)
    }

    /// As [`Fetcher::handle`], decoding and verifying the blocks with `decode`, which returns
    /// one result per block, in order, each what [`Record::decode_owned`] gives for it (as
    /// [`Record::decode_batch`] does): for a caller that spreads the work over threads.
    pub fn handle_with(
        &mut self,
        response: Response,
        decode: impl FnOnce(Vec<Vec<u8>>) -> Vec<Result<Record, RecordError>>,
    ) -> Result<Vec<Record>, SyncError> {
        let blocks = match response {
            Response::Blocks { blocks } => blocks,
            Response::Error { message } => return Err(SyncError::Remote(message)),
            Response::Reconcile { .. } => return Err(SyncError::UnexpectedResponse("fetch")),
        };
        if self.in_flight.is_empty() {
            return Err(SyncError::Finished);
        }
        let bytes: u64 = blocks.iter().map(|b| b.len() as u64).sum();
        // The signatures are checked together (a bad one still fails alone).
        let decoded = decode(blocks.into_iter().map(|b| b.into_vec()).collect());
        let mut records = Vec::with_capacity(decoded.len());
        let mut sent = vec![false; self.in_flight.len()];
        let mut next = 0;
        for record in decoded {
            let record = record?;
            let cid = record.cid();
            let Some(at) = self.in_flight[next..].iter().position(|c| *c == cid) else {
                return Err(if self.in_flight.contains(&cid) {
                    SyncError::OutOfOrder(cid)
                } else {
                    SyncError::UnexpectedBlock(cid)
                });
            };
            sent[next + at] = true;
            next += at + 1;
            records.push(record);
        }
        // The server skips what it lacks and stops when its budget is spent: what it skipped
        // before the last block it sent it does not have; what comes after, it may.
        let asked = std::mem::take(&mut self.in_flight);
        let reached = if records.is_empty() {
            asked.len()
        } else {
            next
        };
        for (i, cid) in asked.iter().enumerate().take(reached) {
            if !sent[i] {
                self.missing.push(*cid);
            }
        }
        for cid in asked[reached..].iter().rev() {
            self.queue.push_front(*cid);
        }
        self.received += records.len();
        self.bytes_received += bytes;
        Ok(records)
    }

    /// Whether every CID was received or found missing.
    pub fn is_done(&self) -> bool {
        self.queue.is_empty() && self.in_flight.is_empty()
    }

    /// CIDs the peer turned out not to have.
    pub fn missing(&self) -> &[Cid] {
        &self.missing
    }

    /// How many records were received.
    pub fn received(&self) -> usize {
        self.received
    }

    /// Bytes of blocks received.
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received
    }
}

/// Orders records so that each comes after the version it replaces (by sequence number, then
/// CID), key logs' versions (`core.keys`) come first, then groups' versions, then the records
/// that cite them: the order a store that checks version chains, key rules and group rules
/// can put them in.
pub fn order_for_put(mut records: Vec<Record>) -> Vec<Record> {
    records.sort_by_cached_key(|r| {
        let rank = match r.kind() {
            mnode_dag::key_log::KEYS_KIND => 0u8,
            mnode_dag::group::GROUP_KIND => 1,
            _ => 2,
        };
        (rank, r.seq(), r.cid().to_bytes())
    });
    records
}

#[cfg(test)]
mod tests {
    use serde_bytes::ByteBuf;

    use super::*;
    use crate::sync::testing::posts;

    fn blocks(records: &[&Record]) -> Response {
        Response::Blocks {
            blocks: records
                .iter()
                .map(|r| ByteBuf::from(r.bytes().to_vec()))
                .collect(),
        }
    }

    fn asked(request: Option<Request>) -> Vec<Cid> {
        match request {
            Some(Request::Fetch { cids }) => cids,
            other => panic!("expected a fetch, got {other:?}"),
        }
    }

    #[test]
    fn fetches_in_batches_and_asks_again_for_the_rest() {
        let (_, records) = posts(10);
        let cids: Vec<Cid> = records[..10].iter().map(Record::cid).collect();
        let config = Config {
            max_fetch_cids: 4,
            ..Config::default()
        };
        let mut fetcher = Fetcher::new(cids.clone(), &config);
        let first = asked(fetcher.next_request());
        assert_eq!(first, cids[..4]);
        // Unanswered: the same request again.
        assert_eq!(asked(fetcher.next_request()), first);
        // The server lacks 1 and its budget ran out after 2.
        let got = fetcher.handle(blocks(&[&records[0], &records[2]])).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(fetcher.missing(), &cids[1..2]);
        assert_eq!(asked(fetcher.next_request()), cids[3..7]);
        // Nothing at all: the server has none of them.
        assert!(fetcher.handle(blocks(&[])).unwrap().is_empty());
        assert_eq!(fetcher.missing().len(), 5);
        assert_eq!(asked(fetcher.next_request()), cids[7..]);
        let got = fetcher.handle(blocks(&[
            &records[7],
            &records[8],
            &records[9],
            &records[10],
        ]));
        assert!(matches!(got, Err(SyncError::UnexpectedBlock(c)) if c == records[10].cid()));
        let got = fetcher.handle(blocks(&[&records[8], &records[7]]));
        assert!(matches!(got, Err(SyncError::OutOfOrder(c)) if c == cids[7]));
        let got = fetcher.handle(blocks(&[&records[7], &records[7]]));
        assert!(matches!(got, Err(SyncError::OutOfOrder(_))));
        let got = fetcher.handle(Response::Blocks {
            blocks: vec![ByteBuf::from(b"\xa0".to_vec())],
        });
        assert!(matches!(got, Err(SyncError::BadRecord(_))));
        let got = fetcher.handle(Response::Error {
            message: "busy".into(),
        });
        assert!(matches!(got, Err(SyncError::Remote(m)) if m == "busy"));
        let got = fetcher.handle(Response::Reconcile { msg: vec![0x61] });
        assert!(matches!(got, Err(SyncError::UnexpectedResponse(_))));
        // Refused answers changed nothing.
        assert_eq!(asked(fetcher.next_request()), cids[7..]);
        let got = fetcher.handle(blocks(&[&records[7], &records[8], &records[9]]));
        assert_eq!(got.unwrap().len(), 3);
        assert!(fetcher.is_done());
        assert_eq!(fetcher.next_request(), None);
        assert_eq!(fetcher.received(), 5);
        assert!(matches!(
            fetcher.handle(blocks(&[])),
            Err(SyncError::Finished)
        ));
    }

    #[test]
    fn a_tampered_block_is_refused() {
        let (_, records) = posts(1);
        let mut bytes = records[0].bytes().to_vec();
        let n = bytes.len();
        bytes[n - 1] ^= 1;
        let mut fetcher = Fetcher::new(vec![records[0].cid()], &Config::default());
        fetcher.next_request();
        let got = fetcher.handle(Response::Blocks {
            blocks: vec![ByteBuf::from(bytes)],
        });
        assert!(matches!(got, Err(SyncError::BadRecord(_))), "{got:?}");
    }

    #[test]
    fn versions_are_ordered_after_the_versions_they_replace() {
        let (_, records) = posts(20);
        let mut shuffled = records.clone();
        shuffled.reverse();
        let ordered = order_for_put(shuffled);
        assert_eq!(ordered.len(), records.len());
        for (i, r) in ordered.iter().enumerate() {
            if let Some(prev) = r.envelope().prev {
                assert!(ordered[..i].iter().any(|p| p.cid() == prev));
            }
        }
    }
}

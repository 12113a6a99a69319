//! Answering sync requests from a node's store, IO-free.

use mnode_dag::{Cid, record::MAX_RECORD_BYTES};
use serde_bytes::ByteBuf;

use super::{Config, MAX_FETCH_CIDS, Request, Response, SyncError, respond, set::SyncSet};
use crate::GossipTopic;

/// What a node's store provides to answer sync requests. Calls may block on disk: run
/// [`serve`] off the event loop.
pub trait Store {
    /// Why the store could not be read. It is logged, not sent to the peer.
    type Error: std::fmt::Display;

    /// This node's sync set of `topic`, or `None` if it keeps none for it. Called once per
    /// reconciliation round; a store that reads it from disk may keep it while it is current.
    fn sync_set(&self, topic: &GossipTopic) -> Result<Option<SyncSet>, Self::Error>;

    /// The bytes of a record version, or `None` if this node does not hold it.
    fn block(&self, cid: &Cid) -> Result<Option<Vec<u8>>, Self::Error>;
}

/// The answer to `request` from `store`. Refusals become [`Response::Error`].
///
/// A fetch is answered with the blocks asked for, in the order asked, skipping those not
/// held, and stopping before the block that would take the answer over
/// [`Config::max_blocks_bytes`] (the first block is always sent).
pub fn serve<S: Store + ?Sized>(store: &S, request: Request, config: &Config) -> Response {
    let answer = match request {
        Request::Reconcile { topic, msg } => reconcile(store, &topic, &msg, config),
        Request::Fetch { cids } => fetch(store, &cids, config),
    };
    answer.unwrap_or_else(|e| Response::Error {
        message: e.to_string(),
    })
}

fn reconcile<S: Store + ?Sized>(
    store: &S,
    topic: &str,
    msg: &[u8],
    config: &Config,
) -> Result<Response, SyncError> {
    let parsed: GossipTopic = topic.parse()?;
    let set = store
        .sync_set(&parsed)
        .map_err(store_error)?
        .ok_or_else(|| SyncError::UnknownTopic(topic.to_owned()))?;
    let msg = respond(&set, msg, config)?;
    Ok(Response::Reconcile { msg })
}

fn fetch<S: Store + ?Sized>(
    store: &S,
    cids: &[Cid],
    config: &Config,
) -> Result<Response, SyncError> {
    if cids.len() > MAX_FETCH_CIDS {
        return Err(SyncError::TooManyCids {
            count: cids.len(),
            max: MAX_FETCH_CIDS,
        });
    }
    let budget = config.blocks_bytes();
    let mut total = 0;
    let mut blocks = Vec::new();
    for cid in cids {
        // Anything larger cannot be a record, and would break the response size bound.
        let block = store.block(cid).map_err(store_error)?;
        let Some(block) = block.filter(|b| b.len() <= MAX_RECORD_BYTES) else {
            continue;
        };
        if !blocks.is_empty() && total + block.len() > budget {
            break;
        }
        total += block.len();
        blocks.push(ByteBuf::from(block));
    }
    Ok(Response::Blocks { blocks })
}

fn store_error(e: impl std::fmt::Display) -> SyncError {
    tracing::warn!("sync: cannot read the store: {e}");
    SyncError::Store
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::{
        Fetcher,
        testing::{MemStore, posts},
    };

    #[test]
    fn fetches_stay_within_the_byte_budget() {
        let (topic, records) = posts(400);
        let store = MemStore::new(topic, &records);
        let config = Config {
            max_blocks_bytes: 0,
            ..Config::default()
        };
        let cids: Vec<Cid> = records.iter().map(|r| r.cid()).collect();
        let mut fetcher = Fetcher::new(cids, &config);
        let mut rounds = 0;
        while let Some(request) = fetcher.next_request() {
            rounds += 1;
            let response = serve(&store, request, &config);
            let Response::Blocks { blocks } = &response else {
                panic!("{response:?}");
            };
            let bytes: usize = blocks.iter().map(|b| b.len()).sum();
            assert!(bytes <= config.blocks_bytes());
            fetcher.handle(response).unwrap();
        }
        assert_eq!(fetcher.received(), records.len());
        assert!(fetcher.missing().is_empty());
        assert!(rounds > 1);
    }

    #[test]
    fn blocks_not_held_are_skipped() {
        let (topic, records) = posts(5);
        let store = MemStore::new(topic, &records[..3]);
        let cids = records.iter().map(|r| r.cid()).collect();
        let response = serve(&store, Request::Fetch { cids }, &Config::default());
        assert!(matches!(response, Response::Blocks { blocks } if blocks.len() == 3));
    }

    #[test]
    fn refusals_say_why() {
        let (topic, records) = posts(2);
        let store = MemStore::new(topic, &records);
        let config = Config::default();
        let cids = vec![records[0].cid(); MAX_FETCH_CIDS + 1];
        let refusals = [
            (Request::Fetch { cids }, "over the limit"),
            (
                Request::Reconcile {
                    topic: "/mnode/1/feed/x".into(),
                    msg: vec![0x61],
                },
                "not an mnode topic",
            ),
            (
                Request::reconcile(&GossipTopic::Thread(records[0].cid()), vec![0x61]),
                "not kept here",
            ),
            (Request::reconcile(&topic, vec![0x00]), "malformed"),
        ];
        for (request, why) in refusals {
            match serve(&store, request, &config) {
                Response::Error { message } => assert!(message.contains(why), "{message}"),
                other => panic!("{other:?}"),
            }
        }
    }
}

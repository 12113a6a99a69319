//! Catch-up sync (`/mnode/sync/1`): a node that was offline, or that just followed a feed or
//! branch, gets every record version of a topic it lacks from a peer that has them, with
//! traffic that follows what is missing, not the history.
//!
//! The sync set of a [`GossipTopic`] is every stored record version in it, each named by an
//! [`Item`]: the version's `updated` time and the SHA-256 digest of its CID. Two peers find
//! the difference of their sets by range-based set reconciliation (negentropy): they exchange
//! fingerprints of ranges and split only the ranges that differ, so the bytes exchanged grow
//! with the size of the difference and the logarithm of the set, not with the set.
//!
//! One catch-up is a chain of request-response exchanges on one connection:
//!
//! 1. [`Request::Reconcile`] rounds until the client knows which versions it needs
//!    ([`Session`] on the client, [`respond`] on the server; each server answer is computed
//!    from the message alone, so the server keeps no state between rounds);
//! 2. [`Request::Fetch`] rounds for those versions, a bounded number of CIDs and bytes per
//!    round ([`Fetcher`] on the client, [`serve`] on the server); every block is decoded and
//!    verified (signature and CID) before it is handed on.
//!
//! [`CatchUp`] drives both phases and hands out records in an order a store can put them in
//! (a version after the version it replaces). Everything here is IO-free except
//! [`behaviour`], which builds the libp2p request-response behaviour that carries the
//! messages; the node's event loop joins the two.
//!
//! [`GossipTopic`]: crate::GossipTopic

mod client;
mod config;
mod fetch;
mod protocol;
mod reconcile;
mod server;
mod set;
#[cfg(test)]
mod testing;

use std::time::Duration;

use libp2p::request_response::{self, ProtocolSupport, cbor};
use mnode_dag::{Cid, RecordError};

pub use self::{
    client::{CatchUp, Next, Progress, Summary},
    config::Config,
    fetch::{Fetcher, order_for_put},
    protocol::{
        MAX_BLOCKS_BYTES, MAX_FETCH_CIDS, MAX_FRAME_BYTES, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES,
        MIN_FRAME_BYTES, PROTOCOL, Request, Response,
    },
    reconcile::{Session, Step, respond},
    server::{Store, serve},
    set::{Item, SyncSet, item_id, item_of, record_cid},
};
use crate::topic::TopicError;

/// The libp2p behaviour that carries sync messages (request-response with a CBOR codec).
pub type Behaviour = cbor::Behaviour<Request, Response>;

/// What [`Behaviour`] reports to the swarm's owner.
pub type Event = request_response::Event<Request, Response>;

/// The sync behaviour for `config`.
///
/// Incoming messages are read up to the protocol's maximums ([`MAX_REQUEST_BYTES`],
/// [`MAX_RESPONSE_BYTES`]) whatever this node's own limits are, so that peers with other
/// settings still understand each other.
pub fn behaviour(config: &Config) -> Behaviour {
    let codec = cbor::codec::Codec::default()
        .set_request_size_maximum(MAX_REQUEST_BYTES as u64)
        .set_response_size_maximum(MAX_RESPONSE_BYTES as u64);
    let rr = request_response::Config::default()
        .with_request_timeout(Duration::from_secs(config.request_timeout_secs.max(1)))
        .with_max_concurrent_streams(config.max_concurrent_streams.max(1));
    Behaviour::with_codec(codec, [(PROTOCOL, ProtocolSupport::Full)], rr)
}

/// Why a sync exchange failed. Whatever a peer sends, the result is one of these, never a
/// panic.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// A reconciliation message could not be read or does not fit the protocol.
    #[error("malformed reconciliation message: {0}")]
    Malformed(String),
    /// The peer kept the reconciliation going longer than [`Config::max_rounds`].
    #[error("reconciliation did not finish within {0} rounds")]
    TooManyRounds(u32),
    /// A message came after the session or fetch had finished.
    #[error("the sync session has already finished")]
    Finished,
    /// The topic named in a request is not an mnode topic.
    #[error(transparent)]
    Topic(#[from] TopicError),
    /// This node could not read its store (the cause is logged, not sent).
    #[error("the node could not read its store")]
    Store,
    /// This node keeps no sync set for the topic.
    #[error("topic {0} is not kept here")]
    UnknownTopic(String),
    /// A fetch asked for more CIDs than the protocol allows.
    #[error("a fetch of {count} CIDs is over the limit of {max}")]
    TooManyCids {
        /// How many were asked for.
        count: usize,
        /// The most one request may ask for.
        max: usize,
    },
    /// The peer sent a block that was not asked for.
    #[error("peer sent block {0}, which was not asked for")]
    UnexpectedBlock(Cid),
    /// The peer sent blocks out of the order they were asked in, or one twice.
    #[error("peer sent block {0} out of order or twice")]
    OutOfOrder(Cid),
    /// A block failed to decode or verify as a signed record.
    #[error("peer sent a bad record: {0}")]
    BadRecord(#[from] RecordError),
    /// The answer does not match the request (blocks to a reconcile request, or the reverse).
    #[error("peer answered a {0} request with the wrong kind of response")]
    UnexpectedResponse(&'static str),
    /// The peer answered with an error.
    #[error("peer refused: {0}")]
    Remote(String),
}

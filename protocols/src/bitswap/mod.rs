//! Bitswap 1.2.0 (`/ipfs/bitswap/1.2.0`), so that IPFS peers (Helia, Kubo) can fetch mnode
//! blocks and mnode can fetch missing blocks from any peer.
//!
//! - [`protocol`]: the protobuf message, CID prefixes and length-prefixed framing.
//! - [`engine`]: the IO-free state machine ([`State::handle`] turns an [`Event`] into
//!   [`Action`]s): answering wants from a [`BlockSource`], remembering wants for missing
//!   blocks, and fetching with verification.
//! - [`Bitswap`]: the service running the engine over a `libp2p_stream::Control`; the node
//!   composes `libp2p_stream::Behaviour` into its swarm and hands the control over.
//!
//! ```no_run
//! # async fn demo(control: libp2p_stream::Control, peer: libp2p::PeerId, cid: mnode_dag::Cid)
//! # -> Result<(), Box<dyn std::error::Error>> {
//! use std::{sync::Arc, time::Duration};
//! use mnode_protocols::bitswap::{Bitswap, Config, MemoryBlocks};
//!
//! let bitswap = Bitswap::spawn(control, Arc::new(MemoryBlocks::new()), Config::default())?;
//! let block = bitswap.fetch(cid, vec![peer], Duration::from_secs(30)).await?;
//! # Ok(()) }
//! ```

mod config;
pub mod engine;
pub mod protocol;
mod service;
mod source;

pub use self::{
    config::Config,
    engine::{Action, Event, FetchError, Misbehaviour, RequestId, State},
    protocol::{MAX_MESSAGE_SIZE, Message, PROTOCOL, PROTOCOL_1_1_0},
    service::{Bitswap, Misbehaved, NotifyError, SpawnError},
    source::{BlockSource, MemoryBlocks},
};

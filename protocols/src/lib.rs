#![doc = include_str!("../README.md")]

pub mod bitswap;
pub mod blobs;
pub mod gossip;
pub mod sync;
pub mod topic;

pub use crate::topic::GossipTopic;

#![doc = include_str!("../README.md")]

pub mod accounts;
pub mod blobs;
pub mod car;
/// `mnode.yaml` (its own crate, so that tools and the fuzzer read it without the store).
pub use mnode_config as config;
pub mod keystore;
pub mod maintenance;
pub mod node;
pub mod peers;
pub mod repo;
pub mod sessions;
pub mod store;

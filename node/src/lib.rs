#![doc = include_str!("../README.md")]

pub mod accounts;
pub mod blobs;
pub mod car;
pub mod config;
pub mod keystore;
pub mod maintenance;
pub mod node;
pub mod peers;
pub mod repo;
pub mod sessions;
pub mod store;

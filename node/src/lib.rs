#![doc = include_str!("../README.md")]

pub mod accounts;
mod authority;
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
pub mod unixfs;

/// What an error says when the disk that holds the repo is full. The record store and the blob
/// store both answer with it ([`store::StoreError::DiskFull`], [`blobs::BlobError::DiskFull`]),
/// and the API answers it with 507 Insufficient Storage.
pub const DISK_FULL: &str = "the disk that holds the repo is full, so nothing was written; \
                             free some space on it: writes work again by themselves once there \
                             is room";

/// Whether an error's text says that a disk is full: the system's words for ENOSPC and EDQUOT,
/// as Rust and RocksDB print them, or [`DISK_FULL`]. For callers that only have an error's
/// text; code holding the error itself matches the `DiskFull` variants.
pub fn says_disk_full(text: &str) -> bool {
    text.contains("No space left on device")
        || text.contains("Disk quota exceeded")
        || text.contains(DISK_FULL)
}

/// Whether an I/O error means that the disk is full (or the quota used up).
pub(crate) fn disk_full(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

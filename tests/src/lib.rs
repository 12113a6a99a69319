//! What crosses crate lines in mnode's tests: the fuzz entry points.
//!
//! Each function in [`fuzz`] takes bytes from a stranger and hands them to one decoder the node
//! runs on outside input. It must return for every input, without a panic, and where a decoder
//! accepts something it checks what acceptance promises (strict DAG-CBOR re-encodes to the
//! same bytes; a record re-reads as itself). `tests/tests/corpus.rs` replays every committed
//! seed and crash file through them on each `cargo test`.

pub mod fuzz;

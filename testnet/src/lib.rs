//! The mnode testnet: many real nodes on one machine, linked in a chosen [`Topology`], with
//! faults (stop and start, partitions, a hostile peer), scenarios that measure what the
//! network does, and reports with plots.
//!
//! ```no_run
//! # async fn f() -> anyhow::Result<()> {
//! use mnode_testnet::{Testnet, Topology};
//! let net = Testnet::builder()
//!     .nodes(8)
//!     .seed(7)
//!     .topology(Topology::RandomRegular { degree: 3 })
//!     .spawn()
//!     .await?;
//! let alice = net.author(0);
//! // … follow, publish, stop, start, partition, heal; read `net.ledger()` …
//! net.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! The scenarios in [`scenario`] are also the `mnode-testnet` binary's subcommands.

mod daemon;
mod hostile;
mod net;
pub mod plot;
pub mod report;
pub mod scenario;
pub mod topology;

pub use hostile::{HostilePeer, HostileStats};
pub use net::{Builder, Ledger, Publisher, Testnet};
pub use report::Report;
pub use topology::Topology;

#![doc = include_str!("../README.md")]

pub mod authority;
pub mod car;
pub mod cbor;
pub mod cids;
/// Rich text: ProseMirror documents in the prosemirror-markdown schema, and Markdown.
pub mod doc;
pub mod example;
pub mod files;
pub mod group;
pub mod json;
pub mod key_log;
pub mod keys;
pub mod model;
pub mod private;
pub mod query;
pub mod record;
pub mod registry;
pub mod sealed_file;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod unixfs;
pub mod verify;
pub mod walk;
pub mod when;

pub use cid::Cid;
pub use ipld_core::ipld::Ipld;

pub use crate::{
    keys::{Did, Keypair},
    model::{Link, TitleData},
    record::{Draft, Envelope, Record, RecordError, VersionInfo},
    registry::{KINDS, KindInfo, Model},
};

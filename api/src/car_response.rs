//! CAR answers of the trustless gateway: `?format=car` or `Accept: application/vnd.ipld.car`.
//!
//! A CAR v1 whose one root is the requested CID, blocks in depth-first pre-order (links in the
//! order of their canonical encoding), streamed as the walk goes: record blocks are read from
//! the store on the blocking pool, files from the blob store chunk by chunk, so nothing larger
//! than one record block is held in memory.
//!
//! - `dag-scope=block`: the root block. `entity`: the same, since a record is not UnixFS and a
//!   file is one block. `all` (the default): the root and everything its links reach.
//! - `entity-bytes=from:to` implies `entity` (another explicit scope is refused). A file is
//!   one block, so every range of it is that block; a range wholly past the end of a non-empty
//!   file is a 400. On anything else it is ignored, as the spec says.
//! - `car-version` must be 1, `car-order` `dfs` or `unk` (both get `dfs`), `car-dups` `n` (the
//!   default: each block once) or `y` (a block again wherever the walk meets it). The query
//!   wins over the parameters of the `Accept` media range; the answer's `Content-Type` names
//!   what was produced.
//! - A file travels as one raw block named by its BLAKE3 CID, the only block that CID can be
//!   verified against. Files up to [`MAX_CAR_FILE`] (what `mnode dag import` takes back) are
//!   served; a larger root file is a 406, a larger linked one ends the stream. Clients that
//!   cap blocks at the usual 2 MiB (Helia, boxo) reject files above that and should fetch the
//!   file itself, which is checked against its BLAKE3 tree as it is read.
//! - A file's UnixFS view (`mnode_dag::unixfs`) is walked when the root is one of its blocks:
//!   its dag-pb nodes and its 1 MiB raw leaves, read out of the file's blob. A record's link to
//!   a view is left out of the record's CAR, since the blob link beside it brings the same
//!   bytes (see `docs/decisions.md`, "UnixFS views").
//! - Identity CIDs name no stored block and are left out of the CAR, as the spec asks
//!   (`/ipfs/bafkqaaa?format=car` is the CAR header alone).
//! - The root missing is a 404 before anything is sent. A linked block missing, or a failure
//!   once the `200` has gone out, is logged and ends the body with an error, so the client
//!   sees a truncated CAR rather than a complete-looking wrong one.

use std::{collections::HashSet, io, sync::Arc};

use axum::body::{Body, Bytes};
use futures::StreamExt as _;
use mnode_dag::{
    Cid,
    car::CarWriter,
    cids::{self, LinkKind},
    unixfs, walk,
};
use mnode_node::{blobs::BlobError, node::NodeHandle, store::StoreError};
use tokio::sync::mpsc;

use crate::ApiError;

/// The CAR media type.
pub(crate) const CAR: &str = "application/vnd.ipld.car";
/// The largest file sent as one CAR block (the most `mnode dag import` accepts).
pub(crate) const MAX_CAR_FILE: u64 = mnode_node::car::MAX_IMPORT_BLOCK;
/// With `dups=y` a DAG that shares blocks can grow exponentially; stop after this many.
const MAX_DUP_BLOCKS: u64 = 100_000;
/// Small blocks are gathered into chunks of about this size before they are sent.
const CHUNK: usize = 64 << 10;
/// Chunks in flight between the walk and the socket.
const CHANNEL: usize = 8;

/// Which part of the DAG under the root goes into the CAR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Block,
    Entity,
    All,
}

impl Scope {
    fn name(self) -> &'static str {
        match self {
            Self::Block => "block",
            Self::Entity => "entity",
            Self::All => "all",
        }
    }
}

/// `entity-bytes=from:to`: offsets, negative from the end, `to` `None` for `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EntityBytes {
    from: i64,
    to: Option<i64>,
}

impl EntityBytes {
    fn parse(text: &str) -> Option<Self> {
        let (a, b) = text.split_once(':')?;
        let from: i64 = a.parse().ok()?;
        let to = match b {
            "*" => None,
            b => Some(b.parse::<i64>().ok()?),
        };
        // Both from the start: the end must not come before the beginning.
        if let Some(to) = to
            && from >= 0
            && to >= 0
            && to < from
        {
            return None;
        }
        Some(Self { from, to })
    }

    /// Whether the range starts past the end of a non-empty entity of `size` bytes.
    pub(crate) fn outside(self, size: u64) -> bool {
        size > 0 && u64::try_from(self.from).is_ok_and(|from| from >= size)
    }

    fn text(self) -> String {
        match self.to {
            Some(to) => format!("{}:{to}", self.from),
            None => format!("{}:*", self.from),
        }
    }
}

/// What a CAR request asked for, once checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CarParams {
    pub(crate) scope: Scope,
    pub(crate) entity_bytes: Option<EntityBytes>,
    pub(crate) dups: bool,
}

/// The CAR parameters of a request as given: the query's, then the `Accept` media range's.
#[derive(Debug, Default)]
pub(crate) struct CarRequest<'a> {
    pub(crate) dag_scope: Option<&'a str>,
    pub(crate) entity_bytes: Option<&'a str>,
    pub(crate) version: Option<&'a str>,
    pub(crate) order: Option<&'a str>,
    pub(crate) dups: Option<&'a str>,
}

impl CarParams {
    /// Checks what was asked; a 400 names the parameter that cannot be served.
    pub(crate) fn parse(r: &CarRequest<'_>) -> Result<Self, ApiError> {
        check_media_params(r.version, r.order, r.dups)?;
        let dups = r.dups == Some("y");
        let entity_bytes = match r.entity_bytes {
            None => None,
            Some(t) => Some(EntityBytes::parse(t).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "entity-bytes={t} is not a range: use from:to with integers (negative from \
                     the end) and `*` for the end, like 0:1023 or -1024:*"
                ))
            })?),
        };
        let scope = match r.dag_scope {
            None if entity_bytes.is_some() => Scope::Entity,
            None | Some("all") => Scope::All,
            Some("entity") => Scope::Entity,
            Some("block") => Scope::Block,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "dag-scope={other} is not one of block, entity, all"
                )));
            }
        };
        if entity_bytes.is_some() && scope != Scope::Entity {
            return Err(ApiError::bad_request(
                "entity-bytes implies dag-scope=entity; drop the other dag-scope",
            ));
        }
        Ok(Self {
            scope,
            entity_bytes,
            dups,
        })
    }

    /// The answer's `Content-Type`, naming what is produced.
    pub(crate) fn content_type(&self) -> String {
        let dups = if self.dups { "y" } else { "n" };
        format!("{CAR}; version=1; order=dfs; dups={dups}")
    }

    /// An `ETag` that differs whenever the bytes would.
    pub(crate) fn etag(&self, cid: &Cid) -> String {
        let dups = if self.dups { "y" } else { "n" };
        let bytes = self
            .entity_bytes
            .map(|b| format!(".bytes={}", b.text()))
            .unwrap_or_default();
        format!(
            "\"{cid}.car.v1.dfs.dups={dups}.{}{bytes}\"",
            self.scope.name()
        )
    }
}

/// Checks the parameters of a CAR media type (or the matching query parameters): a 400 names
/// the one that cannot be served.
pub(crate) fn check_media_params(
    version: Option<&str>,
    order: Option<&str>,
    dups: Option<&str>,
) -> Result<(), ApiError> {
    if let Some(v) = version.filter(|v| *v != "1") {
        return Err(ApiError::bad_request(format!(
            "CAR version {v} is not served; only version 1"
        )));
    }
    if let Some(o) = order.filter(|o| !matches!(*o, "dfs" | "unk" | "")) {
        return Err(ApiError::bad_request(format!(
            "CAR order {o} is not served; use dfs or unk"
        )));
    }
    if let Some(d) = dups.filter(|d| !matches!(*d, "y" | "n")) {
        return Err(ApiError::bad_request(format!(
            "CAR dups={d} is not one of y, n"
        )));
    }
    Ok(())
}

/// Why a CAR stream ended early.
#[derive(Debug, thiserror::Error)]
enum StreamError {
    #[error("linked block {0} is not on this node")]
    Missing(Cid),
    #[error(
        "linked file {cid} has {size} bytes, more than the {MAX_CAR_FILE} a CAR block may hold"
    )]
    TooLarge { cid: Cid, size: u64 },
    #[error("file {cid} gave {got} bytes, expected {size}")]
    ShortFile { cid: Cid, got: u64, size: u64 },
    #[error("block {cid} does not decode: {error}")]
    Decode {
        cid: Cid,
        error: mnode_dag::cbor::DecodeError,
    },
    #[error("UnixFS view: {0}")]
    View(String),
    #[error("more than {MAX_DUP_BLOCKS} blocks with dups=y")]
    TooManyDups,
    #[error("the client went away")]
    Closed,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error(transparent)]
    Join(#[from] tokio::task::JoinError),
}

/// The CAR of `root` (which the caller has checked the node holds) as a streamed body.
pub(crate) fn body(node: NodeHandle, root: Cid, params: CarParams) -> Body {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(CHANNEL);
    tokio::spawn(async move {
        let sink = Sink { tx: &tx };
        let result = match CarWriter::new(Vec::with_capacity(CHUNK), &[root]) {
            Ok(mut car) => match write(&node, root, params, &mut car, &sink).await {
                Ok(()) => match car.finish() {
                    Ok(rest) => sink.send(rest).await,
                    Err(e) => Err(e.into()),
                },
                Err(e) => {
                    // The whole blocks gathered so far go out before the error.
                    if let Ok(rest) = car.finish() {
                        let _ = sink.send(rest).await;
                    }
                    Err(e)
                }
            },
            Err(e) => Err(e.into()),
        };
        match result {
            Ok(()) | Err(StreamError::Closed) => {}
            Err(e) => {
                tracing::warn!("CAR of {root} ended early: {e}");
                // Ends the body in error: the client sees a truncated CAR.
                let _ = tx.send(Err(io::Error::other(e.to_string()))).await;
            }
        }
    });
    Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

/// Hands chunks to the body.
struct Sink<'a> {
    tx: &'a mpsc::Sender<io::Result<Bytes>>,
}

impl Sink<'_> {
    async fn send(&self, bytes: impl Into<Bytes>) -> Result<(), StreamError> {
        let bytes = bytes.into();
        if bytes.is_empty() {
            return Ok(());
        }
        self.tx
            .send(Ok(bytes))
            .await
            .map_err(|_| StreamError::Closed)
    }
}

/// Walks the DAG from `root` depth-first, writing each block to `car` (whose buffer goes to
/// `sink` whenever it has grown enough, and before every file).
async fn write(
    node: &NodeHandle,
    root: Cid,
    params: CarParams,
    car: &mut CarWriter<Vec<u8>>,
    sink: &Sink<'_>,
) -> Result<(), StreamError> {
    let repo = Arc::clone(node.repo());
    let blobs = node.blobs();
    let links_wanted = params.scope == Scope::All;
    let in_view = cids::link_kind(&root) == LinkKind::UnixFs;
    let mut seen = HashSet::new();
    let mut stack = vec![root];
    let mut sent = 0u64;
    while let Some(cid) = stack.pop() {
        if !seen.insert(cid) && !params.dups {
            continue;
        }
        if cid.hash().code() == cids::IDENTITY {
            // Virtual: its bytes are in the CID, so it is left out, but its links are not.
            if links_wanted {
                let links = links_of(&cid, cid.hash().digest())?;
                stack.extend(links.into_iter().rev());
            }
            continue;
        }
        sent += 1;
        if params.dups && sent > MAX_DUP_BLOCKS {
            return Err(StreamError::TooManyDups);
        }
        if cids::link_kind(&cid) == LinkKind::Blob {
            let size = blobs.size(&cid).await?.ok_or(StreamError::Missing(cid))?;
            if size > MAX_CAR_FILE {
                return Err(StreamError::TooLarge { cid, size });
            }
            let mut chunks = blobs.read_range(&cid, 0, None).await?;
            let out = car.begin_block(&cid, size)?;
            sink.send(std::mem::take(out)).await?;
            let mut got = 0u64;
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk?;
                got += chunk.len() as u64;
                if got > size {
                    break;
                }
                sink.send(chunk).await?;
            }
            if got != size {
                return Err(StreamError::ShortFile { cid, got, size });
            }
            continue;
        }
        let (bytes, links) = if cids::link_kind(&cid) == LinkKind::UnixFs {
            // A record's link to its file's UnixFS view names the file its blob link brings
            // too; a view is walked only when it is what was asked for.
            if !in_view {
                continue;
            }
            let bytes = mnode_node::unixfs::view_block(repo.store(), blobs, &cid)
                .await
                .map_err(|e| StreamError::View(e.to_string()))?
                .ok_or(StreamError::Missing(cid))?;
            let links = if links_wanted && cid.codec() == cids::DAG_PB {
                unixfs::links(&bytes)
                    .map_err(|e| StreamError::View(format!("{cid}: {e}")))?
                    .into_iter()
                    .map(|(c, _)| c)
                    .collect()
            } else {
                Vec::new()
            };
            (bytes, links)
        } else {
            let r = Arc::clone(&repo);
            let bytes = tokio::task::spawn_blocking(move || r.store().block(&cid))
                .await??
                .ok_or(StreamError::Missing(cid))?;
            let links = if links_wanted {
                links_of(&cid, &bytes)?
            } else {
                Vec::new()
            };
            (bytes, links)
        };
        let out = car.begin_block(&cid, bytes.len() as u64)?;
        out.extend_from_slice(&bytes);
        if out.len() >= CHUNK {
            sink.send(std::mem::take(out)).await?;
        }
        stack.extend(links.into_iter().rev());
    }
    Ok(())
}

fn links_of(cid: &Cid, bytes: &[u8]) -> Result<Vec<Cid>, StreamError> {
    walk::block_links(cid, bytes).map_err(|error| StreamError::Decode { cid: *cid, error })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(scope: Option<&'a str>, bytes: Option<&'a str>) -> CarRequest<'a> {
        CarRequest {
            dag_scope: scope,
            entity_bytes: bytes,
            ..CarRequest::default()
        }
    }

    #[test]
    fn entity_bytes() {
        let p = |t| EntityBytes::parse(t);
        assert_eq!(p("0:*"), Some(EntityBytes { from: 0, to: None }));
        assert_eq!(
            p("-1024:*"),
            Some(EntityBytes {
                from: -1024,
                to: None
            })
        );
        assert_eq!(
            p("499:-1000"),
            Some(EntityBytes {
                from: 499,
                to: Some(-1000)
            })
        );
        for bad in ["", "5", "a:b", "5:2", "1:2:3", "*:5", "0:"] {
            assert_eq!(p(bad), None, "{bad}");
        }
        assert!(p("100:*").expect("range").outside(100));
        assert!(!p("99:*").expect("range").outside(100));
        assert!(!p("-500:*").expect("range").outside(100));
        assert!(!p("5:*").expect("range").outside(0));
    }

    #[test]
    fn params() {
        let ok = |r: CarRequest<'_>| CarParams::parse(&r).expect("valid");
        assert_eq!(ok(req(None, None)).scope, Scope::All);
        assert_eq!(ok(req(Some("block"), None)).scope, Scope::Block);
        assert_eq!(ok(req(None, Some("0:9"))).scope, Scope::Entity);
        assert_eq!(ok(req(Some("entity"), Some("0:9"))).scope, Scope::Entity);
        assert!(CarParams::parse(&req(Some("all"), Some("0:9"))).is_err());
        assert!(CarParams::parse(&req(Some("everything"), None)).is_err());
        let r = CarRequest {
            version: Some("2"),
            ..CarRequest::default()
        };
        assert!(CarParams::parse(&r).is_err());
        let p = ok(CarRequest {
            dups: Some("y"),
            order: Some("unk"),
            ..CarRequest::default()
        });
        assert!(p.dups);
        assert_eq!(
            p.content_type(),
            "application/vnd.ipld.car; version=1; order=dfs; dups=y"
        );
    }
}

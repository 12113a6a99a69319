//! `/api/v1`: node, peers, follows, records, files.

use std::path::PathBuf;

use axum::{
    Json, Router,
    extract::{Path, Query, Request, State},
    http::header::AUTHORIZATION,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use mnode_dag::{Cid, Draft, Record, cids, json, registry};
use mnode_node::{
    blobs::ImportMode,
    node::FetchProgress,
    store::{Cursor, ListFilter, Put},
};
use mnode_protocols::GossipTopic;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{ApiError, ApiState};

type ApiResult = Result<Json<Value>, ApiError>;

pub(crate) fn router(state: ApiState) -> Router {
    let v1 = Router::new()
        .route("/node", get(node_info))
        .route("/peers", get(peers).post(connect))
        .route("/follows", get(follows).post(follow).delete(unfollow))
        .route("/records", get(list_records).post(create_record))
        .route(
            "/records/{cid}",
            get(read_record).put(update_record).delete(delete_record),
        )
        .route("/records/{cid}/history", get(history))
        .route("/files/fetch", post(fetch_file))
        .route("/files/export", post(export_file))
        .route("/files/import", post(import_file))
        .layer(middleware::from_fn_with_state(state.clone(), require_admin));
    Router::new()
        .nest("/api/v1", v1)
        .merge(crate::gateway::router())
        .with_state(state)
}

async fn require_admin(
    State(state): State<ApiState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let ok = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| constant_time_eq(t.trim().as_bytes(), state.token.as_bytes()));
    if !ok {
        return Err(ApiError::unauthorized());
    }
    Ok(next.run(req).await)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn parse_cid(text: &str) -> Result<Cid, ApiError> {
    cids::parse(text).map_err(|e| ApiError::bad_request(format!("{text:?} is not a CID: {e}")))
}

/// A topic as a full topic string, or a `did:key` for an author's feed.
fn parse_topic(text: &str) -> Result<GossipTopic, ApiError> {
    if let Ok(did) = text.parse() {
        return Ok(GossipTopic::Author(did));
    }
    text.parse::<GossipTopic>()
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

async fn node_info(State(s): State<ApiState>) -> ApiResult {
    let info = s.node.info().await?;
    let repo = s.node.repo().clone();
    let owner = repo.info().owner.clone();
    let owner_did = tokio::task::spawn_blocking(move || {
        repo.accounts()
            .get(&owner)
            .ok()
            .flatten()
            .and_then(|a| a.did().map(ToString::to_string))
    })
    .await?;
    let repo = s.node.repo();
    Ok(Json(json!({
        "peer_id": info.peer_id,
        "addrs": info.addrs,
        "blobs": info.blobs,
        "node": repo.info().node.to_string(),
        "owner": repo.info().owner,
        "owner_did": owner_did,
    })))
}

async fn peers(State(s): State<ApiState>) -> ApiResult {
    Ok(Json(json!({ "peers": s.node.peers().await? })))
}

#[derive(Deserialize)]
struct ConnectBody {
    addr: String,
}

async fn connect(State(s): State<ApiState>, Json(b): Json<ConnectBody>) -> ApiResult {
    let addr = b
        .addr
        .parse()
        .map_err(|e| ApiError::bad_request(format!("{:?} is not a multiaddr: {e}", b.addr)))?;
    let peer = s.node.connect(addr).await?;
    Ok(Json(json!({ "peer_id": peer.to_string() })))
}

async fn follows(State(s): State<ApiState>) -> ApiResult {
    let node = s.node.clone();
    let list = tokio::task::spawn_blocking(move || node.repo().store().follows()).await??;
    let list: Vec<String> = list.iter().map(ToString::to_string).collect();
    Ok(Json(json!({ "follows": list })))
}

#[derive(Deserialize)]
struct TopicBody {
    topic: String,
}

async fn follow(State(s): State<ApiState>, Json(b): Json<TopicBody>) -> ApiResult {
    let topic = parse_topic(&b.topic)?;
    s.node.follow(topic).await?;
    Ok(Json(json!({ "following": topic.to_string() })))
}

async fn unfollow(State(s): State<ApiState>, Json(b): Json<TopicBody>) -> ApiResult {
    let topic = parse_topic(&b.topic)?;
    s.node.unfollow(topic).await?;
    Ok(Json(json!({ "unfollowed": topic.to_string() })))
}

#[derive(Deserialize)]
struct CreateBody {
    kind: String,
    body: Value,
    #[serde(default, rename = "as")]
    as_handle: Option<String>,
}

async fn create_record(State(s): State<ApiState>, Json(b): Json<CreateBody>) -> ApiResult {
    if registry::lookup(&b.kind).is_none() {
        return Err(ApiError::bad_request(format!(
            "unknown kind {:?}; GET /api/v1/types lists them",
            b.kind
        )));
    }
    let body =
        json::from_json_value(&b.body).map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
    let key = signer(&s, b.as_handle).await?;
    let record = signed(Draft::new(b.kind, body), &key)?;
    let answer = publish_one(&s, record.clone()).await?;
    let node = s.node.clone();
    let id = record.id();
    tokio::task::spawn_blocking(move || node.repo().store().pin(&id, true)).await??;
    Ok(answer)
}

/// Signs a draft; a body that breaks its kind's schema is a 422.
fn signed(draft: Draft, key: &mnode_dag::Keypair) -> Result<Record, ApiError> {
    draft
        .sign(key)
        .map_err(|e| ApiError::new(422, "invalid_record", e.to_string()))
}

/// The signing key of `handle` (default: the node's owner).
async fn signer(s: &ApiState, handle: Option<String>) -> Result<mnode_dag::Keypair, ApiError> {
    let repo = s.node.repo().clone();
    let handle = handle.unwrap_or_else(|| repo.info().owner.clone());
    tokio::task::spawn_blocking(move || repo.accounts().signing_key(&handle))
        .await?
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// The current version of the item `cid` names (its id or any version's CID).
async fn head_of(s: &ApiState, cid: Cid) -> Result<Record, ApiError> {
    let node = s.node.clone();
    tokio::task::spawn_blocking(move || node.repo().store().head(&cid))
        .await??
        .ok_or_else(|| ApiError::not_found(format!("no item {cid} on this node")))
}

async fn publish_one(s: &ApiState, record: Record) -> ApiResult {
    let puts = s.node.publish(vec![record.clone()]).await?;
    let stored = puts.iter().any(|p| matches!(p, Put::Stored { .. }));
    Ok(Json(json!({
        "cid": record.cid().to_string(),
        "id": record.id().to_string(),
        "seq": record.seq(),
        "stored": stored,
    })))
}

#[derive(Deserialize)]
struct UpdateBody {
    body: Value,
    #[serde(default, rename = "as")]
    as_handle: Option<String>,
}

/// A new version of an item, signed by the acting account.
async fn update_record(
    State(s): State<ApiState>,
    Path(cid): Path<String>,
    Json(b): Json<UpdateBody>,
) -> ApiResult {
    let current = head_of(&s, parse_cid(&cid)?).await?;
    if current.is_tombstone() {
        return Err(ApiError::new(
            409,
            "deleted",
            format!(
                "{} was deleted; a deleted item takes no new versions",
                current.id()
            ),
        ));
    }
    let body =
        json::from_json_value(&b.body).map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
    let key = signer(&s, b.as_handle).await?;
    let record = signed(current.update_body(body), &key)?;
    publish_one(&s, record).await
}

#[derive(Deserialize, Default)]
struct DeleteQuery {
    #[serde(default, rename = "as")]
    as_handle: Option<String>,
}

/// Deletes an item: a signed tombstone version; its history stays verifiable.
async fn delete_record(
    State(s): State<ApiState>,
    Path(cid): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> ApiResult {
    let current = head_of(&s, parse_cid(&cid)?).await?;
    if current.is_tombstone() {
        return Err(ApiError::new(
            409,
            "deleted",
            format!("{} is already deleted", current.id()),
        ));
    }
    let key = signer(&s, q.as_handle).await?;
    let record = signed(current.delete(), &key)?;
    publish_one(&s, record).await
}

/// The versions of an item, oldest first.
async fn history(State(s): State<ApiState>, Path(cid): Path<String>) -> ApiResult {
    let cid = parse_cid(&cid)?;
    let node = s.node.clone();
    let v = tokio::task::spawn_blocking(move || {
        let store = node.repo().store();
        let Some(id) = store.item_id(&cid)? else {
            return Ok(None);
        };
        let Some(item) = store.item(&id)? else {
            return Ok(None);
        };
        let versions: Vec<Value> = store
            .history(&id)?
            .iter()
            .map(|v| {
                json!({
                    "cid": v.cid.to_string(),
                    "seq": v.seq,
                    "updated": v.updated,
                    "deleted": v.tombstone,
                    "head": v.cid == item.head,
                })
            })
            .collect();
        Ok::<_, mnode_node::store::StoreError>(Some(json!({
            "id": id.to_string(),
            "type": item.kind,
            "forked": item.forked(),
            "versions": versions,
        })))
    })
    .await??;
    v.map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no item {cid} on this node")))
}

#[derive(Deserialize)]
struct ListQuery {
    kind: Option<String>,
    author: Option<String>,
    tag: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

/// Items newest first, with cursor paging.
async fn list_records(State(s): State<ApiState>, Query(q): Query<ListQuery>) -> ApiResult {
    let author = q
        .author
        .as_deref()
        .map(|a| {
            a.parse()
                .map_err(|e| ApiError::bad_request(format!("author: {e}")))
        })
        .transpose()?;
    let cursor: Option<Cursor> = q
        .cursor
        .as_deref()
        .map(|c| {
            c.parse()
                .map_err(|e: mnode_node::store::StoreError| ApiError::bad_request(e.to_string()))
        })
        .transpose()?;
    let filter = ListFilter {
        kind: q.kind,
        author,
        tag: q.tag,
        topic: None,
        cursor,
        limit: q.limit.unwrap_or(50).min(1000),
    };
    let node = s.node.clone();
    let items = tokio::task::spawn_blocking(move || {
        let store = node.repo().store();
        let page = store.list(&filter)?;
        let mut items = Vec::with_capacity(page.items.len());
        for (id, i) in &page.items {
            let summary = store
                .record(&i.head)?
                .map(|r| r.summary())
                .unwrap_or_default();
            items.push(json!({
                "id": id.to_string(),
                "type": i.kind,
                "author": i.author.to_string(),
                "created": i.created,
                "updated": i.updated,
                "head": i.head.to_string(),
                "versions": i.versions,
                "summary": summary,
            }));
        }
        Ok::<_, mnode_node::store::StoreError>(json!({
            "items": items,
            "next": page.next.map(|c| c.to_string()),
        }))
    })
    .await??;
    Ok(Json(items))
}

#[derive(Deserialize, Default)]
struct ReadQuery {
    /// Exactly the version the CID names, instead of its item's current version.
    #[serde(default)]
    exact: bool,
}

async fn read_record(
    State(s): State<ApiState>,
    Path(cid): Path<String>,
    Query(q): Query<ReadQuery>,
) -> ApiResult {
    let cid = parse_cid(&cid)?;
    let node = s.node.clone();
    let record: Option<Record> = tokio::task::spawn_blocking(move || {
        let store = node.repo().store();
        if q.exact {
            store.record(&cid)
        } else {
            store.head(&cid)
        }
    })
    .await??;
    let record =
        record.ok_or_else(|| ApiError::not_found(format!("no record {cid} on this node")))?;
    let ipld = mnode_dag::cbor::decode_ipld(record.bytes()).map_err(|e| ApiError::internal(&e))?;
    let value = json::to_json_value(&ipld).map_err(|e| ApiError::internal(&e))?;
    Ok(Json(json!({
        "cid": record.cid().to_string(),
        "id": record.id().to_string(),
        "record": value,
    })))
}

#[derive(Deserialize)]
struct FetchBody {
    cid: String,
    /// Stream progress as NDJSON lines (`{"size":…}`, `{"bytes":…}`, then `{"done":…}` or
    /// `{"error":…}`) instead of one JSON answer at the end.
    #[serde(default)]
    progress: bool,
}

/// Fetches a file from peers into the node's store.
async fn fetch_file(
    State(s): State<ApiState>,
    Json(b): Json<FetchBody>,
) -> Result<Response, ApiError> {
    let cid = parse_cid(&b.cid)?;
    if !b.progress {
        let f = s.node.fetch_file(cid, |_| {}).await?;
        let v = json!({ "cid": cid.to_string(), "size": f.size, "transferred": f.transferred });
        return Ok(Json(v).into_response());
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Value>(64);
    let node = s.node.clone();
    tokio::spawn(async move {
        let progress_tx = tx.clone();
        let result = node
            .fetch_file(cid, move |p| {
                let line = match p {
                    FetchProgress::Size(n) => json!({ "size": n }),
                    FetchProgress::Bytes(n) => json!({ "bytes": n }),
                };
                // A slow reader skips progress lines; the last line always arrives.
                let _ = progress_tx.try_send(line);
            })
            .await;
        let last = match result {
            Ok(f) => {
                json!({ "done": { "cid": cid.to_string(), "size": f.size, "transferred": f.transferred } })
            }
            Err(e) => {
                let e = ApiError::from(e);
                json!({ "error": { "code": e.code, "message": e.message } })
            }
        };
        let _ = tx.send(last).await;
    });
    let lines = futures::stream::unfold(rx, |mut rx| async move {
        let v = rx.recv().await?;
        Some((Ok::<_, std::convert::Infallible>(format!("{v}\n")), rx))
    });
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        axum::body::Body::from_stream(lines),
    )
        .into_response())
}

#[derive(Deserialize)]
struct ExportBody {
    cid: String,
    path: PathBuf,
}

/// Writes a held file to a path on the node's own disk (admin only). Refuses to overwrite.
async fn export_file(State(s): State<ApiState>, Json(b): Json<ExportBody>) -> ApiResult {
    let cid = parse_cid(&b.cid)?;
    if !b.path.is_absolute() {
        return Err(ApiError::bad_request("path must be absolute"));
    }
    if tokio::fs::try_exists(&b.path).await.unwrap_or(true) {
        return Err(ApiError::new(
            409,
            "exists",
            format!("{} exists; choose another path", b.path.display()),
        ));
    }
    let size = s
        .node
        .blobs()
        .export(&cid, &b.path)
        .await
        .map_err(|e| match e {
            mnode_node::blobs::BlobError::NotFound(_) => {
                ApiError::not_found(format!("the node does not hold {cid}"))
            }
            other => ApiError::new(500, "export_failed", other.to_string()),
        })?;
    Ok(Json(
        json!({ "cid": cid.to_string(), "path": b.path, "size": size }),
    ))
}

#[derive(Deserialize)]
struct ImportBody {
    path: PathBuf,
}

/// Imports a file that is on the node's own disk (admin only: it reads local paths).
async fn import_file(State(s): State<ApiState>, Json(b): Json<ImportBody>) -> ApiResult {
    if !b.path.is_absolute() {
        return Err(ApiError::bad_request("path must be absolute"));
    }
    let meta = tokio::fs::metadata(&b.path)
        .await
        .map_err(|e| ApiError::bad_request(format!("{}: {e}", b.path.display())))?;
    if !meta.is_file() {
        return Err(ApiError::bad_request(format!(
            "{} is not a file",
            b.path.display()
        )));
    }
    let added = s
        .node
        .blobs()
        .add_path(&b.path, ImportMode::Copy, |_| {})
        .await
        .map_err(|e| ApiError::new(500, "import_failed", e.to_string()))?;
    s.node.provide(vec![added.cid]).await?;
    Ok(Json(
        json!({ "cid": added.cid.to_string(), "size": added.size }),
    ))
}

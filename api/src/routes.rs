//! `/api/v1`: node, peers, follows, records (files are in `files.rs`), and the whole router.

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    routing::get,
};
use mnode_dag::{Cid, Draft, Record, cids, json, registry};
use mnode_node::{
    accounts::AccountError,
    node::Multiaddr,
    store::{Cursor, ListFilter, Put},
};
use mnode_protocols::GossipTopic;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    ApiError, ApiState,
    auth::{Admin, Caller},
    error::ErrorBody,
    openapi::{KindBody, NewKindName},
    ops, with_repo, with_store,
};

type ApiResult = Result<Json<Value>, ApiError>;

/// The routes under `/api/v1`, each registered in the router and in the OpenAPI document at
/// once (the document's paths are the full `/api/v1/…` ones).
pub(crate) fn api() -> OpenApiRouter<ApiState> {
    let v1 = OpenApiRouter::new()
        .routes(routes!(node_info))
        .routes(routes!(peers, connect))
        .routes(routes!(ban, unban))
        .routes(routes!(follows, follow, unfollow))
        .routes(routes!(list_records, create_record))
        .routes(routes!(create_records))
        .routes(routes!(read_record, update_record, delete_record))
        .routes(routes!(history))
        .routes(routes!(crate::openapi::openapi_json))
        .merge(crate::accounts::router())
        .merge(crate::files::router())
        .merge(crate::social::router())
        .merge(crate::forums::router())
        .merge(crate::groups::router())
        .merge(crate::moderation::router())
        .merge(crate::events::router())
        .merge(crate::pins::router())
        .merge(crate::private::router())
        .merge(crate::admin::router());
    OpenApiRouter::with_openapi(crate::openapi::base()).nest("/api/v1", v1)
}

pub(crate) fn router(state: ApiState) -> Router {
    let (api, doc) = api().split_for_parts();
    crate::openapi::init(doc);
    api.merge(crate::gateway::router())
        .route("/metrics", get(crate::metrics::metrics))
        .layer(axum::middleware::from_fn(crate::error::json_errors))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::track,
        ))
        .with_state(state)
}

pub(crate) fn parse_cid(text: &str) -> Result<Cid, ApiError> {
    cids::parse(text).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// A topic as a full topic string, or a `did:key` for an author's feed.
pub(crate) fn parse_topic(text: &str) -> Result<GossipTopic, ApiError> {
    if let Ok(did) = text.parse() {
        return Ok(GossipTopic::Author(did));
    }
    text.parse::<GossipTopic>()
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// This node: peer id, addresses, blob count, node id and owner.
#[utoipa::path(
    get,
    path = "/node",
    tag = "node",
    responses((status = 200, description = "`{peer_id, addrs, blobs, nat: {status, external_addrs, relays, hole_punches, hole_punches_failed}, traffic: {sent, received}, node, owner, owner_did}`; status is public, private (behind a router, reached through relays) or unknown; traffic is the bytes libp2p moved since the node started", body = Object)),
)]
async fn node_info(State(s): State<ApiState>) -> ApiResult {
    let info = s.node.info().await?;
    let owner_did = with_repo(&s, |repo| {
        Ok(repo
            .accounts()
            .get(&repo.info().owner)
            .ok()
            .flatten()
            .and_then(|a| a.identity().map(ToString::to_string)))
    })
    .await?;
    let repo = s.node.repo();
    let traffic = s.node.traffic();
    Ok(Json(json!({
        "peer_id": info.peer_id,
        "addrs": info.addrs,
        "blobs": info.blobs,
        "nat": info.nat,
        "traffic": { "sent": traffic.sent, "received": traffic.received },
        "node": repo.info().node.to_string(),
        "owner": repo.info().owner,
        "owner_did": owner_did,
    })))
}

/// The connected peers, and the peers reached before that the node dials again at start.
///
/// `peers` are the connected peers (`{peer_id, addrs, agent, relayed}`, `relayed` while every
/// connection to it goes through a relay); `nat` is this node's reachability (as in `GET
/// /node`); `remembered` are the peers
/// reached now or before a restart (`{peer_id, addrs, last_seen, connected}`, `last_seen` in
/// ms since the epoch), the most recently seen first. Admin only.
#[utoipa::path(
    get,
    path = "/peers",
    tag = "node",
    responses(
        (status = 200, description = "`{peers: [{peer_id, addrs, agent, relayed}], nat: {status, external_addrs, relays, hole_punches, hole_punches_failed}, remembered: [{peer_id, addrs, last_seen, connected}]}`", body = Object),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "The caller is not an admin", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn peers(State(s): State<ApiState>, _admin: Admin) -> ApiResult {
    let peers = s.node.peers().await?;
    let remembered: Vec<Value> = s
        .node
        .remembered_peers()
        .await?
        .into_iter()
        .map(|k| {
            let id = k.peer_id.to_string();
            json!({
                "connected": peers.iter().any(|p| p.peer_id == id),
                "peer_id": id,
                "addrs": k.addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "last_seen": k.last_seen,
            })
        })
        .collect();
    let nat = s.node.info().await?.nat;
    Ok(Json(
        json!({ "peers": peers, "nat": nat, "remembered": remembered }),
    ))
}

/// A peer to dial.
#[derive(Deserialize, ToSchema)]
#[schema(as = Connect)]
struct ConnectBody {
    /// Its multiaddr, like `/ip4/203.0.113.7/tcp/4001/p2p/12D3Koo…`.
    #[schema(value_type = crate::openapi::MultiaddrText)]
    addr: String,
}

/// Dials a peer by multiaddr.
///
/// Admin only.
#[utoipa::path(
    post,
    path = "/peers",
    tag = "node",
    request_body = ConnectBody,
    responses(
        (status = 200, description = "`{peer_id}` of the peer now connected", body = Object),
        (status = 400, description = "Not a multiaddr, or not one this node can dial", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "The caller is not an admin", body = ErrorBody),
        (status = 502, description = "The dial failed: the peer did not answer, or not as the address says", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn connect(
    State(s): State<ApiState>,
    _admin: Admin,
    Json(b): Json<ConnectBody>,
) -> ApiResult {
    let addr: Multiaddr = b
        .addr
        .parse()
        .map_err(|e| ApiError::bad_request(format!("{:?} is not a multiaddr: {e}", b.addr)))?;
    if !dialable(&addr) {
        return Err(ApiError::bad_request(format!(
            "{:?} is not an address this node can dial: it needs an IP or DNS address and a TCP \
             port, or a UDP port with quic-v1 (then /p2p/<relay>/p2p-circuit/p2p/<peer> to go \
             through a relay)",
            b.addr
        )));
    }
    let peer = s.node.connect(addr).await?;
    Ok(Json(json!({ "peer_id": peer.to_string() })))
}

/// Whether `addr` names a transport this node dials: an IP or DNS address, then TCP, or UDP
/// with QUIC, then perhaps a relay circuit to the peer (as the `Multiaddr` schema says).
fn dialable(addr: &Multiaddr) -> bool {
    let text = addr.to_string();
    let parts: Vec<&str> = text.split('/').skip(1).collect();
    let rest = match parts.as_slice() {
        [host, _, "tcp", _, rest @ ..] | [host, _, "udp", _, "quic-v1", rest @ ..]
            if matches!(*host, "ip4" | "ip6" | "dns" | "dns4" | "dns6") =>
        {
            rest
        }
        _ => return false,
    };
    matches!(rest, [] | ["p2p", _] | ["p2p", _, "p2p-circuit", "p2p", _])
}

/// Disconnects a peer and refuses its connections until unbanned or the node restarts.
///
/// Admin only.
#[utoipa::path(
    put,
    path = "/peers/{peer_id}/ban",
    tag = "node",
    params(("peer_id" = crate::openapi::PeerIdText, Path, description = "The peer's id, `12D3Koo…`")),
    responses(
        (status = 200, description = "`{banned: peer_id}`, in force when this answers", body = Object),
        (status = 400, description = "Not a peer id", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "The caller is not an admin", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn ban(State(s): State<ApiState>, _admin: Admin, Path(peer): Path<String>) -> ApiResult {
    let peer = parse_peer(&peer)?;
    s.node.ban(peer, true).await?;
    // Commands are handled in order: once this answers, the ban is in force.
    s.node.peers().await?;
    Ok(Json(json!({ "banned": peer.to_string() })))
}

/// Lets a banned peer connect again.
///
/// Admin only.
#[utoipa::path(
    delete,
    path = "/peers/{peer_id}/ban",
    tag = "node",
    params(("peer_id" = crate::openapi::PeerIdText, Path, description = "The peer's id, `12D3Koo…`")),
    responses(
        (status = 200, description = "`{unbanned: peer_id}`", body = Object),
        (status = 400, description = "Not a peer id", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "The caller is not an admin", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn unban(State(s): State<ApiState>, _admin: Admin, Path(peer): Path<String>) -> ApiResult {
    let peer = parse_peer(&peer)?;
    s.node.ban(peer, false).await?;
    s.node.peers().await?;
    Ok(Json(json!({ "unbanned": peer.to_string() })))
}

fn parse_peer(text: &str) -> Result<mnode_node::node::PeerId, ApiError> {
    text.parse()
        .map_err(|e| ApiError::bad_request(format!("{text:?} is not a peer id: {e}")))
}

/// The topics the node follows.
///
/// Admin only.
#[utoipa::path(
    get,
    path = "/follows",
    tag = "node",
    operation_id = "node_follows",
    responses(
        (status = 200, description = "`{follows: [topic, …]}`", body = Object),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "The caller is not an admin", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn follows(State(s): State<ApiState>, _admin: Admin) -> ApiResult {
    let list = with_store(&s, |store| Ok(store.follows()?)).await?;
    let list: Vec<String> = list.iter().map(ToString::to_string).collect();
    Ok(Json(json!({ "follows": list })))
}

/// A gossip topic.
#[derive(Deserialize, ToSchema)]
#[schema(as = Topic)]
pub(crate) struct TopicBody {
    /// A full topic (`/mnode/1/author/<did>`, `/mnode/1/branch/<cid>`, `/mnode/1/thread/<cid>`)
    /// or a bare `did:key:…` for an author's feed.
    #[schema(value_type = crate::openapi::TopicText)]
    pub(crate) topic: String,
}

/// Makes the node follow a topic.
///
/// Admin only.
#[utoipa::path(
    post,
    path = "/follows",
    tag = "node",
    operation_id = "node_follow",
    request_body = TopicBody,
    responses(
        (status = 200, description = "`{following: topic}`", body = Object),
        (status = 400, description = "Not a topic", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "The caller is not an admin", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn follow(State(s): State<ApiState>, _admin: Admin, Json(b): Json<TopicBody>) -> ApiResult {
    let topic = parse_topic(&b.topic)?;
    s.node.follow(topic).await?;
    Ok(Json(json!({ "following": topic.to_string() })))
}

/// Makes the node stop following a topic.
///
/// Admin only.
#[utoipa::path(
    delete,
    path = "/follows",
    tag = "node",
    operation_id = "node_unfollow",
    request_body = TopicBody,
    responses(
        (status = 200, description = "`{unfollowed: topic}`", body = Object),
        (status = 400, description = "Not a topic", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "The caller is not an admin", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn unfollow(State(s): State<ApiState>, _admin: Admin, Json(b): Json<TopicBody>) -> ApiResult {
    let topic = parse_topic(&b.topic)?;
    s.node.unfollow(topic).await?;
    Ok(Json(json!({ "unfollowed": topic.to_string() })))
}

/// A new record.
#[derive(Deserialize, ToSchema)]
#[schema(as = CreateRecord)]
struct CreateBody {
    #[schema(value_type = NewKindName)]
    kind: String,
    #[schema(value_type = KindBody)]
    body: Value,
    /// A group's id: the group owns the new item, and its members may change it.
    #[serde(default)]
    #[schema(value_type = Option<crate::openapi::CidText>)]
    owner: Option<String>,
    /// Only these people (and the author) may read it: `did:key`s or handles on this node.
    /// Without `to` and `to_group` a new item is public and an edit keeps the readers of the
    /// version it replaces.
    #[serde(default)]
    #[schema(value_type = Option<Vec<crate::openapi::MemberText>>, max_items = 499)]
    to: Option<Vec<String>>,
    /// Only the current members of this group (and the author) may read it: the group's id.
    #[serde(default)]
    #[schema(value_type = Option<crate::openapi::CidText>)]
    to_group: Option<String>,
    /// Everyone may read the new version (an edit of a private item becomes public); not with
    /// `to` or `to_group`.
    #[serde(default)]
    public: bool,
    /// Sign as this account (admins only); default: the caller.
    #[serde(default, rename = "as")]
    #[schema(value_type = Option<crate::openapi::HandleText>)]
    as_handle: Option<String>,
}

/// Who may read a new version, from a request's `to`, `to_group` and `public`.
fn audience(
    to: Option<Vec<String>>,
    to_group: Option<String>,
    public: bool,
) -> Result<ops::Audience, ApiError> {
    Ok(ops::Audience {
        to: to.unwrap_or_default(),
        to_group: to_group
            .as_deref()
            .map(|g| {
                parse_cid(g).map_err(|e| ApiError::bad_request(format!("to_group: {}", e.message)))
            })
            .transpose()?,
        public,
    })
}

/// Creates a record, signed by the acting account, pinned and gossiped.
#[utoipa::path(
    post,
    path = "/records",
    tag = "records",
    request_body = CreateBody,
    responses(
        (status = 200, description = "`{cid, id, seq, stored, forked}`", body = Object),
        (status = 400, description = "Unknown kind, a body that is not DAG-JSON, no such account, `owner` or `to_group` is not a group, or someone in `to` is neither a did:key nor an account here", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "`as` another account without being an admin, the acting account may not edit in the `owner` group (`group_role`), or `core.keys`, which only the key rotation routes write (`written_by_node`)", body = ErrorBody),
        (status = 404, description = "No such `owner` or `to_group` group on this node", body = ErrorBody),
        (status = 409, description = "The `owner` group was deleted", body = ErrorBody),
        (status = 422, description = "The body breaks its kind's schema, or a `social.message` names no readers (`invalid_record`); `public` beside `to` or `to_group` (`invalid_audience`)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn create_record(
    State(s): State<ApiState>,
    caller: Caller,
    Json(b): Json<CreateBody>,
) -> ApiResult {
    let body =
        json::from_json_value(&b.body).map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
    let owner = b.owner.as_deref().map(parse_cid).transpose()?;
    let audience = audience(b.to, b.to_group, b.public)?;
    let written = ops::create_to(&s, &caller, &b.kind, body, owner, &audience, b.as_handle).await?;
    Ok(Json(written.to_json()))
}

/// The most records one batch may create.
const MAX_BATCH: usize = 1000;

/// One record of a batch.
#[derive(Deserialize, ToSchema)]
#[schema(as = BatchRecord)]
struct BatchItem {
    #[schema(value_type = NewKindName)]
    kind: String,
    #[schema(value_type = KindBody)]
    body: Value,
}

/// Records to create at once.
#[derive(Deserialize, ToSchema)]
#[schema(as = CreateRecords)]
struct BatchBody {
    /// 1 to 1000 records.
    #[schema(min_items = 1, max_items = 1000)]
    records: Vec<BatchItem>,
    /// Sign as this account (admins only); default: the caller.
    #[serde(default, rename = "as")]
    #[schema(value_type = Option<crate::openapi::HandleText>)]
    as_handle: Option<String>,
}

/// Creates up to 1000 records in one atomic batch.
///
/// The records are signed by the acting account and stored in one batch: either every record
/// is valid and stored, or none is. Errors name the record (`records[i]: …`).
#[utoipa::path(
    post,
    path = "/records/batch",
    tag = "records",
    request_body = BatchBody,
    responses(
        (status = 200, description = "`{records: [{cid, id, seq}], stored}`", body = Object),
        (status = 400, description = "Not 1 to 1000 records, an unknown kind, a body that is not DAG-JSON, or no such account", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "`as` another account without being an admin, or `core.keys` (`written_by_node`)", body = ErrorBody),
        (status = 422, description = "A body breaks its kind's schema (`invalid_record`)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn create_records(
    State(s): State<ApiState>,
    caller: Caller,
    Json(b): Json<BatchBody>,
) -> ApiResult {
    if b.records.is_empty() || b.records.len() > MAX_BATCH {
        return Err(ApiError::bad_request(format!(
            "a batch holds 1 to {MAX_BATCH} records, not {}",
            b.records.len()
        )));
    }
    let handle = caller.acting_as(&s, b.as_handle)?;
    let key = signer(&s, handle).await?;
    let records = tokio::task::spawn_blocking(move || {
        b.records
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                let at = |e: ApiError| {
                    ApiError::new(e.status, e.code, format!("records[{i}]: {}", e.message))
                };
                if registry::lookup(&item.kind).is_none() {
                    return Err(at(ApiError::bad_request(format!(
                        "unknown kind {:?}",
                        item.kind
                    ))));
                }
                ops::writable_kind(&item.kind).map_err(at)?;
                let body = json::from_json_value(&item.body)
                    .map_err(|e| at(ApiError::bad_request(format!("body: {e}"))))?;
                signed(Draft::new(item.kind, body), &key).map_err(at)
            })
            .collect::<Result<Vec<Record>, ApiError>>()
    })
    .await??;
    let ids: Vec<Cid> = records.iter().map(Record::id).collect();
    let answers: Vec<Value> = records
        .iter()
        .map(|r| json!({ "cid": r.cid().to_string(), "id": r.id().to_string(), "seq": r.seq() }))
        .collect();
    let puts = s.node.publish(records).await?;
    let stored = puts
        .iter()
        .filter(|p| matches!(p, Put::Stored { .. }))
        .count();
    pin_items(&s, ids).await?;
    Ok(Json(json!({ "records": answers, "stored": stored })))
}

/// Signs a draft for an account, citing the key log version that grants its key when it is
/// not the identity's first ([`Signer::cite`]); a body that breaks its kind's schema is a 422.
pub(crate) fn signed(draft: Draft, signer: &Signer) -> Result<Record, ApiError> {
    let draft = match signer.cite {
        Some(cite) => draft.signed_as(cite),
        None => draft,
    };
    draft
        .sign(&signer.key)
        .map_err(|e| ApiError::new(422, "invalid_record", e.to_string()))
}

/// How an account signs: its current key and, after a rotation, the `$signer` citation (its
/// identity and the key log version granting the key) every record it signs carries.
#[derive(Clone)]
pub(crate) struct Signer {
    /// The key that signs.
    pub(crate) key: mnode_dag::Keypair,
    /// `None` while the key is the identity's first.
    pub(crate) cite: Option<mnode_dag::key_log::SignerCite>,
}

impl Signer {
    /// The identity the account signs for (its first key): who a record it signs is by, as
    /// groups, moderation and chains judge it.
    pub(crate) fn did(&self) -> &mnode_dag::Did {
        self.cite.as_ref().map_or(self.key.did(), |c| &c.identity)
    }
}

impl Signer {
    /// Whether a tombstone this signer puts after `current` needs a version citing the
    /// signer first: a tombstone cites nothing and relies on its predecessor's `$signer`, which
    /// holds only when the same key signed the predecessor.
    pub(crate) fn must_recite(&self, current: &Record) -> bool {
        self.cite.is_some() && current.author() != self.key.did()
    }
}

/// `current`'s body without the `$owner` and `$signer` it cites, to be signed again with
/// another citation.
pub(crate) fn uncited_body(current: &Record) -> mnode_dag::Ipld {
    match current.body().cloned() {
        Some(mnode_dag::Ipld::Map(mut map)) => {
            map.remove(mnode_dag::group::OWNER_FIELD);
            map.remove(mnode_dag::key_log::SIGNER_FIELD);
            mnode_dag::Ipld::Map(map)
        }
        other => other.unwrap_or(mnode_dag::Ipld::Null),
    }
}

/// The body of the version that re-cites `current` (its group's head, or `signer`'s key grant)
/// right before `signer` deletes it: [`uncited_body`], unless `current` is private and `signer`
/// speaks for another identity than its author's. Its ciphertext is bound to its author, and a
/// group's owner or admin deleting it need not be among its readers, so that version is sealed
/// around nothing for `signer` alone: the tombstone follows it in the same write, and a
/// tombstone has no body.
pub(crate) fn recite_body(current: &Record, signer: &Signer) -> Result<mnode_dag::Ipld, ApiError> {
    let private = current.body().is_some_and(mnode_dag::private::is_private);
    if !private || signer.did() == current.identity() {
        return Ok(uncited_body(current));
    }
    let nothing = mnode_dag::Ipld::Map(Default::default());
    mnode_dag::private::seal(
        current.kind(),
        signer.did(),
        Some(&current.id()),
        &nothing,
        &[(*signer.did(), *signer.key.did())],
        &mut rand::rng(),
    )
    .map_err(|e| ApiError::new(422, "invalid_record", e.to_string()))
}

/// How the account `handle` signs ([`mnode_node::accounts::Accounts::signing`]).
pub(crate) async fn signer(s: &ApiState, handle: String) -> Result<Signer, ApiError> {
    with_repo(s, move |repo| {
        repo.accounts()
            .signing(&handle)
            .map(|(key, cite)| Signer { key, cite })
            .map_err(|e| match e {
                AccountError::NotFound(_) | AccountError::KeyElsewhere { .. } => e.into(),
                e => ApiError::bad_request(e.to_string()),
            })
    })
    .await
}

/// How a new version of `current` is signed: by the current key of the account speaking for its
/// identity (citing the key log when that key is not the first), held by this node for an
/// account the caller may act for (the owner, or an admin of this node).
///
/// With `as_handle` the caller acts as that account (admins may act as any): it must be the
/// author's, as the chain rules require of whoever signs the new version.
pub(crate) async fn owner_key(
    s: &ApiState,
    caller: &Caller,
    current: &Record,
    as_handle: Option<String>,
) -> Result<Signer, ApiError> {
    let author = *current.identity();
    let account = with_repo(s, move |repo| {
        let accounts = repo.accounts();
        Ok(match accounts.by_identity(&author)? {
            Some(a) => Some(a),
            None => accounts.by_did(&author)?,
        })
    })
    .await?
    .ok_or_else(|| {
        ApiError::new(
            403,
            "not_owner",
            format!("{author} wrote this item and this node does not hold their key"),
        )
    })?;
    if let Some(h) = as_handle {
        let acting = caller.acting_as(s, Some(h))?;
        if acting != account.handle {
            return Err(ApiError::new(
                403,
                "not_owner",
                format!(
                    "{} wrote this item; {acting} cannot sign a version of it (act as {} to \
                     change it)",
                    account.handle, account.handle
                ),
            ));
        }
    } else if !caller.may_act_for(s, &account.handle) {
        return Err(ApiError::new(
            403,
            "not_owner",
            format!(
                "only {} (or an admin of this node) may change this item",
                account.handle
            ),
        ));
    }
    if account.identity() == Some(&author) {
        return signer(s, account.handle).await;
    }
    // An item by a key imported into the account (not its identity): that key signs, as before.
    with_repo(s, move |repo| {
        repo.keystore()
            .get(&author)
            .map(|key| Signer { key, cite: None })
            .map_err(|e| ApiError::internal(&e))
    })
    .await
}

/// The current version of the item `cid` names (its id or any version's CID).
pub(crate) async fn head_of(s: &ApiState, cid: Cid) -> Result<Record, ApiError> {
    with_store(s, move |store| Ok(store.head(&cid)?))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no item {cid} on this node")))
}

/// Pins items recursively.
pub(crate) async fn pin_items(s: &ApiState, ids: Vec<Cid>) -> Result<(), ApiError> {
    with_store(s, move |store| {
        Ok(ids.iter().try_for_each(|id| store.pin(id, true))?)
    })
    .await
}

/// A new body for an item.
#[derive(Deserialize, ToSchema)]
#[schema(as = UpdateRecord)]
struct UpdateBody {
    /// The new body, of the item's kind.
    #[schema(value_type = KindBody)]
    body: Value,
    /// Only these people (and the author) may read it: `did:key`s or handles on this node.
    /// Without `to` and `to_group` a new item is public and an edit keeps the readers of the
    /// version it replaces.
    #[serde(default)]
    #[schema(value_type = Option<Vec<crate::openapi::MemberText>>, max_items = 499)]
    to: Option<Vec<String>>,
    /// Only the current members of this group (and the author) may read it: the group's id.
    #[serde(default)]
    #[schema(value_type = Option<crate::openapi::CidText>)]
    to_group: Option<String>,
    /// Everyone may read the new version (an edit of a private item becomes public); not with
    /// `to` or `to_group`.
    #[serde(default)]
    public: bool,
    /// Act as this account (admins only), which must be the item's author; default: the
    /// caller, who must be the author or an admin.
    #[serde(default, rename = "as")]
    #[schema(value_type = Option<crate::openapi::HandleText>)]
    as_handle: Option<String>,
}

/// Who a deletion acts as.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AsQuery {
    /// Act as this account (admins only), which must be the item's author; default: the
    /// caller, who must be the author or an admin.
    #[serde(default, rename = "as")]
    #[param(rename = "as", value_type = Option<crate::openapi::HandleText>)]
    as_handle: Option<String>,
}

/// Publishes a new version of an item, signed by its author.
///
/// The caller must be the author's account on this node, or an admin.
#[utoipa::path(
    put,
    path = "/records/{cid}",
    tag = "records",
    params(("cid" = crate::openapi::CidText, Path, description = "The item's id or any version's CID")),
    request_body = UpdateBody,
    responses(
        (status = 200, description = "`{cid, id, seq, stored, forked}` of the new version", body = Object),
        (status = 400, description = "Not a CID, a body that is not DAG-JSON, `to_group` is not a group, or someone in `to` is neither a did:key nor an account here", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "The caller may not change this item (`not_owner`), or it is a key log, which only the key rotation routes write (`written_by_node`)", body = ErrorBody),
        (status = 404, description = "No such item (or `to_group` group) on this node", body = ErrorBody),
        (status = 409, description = "The item was deleted", body = ErrorBody),
        (status = 422, description = "The body breaks its kind's schema (`invalid_record`); `public` beside `to` or `to_group` (`invalid_audience`)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn update_record(
    State(s): State<ApiState>,
    caller: Caller,
    Path(cid): Path<String>,
    Json(b): Json<UpdateBody>,
) -> ApiResult {
    let cid = parse_cid(&cid)?;
    let body =
        json::from_json_value(&b.body).map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
    let audience = audience(b.to, b.to_group, b.public)?;
    Ok(Json(
        ops::update_to(&s, &caller, cid, body, &audience, b.as_handle)
            .await?
            .to_json(),
    ))
}

/// Deletes an item with a signed tombstone version.
///
/// Its history stays verifiable. The caller must be the author's account on this node, or an
/// admin; for a group's item, an owner or an admin of the group, who need not be among the
/// readers of a private one.
#[utoipa::path(
    delete,
    path = "/records/{cid}",
    tag = "records",
    params(("cid" = crate::openapi::CidText, Path, description = "The item's id or any version's CID"), AsQuery),
    responses(
        (status = 200, description = "`{cid, id, seq, stored, forked}` of the tombstone", body = Object),
        (status = 400, description = "Not a CID", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "The caller may not change this item (`not_owner`), is not an owner or an admin of the group that owns it (`group_role`), it is an artist or a file record and the node keeps those (`deletion_forbidden`, `api.forbid_deletion`), or it is a key log (`written_by_node`)", body = ErrorBody),
        (status = 404, description = "No such item on this node", body = ErrorBody),
        (status = 409, description = "The item is already deleted", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn delete_record(
    State(s): State<ApiState>,
    caller: Caller,
    Path(cid): Path<String>,
    Query(q): Query<AsQuery>,
) -> ApiResult {
    let cid = parse_cid(&cid)?;
    Ok(Json(
        ops::delete(&s, &caller, cid, q.as_handle).await?.to_json(),
    ))
}

/// The versions of an item, oldest first.
#[utoipa::path(
    get,
    path = "/records/{cid}/history",
    tag = "records",
    params(("cid" = crate::openapi::CidText, Path, description = "The item's id or any version's CID")),
    responses(
        (status = 200, description = "`{id, type, author, forked, versions: [{cid, seq, updated, deleted, head}]}`", body = Object),
        (status = 400, description = "Not a CID", body = ErrorBody),
        (status = 404, description = "No such item on this node", body = ErrorBody),
    ),
)]
async fn history(State(s): State<ApiState>, Path(cid): Path<String>) -> ApiResult {
    let cid = parse_cid(&cid)?;
    let v = with_store(&s, move |store| {
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
        Ok(Some(json!({
            "id": id.to_string(),
            "type": item.kind,
            "author": item.author.to_string(),
            "forked": item.forked(),
            "versions": versions,
        })))
    })
    .await?;
    v.map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no item {cid} on this node")))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only items of this kind.
    #[param(value_type = Option<crate::openapi::KindName>)]
    kind: Option<String>,
    /// Only items by this author (`did:key:…`).
    #[param(value_type = Option<crate::openapi::DidText>)]
    author: Option<String>,
    /// Only items with this tag or a tag under it.
    tag: Option<String>,
    /// Only items created at or after this time (ms since the epoch).
    since: Option<u64>,
    /// Only items created before this time (ms since the epoch).
    until: Option<u64>,
    /// `next` of the previous page.
    #[param(value_type = Option<crate::openapi::CursorText>)]
    cursor: Option<String>,
    /// Page size (default 50, at most 1000).
    limit: Option<usize>,
    /// List as this account (admins only, or your own): which private items it reads.
    #[serde(default, rename = "as")]
    #[param(value_type = Option<crate::openapi::HandleText>)]
    as_handle: Option<String>,
}

/// Items newest first, with cursor paging.
#[utoipa::path(
    get,
    path = "/records",
    tag = "records",
    params(ListQuery),
    responses(
        (status = 200, description = "`{items: [{id, type, author, created, updated, head, versions, summary, private}], next}`; a private item is listed only for a caller whose own account reads it", body = Object),
        (status = 400, description = "A bad author, cursor or time range", body = ErrorBody),
        (status = 401, description = "A bad token, or `as` without one", body = ErrorBody),
        (status = 403, description = "`as` another account without being an admin", body = ErrorBody),
    ),
)]
async fn list_records(
    State(s): State<ApiState>,
    caller: Option<Caller>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    let reader = crate::private::reader_as(&s, caller.as_ref(), q.as_handle.clone()).await?;
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
    if let Some(kind) = &q.kind {
        ops::known_kind(kind)?;
    }
    if let (Some(since), Some(until)) = (q.since, q.until)
        && since >= until
    {
        return Err(ApiError::bad_request(format!(
            "since ({since}) must be before until ({until})"
        )));
    }
    let filter = ListFilter {
        kind: q.kind,
        author,
        tag: q.tag,
        topic: None,
        since: q.since,
        until: q.until,
        cursor,
        limit: q.limit.unwrap_or(50).min(1000),
    };
    let items = with_repo(&s, move |repo| {
        let store = repo.store();
        let page = store.list(&filter)?;
        let mut items = Vec::with_capacity(page.items.len());
        for (id, i) in &page.items {
            let head = store.record(&i.head)?;
            let private = head.as_ref().is_some_and(crate::private::is_private);
            // A private item is listed for its readers only, with the summary they can read.
            let summary = match &head {
                Some(r) => match crate::private::summary_for(repo, r, reader.as_ref()) {
                    Some(summary) => summary,
                    None => continue,
                },
                None => String::new(),
            };
            items.push(json!({
                "private": private,
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
        Ok(json!({
            "items": items,
            "next": page.next.map(|c| c.to_string()),
        }))
    })
    .await?;
    Ok(Json(items))
}

#[derive(Deserialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
struct ReadQuery {
    /// Exactly the version the CID names, instead of its item's current version.
    #[serde(default)]
    exact: bool,
    /// Read as this account (admins only, or your own): whether a private version opens.
    #[serde(default, rename = "as")]
    #[param(value_type = Option<crate::openapi::HandleText>)]
    as_handle: Option<String>,
}

/// A record as DAG-JSON: the item's current version, or exactly the one named.
#[utoipa::path(
    get,
    path = "/records/{cid}",
    tag = "records",
    params(("cid" = crate::openapi::CidText, Path, description = "The item's id or any version's CID"), ReadQuery),
    responses(
        (status = 200, description = "`{cid, id, record}`; for a private version also `private: {to: [did], readable}`: a caller whose own account is among `to` gets `record.body` opened (`readable: true`); anyone else gets `record.body: null` (`readable: false`; the sealed block itself is on the gateway)", body = Object),
        (status = 400, description = "Not a CID", body = ErrorBody),
        (status = 401, description = "A bad token, or `as` without one", body = ErrorBody),
        (status = 403, description = "`as` another account without being an admin", body = ErrorBody),
        (status = 404, description = "No such record on this node", body = ErrorBody),
    ),
)]
async fn read_record(
    State(s): State<ApiState>,
    caller: Option<Caller>,
    Path(cid): Path<String>,
    Query(q): Query<ReadQuery>,
) -> ApiResult {
    let cid = parse_cid(&cid)?;
    let reader = crate::private::reader_as(&s, caller.as_ref(), q.as_handle).await?;
    let record = with_store(&s, move |store| {
        Ok(if q.exact {
            store.record(&cid)?
        } else {
            store.head(&cid)?
        })
    })
    .await?
    .ok_or_else(|| ApiError::not_found(format!("no record {cid} on this node")))?;
    let (value, private) = with_repo(&s, move |repo| {
        let (value, private) = crate::private::record_json_for(repo, &record, reader.as_ref())?;
        Ok((
            json!({
                "cid": record.cid().to_string(),
                "id": record.id().to_string(),
                "record": value,
            }),
            private,
        ))
    })
    .await?;
    let mut value = value;
    if let Some(p) = private {
        value["private"] = p;
    }
    Ok(Json(value))
}

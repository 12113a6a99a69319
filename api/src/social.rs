//! The social read side: follows and timelines, feeds, tags, widget queries and facts.
//!
//! | route | auth | what |
//! |---|---|---|
//! | `GET /me/follows` | caller | the topics the calling account follows |
//! | `POST /me/follows {topic}` | caller | follow an author (`did:key:…`), branch or thread topic |
//! | `DELETE /me/follows {topic}` | caller | stop following it |
//! | `GET /me/timeline?cursor&limit&kind` | caller | items of the followed topics, newest first, without muted authors |
//! | `GET /me/mutes`, `POST /me/mutes {author}`, `DELETE /me/mutes {author}` | caller | the authors the calling account muted |
//! | `GET /feeds/{did}?cursor&limit&kind` | open | an author's feed, newest first |
//! | `GET /feeds/{cid}?limit` | open | a `social.feed` record: its curated items, then its query's |
//! | `GET /tags` | open | the tag tree, each tag with how many live items are under it |
//! | `GET /tags/{tag}?cursor&limit&kind` | open | items with the tag or a tag under it |
//! | `GET /query?q&limit` | open | a widget query's results (`art.artists.list()`) |
//! | `GET /facts/{id}?cursor&limit` | open | a fact, the facts under it and its context notes |
//! | `GET /pages/{id}` | open | a `social.page` with each widget block evaluated |
//!
//! The node subscribes to the union of its accounts' follows: the first account to follow a
//! topic makes the node follow it, the last one to leave makes the node unfollow it. The
//! admin token acts as the node's owner. Node-level follows set with the admin's `/follows`
//! are the same set, so an account leaving a topic the admin also followed there unfollows it
//! for the node too.
//!
//! Items are the `GET /records` list items with `record`, the DAG-JSON of the version shown,
//! added. Listings answer `{"items": […], "next": cursor | null}`; pass `next` back as
//! `cursor` for the following page.

use std::collections::{HashMap, HashSet};

use axum::{
    Json,
    extract::{Path, Query, State},
};
use mnode_dag::{
    Cid, Did, Link, Record,
    model::{check, social::Feed},
    query,
    registry::{self, Topic},
};
use mnode_node::store::{self, Cursor, Item, ListFilter, Order, Page, QueryResult, Store};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    ApiError, ApiState,
    auth::Caller,
    error::ErrorBody,
    routes::{TopicBody, parse_cid, parse_topic},
    with_store,
};

type ApiResult = Result<Json<Value>, ApiError>;

/// Default page size.
const PAGE: usize = 50;
/// Largest page, and most items of one answer that is not paged.
const MAX_PAGE: usize = 1000;

pub(crate) fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(my_follows, follow, unfollow))
        .routes(routes!(timeline))
        .routes(routes!(mutes, mute, unmute))
        .routes(routes!(feed))
        .routes(routes!(tags))
        .routes(routes!(tagged))
        .routes(routes!(run_query))
        .routes(routes!(page))
        .routes(routes!(fact))
}

/// A record as DAG-JSON.
pub(crate) fn record_json(record: &Record) -> Result<Value, ApiError> {
    block_json(record.bytes())
}

/// A stored DAG-CBOR block as DAG-JSON.
pub(crate) fn block_json(bytes: &[u8]) -> Result<Value, ApiError> {
    let ipld = mnode_dag::cbor::decode_ipld(bytes).map_err(|e| ApiError::internal(&e))?;
    mnode_dag::json::to_json_value(&ipld).map_err(|e| ApiError::internal(&e))
}

/// An item as listings show it, with `record` (the DAG-JSON of `record`, or of the head when
/// `record` is `None`).
pub(crate) fn item_json(
    store: &Store,
    id: &Cid,
    item: &Item,
    record: Option<&Record>,
) -> Result<Value, ApiError> {
    let head;
    let record = match record {
        Some(r) => Some(r),
        None => {
            head = store.record(&item.head)?;
            head.as_ref()
        }
    };
    Ok(json!({
        "id": id.to_string(),
        "type": item.kind,
        "author": item.author.to_string(),
        "created": item.created,
        "updated": item.updated,
        "head": item.head.to_string(),
        "versions": item.versions,
        "deleted": item.deleted,
        "summary": record.map(Record::summary).unwrap_or_default(),
        "cid": record.map(|r| r.cid().to_string()),
        "record": record.map(record_json).transpose()?,
    }))
}

/// The items of a page, without private ones: feeds, tags, threads and queries are public
/// (a private item's readers find it in `GET /records` and `GET /messages`).
pub(crate) fn items_json(store: &Store, items: &[(Cid, Item)]) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::with_capacity(items.len());
    for (id, item) in items {
        let head = store.record(&item.head)?;
        if head.as_ref().is_some_and(crate::private::is_private) {
            continue;
        }
        out.push(item_json(store, id, item, head.as_ref())?);
    }
    Ok(out)
}

/// A page as `{"items", "next"}`.
pub(crate) fn page_json(store: &Store, page: &Page) -> Result<Value, ApiError> {
    Ok(json!({
        "items": items_json(store, &page.items)?,
        "next": page.next.map(|c| c.to_string()),
    }))
}

/// The live item `cid` (its id or any version) names, which must be of `kind`: its id, its
/// facts and its head record.
pub fn live_item(store: &Store, cid: &Cid, kind: &str) -> Result<(Cid, Item, Record), ApiError> {
    let not_found = || ApiError::not_found(format!("no {kind} {cid} on this node"));
    let id = store.item_id(cid)?.ok_or_else(not_found)?;
    let item = store.item(&id)?.ok_or_else(not_found)?;
    if item.kind != kind {
        return Err(ApiError::not_found(format!(
            "{cid} is {}, not {}",
            registry::with_article(&item.kind),
            registry::with_article(kind)
        )));
    }
    if item.deleted {
        return Err(ApiError::new(
            410,
            "deleted",
            format!("the {kind} {id} was deleted"),
        ));
    }
    let head = store.record(&item.head)?.ok_or_else(not_found)?;
    // Its fields are sealed: only `GET /records/{cid}` opens them, for its readers.
    if crate::private::is_private(&head) {
        return Err(ApiError::not_found(format!(
            "the {kind} {id} is private; its readers read it with GET /api/v1/records/{id}"
        )));
    }
    Ok((id, item, head))
}

/// The body of `record` as the model `M`.
pub fn body_of<M: mnode_dag::Model>(record: &Record) -> Result<M, ApiError> {
    record
        .body_as::<M>()
        .map_err(|e| ApiError::internal(&e))?
        .ok_or_else(|| ApiError::new(410, "deleted", format!("{} was deleted", record.id())))
}

/// Paging parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageQuery {
    /// `next` of the previous page.
    #[param(value_type = Option<crate::openapi::CursorText>)]
    pub(crate) cursor: Option<String>,
    /// Page size (default 50, at most 1000).
    pub(crate) limit: Option<usize>,
    /// Only items of this kind.
    #[param(value_type = Option<crate::openapi::KindName>)]
    pub(crate) kind: Option<String>,
}

impl PageQuery {
    pub(crate) fn cursor(&self) -> Result<Option<Cursor>, ApiError> {
        self.cursor
            .as_deref()
            .map(|c| {
                c.parse()
                    .map_err(|e: store::StoreError| ApiError::bad_request(e.to_string()))
            })
            .transpose()
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit.unwrap_or(PAGE).clamp(1, MAX_PAGE)
    }

    /// A filter with this page's kind, cursor and limit.
    pub(crate) fn filter(&self, base: ListFilter) -> Result<ListFilter, ApiError> {
        if let Some(kind) = &self.kind {
            crate::ops::known_kind(kind)?;
        }
        Ok(ListFilter {
            kind: self.kind.clone().or(base.kind),
            cursor: self.cursor()?,
            limit: self.limit(),
            ..base
        })
    }
}

/// A listing under `topic`, only of `kind`.
pub(crate) fn in_topic(topic: Topic, kind: &str) -> ListFilter {
    ListFilter {
        kind: Some(kind.to_owned()),
        topic: Some(topic),
        ..ListFilter::default()
    }
}

/// The topics the calling account follows.
#[utoipa::path(
    get,
    path = "/me/follows",
    tag = "social",
    responses(
        (status = 200, description = "`{handle, follows: [{topic, since}]}`", body = Object),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn my_follows(State(s): State<ApiState>, caller: Caller) -> ApiResult {
    let handle = caller.handle(&s).to_owned();
    let h = handle.clone();
    let list = with_store(&s, move |store| Ok(store.account_follows(&h)?)).await?;
    let follows: Vec<Value> = list
        .iter()
        .map(|(t, since)| json!({ "topic": t.to_string(), "since": since }))
        .collect();
    Ok(Json(json!({ "handle": handle, "follows": follows })))
}

/// Follows an author (`did:key:…`), branch or thread topic as the calling account.
///
/// The node follows the topic too while any of its accounts does.
#[utoipa::path(
    post,
    path = "/me/follows",
    tag = "social",
    request_body = TopicBody,
    responses(
        (status = 200, description = "`{following: topic, added}`", body = Object),
        (status = 400, description = "Not a topic", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn follow(State(s): State<ApiState>, caller: Caller, Json(b): Json<TopicBody>) -> ApiResult {
    let topic = parse_topic(&b.topic)?;
    let added = s.node.follow_as(caller.handle(&s), topic).await?;
    Ok(Json(
        json!({ "following": topic.to_string(), "added": added }),
    ))
}

/// Stops following a topic as the calling account.
#[utoipa::path(
    delete,
    path = "/me/follows",
    tag = "social",
    request_body = TopicBody,
    responses(
        (status = 200, description = "`{unfollowed: topic}`", body = Object),
        (status = 400, description = "Not a topic", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 404, description = "The account does not follow it", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn unfollow(
    State(s): State<ApiState>,
    caller: Caller,
    Json(b): Json<TopicBody>,
) -> ApiResult {
    let topic = parse_topic(&b.topic)?;
    if !s.node.unfollow_as(caller.handle(&s), topic).await? {
        return Err(ApiError::not_found(format!("you do not follow {topic}")));
    }
    Ok(Json(json!({ "unfollowed": topic.to_string() })))
}

/// Items of the caller's followed topics, newest first.
#[utoipa::path(
    get,
    path = "/me/timeline",
    tag = "social",
    params(PageQuery),
    responses(
        (status = 200, description = "A page: `{items, next}`", body = Object),
        (status = 400, description = "A bad cursor", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn timeline(
    State(s): State<ApiState>,
    caller: Caller,
    Query(q): Query<PageQuery>,
) -> ApiResult {
    let handle = caller.handle(&s).to_owned();
    let (cursor, limit) = (q.cursor()?, q.limit());
    if let Some(kind) = &q.kind {
        crate::ops::known_kind(kind)?;
    }
    let v = with_store(&s, move |store| {
        let filters: Vec<ListFilter> = store
            .account_follows(&handle)?
            .iter()
            .map(|(t, _)| ListFilter {
                kind: q.kind.clone(),
                ..store::topic_filter(t)
            })
            .collect();
        let mut page = store.list_merged(&filters, cursor, limit, Order::NewestFirst)?;
        let muted: HashSet<Did> = store
            .account_mutes(&handle)?
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        page.items.retain(|(_, item)| !muted.contains(&item.author));
        page_json(store, &page)
    })
    .await?;
    Ok(Json(v))
}

/// An author to mute or let back.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MuteBody {
    /// The author's `did:key:…`.
    #[schema(value_type = crate::openapi::DidText)]
    author: String,
}

fn parse_did(text: &str) -> Result<Did, ApiError> {
    text.parse::<Did>()
        .map_err(|_| ApiError::bad_request(format!("author: {text:?} is not a did:key")))
}

/// The authors the calling account muted.
#[utoipa::path(
    get,
    path = "/me/mutes",
    tag = "social",
    responses(
        (status = 200, description = "`{mutes: [{author, since}]}`", body = Object),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn mutes(State(s): State<ApiState>, caller: Caller) -> ApiResult {
    let handle = caller.handle(&s).to_owned();
    let v = with_store(&s, move |store| {
        let list: Vec<Value> = store
            .account_mutes(&handle)?
            .into_iter()
            .map(|(d, at)| json!({ "author": d.to_string(), "since": at }))
            .collect();
        Ok(json!({ "mutes": list }))
    })
    .await?;
    Ok(Json(v))
}

/// Mutes an author for the calling account.
///
/// Their records leave its timeline, and thread views it asks for mark them `muted: true`.
#[utoipa::path(
    post,
    path = "/me/mutes",
    tag = "social",
    request_body = MuteBody,
    responses(
        (status = 200, description = "`{author, muted: true, changed}`", body = Object),
        (status = 400, description = "Not a did:key", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn mute(State(s): State<ApiState>, caller: Caller, Json(b): Json<MuteBody>) -> ApiResult {
    set_mute(&s, &caller, &b.author, true).await
}

/// Lets a muted author back.
#[utoipa::path(
    delete,
    path = "/me/mutes",
    tag = "social",
    request_body = MuteBody,
    responses(
        (status = 200, description = "`{author, muted: false, changed}`", body = Object),
        (status = 400, description = "Not a did:key", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn unmute(State(s): State<ApiState>, caller: Caller, Json(b): Json<MuteBody>) -> ApiResult {
    set_mute(&s, &caller, &b.author, false).await
}

/// Mutes or unmutes `author` for the caller (shared by the API and the pages).
pub async fn set_mute(s: &ApiState, caller: &Caller, author: &str, on: bool) -> ApiResult {
    let did = parse_did(author)?;
    let handle = caller.handle(s).to_owned();
    let changed = with_store(s, move |store| Ok(store.account_mute(&handle, &did, on)?)).await?;
    Ok(Json(
        json!({ "author": did.to_string(), "muted": on, "changed": changed }),
    ))
}

/// An author's feed (`did:key:…`), or a `social.feed` record (its CID).
///
/// An author's feed is a page of their items, newest first; a feed record answers its curated
/// items, then its query's (`limit` of them; no cursor).
#[utoipa::path(
    get,
    path = "/feeds/{id}",
    tag = "social",
    params(("id" = crate::openapi::FeedIdText, Path, description = "An author's `did:key:…`, or a `social.feed` record's CID"), PageQuery),
    responses(
        (status = 200, description = "`{items, next, author, topic}`, or `{feed, items, query_error}`", body = Object),
        (status = 400, description = "Neither a did nor a CID, or a bad cursor", body = ErrorBody),
        (status = 404, description = "No such feed record on this node", body = ErrorBody),
        (status = 410, description = "The feed record was deleted", body = ErrorBody),
    ),
)]
async fn feed(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult {
    if id.starts_with("did:") {
        let did: Did = id
            .parse()
            .map_err(|e| ApiError::bad_request(format!("{id:?}: {e}")))?;
        let filter = q.filter(ListFilter {
            author: Some(did),
            ..ListFilter::default()
        })?;
        let v = with_store(&s, move |store| {
            let mut v = page_json(store, &store.list(&filter)?)?;
            v["author"] = json!(did.to_string());
            v["topic"] = json!(mnode_protocols::GossipTopic::Author(did).to_string());
            Ok(v)
        })
        .await?;
        return Ok(Json(v));
    }
    let cid = mnode_dag::cids::parse(&id).map_err(|_| {
        ApiError::bad_request(format!(
            "{id:?} is neither an author (did:key:…) nor a feed record's CID"
        ))
    })?;
    let limit = q.limit();
    let v = with_store(&s, move |store| {
        let (id, item, head) = live_item(store, &cid, "social.feed")?;
        let body: Feed = body_of(&head)?;
        let mut ids: Vec<Cid> = body.items.iter().map(|l| l.0).collect();
        // A query that cannot run (it names a malformed CID or did) leaves the curated items.
        let mut query_error = None;
        if let Some(text) = &body.query {
            match query::Query::parse(text).map(|q| public_query(store, &q, 0)) {
                Ok(Ok(QueryResult::Items(found))) => ids.extend(found),
                Ok(Ok(QueryResult::Count(_))) => {}
                Ok(Err(store::StoreError::Query(e))) => query_error = Some(e),
                Ok(Err(e)) => return Err(e.into()),
                Err(e) => query_error = Some(e.to_string()),
            }
        }
        let mut seen = HashSet::new();
        ids.retain(|c| seen.insert(*c));
        Ok(json!({
            "feed": item_json(store, &id, &item, Some(&head))?,
            "items": resolve(store, &ids, limit)?,
            "query_error": query_error,
        }))
    })
    .await?;
    Ok(Json(v))
}

/// The live items `ids` name, in order, at most `limit`; what is missing or deleted is skipped.
fn resolve(store: &Store, ids: &[Cid], limit: usize) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::new();
    for cid in ids {
        if out.len() == limit {
            break;
        }
        let Some(id) = store.item_id(cid)? else {
            continue;
        };
        match store.item(&id)? {
            Some(item) if !item.deleted => {
                let head = store.record(&item.head)?;
                if !head.as_ref().is_some_and(crate::private::is_private) {
                    out.push(item_json(store, &id, &item, head.as_ref())?);
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The tag tree, each tag with how many live items are under it.
#[utoipa::path(
    get,
    path = "/tags",
    tag = "social",
    responses((status = 200, description = "`{tags: [{tag, name, count, children: […]}]}`", body = Object)),
)]
async fn tags(State(s): State<ApiState>) -> ApiResult {
    let list = with_store(&s, |store| Ok(store.tags()?)).await?;
    Ok(Json(json!({ "tags": tag_tree(&list) })))
}

/// Builds the tree from a sorted list of tags with their counts (each tag's ancestors are in
/// the list too, as the index holds every tag with its ancestors).
fn tag_tree(tags: &[(String, u64)]) -> Vec<Value> {
    type Children<'a> = HashMap<Option<&'a str>, Vec<&'a (String, u64)>>;
    fn build(children: &Children<'_>, parent: Option<&str>) -> Vec<Value> {
        let Some(list) = children.get(&parent) else {
            return vec![];
        };
        list.iter()
            .map(|(t, n)| {
                json!({
                    "tag": t,
                    "name": t.rsplit('/').next().unwrap_or(t),
                    "count": n,
                    "children": build(children, Some(t)),
                })
            })
            .collect()
    }
    let mut children: Children<'_> = HashMap::new();
    for t in tags {
        let parent = t.0.rsplit_once('/').map(|(p, _)| p);
        children.entry(parent).or_default().push(t);
    }
    build(&children, None)
}

/// Items with a tag or a tag under it, newest first.
#[utoipa::path(
    get,
    path = "/tags/{*tag}",
    tag = "social",
    params(("tag" = String, Path, description = "A tag path such as `music/jazz` (its slashes unescaped)", pattern = r"^[a-z0-9_-]+(?:/[a-z0-9_-]+)*$", max_length = 100), PageQuery),
    responses(
        (status = 200, description = "A page: `{items, next, tag}`", body = Object),
        (status = 400, description = "Not a tag, or a bad cursor", body = ErrorBody),
    ),
)]
async fn tagged(
    State(s): State<ApiState>,
    Path(tag): Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult {
    check::tag("tag", &tag).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let filter = q.filter(ListFilter {
        tag: Some(tag.clone()),
        ..ListFilter::default()
    })?;
    let v = with_store(&s, move |store| {
        let mut v = page_json(store, &store.list(&filter)?)?;
        v["tag"] = json!(tag);
        Ok(v)
    })
    .await?;
    Ok(Json(v))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct QueryParams {
    /// The query, like `art.artists.list()`; required.
    #[param(value_type = crate::openapi::WidgetQueryText, required = true)]
    q: Option<String>,
    /// Most items answered (default 100, at most 1000).
    limit: Option<usize>,
}

/// A store error from running a query: the query's fault (a bad CID or did) is a 400.
fn query_error(e: store::StoreError) -> ApiError {
    match e {
        store::StoreError::Query(m) => ApiError::new(400, "bad_query", m),
        other => other.into(),
    }
}

/// Runs a widget query, like `art.artists.list()`.
#[utoipa::path(
    get,
    path = "/query",
    tag = "social",
    params(QueryParams),
    responses(
        (status = 200, description = "`{query, kind, items, total}`, or `{query, count}`", body = Object),
        (status = 400, description = "No query, or one that does not parse or run (`bad_query`)", body = ErrorBody),
    ),
)]
async fn run_query(State(s): State<ApiState>, Query(p): Query<QueryParams>) -> ApiResult {
    let text = p.q.ok_or_else(|| {
        ApiError::bad_request("give the query as ?q=, like ?q=art.artists.list()")
    })?;
    let parsed = query::Query::parse(&text).map_err(|e| {
        ApiError::new(
            400,
            "bad_query",
            format!("{} at column {} of {:?}", e.message, e.column, e.input),
        )
    })?;
    let limit = p.limit.unwrap_or(100).clamp(1, MAX_PAGE);
    let v = with_store(&s, move |store| {
        let found = public_query(store, &parsed, 0).map_err(query_error)?;
        Ok(match found {
            QueryResult::Count(n) => json!({ "query": text, "count": n }),
            QueryResult::Items(ids) => json!({
                "query": text,
                "kind": parsed.kind().name,
                "total": ids.len(),
                "items": resolve(store, &ids, limit)?,
            }),
        })
    })
    .await?;
    Ok(Json(v))
}

/// Runs a query as the public view it is (feeds, widgets, `GET /query`): private items are
/// left out before `count()`, `first()` and `limit(n)` apply, so that neither the items nor a
/// count tell anyone of items they cannot read. `scan` as [`Store::query_within`].
pub(crate) fn public_query(
    store: &Store,
    q: &query::Query,
    scan: usize,
) -> Result<QueryResult, store::StoreError> {
    use query::{Method, Step};
    let mut all = q.clone();
    all.steps.retain(|s| {
        !matches!(
            s,
            Step::Call {
                method: Method::Count | Method::First | Method::Limit,
                ..
            }
        )
    });
    let ids = match store.query_within(&all, scan)? {
        QueryResult::Items(ids) => ids,
        QueryResult::Count(_) => Vec::new(),
    };
    let mut public = Vec::with_capacity(ids.len());
    for id in ids {
        let head = match store.item(&id)? {
            Some(item) => store.record(&item.head)?,
            None => None,
        };
        if !head.as_ref().is_some_and(crate::private::is_private) {
            public.push(id);
        }
    }
    for step in &q.steps {
        if let Step::Call { method, args } = step {
            match (method, args.first()) {
                (Method::Count, _) => return Ok(QueryResult::Count(public.len() as u64)),
                (Method::First, _) => public.truncate(1),
                (Method::Limit, Some(query::Value::Int(n))) => {
                    public.truncate(usize::try_from(*n).unwrap_or(usize::MAX));
                }
                _ => {}
            }
        }
    }
    Ok(QueryResult::Items(public))
}

/// Items a widget shows at most.
pub const WIDGET_ITEMS: usize = 24;
/// Items of a kind a widget looks at, at most (the newest).
pub const WIDGET_SCAN: usize = 5_000;

/// Evaluates one widget query for a page: `{query, kind, items, total}` or `{query, count}`,
/// or `{query, error}` when it does not parse or run (a page shows the others anyway).
/// Looks at no more than [`WIDGET_SCAN`] items and answers at most [`WIDGET_ITEMS`].
pub fn widget_json(store: &Store, text: &str) -> Result<Value, ApiError> {
    let parsed = match query::Query::parse(text) {
        Ok(q) => q,
        Err(e) => {
            let error = format!("{} at column {}", e.message, e.column);
            return Ok(json!({ "query": text, "error": error }));
        }
    };
    Ok(match public_query(store, &parsed, WIDGET_SCAN) {
        Ok(QueryResult::Count(n)) => json!({ "query": text, "count": n }),
        Ok(QueryResult::Items(ids)) => json!({
            "query": text,
            "kind": parsed.kind().name,
            "total": ids.len(),
            "items": resolve(store, &ids, WIDGET_ITEMS)?,
        }),
        Err(store::StoreError::Query(m)) => json!({ "query": text, "error": m }),
        Err(e) => return Err(e.into()),
    })
}

/// A page with its widget blocks evaluated against this node's indexes.
#[utoipa::path(
    get,
    path = "/pages/{id}",
    tag = "social",
    params(("id" = crate::openapi::CidText, Path, description = "The page's id or any version's CID")),
    responses(
        (status = 200, description = "`{page, widgets}`: `widgets[i]` is block i's result, or null for other blocks", body = Object),
        (status = 400, description = "Not a CID", body = ErrorBody),
        (status = 404, description = "No such page on this node", body = ErrorBody),
        (status = 410, description = "The page was deleted", body = ErrorBody),
    ),
)]
async fn page(State(s): State<ApiState>, Path(id): Path<String>) -> ApiResult {
    let cid = parse_cid(&id)?;
    let v = with_store(&s, move |store| {
        let (id, item, head) = live_item(store, &cid, "social.page")?;
        let body: mnode_dag::model::social::Page = body_of(&head)?;
        let widgets = body
            .blocks
            .iter()
            .map(|b| match b {
                mnode_dag::model::social::PageBlock::Widget { query } => widget_json(store, query),
                _ => Ok(Value::Null),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(json!({
            "page": item_json(store, &id, &item, Some(&head))?,
            "widgets": widgets,
        }))
    })
    .await?;
    Ok(Json(v))
}

/// A fact with the facts under it and a page of its context notes, newest first.
#[utoipa::path(
    get,
    path = "/facts/{id}",
    tag = "social",
    params(("id" = crate::openapi::CidText, Path, description = "The fact's id or any version's CID"), PageQuery),
    responses(
        (status = 200, description = "`{fact, parent, facts, context, next}`", body = Object),
        (status = 400, description = "Not a CID, or a bad cursor", body = ErrorBody),
        (status = 404, description = "No such fact on this node", body = ErrorBody),
        (status = 410, description = "The fact was deleted", body = ErrorBody),
    ),
)]
async fn fact(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult {
    let cid = parse_cid(&id)?;
    let (cursor, limit) = (q.cursor()?, q.limit());
    let v = with_store(&s, move |store| {
        let (id, item, head) = live_item(store, &cid, "info.fact")?;
        let context = store.list(&ListFilter {
            cursor,
            limit,
            ..in_topic(Topic::About(id), "info.context")
        })?;
        let below = store.list_in(
            &ListFilter {
                limit: MAX_PAGE,
                ..in_topic(Topic::About(id), "info.fact")
            },
            Order::OldestFirst,
        )?;
        let parent = head
            .body_as::<mnode_dag::model::info::Fact>()
            .ok()
            .flatten()
            .and_then(|f| f.parent)
            .map(|Link(p)| p.to_string());
        Ok(json!({
            "fact": item_json(store, &id, &item, Some(&head))?,
            "parent": parent,
            "facts": items_json(store, &below.items)?,
            "context": items_json(store, &context.items)?,
            "next": context.next.map(|c| c.to_string()),
        }))
    })
    .await?;
    Ok(Json(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_tree_nests_children_under_parents() {
        let tags: Vec<(String, u64)> = [
            ("music", 3),
            ("music/jazz", 2),
            ("music/jazz/bebop", 1),
            ("music-x", 1),
            ("visual", 1),
        ]
        .iter()
        .map(|(t, n)| ((*t).to_owned(), *n))
        .collect();
        let tree = tag_tree(&tags);
        let names: Vec<&str> = tree.iter().filter_map(|t| t["tag"].as_str()).collect();
        assert_eq!(names, ["music", "music-x", "visual"]);
        let jazz = &tree[0]["children"][0];
        assert_eq!(jazz["tag"], "music/jazz");
        assert_eq!(jazz["name"], "jazz");
        assert_eq!(jazz["count"], 2);
        assert_eq!(jazz["children"][0]["tag"], "music/jazz/bebop");
        assert_eq!(tree[1]["children"], json!([]));
    }
}

//! Forums, branches and threads: reading them, replying in a thread and forking it.
//!
//! | route | auth | what |
//! |---|---|---|
//! | `GET /forums?cursor&limit` | open | forums, newest first |
//! | `GET /forums/{id}?cursor&limit` | open | a forum and a page of its branches, oldest first |
//! | `GET /branches/{id}?cursor&limit` | open | a branch, its sub-branches and a page of its threads, newest first |
//! | `GET /threads/{id}?cursor&limit` | open | a thread, the threads forked from it and a page of its posts, oldest first |
//! | `POST /threads/{id}/replies {text, parent?, media?, tags?, language?, as?}` | caller | a post in the thread, signed by the acting account |
//! | `POST /threads/{id}/fork {post, title?, tags?, as?}` | caller | a new thread forked at `post` |
//!
//! Forums, branches and threads are made with the generic `POST /records`
//! (`{"kind": "social.forum" | "social.branch" | "social.thread", "body": …}`); a branch or
//! thread is its own gossip topic from the start.
//!
//! A reply without `parent` answers the thread's first post (in a fork with no posts yet: the
//! post it forked at); the first post of a thread answers nothing. A reply's `reply.root` is the
//! root of the conversation its parent is in. `parent` must be a post of the thread, or the post
//! the thread forked at.
//!
//! A fork is a new `social.thread` in the same branch with `fork: {thread, post}`; it takes the
//! thread's tags and `"<title> (fork)"` unless told otherwise, and the acting account follows
//! it (so that the node subscribes to its topic). `post` must be a post of the thread or the
//! post the thread itself forked at. Both answer 201 with the new record's `cid` and `id`.

use axum::{
    Json,
    extract::{Path, Query, State},
    http::StatusCode,
};
use mnode_dag::{
    Cid, Link, Record,
    model::social::{ForkPoint, Post, ReplyRef, Thread},
    registry::Topic,
};
use mnode_node::store::{Cursor, ListFilter, Order, Store};
use mnode_protocols::GossipTopic;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    ApiError, ApiState,
    auth::Caller,
    error::ErrorBody,
    moderation::ForumModeration,
    ops::{Written, publish_pinned},
    routes::{parse_cid, signed, signer},
    social::{PageQuery, body_of, in_topic, item_json, items_json, live_item, page_json},
    with_store,
};

type ApiResult = Result<Json<Value>, ApiError>;

/// Most sub-branches or forks shown beside a page.
const MAX_BESIDE: usize = 1000;
/// Longest thread title (the schema's limit).
const TITLE_CHARS: usize = mnode_dag::model::check::TITLE;

pub(crate) fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(forums))
        .routes(routes!(forum))
        .routes(routes!(branch))
        .routes(routes!(thread))
        .routes(routes!(reply))
        .routes(routes!(fork))
}

/// Forums, newest first.
#[utoipa::path(
    get,
    path = "/forums",
    tag = "forums",
    params(PageQuery),
    responses(
        (status = 200, description = "A page: `{items, next}`", body = Object),
        (status = 400, description = "A bad cursor", body = ErrorBody),
    ),
)]
async fn forums(State(s): State<ApiState>, Query(q): Query<PageQuery>) -> ApiResult {
    let filter = ListFilter {
        kind: Some("social.forum".into()),
        ..q.filter(ListFilter::default())?
    };
    let v = with_store(&s, move |store| page_json(store, &store.list(&filter)?)).await?;
    Ok(Json(v))
}

/// A page of `topic`'s items of `kind`, in `order`: `(items, next)`.
fn page_of(
    store: &Store,
    topic: Topic,
    kind: &str,
    order: Order,
    (cursor, limit): (Option<Cursor>, usize),
) -> Result<(Vec<Value>, Option<String>), ApiError> {
    let filter = ListFilter {
        cursor,
        limit,
        ..in_topic(topic, kind)
    };
    let page = store.list_in(&filter, order)?;
    Ok((
        items_json(store, &page.items)?,
        page.next.map(|c| c.to_string()),
    ))
}

/// Every item (up to [`MAX_BESIDE`]) of `kind` under `topic`, oldest first.
fn beside(store: &Store, topic: Topic, kind: &str) -> Result<Vec<Value>, ApiError> {
    let filter = ListFilter {
        limit: MAX_BESIDE,
        ..in_topic(topic, kind)
    };
    items_json(store, &store.list_in(&filter, Order::OldestFirst)?.items)
}

/// A forum and a page of its branches, oldest first.
#[utoipa::path(
    get,
    path = "/forums/{id}",
    tag = "forums",
    params(("id" = crate::openapi::CidText, Path, description = "The forum's id or any version's CID"), PageQuery),
    responses(
        (status = 200, description = "`{forum, branches, next}`", body = Object),
        (status = 400, description = "Not a CID, or a bad cursor", body = ErrorBody),
        (status = 404, description = "No such forum on this node", body = ErrorBody),
        (status = 410, description = "The forum was deleted", body = ErrorBody),
    ),
)]
async fn forum(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult {
    let cid = parse_cid(&id)?;
    let paging = (q.cursor()?, q.limit());
    let v = with_store(&s, move |store| {
        let (id, item, head) = live_item(store, &cid, "social.forum")?;
        let (items, next) = page_of(
            store,
            Topic::Forum(id),
            "social.branch",
            Order::OldestFirst,
            paging,
        )?;
        Ok(json!({
            "forum": item_json(store, &id, &item, Some(&head))?,
            "branches": items,
            "next": next,
        }))
    })
    .await?;
    Ok(Json(v))
}

/// A branch, its sub-branches and a page of its threads, newest first.
#[utoipa::path(
    get,
    path = "/branches/{id}",
    tag = "forums",
    params(("id" = crate::openapi::CidText, Path, description = "The branch's id or any version's CID"), PageQuery),
    responses(
        (status = 200, description = "`{branch, forum, parent, topic, branches, threads, next}`", body = Object),
        (status = 400, description = "Not a CID, or a bad cursor", body = ErrorBody),
        (status = 404, description = "No such branch on this node", body = ErrorBody),
        (status = 410, description = "The branch was deleted", body = ErrorBody),
    ),
)]
async fn branch(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult {
    let cid = parse_cid(&id)?;
    let paging = (q.cursor()?, q.limit());
    let v = with_store(&s, move |store| {
        let (id, item, head) = live_item(store, &cid, "social.branch")?;
        let body: mnode_dag::model::social::Branch = body_of(&head)?;
        let (mut items, next) = page_of(
            store,
            Topic::Branch(id),
            "social.thread",
            Order::NewestFirst,
            paging,
        )?;
        if let Some(m) = ForumModeration::of(store, &body.forum.0)? {
            m.mark(&mut items);
        }
        Ok(json!({
            "branch": item_json(store, &id, &item, Some(&head))?,
            "forum": body.forum.to_string(),
            "parent": body.parent.map(|p| p.to_string()),
            "topic": GossipTopic::Branch(id).to_string(),
            "branches": beside(store, Topic::Branch(id), "social.branch")?,
            "threads": items,
            "next": next,
        }))
    })
    .await?;
    Ok(Json(v))
}

/// A thread, the threads forked from it and a page of its posts, oldest first.
#[utoipa::path(
    get,
    path = "/threads/{id}",
    tag = "forums",
    params(("id" = crate::openapi::CidText, Path, description = "The thread's id or any version's CID"), PageQuery),
    responses(
        (status = 200, description = "`{thread, branch, fork, topic, forks, posts, next}`", body = Object),
        (status = 400, description = "Not a CID, or a bad cursor", body = ErrorBody),
        (status = 404, description = "No such thread on this node", body = ErrorBody),
        (status = 410, description = "The thread was deleted", body = ErrorBody),
    ),
)]
async fn thread(
    State(s): State<ApiState>,
    caller: Option<Caller>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult {
    let cid = parse_cid(&id)?;
    let paging = (q.cursor()?, q.limit());
    let viewer = caller.map(|c| c.handle(&s).to_owned());
    let v = with_store(&s, move |store| {
        let (id, item, head) = live_item(store, &cid, "social.thread")?;
        let body: Thread = body_of(&head)?;
        let (mut items, next) = page_of(
            store,
            Topic::Thread(id),
            "social.post",
            Order::OldestFirst,
            paging,
        )?;
        let mut thread = item_json(store, &id, &item, Some(&head))?;
        if let Some(m) = ForumModeration::of_branch(store, &body.branch.0)? {
            m.mark(&mut items);
            m.mark(std::slice::from_mut(&mut thread));
        }
        if let Some(h) = &viewer {
            let muted: Vec<String> = store
                .account_mutes(h)?
                .into_iter()
                .map(|(d, _)| d.to_string())
                .collect();
            for p in items.iter_mut() {
                if p["author"]
                    .as_str()
                    .is_some_and(|a| muted.iter().any(|m| m == a))
                {
                    p["muted"] = json!(true);
                }
            }
        }
        Ok(json!({
            "thread": thread,
            "branch": body.branch.to_string(),
            "fork": body.fork.map(|f| json!({
                "thread": f.thread.to_string(),
                "post": f.post.to_string(),
            })),
            "topic": GossipTopic::Thread(id).to_string(),
            "forks": beside(store, Topic::Thread(id), "social.thread")?,
            "posts": items,
            "next": next,
        }))
    })
    .await?;
    Ok(Json(v))
}

/// A live post that is in `thread` (`id`), or the post `thread` forked at.
fn post_in_thread(
    store: &Store,
    cid: &Cid,
    id: &Cid,
    thread: &Thread,
) -> Result<(Cid, Post), ApiError> {
    let (post_id, _, head) = live_item(store, cid, "social.post")?;
    let post: Post = body_of(&head)?;
    let fork_point = thread.fork.is_some_and(|f| f.post.0 == post_id);
    if post.thread.map(|l| l.0) != Some(*id) && !fork_point {
        return Err(ApiError::bad_request(format!(
            "post {post_id} is not in thread {id}"
        )));
    }
    Ok((post_id, post))
}

/// Where a reply in `thread` sits: answering `parent`, or by default the thread's first post
/// (or the post it forked at); `None` for a thread's first post.
fn reply_ref(
    store: &Store,
    id: &Cid,
    thread: &Thread,
    parent: Option<&Cid>,
) -> Result<Option<ReplyRef>, ApiError> {
    let parent = match parent {
        Some(p) => Some(post_in_thread(store, p, id, thread)?),
        None => {
            let first = store.list_in(
                &ListFilter {
                    limit: 1,
                    ..in_topic(Topic::Thread(*id), "social.post")
                },
                Order::OldestFirst,
            )?;
            match (first.items.first(), thread.fork) {
                (Some((first, _)), _) => Some(post_in_thread(store, first, id, thread)?),
                (None, Some(f)) => Some(post_in_thread(store, &f.post.0, id, thread)?),
                (None, None) => None,
            }
        }
    };
    Ok(parent.map(|(parent_id, post)| ReplyRef {
        root: post.reply.map_or(Link(parent_id), |r| r.root),
        parent: Link(parent_id),
    }))
}

/// A post in a thread.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Reply)]
struct ReplyBody {
    text: String,
    /// The post answered (a post of the thread, or the post it forked at); default: the
    /// thread's first post.
    #[schema(value_type = Option<crate::openapi::CidText>)]
    parent: Option<String>,
    /// CIDs of files.
    #[serde(default)]
    #[schema(value_type = Vec<crate::openapi::CidText>)]
    media: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    language: Option<String>,
    /// Sign as this account (admins only); default: the caller.
    #[serde(rename = "as")]
    #[schema(value_type = Option<crate::openapi::HandleText>)]
    as_handle: Option<String>,
}

/// Posts in a thread, signed by the acting account.
#[utoipa::path(
    post,
    path = "/threads/{id}/replies",
    tag = "forums",
    params(("id" = crate::openapi::CidText, Path, description = "The thread's id or any version's CID")),
    request_body = ReplyBody,
    responses(
        (status = 201, description = "`{cid, id, seq, stored, forked, thread, reply}`", body = Object),
        (status = 400, description = "Not a CID, a parent not in the thread, or no such account", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "`as` another account without being an admin", body = ErrorBody),
        (status = 404, description = "No such thread, or no such post (`parent`, `post`) on this node", body = ErrorBody),
        (status = 410, description = "The thread or the parent post was deleted", body = ErrorBody),
        (status = 422, description = "The post breaks the schema (`invalid_record`)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn reply(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(b): Json<ReplyBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let cid = parse_cid(&id)?;
    let parent = b.parent.as_deref().map(parse_cid).transpose()?;
    let media = b
        .media
        .iter()
        .map(|m| parse_cid(m))
        .collect::<Result<Vec<_>, _>>()?;
    let new = NewReply {
        text: b.text,
        parent,
        media,
        tags: b.tags,
        language: b.language,
        as_handle: b.as_handle,
        doc: None,
    };
    let replied = post_reply(&s, &caller, cid, new).await?;
    let mut answer = replied.written.to_json();
    answer["thread"] = json!(replied.thread.to_string());
    answer["reply"] = json!(replied.reply.map(|r| json!({
        "root": r.root.to_string(),
        "parent": r.parent.to_string(),
    })));
    Ok((StatusCode::CREATED, Json(answer)))
}

/// A post to make in a thread: what `POST /threads/{id}/replies` takes, parsed.
#[derive(Debug, Clone, Default)]
pub struct NewReply {
    /// The text.
    pub text: String,
    /// The post answered (a post of the thread, or the post it forked at); `None`: the
    /// thread's first post (or, in an empty fork, the post it forked at), or nothing in an
    /// empty thread.
    pub parent: Option<Cid>,
    /// Attached file records.
    pub media: Vec<Cid>,
    /// Tags.
    pub tags: Vec<String>,
    /// BCP 47 language tag.
    pub language: Option<String>,
    /// Sign as this account (admins only); `None`: the caller.
    pub as_handle: Option<String>,
    /// The post as a rich-text document (then `text` is its plain text).
    pub doc: Option<mnode_dag::doc::Doc>,
}

/// What [`post_reply`] made.
#[derive(Debug, Clone, Copy)]
pub struct Replied {
    /// The new post.
    pub written: Written,
    /// The thread's id.
    pub thread: Cid,
    /// Where the post sits in the conversation (`None` for a thread's first post).
    pub reply: Option<ReplyRef>,
}

/// Posts in the thread `thread` (its id or any version's CID), signed by the acting account,
/// published and pinned: the write path of `POST /threads/{id}/replies`, shared with the web
/// UI. Errors as that route answers them (400 a parent not in the thread, 404/410 the thread,
/// 422 a post that breaks the schema).
pub async fn post_reply(
    s: &ApiState,
    caller: &Caller,
    thread: Cid,
    b: NewReply,
) -> Result<Replied, ApiError> {
    let handle = caller.acting_as(s, b.as_handle)?;
    let parent = b.parent;
    let (id, thread, reply) = with_store(s, move |store| {
        let (id, _, head) = live_item(store, &thread, "social.thread")?;
        let thread: Thread = body_of(&head)?;
        let reply = reply_ref(store, &id, &thread, parent.as_ref())?;
        Ok((id, thread, reply))
    })
    .await?;
    let post = Post {
        text: b.text,
        media: b.media.into_iter().map(Link).collect(),
        reply,
        tags: b.tags,
        branch: Some(thread.branch),
        thread: Some(Link(id)),
        language: b.language,
        doc: b.doc,
    };
    let draft =
        Record::create(&post).map_err(|e| ApiError::new(422, "invalid_record", e.to_string()))?;
    let key = signer(s, handle).await?;
    let record = signed(draft, &key)?;
    let written = publish_pinned(s, record).await?;
    Ok(Replied {
        written,
        thread: id,
        reply,
    })
}

/// Where to fork a thread.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Fork)]
struct ForkBody {
    /// The post to fork at: a post of the thread, or the post it forked at.
    #[schema(value_type = crate::openapi::CidText)]
    post: String,
    /// Default: the thread's title with ` (fork)`.
    title: Option<String>,
    /// Default: the thread's tags.
    tags: Option<Vec<String>>,
    /// Sign as this account (admins only); default: the caller.
    #[serde(rename = "as")]
    #[schema(value_type = Option<crate::openapi::HandleText>)]
    as_handle: Option<String>,
}

/// The title of a fork of a thread titled `title`: `"<title> (fork)"`, shortened to fit the
/// schema's limit.
pub fn fork_title(title: &str) -> String {
    const SUFFIX: &str = " (fork)";
    let keep = TITLE_CHARS - SUFFIX.chars().count();
    let mut t: String = title.chars().take(keep).collect();
    t.push_str(SUFFIX);
    t
}

/// Forks a thread at a post: a new thread, followed by the acting account.
///
/// The fork is its own gossip topic, in the same branch.
#[utoipa::path(
    post,
    path = "/threads/{id}/fork",
    tag = "forums",
    params(("id" = crate::openapi::CidText, Path, description = "The thread's id or any version's CID")),
    request_body = ForkBody,
    responses(
        (status = 201, description = "`{cid, id, seq, stored, topic, fork: {thread, post}}`", body = Object),
        (status = 400, description = "Not a CID, a post not in the thread, or no such account", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "`as` another account without being an admin", body = ErrorBody),
        (status = 404, description = "No such thread, or no such post (`parent`, `post`) on this node", body = ErrorBody),
        (status = 410, description = "The thread or the post was deleted", body = ErrorBody),
        (status = 422, description = "The thread breaks the schema (`invalid_record`)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn fork(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(b): Json<ForkBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let cid = parse_cid(&id)?;
    let at = parse_cid(&b.post)?;
    let new = NewFork {
        post: at,
        title: b.title,
        tags: b.tags,
        as_handle: b.as_handle,
    };
    let forked = fork_thread(&s, &caller, cid, new).await?;
    let mut answer = forked.written.to_json();
    answer["topic"] = json!(forked.topic.to_string());
    answer["fork"] = json!({
        "thread": forked.thread.to_string(),
        "post": forked.post.to_string(),
    });
    Ok((StatusCode::CREATED, Json(answer)))
}

/// Where and how to fork a thread: what `POST /threads/{id}/fork` takes, parsed.
#[derive(Debug, Clone)]
pub struct NewFork {
    /// The post to fork at: a post of the thread, or the post it forked at.
    pub post: Cid,
    /// `None`: the thread's title with ` (fork)` ([`fork_title`]).
    pub title: Option<String>,
    /// `None`: the thread's tags.
    pub tags: Option<Vec<String>>,
    /// Sign as this account (admins only); `None`: the caller.
    pub as_handle: Option<String>,
}

/// What [`fork_thread`] made.
#[derive(Debug, Clone, Copy)]
pub struct Forked {
    /// The new thread.
    pub written: Written,
    /// Its gossip topic, which the acting account now follows.
    pub topic: GossipTopic,
    /// The thread forked from (its id).
    pub thread: Cid,
    /// The post forked at (its id).
    pub post: Cid,
}

/// Forks the thread `thread` (its id or any version's CID) at a post: a new thread in the same
/// branch, signed by the acting account, published, pinned and followed by that account. The
/// write path of `POST /threads/{id}/fork`, shared with the web UI; errors as that route
/// answers them.
pub async fn fork_thread(
    s: &ApiState,
    caller: &Caller,
    thread: Cid,
    b: NewFork,
) -> Result<Forked, ApiError> {
    let handle = caller.acting_as(s, b.as_handle)?;
    let at = b.post;
    let (id, thread, post_id) = with_store(s, move |store| {
        let (id, _, head) = live_item(store, &thread, "social.thread")?;
        let thread: Thread = body_of(&head)?;
        let (post_id, _) = post_in_thread(store, &at, &id, &thread)?;
        Ok((id, thread, post_id))
    })
    .await?;
    let new = Thread {
        branch: thread.branch,
        title: b.title.unwrap_or_else(|| fork_title(&thread.title)),
        tags: b.tags.unwrap_or(thread.tags),
        fork: Some(ForkPoint {
            thread: Link(id),
            post: Link(post_id),
        }),
    };
    let draft =
        Record::create(&new).map_err(|e| ApiError::new(422, "invalid_record", e.to_string()))?;
    let key = signer(s, handle.clone()).await?;
    let record = signed(draft, &key)?;
    let topic = GossipTopic::Thread(record.id());
    let written = publish_pinned(s, record).await?;
    s.node.follow_as(&handle, topic).await?;
    Ok(Forked {
        written,
        topic,
        thread: id,
        post: post_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fork_titles_stay_within_the_schema() {
        assert_eq!(fork_title("Bebop"), "Bebop (fork)");
        let long = "x".repeat(TITLE_CHARS);
        assert_eq!(fork_title(&long).chars().count(), TITLE_CHARS);
    }
}

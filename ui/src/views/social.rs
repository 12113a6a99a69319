//! Authors, following, and live updates.
//!
//! `GET /live?feed=timeline|home`, `?kind=…`, `?author=did` is a Server-Sent Events stream of
//! rendered rows (`event: item`), which htmx's SSE extension puts at the top of the list: a
//! record this node stores from now on (made here or received from a peer) that belongs to
//! the listing is sent once. `?thread=id` sends the new posts of a thread by others than the
//! viewer (their own replies are shown in place when they post them), rendered as the
//! thread's page renders posts.

use std::{collections::HashSet, convert::Infallible};

use axum::{
    Form, Router,
    extract::{Path, Query, State},
    response::{
        IntoResponse, Redirect, Response,
        sse::{Event, KeepAlive, Sse},
    },
    routing::{get, post},
};
use futures::{Stream, StreamExt as _};
use maud::{Markup, html};
use mnode_api::{ApiError, ApiState};
use mnode_dag::{Cid, Did};
use mnode_node::{node::NodeEvent, repo::Repo, store::ListFilter};
use mnode_protocols::GossipTopic;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::{home::PUBLIC_KINDS, records::PageQuery, row, rows, store};
use crate::{
    fmt,
    layout::{self, OrPage, csrf},
    session::Viewer,
};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/authors/{did}", get(author))
        .route("/follow", post(follow))
        .route("/unfollow", post(unfollow))
        .route("/following", get(following))
        .route("/live", get(live))
}

/// The Follow or Unfollow button for `topic`, named for `what` (screen readers hear "Follow
/// @alice"); back to `back` without JavaScript.
pub(crate) fn follow_button(
    v: &Viewer,
    topic: &GossipTopic,
    what: &str,
    following: bool,
    back: &str,
) -> Markup {
    let (action, label) = if following {
        ("/unfollow", "Unfollow")
    } else {
        ("/follow", "Follow")
    };
    html! {
        form.inline.follow method="post" action=(action) hx-post=(action) hx-swap="outerHTML" {
            (csrf(v))
            input type="hidden" name="topic" value=(topic.to_string());
            input type="hidden" name="back" value=(back);
            input type="hidden" name="what" value=(what);
            button type="submit" class=[following.then_some("secondary")] aria-label={ (label) " " (what) } { (label) }
        }
    }
}

async fn author(
    State(s): State<ApiState>,
    v: Viewer,
    Path(did): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Response, Response> {
    let did: Did = did
        .parse()
        .map_err(|e| layout::error(&v, &ApiError::bad_request(format!("not a did:key: {e}"))))?;
    let cursor = q.cursor().map_err(|e| layout::error(&v, &e))?;
    let me = v.handle.clone();
    let (name, list, following) = super::repo(&s, move |repo| {
        let st = repo.store();
        let page = st.list(&ListFilter {
            author: Some(did),
            cursor,
            limit: 50,
            ..Default::default()
        })?;
        let next = page.next.map(|c| format!("/authors/{did}?cursor={c}"));
        let empty = html! { p.empty { "Nothing by this author on this node yet. Follow them to receive what they publish." } };
        let following = match &me {
            Some(h) => st
                .account_follows(h)?
                .iter()
                .any(|(t, _)| *t == GossipTopic::Author(did)),
            None => false,
        };
        Ok((super::author_name(repo, &did), rows(repo, &page.items, next, empty), following))
    })
    .await
    .or_page(&v)?;
    let back = format!("/authors/{did}");
    let body = html! {
        hgroup {
            h1 { (name) }
            p { code title=(did) { (fmt::did(&did)) } }
        }
        @if v.caller.is_some() && v.did != Some(did) {
            p { (follow_button(&v, &GossipTopic::Author(did), &name, following, &back)) }
        } @else if v.caller.is_none() {
            p { a href={ "/login?next=" (crate::session::urlencode(&back)) } { "Log in" } " to follow." }
        }
        div hx-ext="sse" sse-connect={ "/live?author=" (did) } {
            div sse-swap="item" hx-swap="afterbegin" hx-target="#items" {}
        }
        (list)
    };
    Ok(layout::respond(&v, axum::http::StatusCode::OK, &name, body))
}

#[derive(Deserialize)]
struct TopicForm {
    topic: String,
    #[serde(default)]
    back: Option<String>,
    #[serde(default)]
    what: String,
}

fn parse_topic(text: &str) -> Result<GossipTopic, ApiError> {
    if let Ok(did) = text.parse() {
        return Ok(GossipTopic::Author(did));
    }
    text.parse::<GossipTopic>()
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Only paths of this site are followed back to.
fn back_to(back: Option<&str>, fallback: &str) -> String {
    back.filter(|b| b.starts_with('/') && !b.starts_with("//"))
        .unwrap_or(fallback)
        .to_owned()
}

async fn follow(
    State(s): State<ApiState>,
    v: Viewer,
    Form(f): Form<TopicForm>,
) -> Result<Response, Response> {
    set_follow(s, v, f, true).await
}

async fn unfollow(
    State(s): State<ApiState>,
    v: Viewer,
    Form(f): Form<TopicForm>,
) -> Result<Response, Response> {
    set_follow(s, v, f, false).await
}

async fn set_follow(s: ApiState, v: Viewer, f: TopicForm, on: bool) -> Result<Response, Response> {
    let caller = v.require()?.clone();
    let topic = parse_topic(&f.topic).or_page(&v)?;
    let handle = caller.handle(&s).to_owned();
    if on {
        s.node().follow_as(&handle, topic).await.or_page(&v)?;
    } else {
        s.node().unfollow_as(&handle, topic).await.or_page(&v)?;
    }
    let back = back_to(f.back.as_deref(), "/following");
    if v.hx {
        Ok(
            axum::response::Html(follow_button(&v, &topic, &f.what, on, &back).into_string())
                .into_response(),
        )
    } else {
        Ok(Redirect::to(&back).into_response())
    }
}

async fn following(State(s): State<ApiState>, v: Viewer) -> Result<Response, Response> {
    let caller = v.require()?.clone();
    let handle = caller.handle(&s).to_owned();
    let list = super::repo(&s, move |repo| {
        let st = repo.store();
        let follows = st.account_follows(&handle)?;
        Ok(follows
            .into_iter()
            .map(|(t, since)| {
                let (name, text) = topic_name(repo, &t);
                (t, since, name, text)
            })
            .collect::<Vec<_>>())
    })
    .await
    .or_page(&v)?;
    let body = html! {
        h1 { "Following" }
        @if list.is_empty() {
            p.empty { "You follow nobody yet. Open an author's page and press Follow: what they publish then comes to this node and shows on your " a href="/" { "Timeline" } "." }
        }
        ul.rows {
            @for (t, since, name, text) in &list {
                li.row {
                    div {
                        (name) br;
                        small.meta { "since " (fmt::time(*since)) }
                    }
                    (follow_button(&v, t, text, true, "/following"))
                }
            }
        }
    };
    Ok(layout::respond(
        &v,
        axum::http::StatusCode::OK,
        "Following",
        body,
    ))
}

/// A followed topic as a link, and its name as text.
fn topic_name(repo: &Repo, t: &GossipTopic) -> (Markup, String) {
    let st = repo.store();
    match t {
        GossipTopic::Author(did) => {
            let name = super::author_name(repo, did);
            (html! { a href={ "/authors/" (did) } { (name) } }, name)
        }
        other => {
            let text = other.to_string();
            let cid: Option<Cid> = text
                .rsplit('/')
                .next()
                .and_then(|c| mnode_dag::cids::parse(c).ok());
            match cid.and_then(|c| st.head(&c).ok().flatten()) {
                Some(r) => {
                    let title = fmt::title(&r);
                    let link = html! { a href=(super::item_url(r.kind(), &r.id())) { (title) } };
                    (link, title)
                }
                None => (html! { code { (text) } }, text),
            }
        }
    }
}

#[derive(Deserialize)]
struct LiveQuery {
    feed: Option<String>,
    kind: Option<String>,
    author: Option<String>,
    thread: Option<String>,
}

/// Which new records a live listing shows.
#[derive(Clone)]
enum Live {
    Topics(HashSet<GossipTopic>),
    Kinds(Vec<String>),
    Author(Did),
    /// A thread's new posts, but the viewer's own; whether the viewer may reply.
    Thread {
        id: Cid,
        me: Option<Did>,
        logged_in: bool,
    },
}

impl Live {
    fn wants(&self, record: &mnode_dag::Record) -> bool {
        match self {
            Self::Topics(topics) => {
                !super::home::NOT_ON_TIMELINE.contains(&record.kind())
                    && GossipTopic::of(record).iter().any(|t| topics.contains(t))
            }
            Self::Kinds(kinds) => kinds.iter().any(|k| k == record.kind()),
            Self::Author(did) => record.identity() == did,
            Self::Thread { id, me, .. } => {
                record.kind() == "social.post"
                    && me.as_ref() != Some(record.identity())
                    && GossipTopic::of(record).contains(&GossipTopic::Thread(*id))
            }
        }
    }
}

async fn live(
    State(s): State<ApiState>,
    v: Viewer,
    Query(q): Query<LiveQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Response> {
    let thread = q
        .thread
        .as_deref()
        .map(mnode_dag::cids::parse)
        .transpose()
        .map_err(|e| layout::error(&v, &ApiError::bad_request(e.to_string())))?;
    let which = match (thread, q.feed.as_deref(), q.kind, q.author) {
        (Some(id), ..) => Live::Thread {
            id,
            me: v.did,
            logged_in: v.caller.is_some(),
        },
        (_, Some("timeline"), _, _) => {
            let handle = v.require()?.handle(&s).to_owned();
            let topics = store(&s, move |st| Ok(st.account_follows(&handle)?))
                .await
                .or_page(&v)?;
            let mine = v.did.map(GossipTopic::Author);
            Live::Topics(topics.into_iter().map(|(t, _)| t).chain(mine).collect())
        }
        (_, Some("home"), _, _) => {
            Live::Kinds(PUBLIC_KINDS.iter().map(|k| (*k).to_owned()).collect())
        }
        (_, _, Some(kind), _) => Live::Kinds(vec![kind]),
        (_, _, _, Some(did)) => Live::Author(did.parse().map_err(|e| {
            layout::error(&v, &ApiError::bad_request(format!("not a did:key: {e}")))
        })?),
        _ => {
            return Err(layout::error(
                &v,
                &ApiError::bad_request("say which list: feed, kind or author"),
            ));
        }
    };
    // Subscribed before answering: nothing stored after the page was made is missed.
    let rx = s.node().events();
    let stream = futures::stream::unfold((rx, s.clone(), which), |(mut rx, s, which)| async move {
        loop {
            let cid = match rx.recv().await {
                Ok(NodeEvent::Stored { cid, .. } | NodeEvent::Published { cid, .. }) => cid,
                Ok(_) | Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            };
            let w = which.clone();
            let html = super::repo(&s, move |repo| {
                let st = repo.store();
                let Some(record) = st.record(&cid)? else {
                    return Ok(None);
                };
                // Lists are public: a private item is read on its page and in Messages.
                if !w.wants(&record) || mnode_api::private::is_private(&record) {
                    return Ok(None);
                }
                let id = record.id();
                let Some(item) = st.item(&id)? else {
                    return Ok(None);
                };
                // A new version of an item already listed is not a new row.
                if item.versions > 1 || item.deleted {
                    return Ok(None);
                }
                let names = super::Names::of_authors(repo, [item.author]);
                if let Live::Thread {
                    id: thread,
                    logged_in,
                    ..
                } = &w
                {
                    let p = super::forums::PostView::of(st, id, &item);
                    let post = super::forums::post_view(*logged_in, thread, &p, &names, None, None);
                    return Ok(Some(html! { li { (post) } }.into_string()));
                }
                Ok(Some(row(st, &id, &item, &names).into_string()))
            })
            .await;
            match html {
                Ok(Some(html)) => {
                    let event = Event::default()
                        .event("item")
                        .id(cid.to_string())
                        .data(html);
                    return Some((Ok(event), (rx, s, which)));
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(%cid, "live row not sent: {}", e.message),
            }
        }
    })
    .take_until(s.shutdown_token().clone().cancelled_owned());
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

//! `/`: the timeline of whom I follow, or, logged out, what is new on this node.

use axum::{
    Router,
    extract::{Query, State},
    response::Response,
    routing::get,
};
use maud::html;
use mnode_api::{ApiError, ApiState};
use mnode_node::store::{self, Cursor, ListFilter, Order};

use super::{records::PageQuery, rows};
use crate::{
    layout::{self, OrPage},
    session::Viewer,
};

pub(super) fn routes() -> Router<ApiState> {
    Router::new().route("/", get(home))
}

/// What a timeline leaves out: the file records and profiles that come with releases and
/// accounts (the release or the author stands for them).
pub(super) const NOT_ON_TIMELINE: [&str; 5] = [
    "core.file",
    "art.image",
    "art.audio",
    "art.video",
    "core.profile",
];

/// What the home page lists when nobody is logged in.
pub(super) const PUBLIC_KINDS: [&str; 2] = ["art.release", "social.post"];

async fn home(
    State(s): State<ApiState>,
    v: Viewer,
    Query(q): Query<PageQuery>,
) -> Result<Response, Response> {
    let cursor = q.cursor().map_err(|e| layout::error(&v, &e))?;
    let me = v.handle.clone();
    let my_did = v.did;
    let logged_in = me.is_some();
    let (list, follows) = super::repo(&s, move |repo| {
        let st = repo.store();
        let filters: Vec<ListFilter> = match &me {
            // What I follow, and what I publish myself.
            Some(h) => st
                .account_follows(h)?
                .iter()
                .map(|(t, _)| store::topic_filter(t))
                .chain(my_did.map(|did| ListFilter {
                    author: Some(did),
                    ..Default::default()
                }))
                .collect(),
            None => PUBLIC_KINDS
                .iter()
                .map(|k| ListFilter {
                    kind: Some((*k).to_owned()),
                    ..Default::default()
                })
                .collect(),
        };
        let mut page = st.list_merged(&filters, cursor, 50, Order::NewestFirst)?;
        page.items
            .retain(|(_, i)| !NOT_ON_TIMELINE.contains(&i.kind.as_str()));
        let next = page.next.map(|c| format!("/?cursor={c}"));
        let empty = if me.is_some() {
            html! { p.empty { "Nothing here yet. Follow people from their pages ("
            a href="/social/posts" { "Posts" } ", " a href="/art/releases" { "Releases" }
            ") and what they publish appears here as it arrives." } }
        } else {
            html! { p.empty { "No releases or posts on this node yet. "
            a href="/signup" { "Sign up" } " and publish the first one." } }
        };
        Ok((rows(repo, &page.items, next, empty), filters.len()))
    })
    .await
    .or_page(&v)?;
    let (heading, feed) = if logged_in {
        ("Timeline", "timeline")
    } else {
        ("New on this node", "home")
    };
    let body = html! {
        hgroup {
            h1 { (heading) }
            @if logged_in {
                @let n = follows.saturating_sub(1);
                p { "What you and the " (n) @if n == 1 { " author or topic" } @else { " authors and topics" } " you follow publish, newest first, live." }
            } @else {
                p { "The newest releases and posts here. Every item is signed by its author." }
            }
        }
        @if logged_in {
            p { a role="button" href="/social/posts/new" { "New post" } " " a role="button" class="secondary" href="/art/releases/new" { "New release" } }
        }
        div hx-ext="sse" sse-connect={ "/live?feed=" (feed) } {
            div sse-swap="item" hx-swap="afterbegin" hx-target="#items" {}
        }
        (list)
    };
    Ok(layout::respond(
        &v,
        axum::http::StatusCode::OK,
        heading,
        body,
    ))
}

impl PageQuery {
    pub(super) fn cursor(&self) -> Result<Option<Cursor>, ApiError> {
        self.cursor
            .as_deref()
            .map(|c| {
                c.parse()
                    .map_err(|e: store::StoreError| ApiError::bad_request(e.to_string()))
            })
            .transpose()
    }
}

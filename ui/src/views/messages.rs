//! Direct messages: the viewer's conversations, one conversation, and Send.
//!
//! | route | what |
//! |---|---|
//! | `GET /messages` | the viewer's conversations, the latest first, and the form to write to someone |
//! | `GET /messages/{with}` | one conversation (`with`: the others' did:keys, separated by commas), oldest first, with Send |
//! | `POST /messages` | Send: `to` (handles on this node or did:keys, separated by commas) and `text` |
//!
//! A message is a `social.message` sealed for its recipients and the sender
//! (`mnode_api::private`): this node and every other keep and pass on the sealed block, and
//! only the people it is for read it here.

use std::collections::BTreeSet;

use axum::{
    Form, Router,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use maud::{Markup, html};
use mnode_api::{
    ApiError, ApiState,
    private::{self, Conversation, Reader},
};
use mnode_dag::Did;

use super::{
    Names,
    forums::{Kind, field, form_error},
};
use crate::{
    fmt,
    form::Values,
    layout::{self, OrPage, csrf},
    session::Viewer,
};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/messages", get(list).post(send))
        .route("/messages/{with}", get(conversation))
}

/// The viewer as a reader, or the login page.
async fn me(s: &ApiState, v: &Viewer) -> Result<Reader, Response> {
    v.require()?;
    let handle = v.handle.clone().unwrap_or_default();
    super::repo(s, move |repo| private::reader_of(repo, &handle))
        .await
        .or_page(v)?
        .ok_or_else(|| {
            layout::error(
                v,
                &ApiError::bad_request("Your account has no key, so it cannot read messages."),
            )
        })
}

/// The path of the conversation with `with`.
fn conversation_url(with: &[Did]) -> String {
    let list: Vec<String> = with.iter().map(ToString::to_string).collect();
    format!("/messages/{}", list.join(","))
}

/// The conversations of `me` (only the one with `with` when given), with the names of
/// everyone in them.
async fn load(
    s: &ApiState,
    v: &Viewer,
    me: Reader,
    with: Option<BTreeSet<Did>>,
) -> Result<(Vec<Conversation>, Names), Response> {
    super::repo(s, move |repo| {
        let found = private::conversations_of(repo, &me, with.as_ref())?;
        let people: Vec<Did> = found
            .iter()
            .flat_map(|c| c.with.iter().chain(c.messages.iter().map(|m| &m.author)))
            .chain(with.iter().flatten())
            .copied()
            .collect();
        Ok((found, Names::of_authors(repo, people)))
    })
    .await
    .or_page(v)
}

fn people(with: &[Did], names: &Names) -> String {
    if with.is_empty() {
        return "Just you".to_owned();
    }
    with.iter()
        .map(|d| names.of(d))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The Send form: to whom (unless `to` is fixed, in a conversation) and the message.
fn send_form(v: &Viewer, values: &Values, to: Option<&[Did]>) -> Markup {
    html! {
        (form_error(values))
        form method="post" action="/messages" {
            (csrf(v))
            @match to {
                Some(to) => {
                    @let list: Vec<String> = to.iter().map(ToString::to_string).collect();
                    input type="hidden" name="to" value=(list.join(","));
                }
                None => {
                    (field("message", "to", "To", Kind::Line, true, values))
                    small #message-to-hint { "Handles on this node (ben) or did:keys, separated by commas." }
                }
            }
            (field("message", "text", "Message", Kind::Area(3), true, values))
            button type="submit" { "Send" }
        }
    }
}

fn list_page(v: &Viewer, found: &[Conversation], names: &Names, values: &Values) -> Markup {
    html! {
        h1 { "Messages" }
        p { "Only the people a message is for, and you, can read it. Other nodes keep and pass on its encrypted copy, so it arrives when they are back online." }
        (send_form(v, values, None))
        h2 { "Conversations" }
        @if found.is_empty() {
            p.empty { "No messages yet — write to someone above." }
        } @else {
            ul.rows {
                @for c in found {
                    li.row {
                        div {
                            a href=(conversation_url(&c.with)) { strong { (people(&c.with, names)) } }
                            @if let Some(last) = c.messages.last() {
                                br;
                                span { (names.of(&last.author)) ": " (line(&last.text)) }
                                br;
                                small.meta {
                                    (c.messages.len()) @if c.messages.len() == 1 { " message" } @else { " messages" }
                                    " · " (fmt::time(last.created))
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The first line of `text`, at most 80 characters.
fn line(text: &str) -> String {
    let first = text.lines().next().unwrap_or_default();
    let mut out: String = first.chars().take(80).collect();
    if first.chars().count() > 80 || text.lines().nth(1).is_some() {
        out.push('…');
    }
    out
}

/// `GET /messages`.
async fn list(State(s): State<ApiState>, v: Viewer) -> Result<Response, Response> {
    let me = me(&s, &v).await?;
    let (found, names) = load(&s, &v, me, None).await?;
    Ok(layout::respond(
        &v,
        StatusCode::OK,
        "Messages",
        list_page(&v, &found, &names, &Values::default()),
    ))
}

/// `GET /messages/{with}`.
async fn conversation(
    State(s): State<ApiState>,
    v: Viewer,
    Path(with): Path<String>,
) -> Result<Response, Response> {
    let me = me(&s, &v).await?;
    let mut set = BTreeSet::new();
    for d in with.split(',').filter(|d| !d.trim().is_empty()) {
        let did: Did = d.trim().parse().map_err(|_| {
            layout::error(
                &v,
                &ApiError::bad_request(format!("{d:?} is not a did:key.")),
            )
        })?;
        set.insert(did);
    }
    set.remove(&me.identity);
    let others: Vec<Did> = set.iter().copied().collect();
    let (found, names) = load(&s, &v, me, Some(set)).await?;
    let title = format!("Messages with {}", people(&others, &names));
    let messages = found.first().map(|c| c.messages.as_slice()).unwrap_or(&[]);
    let body = html! {
        nav.crumbs aria-label="breadcrumb" { ul { li { a href="/messages" { "Messages" } } } }
        h1 { (title) }
        @if messages.is_empty() {
            p.empty { "No messages yet — write the first one below." }
        }
        ol.messages {
            @for m in messages {
                li.message {
                    p.meta { strong { (names.of(&m.author)) } " · " (fmt::time(m.created)) }
                    @for para in m.text.split("\n\n") { p { (para) } }
                }
            }
        }
        (send_form(&v, &Values::default(), Some(&others)))
    };
    Ok(layout::respond(&v, StatusCode::OK, &title, body))
}

/// `POST /messages`: Send.
async fn send(
    State(s): State<ApiState>,
    v: Viewer,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, Response> {
    let caller = v.require()?.clone();
    let mut values = Values::from_pairs(pairs);
    let text = values.first("text").replace("\r\n", "\n");
    let names: Vec<String> = values
        .first("to")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    if names.is_empty() {
        values.errors.insert(
            "to".into(),
            "Say whom it is for: a handle on this node or a did:key.".into(),
        );
    }
    if text.trim().is_empty() {
        values
            .errors
            .insert("text".into(), "Write a message first.".into());
    }
    let mut to = BTreeSet::new();
    for n in &names {
        match private::resolve_person(&s, n).await {
            Ok(did) => {
                to.insert(did);
            }
            Err(_) => {
                values.errors.insert(
                    "to".into(),
                    format!("{n:?} is neither a handle on this node nor a did:key."),
                );
            }
        }
    }
    if values.errors.is_empty() {
        let list: Vec<String> = to.iter().map(ToString::to_string).collect();
        match private::send(&s, &caller, list, text, None, None).await {
            Ok(_) => {
                let mut others = to;
                if let Some(me) = v.did {
                    others.remove(&me);
                }
                let others: Vec<Did> = others.into_iter().collect();
                return Ok(Redirect::to(&conversation_url(&others)).into_response());
            }
            Err(e) if e.status == 422 => {
                values.errors.insert("text".into(), e.message);
            }
            Err(e) if e.status == 400 => {
                values.errors.insert("to".into(), e.message);
            }
            Err(e) => return Err(layout::error(&v, &e)),
        }
    }
    let me = me(&s, &v).await?;
    let (found, names) = load(&s, &v, me, None).await?;
    Ok(layout::respond(
        &v,
        StatusCode::UNPROCESSABLE_ENTITY,
        "Messages",
        list_page(&v, &found, &names, &values),
    ))
}

//! The pages people talk on: forums, their branches, threads as a tree of posts, forks.
//!
//! | route | what |
//! |---|---|
//! | `GET /forums` | every forum, newest first, with how many branches it has |
//! | `GET /forums/{id}` | a forum: description, rules, moderators, its tag tree and its branches nested |
//! | `GET, POST /forums/{id}/new-branch?parent` | the New branch form |
//! | `GET /branches/{id}` | a branch: sub-branches and threads, newest first |
//! | `GET, POST /branches/{id}/new-thread` | the New thread form: the thread and its first post |
//! | `GET /threads/{id}?post` | a thread's posts as a tree (or the conversation under one post) |
//! | `GET, POST /threads/{id}/reply?to` | the Reply form (a partial under the post for htmx) |
//! | `GET, POST /threads/{id}/fork?at` | the Fork form |
//! | `GET /tags/{tag}` | what is tagged with a tag or a tag under it |
//!
//! Writes go through the API's own code: `ops::create` for forums, branches and threads (as
//! `POST /records`), `ops::post_reply` (`POST /threads/{id}/replies`) and `ops::fork_thread`
//! (`POST /threads/{id}/fork`).

use std::collections::{HashMap, HashSet};

use axum::{
    Form, Router,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use maud::{Markup, html};
use mnode_api::{
    ApiError, ApiState,
    moderation::ForumModeration,
    ops::{self, NewFork, NewReply, body_of, live_item},
};
use mnode_dag::{
    Cid, Did, Link, Model, Record,
    doc::Doc,
    model::{
        check,
        social::{Branch, Forum, Post, Thread},
    },
    registry::{SchemaError, Topic},
};
use mnode_node::{
    repo::Repo,
    store::{Cursor, Item, ListFilter, Order, Store},
};
use mnode_protocols::GossipTopic;
use serde::Deserialize;

use super::{Media, Names, media_at, media_view};
use crate::{
    fmt,
    form::Values,
    layout::{self, OrPage, csrf},
    session::{Viewer, urlencode},
};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/forums", get(forums))
        .route("/forums/{id}", get(forum))
        .route(
            "/forums/{id}/new-branch",
            get(new_branch).post(create_branch),
        )
        .route("/branches/{id}", get(branch))
        .route(
            "/branches/{id}/new-thread",
            get(new_thread).post(create_thread),
        )
        .route("/threads/{id}", get(thread))
        .route("/threads/{id}/reply", get(reply_get).post(reply))
        .route("/threads/{id}/fork", get(fork_form).post(fork))
        .route("/tags/{*tag}", get(tagged))
        .route("/moderate", post(moderate))
        .route("/forums/{id}/moderators", post(moderators))
        .route("/mute", post(mute))
}

/// Most branches, threads' posts or forks read for one page.
const MOST: usize = 1000;
/// Threads a page of a branch lists.
const THREADS_PAGE: usize = 50;
/// How deep replies nest on a thread's page before a "Continue" link.
const MAX_DEPTH: usize = 5;

// ---- shared with the facts pages --------------------------------------------------------------

/// What a text control is.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    Line,
    Url,
    /// A textarea of this many rows.
    Area(u8),
    /// A textarea of this many rows holding Markdown, which the editor island enhances. Post
    /// texts go through [`text_area`].
    Editor(u8),
}

/// A labelled control named `name`, with what was typed and its error (keyed by `name`);
/// its id is `{prefix}-{name}`, so several forms can share a page.
pub(super) fn field(
    prefix: &str,
    name: &str,
    label: &str,
    kind: Kind,
    required: bool,
    values: &Values,
) -> Markup {
    let id = format!("{prefix}-{}", name.replace('_', "-"));
    let error = values.errors.get(name);
    let error_id = format!("{id}-error");
    let invalid = error.map(|_| "true");
    let described = error.map(|_| error_id.as_str());
    let value = values.first(name);
    html! {
        label for=(id) { (label) @if required { " " span.req aria-hidden="true" { "*" } } }
        @match kind {
            Kind::Area(rows) => {
                textarea id=(id) name=(name) rows=(rows) required[required]
                    aria-invalid=[invalid] aria-describedby=[described] { (value) }
            }
            Kind::Editor(rows) => {
                textarea id=(id) name=(name) rows=(rows) data-editor required[required]
                    aria-invalid=[invalid] aria-describedby=[described] { (value) }
            }
            Kind::Line => {
                input id=(id) name=(name) type="text" value=(value) required[required]
                    aria-invalid=[invalid] aria-describedby=[described];
            }
            Kind::Url => {
                input id=(id) name=(name) type="url" value=(value) placeholder="https://"
                    aria-invalid=[invalid] aria-describedby=[described];
            }
        }
        @if let Some(e) = error { small.error id=(error_id) role="alert" { (e) } }
    }
}

/// The textarea a post's text is written in (New thread, Reply): Markdown, which the
/// rich-text editor island enhances where scripts run (pages with it load the island through
/// [`page_with_editor`]).
pub(super) fn text_area(prefix: &str, values: &Values) -> Markup {
    field(prefix, "text", "Text", Kind::Editor(5), true, values)
}

/// A post written in a text area (Markdown): the plain text it carries, and its document
/// when the writing has any formatting beyond paragraphs.
fn written(markdown: &str) -> (String, Option<Doc>) {
    let doc = Doc::from_markdown(markdown);
    let plain = doc.plain_text();
    if doc == Doc::paragraphs(&plain) {
        (plain, None)
    } else {
        (plain, Some(doc))
    }
}

/// Puts a model's validation error at the form field it concerns: `title` at `title`,
/// `tags[2]` at `tags`, `sources[0].url` at `source_url`; `labels` names the fields.
pub(super) fn schema_error(values: &mut Values, e: &SchemaError, labels: &[(&str, &str)]) {
    let field = if e.path.starts_with("sources") {
        if e.path.ends_with(".url") {
            "source_url".to_owned()
        } else {
            "source_title".to_owned()
        }
    } else {
        e.path
            .split(['[', '.'])
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    match labels.iter().find(|(n, _)| *n == field) {
        Some((name, label)) => {
            values
                .errors
                .insert((*name).to_owned(), format!("{label} {}.", e.message));
        }
        None => {
            values.errors.insert(String::new(), e.to_string());
        }
    }
}

/// The message a form shows above its fields for a failure that is no one field's.
pub(super) fn form_error(values: &Values) -> Markup {
    html! {
        @if let Some(e) = values.errors.get("") { p.error role="alert" { (e) } }
        @else if !values.errors.is_empty() { p.error role="alert" { "Not saved: fix the fields marked below." } }
    }
}

/// "Log in to …", back to this page afterwards.
pub(super) fn log_in_to(v: &Viewer, what: &str) -> Markup {
    let path = v.path.split('#').next().unwrap_or("/");
    html! { p.login { a href={ "/login?next=" (urlencode(path)) } { "Log in to " (what) } } }
}

pub(super) fn parse_id(v: &Viewer, id: &str) -> Result<Cid, Response> {
    mnode_dag::cids::parse(id.trim())
        .map_err(|_| layout::error(v, &ApiError::bad_request(format!("{id:?} is not a CID."))))
}

/// A listing of `kind` under `topic`.
pub(super) fn in_topic(topic: Topic, kind: &str, limit: usize) -> ListFilter {
    ListFilter {
        kind: Some(kind.to_owned()),
        topic: Some(topic),
        limit,
        ..ListFilter::default()
    }
}

/// The live items of `kind` under `topic`, oldest first (at most [`MOST`]).
pub(super) fn all_in(st: &Store, topic: Topic, kind: &str) -> Result<Vec<(Cid, Item)>, ApiError> {
    let page = st.list_in(&in_topic(topic, kind, MOST), Order::OldestFirst)?;
    Ok(page.items.into_iter().filter(|(_, i)| !i.deleted).collect())
}

/// A record's body as `M`, if it is live and one.
pub(super) fn model<M: Model>(st: &Store, item: &Item) -> Option<M> {
    st.record(&item.head)
        .ok()
        .flatten()
        .and_then(|r| r.body_as::<M>().ok().flatten())
}

/// The body of a model as the generic `ops::create` takes it, or its first schema error.
pub(super) fn body_of_model<M: Model>(m: &M) -> Result<mnode_dag::Ipld, SchemaError> {
    m.validate()?;
    Record::create(m)
        .ok()
        .and_then(|d| d.body().cloned())
        .ok_or_else(|| SchemaError::new("", "could not be encoded"))
}

/// The first lines of a text, for quoting it.
pub(super) fn excerpt(text: &str) -> String {
    let mut out: String = text.lines().take(3).collect::<Vec<_>>().join("\n");
    if out.chars().count() > 280 {
        out = out.chars().take(279).collect();
        out.push('…');
    } else if text.lines().count() > 3 {
        out.push_str(" …");
    }
    out
}

fn text_or_none(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

/// Tags typed as `music/folk, live`.
fn tags_of(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

fn breadcrumbs(links: &[(String, String)]) -> Markup {
    html! {
        nav.crumbs aria-label="breadcrumb" {
            ul {
                @for (href, name) in links { li { a href=(href) { (name) } } }
            }
        }
    }
}

/// The Follow button of a topic for a member, nothing for a visitor.
fn follow(v: &Viewer, topic: GossipTopic, what: &str, following: bool, back: &str) -> Markup {
    html! {
        @if v.caller.is_some() {
            (super::social::follow_button(v, &topic, what, following, back))
        }
    }
}

/// The topics `v` follows.
fn follows(st: &Store, v: &Viewer) -> Result<HashSet<GossipTopic>, ApiError> {
    Ok(match &v.handle {
        Some(h) => st.account_follows(h)?.into_iter().map(|(t, _)| t).collect(),
        None => HashSet::new(),
    })
}

fn page(v: &Viewer, status: StatusCode, title: &str, body: Markup) -> Response {
    layout::respond(v, status, title, body)
}

/// [`page`], loading the rich-text editor island for its text areas.
fn page_with_editor(v: &Viewer, status: StatusCode, title: &str, body: Markup) -> Response {
    let extra = layout::Extra {
        editor: true,
        ..layout::Extra::default()
    };
    layout::respond_with(v, status, title, extra, body)
}

// ---- forums -----------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct PageQuery {
    cursor: Option<String>,
}

impl PageQuery {
    fn cursor(&self, v: &Viewer) -> Result<Option<Cursor>, Response> {
        self.cursor
            .as_deref()
            .map(str::parse::<Cursor>)
            .transpose()
            .map_err(|e| layout::error(v, &ApiError::bad_request(e.to_string())))
    }
}

/// `GET /forums`.
async fn forums(
    State(s): State<ApiState>,
    v: Viewer,
    Query(q): Query<PageQuery>,
) -> Result<Response, Response> {
    let cursor = q.cursor(&v)?;
    let list = super::repo(&s, move |repo| {
        let st = repo.store();
        let page = st.list(&ListFilter {
            kind: Some("social.forum".into()),
            cursor,
            limit: 50,
            ..Default::default()
        })?;
        let names = Names::of_authors(repo, page.items.iter().map(|(_, i)| i.author));
        let mut out = Vec::new();
        for (id, item) in page.items.iter().filter(|(_, i)| !i.deleted) {
            let Some(forum) = model::<Forum>(st, item) else {
                continue;
            };
            let branches = all_in(st, Topic::Forum(*id), "social.branch")?.len();
            out.push((*id, forum, names.of(&item.author), item.author, branches));
        }
        Ok((out, page.next.map(|c| format!("/forums?cursor={c}"))))
    })
    .await
    .or_page(&v)?;
    let (list, next) = list;
    let body = html! {
        hgroup {
            h1 { "Forums" }
            p { "Places to talk, each with its branches (like categories) and threads." }
        }
        @if v.caller.is_some() {
            p { a role="button" href="/social/forums/new" { "New forum" } }
        }
        @if list.is_empty() {
            p.empty { "No forums on this node yet. "
                @if v.caller.is_some() { a href="/social/forums/new" { "New forum" } }
                @else { a href="/login?next=%2Fforums" { "Log in" } " to start one." } }
        }
        ul.rows {
            @for (id, forum, name, author, branches) in &list {
                li.row {
                    div {
                        a href={ "/forums/" (id) } { strong { (forum.name) } }
                        @if let Some(d) = &forum.description { br; span { (d) } }
                        br;
                        small.meta {
                            (branches) @if *branches == 1 { " branch" } @else { " branches" }
                            " · by " a href={ "/authors/" (author) } { (name) }
                        }
                    }
                }
            }
        }
        @if let Some(n) = next { p { a href=(n) { "Older" } } }
    };
    Ok(page(&v, StatusCode::OK, "Forums", body))
}

/// A branch and what is under it.
struct BranchNode {
    id: Cid,
    branch: Branch,
}

/// Branches nested under their parents (a parent not in the list makes a top-level branch).
fn branch_tree(
    v: &Viewer,
    list: &[BranchNode],
    parent: Option<Cid>,
    following: &HashSet<GossipTopic>,
    back: &str,
) -> Markup {
    let known: HashSet<Cid> = list.iter().map(|b| b.id).collect();
    let here: Vec<&BranchNode> = list
        .iter()
        .filter(|b| {
            let p = b.branch.parent.map(|l| l.0).filter(|p| known.contains(p));
            p == parent
        })
        .collect();
    html! {
        @if !here.is_empty() {
            ul.branches {
                @for b in here {
                    li {
                        div.branch {
                            div {
                                a href={ "/branches/" (b.id) } { strong { (b.branch.name) } }
                                @if let Some(d) = &b.branch.description { br; small.meta { (d) } }
                            }
                            (follow(v, GossipTopic::Branch(b.id), &b.branch.name,
                                following.contains(&GossipTopic::Branch(b.id)), back))
                        }
                        (branch_tree(v, list, Some(b.id), following, back))
                    }
                }
            }
        }
    }
}

/// A forum's tag tree, each tag a link to what carries it.
fn tag_tree(tags: &[String], parent: Option<&str>) -> Markup {
    let here: Vec<&String> = tags
        .iter()
        .filter(|t| t.rsplit_once('/').map(|(p, _)| p) == parent)
        .collect();
    html! {
        @if !here.is_empty() {
            ul.tags {
                @for t in here {
                    li {
                        a.tag href={ "/tags/" (t) } { (t.rsplit('/').next().unwrap_or(t)) }
                        (tag_tree(tags, Some(t)))
                    }
                }
            }
        }
    }
}

/// `GET /forums/{id}`.
async fn forum(
    State(s): State<ApiState>,
    v: Viewer,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let cid = parse_id(&v, &id)?;
    let viewer = v.clone();
    let (id, item, forum, branches, names, following) = super::repo(&s, move |repo| {
        let st = repo.store();
        let (id, item, head) = live_item(st, &cid, "social.forum")?;
        let forum: Forum = body_of(&head)?;
        let branches: Vec<BranchNode> = all_in(st, Topic::Forum(id), "social.branch")?
            .into_iter()
            .filter_map(|(id, item)| {
                model::<Branch>(st, &item).map(|branch| BranchNode { id, branch })
            })
            .collect();
        let names = Names::of_authors(repo, forum.moderators.iter().copied().chain([item.author]));
        Ok((id, item, forum, branches, names, follows(st, &viewer)?))
    })
    .await
    .or_page(&v)?;
    let back = format!("/forums/{id}");
    let mine = v.did == Some(item.author) || v.admin;
    let body = html! {
        (breadcrumbs(&[("/forums".into(), "Forums".into())]))
        hgroup {
            h1 { (forum.name) }
            @if let Some(d) = &forum.description { p { (d) } }
        }
        p.meta { "Started by " a href={ "/authors/" (item.author) } { (names.of(&item.author)) } " · " (fmt::time(item.created)) }
        @if v.caller.is_some() {
            p { (super::social::follow_button(&v, &GossipTopic::Forum(id), &forum.name, following.contains(&GossipTopic::Forum(id)), &back)) }
        }
        @if let Some(r) = &forum.rules {
            section aria-labelledby="rules" {
                h2 #rules { "Rules" }
                (layout::prose(r))
            }
        }
        @if !forum.moderators.is_empty() || mine {
            section aria-labelledby="moderators" {
                h2 #moderators { "Moderators" }
                ul.inline-list {
                    @for m in &forum.moderators {
                        li {
                            a href={ "/authors/" (m) } { (names.of(m)) }
                            @if mine {
                                " "
                                form.inline method="post" action={ "/forums/" (id) "/moderators" } {
                                    (csrf(&v))
                                    input type="hidden" name="who" value=(m);
                                    input type="hidden" name="remove" value="1";
                                    button type="submit" class="secondary outline" aria-label={ "Remove " (names.of(m)) " as moderator" } { "Remove" }
                                }
                            }
                        }
                    }
                }
                @if mine {
                    form.talk method="post" action={ "/forums/" (id) "/moderators" } {
                        (csrf(&v))
                        label for="new-moderator" { "Handle or key" }
                        input #new-moderator name="who" type="text" required placeholder="@handle or did:key:…";
                        button type="submit" { "Add moderator" }
                    }
                }
            }
        }
        @if !forum.tags.is_empty() {
            section aria-labelledby="tags" {
                h2 #tags { "Tags" }
                (tag_tree(&forum.tags, None))
            }
        }
        section aria-labelledby="branches" {
            h2 #branches { "Branches" }
            @if v.caller.is_some() {
                p { a role="button" href={ "/forums/" (id) "/new-branch" } { "New branch" } }
            }
            @if branches.is_empty() {
                p.empty { "No branches yet: a branch is where threads start. "
                    @if v.caller.is_none() { a href={ "/login?next=" (urlencode(&back)) } { "Log in" } " to make one." } }
            }
            (branch_tree(&v, &branches, None, &following, &back))
        }
        nav.actions aria-label="Forum" {
            @if mine { a role="button" class="secondary outline" href={ "/social/forums/" (id) "/edit" } { "Edit" } }
            a role="button" class="secondary outline" href={ "/social/forums/" (id) "/history" } { "History" }
        }
    };
    Ok(page(&v, StatusCode::OK, &forum.name, body))
}

#[derive(Deserialize, Default)]
struct ParentQuery {
    parent: Option<String>,
}

/// The New branch form: Name, Description, Parent branch.
fn branch_form(v: &Viewer, forum: &Cid, branches: &[BranchNode], values: &Values) -> Markup {
    let parent = values.first("parent");
    let error = values.errors.get("parent");
    html! {
        form.talk method="post" action={ "/forums/" (forum) "/new-branch" } {
            (csrf(v))
            (form_error(values))
            (field("branch", "name", "Name", Kind::Line, true, values))
            (field("branch", "description", "Description", Kind::Area(3), false, values))
            label for="branch-parent" { "Parent branch" }
            select #branch-parent name="parent" aria-invalid=[error.map(|_| "true")]
                aria-describedby=[error.map(|_| "branch-parent-error")] {
                option value="" { "None: a top-level branch" }
                @for b in branches {
                    option value=(b.id) selected[parent == b.id.to_string()] { (b.branch.name) }
                }
            }
            @if let Some(e) = error { small.error #branch-parent-error role="alert" { (e) } }
            button type="submit" { "New branch" }
        }
    }
}

async fn forum_and_branches(
    s: &ApiState,
    v: &Viewer,
    cid: Cid,
) -> Result<(Cid, Forum, Vec<BranchNode>), Response> {
    super::store(s, move |st| {
        let (id, _, head) = live_item(st, &cid, "social.forum")?;
        let forum: Forum = body_of(&head)?;
        let branches = all_in(st, Topic::Forum(id), "social.branch")?
            .into_iter()
            .filter_map(|(id, item)| {
                model::<Branch>(st, &item).map(|branch| BranchNode { id, branch })
            })
            .collect();
        Ok((id, forum, branches))
    })
    .await
    .or_page(v)
}

fn branch_page(
    v: &Viewer,
    status: StatusCode,
    id: &Cid,
    forum: &Forum,
    branches: &[BranchNode],
    values: &Values,
) -> Response {
    let title = format!("New branch in {}", forum.name);
    let body = html! {
        (breadcrumbs(&[("/forums".into(), "Forums".into()), (format!("/forums/{id}"), forum.name.clone())]))
        h1 { "New branch" }
        p { "A branch of " a href={ "/forums/" (id) } { (forum.name) } ": threads start in branches, and a branch may sit under another." }
        (branch_form(v, id, branches, values))
    };
    page(v, status, &title, body)
}

/// `GET /forums/{id}/new-branch?parent`.
async fn new_branch(
    State(s): State<ApiState>,
    v: Viewer,
    Path(id): Path<String>,
    Query(q): Query<ParentQuery>,
) -> Result<Response, Response> {
    v.require()?;
    let cid = parse_id(&v, &id)?;
    let (id, forum, branches) = forum_and_branches(&s, &v, cid).await?;
    let mut values = Values::default();
    if let Some(p) = q.parent {
        values.push("parent", p);
    }
    Ok(branch_page(
        &v,
        StatusCode::OK,
        &id,
        &forum,
        &branches,
        &values,
    ))
}

/// `POST /forums/{id}/new-branch`.
async fn create_branch(
    State(s): State<ApiState>,
    v: Viewer,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, Response> {
    let caller = v.require()?.clone();
    let cid = parse_id(&v, &id)?;
    let (id, forum, branches) = forum_and_branches(&s, &v, cid).await?;
    let mut values = Values::from_pairs(pairs);
    let parent = match values.first("parent").trim() {
        "" => None,
        p => match mnode_dag::cids::parse(p) {
            Ok(c) if branches.iter().any(|b| b.id == c) => Some(Link(c)),
            _ => {
                values.errors.insert(
                    "parent".into(),
                    "Choose a branch of this forum, or none.".into(),
                );
                None
            }
        },
    };
    let branch = Branch {
        forum: Link(id),
        name: values.first("name").trim().to_owned(),
        description: text_or_none(&values.first("description").replace("\r\n", "\n")),
        parent,
        tags: vec![],
    };
    let labels = [("name", "Name"), ("description", "Description")];
    if values.errors.is_empty() {
        match body_of_model(&branch) {
            Ok(body) => match ops::create(&s, &caller, "social.branch", body, None).await {
                Ok(w) => return Ok(Redirect::to(&format!("/branches/{}", w.id)).into_response()),
                Err(e) if e.status == 422 || e.status == 400 => {
                    values.errors.insert(String::new(), e.message);
                }
                Err(e) => return Err(layout::error(&v, &e)),
            },
            Err(e) => schema_error(&mut values, &e, &labels),
        }
    }
    Ok(branch_page(
        &v,
        StatusCode::UNPROCESSABLE_ENTITY,
        &id,
        &forum,
        &branches,
        &values,
    ))
}

// ---- branches ---------------------------------------------------------------------------------

/// A thread as a branch lists it.
struct ThreadRow {
    id: Cid,
    item: Item,
    thread: Thread,
    replies: usize,
    last: u64,
}

/// Where a branch sits: its forum and the chain of its parents, top first.
fn branch_path(st: &Store, branch: &Branch) -> Vec<(String, String)> {
    let mut out = vec![("/forums".to_owned(), "Forums".to_owned())];
    if let Ok(Some(head)) = st.head(&branch.forum.0)
        && let Ok(Some(f)) = head.body_as::<Forum>()
    {
        out.push((format!("/forums/{}", branch.forum.0), f.name));
    }
    let mut parents = Vec::new();
    let mut next = branch.parent;
    let mut seen = HashSet::new();
    while let Some(Link(p)) = next {
        if !seen.insert(p) || seen.len() > 20 {
            break;
        }
        let Some(b) = st
            .head(&p)
            .ok()
            .flatten()
            .and_then(|r| r.body_as::<Branch>().ok().flatten())
        else {
            break;
        };
        next = b.parent;
        parents.push((format!("/branches/{p}"), b.name));
    }
    parents.reverse();
    out.extend(parents);
    out
}

/// `GET /branches/{id}`.
async fn branch(
    State(s): State<ApiState>,
    v: Viewer,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Response, Response> {
    let cid = parse_id(&v, &id)?;
    let cursor = q.cursor(&v)?;
    let viewer = v.clone();
    let data = super::repo(&s, move |repo| {
        let st = repo.store();
        let (id, item, head) = live_item(st, &cid, "social.branch")?;
        let branch: Branch = body_of(&head)?;
        let subs: Vec<BranchNode> = all_in(st, Topic::Branch(id), "social.branch")?
            .into_iter()
            .filter_map(|(id, item)| {
                model::<Branch>(st, &item).map(|branch| BranchNode { id, branch })
            })
            .collect();
        let page = st.list_in(
            &ListFilter {
                cursor,
                ..in_topic(Topic::Branch(id), "social.thread", THREADS_PAGE)
            },
            Order::NewestFirst,
        )?;
        let mut threads = Vec::new();
        for (tid, titem) in page.items.iter().filter(|(_, i)| !i.deleted) {
            let Some(thread) = model::<Thread>(st, titem) else {
                continue;
            };
            let posts = all_in(st, Topic::Thread(*tid), "social.post")?;
            let last = posts
                .iter()
                .map(|(_, p)| p.created)
                .max()
                .unwrap_or(titem.created)
                .max(titem.created);
            threads.push(ThreadRow {
                id: *tid,
                item: titem.clone(),
                thread,
                replies: posts.len().saturating_sub(1),
                last,
            });
        }
        let names = Names::of_authors(
            repo,
            threads.iter().map(|t| t.item.author).chain([item.author]),
        );
        let next = page.next.map(|c| format!("/branches/{id}?cursor={c}"));
        Ok((
            id,
            item,
            branch_path(st, &branch),
            branch,
            subs,
            threads,
            names,
            next,
            follows(st, &viewer)?,
        ))
    })
    .await
    .or_page(&v)?;
    let (id, item, crumbs, branch, subs, threads, names, next, following) = data;
    let back = format!("/branches/{id}");
    let mine = v.did == Some(item.author) || v.admin;
    let body = html! {
        (breadcrumbs(&crumbs))
        hgroup {
            h1 { (branch.name) }
            @if let Some(d) = &branch.description { p { (d) } }
        }
        p.meta {
            "Branch by " a href={ "/authors/" (item.author) } { (names.of(&item.author)) } " · " (fmt::time(item.created))
            " " (follow(&v, GossipTopic::Branch(id), &branch.name, following.contains(&GossipTopic::Branch(id)), &back))
        }
        @if v.caller.is_some() {
            p { a role="button" href={ "/branches/" (id) "/new-thread" } { "New thread" } }
        } @else {
            (log_in_to(&v, "start a thread"))
        }
        @if !subs.is_empty() {
            section aria-labelledby="sub-branches" {
                h2 #sub-branches { "Branches" }
                (branch_tree(&v, &subs, None, &following, &back))
            }
        }
        section aria-labelledby="threads" {
            h2 #threads { "Threads" }
            @if threads.is_empty() {
                p.empty { "No threads here yet. "
                    @if v.caller.is_some() { a href={ "/branches/" (id) "/new-thread" } { "New thread" } } }
            }
            ul.rows.threads {
                @for t in &threads {
                    li.row {
                        div {
                            a href={ "/threads/" (t.id) } { strong { (t.thread.title) } }
                            @if t.thread.fork.is_some() { " " small.tag { "fork" } }
                            br;
                            small.meta {
                                "by " a href={ "/authors/" (t.item.author) } { (names.of(&t.item.author)) }
                                " · " (t.replies) @if t.replies == 1 { " reply" } @else { " replies" }
                                " · last activity " (fmt::time(t.last))
                            }
                            @if !t.thread.tags.is_empty() {
                                br;
                                @for tag in &t.thread.tags { a.tag href={ "/tags/" (tag) } { (tag) } " " }
                            }
                        }
                    }
                }
            }
            @if let Some(n) = next { p { a href=(n) { "Older threads" } } }
        }
        nav.actions aria-label="Branch" {
            @if v.caller.is_some() {
                a role="button" class="secondary outline" href={ "/forums/" (branch.forum.0) "/new-branch?parent=" (id) } { "New sub-branch" }
            }
            @if mine { a role="button" class="secondary outline" href={ "/social/branches/" (id) "/edit" } { "Edit" } }
            a role="button" class="secondary outline" href={ "/social/branches/" (id) "/history" } { "History" }
        }
    };
    Ok(page(&v, StatusCode::OK, &branch.name, body))
}

fn thread_form_page(
    v: &Viewer,
    status: StatusCode,
    id: &Cid,
    branch: &Branch,
    crumbs: &[(String, String)],
    values: &Values,
) -> Response {
    let body = html! {
        (breadcrumbs(crumbs))
        h1 { "New thread" }
        p { "In " a href={ "/branches/" (id) } { (branch.name) } ": a title, and the post that starts the conversation." }
        form.talk method="post" action={ "/branches/" (id) "/new-thread" } {
            (csrf(v))
            (form_error(values))
            (field("thread", "title", "Title", Kind::Line, true, values))
            (text_area("thread", values))
            (field("thread", "tags", "Tags", Kind::Line, false, values))
            small { "Separated by commas; a slash makes a sub-tag (music/folk)." }
            button type="submit" { "New thread" }
        }
    };
    page_with_editor(v, status, &format!("New thread in {}", branch.name), body)
}

async fn branch_of(
    s: &ApiState,
    v: &Viewer,
    cid: Cid,
) -> Result<(Cid, Branch, Vec<(String, String)>), Response> {
    super::store(s, move |st| {
        let (id, _, head) = live_item(st, &cid, "social.branch")?;
        let branch: Branch = body_of(&head)?;
        let mut crumbs = branch_path(st, &branch);
        crumbs.push((format!("/branches/{id}"), branch.name.clone()));
        Ok((id, branch, crumbs))
    })
    .await
    .or_page(v)
}

/// `GET /branches/{id}/new-thread`.
async fn new_thread(
    State(s): State<ApiState>,
    v: Viewer,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    v.require()?;
    let cid = parse_id(&v, &id)?;
    let (id, branch, crumbs) = branch_of(&s, &v, cid).await?;
    Ok(thread_form_page(
        &v,
        StatusCode::OK,
        &id,
        &branch,
        &crumbs,
        &Values::default(),
    ))
}

/// `POST /branches/{id}/new-thread`: the thread, then its first post, as
/// `POST /records` and `POST /threads/{id}/replies` make them. Both are checked before either
/// is written; should the post still fail, the thread is there and the page says so, with the
/// text kept in a form that posts it.
async fn create_thread(
    State(s): State<ApiState>,
    v: Viewer,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, Response> {
    let caller = v.require()?.clone();
    let cid = parse_id(&v, &id)?;
    let (id, branch, crumbs) = branch_of(&s, &v, cid).await?;
    let mut values = Values::from_pairs(pairs);
    let text = values.first("text").replace("\r\n", "\n");
    let thread = Thread {
        branch: Link(id),
        title: values.first("title").trim().to_owned(),
        tags: tags_of(values.first("tags")),
        fork: None,
    };
    let labels = [("title", "Title"), ("tags", "Tags"), ("text", "Text")];
    let body = body_of_model(&thread).map_err(|e| schema_error(&mut values, &e, &labels));
    let post = Post {
        text: written(&text).0,
        thread: Some(Link(id)),
        branch: Some(Link(id)),
        ..Post::default()
    };
    if let Err(e) = post.validate() {
        schema_error(&mut values, &e, &labels);
    }
    let body = match body {
        Ok(b) if values.errors.is_empty() => b,
        _ => {
            return Ok(thread_form_page(
                &v,
                StatusCode::UNPROCESSABLE_ENTITY,
                &id,
                &branch,
                &crumbs,
                &values,
            ));
        }
    };
    let made = match ops::create(&s, &caller, "social.thread", body, None).await {
        Ok(w) => w,
        Err(e) if e.status == 422 || e.status == 400 => {
            values.errors.insert(String::new(), e.message);
            return Ok(thread_form_page(
                &v,
                StatusCode::UNPROCESSABLE_ENTITY,
                &id,
                &branch,
                &crumbs,
                &values,
            ));
        }
        Err(e) => return Err(layout::error(&v, &e)),
    };
    // Whoever starts a thread follows it, so that replies made on other nodes come here.
    let handle = caller.handle(&s).to_owned();
    if let Err(e) = s
        .node()
        .follow_as(&handle, GossipTopic::Thread(made.id))
        .await
    {
        tracing::warn!(thread = %made.id, "the new thread is not followed: {e}");
    }
    let (text, doc) = written(&text);
    let first = NewReply {
        text,
        doc,
        ..NewReply::default()
    };
    match ops::post_reply(&s, &caller, made.id, first).await {
        Ok(r) => Ok(
            Redirect::to(&format!("/threads/{}#post-{}", made.id, r.written.id)).into_response(),
        ),
        Err(e) => {
            // The thread exists: its first post is offered again, posting as a reply.
            let mut kept = Values::default();
            kept.push("text", values.first("text").to_owned());
            kept.errors.insert(
                String::new(),
                format!(
                    "The thread “{}” was made, but its first post was not saved: {} Try again below, or open the thread.",
                    thread.title, e.message
                ),
            );
            let body = html! {
                h1 { "Post not saved" }
                (reply_form(&v, &made.id, None, &kept))
                p { a href={ "/threads/" (made.id) } { "Open the thread" } }
            };
            Ok(page(
                &v,
                StatusCode::UNPROCESSABLE_ENTITY,
                "Post not saved",
                body,
            ))
        }
    }
}

// ---- threads ----------------------------------------------------------------------------------

/// A post as a thread shows it.
#[derive(Clone)]
pub(super) struct PostView {
    pub(super) id: Cid,
    pub(super) author: Did,
    pub(super) created: u64,
    /// `None`: deleted.
    pub(super) post: Option<Post>,
    pub(super) media: Vec<Media>,
}

impl PostView {
    pub(super) fn of(st: &Store, id: Cid, item: &Item) -> Self {
        let post = if item.deleted {
            None
        } else {
            model::<Post>(st, item)
        };
        let media = post
            .iter()
            .flat_map(|p| &p.media)
            .filter_map(|l| media_at(st, &l.0))
            .collect();
        Self {
            id,
            author: item.author,
            created: item.created,
            post,
            media,
        }
    }

    fn parent(&self) -> Option<Cid> {
        self.post.as_ref().and_then(|p| p.reply).map(|r| r.parent.0)
    }

    fn text(&self) -> &str {
        self.post.as_ref().map_or("", |p| p.text.as_str())
    }
}

/// What a thread page knows beyond its posts: the forum's moderation and the viewer's mutes,
/// for the Hide, Ban from forum and Mute buttons and for folding posts away.
pub(super) struct Mods<'a> {
    pub(super) v: &'a Viewer,
    pub(super) moderation: Option<&'a ForumModeration>,
    pub(super) muted: &'a HashSet<Did>,
    /// Where the buttons' forms come back to.
    pub(super) back: String,
}

impl Mods<'_> {
    /// Whether the viewer moderates the forum.
    fn moderator(&self) -> bool {
        self.v
            .did
            .zip(self.moderation)
            .is_some_and(|(d, m)| m.is_moderator(&d))
    }
}

/// One post: author, time, text, media, and Reply and Fork for a member; with `mods`, also
/// Mute, and Hide and Ban from forum for the forum's moderators. A hidden or muted post is
/// folded away behind its reason. The reply form opens in the slot after it.
pub(super) fn post_view(
    logged_in: bool,
    thread: &Cid,
    p: &PostView,
    names: &Names,
    quote_parent: Option<&PostView>,
    mods: Option<&Mods<'_>>,
) -> Markup {
    let name = names.of(&p.author);
    let reply_url = format!("/threads/{thread}/reply?to={}", p.id);
    let hidden = mods
        .and_then(|m| m.moderation)
        .and_then(|m| m.state.hidden(&p.id, &p.author).map(|d| (m, d)));
    let muted = mods.is_some_and(|m| m.muted.contains(&p.author));
    let content = html! {
        @match &p.post {
            Some(post) => {
                div.post-text {
                    @match &post.doc {
                        Some(d) => (crate::doc::render(d)),
                        None => (layout::prose(&post.text)),
                    }
                }
                @for m in &p.media { (media_view(m)) }
            }
            None => { p.empty { "This post was deleted." } }
        }
    };
    html! {
        article.post id={ "post-" (p.id) } {
            header {
                a href={ "/authors/" (p.author) } { strong { (name) } }
                " · " a.permalink href={ "/threads/" (thread) "?post=" (p.id) } { (fmt::time(p.created)) }
                @if let Some(parent) = quote_parent {
                    " · " small.meta { "replying to " a href={ "#post-" (parent.id) } { (names.of(&parent.author)) } }
                }
            }
            @if let Some((m, d)) = hidden {
                details.folded {
                    summary {
                        @if m.state.hidden.contains_key(&p.id) { "Hidden by a moderator: " } @else { "Author banned from this forum: " }
                        (d.reason)
                    }
                    (content)
                }
            } @else if muted {
                details.folded {
                    summary { "You muted " (name) }
                    (content)
                }
            } @else {
                (content)
            }
            @if logged_in && p.post.is_some() {
                footer.post-actions {
                    a role="button" class="secondary outline" href=(reply_url)
                        hx-get=(reply_url) hx-target={ "#reply-to-" (p.id) } hx-swap="innerHTML" { "Reply" }
                    a role="button" class="secondary outline" href={ "/threads/" (thread) "/fork?at=" (p.id) } { "Fork" }
                    @if let Some(m) = mods {
                        @if m.v.did != Some(p.author) {
                            (mute_button(m, &p.author, &name, muted))
                        }
                        @if m.moderator() {
                            @if let Some(fm) = m.moderation {
                                (moderate_buttons(m, fm, p, &name))
                            }
                        }
                    }
                }
            }
        }
        div.reply-slot id={ "reply-to-" (p.id) } {}
    }
}

fn mute_button(m: &Mods<'_>, author: &Did, name: &str, muted: bool) -> Markup {
    let label = if muted { "Unmute" } else { "Mute" };
    html! {
        form.inline method="post" action="/mute" {
            (csrf(m.v))
            input type="hidden" name="author" value=(author);
            input type="hidden" name="on" value=(if muted { "false" } else { "true" });
            input type="hidden" name="back" value=(m.back);
            button type="submit" class="secondary outline" aria-label={ (label) " " (name) } { (label) }
        }
    }
}

/// Hide (or Unhide) the post and Ban its author from the forum, each with its reason.
fn moderate_buttons(m: &Mods<'_>, fm: &ForumModeration, p: &PostView, name: &str) -> Markup {
    let hidden = fm.state.hidden.contains_key(&p.id);
    let banned = fm.state.banned.contains_key(&p.author);
    let (action, label) = if hidden {
        ("unhide", "Unhide")
    } else {
        ("hide", "Hide")
    };
    let (ban_action, ban_label) = if banned {
        ("unban", "Let back into forum")
    } else {
        ("ban", "Ban from forum")
    };
    let id = p.id.to_string();
    html! {
        details.moderate {
            summary { "Moderate" }
            form.moderation method="post" action="/moderate" {
                (csrf(m.v))
                input type="hidden" name="forum" value=(fm.forum);
                input type="hidden" name="action" value=(action);
                input type="hidden" name="target" value=(id);
                input type="hidden" name="back" value=(m.back);
                label for={ "hide-reason-" (id) } { "Reason" }
                input id={ "hide-reason-" (id) } name="reason" type="text" required;
                button type="submit" { (label) }
            }
            @if p.author != fm.owner && !fm.body.moderators.contains(&p.author) {
                form.moderation method="post" action="/moderate" {
                    (csrf(m.v))
                    input type="hidden" name="forum" value=(fm.forum);
                    input type="hidden" name="action" value=(ban_action);
                    input type="hidden" name="author" value=(p.author);
                    input type="hidden" name="back" value=(m.back);
                    label for={ "ban-reason-" (id) } { "Reason for " (name) }
                    input id={ "ban-reason-" (id) } name="reason" type="text" required;
                    button type="submit" class="secondary" { (ban_label) }
                }
            }
        }
    }
}

#[derive(Deserialize)]
struct ModerateForm {
    forum: String,
    action: mnode_dag::model::social::ModAction,
    target: Option<String>,
    author: Option<String>,
    reason: String,
    back: Option<String>,
}

/// `POST /moderate`: a moderation decision, through the API's own check and write path.
async fn moderate(
    State(s): State<ApiState>,
    v: Viewer,
    Form(f): Form<ModerateForm>,
) -> Result<Response, Response> {
    let caller = v.require()?.clone();
    let forum = parse_id(&v, &f.forum)?;
    let body = mnode_api::moderation::ModerateBody {
        action: f.action,
        target: f.target.filter(|t| !t.is_empty()),
        author: f.author.filter(|a| !a.is_empty()),
        reason: f.reason,
        as_handle: None,
    };
    let handle = caller.handle(&s).to_owned();
    mnode_api::moderation::take(&s, forum, handle, body)
        .await
        .map_err(|e| layout::error(&v, &e))?;
    Ok(Redirect::to(&local_back(f.back.as_deref(), "/forums")).into_response())
}

#[derive(Deserialize)]
struct ModeratorForm {
    who: String,
    remove: Option<String>,
}

/// `POST /forums/{id}/moderators`: the owner adds (or removes) a moderator, by handle on this
/// node or by key, with a new version of the forum.
async fn moderators(
    State(s): State<ApiState>,
    v: Viewer,
    Path(id): Path<String>,
    Form(f): Form<ModeratorForm>,
) -> Result<Response, Response> {
    let caller = v.require()?.clone();
    let cid = parse_id(&v, &id)?;
    let who = f.who.trim().to_owned();
    let (id, mut forum, did) = super::repo(&s, move |repo| {
        let st = repo.store();
        let (id, _, head) = live_item(st, &cid, "social.forum")?;
        let forum: Forum = body_of(&head)?;
        let did = if who.starts_with("did:key:") {
            who.parse::<Did>()
                .map_err(|_| ApiError::bad_request(format!("{who:?} is not a did:key")))?
        } else {
            let h = who.trim_start_matches('@');
            repo.accounts()
                .get(h)
                .map_err(|e| ApiError::internal(&e))?
                .and_then(|a| a.identity().copied())
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "no account @{h} on this node; give their key (did:key:…) instead"
                    ))
                })?
        };
        Ok((id, forum, did))
    })
    .await
    .or_page(&v)?;
    if f.remove.is_some() {
        forum.moderators.retain(|d| *d != did);
    } else if !forum.moderators.contains(&did) {
        forum.moderators.push(did);
    }
    let body = mnode_dag::cbor::encode(&forum)
        .map_err(|e| e.to_string())
        .and_then(|b| mnode_dag::cbor::decode_ipld(&b).map_err(|e| e.to_string()))
        .map_err(|e| layout::error(&v, &ApiError::internal(&e)))?;
    ops::update(&s, &caller, id, body, None)
        .await
        .map_err(|e| layout::error(&v, &e))?;
    Ok(Redirect::to(&format!("/forums/{id}")).into_response())
}

#[derive(Deserialize)]
struct MuteForm {
    author: String,
    on: bool,
    back: Option<String>,
}

/// `POST /mute`: mutes (or lets back) an author for the viewer's account.
async fn mute(
    State(s): State<ApiState>,
    v: Viewer,
    Form(f): Form<MuteForm>,
) -> Result<Response, Response> {
    let caller = v.require()?.clone();
    ops::set_mute(&s, &caller, &f.author, f.on)
        .await
        .map(drop)
        .map_err(|e| layout::error(&v, &e))?;
    Ok(Redirect::to(&local_back(f.back.as_deref(), "/")).into_response())
}

/// `back` when it is a path on this site, else `fallback`.
fn local_back(back: Option<&str>, fallback: &str) -> String {
    match back {
        Some(b) if b.starts_with('/') && !b.starts_with("//") => b.to_owned(),
        _ => fallback.to_owned(),
    }
}

/// A post with the replies under it, as an item of a thread's tree.
fn post_item(ctx: &TreeCtx<'_>, p: &PostView, depth: usize) -> Markup {
    let kids = ctx.children.get(&Some(p.id)).map_or(&[][..], Vec::as_slice);
    html! {
        li {
            (post_view(ctx.logged_in, ctx.thread, p, ctx.names, None, ctx.mods))
            @if !kids.is_empty() {
                @if depth + 1 >= MAX_DEPTH {
                    p.continue {
                        a href={ "/threads/" (ctx.thread) "?post=" (p.id) } {
                            "Continue this conversation (" (descendants(ctx, p.id)) " more)"
                        }
                    }
                } @else {
                    ul.tree {
                        @for &k in kids { (post_item(ctx, &ctx.posts[k], depth + 1)) }
                    }
                }
            }
        }
    }
}

struct TreeCtx<'a> {
    logged_in: bool,
    mods: Option<&'a Mods<'a>>,
    thread: &'a Cid,
    names: &'a Names,
    posts: &'a [PostView],
    /// Indexes into `posts` by parent (`None`: the top of the thread).
    children: HashMap<Option<Cid>, Vec<usize>>,
}

fn descendants(ctx: &TreeCtx<'_>, id: Cid) -> usize {
    ctx.children.get(&Some(id)).map_or(0, |k| {
        k.iter()
            .map(|&i| 1 + descendants(ctx, ctx.posts[i].id))
            .sum()
    })
}

/// Posts by parent: a post whose parent is not in the thread (the first post, or the first
/// of a fork) is at the top.
fn children_of(posts: &[PostView]) -> HashMap<Option<Cid>, Vec<usize>> {
    let ids: HashSet<Cid> = posts.iter().map(|p| p.id).collect();
    let mut out: HashMap<Option<Cid>, Vec<usize>> = HashMap::new();
    for (i, p) in posts.iter().enumerate() {
        let parent = p.parent().filter(|c| ids.contains(c) && *c != p.id);
        out.entry(parent).or_default().push(i);
    }
    out
}

/// Everything a thread's page shows.
struct ThreadData {
    id: Cid,
    item: Item,
    thread: Thread,
    crumbs: Vec<(String, String)>,
    /// The thread forked from (its title) and the post forked at.
    fork_from: Option<(Cid, String, PostView)>,
    forks: Vec<(Cid, Thread, Item)>,
    posts: Vec<PostView>,
    names: Names,
    following: bool,
    /// The forum's moderation, when the node holds the forum.
    moderation: Option<ForumModeration>,
    /// Authors the viewer muted.
    muted: HashSet<Did>,
}

fn thread_data(repo: &Repo, v: &Viewer, cid: &Cid) -> Result<ThreadData, ApiError> {
    let st = repo.store();
    let (id, item, head) = live_item(st, cid, "social.thread")?;
    let thread: Thread = body_of(&head)?;
    let mut crumbs = vec![("/forums".to_owned(), "Forums".to_owned())];
    if let Some(b) = st
        .head(&thread.branch.0)?
        .and_then(|r| r.body_as::<Branch>().ok().flatten())
    {
        crumbs = branch_path(st, &b);
        crumbs.push((format!("/branches/{}", thread.branch.0), b.name));
    }
    let fork_from = match thread.fork {
        Some(f) => {
            let title = st
                .head(&f.thread.0)?
                .map(|r| fmt::title(&r))
                .unwrap_or_else(|| fmt::short(&f.thread.0.to_string()));
            let post = match (st.item_id(&f.post.0)?, st.item(&f.post.0)?) {
                (Some(pid), Some(pitem)) => PostView::of(st, pid, &pitem),
                _ => PostView {
                    id: f.post.0,
                    author: item.author,
                    created: 0,
                    post: None,
                    media: vec![],
                },
            };
            Some((f.thread.0, title, post))
        }
        None => None,
    };
    let forks = all_in(st, Topic::Thread(id), "social.thread")?
        .into_iter()
        .filter_map(|(fid, fitem)| model::<Thread>(st, &fitem).map(|t| (fid, t, fitem)))
        .collect::<Vec<_>>();
    let posts: Vec<PostView> = st
        .list_in(
            &in_topic(Topic::Thread(id), "social.post", MOST),
            Order::OldestFirst,
        )?
        .items
        .iter()
        .map(|(pid, pitem)| PostView::of(st, *pid, pitem))
        .collect();
    let names = Names::of_authors(
        repo,
        posts
            .iter()
            .map(|p| p.author)
            .chain(forks.iter().map(|(_, _, i)| i.author))
            .chain(fork_from.iter().map(|(_, _, p)| p.author))
            .chain([item.author]),
    );
    let following = follows(st, v)?.contains(&GossipTopic::Thread(id));
    let moderation = ForumModeration::of_branch(st, &thread.branch.0)?;
    let muted = match &v.handle {
        Some(h) => st.account_mutes(h)?.into_iter().map(|(d, _)| d).collect(),
        None => HashSet::new(),
    };
    Ok(ThreadData {
        id,
        item,
        thread,
        crumbs,
        fork_from,
        forks,
        posts,
        names,
        following,
        moderation,
        muted,
    })
}

#[derive(Deserialize, Default)]
struct ThreadQuery {
    /// Show the conversation under this post.
    post: Option<String>,
}

/// `GET /threads/{id}?post`.
async fn thread(
    State(s): State<ApiState>,
    v: Viewer,
    Path(id): Path<String>,
    Query(q): Query<ThreadQuery>,
) -> Result<Response, Response> {
    let cid = parse_id(&v, &id)?;
    let focus = q.post.as_deref().map(|p| parse_id(&v, p)).transpose()?;
    let viewer = v.clone();
    let d = super::repo(&s, move |repo| thread_data(repo, &viewer, &cid))
        .await
        .or_page(&v)?;
    let id = d.id;
    let back = format!("/threads/{id}");
    let logged_in = v.caller.is_some();
    let mods = Mods {
        v: &v,
        moderation: d.moderation.as_ref(),
        muted: &d.muted,
        back: back.clone(),
    };
    let mut ctx = TreeCtx {
        logged_in,
        mods: Some(&mods),
        thread: &id,
        names: &d.names,
        posts: &d.posts,
        children: children_of(&d.posts),
    };
    let focused = focus.and_then(|f| d.posts.iter().position(|p| p.id == f));
    if let Some(i) = focused {
        // The conversation under one post: it is the top.
        ctx.children.insert(None, vec![i]);
    }
    let parent_of_focus = focused
        .and_then(|i| d.posts[i].parent())
        .filter(|p| d.posts.iter().any(|x| x.id == *p));
    let top = ctx.children.get(&None).cloned().unwrap_or_default();
    let body = html! {
        (breadcrumbs(&d.crumbs))
        hgroup {
            h1 { (d.thread.title) }
            p.meta {
                "Thread by " a href={ "/authors/" (d.item.author) } { (d.names.of(&d.item.author)) }
                " · " (fmt::time(d.item.created))
                " · " (d.posts.len()) @if d.posts.len() == 1 { " post" } @else { " posts" }
            }
        }
        @if !d.thread.tags.is_empty() {
            p { @for tag in &d.thread.tags { a.tag href={ "/tags/" (tag) } { (tag) } " " } }
        }
        @if logged_in {
            p { (follow(&v, GossipTopic::Thread(id), &d.thread.title, d.following, &back)) }
        }
        @if let Some((from, title, post)) = &d.fork_from {
            aside.forked {
                p {
                    "Forked from " a href={ "/threads/" (from) } { (title) }
                    " at " a href={ "/threads/" (from) "?post=" (post.id) "#post-" (post.id) } { "the post by " (d.names.of(&post.author)) }
                }
                @if post.post.is_some() {
                    blockquote { (layout::prose(&excerpt(post.text()))) }
                }
            }
        }
        @if let Some(i) = focused {
            p.notice {
                "One conversation of this thread. "
                @if let Some(p) = parent_of_focus { a href={ "/threads/" (id) "?post=" (p) } { "Up one post" } " · " }
                a href={ "/threads/" (id) "#post-" (d.posts[i].id) } { "The whole thread" }
            }
        }
        section aria-label="Posts" {
            @if d.posts.is_empty() {
                p.empty { "No posts yet." }
                @if logged_in {
                    (reply_form(&v, &id, None, &Values::default()))
                }
            }
            ul.tree.top {
                @for k in top { (post_item(&ctx, &d.posts[k], 0)) }
            }
        }
        section aria-labelledby="new-posts" hx-ext="sse" sse-connect={ "/live?thread=" (id) } {
            h2.visually-hidden #new-posts { "New posts" }
            div sse-swap="item" hx-swap="beforeend" hx-target="#live-posts" {}
            ul.tree.top #live-posts {}
        }
        @if !logged_in { (log_in_to(&v, "reply")) }
        @if !d.forks.is_empty() {
            section aria-labelledby="forks" {
                h2 #forks { "Forks" }
                ul {
                    @for (fid, f, fitem) in &d.forks {
                        li {
                            a href={ "/threads/" (fid) } { (f.title) }
                            " " small.meta { "by " (d.names.of(&fitem.author)) " · " (fmt::time(fitem.created))
                                @if let Some(fp) = f.fork { " · at " a href={ "#post-" (fp.post.0) } { "this post" } } }
                        }
                    }
                }
            }
        }
        nav.actions aria-label="Thread" {
            @if v.did == Some(d.item.author) || v.admin {
                a role="button" class="secondary outline" href={ "/social/threads/" (id) "/edit" } { "Edit" }
            }
            a role="button" class="secondary outline" href={ "/social/threads/" (id) "/history" } { "History" }
        }
    };
    // Members reply in place, in the editor.
    if logged_in {
        Ok(page_with_editor(&v, StatusCode::OK, &d.thread.title, body))
    } else {
        Ok(page(&v, StatusCode::OK, &d.thread.title, body))
    }
}

/// The reply form: the parent quoted, a Text box, Reply. Posts by htmx in place (the answer
/// replaces the form) and as a plain form otherwise.
fn reply_form(
    v: &Viewer,
    thread: &Cid,
    parent: Option<(&PostView, &str)>,
    values: &Values,
) -> Markup {
    let prefix = match parent {
        Some((p, _)) => format!("reply-{}", p.id),
        None => "reply".to_owned(),
    };
    let action = format!("/threads/{thread}/reply");
    let name = match parent {
        Some((_, author)) => format!("Reply to {author}"),
        None => "Reply".to_owned(),
    };
    html! {
        form.talk.reply method="post" action=(action) hx-post=(action) hx-swap="outerHTML" aria-label=(name) {
            (csrf(v))
            @if let Some((p, name)) = parent {
                input type="hidden" name="parent" value=(p.id);
                blockquote {
                    small.meta { (name) " wrote:" }
                    (layout::prose(&excerpt(p.text())))
                }
            }
            (form_error(values))
            (text_area(&prefix, values))
            button type="submit" { "Reply" }
        }
    }
}

#[derive(Deserialize, Default)]
struct ReplyQuery {
    to: Option<String>,
}

/// The post `pid` of the thread `cid` (or the post it forked at), with its author's name.
async fn parent_post(
    s: &ApiState,
    v: &Viewer,
    cid: Cid,
    pid: Option<Cid>,
) -> Result<(Cid, String, Option<(PostView, String)>), Response> {
    super::repo(s, move |repo| {
        let st = repo.store();
        let (id, _, head) = live_item(st, &cid, "social.thread")?;
        let title = fmt::title(&head);
        let Some(pid) = pid else {
            return Ok((id, title, None));
        };
        let (pid, item, _) = live_item(st, &pid, "social.post").map_err(|e| {
            if e.status == 404 {
                ApiError::bad_request(e.message)
            } else {
                e
            }
        })?;
        let p = PostView::of(st, pid, &item);
        let name = super::author_name(repo, &p.author);
        Ok((id, title, Some((p, name))))
    })
    .await
    .or_page(v)
}

fn reply_page(
    v: &Viewer,
    status: StatusCode,
    id: &Cid,
    title: &str,
    parent: Option<&(PostView, String)>,
    values: &Values,
) -> Response {
    let form = reply_form(v, id, parent.map(|(p, n)| (p, n.as_str())), values);
    if v.hx {
        return (status, Html(form.into_string())).into_response();
    }
    let body = html! {
        p { a href={ "/threads/" (id) } { "← " (title) } }
        h1 { "Reply" }
        (form)
    };
    page_with_editor(v, status, &format!("Reply in {title}"), body)
}

/// `GET /threads/{id}/reply?to`: the form, under the post (htmx) or as a page.
async fn reply_get(
    State(s): State<ApiState>,
    v: Viewer,
    Path(id): Path<String>,
    Query(q): Query<ReplyQuery>,
) -> Result<Response, Response> {
    v.require()?;
    let cid = parse_id(&v, &id)?;
    let to =
        q.to.as_deref()
            .filter(|t| !t.is_empty())
            .map(|t| parse_id(&v, t))
            .transpose()?;
    let (id, title, parent) = parent_post(&s, &v, cid, to).await?;
    Ok(reply_page(
        &v,
        StatusCode::OK,
        &id,
        &title,
        parent.as_ref(),
        &Values::default(),
    ))
}

/// `POST /threads/{id}/reply`: through `ops::post_reply`, as `POST /threads/{id}/replies`.
/// htmx gets the new post in place of the form; a plain form goes to the post in its thread.
async fn reply(
    State(s): State<ApiState>,
    v: Viewer,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, Response> {
    let caller = v.require()?.clone();
    let cid = parse_id(&v, &id)?;
    let mut values = Values::from_pairs(pairs);
    let to = match values.first("parent").trim() {
        "" => None,
        p => Some(parse_id(&v, p)?),
    };
    let (id, title, parent) = parent_post(&s, &v, cid, to).await?;
    let (text, doc) = written(&values.first("text").replace("\r\n", "\n"));
    if let Err(e) = check::text("text", &text, 1, check::LONG_TEXT) {
        schema_error(&mut values, &e, &[("text", "Text")]);
        return Ok(reply_page(
            &v,
            StatusCode::UNPROCESSABLE_ENTITY,
            &id,
            &title,
            parent.as_ref(),
            &values,
        ));
    }
    let new = NewReply {
        text,
        doc,
        parent: parent.as_ref().map(|(p, _)| p.id),
        ..NewReply::default()
    };
    let replied = match ops::post_reply(&s, &caller, id, new).await {
        Ok(r) => r,
        Err(e) if e.status == 422 || e.status == 400 => {
            values.errors.insert(String::new(), e.message);
            return Ok(reply_page(
                &v,
                StatusCode::UNPROCESSABLE_ENTITY,
                &id,
                &title,
                parent.as_ref(),
                &values,
            ));
        }
        Err(e) => return Err(layout::error(&v, &e)),
    };
    let post = replied.written.id;
    if !v.hx {
        return Ok(Redirect::to(&format!("/threads/{id}#post-{post}")).into_response());
    }
    let shown = super::repo(&s, move |repo| {
        let st = repo.store();
        let item = st
            .item(&post)?
            .ok_or_else(|| ApiError::not_found(format!("no post {post}")))?;
        let p = PostView::of(st, post, &item);
        let names = Names::of_authors(repo, [p.author]);
        Ok(post_view(true, &id, &p, &names, None, None))
    })
    .await
    .or_page(&v)?;
    let markup = html! { ul.tree.new { li { (shown) } } };
    Ok((StatusCode::OK, Html(markup.into_string())).into_response())
}

#[derive(Deserialize, Default)]
struct ForkQuery {
    at: Option<String>,
}

fn fork_page(
    v: &Viewer,
    status: StatusCode,
    id: &Cid,
    title: &str,
    at: &(PostView, String),
    values: &Values,
) -> Response {
    let (post, name) = at;
    let body = html! {
        p { a href={ "/threads/" (id) } { "← " (title) } }
        h1 { "Fork" }
        p { "A fork is a new thread that starts after this post; it links back here, and this thread lists it among its forks." }
        blockquote {
            small.meta { (name) " wrote:" }
            (layout::prose(&excerpt(post.text())))
        }
        form.talk method="post" action={ "/threads/" (id) "/fork" } {
            (csrf(v))
            input type="hidden" name="at" value=(post.id);
            (form_error(values))
            (field("fork", "title", "Title", Kind::Line, true, values))
            button type="submit" { "Fork" }
        }
    };
    page(v, status, &format!("Fork {title}"), body)
}

/// `GET /threads/{id}/fork?at`.
async fn fork_form(
    State(s): State<ApiState>,
    v: Viewer,
    Path(id): Path<String>,
    Query(q): Query<ForkQuery>,
) -> Result<Response, Response> {
    v.require()?;
    let cid = parse_id(&v, &id)?;
    let at = parse_id(&v, q.at.as_deref().unwrap_or_default())?;
    let (id, title, parent) = parent_post(&s, &v, cid, Some(at)).await?;
    let Some(at) = parent else {
        return Err(layout::error(
            &v,
            &ApiError::bad_request("Say which post to fork at."),
        ));
    };
    let mut values = Values::default();
    values.push("title", ops::fork_title(&title));
    Ok(fork_page(&v, StatusCode::OK, &id, &title, &at, &values))
}

/// `POST /threads/{id}/fork`: through `ops::fork_thread`, as `POST /threads/{id}/fork`.
async fn fork(
    State(s): State<ApiState>,
    v: Viewer,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, Response> {
    let caller = v.require()?.clone();
    let cid = parse_id(&v, &id)?;
    let mut values = Values::from_pairs(pairs);
    let at = parse_id(&v, values.first("at"))?;
    let (id, title, parent) = parent_post(&s, &v, cid, Some(at)).await?;
    let Some(at) = parent else {
        return Err(layout::error(
            &v,
            &ApiError::bad_request("Say which post to fork at."),
        ));
    };
    let new_title = values.first("title").trim().to_owned();
    if let Err(e) = check::text("title", &new_title, 1, check::TITLE) {
        schema_error(&mut values, &e, &[("title", "Title")]);
        return Ok(fork_page(
            &v,
            StatusCode::UNPROCESSABLE_ENTITY,
            &id,
            &title,
            &at,
            &values,
        ));
    }
    let new = NewFork {
        post: at.0.id,
        title: Some(new_title),
        tags: None,
        as_handle: None,
    };
    match ops::fork_thread(&s, &caller, id, new).await {
        Ok(f) => Ok(Redirect::to(&format!("/threads/{}", f.written.id)).into_response()),
        Err(e) if e.status == 422 || e.status == 400 => {
            values.errors.insert(String::new(), e.message);
            Ok(fork_page(
                &v,
                StatusCode::UNPROCESSABLE_ENTITY,
                &id,
                &title,
                &at,
                &values,
            ))
        }
        Err(e) => Err(layout::error(&v, &e)),
    }
}

// ---- tags -------------------------------------------------------------------------------------

/// `GET /tags/{tag}`: what carries a tag or a tag under it, newest first.
async fn tagged(
    State(s): State<ApiState>,
    v: Viewer,
    Path(tag): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Response, Response> {
    check::tag("tag", &tag).map_err(|e| layout::error(&v, &ApiError::bad_request(e.message)))?;
    let cursor = q.cursor(&v)?;
    let t = tag.clone();
    let list = super::repo(&s, move |repo| {
        let st = repo.store();
        let mut page = st.list(&ListFilter {
            tag: Some(t.clone()),
            cursor,
            limit: 50,
            ..Default::default()
        })?;
        page.items.retain(|(_, i)| !i.deleted);
        let next = page.next.map(|c| format!("/tags/{t}?cursor={c}"));
        let empty = html! { p.empty { "Nothing on this node carries this tag yet." } };
        Ok(super::rows(repo, &page.items, next, empty))
    })
    .await
    .or_page(&v)?;
    let parent = tag.rsplit_once('/').map(|(p, _)| p.to_owned());
    let body = html! {
        hgroup {
            h1 { "Tagged " (tag) }
            p { "Everything here tagged " code { (tag) } " or a tag under it, newest first." }
        }
        @if let Some(p) = parent { p { a href={ "/tags/" (p) } { "Up to " (p) } } }
        (list)
    };
    Ok(page(&v, StatusCode::OK, &format!("Tagged {tag}"), body))
}

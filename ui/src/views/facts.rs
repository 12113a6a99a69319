//! Facts: a statement with its sources, the facts under it as a tree, and the context notes
//! people attach to it.
//!
//! | route | what |
//! |---|---|
//! | `GET /facts` | every fact, newest first |
//! | `GET /facts/{id}` | a fact, its sources, the facts under it, its context notes, and the Add context and Add fact forms |
//! | `POST /facts/{id}/context` | Add context: an `info.context` about the fact |
//! | `POST /facts/{id}/facts` | Add fact: an `info.fact` under it |
//!
//! Both writes are `ops::create`, the write path of `POST /records`.

use axum::{
    Form, Router,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use maud::{Markup, html};
use mnode_api::{
    ApiError, ApiState,
    ops::{self, body_of, live_item},
};
use mnode_dag::{
    Cid, Link,
    model::{
        Source,
        info::{Context, Fact},
    },
    registry::Topic,
};
use mnode_node::{
    repo::Repo,
    store::{Cursor, Item, ListFilter, Order},
};
use serde::Deserialize;

use super::{
    Names,
    forums::{
        Kind, all_in, body_of_model, field, form_error, in_topic, log_in_to, model, parse_id,
        schema_error,
    },
};
use crate::{
    fmt,
    form::Values,
    layout::{self, OrPage, csrf},
    session::Viewer,
};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/facts", get(facts))
        .route("/facts/{id}", get(fact))
        .route("/facts/{id}/context", post(add_context))
        .route("/facts/{id}/facts", post(add_fact))
}

/// How deep the facts under a fact are shown.
const FACT_DEPTH: usize = 4;
/// Most facts shown under one.
const FACTS_SHOWN: usize = 300;

#[derive(Deserialize, Default)]
struct PageQuery {
    cursor: Option<String>,
}

/// `GET /facts`.
async fn facts(
    State(s): State<ApiState>,
    v: Viewer,
    Query(q): Query<PageQuery>,
) -> Result<Response, Response> {
    let cursor = q
        .cursor
        .as_deref()
        .map(str::parse::<Cursor>)
        .transpose()
        .map_err(|e| layout::error(&v, &ApiError::bad_request(e.to_string())))?;
    let list = super::repo(&s, move |repo| {
        let st = repo.store();
        let mut page = st.list(&ListFilter {
            kind: Some("info.fact".into()),
            cursor,
            limit: 50,
            ..Default::default()
        })?;
        page.items.retain(|(_, i)| !i.deleted);
        let next = page.next.map(|c| format!("/facts?cursor={c}"));
        let empty = html! { p.empty { "No facts on this node yet." } };
        Ok(super::rows(repo, &page.items, next, empty))
    })
    .await
    .or_page(&v)?;
    let body = html! {
        hgroup {
            h1 { "Facts" }
            p { "Statements with their sources, each with the facts under it and the context people add." }
        }
        @if v.caller.is_some() { p { a role="button" href="/info/facts/new" { "New fact" } } }
        (list)
    };
    Ok(layout::respond(&v, StatusCode::OK, "Facts", body))
}

/// A fact and the facts under it.
struct FactNode {
    id: Cid,
    fact: Fact,
    under: Vec<FactNode>,
}

fn facts_under(
    st: &mnode_node::store::Store,
    id: Cid,
    depth: usize,
    budget: &mut usize,
) -> Result<Vec<FactNode>, ApiError> {
    if depth >= FACT_DEPTH || *budget == 0 {
        return Ok(vec![]);
    }
    let mut out = Vec::new();
    for (fid, item) in all_in(st, Topic::About(id), "info.fact")? {
        if *budget == 0 {
            break;
        }
        let Some(fact) = model::<Fact>(st, &item) else {
            continue;
        };
        *budget -= 1;
        let under = facts_under(st, fid, depth + 1, budget)?;
        out.push(FactNode {
            id: fid,
            fact,
            under,
        });
    }
    Ok(out)
}

fn fact_tree(nodes: &[FactNode]) -> Markup {
    html! {
        @if !nodes.is_empty() {
            ul.facts {
                @for n in nodes {
                    li id={ "fact-" (n.id) } {
                        a href={ "/facts/" (n.id) } { (n.fact.statement) }
                        @if !n.fact.sources.is_empty() {
                            " " small.meta { "(" (n.fact.sources.len()) @if n.fact.sources.len() == 1 { " source" } @else { " sources" } ")" }
                        }
                        (fact_tree(&n.under))
                    }
                }
            }
        }
    }
}

fn sources(list: &[Source]) -> Markup {
    html! {
        @if !list.is_empty() {
            ul.sources {
                @for src in list {
                    li {
                        @match (&src.url, &src.link) {
                            (Some(url), _) => { a href=(url) rel="nofollow noopener" { (src.title) } " " small.meta { (url) } }
                            (None, Some(l)) => { a href={ "/explore/" (l.0) } { (src.title) } }
                            (None, None) => { (src.title) }
                        }
                    }
                }
            }
        }
    }
}

/// Everything a fact's page shows.
struct FactData {
    id: Cid,
    item: Item,
    fact: Fact,
    parent: Option<(Cid, String)>,
    under: Vec<FactNode>,
    context: Vec<(Cid, Item, Context)>,
    names: Names,
}

fn fact_data(repo: &Repo, cid: &Cid) -> Result<FactData, ApiError> {
    let st = repo.store();
    let (id, item, head) = live_item(st, cid, "info.fact")?;
    let fact: Fact = body_of(&head)?;
    let parent = fact.parent.map(|Link(p)| {
        let statement = st
            .head(&p)
            .ok()
            .flatten()
            .map(|r| fmt::title(&r))
            .unwrap_or_else(|| fmt::short(&p.to_string()));
        (p, statement)
    });
    let mut budget = FACTS_SHOWN;
    let under = facts_under(st, id, 0, &mut budget)?;
    let context: Vec<(Cid, Item, Context)> = st
        .list_in(
            &in_topic(Topic::About(id), "info.context", 200),
            Order::NewestFirst,
        )?
        .items
        .into_iter()
        .filter(|(_, i)| !i.deleted)
        .filter_map(|(cid, i)| model::<Context>(st, &i).map(|c| (cid, i, c)))
        .collect();
    let names = Names::of_authors(
        repo,
        context
            .iter()
            .map(|(_, i, _)| i.author)
            .chain([item.author]),
    );
    Ok(FactData {
        id,
        item,
        fact,
        parent,
        under,
        context,
        names,
    })
}

/// Which form a refused submit came from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Context,
    Fact,
}

fn source_fields(prefix: &str, values: &Values) -> Markup {
    html! {
        fieldset {
            legend { "Source (optional)" }
            (field(prefix, "source_title", "Source title", Kind::Line, false, values))
            (field(prefix, "source_url", "Source URL", Kind::Url, false, values))
        }
    }
}

/// What the form `w` holds: what was typed, if it is the refused one.
fn pick<'a>(refused: Option<(Which, &'a Values)>, w: Which, empty: &'a Values) -> &'a Values {
    match refused {
        Some((r, vals)) if r == w => vals,
        _ => empty,
    }
}

fn fact_page(
    v: &Viewer,
    status: StatusCode,
    d: &FactData,
    refused: Option<(Which, &Values)>,
) -> Response {
    let empty = Values::default();
    let values = |w: Which| pick(refused, w, &empty);
    let id = d.id;
    let body = html! {
        nav.crumbs aria-label="breadcrumb" {
            ul {
                li { a href="/facts" { "Facts" } }
                @if let Some((p, statement)) = &d.parent { li { a href={ "/facts/" (p) } { (statement) } } }
            }
        }
        article.fact {
            h1 { (d.fact.statement) }
            p.meta { "Fact by " a href={ "/authors/" (d.item.author) } { (d.names.of(&d.item.author)) } " · " (fmt::time(d.item.created)) }
            @if !d.fact.tags.is_empty() {
                p { @for t in &d.fact.tags { a.tag href={ "/tags/" (t) } { (t) } " " } }
            }
            @if d.fact.sources.is_empty() {
                p.empty { "No sources given." }
            } @else {
                h2 { "Sources" }
                (sources(&d.fact.sources))
            }
        }
        section aria-labelledby="under" {
            h2 #under { "Facts under this one" }
            @if d.under.is_empty() { p.empty { "None yet." } }
            (fact_tree(&d.under))
        }
        section #context aria-labelledby="context-heading" {
            h2 #context-heading { "Context" }
            @if d.context.is_empty() { p.empty { "No context notes yet." } }
            ol.notes {
                @for (cid, item, c) in &d.context {
                    li id={ "context-" (cid) } {
                        article.note {
                            header {
                                a href={ "/authors/" (item.author) } { strong { (d.names.of(&item.author)) } }
                                " · " (fmt::time(item.created))
                            }
                            (layout::prose(&c.note))
                            (sources(&c.sources))
                        }
                    }
                }
            }
        }
        @if v.caller.is_some() {
            section aria-labelledby="add-context" {
                h2 #add-context { "Add context" }
                form.talk method="post" action={ "/facts/" (id) "/context#add-context" } aria-labelledby="add-context" {
                    (csrf(v))
                    (form_error(values(Which::Context)))
                    (field("context", "note", "Note", Kind::Area(4), true, values(Which::Context)))
                    (source_fields("context", values(Which::Context)))
                    button type="submit" { "Add context" }
                }
            }
            section aria-labelledby="add-fact" {
                h2 #add-fact { "Add fact" }
                p { "A narrower fact, under this one." }
                form.talk method="post" action={ "/facts/" (id) "/facts#add-fact" } aria-labelledby="add-fact" {
                    (csrf(v))
                    (form_error(values(Which::Fact)))
                    (field("fact", "statement", "Statement", Kind::Area(3), true, values(Which::Fact)))
                    (source_fields("fact", values(Which::Fact)))
                    button type="submit" { "Add fact" }
                }
            }
        } @else {
            (log_in_to(v, "add context"))
        }
        nav.actions aria-label="Fact" {
            @if v.did == Some(d.item.author) || v.admin {
                a role="button" class="secondary outline" href={ "/info/facts/" (id) "/edit" } { "Edit" }
            }
            a role="button" class="secondary outline" href={ "/info/facts/" (id) "/history" } { "History" }
        }
    };
    layout::respond(v, status, &d.fact.statement, body)
}

/// `GET /facts/{id}`.
async fn fact(
    State(s): State<ApiState>,
    v: Viewer,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let cid = parse_id(&v, &id)?;
    let d = super::repo(&s, move |repo| fact_data(repo, &cid))
        .await
        .or_page(&v)?;
    Ok(fact_page(&v, StatusCode::OK, &d, None))
}

/// The source the form names, if any; an URL without a title is titled by its URL.
fn source_of(values: &Values) -> Vec<Source> {
    let title = values.first("source_title").trim();
    let url = values.first("source_url").trim();
    if title.is_empty() && url.is_empty() {
        return vec![];
    }
    vec![Source {
        title: (if title.is_empty() { url } else { title }).to_owned(),
        url: (!url.is_empty()).then(|| url.to_owned()),
        link: None,
    }]
}

const LABELS: [(&str, &str); 4] = [
    ("note", "Note"),
    ("statement", "Statement"),
    ("source_title", "Source title"),
    ("source_url", "Source URL"),
];

/// Writes `body` as `kind`, or shows the fact page again with what is wrong (422).
async fn write(
    s: &ApiState,
    v: &Viewer,
    cid: Cid,
    which: Which,
    kind: &str,
    body: Result<mnode_dag::Ipld, mnode_dag::registry::SchemaError>,
    mut values: Values,
) -> Result<Response, Response> {
    let caller = v.require()?.clone();
    match body {
        Ok(body) => match ops::create(s, &caller, kind, body, None).await {
            Ok(w) => {
                let anchor = match which {
                    Which::Context => format!("#context-{}", w.id),
                    Which::Fact => format!("#fact-{}", w.id),
                };
                return Ok(Redirect::to(&format!("/facts/{cid}{anchor}")).into_response());
            }
            Err(e) if e.status == 422 || e.status == 400 => {
                values.errors.insert(String::new(), e.message);
            }
            Err(e) => return Err(layout::error(v, &e)),
        },
        Err(e) => schema_error(&mut values, &e, &LABELS),
    }
    let d = super::repo(s, move |repo| fact_data(repo, &cid))
        .await
        .or_page(v)?;
    Ok(fact_page(
        v,
        StatusCode::UNPROCESSABLE_ENTITY,
        &d,
        Some((which, &values)),
    ))
}

/// `POST /facts/{id}/context`: Add context.
async fn add_context(
    State(s): State<ApiState>,
    v: Viewer,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, Response> {
    v.require()?;
    let cid = parse_id(&v, &id)?;
    let target = super::store(&s, move |st| Ok(live_item(st, &cid, "info.fact")?.0))
        .await
        .or_page(&v)?;
    let values = Values::from_pairs(pairs);
    let context = Context {
        target: Link(target),
        note: values.first("note").replace("\r\n", "\n").trim().to_owned(),
        sources: source_of(&values),
    };
    let body = body_of_model(&context);
    write(&s, &v, target, Which::Context, "info.context", body, values).await
}

/// `POST /facts/{id}/facts`: Add fact, under this one.
async fn add_fact(
    State(s): State<ApiState>,
    v: Viewer,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, Response> {
    v.require()?;
    let cid = parse_id(&v, &id)?;
    let parent = super::store(&s, move |st| Ok(live_item(st, &cid, "info.fact")?.0))
        .await
        .or_page(&v)?;
    let values = Values::from_pairs(pairs);
    let fact = Fact {
        statement: values
            .first("statement")
            .replace("\r\n", "\n")
            .trim()
            .to_owned(),
        sources: source_of(&values),
        parent: Some(Link(parent)),
        tags: vec![],
    };
    let body = body_of_model(&fact);
    write(&s, &v, parent, Which::Fact, "info.fact", body, values).await
}

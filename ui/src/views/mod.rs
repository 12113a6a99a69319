//! The pages, one module per area, each with its `routes()`.

mod accounts;
mod explore;
mod facts;
mod forums;
mod groups;
mod home;
mod messages;
mod node;
mod records;
mod social;

use axum::{
    Json, Router,
    extract::OriginalUri,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use maud::{Markup, html};
use mnode_api::{ApiError, ApiState};
use std::collections::{HashMap, HashSet};

use mnode_dag::{Cid, Did, Ipld, Record, registry};
use mnode_node::{
    repo::Repo,
    store::{Item, ListFilter, Store},
};

use crate::{fmt, form::MEDIA_KINDS, session::Viewer};

pub(crate) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/assets/{hash}/{*file}", get(crate::assets::serve))
        .merge(home::routes())
        .merge(accounts::routes())
        .merge(social::routes())
        .merge(node::routes())
        .merge(explore::routes())
        .merge(forums::routes())
        .merge(facts::routes())
        .merge(groups::routes())
        .merge(messages::routes())
        .merge(records::routes())
}

/// No such page (and, under `/api/` and `/ipfs/`, the API's own JSON 404).
pub(crate) async fn not_found(OriginalUri(uri): OriginalUri, v: Viewer) -> Response {
    missing(&v, uri.path())
}

/// The answer for a path nothing serves: the API's JSON 404 under `/api/` and `/ipfs/` (the
/// pages' `/{namespace}/{collection}/…` routes also match paths there that the API lacks),
/// else a page.
pub(crate) fn missing(v: &Viewer, path: &str) -> Response {
    if path.starts_with("/api/") || path.starts_with("/ipfs/") {
        let e = ApiError::not_found(format!("no route {path}"));
        let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::NOT_FOUND);
        return (
            status,
            Json(serde_json::json!({ "error": { "code": e.code, "message": e.message } })),
        )
            .into_response();
    }
    crate::layout::error(
        v,
        &ApiError::not_found(format!("There is no page at {path}.")),
    )
}

/// The page of an item: the forum, branch, thread, fact and group pages for those, else
/// `/{namespace}/{collection}/{id}`, or the explorer for kinds this node does not know.
pub(crate) fn item_url(kind: &str, id: &Cid) -> String {
    if let Some(page) = talk_url(kind, id) {
        return page;
    }
    match registry::lookup(kind) {
        Some(k) => format!("/{}/{}/{id}", k.namespace(), k.collection),
        None => format!("/explore/{id}"),
    }
}

/// The page of its own a forum, branch, thread, fact or group has (its generic record page
/// sends people there).
pub(crate) fn talk_url(kind: &str, id: &Cid) -> Option<String> {
    let base = match kind {
        "social.forum" => "forums",
        "social.branch" => "branches",
        "social.thread" => "threads",
        "info.fact" => "facts",
        "core.group" => "groups",
        _ => return None,
    };
    Some(format!("/{base}/{id}"))
}

/// A collection's page.
pub(crate) fn list_url(kind: &registry::KindInfo) -> String {
    format!("/{}/{}", kind.namespace(), kind.collection)
}

/// A file a record holds.
#[derive(Debug, Clone)]
pub(crate) struct Media {
    pub(crate) kind: String,
    pub(crate) blob: Cid,
    pub(crate) name: String,
    pub(crate) media_type: String,
    pub(crate) size: u64,
    pub(crate) alt: Option<String>,
    pub(crate) title: String,
    /// The item of a sealed file (a private record's): it is read through its record, opened
    /// for the viewer, never by its blob, which is ciphertext.
    pub(crate) sealed_in: Option<Cid>,
    /// The file's UnixFS CID, which IPFS clients fetch it by (public files added since views).
    pub(crate) unixfs: Option<Cid>,
}

impl Media {
    pub(crate) fn url(&self) -> String {
        match self.sealed_in {
            Some(id) => format!("/file/{id}"),
            None => format!("/ipfs/{}", self.blob),
        }
    }
}

/// The file of a file record (`core.file`, `art.image`, `art.audio`, `art.video`).
pub(crate) fn media_of(record: &Record) -> Option<Media> {
    media_in(record, record.body()?)
}

/// The media a link points at for a viewer who reads as `reader`: a private file record is
/// opened for its readers (its file then served through `/file/{id}`), and is nothing to
/// anyone else.
pub(crate) fn media_for(
    repo: &Repo,
    reader: Option<&mnode_api::private::Reader>,
    cid: &Cid,
) -> Option<Media> {
    let head = repo.store().head(cid).ok().flatten()?;
    match mnode_api::private::view(repo, &head, reader) {
        mnode_api::private::View::Public => media_of(&head),
        mnode_api::private::View::Opened { body, .. } => media_in(&head, &body),
        mnode_api::private::View::Withheld { .. } => None,
    }
}

/// The file of a file record whose body (opened, for a private one) is `body`.
pub(crate) fn media_in(record: &Record, body: &Ipld) -> Option<Media> {
    if !MEDIA_KINDS.contains(&record.kind()) {
        return None;
    }
    let Ipld::Map(body) = body else {
        return None;
    };
    let file = match body.get("file") {
        Some(Ipld::Map(f)) => f,
        _ => body,
    };
    let text = |m: &std::collections::BTreeMap<String, Ipld>, k: &str| match m.get(k) {
        Some(Ipld::String(s)) => Some(s.clone()),
        _ => None,
    };
    let Some(Ipld::Link(blob)) = file.get("blob") else {
        return None;
    };
    let size = match file.get("size") {
        Some(Ipld::Integer(n)) => u64::try_from(*n).unwrap_or(0),
        _ => 0,
    };
    Some(Media {
        kind: record.kind().to_owned(),
        blob: *blob,
        name: text(file, "name").unwrap_or_default(),
        media_type: text(file, "media_type").unwrap_or_default(),
        size,
        alt: text(body, "alt"),
        title: match file.get("sealed") {
            // The record's title is sealed with its body: the file's name stands in.
            Some(_) => text(file, "name").unwrap_or_default(),
            None => fmt::title(record),
        },
        sealed_in: file.get("sealed").map(|_| record.id()),
        unixfs: match file.get("unixfs") {
            Some(Ipld::Link(cid)) => Some(*cid),
            _ => None,
        },
    })
}

/// The media a link points at, if it is a file record this node holds.
pub(crate) fn media_at(store: &Store, cid: &Cid) -> Option<Media> {
    store.head(cid).ok().flatten().as_ref().and_then(media_of)
}

/// A file shown the way its kind is: an image, a player, or a download link.
pub(crate) fn media_view(m: &Media) -> Markup {
    let alt = m.alt.clone().unwrap_or_else(|| m.title.clone());
    html! {
        @match m.kind.as_str() {
            "art.image" => {
                figure.media {
                    a href=(m.url()) { img src=(m.url()) alt=(alt) loading="lazy"; }
                }
            }
            "art.audio" => {
                figure.media.track {
                    figcaption { (m.title) }
                    audio controls preload="metadata" src=(m.url()) aria-label={ "Play " (m.title) } {}
                }
            }
            "art.video" => {
                figure.media {
                    video controls preload="metadata" src=(m.url()) aria-label={ "Play " (m.title) } {}
                    figcaption { (m.title) }
                }
            }
            _ => {}
        }
        p.download {
            a href={ (m.url()) "?download=true&filename=" (crate::session::urlencode(&m.name)) } download=(m.name) {
                "Download " (m.name)
            }
            " " small { (m.media_type) ", " (fmt::bytes(m.size)) }
            @if let Some(cid) = m.unixfs {
                br;
                small { a href={ "/ipfs/" (cid) } title="The file's UnixFS CID, for IPFS clients" { "IPFS" } " " (fmt::cid(&cid)) }
            }
        }
    }
}

/// One row of a listing; `names` has its author's name.
pub(crate) fn row(store: &Store, id: &Cid, item: &Item, names: &Names) -> Markup {
    let record = store.record(&item.head).ok().flatten();
    let title = record.as_ref().map(fmt::title).unwrap_or_default();
    let kind_label = registry::lookup(&item.kind).map_or(item.kind.clone(), |k| {
        fmt::humanise(k.name.split('.').nth(1).unwrap_or(k.name))
    });
    let thumb = record.as_ref().and_then(|r| thumbnail(store, r));
    let text = record
        .as_ref()
        .filter(|r| r.kind() == "social.post")
        .and_then(|r| match r.body() {
            Some(Ipld::Map(b)) => match b.get("text") {
                Some(Ipld::String(t)) => Some(t.clone()),
                _ => None,
            },
            _ => None,
        });
    html! {
        li.row id={ "item-" (id) } {
            @if let Some(m) = thumb {
                img.thumb src=(m.url()) alt="" loading="lazy";
            }
            div {
                @if let Some(t) = text {
                    div.post-text { (crate::layout::prose(&t)) }
                    small { a href=(item_url(&item.kind, id)) { "Open post" } }
                } @else {
                    a href=(item_url(&item.kind, id)) { strong { (title) } }
                }
                br;
                small.meta {
                    span.kind { (kind_label) } " · "
                    a href={ "/authors/" (item.author) } { (names.of(&item.author)) } " · "
                    (fmt::time(item.created))
                    @if item.versions > 1 { " · " (item.versions) " versions" }
                }
            }
        }
    }
}

/// The image that stands for a record in a listing: a release's cover, an image itself.
fn thumbnail(store: &Store, record: &Record) -> Option<Media> {
    if let Some(m) = media_of(record) {
        return (m.kind == "art.image").then_some(m);
    }
    let Some(Ipld::Map(body)) = record.body() else {
        return None;
    };
    for key in ["cover", "image", "avatar"] {
        if let Some(Ipld::Link(cid)) = body.get(key)
            && let Some(m) = media_at(store, cid).filter(|m| m.kind == "art.image")
        {
            return Some(m);
        }
    }
    None
}

/// How many of the newest profiles are read to name the authors of a page.
const PROFILES_READ: usize = 1000;

/// What to call the authors of a page: the handle of their profile, else their short key.
pub(crate) struct Names(HashMap<Did, String>);

impl Names {
    /// The names of `authors`, found among the newest profiles on this node in one pass (the
    /// author index would scan an author's every record to find one profile).
    pub(crate) fn of_authors(repo: &Repo, authors: impl IntoIterator<Item = Did>) -> Self {
        let store = repo.store();
        let mut wanted: HashSet<Did> = authors.into_iter().collect();
        let mut names = HashMap::new();
        // This node's own accounts are named by their handles.
        for account in repo.accounts().list().unwrap_or_default() {
            for did in &account.keys {
                if wanted.remove(did) {
                    names.insert(*did, format!("@{}", account.handle));
                }
            }
        }
        let profiles = store
            .list(&ListFilter {
                kind: Some("core.profile".into()),
                limit: PROFILES_READ,
                ..Default::default()
            })
            .map(|p| p.items)
            .unwrap_or_default();
        for (_, item) in profiles {
            if wanted.is_empty() {
                break;
            }
            if item.deleted || !wanted.remove(&item.author) {
                continue;
            }
            let handle = store
                .record(&item.head)
                .ok()
                .flatten()
                .map(|r| r.summary())
                .filter(|h| !h.is_empty());
            if let Some(h) = handle {
                names.insert(item.author, format!("@{h}"));
            }
        }
        Self(names)
    }

    /// The name of `did`.
    pub(crate) fn of(&self, did: &Did) -> String {
        self.0.get(did).cloned().unwrap_or_else(|| fmt::did(did))
    }
}

/// What to call one author.
pub(crate) fn author_name(repo: &Repo, did: &Did) -> String {
    Names::of_authors(repo, [*did]).of(did)
}

/// Rows of a listing, with the link to the next page.
pub(crate) fn rows(
    repo: &Repo,
    items: &[(Cid, Item)],
    next: Option<String>,
    empty: Markup,
) -> Markup {
    let store = repo.store();
    // Lists are public: a private item is read on its page and in Messages.
    let items: Vec<&(Cid, Item)> = items
        .iter()
        .filter(|(_, i)| {
            !matches!(store.record(&i.head), Ok(Some(r)) if mnode_api::private::is_private(&r))
        })
        .collect();
    html! {
        @if items.is_empty() {
            (empty)
        }
        @let names = Names::of_authors(repo, items.iter().map(|(_, i)| i.author));
        ul.rows #items {
            @for (id, item) in items { (row(store, id, item, &names)) }
        }
        @if let Some(next) = next {
            p { a href=(next) { "Older" } }
        }
    }
}

/// Runs `f` on the repo (store, accounts) in the blocking pool.
pub(crate) async fn repo<T: Send + 'static>(
    s: &ApiState,
    f: impl FnOnce(&Repo) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    mnode_api::with_repo(s, f).await
}

/// Runs `f` on the store in the blocking pool.
pub(crate) async fn store<T: Send + 'static>(
    s: &ApiState,
    f: impl FnOnce(&Store) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    mnode_api::with_store(s, f).await
}

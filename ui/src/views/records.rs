//! The pages every kind in the registry gets: list, new, read, edit, history, delete, at
//! `/{namespace}/{collection}`. Forms come from the kind's schema (`crate::form`); writes go
//! through `mnode_api::ops`, the REST API's own write path. A release has a page of its own.

use axum::{
    Router,
    extract::{FromRequest, Multipart, Path, Query, Request, State},
    http::{StatusCode, header::CONTENT_TYPE},
    response::{Html, IntoResponse, Redirect, Response},
    routing::get,
};
use maud::{Markup, html};
use mnode_api::{ApiError, ApiState, ops, private};
use mnode_dag::{
    Cid, Did, Record,
    group::{GROUP_KIND, Permission, role_of},
    registry::{self, KindInfo},
};
use mnode_node::{
    repo::Repo,
    store::{Cursor, ListFilter},
};
use mnode_protocols::GossipTopic;
use serde::Deserialize;
use serde_json::Value;

use super::{groups, item_url, list_url, media_view, store};
use crate::{
    fmt,
    form::{self, Field, Options, Values, Widget},
    layout::{self, Extra, OrPage, csrf},
    session::{MultipartCsrf, Viewer, check_multipart},
};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/upload", axum::routing::post(upload))
        .route("/file/{id}", get(record_file))
        .route("/{ns}/{coll}", get(list))
        .route("/{ns}/{coll}/new", get(new).post(create))
        .route("/{ns}/{coll}/{id}", get(read))
        .route("/{ns}/{coll}/{id}/edit", get(edit).post(save))
        .route("/{ns}/{coll}/{id}/history", get(history))
        .route("/{ns}/{coll}/{id}/delete", get(confirm_delete).post(delete))
}

#[derive(Deserialize)]
struct FileQuery {
    #[serde(default)]
    download: bool,
}

/// The file of a file record, as the viewer may read it: a private record's file is opened
/// for its readers only (403 for anyone else), as `GET /api/v1/records/{id}/file` serves it.
async fn record_file(
    State(s): State<ApiState>,
    v: Viewer,
    Path(id): Path<String>,
    Query(q): Query<FileQuery>,
    headers: axum::http::HeaderMap,
) -> Response {
    let cid = match mnode_dag::cids::parse(&id) {
        Ok(c) => c,
        Err(e) => return ApiError::bad_request(e.to_string()).into_response(),
    };
    let handle = v.handle.clone();
    let reader = super::repo(&s, move |repo| match &handle {
        Some(h) => private::reader_of(repo, h),
        None => Ok(None),
    })
    .await;
    let reader = match reader {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    mnode_api::files::record_file_response(&s, reader.as_ref(), cid, &headers, q.download)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// Whether people write items of `kind` with the forms: not key logs (`core.keys`), which the
/// node writes when an account's key is rotated or recovered (`ops::SYSTEM_KINDS`).
fn writable(kind: &KindInfo) -> bool {
    !ops::SYSTEM_KINDS.contains(&kind.name)
}

/// The answer to a New, Edit or Delete form of a kind that is not [`writable`]: why (400).
fn not_writable(v: &Viewer, kind: &KindInfo) -> Result<(), Response> {
    if writable(kind) {
        return Ok(());
    }
    Err(layout::error(
        v,
        &ApiError::bad_request(format!(
            "{} ({}) are not written with a form: an account's key log is written when its key \
             is rotated or recovered, on the Account page.",
            fmt::humanise(&kind.collection.replace('_', " ")),
            kind.name
        )),
    ))
}

fn kind_of(v: &Viewer, ns: &str, coll: &str) -> Result<&'static KindInfo, Response> {
    registry::by_collection(ns, coll).ok_or_else(|| {
        let path = v.path.split('?').next().unwrap_or_default();
        super::missing(v, path)
    })
}

/// "release" of `art.release`.
fn noun(kind: &KindInfo) -> String {
    kind.name
        .split_once('.')
        .map_or(kind.name, |(_, k)| k)
        .replace('_', " ")
}

fn parse_id(v: &Viewer, id: &str) -> Result<Cid, Response> {
    mnode_dag::cids::parse(id)
        .map_err(|_| layout::error(v, &ApiError::bad_request(format!("{id:?} is not a CID."))))
}

#[derive(Deserialize, Default)]
pub(super) struct PageQuery {
    pub(super) cursor: Option<String>,
}

/// `GET /{ns}/{coll}`: newest first, 50 a page.
async fn list(
    State(s): State<ApiState>,
    v: Viewer,
    Path((ns, coll)): Path<(String, String)>,
    Query(q): Query<PageQuery>,
) -> Result<Response, Response> {
    let kind = kind_of(&v, &ns, &coll)?;
    let cursor = q
        .cursor
        .as_deref()
        .map(str::parse::<Cursor>)
        .transpose()
        .map_err(|e| layout::error(&v, &ApiError::bad_request(e.to_string())))?;
    let singular = noun(kind);
    let base = list_url(kind);
    let heading = fmt::humanise(&kind.collection.replace('_', " "));
    let logged_in = v.caller.is_some();
    let offer_new = logged_in && writable(kind);
    let body = super::repo(&s, move |repo| {
        let st = repo.store();
        let page = st.list(&ListFilter {
            kind: Some(kind.name.to_owned()),
            cursor,
            limit: 50,
            ..Default::default()
        })?;
        let next = page.next.map(|c| format!("{base}?cursor={c}"));
        let empty = html! {
            p.empty {
                "No " (singular) "s on this node yet. "
                @if !writable(kind) { "An account's key log is written when its key is first rotated, on the Account page." }
                @else if logged_in { a href={ (base) "/new" } { "New " (singular) } }
                @else { a href="/login" { "Log in" } " to add one." }
            }
        };
        Ok(super::rows(repo, &page.items, next, empty))
    })
    .await
    .or_page(&v)?;
    let page = html! {
        hgroup {
            h1 { (heading) }
            p { (kind.description) }
        }
        @if offer_new {
            p { a role="button" href={ (list_url(kind)) "/new" } { "New " (noun(kind)) } }
        }
        div hx-ext="sse" sse-connect={ "/live?kind=" (kind.name) } {
            div sse-swap="item" hx-swap="afterbegin" hx-target="#items" {}
        }
        (body)
    };
    Ok(layout::page(&v, &heading, page).into_response_html())
}

trait IntoHtml {
    fn into_response_html(self) -> Response;
}

impl IntoHtml for Markup {
    fn into_response_html(self) -> Response {
        Html(self.into_string()).into_response()
    }
}

/// The records a form's link fields may pick: every record of the kinds named, newest first
/// (for files, only the viewer's own).
fn options(
    st: &mnode_node::store::Store,
    fields: &[Field],
    me: Option<mnode_dag::Did>,
) -> Result<Options, ApiError> {
    let mut out = Options::new();
    for f in fields {
        match &f.widget {
            Widget::Group(inner) => out.extend(options(st, inner, me)?),
            Widget::Link { kinds, .. } => {
                let files = kinds.iter().any(|k| form::MEDIA_KINDS.contains(k));
                let mut list = Vec::new();
                for k in kinds {
                    let page = st.list(&ListFilter {
                        kind: Some((*k).to_owned()),
                        author: if files { me } else { None },
                        limit: 200,
                        ..Default::default()
                    })?;
                    for (id, item) in page.items {
                        if item.deleted {
                            continue;
                        }
                        let title = st
                            .record(&item.head)?
                            .map(|r| fmt::title(&r))
                            .unwrap_or_else(|| fmt::short(&id.to_string()));
                        list.push((id.to_string(), title));
                    }
                }
                out.insert(f.name.clone(), list);
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Whether a form of these fields sends files.
fn multipart(fields: &[Field]) -> bool {
    fields.iter().any(Field::takes_files)
}

/// A record form: what it is called, where it posts, its fields and what they hold.
struct FormPage<'a> {
    title: String,
    action: String,
    fields: &'a [Field],
    values: &'a Values,
    /// Offer the Owner select (a New form), with this group chosen (`""`: Just me).
    owner: Option<&'a str>,
    /// Offer "Who can read" (its choice is in `values`).
    audience: bool,
}

/// The form fields saying who can read a new version: `""` (everyone), `group:<id>` or
/// `people`, and the people listed (none of a kind's fields starts with `_`).
const READERS_FIELD: &str = "_readers";
const TO_FIELD: &str = "_to";

/// "Who can read": everyone, the members of a group the viewer is in, or people listed.
fn readers_select(groups: &[(Cid, String)], values: &Values) -> Markup {
    let selected = values.first(READERS_FIELD);
    html! {
        label for="record-readers" { "Who can read" }
        select #record-readers name=(READERS_FIELD) aria-describedby="record-readers-hint" {
            option value="" selected[selected.is_empty()] { "Everyone" }
            @for (id, name) in groups {
                @let value = format!("group:{id}");
                option value=(value) selected[value == selected] { "Members of " (name) }
            }
            option value="people" selected[selected == "people"] { "People I list" }
        }
        label for="record-to" { "People who can read" }
        input #record-to type="text" name=(TO_FIELD) value=(values.first(TO_FIELD))
            placeholder="ben, did:key:z6Mk…" aria-describedby="record-readers-hint";
        small #record-readers-hint { "For “People I list”: handles on this node or did:keys, separated by commas. Only they and you can read it; everyone can still see that it exists." }
    }
}

/// The audience a submitted form chose.
fn audience_of(values: &Values) -> Result<ops::Audience, String> {
    let to: Vec<String> = values
        .first(TO_FIELD)
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    match values.first(READERS_FIELD).trim() {
        "" => Ok(ops::Audience::everyone()),
        "people" if to.is_empty() => {
            Err("List the people who can read it (handles or did:keys), or choose Everyone.".into())
        }
        "people" => Ok(ops::Audience::people(to)),
        g => g
            .strip_prefix("group:")
            .and_then(|c| mnode_dag::cids::parse(c).ok())
            .map(ops::Audience::group)
            .ok_or_else(|| "Choose who can read it from the list.".into()),
    }
}

/// Who the files uploaded with a form are for: its "Who can read" choice when it sent one
/// (before the files), else everyone.
fn file_audience(values: &Values) -> Result<ops::Audience, String> {
    if !values.values.contains_key(READERS_FIELD) {
        return Ok(ops::Audience::default());
    }
    match audience_of(values)? {
        a if a == ops::Audience::everyone() => Ok(ops::Audience::default()),
        a => Ok(a),
    }
}

/// The form field naming the group a new item is given to (none of a kind's fields starts
/// with `_`).
const OWNER_FIELD: &str = "_owner";

/// Whether a New form of `kind` offers an Owner: not for groups (a group is no group's) nor
/// for files (an upload makes their record).
fn offers_owner(kind: &KindInfo, fields: &[Field]) -> bool {
    kind.name != GROUP_KIND && !fields.iter().any(|f| f.widget == Widget::File)
}

/// The Owner select: "Just me", or a group the viewer may edit in.
fn owner_select(groups: &[(Cid, String)], selected: &str) -> Markup {
    html! {
        @if !groups.is_empty() {
            label for="record-owner" { "Owner" }
            select #record-owner name=(OWNER_FIELD) aria-describedby="record-owner-hint" {
                option value="" selected[selected.is_empty()] { "Just me" }
                @for (id, name) in groups {
                    @let value = id.to_string();
                    option value=(value) selected[value == selected] { (name) }
                }
            }
            small #record-owner-hint { "Give it to a group you are in and every member may edit it; its owners and admins may also delete it." }
        }
    }
}

/// The form page, with the records its link fields may pick loaded for the viewer.
async fn form_page(s: &ApiState, v: &Viewer, status: StatusCode, p: FormPage<'_>) -> Response {
    let me = v.did;
    let fields = p.fields.to_vec();
    let offer = p.owner.is_some() || p.audience;
    let loaded = store(s, move |st| {
        let groups = match me {
            Some(d) if offer => groups::editable_groups(st, d)?,
            _ => vec![],
        };
        Ok((options(st, &fields, me)?, groups))
    })
    .await;
    let (opts, owners) = match loaded {
        Ok(o) => o,
        Err(e) => return layout::error(v, &e),
    };
    let files = multipart(p.fields);
    let body = html! {
        h1 { (p.title) }
        @if !p.values.errors.is_empty() {
            p.error role="alert" { "Not saved: fix the fields marked below." }
        }
        form.record method="post" action=(p.action)
            enctype=[files.then_some("multipart/form-data")]
            data-upload=[files.then_some("/upload")] {
            (csrf(v))
            // Before the fields: a form sends its files in order, and they are sealed for
            // the readers chosen here.
            @if let Some(selected) = p.owner { (owner_select(&owners, selected)) }
            @if p.audience { (readers_select(&owners, p.values)) }
            (form::controls(p.fields, p.values, &opts))
            button type="submit" { "Save" }
        }
        p { small { "Saving signs a new version with your key; every earlier version stays in its History." } }
    };
    let extra = Extra {
        upload: files,
        editor: p.fields.iter().any(|f| f.widget == form::Widget::Doc),
    };
    let markup = if v.hx {
        body
    } else {
        layout::page_with(v, &p.title, extra, body)
    };
    (status, Html(markup.into_string())).into_response()
}

/// `GET /{ns}/{coll}/new?owner`.
async fn new(
    State(s): State<ApiState>,
    v: Viewer,
    Path((ns, coll)): Path<(String, String)>,
    Query(q): Query<groups::OwnerQuery>,
) -> Result<Response, Response> {
    let kind = kind_of(&v, &ns, &coll)?;
    v.require()?;
    not_writable(&v, kind)?;
    let fields = form::fields(kind);
    let owner = q.owner.unwrap_or_default();
    let page = FormPage {
        title: format!("New {}", noun(kind)),
        action: format!("{}/new", list_url(kind)),
        fields: &fields,
        values: &Values::default(),
        owner: offers_owner(kind, &fields).then_some(owner.trim()),
        audience: offers_owner(kind, &fields),
    };
    Ok(form_page(&s, &v, StatusCode::OK, page).await)
}

/// What a form sent: its fields, with uploaded files already stored (as their records' ids
/// under the field's name).
async fn read_form(
    s: &ApiState,
    v: &Viewer,
    caller: &ops::Caller,
    req: Request,
) -> Result<Values, Response> {
    let is_multipart = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|c| c.to_str().ok())
        .is_some_and(|c| c.starts_with("multipart/form-data"));
    if !is_multipart {
        let axum::Form(pairs) = axum::Form::<Vec<(String, String)>>::from_request(req, s)
            .await
            .map_err(|e| layout::error(v, &ApiError::bad_request(e.body_text())))?;
        return Ok(Values::from_pairs(pairs));
    }
    let token = req.extensions().get::<MultipartCsrf>().cloned();
    let mut mp = Multipart::from_request(req, s)
        .await
        .map_err(|e| layout::error(v, &ApiError::bad_request(e.body_text())))?;
    check_multipart(token.as_ref(), &mut mp).await?;
    let mut values = Values::default();
    while let Some(field) = mp
        .next_field()
        .await
        .map_err(|e| layout::error(v, &ApiError::bad_request(e.body_text())))?
    {
        let Some(name) = field.name().map(str::to_owned) else {
            continue;
        };
        match field.file_name().map(str::to_owned) {
            // A file input left empty sends a part with no file name and no bytes.
            Some(file_name) if !file_name.is_empty() => {
                let declared = field.content_type().map(str::to_owned);
                let audience = file_audience(&values)
                    .map_err(|e| layout::error(v, &ApiError::bad_request(e)))?;
                let answer = ops::upload(s, caller, field, Some(file_name), declared, audience)
                    .await
                    .or_page(v)?;
                if let Some(id) = answer["record"]["id"].as_str() {
                    values.push(&name, id.to_owned());
                }
            }
            Some(_) => {}
            None => {
                let text = field
                    .text()
                    .await
                    .map_err(|e| layout::error(v, &ApiError::bad_request(e.body_text())))?;
                values.push(&name, text);
            }
        }
    }
    Ok(values)
}

/// Makes the artists typed into "New artist" boxes, adding them to their fields.
async fn new_artists(
    s: &ApiState,
    caller: &ops::Caller,
    fields: &[Field],
    values: &mut Values,
) -> Result<(), ApiError> {
    for f in fields.iter().filter(|f| f.takes_new_artist()) {
        let key = format!("{}__new", f.name);
        let name = values.first(&key).trim().to_owned();
        if name.is_empty() {
            continue;
        }
        let body =
            mnode_dag::json::from_json_value(&serde_json::json!({ "name": { "full": name } }))
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let written = ops::create(s, caller, "art.artist", body, None).await?;
        values.values.remove(&key);
        if matches!(f.widget, Widget::Link { many: false, .. }) {
            values
                .values
                .insert(f.name.clone(), vec![written.id.to_string()]);
        } else {
            values.push(&f.name, written.id.to_string());
        }
    }
    Ok(())
}

/// `POST /{ns}/{coll}/new`.
async fn create(
    State(s): State<ApiState>,
    v: Viewer,
    Path((ns, coll)): Path<(String, String)>,
    req: Request,
) -> Result<Response, Response> {
    let kind = kind_of(&v, &ns, &coll)?;
    let caller = v.require()?.clone();
    not_writable(&v, kind)?;
    let fields = form::fields(kind);
    let mut values = read_form(&s, &v, &caller, req).await?;
    // A file record is made by uploading its file: the upload signs it.
    if fields.iter().any(|f| f.widget == Widget::File) {
        return match values.first("file") {
            "" => Err(layout::error(
                &v,
                &ApiError::bad_request("Choose a file to upload."),
            )),
            id => {
                let id = parse_id(&v, id)?;
                let kind = store(&s, move |st| Ok(st.item(&id)?.map(|i| i.kind)))
                    .await
                    .or_page(&v)?
                    .unwrap_or_default();
                Ok(Redirect::to(&item_url(&kind, &id)).into_response())
            }
        };
    }
    let offered = offers_owner(kind, &fields);
    let chosen = values.first(OWNER_FIELD).trim().to_owned();
    let owner = match chosen.as_str() {
        "" => Ok(None),
        _ if !offered => Err("This kind cannot be given to a group.".to_owned()),
        g => mnode_dag::cids::parse(g)
            .map(Some)
            .map_err(|_| "Choose a group from the list, or Just me.".to_owned()),
    };
    let mut body = None;
    match &owner {
        Err(e) => {
            values.errors.insert(String::new(), e.clone());
        }
        Ok(_) => {
            if let Err(e) = new_artists(&s, &caller, &fields, &mut values).await {
                values.errors.insert(String::new(), e.message);
            } else {
                body = form::body(kind, &fields, &mut values, None);
            }
        }
    }
    let owner_shown = offered.then_some(chosen.as_str());
    let audience = match audience_of(&values) {
        Ok(a) if !offered && a != ops::Audience::everyone() => {
            Err("This kind is always readable by everyone.".to_owned())
        }
        a => a,
    };
    if let Err(e) = &audience {
        values.errors.insert(String::new(), e.clone());
    }
    let (Some(body), Ok(group), Ok(audience)) = (body, owner, audience) else {
        return Err(refused(
            &s,
            &v,
            &fields,
            values,
            format!("{}/new", list_url(kind)),
            format!("New {}", noun(kind)),
            owner_shown,
        )
        .await);
    };
    match ops::create_to(&s, &caller, kind.name, body, group, &audience, None).await {
        Ok(w) => Ok(Redirect::to(&item_url(kind.name, &w.id)).into_response()),
        Err(e) => {
            values.errors.insert(String::new(), e.message);
            Err(refused(
                &s,
                &v,
                &fields,
                values,
                format!("{}/new", list_url(kind)),
                format!("New {}", noun(kind)),
                owner_shown,
            )
            .await)
        }
    }
}

/// The form again, as typed, with what is wrong (422).
async fn refused(
    s: &ApiState,
    v: &Viewer,
    fields: &[Field],
    values: Values,
    action: String,
    title: String,
    owner: Option<&str>,
) -> Response {
    let page = FormPage {
        title,
        action,
        fields,
        // The form offered "Who can read" when it sent a choice.
        audience: values.values.contains_key(READERS_FIELD),
        values: &values,
        owner,
    };
    form_page(s, v, StatusCode::UNPROCESSABLE_ENTITY, page).await
}

/// An item with its current version, for its pages.
struct Shown {
    id: Cid,
    head: Record,
    json: Value,
    item: mnode_node::store::Item,
    /// A private head: its readers' names and ids, and whether the viewer read it (`json` is
    /// the opened body then, `null` otherwise).
    private: Option<Private>,
}

/// Who reads a private version, as its page says.
struct Private {
    readers: Vec<(Did, String)>,
    readable: bool,
}

async fn shown(s: &ApiState, v: &Viewer, kind: &KindInfo, id: &str) -> Result<Shown, Response> {
    let cid = parse_id(v, id)?;
    let name = kind.name;
    let handle = v.handle.clone();
    let found = super::repo(s, move |repo| {
        let st = repo.store();
        let Some(id) = st.item_id(&cid)? else {
            return Ok(None);
        };
        let Some(item) = st.item(&id)? else {
            return Ok(None);
        };
        let Some(head) = st.record(&item.head)? else {
            return Ok(None);
        };
        let reader = match &handle {
            Some(h) => private::reader_of(repo, h)?,
            None => None,
        };
        let view = private::view(repo, &head, reader.as_ref());
        let private = view.readers().map(|to| {
            let names = super::Names::of_authors(repo, to.iter().copied());
            Private {
                readers: to.iter().map(|d| (*d, names.of(d))).collect(),
                readable: matches!(view, private::View::Opened { .. }),
            }
        });
        let opened = match view {
            private::View::Opened { body, .. } => Some(body),
            _ => None,
        };
        Ok(Some((id, item, head, private, opened)))
    })
    .await
    .or_page(v)?;
    let Some((id, item, head, private, opened)) = found else {
        return Err(layout::error(
            v,
            &ApiError::not_found(format!("No {} {cid} on this node.", noun(kind))),
        ));
    };
    if item.kind != name {
        return Err(Redirect::to(&item_url(&item.kind, &id)).into_response());
    }
    // A private body shows as the viewer opened it, or not at all.
    let body = match &private {
        Some(_) => opened.as_ref(),
        None => head.body(),
    };
    let json = body
        .map(mnode_dag::json::to_json_value)
        .transpose()
        .map_err(|e| layout::error(v, &ApiError::internal(&e)))?
        .unwrap_or(Value::Null);
    Ok(Shown {
        id,
        head,
        json,
        item,
        private,
    })
}

/// `GET /{ns}/{coll}/{id}`.
async fn read(
    State(s): State<ApiState>,
    v: Viewer,
    Path((ns, coll, id)): Path<(String, String, String)>,
) -> Result<Response, Response> {
    let kind = kind_of(&v, &ns, &coll)?;
    let sh = shown(&s, &v, kind, &id).await?;
    // Forums, branches, threads and facts are read on their own pages.
    if let Some(page) = super::talk_url(kind.name, &sh.id).filter(|_| !sh.item.deleted) {
        return Ok(Redirect::to(&page).into_response());
    }
    let title = match &sh.private {
        Some(p) if p.readable => mnode_dag::json::from_json_value(&sh.json)
            .map(|b| private::summary_of(&b))
            .ok()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| format!("Private {}", noun(kind))),
        Some(_) => format!("Private {}", noun(kind)),
        None => fmt::title(&sh.head),
    };
    let fields = form::fields(kind);
    let json = sh.json.clone();
    let (head, item, id) = (sh.head.clone(), sh.item.clone(), sh.id);
    let mine = v.did.is_some_and(|d| d == item.author) || v.admin;
    // A group's item: its members edit (and its owners and admins delete) by their role in the
    // group's current version, whoever made it.
    let owner = match item.owner {
        Some(g) => Some((g, mnode_api::groups::head(&s, g).await.ok().map(|(_, b)| b))),
        None => None,
    };
    let role = owner
        .as_ref()
        .and_then(|(_, g)| g.as_ref())
        .zip(v.did)
        .and_then(|(g, d)| role_of(g, &d));
    let (may_edit, may_delete) = match &owner {
        Some(_) => (
            role.is_some_and(|r| r.allows(Permission::Edit)),
            role.is_some_and(|r| r.allows(Permission::Delete)),
        ),
        None => (mine, mine),
    };
    let (may_edit, may_delete) = (may_edit && writable(kind), may_delete && writable(kind));
    // This node keeps its artists and files (`api.forbid_deletion`): no Delete to offer.
    let kept = ops::KEPT_KINDS.contains(&kind.name) && ops::deletion_forbidden(&s);
    // Branches and threads are topics of their own: following one brings its posts.
    let topic = match kind.name {
        "social.forum" => Some(GossipTopic::Forum(id)),
        "social.branch" => Some(GossipTopic::Branch(id)),
        "social.thread" => Some(GossipTopic::Thread(id)),
        "info.fact" => Some(GossipTopic::About(id)),
        _ => None,
    };
    // A post in a thread is read in its thread.
    let thread = sh
        .head
        .body_as::<mnode_dag::model::social::Post>()
        .ok()
        .flatten()
        .and_then(|p| p.thread)
        .map(|l| l.0);
    let (details, author, following, following_topic, in_thread) = {
        let me = v.handle.clone();
        let author = item.author;
        super::repo(&s, move |repo| {
            let st = repo.store();
            let reader = match &me {
                Some(h) => private::reader_of(repo, h)?,
                None => None,
            };
            let look = Look {
                repo,
                reader: reader.as_ref(),
            };
            let details = if kind.name == "art.release" {
                release_view(&look, &head, &json)
            } else if kind.name == "social.page" {
                page_view(st, &head)
            } else {
                generic_view(&look, &fields, &json, &head)
            };
            let follows = match &me {
                Some(h) => st.account_follows(h)?,
                None => vec![],
            };
            let following = follows
                .iter()
                .any(|(t, _)| *t == GossipTopic::Author(author));
            let following_topic =
                topic.is_some_and(|topic| follows.iter().any(|(t, _)| *t == topic));
            let in_thread = match thread {
                Some(t) => st.head(&t)?.map(|r| (t, fmt::title(&r))),
                None => None,
            };
            Ok((
                details,
                super::author_name(repo, &author),
                following,
                following_topic,
                in_thread,
            ))
        })
        .await
        .or_page(&v)?
    };
    let base = item_url(kind.name, &id);
    let body = html! {
        article.item {
            header {
                h1 { (title) }
                p.meta {
                    (fmt::humanise(&noun(kind))) " by " a href={ "/authors/" (item.author) } { (author) }
                    " · " (fmt::time(item.created))
                    @if item.versions > 1 { " · updated " (fmt::time(item.updated)) }
                    @if v.caller.is_some() && v.did != Some(item.author) {
                        " " (super::social::follow_button(&v, &GossipTopic::Author(item.author), &author, following, &base))
                    }
                }
                @if let Some((g, group)) = &owner {
                    p.meta.owner {
                        "Owned by the group "
                        a href={ "/groups/" (g) } { (group.as_ref().map_or("(no longer here)", |b| b.name.as_str())) }
                        @match role {
                            Some(r) => { " — you are " (r.name()) " there." }
                            None => { ": its members may edit it." }
                        }
                    }
                }
                @if let (Some(topic), true) = (topic, v.caller.is_some()) {
                    p { (super::social::follow_button(&v, &topic, &title, following_topic, &base)) " "
                        small { "Follow this " (noun(kind)) " to receive its posts as they are made." } }
                }
            }
            @if let Some((t, t_title)) = &in_thread {
                p.notice { "A post in the thread " a href={ "/threads/" (t) "#post-" (id) } { (t_title) } "." }
            }
            @if item.deleted {
                p.notice role="status" { "This " (noun(kind)) " was deleted. Its earlier versions are in its " a href={ (base) "/history" } { "History" } "." }
            } @else {
                @if item.revoked {
                    p.notice role="status" { "No version of this " (noun(kind)) " is in force: whoever signed it lost the right to in its group. It is left out of listings." }
                }
                @match &sh.private {
                    Some(p) if p.readable => {
                        p.notice.private role="status" {
                            "Private: readable by "
                            @for (i, (did, name)) in p.readers.iter().enumerate() {
                                @if i > 0 { ", " }
                                span title=(did) { (name) }
                            }
                            "."
                        }
                        (details)
                    }
                    Some(_) => {
                        p.notice.private role="status" {
                            "This " (noun(kind)) " is private: only the people it is for can read it. This node keeps and passes on its encrypted copy."
                        }
                    }
                    None => { (details) }
                }
            }
            nav.actions aria-label="Item" {
                @if may_edit && !item.deleted {
                    a role="button" href={ (base) "/edit" } { "Edit" }
                }
                a role="button" class="secondary" href={ (base) "/history" } { "History" }
                @if may_delete && !item.deleted && !kept {
                    a role="button" class="secondary outline" href={ (base) "/delete" } { "Delete" }
                }
            }
            footer.ids {
                small {
                    "Id " (fmt::cid(&id)) " · version " (head_seq(&sh.head)) " " (fmt::cid(&sh.head.cid()))
                    " · " a href={ "/ipfs/" (sh.head.cid()) "?format=car" } download { "Download CAR" }
                    " · " a href={ "/explore/" (sh.head.cid()) } { "Explore" }
                }
            }
        }
    };
    Ok(layout::page(&v, &title, body).into_response_html())
}

fn head_seq(r: &Record) -> u64 {
    r.seq()
}

/// A link shown as the title of what it points at.
/// A page as its blocks: headings, paragraphs, embedded records, and each widget's results
/// from this node's indexes (bounded like `GET /api/v1/pages/{id}`).
fn page_view(st: &mnode_node::store::Store, head: &Record) -> Markup {
    use mnode_dag::model::social::{Page, PageBlock};
    let Ok(Some(page)) = head.body_as::<Page>() else {
        return html! {};
    };
    html! {
        div.page-blocks {
            @for b in &page.blocks {
                @match b {
                    PageBlock::Heading { level, text } => @match level {
                        0..=1 => h2 { (text) },
                        2 => h3 { (text) },
                        3 => h4 { (text) },
                        4 => h5 { (text) },
                        _ => h6 { (text) },
                    },
                    PageBlock::Paragraph { text } => p { (text) },
                    PageBlock::Embed { link } => p { (link_view(st, &link.0)) },
                    PageBlock::Widget { query } => (widget_view(st, query)),
                }
            }
        }
    }
}

fn widget_view(st: &mnode_node::store::Store, query: &str) -> Markup {
    let result = mnode_api::ops::widget_json(st, query);
    html! {
        section.widget aria-label={ "Results of " (query) } {
            @match result {
                Err(e) => p.error { "This widget could not run: " (e.message) },
                Ok(v) => {
                    @if let Some(e) = v["error"].as_str() {
                        p.error { "This widget could not run: " (e) }
                    } @else if let Some(n) = v["count"].as_u64() {
                        p { strong { (n) } }
                    } @else {
                        @let items = v["items"].as_array().cloned().unwrap_or_default();
                        @if items.is_empty() {
                            p { small { "Nothing here yet." } }
                        } @else {
                            ul {
                                @for i in &items {
                                    @if let Some(id) = i["id"].as_str().and_then(|c| c.parse::<Cid>().ok()) {
                                        li { (link_view(st, &id)) }
                                    }
                                }
                            }
                        }
                        @let total = v["total"].as_u64().unwrap_or_default();
                        @if total > items.len() as u64 {
                            p { small { (items.len()) " of " (total) } }
                        }
                    }
                }
            }
            p { small { "From " code { (query) } } }
        }
    }
}

fn link_view(st: &mnode_node::store::Store, cid: &Cid) -> Markup {
    let head = st.head(cid).ok().flatten();
    match head {
        Some(r) => html! { a href=(item_url(r.kind(), &r.id())) { (fmt::title(&r)) } },
        None => html! { a href={ "/explore/" (cid) } { code { (fmt::short(&cid.to_string())) } } },
    }
}

fn links_in(v: &Value) -> Vec<Cid> {
    let one = |x: &Value| {
        x.get("/")
            .and_then(Value::as_str)
            .and_then(|c| mnode_dag::cids::parse(c).ok())
    };
    match v {
        Value::Array(a) => a.iter().filter_map(one).collect(),
        other => one(other).into_iter().collect(),
    }
}

/// What a page may open for its viewer: the repo (its keystore opens private records) and
/// the viewer as a reader.
struct Look<'a> {
    repo: &'a Repo,
    reader: Option<&'a private::Reader>,
}

impl Look<'_> {
    /// The media a link points at, opened for the viewer when it is a private file record.
    fn media(&self, cid: &Cid) -> Option<super::Media> {
        super::media_for(self.repo, self.reader, cid)
    }
}

/// Every field of a body, as a person reads it.
fn generic_view(look: &Look<'_>, fields: &[Field], json: &Value, head: &Record) -> Markup {
    // The body as shown: opened, for a private record's reader.
    let own_media = mnode_dag::json::from_json_value(json)
        .ok()
        .and_then(|body| super::media_in(head, &body));
    html! {
        @if let Some(m) = own_media { (media_view(&m)) }
        dl.fields {
            @for f in fields { (field_view(look, f, json)) }
        }
    }
}

fn field_view(look: &Look<'_>, f: &Field, json: &Value) -> Markup {
    let st = look.repo.store();
    let key = f.name.rsplit('.').next().unwrap_or(&f.name);
    let Some(value) = json.get(key) else {
        return html! {};
    };
    if value.is_null() || value.as_array().is_some_and(Vec::is_empty) {
        return html! {};
    }
    html! {
        @match &f.widget {
            Widget::Group(inner) => {
                @for g in inner { (field_view(look, g, value)) }
            }
            Widget::File => {}
            Widget::Text { long: true } => {
                dt { (f.label) } dd { (layout::prose(value.as_str().unwrap_or_default())) }
            }
            Widget::Link { .. } | Widget::Cid => {
                dt { (f.label) }
                dd {
                    @for cid in links_in(value) {
                        @if let Some(m) = look.media(&cid) { (media_view(&m)) }
                        @else { (link_view(st, &cid)) " " }
                    }
                }
            }
            Widget::Tags => {
                dt { (f.label) }
                dd { @for t in value.as_array().into_iter().flatten().filter_map(Value::as_str) {
                    span.tag { (t) } " "
                } }
            }
            Widget::Doc => {
                dt { (f.label) }
                dd { @match serde_json::from_value::<mnode_dag::doc::Doc>(value.clone()) {
                    Ok(d) => (crate::doc::render(&d)),
                    Err(_) => pre { code { (serde_json::to_string_pretty(value).unwrap_or_default()) } },
                } }
            }
            Widget::Json => {
                dt { (f.label) } dd { pre { code { (serde_json::to_string_pretty(value).unwrap_or_default()) } } }
            }
            Widget::Select(_) => {
                dt { (f.label) } dd { (fmt::humanise(value.as_str().unwrap_or_default())) }
            }
            _ => {
                dt { (f.label) }
                dd { @match value { Value::String(t) => (t), other => (other) } }
            }
        }
    }
}

/// A release the way a record shop shows one: the cover beside the title, artists and date,
/// then the tracks with a player each, the images, and the rest.
fn release_view(look: &Look<'_>, head: &Record, json: &Value) -> Markup {
    let st = look.repo.store();
    let cover = json.get("cover").map(links_in).unwrap_or_default();
    let cover = cover.first().and_then(|c| look.media(c));
    let artists = json.get("artists").map(links_in).unwrap_or_default();
    let files: Vec<_> = json
        .get("files")
        .map(links_in)
        .unwrap_or_default()
        .iter()
        .filter_map(|c| look.media(c).map(Ok).or(Some(Err(*c))))
        .collect();
    let text = |k: &str| json.get(k).and_then(Value::as_str).map(str::to_owned);
    let _ = head;
    html! {
        div.release {
            div.cover {
                @if let Some(c) = &cover {
                    img src=(c.url()) alt={ "Cover of " (fmt::title(head)) };
                } @else {
                    div.no-cover aria-hidden="true" { "♪" }
                }
            }
            div.about {
                p.artists {
                    @for (i, a) in artists.iter().enumerate() {
                        @if i > 0 { ", " }
                        (link_view(st, a))
                    }
                }
                p.meta {
                    @if let Some(k) = text("kind") { (fmt::humanise(&k)) }
                    @if let Some(d) = text("date") { " · " (d) }
                    @if let Some(l) = text("license") { " · " (l) }
                }
                @if let Some(tags) = json.get("tags").and_then(Value::as_array) {
                    p { @for t in tags.iter().filter_map(Value::as_str) { span.tag { (t) } " " } }
                }
                @if let Some(d) = text("description") { (layout::prose(&d)) }
            }
        }
        @let tracks: Vec<_> = files.iter().filter_map(|f| f.as_ref().ok()).filter(|m| m.kind == "art.audio" || m.kind == "art.video").collect();
        @let images: Vec<_> = files.iter().filter_map(|f| f.as_ref().ok()).filter(|m| m.kind == "art.image").collect();
        @let others: Vec<_> = files.iter().filter_map(|f| f.as_ref().ok()).filter(|m| m.kind == "core.file").collect();
        @let missing: Vec<_> = files.iter().filter_map(|f| f.as_ref().err()).collect();
        @if !tracks.is_empty() {
            section aria-label="Tracks" {
                h2 { "Tracks" }
                ol.tracks { @for m in &tracks { li { (media_view(m)) } } }
            }
        }
        @if !images.is_empty() {
            section aria-label="Images" {
                h2 { "Images" }
                div.gallery { @for m in &images { (media_view(m)) } }
            }
        }
        @if !others.is_empty() {
            section aria-label="Files" {
                h2 { "Files" }
                @for m in &others { (media_view(m)) }
            }
        }
        @if !missing.is_empty() {
            p.notice { (missing.len()) " file(s) of this release are not on this node yet: "
                @for c in &missing { a href={ "/explore/" (c) } { code { (fmt::short(&c.to_string())) } } " " } }
        }
    }
}

/// A private item the viewer cannot read cannot be edited by them either (403).
fn unreadable(v: &Viewer, kind: &KindInfo, sh: &Shown) -> Result<(), Response> {
    match &sh.private {
        Some(p) if !p.readable => Err(layout::error(
            v,
            &ApiError::forbidden(format!(
                "This {} is private and you are not among its readers, so you cannot edit it.",
                noun(kind)
            )),
        )),
        _ => Ok(()),
    }
}

/// `GET /{ns}/{coll}/{id}/edit`.
async fn edit(
    State(s): State<ApiState>,
    v: Viewer,
    Path((ns, coll, id)): Path<(String, String, String)>,
) -> Result<Response, Response> {
    let kind = kind_of(&v, &ns, &coll)?;
    v.require()?;
    not_writable(&v, kind)?;
    let sh = shown(&s, &v, kind, &id).await?;
    unreadable(&v, kind, &sh)?;
    let fields: Vec<Field> = form::fields(kind)
        .into_iter()
        .filter(|f| f.widget != Widget::File)
        .collect();
    let mut values = Values::from_body(&fields, &sh.json);
    let audience = offers_owner(kind, &fields);
    if audience {
        // A private item is edited for the people who read it now, the viewer aside.
        let listed = sh.private.as_ref().map(|p| {
            p.readers
                .iter()
                .filter(|(d, _)| Some(*d) != v.did)
                .map(|(d, _)| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        });
        let choice = if listed.is_some() { "people" } else { "" };
        values.push(READERS_FIELD, choice.to_owned());
        values.push(TO_FIELD, listed.unwrap_or_default());
    }
    let page = FormPage {
        title: format!("Edit {}", fmt::title(&sh.head)),
        action: format!("{}/edit", item_url(kind.name, &sh.id)),
        fields: &fields,
        values: &values,
        owner: None,
        audience,
    };
    Ok(form_page(&s, &v, StatusCode::OK, page).await)
}

/// `POST /{ns}/{coll}/{id}/edit`: a new signed version.
async fn save(
    State(s): State<ApiState>,
    v: Viewer,
    Path((ns, coll, id)): Path<(String, String, String)>,
    req: Request,
) -> Result<Response, Response> {
    let kind = kind_of(&v, &ns, &coll)?;
    let caller = v.require()?.clone();
    not_writable(&v, kind)?;
    let sh = shown(&s, &v, kind, &id).await?;
    unreadable(&v, kind, &sh)?;
    let fields: Vec<Field> = form::fields(kind)
        .into_iter()
        .filter(|f| f.widget != Widget::File)
        .collect();
    let mut values = read_form(&s, &v, &caller, req).await?;
    let action = format!("{}/edit", item_url(kind.name, &sh.id));
    let title = format!("Edit {}", fmt::title(&sh.head));
    let mut body = None;
    if let Err(e) = new_artists(&s, &caller, &fields, &mut values).await {
        values.errors.insert(String::new(), e.message);
    } else {
        // A group's item carries `$owner`, which the form does not show and the schema check
        // refuses: `ops::update` cites the group's current version itself.
        let mut base = sh.json.clone();
        if let Some(m) = base.as_object_mut() {
            m.remove(mnode_dag::group::OWNER_FIELD);
        }
        body = form::body(kind, &fields, &mut values, Some(&base));
    }
    // Without the select (a kind always public) the readers stay as they are.
    let audience = if values.values.contains_key(READERS_FIELD) {
        audience_of(&values)
    } else {
        Ok(ops::Audience::default())
    };
    if let Err(e) = &audience {
        values.errors.insert(String::new(), e.clone());
    }
    let (Some(body), Ok(audience)) = (body, audience) else {
        return Err(refused(&s, &v, &fields, values, action, title, None).await);
    };
    match ops::update_to(&s, &caller, sh.id, body, &audience, None).await {
        Ok(w) => Ok(Redirect::to(&item_url(kind.name, &w.id)).into_response()),
        Err(e) if e.status == 422 => {
            values.errors.insert(String::new(), e.message);
            Err(refused(&s, &v, &fields, values, action, title, None).await)
        }
        Err(e) => Err(layout::error(&v, &e)),
    }
}

/// `GET /{ns}/{coll}/{id}/history`: every version, forks marked, what changed.
async fn history(
    State(s): State<ApiState>,
    v: Viewer,
    Path((ns, coll, id)): Path<(String, String, String)>,
) -> Result<Response, Response> {
    let kind = kind_of(&v, &ns, &coll)?;
    let sh = shown(&s, &v, kind, &id).await?;
    let id = sh.id;
    let head = sh.item.head;
    let forked = sh.item.forked();
    let versions = store(&s, move |st| {
        let mut out = Vec::new();
        for info in st.history(&id)? {
            let json = st
                .record(&info.cid)?
                .and_then(|r| r.body().map(mnode_dag::json::to_json_value))
                .transpose()
                .map_err(|e| ApiError::internal(&e))?;
            out.push((info, json));
        }
        Ok(out)
    })
    .await
    .or_page(&v)?;
    let title = fmt::title(&sh.head);
    let base = item_url(kind.name, &id);
    let body = html! {
        h1 { "History" }
        p { "Every version of " a href=(base) { (title) } ", oldest first. Each is signed by its author and can be checked by anyone." }
        @if forked { p.notice role="status" { "This item has a fork: two versions replace the same one. The newest is shown as current." } }
        ol.history {
            @for (i, (info, json)) in versions.iter().enumerate() {
                li {
                    strong { "Version " (info.seq) }
                    @if info.cid == head { " " mark { "current" } }
                    @if info.tombstone { " — deleted" }
                    " · " (fmt::time(info.updated)) " · " a href={ "/explore/" (info.cid) } { code { (fmt::short(&info.cid.to_string())) } }
                    @let prev = if i == 0 { None } else { versions[i - 1].1.as_ref() };
                    @if let (Some(old), Some(new)) = (prev, json.as_ref()) {
                        (diff(old, new))
                    }
                }
            }
        }
    };
    Ok(layout::page(&v, &format!("History of {title}"), body).into_response_html())
}

/// A body's fields by path (`title.full`), objects opened up, links and lists kept whole.
fn flatten(prefix: &str, v: &Value, out: &mut std::collections::BTreeMap<String, Value>) {
    match v {
        Value::Object(m) if !m.contains_key("/") => {
            for (k, val) in m {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&path, val, out);
            }
        }
        other => {
            out.insert(prefix.to_owned(), other.clone());
        }
    }
}

/// "title.full" → "Title", "title.short" → "Title, short".
fn path_label(path: &str) -> String {
    let mut parts = path.split('.');
    let head = fmt::humanise(parts.next().unwrap_or_default());
    let rest: Vec<&str> = parts.filter(|p| *p != "full").collect();
    if rest.is_empty() {
        head
    } else {
        format!("{head}, {}", rest.join(" ").replace('_', " "))
    }
}

/// The fields that differ between two bodies.
fn diff(old: &Value, new: &Value) -> Markup {
    let (mut o, mut n) = (Default::default(), Default::default());
    flatten("", old, &mut o);
    flatten("", new, &mut n);
    let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
    keys.sort();
    keys.dedup();
    let show = |v: Option<&Value>| match v {
        None => "—".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    html! {
        ul.diff {
            @for k in keys.into_iter().filter(|k| o.get(*k) != n.get(*k)) {
                li { (path_label(k)) ": " del { (show(o.get(k))) } " → " ins { (show(n.get(k))) } }
            }
        }
    }
}

/// `GET /{ns}/{coll}/{id}/delete`: asks once.
async fn confirm_delete(
    State(s): State<ApiState>,
    v: Viewer,
    Path((ns, coll, id)): Path<(String, String, String)>,
) -> Result<Response, Response> {
    let kind = kind_of(&v, &ns, &coll)?;
    v.require()?;
    not_writable(&v, kind)?;
    let sh = shown(&s, &v, kind, &id).await?;
    let title = fmt::title(&sh.head);
    let base = item_url(kind.name, &sh.id);
    let body = html! {
        h1 { "Delete " (title) "?" }
        p { "Deleting publishes a signed tombstone: the " (noun(kind)) " leaves listings here and on the nodes that follow you. "
            "Its earlier versions stay in its History, signed and verifiable, and copies others already hold are not erased." }
        form method="post" action={ (base) "/delete" } {
            (csrf(&v))
            button.danger type="submit" { "Delete" }
            " "
            a href=(base) { "Cancel" }
        }
    };
    Ok(layout::page(&v, &format!("Delete {title}"), body).into_response_html())
}

/// `POST /{ns}/{coll}/{id}/delete`.
async fn delete(
    State(s): State<ApiState>,
    v: Viewer,
    Path((ns, coll, id)): Path<(String, String, String)>,
) -> Result<Response, Response> {
    let kind = kind_of(&v, &ns, &coll)?;
    let caller = v.require()?.clone();
    not_writable(&v, kind)?;
    let cid = parse_id(&v, &id)?;
    ops::delete(&s, &caller, cid, None).await.or_page(&v)?;
    Ok(Redirect::to(&list_url(kind)).into_response())
}

/// `POST /upload`: one file per request, from the upload script; answers the API's JSON.
async fn upload(State(s): State<ApiState>, v: Viewer, req: Request) -> Response {
    let Some(caller) = v.caller.clone() else {
        return ApiError::unauthorized().into_response();
    };
    let token = req.extensions().get::<MultipartCsrf>().cloned();
    let mut mp = match Multipart::from_request(req, &s).await {
        Ok(m) => m,
        Err(e) => return ApiError::new(400, "bad_multipart", e.body_text()).into_response(),
    };
    if let Err(resp) = check_multipart(token.as_ref(), &mut mp).await {
        return resp;
    }
    // The form's "Who can read" comes before the file: the file is sealed for those readers.
    let mut values = Values::default();
    loop {
        match mp.next_field().await {
            Ok(Some(field)) if field.name() == Some("file") => {
                let name = field.file_name().map(str::to_owned);
                let declared = field.content_type().map(str::to_owned);
                let audience = match file_audience(&values) {
                    Ok(a) => a,
                    Err(e) => return ApiError::bad_request(e).into_response(),
                };
                return match ops::upload(&s, &caller, field, name, declared, audience).await {
                    Ok(answer) => (StatusCode::CREATED, axum::Json(answer)).into_response(),
                    Err(e) => e.into_response(),
                };
            }
            Ok(Some(field)) if matches!(field.name(), Some(READERS_FIELD | TO_FIELD)) => {
                let name = field.name().unwrap_or_default().to_owned();
                match field.text().await {
                    Ok(text) if text.len() <= 20_000 => values.push(&name, text),
                    Ok(_) => {
                        return ApiError::bad_request("who can read: too long").into_response();
                    }
                    Err(e) => {
                        return ApiError::new(400, "bad_multipart", e.body_text()).into_response();
                    }
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => {
                return ApiError::new(400, "bad_multipart", "no `file` part").into_response();
            }
            Err(e) => return ApiError::new(400, "bad_multipart", e.body_text()).into_response(),
        }
    }
}

//! Groups that co-edit: who is in a group, with which role, and what the group owns.
//!
//! | route | what |
//! |---|---|
//! | `GET /groups` | the viewer's groups first, then every other group on this node |
//! | `GET, POST /groups/new` | the New group form: name, description, members (the maker is the owner) |
//! | `GET /groups/{id}` | a group: members and roles, the items it owns, and the forms its roles allow |
//! | `POST /groups/{id}/members` | Add member (owners and admins) |
//! | `POST /groups/{id}/role` | Change role (owners and admins) |
//! | `POST /groups/{id}/remove` | Remove a member (owners and admins) |
//! | `POST /groups/{id}/leave` | Leave the group (any member) |
//!
//! Writes go through the API's own code (`mnode_api::groups::{create, set_role}`), which checks
//! the roles; a refusal (403 `group_role`, 409, 422) is shown next to the form it concerns, with
//! what was typed kept. Items are given to a group on the New forms of every kind (`Owner`).

use axum::{
    Form, Router,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use maud::{Markup, html};
use mnode_api::{
    ApiError, ApiState,
    groups::{self, MemberSpec},
    private,
};
use mnode_dag::{
    Cid, Did,
    group::{GROUP_KIND, Permission, role_of},
    model::core::{Group, Role},
    registry,
};
use mnode_node::store::{ListFilter, Store};
use serde::Deserialize;

use super::{
    Names,
    forums::{Kind, field, form_error, log_in_to, parse_id},
    item_url,
};
use crate::{
    fmt,
    form::Values,
    layout::{self, OrPage, csrf},
    session::Viewer,
};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/groups", get(list))
        .route("/groups/new", get(new).post(create))
        .route("/groups/{id}", get(read))
        .route("/groups/{id}/members", post(add))
        .route("/groups/{id}/role", post(change_role))
        .route("/groups/{id}/remove", post(remove))
        .route("/groups/{id}/leave", post(leave))
}

/// Most groups one page reads.
const MOST: usize = 1000;

/// Every role, most powerful first.
const ROLES: [Role; 4] = [Role::Owner, Role::Admin, Role::Moderator, Role::Member];

/// What each role may do, said where roles are chosen.
const ROLES_HINT: &str = "Owners may do everything. Admins add and remove members (not owners \
     or admins) and edit and delete what the group owns. Members edit what the group owns. \
     Moderators moderate.";

fn role_named(name: &str) -> Option<Role> {
    let name = name.trim().to_ascii_lowercase();
    ROLES.into_iter().find(|r| r.name() == name)
}

/// A group as its listings show it.
pub(super) struct GroupRow {
    pub(super) id: Cid,
    pub(super) group: Group,
    /// The viewer's role in it.
    pub(super) role: Option<Role>,
}

/// The live groups on this node (newest first), each with `me`'s role.
pub(super) fn all_groups(st: &Store, me: Option<Did>) -> Result<Vec<GroupRow>, ApiError> {
    let page = st.list(&ListFilter {
        kind: Some(GROUP_KIND.into()),
        limit: MOST,
        ..ListFilter::default()
    })?;
    let mut out = vec![];
    for (id, item) in page.items {
        if item.deleted {
            continue;
        }
        let Some(record) = st.record(&item.head)? else {
            continue;
        };
        let Ok(Some(group)) = record.body_as::<Group>() else {
            continue;
        };
        let role = me.and_then(|d| role_of(&group, &d));
        out.push(GroupRow { id, group, role });
    }
    Ok(out)
}

/// The groups `me` may give a new item to (its role there allows editing): id and name.
pub(super) fn editable_groups(st: &Store, me: Did) -> Result<Vec<(Cid, String)>, ApiError> {
    Ok(all_groups(st, Some(me))?
        .into_iter()
        .filter(|g| g.role.is_some_and(|r| r.allows(Permission::Edit)))
        .map(|g| (g.id, g.group.name))
        .collect())
}

fn group_rows(rows: &[GroupRow]) -> Markup {
    html! {
        ul.rows {
            @for g in rows {
                li.row {
                    div {
                        a href={ "/groups/" (g.id) } { strong { (g.group.name) } }
                        @if let Some(d) = &g.group.description { br; span { (d) } }
                        br;
                        small.meta {
                            (g.group.members.len()) @if g.group.members.len() == 1 { " member" } @else { " members" }
                            @if let Some(r) = g.role { " · you are " (r.name()) }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /groups`.
async fn list(State(s): State<ApiState>, v: Viewer) -> Result<Response, Response> {
    let me = v.did;
    let rows = super::store(&s, move |st| all_groups(st, me))
        .await
        .or_page(&v)?;
    let (mine, others): (Vec<_>, Vec<_>) = rows.into_iter().partition(|g| g.role.is_some());
    let logged_in = v.caller.is_some();
    let body = html! {
        hgroup {
            h1 { "Groups" }
            p { "People who make things together: what a group owns, any of its members may edit, and its owners and admins decide who is in it." }
        }
        @if logged_in {
            p { a role="button" href="/groups/new" { "New group" } }
            section aria-labelledby="mine" {
                h2 #mine { "Your groups" }
                @if mine.is_empty() {
                    p.empty { "You are in no group yet. Make one with New group, or ask a group's owner to add you." }
                } @else {
                    (group_rows(&mine))
                }
            }
        } @else {
            (log_in_to(&v, "make a group"))
        }
        section aria-labelledby="all" {
            h2 #all { @if logged_in { "Other groups" } @else { "All groups" } }
            @if others.is_empty() {
                p.empty { "No " @if logged_in { "other " } "groups on this node yet." }
            } @else {
                (group_rows(&others))
            }
        }
    };
    Ok(layout::respond(&v, StatusCode::OK, "Groups", body))
}

// ---- New group --------------------------------------------------------------------------------

fn new_form(v: &Viewer, values: &Values) -> Markup {
    let members_error = values.errors.get("members");
    let described = if members_error.is_some() {
        "group-members-error group-members-hint"
    } else {
        "group-members-hint"
    };
    html! {
        nav.crumbs aria-label="breadcrumb" { ul { li { a href="/groups" { "Groups" } } } }
        h1 { "New group" }
        p { "You will be its owner. Its members may edit what the group owns; its owners and admins also delete it and decide who is in the group." }
        (form_error(values))
        form method="post" action="/groups/new" {
            (csrf(v))
            (field("group", "name", "Name", Kind::Line, true, values))
            (field("group", "description", "Description", Kind::Area(3), false, values))
            label for="group-members" { "Members" }
            textarea #group-members name="members" rows="4" placeholder="@kim admin"
                aria-invalid=[members_error.map(|_| "true")] aria-describedby=(described) { (values.first("members")) }
            @if let Some(e) = members_error { small.error #group-members-error role="alert" { (e) } }
            small #group-members-hint {
                "One a line: a handle on this node (@kim) or a did:key, then a role — owner, admin, moderator or member (member if none). "
                (ROLES_HINT)
            }
            button type="submit" { "Create group" }
        }
    }
}

/// `GET /groups/new`.
async fn new(v: Viewer) -> Result<Response, Response> {
    v.require()?;
    Ok(layout::respond(
        &v,
        StatusCode::OK,
        "New group",
        new_form(&v, &Values::default()),
    ))
}

/// The members typed into the New group form, one a line: who, then a role.
fn parse_members(text: &str) -> Result<Vec<MemberSpec>, String> {
    let mut out = vec![];
    for (n, line) in text.lines().enumerate() {
        let mut words = line
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|w| !w.is_empty());
        let Some(member) = words.next() else {
            continue;
        };
        let role = match words.next() {
            None => Role::Member,
            Some(r) => role_named(r).ok_or_else(|| {
                format!(
                    "Line {}: {r:?} is not a role; use owner, admin, moderator or member.",
                    n + 1
                )
            })?,
        };
        if words.next().is_some() {
            return Err(format!(
                "Line {}: one member a line, then their role.",
                n + 1
            ));
        }
        out.push(MemberSpec {
            member: member.to_owned(),
            role,
        });
    }
    Ok(out)
}

/// `POST /groups/new`.
async fn create(
    State(s): State<ApiState>,
    v: Viewer,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, Response> {
    let caller = v.require()?.clone();
    let mut values = Values::from_pairs(pairs);
    let name = values.first("name").trim().to_owned();
    let description = values.first("description").replace("\r\n", "\n");
    if name.is_empty() {
        values
            .errors
            .insert("name".into(), "Give the group a name.".into());
    }
    let members = match parse_members(values.first("members")) {
        Ok(m) => m,
        Err(e) => {
            values.errors.insert("members".into(), e);
            vec![]
        }
    };
    if values.errors.is_empty() {
        let description = Some(description.trim().to_owned()).filter(|d| !d.is_empty());
        match groups::create(&s, &caller, name, description, members, None).await {
            Ok(w) => return Ok(Redirect::to(&format!("/groups/{}", w.id)).into_response()),
            Err(e) if e.status == 400 && e.message.starts_with("member") => {
                values.errors.insert("members".into(), e.message);
            }
            Err(e) if matches!(e.status, 400 | 403 | 409 | 422) => {
                values.errors.insert(String::new(), e.message);
            }
            Err(e) => return Err(layout::error(&v, &e)),
        }
    }
    Ok(layout::respond(
        &v,
        StatusCode::UNPROCESSABLE_ENTITY,
        "New group",
        new_form(&v, &values),
    ))
}

// ---- a group ----------------------------------------------------------------------------------

/// Which form a message is about.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Add,
    Members,
    Leave,
}

/// Why a form on the group's page was refused, and what its Add member form held.
#[derive(Default)]
struct Refusal {
    at: Option<(Place, String)>,
    member: String,
    role: String,
}

impl Refusal {
    /// Where the refusal is: its form's place, or the Members section when that form is not
    /// on the page for this viewer (someone not allowed who sent it anyway).
    fn placed(&self, manage: bool, member: bool) -> Self {
        let at = self.at.clone().map(|(p, t)| match p {
            Place::Add if !manage => (Place::Members, t),
            Place::Leave if !member => (Place::Members, t),
            other => (other, t),
        });
        Self {
            at,
            member: self.member.clone(),
            role: self.role.clone(),
        }
    }

    fn at(&self, place: Place) -> Markup {
        let text = self
            .at
            .as_ref()
            .filter(|(p, _)| *p == place)
            .map(|(_, t)| t);
        html! {
            @if let Some(text) = text {
                p.error role="alert" { "Not done: " (text) }
            }
        }
    }
}

/// An item the group owns, as its page lists it.
struct Owned {
    id: Cid,
    kind: String,
    title: String,
    author: Did,
    updated: u64,
    revoked: bool,
    /// A private item the viewer is among the readers of.
    private: bool,
}

/// "release" of `art.release`, for a kind this node knows; the kind's name otherwise.
fn kind_noun(kind: &str) -> String {
    registry::lookup(kind).map_or_else(
        || kind.to_owned(),
        |k| {
            k.name
                .split_once('.')
                .map_or(k.name, |(_, n)| n)
                .replace('_', " ")
        },
    )
}

/// `GET /groups/{id}`.
async fn read(
    State(s): State<ApiState>,
    v: Viewer,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let cid = parse_id(&v, &id)?;
    group_page(&s, &v, cid, StatusCode::OK, &Refusal::default()).await
}

/// Whether someone with role `mine` may change or remove a member whose role is `theirs`.
fn may_manage(mine: Option<Role>, theirs: Role) -> bool {
    match mine {
        Some(Role::Owner) => true,
        Some(Role::Admin) => !matches!(theirs, Role::Owner | Role::Admin),
        _ => false,
    }
}

/// The roles someone with role `mine` may give.
fn roles_for(mine: Option<Role>) -> &'static [Role] {
    match mine {
        Some(Role::Owner) => &ROLES,
        _ => &ROLES[2..],
    }
}

fn role_select(id: &str, name: &str, choices: &[Role], selected: &str) -> Markup {
    html! {
        select id=(id) name=(name) {
            @for r in choices {
                option value=(r.name()) selected[r.name() == selected] { (fmt::humanise(r.name())) }
            }
        }
    }
}

async fn group_page(
    s: &ApiState,
    v: &Viewer,
    cid: Cid,
    status: StatusCode,
    refusal: &Refusal,
) -> Result<Response, Response> {
    let (head, group) = groups::head(s, cid).await.or_page(v)?;
    let id = head.id();
    let dids: Vec<Did> = group.members.iter().map(|m| m.did).collect();
    let handle = v.handle.clone();
    let (names, owned) = super::repo(s, move |repo| {
        let st = repo.store();
        let reader = match &handle {
            Some(h) => private::reader_of(repo, h)?,
            None => None,
        };
        let mut owned = vec![];
        for item_id in st.owned_by(&id)? {
            let Some(item) = st.item(&item_id)? else {
                continue;
            };
            if item.deleted {
                continue;
            }
            let head = st.record(&item.head)?;
            // A private item is listed for its readers only (as `GET /records` lists it).
            if head
                .as_ref()
                .is_some_and(|r| !private::listed(r, reader.as_ref()))
            {
                continue;
            }
            let (title, private) = match &head {
                Some(r) => match private::view(repo, r, reader.as_ref()) {
                    private::View::Public => (fmt::title(r), false),
                    private::View::Opened { body, .. } => (private::summary_of(&body), true),
                    private::View::Withheld { .. } => (String::new(), true),
                },
                None => (String::new(), false),
            };
            let title = if !title.is_empty() {
                title
            } else if private {
                format!("Private {}", kind_noun(&item.kind))
            } else {
                fmt::short(&item_id.to_string())
            };
            owned.push(Owned {
                id: item_id,
                kind: item.kind.clone(),
                title,
                author: item.author,
                updated: item.updated,
                revoked: item.revoked,
                private,
            });
        }
        owned.sort_by_key(|b| std::cmp::Reverse(b.updated));
        let names = Names::of_authors(repo, dids.into_iter().chain(owned.iter().map(|o| o.author)));
        Ok((names, owned))
    })
    .await
    .or_page(v)?;
    let mine = v.did.and_then(|d| role_of(&group, &d));
    let manage = mine.is_some_and(|r| r.allows(Permission::Manage));
    // The node refuses to let the last owner leave: no Leave to offer them.
    let only_owner = mine == Some(Role::Owner)
        && group
            .members
            .iter()
            .filter(|m| m.role == Role::Owner)
            .count()
            == 1;
    let refusal = &refusal.placed(manage, mine.is_some());
    let base = format!("/groups/{id}");
    let kind_label = |kind: &str| {
        registry::lookup(kind).map_or_else(
            || kind.to_owned(),
            |k| fmt::humanise(k.name.split('.').nth(1).unwrap_or(k.name)),
        )
    };
    let add_role = if refusal.role.is_empty() {
        "member"
    } else {
        refusal.role.as_str()
    };
    let body = html! {
        nav.crumbs aria-label="breadcrumb" { ul { li { a href="/groups" { "Groups" } } } }
        article.group {
            header {
                h1 { (group.name) }
                p.meta {
                    "Group · " (group.members.len()) @if group.members.len() == 1 { " member" } @else { " members" }
                    " · updated " (fmt::time(head.envelope().updated))
                    @if let Some(r) = mine { " · you are " strong { (r.name()) } }
                }
            }
            @if let Some(d) = &group.description { (layout::prose(d)) }

            section aria-labelledby="members" {
                h2 #members { "Members" }
                (refusal.at(Place::Members))
                table.members {
                    thead { tr {
                        th scope="col" { "Member" }
                        th scope="col" { "Role" }
                        @if manage { th scope="col" { "Change" } }
                    } }
                    tbody {
                        @for (i, m) in group.members.iter().enumerate() {
                            @let name = names.of(&m.did);
                            tr {
                                td { a href={ "/authors/" (m.did) } { (name) } @if Some(m.did) == v.did { " " mark { "you" } } }
                                td data-label="Role" { (m.role.name()) }
                                @if manage {
                                    td.change {
                                        @if may_manage(mine, m.role) && Some(m.did) != v.did {
                                            form.inline.role method="post" action={ (base) "/role" } {
                                                (csrf(v))
                                                input type="hidden" name="member" value=(m.did);
                                                label.visually-hidden for={ "role-" (i) } { "Role of " (name) }
                                                (role_select(&format!("role-{i}"), "role", roles_for(mine), m.role.name()))
                                                button.secondary type="submit" aria-label={ "Change role of " (name) } { "Change role" }
                                            }
                                            " "
                                            form.inline method="post" action={ (base) "/remove" } {
                                                (csrf(v))
                                                input type="hidden" name="member" value=(m.did);
                                                button.secondary.outline type="submit" aria-label={ "Remove " (name) } { "Remove" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }

            @if manage {
                section aria-labelledby="add" {
                    h2 #add { "Add member" }
                    (refusal.at(Place::Add))
                    form method="post" action={ (base) "/members" } {
                        (csrf(v))
                        label for="add-member" { "Member" }
                        input #add-member name="member" type="text" value=(refusal.member) required
                            autocomplete="off" aria-describedby="add-member-hint";
                        small #add-member-hint { "A handle on this node (@kim) or a did:key." }
                        label for="add-role" { "Role" }
                        (role_select("add-role", "role", roles_for(mine), add_role))
                        small { (ROLES_HINT) }
                        button type="submit" { "Add member" }
                    }
                }
            }

            section aria-labelledby="owned" {
                h2 #owned { "What the group owns" }
                @if owned.is_empty() {
                    p.empty {
                        "Nothing yet. "
                        @if mine.is_some_and(|r| r.allows(Permission::Edit)) {
                            "Choose this group as Owner on a New form — "
                            a href={ "/art/artists/new?owner=" (id) } { "New artist" } ", "
                            a href={ "/art/releases/new?owner=" (id) } { "New release" }
                            " — and every member may edit it."
                        } @else {
                            "What its members make for it shows here."
                        }
                    }
                } @else {
                    ul.rows {
                        @for o in &owned {
                            li.row {
                                div {
                                    a href=(item_url(&o.kind, &o.id)) { strong { (o.title) } }
                                    br;
                                    small.meta {
                                        span.kind { (kind_label(&o.kind)) }
                                        @if o.private { " · private: you are among its readers" }
                                        " · made by " (names.of(&o.author))
                                        " · updated " (fmt::time(o.updated))
                                        @if o.revoked { " · not in force: whoever signed it lost the right" }
                                    }
                                }
                            }
                        }
                    }
                    @if mine.is_some_and(|r| r.allows(Permission::Edit)) {
                        p { small { "To add more, choose this group as Owner on a New form, such as "
                            a href={ "/art/artists/new?owner=" (id) } { "New artist" } " or "
                            a href={ "/art/releases/new?owner=" (id) } { "New release" } "." } }
                    }
                }
            }

            @if let Some(r) = mine {
                section aria-labelledby="leave" {
                    h2 #leave { "Leave group" }
                    (refusal.at(Place::Leave))
                    @if only_owner {
                        p { "You are the only owner: make someone else an owner before you leave. A group always keeps an owner, who decides who is in it." }
                    } @else {
                        p { "You are " (r.name()) " here. Leaving keeps what you made for the group: it stays the group's, in force. You can only come back if an owner or admin adds you." }
                        form method="post" action={ (base) "/leave" } {
                            (csrf(v))
                            button.secondary.outline type="submit" { "Leave group" }
                        }
                    }
                }
            } @else if v.caller.is_none() {
                (log_in_to(v, "see what you may do here"))
            }

            footer.ids {
                small {
                    "Id " (fmt::cid(&id)) " · version " (head.seq()) " " (fmt::cid(&head.cid()))
                    " · " a href={ "/core/groups/" (id) "/history" } { "History" }
                    " · " a href={ "/explore/" (head.cid()) } { "Explore" }
                }
            }
        }
    };
    Ok(layout::respond(v, status, &group.name, body))
}

/// What a members form sends.
#[derive(Deserialize, Default)]
struct MemberForm {
    #[serde(default)]
    member: String,
    #[serde(default)]
    role: String,
}

/// After a change to the members: back to the group's page, or the page with why not.
async fn done(
    s: &ApiState,
    v: &Viewer,
    cid: Cid,
    result: Result<(), ApiError>,
    mut refusal: Refusal,
    place: Place,
) -> Result<Response, Response> {
    match result {
        Ok(()) => Ok(Redirect::to(&format!("/groups/{cid}")).into_response()),
        Err(e) if matches!(e.status, 400 | 403 | 409 | 422) => {
            let status = if e.status == 403 {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            refusal.at = Some((place, e.message));
            group_page(s, v, cid, status, &refusal).await
        }
        Err(e) => Err(layout::error(v, &e)),
    }
}

/// `POST /groups/{id}/members`: Add member.
async fn add(
    State(s): State<ApiState>,
    v: Viewer,
    Path(id): Path<String>,
    Form(f): Form<MemberForm>,
) -> Result<Response, Response> {
    let caller = v.require()?.clone();
    let cid = parse_id(&v, &id)?;
    let member = f.member.trim().to_owned();
    let result = match (member.as_str(), role_named(&f.role)) {
        ("", _) => Err(ApiError::bad_request(
            "give a handle on this node (@kim) or a did:key.",
        )),
        (_, None) => Err(ApiError::bad_request(
            "choose a role: owner, admin, moderator or member.",
        )),
        (who, Some(role)) => groups::set_role(&s, &caller, cid, who, Some(role), None)
            .await
            .map(|_| ()),
    };
    let refusal = Refusal {
        at: None,
        member,
        role: f.role,
    };
    done(&s, &v, cid, result, refusal, Place::Add).await
}

/// `POST /groups/{id}/role`: Change role.
async fn change_role(
    State(s): State<ApiState>,
    v: Viewer,
    Path(id): Path<String>,
    Form(f): Form<MemberForm>,
) -> Result<Response, Response> {
    let caller = v.require()?.clone();
    let cid = parse_id(&v, &id)?;
    let result = match role_named(&f.role) {
        None => Err(ApiError::bad_request(
            "choose a role: owner, admin, moderator or member.",
        )),
        Some(role) => groups::set_role(&s, &caller, cid, f.member.trim(), Some(role), None)
            .await
            .map(|_| ()),
    };
    done(&s, &v, cid, result, Refusal::default(), Place::Members).await
}

/// `POST /groups/{id}/remove`: Remove a member.
async fn remove(
    State(s): State<ApiState>,
    v: Viewer,
    Path(id): Path<String>,
    Form(f): Form<MemberForm>,
) -> Result<Response, Response> {
    let caller = v.require()?.clone();
    let cid = parse_id(&v, &id)?;
    let result = groups::set_role(&s, &caller, cid, f.member.trim(), None, None)
        .await
        .map(|_| ());
    done(&s, &v, cid, result, Refusal::default(), Place::Members).await
}

/// `POST /groups/{id}/leave`: the viewer leaves.
async fn leave(
    State(s): State<ApiState>,
    v: Viewer,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let caller = v.require()?.clone();
    let cid = parse_id(&v, &id)?;
    let result = match v.did {
        Some(did) => groups::set_role(&s, &caller, cid, &did.to_string(), None, None)
            .await
            .map(|_| ()),
        None => Err(ApiError::bad_request(
            "your account has no signing key here.",
        )),
    };
    done(&s, &v, cid, result, Refusal::default(), Place::Leave).await
}

/// `?owner=` on a New form: the group to preselect.
#[derive(Deserialize, Default)]
pub(super) struct OwnerQuery {
    pub(super) owner: Option<String>,
}

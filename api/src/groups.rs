//! Groups that co-edit: a `core.group` lists members with roles, and the items it owns may be
//! changed by any member whose role allows it ([`mnode_dag::group`]).
//!
//! | route | auth | what |
//! |---|---|---|
//! | `GET /groups?member` | open | groups, newest first; with `member` (a handle or DID) only theirs |
//! | `POST /groups {name, description?, members?, as?}` | caller | a new group; the acting account is its owner |
//! | `GET /groups/{id}` | open | the group, its members (with their handles here) and the items it owns |
//! | `PUT /groups/{id}/members/{member} {role, as?}` | caller | add a member or change their role |
//! | `DELETE /groups/{id}/members/{member}?as` | caller | remove a member (or leave) |
//!
//! A group's item is made with `POST /records {kind, body, owner: <group id>}` and changed or
//! deleted with the usual record routes by any member allowed to: each new version cites the
//! group's current head. Removing or demoting someone settles what they signed so far, so their
//! past work stays in force (DESIGN.md §2, docs/decisions.md "Groups that co-edit").

use axum::{
    Json,
    extract::{Path, Query, State},
    http::StatusCode,
};
use mnode_dag::{
    Cid, Did, Link, Record,
    group::{self, GROUP_KIND, OwnerCite, Permission},
    model::core::{Group, Member, Role},
};
use mnode_node::store::ListFilter;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    ApiError, ApiState,
    auth::Caller,
    error::ErrorBody,
    ops::{Written, publish, publish_pinned},
    routes::{Signer, parse_cid, signed, signer},
    with_repo, with_store,
};

type ApiResult = Result<Json<Value>, ApiError>;

/// Most groups one listing scans.
const MAX_GROUPS: usize = 10_000;
/// Most versions one removal settles (the schema's limit).
const MAX_SETTLED: usize = 2_000;

pub(crate) fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_groups, create_group))
        .routes(routes!(read_group))
        .routes(routes!(set_member, remove_member))
}

/// A member to add: a handle on this node or a `did:key`, and a role.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct MemberSpec {
    /// A handle on this node, or a `did:key`.
    #[schema(value_type = crate::openapi::MemberText)]
    pub member: String,
    /// `owner`, `admin`, `moderator` or `member`.
    #[schema(value_type = String, pattern = "^(owner|admin|moderator|member)$")]
    pub role: Role,
}

/// Most characters in a group's name (as the OpenAPI document says).
const NAME_MAX: usize = 200;

/// A new group.
#[derive(Deserialize, ToSchema)]
#[schema(as = CreateGroup)]
struct CreateGroupBody {
    /// The group's name.
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// What the group is for.
    #[serde(default)]
    description: Option<String>,
    /// Members besides the acting account (who is the owner).
    #[serde(default)]
    members: Vec<MemberSpec>,
    /// Act as this account (admins only); default: the caller.
    #[serde(default, rename = "as")]
    #[schema(value_type = Option<crate::openapi::HandleText>)]
    as_handle: Option<String>,
}

/// Who may be a member: a handle on this node, or any `did:key`.
async fn resolve_member(s: &ApiState, member: &str) -> Result<Did, ApiError> {
    if let Ok(did) = member.parse::<Did>() {
        return Ok(did);
    }
    let handle = member.trim_start_matches('@').to_owned();
    let account = with_repo(s, move |repo| Ok(repo.accounts().get(&handle)?)).await?;
    account.and_then(|a| a.identity().copied()).ok_or_else(|| {
        ApiError::bad_request(format!(
            "member: {member:?} is neither a did:key nor an account on this node"
        ))
    })
}

/// The handle on this node of whoever holds `did`, for people.
async fn name_of(s: &ApiState, did: Did) -> Result<String, ApiError> {
    let account = with_repo(s, move |repo| Ok(repo.accounts().by_did(&did)?)).await?;
    Ok(account.map_or_else(|| did.to_string(), |a| a.handle))
}

/// Makes a group; the acting account signs it and is its owner.
pub async fn create(
    s: &ApiState,
    caller: &Caller,
    name: String,
    description: Option<String>,
    members: Vec<MemberSpec>,
    as_handle: Option<String>,
) -> Result<Written, ApiError> {
    let handle = caller.acting_as(s, as_handle)?;
    let key = signer(s, handle.clone()).await?;
    let mut list = vec![Member {
        did: *key.did(),
        role: Role::Owner,
    }];
    for m in members {
        let did = resolve_member(s, &m.member).await?;
        if let Some(existing) = list.iter_mut().find(|x| x.did == did) {
            existing.role = existing.role.min(m.role);
        } else {
            list.push(Member { did, role: m.role });
        }
    }
    let group = Group {
        name,
        description: description.filter(|d| !d.trim().is_empty()),
        members: list,
        settled: vec![],
    };
    let draft =
        Record::create(&group).map_err(|e| ApiError::new(422, "invalid_record", e.to_string()))?;
    let written = publish_pinned(s, signed(draft, &key)?).await?;
    // The group's topic carries its versions and its items: members here hear of them.
    for m in &group.members {
        follow_group(s, m.did, written.id).await?;
    }
    Ok(written)
}

/// Makes the account holding `did` on this node (if any) follow the group's topic.
async fn follow_group(s: &ApiState, did: Did, group: Cid) -> Result<(), ApiError> {
    let account = with_repo(s, move |repo| Ok(repo.accounts().by_did(&did)?)).await?;
    if let Some(a) = account {
        s.node
            .follow_as(&a.handle, mnode_protocols::GossipTopic::Group(group))
            .await?;
    }
    Ok(())
}

/// The group's current head version, and its body (409 when the group was deleted).
pub async fn head(s: &ApiState, group: Cid) -> Result<(Record, Group), ApiError> {
    let record = with_store(s, move |store| Ok(store.head(&group)?))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no group {group} on this node")))?;
    if record.kind() != GROUP_KIND {
        return Err(ApiError::bad_request(format!(
            "{group} is {}, not a group",
            mnode_dag::registry::with_article(record.kind())
        )));
    }
    let body = record
        .body_as::<Group>()
        .map_err(|e| ApiError::internal(&e))?
        .ok_or_else(|| {
            ApiError::new(409, "deleted", format!("group {} was deleted", record.id()))
        })?;
    Ok((record, body))
}

/// The key of the acting account and the group version that grants it `perm`: 403
/// `group_role` when its role in the group's head does not.
pub(crate) async fn member_key(
    s: &ApiState,
    caller: &Caller,
    group: Cid,
    as_handle: Option<String>,
    perm: Permission,
) -> Result<(Signer, Record, Group), ApiError> {
    let handle = caller.acting_as(s, as_handle)?;
    let key = signer(s, handle.clone()).await?;
    let (at, body) = head(s, group).await?;
    let role = group::role_of(&body, key.did());
    if !role.is_some_and(|r| r.allows(perm)) {
        return Err(ApiError::new(
            403,
            "group_role",
            format!(
                "{handle} is {} in group {:?} (version {}); {perm} needs {}",
                role.map_or("not a member", Role::name),
                body.name,
                at.cid(),
                match perm {
                    Permission::Edit => "owner, admin or member",
                    Permission::Moderate => "owner, admin or moderator",
                    Permission::Delete | Permission::Manage => "owner or admin",
                }
            ),
        ));
    }
    Ok((key, at, body))
}

/// A new item owned by `group`, signed by the acting account, which must be allowed to edit.
pub async fn create_owned(
    s: &ApiState,
    caller: &Caller,
    kind: &str,
    body: mnode_dag::Ipld,
    group: Cid,
    as_handle: Option<String>,
) -> Result<Record, ApiError> {
    let (key, at, _) = member_key(s, caller, group, as_handle, Permission::Edit).await?;
    signed(
        mnode_dag::Draft::new(kind.to_owned(), body).owned_by(OwnerCite {
            group: at.id(),
            at: at.cid(),
        }),
        &key,
    )
}

/// A new version of a group's item (`current` is its head) with `body`, citing the group's
/// head.
pub async fn update_owned(
    s: &ApiState,
    caller: &Caller,
    current: &Record,
    cite: OwnerCite,
    body: mnode_dag::Ipld,
    as_handle: Option<String>,
) -> Result<Written, ApiError> {
    let (key, at, _) = member_key(s, caller, cite.group, as_handle, Permission::Edit).await?;
    let record = signed(
        current.update_body(body).owned_by(OwnerCite {
            group: cite.group,
            at: at.cid(),
        }),
        &key,
    )?;
    publish(s, record).await
}

/// Deletes a group's item. A tombstone relies on the group version its predecessor cites; when
/// the signer's right comes from a newer one, a version citing the group's head comes first
/// (same body), in the same write.
pub async fn delete_owned(
    s: &ApiState,
    caller: &Caller,
    current: &Record,
    cite: OwnerCite,
    as_handle: Option<String>,
) -> Result<Written, ApiError> {
    let (key, at, _) = member_key(s, caller, cite.group, as_handle, Permission::Delete).await?;
    let cited = with_store(s, move |store| Ok(store.record(&cite.at)?)).await?;
    let allowed_there = cited
        .and_then(|r| r.body_as::<Group>().ok().flatten())
        .and_then(|g| group::role_of(&g, key.did()))
        .is_some_and(|r| r.allows(Permission::Delete));
    let mut records = vec![];
    let last = if allowed_there && !key.must_recite(current) {
        current.clone()
    } else {
        let body = crate::routes::recite_body(current, &key)?;
        let recite = signed(
            current.update_body(body).owned_by(OwnerCite {
                group: cite.group,
                at: at.cid(),
            }),
            &key,
        )?;
        records.push(recite.clone());
        recite
    };
    let tombstone = signed(last.delete(), &key)?;
    records.push(tombstone.clone());
    let puts = s.node.publish(records).await?;
    Ok(Written {
        cid: tombstone.cid(),
        id: tombstone.id(),
        seq: tombstone.seq(),
        stored: !puts.is_empty(),
        fork: puts
            .iter()
            .any(|p| matches!(p, mnode_node::store::Put::Stored { fork: true, .. })),
    })
}

/// Adds `member` with `role`, changes their role, or (`role` none) removes them. Removing or
/// demoting settles the current versions of the group's items they signed, so their past work
/// stays. Managing takes an owner or an admin (admins cannot touch owners and admins); anyone may
/// leave.
pub async fn set_role(
    s: &ApiState,
    caller: &Caller,
    group: Cid,
    member: &str,
    role: Option<Role>,
    as_handle: Option<String>,
) -> Result<Written, ApiError> {
    let did = resolve_member(s, member).await?;
    let handle = caller.acting_as(s, as_handle.clone())?;
    let key = signer(s, handle).await?;
    let leaving = role.is_none() && did == *key.did();
    let perm = if leaving {
        Permission::Edit
    } else {
        Permission::Manage
    };
    let (key, at, mut body) = if leaving {
        let (at, body) = head(s, group).await?;
        (key, at, body)
    } else {
        member_key(s, caller, group, as_handle, perm).await?
    };
    let original = body.clone();
    let before = group::role_of(&body, &did);
    if before == role {
        return Err(ApiError::new(
            409,
            "unchanged",
            format!(
                "{member} is already {}",
                role.map_or("not a member", Role::name)
            ),
        ));
    }
    match role {
        Some(r) => match body.members.iter_mut().find(|m| m.did == did) {
            Some(m) => m.role = r,
            None => body.members.push(Member { did, role: r }),
        },
        None => body.members.retain(|m| m.did != did),
    }
    let lost =
        |p: Permission| before.is_some_and(|b| b.allows(p)) && !role.is_some_and(|r| r.allows(p));
    body.settled = if lost(Permission::Edit) || lost(Permission::Delete) {
        settle(s, group, did).await?
    } else {
        vec![]
    };
    let mine = group::role_of(&original, key.did());
    if let Err(e) = group::check_group_change(&original, &body, key.did(), mine) {
        return Err(ApiError::new(403, "group_role", e.to_string()));
    }
    let draft = at
        .update(&body)
        .map_err(|e| ApiError::new(422, "invalid_record", e.to_string()))?;
    let written = publish(s, signed(draft, &key)?).await?;
    if before.is_none() {
        follow_group(s, did, at.id()).await?;
    }
    Ok(written)
}

/// The current tips of the group's items in whose history `who` signed a version.
async fn settle(s: &ApiState, group: Cid, who: Did) -> Result<Vec<Link>, ApiError> {
    with_store(s, move |store| {
        let mut out = vec![];
        for id in store.owned_by(&group)? {
            let history = store.history(&id)?;
            if !history.iter().any(|v| v.identity() == who) {
                continue;
            }
            if let Some(item) = store.item(&id)? {
                out.extend(item.tips.iter().map(|(c, _)| Link(*c)));
            }
            if out.len() >= MAX_SETTLED {
                out.truncate(MAX_SETTLED);
                break;
            }
        }
        Ok(out)
    })
    .await
}

/// The JSON of a group: `{id, cid, name, description, members: [{did, handle, role}], items}`.
async fn group_json(s: &ApiState, at: &Record, body: &Group) -> Result<Value, ApiError> {
    let mut members = vec![];
    for m in &body.members {
        members.push(json!({
            "did": m.did.to_string(),
            "handle": name_of(s, m.did).await?,
            "role": m.role.name(),
        }));
    }
    let gid = at.id();
    let items = with_store(s, move |store| {
        let mut out = vec![];
        for id in store.owned_by(&gid)? {
            if let Some(item) = store.item(&id)?
                && !item.deleted
            {
                out.push(json!({
                    "id": id.to_string(),
                    "type": item.kind,
                    "head": item.head.to_string(),
                    "in_force": !item.revoked,
                }));
            }
        }
        Ok(out)
    })
    .await?;
    Ok(json!({
        "id": gid.to_string(),
        "cid": at.cid().to_string(),
        "name": body.name,
        "description": body.description,
        "members": members,
        "items": items,
    }))
}

/// Which groups to list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct GroupsQuery {
    /// Only groups this handle or `did:key` is a member of.
    member: Option<String>,
}

/// Groups, newest first.
///
/// With `member`, only the groups that person is in (by the group's head version).
#[utoipa::path(
    get,
    path = "/groups",
    tag = "groups",
    params(GroupsQuery),
    responses(
        (status = 200, description = "`{items: [{id, cid, name, description, members, items}]}`", body = Object),
        (status = 400, description = "`member` is neither a did:key nor an account here", body = ErrorBody),
    ),
)]
async fn list_groups(State(s): State<ApiState>, Query(q): Query<GroupsQuery>) -> ApiResult {
    let member = match &q.member {
        Some(m) => Some(resolve_member(&s, m).await?),
        None => None,
    };
    let heads = with_store(&s, move |store| {
        let page = store.list(&ListFilter {
            kind: Some(GROUP_KIND.into()),
            limit: MAX_GROUPS,
            ..ListFilter::default()
        })?;
        let mut out = vec![];
        for (_, item) in page.items {
            if let Some(r) = store.record(&item.head)? {
                out.push(r);
            }
        }
        Ok(out)
    })
    .await?;
    let mut items = vec![];
    for r in heads {
        let Ok(Some(body)) = r.body_as::<Group>() else {
            continue;
        };
        if member.is_some_and(|d| group::role_of(&body, &d).is_none()) {
            continue;
        }
        items.push(group_json(&s, &r, &body).await?);
    }
    Ok(Json(json!({ "items": items })))
}

/// Creates a group; the acting account is its owner.
///
/// `members` adds others (handles on this node or `did:key`s) with roles.
#[utoipa::path(
    post,
    path = "/groups",
    tag = "groups",
    request_body = CreateGroupBody,
    responses(
        (status = 201, description = "`{cid, id, seq, stored, forked}`", body = Object),
        (status = 400, description = "A member that is neither a did:key nor an account here, or a name over 200 characters", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "`as` another account without being an admin", body = ErrorBody),
        (status = 422, description = "The group breaks its schema (`invalid_record`)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn create_group(
    State(s): State<ApiState>,
    caller: Caller,
    Json(b): Json<CreateGroupBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if b.name.chars().count() > NAME_MAX {
        return Err(ApiError::bad_request(format!(
            "name: at most {NAME_MAX} characters"
        )));
    }
    let written = create(&s, &caller, b.name, b.description, b.members, b.as_handle).await?;
    Ok((StatusCode::CREATED, Json(written.to_json())))
}

/// A group, its members and the items it owns.
#[utoipa::path(
    get,
    path = "/groups/{id}",
    tag = "groups",
    params(("id" = crate::openapi::CidText, Path, description = "The group's id or any version's CID")),
    responses(
        (status = 200, description = "`{id, cid, name, description, members: [{did, handle, role}], items: [{id, type, head, in_force}]}`", body = Object),
        (status = 400, description = "Not a CID, or not a group", body = ErrorBody),
        (status = 404, description = "No such group on this node", body = ErrorBody),
        (status = 409, description = "The group was deleted", body = ErrorBody),
    ),
)]
async fn read_group(State(s): State<ApiState>, Path(id): Path<String>) -> ApiResult {
    let (at, body) = head(&s, parse_cid(&id)?).await?;
    Ok(Json(group_json(&s, &at, &body).await?))
}

/// A member's new role.
#[derive(Deserialize, ToSchema)]
#[schema(as = SetMember)]
struct SetMemberBody {
    /// `owner`, `admin`, `moderator` or `member`.
    #[schema(value_type = String, pattern = "^(owner|admin|moderator|member)$")]
    role: Role,
    /// Act as this account (admins only); default: the caller.
    #[serde(default, rename = "as")]
    #[schema(value_type = Option<crate::openapi::HandleText>)]
    as_handle: Option<String>,
}

/// Acting as another account.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AsParam {
    /// Act as this account (admins only).
    #[serde(default, rename = "as")]
    #[param(value_type = Option<crate::openapi::HandleText>)]
    as_handle: Option<String>,
}

/// Adds a member to a group or changes their role.
///
/// Takes an owner or admin of the group; only owners make or change owners and admins. A
/// demotion settles what the member signed so far.
#[utoipa::path(
    put,
    path = "/groups/{id}/members/{member}",
    tag = "groups",
    params(
        ("id" = crate::openapi::CidText, Path, description = "The group's id"),
        ("member" = crate::openapi::MemberText, Path, description = "A handle on this node or a did:key"),
    ),
    request_body = SetMemberBody,
    responses(
        (status = 200, description = "`{cid, id, seq, stored, forked}` of the group's new version", body = Object),
        (status = 400, description = "Not a CID, not a group, or an unknown member", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "The acting account's role does not allow it (`group_role`)", body = ErrorBody),
        (status = 404, description = "No such group on this node", body = ErrorBody),
        (status = 409, description = "The member already has that role, or the group was deleted", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn set_member(
    State(s): State<ApiState>,
    caller: Caller,
    Path((id, member)): Path<(String, String)>,
    Json(b): Json<SetMemberBody>,
) -> ApiResult {
    let group = parse_cid(&id)?;
    let w = set_role(&s, &caller, group, &member, Some(b.role), b.as_handle).await?;
    Ok(Json(w.to_json()))
}

/// Removes a member from a group, or leaves it.
///
/// Removing takes an owner or admin (only owners remove owners and admins); anyone may remove
/// themselves, except the last owner. What the member signed so far is settled and stays.
#[utoipa::path(
    delete,
    path = "/groups/{id}/members/{member}",
    tag = "groups",
    params(
        ("id" = crate::openapi::CidText, Path, description = "The group's id"),
        ("member" = crate::openapi::MemberText, Path, description = "A handle on this node or a did:key"),
        AsParam,
    ),
    responses(
        (status = 200, description = "`{cid, id, seq, stored, forked}` of the group's new version", body = Object),
        (status = 400, description = "Not a CID, not a group, or an unknown member", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "The acting account's role does not allow it (`group_role`)", body = ErrorBody),
        (status = 404, description = "No such group on this node", body = ErrorBody),
        (status = 409, description = "Not a member (`unchanged`), or the group was deleted", body = ErrorBody),
        (status = 422, description = "The last owner cannot leave (`invalid_record`)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn remove_member(
    State(s): State<ApiState>,
    caller: Caller,
    Path((id, member)): Path<(String, String)>,
    Query(q): Query<AsParam>,
) -> ApiResult {
    let group = parse_cid(&id)?;
    let w = set_role(&s, &caller, group, &member, None, q.as_handle).await?;
    Ok(Json(w.to_json()))
}

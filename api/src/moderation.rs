//! Forum moderation: the decisions in force in a forum, applied to its views, and taking them.
//!
//! | route | auth | what |
//! |---|---|---|
//! | `GET /forums/{id}/moderation` | open | the forum's owner, moderators, hidden items and banned authors |
//! | `POST /forums/{id}/moderation {action, target?, author?, reason, as?}` | caller | a `social.moderation` record, signed by a moderator or the owner |
//!
//! A decision counts when its signer is the forum's owner (the author of its first version) or
//! a moderator in the forum's newest version this node holds, within the rights
//! [`Moderated::may`] gives; others are stored and relayed but change nothing. The forum's
//! branch and thread views mark what is hidden (`moderation: {action, reason, by, at,
//! record}`) and leave its `record` out; the item stays readable by its CID.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use mnode_dag::{
    Cid, Did, Link, Record,
    model::social::{Branch, Forum, ModAction, ModEntry, Moderated, Moderation},
    registry::Topic,
};
use mnode_node::store::{ListFilter, Order, Store};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    ApiError, ApiState,
    auth::Caller,
    error::ErrorBody,
    ops::publish_pinned,
    routes::{parse_cid, signed, signer},
    social::{body_of, in_topic, live_item},
    with_store,
};

/// Most moderation records read for one forum.
const MAX_DECISIONS: usize = 100_000;

pub(crate) fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(moderation, moderate))
}

/// A forum's moderation as this node sees it.
#[derive(Debug, Clone)]
pub struct ForumModeration {
    /// The forum's id.
    pub forum: Cid,
    /// Who made it.
    pub owner: Did,
    /// Its newest version.
    pub body: Forum,
    /// The decisions in force.
    pub state: Moderated,
}

impl ForumModeration {
    /// The moderation of forum `forum` (its id), or None when the node does not hold it.
    pub fn of(store: &Store, forum: &Cid) -> Result<Option<Self>, ApiError> {
        let Some(item) = store.item(forum)? else {
            return Ok(None);
        };
        if item.kind != "social.forum" || item.deleted {
            return Ok(None);
        }
        let Some(head) = store.record(&item.head)? else {
            return Ok(None);
        };
        let body: Forum = body_of(&head)?;
        let filter = ListFilter {
            limit: MAX_DECISIONS,
            ..in_topic(Topic::Forum(*forum), "social.moderation")
        };
        let mut entries = vec![];
        for (_, it) in store.list_in(&filter, Order::OldestFirst)?.items {
            let Some(r) = store.record(&it.head)? else {
                continue;
            };
            if let Ok(Some(m)) = r.body_as::<Moderation>() {
                entries.push(ModEntry {
                    by: *r.identity(),
                    at: r.info().updated,
                    record: r.cid(),
                    body: m,
                });
            }
        }
        let author_of = |c: &Cid| store.item(c).ok().flatten().map(|i| i.author);
        let state = Moderated::apply(&item.author, &body, entries, author_of);
        Ok(Some(Self {
            forum: *forum,
            owner: item.author,
            body,
            state,
        }))
    }

    /// The moderation of the forum a branch is in.
    pub fn of_branch(store: &Store, branch: &Cid) -> Result<Option<Self>, ApiError> {
        let Some(item) = store.item(branch)? else {
            return Ok(None);
        };
        let Some(head) = store.record(&item.head)? else {
            return Ok(None);
        };
        match head.body_as::<Branch>() {
            Ok(Some(b)) => Self::of(store, &b.forum.0),
            _ => Ok(None),
        }
    }

    /// Whether `who` may moderate here at all.
    pub fn is_moderator(&self, who: &Did) -> bool {
        *who == self.owner || self.body.moderators.contains(who)
    }

    /// Marks hidden items of a listing (items as `item_json` makes them): adds
    /// `moderation` and drops `record` and `summary`.
    pub fn mark(&self, items: &mut [Value]) {
        for v in items.iter_mut() {
            let id = v["id"].as_str().and_then(|s| s.parse::<Cid>().ok());
            let author = v["author"].as_str().and_then(|s| s.parse::<Did>().ok());
            let (Some(id), Some(author)) = (id, author) else {
                continue;
            };
            if let Some(d) = self.state.hidden(&id, &author) {
                let action = if self.state.hidden.contains_key(&id) {
                    "hide"
                } else {
                    "ban"
                };
                v["moderation"] = json!({
                    "action": action,
                    "reason": d.reason,
                    "by": d.by.to_string(),
                    "at": d.at,
                    "record": d.record.to_string(),
                });
                v["record"] = Value::Null;
                v["summary"] = json!("");
            }
        }
    }

    /// As JSON: owner, moderators, hidden items and banned authors.
    pub fn to_json(&self) -> Value {
        let decision = |d: &mnode_dag::model::social::Decision| {
            json!({
                "reason": d.reason,
                "by": d.by.to_string(),
                "at": d.at,
                "record": d.record.to_string(),
            })
        };
        let mut hidden: Vec<Value> = self
            .state
            .hidden
            .iter()
            .map(|(id, d)| json!({ "id": id.to_string(), "decision": decision(d) }))
            .collect();
        hidden.sort_by_key(|v| v["decision"]["at"].as_u64());
        let mut banned: Vec<Value> = self
            .state
            .banned
            .iter()
            .map(|(a, d)| json!({ "author": a.to_string(), "decision": decision(d) }))
            .collect();
        banned.sort_by_key(|v| v["decision"]["at"].as_u64());
        json!({
            "forum": self.forum.to_string(),
            "owner": self.owner.to_string(),
            "moderators": self.body.moderators.iter().map(Did::to_string).collect::<Vec<_>>(),
            "hidden": hidden,
            "banned": banned,
        })
    }
}

/// A forum's moderation.
#[utoipa::path(
    get,
    path = "/forums/{id}/moderation",
    tag = "forums",
    params(("id" = crate::openapi::CidText, Path, description = "The forum's id or any version's CID")),
    responses(
        (status = 200, description = "`{forum, owner, moderators, hidden, banned}`", body = Object),
        (status = 400, description = "Not a CID", body = ErrorBody),
        (status = 404, description = "No such forum, or no such `target` record, on this node", body = ErrorBody),
        (status = 410, description = "The forum was deleted", body = ErrorBody),
    ),
)]
async fn moderation(
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let cid = parse_cid(&id)?;
    let v = with_store(&s, move |store| {
        let (id, _, _) = live_item(store, &cid, "social.forum")?;
        let m = ForumModeration::of(store, &id)?
            .ok_or_else(|| ApiError::not_found(format!("no social.forum {id} on this node")))?;
        Ok(m.to_json())
    })
    .await?;
    Ok(Json(v))
}

/// A moderation decision.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Moderate)]
pub struct ModerateBody {
    /// `hide`, `unhide`, `ban` or `unban`.
    #[schema(value_type = String, pattern = "^(hide|unhide|ban|unban)$")]
    pub action: ModAction,
    /// The post or thread (hide, unhide).
    #[schema(value_type = Option<crate::openapi::CidText>)]
    pub target: Option<String>,
    /// The author (`did:key:…`; ban, unban).
    #[schema(value_type = Option<crate::openapi::DidText>)]
    pub author: Option<String>,
    /// Why; shown with what is hidden.
    #[schema(min_length = 1)]
    pub reason: String,
    /// Sign as this account (admins only); default: the caller.
    #[serde(rename = "as")]
    #[schema(value_type = Option<crate::openapi::HandleText>)]
    pub as_handle: Option<String>,
}

/// Signs and publishes a moderation decision in forum `forum` as `handle`, after checking that
/// the account may take it. Answers the stored record.
pub async fn take(
    s: &ApiState,
    forum: Cid,
    handle: String,
    b: ModerateBody,
) -> Result<crate::ops::Written, ApiError> {
    let target = b.target.as_deref().map(parse_cid).transpose()?;
    let author = b
        .author
        .as_deref()
        .map(|a| {
            a.parse::<Did>()
                .map_err(|_| ApiError::bad_request(format!("author: {a:?} is not a did:key")))
        })
        .transpose()?;
    // The body's own rules first (a reason, and what it acts on): 422.
    let check = |target: Option<Cid>| {
        let body = Moderation {
            forum: Link(forum),
            action: b.action,
            target: target.map(Link),
            author,
            reason: b.reason.clone(),
        };
        Record::create(&body).map_err(|e| ApiError::new(422, "invalid_record", e.to_string()))
    };
    check(target).map(drop)?;
    let key = signer(s, handle).await?;
    let who = *key.did();
    let action = b.action;
    let (forum, target) = with_store(s, move |store| {
        let (forum, _, _) = live_item(store, &forum, "social.forum")?;
        let m = ForumModeration::of(store, &forum)?
            .ok_or_else(|| ApiError::not_found(format!("no social.forum {forum} on this node")))?;
        // Hide and unhide name the item (its id), whichever version was given.
        let target = match target {
            Some(t) => Some(
                store
                    .item_id(&t)?
                    .ok_or_else(|| ApiError::not_found(format!("no record {t} on this node")))?,
            ),
            None => None,
        };
        let subject = match (target, author) {
            (Some(t), _) => store.item(&t)?.map(|i| i.author),
            (None, a) => a,
        };
        if !m.is_moderator(&who) {
            return Err(ApiError::forbidden(format!(
                "{who} is not a moderator of forum {forum}; its owner can add moderators"
            )));
        }
        if !Moderated::may(&m.owner, &m.body, &who, action, subject.as_ref()) {
            return Err(ApiError::forbidden(
                "a moderator may not hide the owner's posts, nor ban the owner or another moderator",
            ));
        }
        Ok((forum, target))
    })
    .await?;
    let draft = Moderation {
        forum: Link(forum),
        action,
        target: target.map(Link),
        author,
        reason: b.reason,
    };
    let draft =
        Record::create(&draft).map_err(|e| ApiError::new(422, "invalid_record", e.to_string()))?;
    publish_pinned(s, signed(draft, &key)?).await
}

/// Takes a moderation decision: hide or show again a post or thread, ban or let back an author.
#[utoipa::path(
    post,
    path = "/forums/{id}/moderation",
    tag = "forums",
    params(("id" = crate::openapi::CidText, Path, description = "The forum's id or any version's CID")),
    request_body = ModerateBody,
    responses(
        (status = 201, description = "The moderation record: `{cid, id, seq, stored, forked}`", body = Object),
        (status = 400, description = "Not a CID or DID, or no such target on this node", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "Not a moderator of the forum, or beyond a moderator's rights", body = ErrorBody),
        (status = 404, description = "No such forum, or no such `target` record, on this node", body = ErrorBody),
        (status = 410, description = "The forum was deleted", body = ErrorBody),
        (status = 422, description = "A decision without what it acts on, or without a reason", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn moderate(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(b): Json<ModerateBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let forum = parse_cid(&id)?;
    let handle = caller.acting_as(&s, b.as_handle.clone())?;
    let put = take(&s, forum, handle, b).await?;
    Ok((StatusCode::CREATED, Json(put.to_json())))
}

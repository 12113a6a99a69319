//! Private records and direct messages (issue 16).
//!
//! A new version is sealed ([`mnode_dag::private::seal`]) for an audience: listed people
//! (`to`: `did:key`s, or handles of accounts on this node), the current members of a group
//! (`to_group`), or both; the author is always among the readers. An edit keeps the previous
//! version's readers unless it names others (or `public: true`); a reader left out cannot
//! read the new version. Every node stores, relays and pins the sealed block, and the gateway
//! serves it as it is; only an account on this node that is a reader gets the opened body:
//!
//! - `GET /records/{cid}` answers every caller: a reader gets the body opened and
//!   `"private": {"to": [ids], "readable": true}`; anyone else gets `"body": null` in the
//!   record and `"private": {"to": [ids], "readable": false}` (the block is public on the
//!   gateway anyway, so its existence is not hidden).
//! - Listings (`GET /records`, feeds, tags, threads, queries, events) leave private items out,
//!   except `GET /records` for a caller who is a reader.
//! - `GET /records/{cid}` and `GET /records` open for the caller's own account only. An admin
//!   may read an account's conversations with `GET /messages?as=`, as it may send as it.
//!
//! | route | auth | what |
//! |---|---|---|
//! | `GET /messages` | caller | the caller's conversations, the latest first |
//! | `GET /messages?with=member[,member…]` | caller | one conversation, oldest first |
//! | `POST /messages {to, text, reply_to?}` | caller | sends a `social.message` |

use std::collections::{BTreeMap, BTreeSet};

use axum::{
    Json,
    extract::{Query, State},
};
use mnode_dag::{
    Cid, Did, Ipld, Model as _, Record,
    model::social::Message,
    private::{self, PrivateError},
    registry::{self, Strictness},
};
use mnode_node::{repo::Repo, store::ListFilter};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{ApiError, ApiState, auth::Caller, error::ErrorBody, ops, with_repo, with_store};

type ApiResult = Result<Json<Value>, ApiError>;

/// Most `social.message` items one conversation listing scans.
const MAX_SCAN: usize = 20_000;
/// Most messages one conversation answers (the latest).
const MAX_MESSAGES: usize = 1_000;

pub(crate) fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(conversations, send_message))
}

/// Who a new version is for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audience {
    /// People: `did:key`s, or handles (`@` allowed) of accounts on this node.
    pub to: Vec<String>,
    /// A group whose current members may read.
    pub to_group: Option<Cid>,
    /// Everyone: an edit of a private item becomes public (refused beside `to`/`to_group`).
    pub public: bool,
}

impl Audience {
    /// The listed people.
    pub fn people(to: Vec<String>) -> Self {
        Self {
            to,
            ..Self::default()
        }
    }

    /// A group's members.
    pub fn group(group: Cid) -> Self {
        Self {
            to_group: Some(group),
            ..Self::default()
        }
    }

    /// Everyone.
    pub fn everyone() -> Self {
        Self {
            public: true,
            ..Self::default()
        }
    }

    /// Whether it names readers (people or a group): a private version.
    pub fn names_readers(&self) -> bool {
        !self.to.is_empty() || self.to_group.is_some()
    }
}

/// An account of this node as a reader: its identity and every key it held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reader {
    /// The identity readers are listed by.
    pub identity: Did,
    /// Its keys, newest first.
    pub keys: Vec<Did>,
}

/// What a caller sees of one version.
#[derive(Debug, Clone, PartialEq)]
pub enum View {
    /// A public version (or a tombstone): its body as it is.
    Public,
    /// A private version the reader opened: the body before sealing.
    Opened {
        /// The opened body (kind fields, `$owner`, `$signer`).
        body: Ipld,
        /// The readers' identities.
        to: Vec<Did>,
    },
    /// A private version this reader cannot read.
    Withheld {
        /// The readers' identities.
        to: Vec<Did>,
        /// Why a reader could not open it (a reader whose copy does not decrypt).
        error: Option<String>,
    },
}

impl View {
    /// The readers of a private version.
    pub fn readers(&self) -> Option<&[Did]> {
        match self {
            Self::Public => None,
            Self::Opened { to, .. } | Self::Withheld { to, .. } => Some(to),
        }
    }
}

/// The reader an account on this node is (`None` without a key).
pub fn reader_of(repo: &Repo, handle: &str) -> Result<Option<Reader>, ApiError> {
    Ok(repo.accounts().get(handle)?.and_then(|a| {
        a.identity().copied().map(|identity| Reader {
            identity,
            keys: a.keys.clone(),
        })
    }))
}

/// The reader the caller's own account is.
pub async fn reader(s: &ApiState, caller: Option<&Caller>) -> Result<Option<Reader>, ApiError> {
    let Some(handle) = caller.map(|c| c.handle(s).to_owned()) else {
        return Ok(None);
    };
    with_repo(s, move |repo| reader_of(repo, &handle)).await
}

/// The reader the caller reads as: its own account, or with `as_handle` that account (its own,
/// or any for an admin, as the write routes' `as`).
pub async fn reader_as(
    s: &ApiState,
    caller: Option<&Caller>,
    as_handle: Option<String>,
) -> Result<Option<Reader>, ApiError> {
    let Some(h) = as_handle else {
        return reader(s, caller).await;
    };
    mnode_dag::model::check::handle("as", &h).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let caller = caller.ok_or_else(ApiError::unauthorized)?;
    let handle = caller.acting_as(s, Some(h))?;
    with_repo(s, move |repo| reader_of(repo, &handle)).await
}

/// Whether `record` is a private version.
pub fn is_private(record: &Record) -> bool {
    record.body().is_some_and(private::is_private)
}

/// Whether `reader` is among the readers of `record` (always for a public one); does not
/// decrypt.
pub fn listed(record: &Record, reader: Option<&Reader>) -> bool {
    let Some(body) = record.body() else {
        return true;
    };
    match private::recipients(body) {
        Ok(None) => true,
        Ok(Some(ids)) => reader.is_some_and(|r| ids.contains(&r.identity)),
        Err(_) => false,
    }
}

/// What `reader` sees of `record`, opening it with the reader's key from the keystore.
pub fn view(repo: &Repo, record: &Record, reader: Option<&Reader>) -> View {
    let Some(body) = record.body() else {
        return View::Public;
    };
    let to = match private::recipients(body) {
        Ok(None) => return View::Public,
        Ok(Some(to)) => to,
        Err(e) => {
            return View::Withheld {
                to: vec![],
                error: Some(e.to_string()),
            };
        }
    };
    let Some(reader) = reader.filter(|r| to.contains(&r.identity)) else {
        return View::Withheld { to, error: None };
    };
    match open_as(repo, record, body, reader) {
        Ok(body) => View::Opened { body, to },
        Err(error) => View::Withheld {
            to,
            error: Some(error),
        },
    }
}

fn open_as(repo: &Repo, record: &Record, body: &Ipld, reader: &Reader) -> Result<Ipld, String> {
    let sealed = private::shape(body)
        .map_err(|e| e.to_string())?
        .ok_or("not private")?;
    let entry = sealed
        .recipient(&reader.identity)
        .ok_or_else(|| PrivateError::NotARecipient(reader.identity).to_string())?;
    if !reader.keys.contains(&entry.key) {
        return Err(format!(
            "it was sealed to {}, a key this account does not hold",
            entry.key
        ));
    }
    let key = repo.keystore().get(&entry.key).map_err(|e| e.to_string())?;
    private::open(
        record.kind(),
        record.identity(),
        record.envelope().origin.as_ref(),
        body,
        &reader.identity,
        &key,
    )
    .map_err(|e| e.to_string())
}

/// `record` as DAG-JSON for `reader`, and the `private` note (`None` for a public version):
/// the body opened for a reader, `null` for anyone else.
pub fn record_json_for(
    repo: &Repo,
    record: &Record,
    reader: Option<&Reader>,
) -> Result<(Value, Option<Value>), ApiError> {
    let mut value = crate::social::record_json(record)?;
    let view = view(repo, record, reader);
    let note = match &view {
        View::Public => return Ok((value, None)),
        View::Opened { body, to } => {
            value["body"] =
                mnode_dag::json::to_json_value(body).map_err(|e| ApiError::internal(&e))?;
            json!({ "to": ids(to), "readable": true })
        }
        View::Withheld { to, error } => {
            value["body"] = Value::Null;
            let mut note = json!({ "to": ids(to), "readable": false });
            if let Some(e) = error {
                note["error"] = json!(e);
            }
            note
        }
    };
    Ok((value, Some(note)))
}

fn ids(to: &[Did]) -> Vec<String> {
    to.iter().map(ToString::to_string).collect()
}

/// The summary of `record` as `reader` sees it: `None` when it is private and the reader is
/// not among its readers (the item is then left out of a listing).
pub fn summary_for(repo: &Repo, record: &Record, reader: Option<&Reader>) -> Option<String> {
    match view(repo, record, reader) {
        View::Public => Some(record.summary()),
        View::Opened { body, .. } => Some(summary_of(&body)),
        View::Withheld { to, .. } => reader
            .filter(|r| to.contains(&r.identity))
            .map(|_| String::new()),
    }
}

/// A listing's one-line text of an opened body (as `Record::summary` does for a public one).
pub fn summary_of(body: &Ipld) -> String {
    let Ipld::Map(m) = body else {
        return String::new();
    };
    let text = ["title", "name", "handle", "statement", "text", "note"]
        .iter()
        .find_map(|f| match m.get(*f) {
            Some(Ipld::String(s)) => Some(s.clone()),
            Some(Ipld::Map(t)) => match t.get("full") {
                Some(Ipld::String(s)) => Some(s.clone()),
                _ => None,
            },
            _ => None,
        })
        .unwrap_or_default();
    let mut short: String = text.chars().take(60).collect();
    if text.chars().count() > 60 {
        short.push('…');
    }
    short.replace('\n', " ")
}

/// The identity of a person named by a `did:key` or a handle on this node.
pub async fn resolve_person(s: &ApiState, who: &str) -> Result<Did, ApiError> {
    let who = who.trim();
    if let Ok(did) = who.parse::<Did>() {
        return Ok(did);
    }
    let handle = who.trim_start_matches('@').to_owned();
    let account = with_repo(s, move |repo| Ok(repo.accounts().get(&handle)?)).await?;
    account.and_then(|a| a.identity().copied()).ok_or_else(|| {
        ApiError::bad_request(format!(
            "to: {who:?} is neither a did:key nor an account on this node"
        ))
    })
}

/// The identities a new version of `kind` is sealed for (the author is added when sealing),
/// or `None` for a public version. `previous` is the version an edit replaces: without an
/// audience named, an edit keeps its readers.
pub async fn readers_for(
    s: &ApiState,
    kind: &str,
    audience: &Audience,
    previous: Option<&Record>,
) -> Result<Option<BTreeSet<Did>>, ApiError> {
    if audience.public && audience.names_readers() {
        return Err(ApiError::new(
            422,
            "invalid_audience",
            "public: a version for everyone takes no `to` or `to_group`",
        ));
    }
    let readers = if audience.public {
        None
    } else if audience.names_readers() {
        let mut set = BTreeSet::new();
        for who in &audience.to {
            set.insert(resolve_person(s, who).await?);
        }
        if let Some(group) = audience.to_group {
            let (_, body) = crate::groups::head(s, group).await?;
            set.extend(body.members.iter().map(|m| m.did));
        }
        Some(set)
    } else {
        match previous.and_then(Record::body).map(private::recipients) {
            Some(Ok(Some(ids))) => Some(ids.into_iter().collect()),
            Some(Err(e)) => return Err(ApiError::new(422, "invalid_record", e.to_string())),
            _ => None,
        }
    };
    if readers.is_none() && kind == Message::KIND {
        return Err(ApiError::new(
            422,
            "invalid_record",
            "a social.message is always private: say whom it is for (`to` or `to_group`)",
        ));
    }
    Ok(readers)
}

/// Seals `body` of a version of `kind` by `identity` in the item `origin` (`None` for a new
/// item) for `readers` and the author, each at their current key. The kind's fields are
/// checked first, as a public body's are when signed (422 `invalid_record`).
pub async fn seal_for(
    s: &ApiState,
    kind: &str,
    identity: Did,
    origin: Option<Cid>,
    body: Ipld,
    readers: BTreeSet<Did>,
) -> Result<Ipld, ApiError> {
    let info = registry::lookup(kind)
        .ok_or_else(|| ApiError::bad_request(format!("unknown kind {kind:?}")))?;
    let invalid = |e: &dyn std::fmt::Display| {
        ApiError::new(
            422,
            "invalid_record",
            format!("{kind} body is invalid: {e}"),
        )
    };
    let (_, fields) =
        registry::split_record_fields(&body, Strictness::Create).map_err(|e| invalid(&e))?;
    info.validate(&fields, Strictness::Create)
        .map_err(|e| invalid(&e))?;
    let mut ids = readers;
    ids.insert(identity);
    if ids.len() > private::MAX_RECIPIENTS {
        return Err(ApiError::bad_request(format!(
            "to: a private record has at most {} readers (the author included), not {}",
            private::MAX_RECIPIENTS,
            ids.len()
        )));
    }
    let pairs = with_store(s, move |store| {
        let mut pairs = Vec::with_capacity(ids.len());
        for id in ids {
            let key = store
                .key_log_path(&id)?
                .and_then(|p| p.current_key())
                .unwrap_or(id);
            pairs.push((id, key));
        }
        Ok(pairs)
    })
    .await?;
    let kind = kind.to_owned();
    tokio::task::spawn_blocking(move || {
        private::seal(
            &kind,
            &identity,
            origin.as_ref(),
            &body,
            &pairs,
            &mut rand::rng(),
        )
        .map_err(|e| match e {
            PrivateError::BadKey(_) | PrivateError::TooManyRecipients(_) => {
                ApiError::bad_request(format!("to: {e}"))
            }
            e => ApiError::new(422, "invalid_record", e.to_string()),
        })
    })
    .await?
}

/// The body of a new item of `kind` as the acting account publishes it: sealed for
/// `audience` unless that is everyone. A body sealed already is left as it is.
pub(crate) async fn seal_new(
    s: &ApiState,
    caller: &Caller,
    kind: &str,
    body: Ipld,
    audience: &Audience,
    as_handle: Option<String>,
) -> Result<Ipld, ApiError> {
    if private::is_private(&body) {
        return Ok(body);
    }
    let Some(readers) = readers_for(s, kind, audience, None).await? else {
        return Ok(body);
    };
    let identity = acting_identity(s, caller, as_handle).await?;
    seal_for(s, kind, identity, None, body, readers).await
}

/// The body of a new version of `current`: sealed for `audience`, or for the readers of
/// `current` when it is private and `audience` names no one.
pub(crate) async fn seal_edit(
    s: &ApiState,
    caller: &Caller,
    current: &Record,
    body: Ipld,
    audience: &Audience,
    as_handle: Option<String>,
) -> Result<Ipld, ApiError> {
    if private::is_private(&body) {
        return Ok(body);
    }
    let Some(readers) = readers_for(s, current.kind(), audience, Some(current)).await? else {
        return Ok(body);
    };
    // A group's item is signed by the acting member; anything else by its author's identity.
    let identity = if current.owner().is_some() || current.kind() == mnode_dag::group::GROUP_KIND {
        acting_identity(s, caller, as_handle).await?
    } else {
        *current.identity()
    };
    seal_for(
        s,
        current.kind(),
        identity,
        Some(current.id()),
        body,
        readers,
    )
    .await
}

/// The identity the acting account signs for.
pub(crate) async fn acting_identity(
    s: &ApiState,
    caller: &Caller,
    as_handle: Option<String>,
) -> Result<Did, ApiError> {
    let handle = caller.acting_as(s, as_handle)?;
    let h = handle.clone();
    with_repo(s, move |repo| reader_of(repo, &h))
        .await?
        .map(|r| r.identity)
        .ok_or_else(|| ApiError::bad_request(format!("the account {handle:?} has no key")))
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Said {
    /// The item's id.
    pub id: Cid,
    /// The version shown.
    pub cid: Cid,
    /// Who wrote it (identity).
    pub author: Did,
    /// When it was written (ms).
    pub created: u64,
    /// The text.
    pub text: String,
    /// The message it answers.
    pub reply_to: Option<Cid>,
    /// Everyone who reads it, the author included.
    pub to: Vec<Did>,
}

/// A conversation: the same readers.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    /// The readers besides the viewer.
    pub with: Vec<Did>,
    /// Its messages, oldest first.
    pub messages: Vec<Said>,
}

/// Every message `reader` can read on this node, by conversation, the latest conversation
/// first; `with`, when given, keeps only the conversation with exactly those people.
pub fn conversations_of(
    repo: &Repo,
    reader: &Reader,
    with: Option<&BTreeSet<Did>>,
) -> Result<Vec<Conversation>, ApiError> {
    let store = repo.store();
    let mut by_people: BTreeMap<Vec<Did>, Vec<Said>> = BTreeMap::new();
    let mut filter = ListFilter {
        kind: Some(Message::KIND.to_owned()),
        limit: 500,
        ..ListFilter::default()
    };
    let mut scanned = 0;
    loop {
        let page = store.list(&filter)?;
        for (id, item) in &page.items {
            scanned += 1;
            if item.deleted {
                continue;
            }
            let Some(head) = store.record(&item.head)? else {
                continue;
            };
            if !is_private(&head) || !listed(&head, Some(reader)) {
                continue;
            }
            let View::Opened { body, to } = view(repo, &head, Some(reader)) else {
                continue;
            };
            let people: Vec<Did> = to
                .iter()
                .filter(|d| **d != reader.identity)
                .copied()
                .collect();
            if with.is_some_and(|w| !w.iter().eq(people.iter())) {
                continue;
            }
            let Ipld::Map(fields) = body else {
                continue;
            };
            let Some(Ipld::String(text)) = fields.get("text") else {
                continue;
            };
            let reply_to = match fields.get("reply_to") {
                Some(Ipld::Link(c)) => Some(*c),
                _ => None,
            };
            by_people.entry(people).or_default().push(Said {
                id: *id,
                cid: head.cid(),
                author: *head.identity(),
                created: item.created,
                text: text.clone(),
                reply_to,
                to,
            });
        }
        match page.next {
            Some(next) if scanned < MAX_SCAN => filter.cursor = Some(next),
            _ => break,
        }
    }
    let mut out: Vec<Conversation> = by_people
        .into_iter()
        .map(|(with, mut messages)| {
            messages.sort_by_key(|m| (m.created, m.cid));
            let skip = messages.len().saturating_sub(MAX_MESSAGES);
            messages.drain(..skip);
            Conversation { with, messages }
        })
        .collect();
    out.sort_by_key(|c| std::cmp::Reverse(c.messages.last().map(|m| m.created)));
    Ok(out)
}

/// The handles on this node of `dids`, where there are any.
pub fn names(repo: &Repo, dids: &[Did]) -> Result<BTreeMap<Did, String>, ApiError> {
    let mut out = BTreeMap::new();
    for did in dids {
        if let Some(a) = repo.accounts().by_identity(did)? {
            out.insert(*did, a.handle);
        }
    }
    Ok(out)
}

fn person_json(did: &Did, names: &BTreeMap<Did, String>) -> Value {
    json!({ "did": did.to_string(), "handle": names.get(did) })
}

fn said_json(m: &Said, names: &BTreeMap<Did, String>) -> Value {
    json!({
        "id": m.id.to_string(),
        "cid": m.cid.to_string(),
        "author": person_json(&m.author, names),
        "created": m.created,
        "text": m.text,
        "reply_to": m.reply_to.map(|c| c.to_string()),
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ConversationQuery {
    /// One conversation: the people in it besides the caller, `did:key`s or handles on this
    /// node, separated by commas. Without it, every conversation with its latest message.
    #[param(pattern = "^[@a-zA-Z0-9:_.-]+(,[@a-zA-Z0-9:_.-]+)*$")]
    with: Option<String>,
    /// Read as this account (admins only, as they may send as it); default: the caller.
    #[serde(default, rename = "as")]
    #[param(rename = "as", value_type = Option<crate::openapi::HandleText>)]
    as_handle: Option<String>,
}

/// The caller's conversations, or one of them.
///
/// Every `social.message` this node holds that the calling account can read, grouped by the
/// people it is for. Without `with`: `{conversations: [{with: [{did, handle}], last, count}]}`,
/// the latest first. With `with`: `{with: [{did, handle}], messages: [{id, cid, author: {did,
/// handle}, created, text, reply_to}]}`, oldest first (at most the latest 1000).
#[utoipa::path(
    get,
    path = "/messages",
    tag = "messages",
    params(ConversationQuery),
    responses(
        (status = 200, description = "The conversations, or the messages of one", body = Object),
        (status = 400, description = "`with` names someone who is neither a did:key nor an account on this node, or is empty", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "`as` another account without being an admin", body = ErrorBody),
        (status = 404, description = "No such account (`as`) on this node", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn conversations(
    State(s): State<ApiState>,
    caller: Caller,
    Query(q): Query<ConversationQuery>,
) -> ApiResult {
    let handle = caller.acting_as(&s, q.as_handle.clone())?;
    let h = handle.clone();
    let me = with_repo(&s, move |repo| reader_of(repo, &h))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no account {handle:?} with a key here")))?;
    let with =
        match &q.with {
            Some(list) => {
                if list.split(',').any(|w| w.trim().is_empty()) {
                    return Err(ApiError::bad_request(
                        "with: a comma-separated list of did:keys or handles, none of them empty",
                    ));
                }
                let mut set = BTreeSet::new();
                for who in list.split(',') {
                    set.insert(resolve_person(&s, who).await.map_err(|e| {
                        ApiError::bad_request(e.message.replacen("to:", "with:", 1))
                    })?);
                }
                set.remove(&me.identity);
                Some(set)
            }
            None => None,
        };
    let one = with.is_some();
    let v = with_repo(&s, move |repo| {
        let found = conversations_of(repo, &me, with.as_ref())?;
        let mut people: Vec<Did> = found
            .iter()
            .flat_map(|c| c.with.iter().chain(c.messages.iter().map(|m| &m.author)))
            .copied()
            .collect();
        people.extend(with.iter().flatten().copied());
        let names = names(repo, &people)?;
        if one {
            let messages: Vec<Value> = found
                .first()
                .map(|c| c.messages.iter().map(|m| said_json(m, &names)).collect())
                .unwrap_or_default();
            let with: Vec<Value> = with
                .iter()
                .flatten()
                .map(|d| person_json(d, &names))
                .collect();
            return Ok(json!({ "with": with, "messages": messages }));
        }
        let list: Vec<Value> = found
            .iter()
            .map(|c| {
                json!({
                    "with": c.with.iter().map(|d| person_json(d, &names)).collect::<Vec<_>>(),
                    "last": c.messages.last().map(|m| said_json(m, &names)),
                    "count": c.messages.len(),
                })
            })
            .collect();
        Ok(json!({ "conversations": list }))
    })
    .await?;
    Ok(Json(v))
}

/// A direct message.
#[derive(Deserialize, ToSchema)]
#[schema(as = SendMessage)]
struct SendBody {
    /// Whom it is for: `did:key`s or handles of accounts on this node (1 to 499).
    #[schema(value_type = Vec<crate::openapi::MemberText>, min_items = 1, max_items = 499)]
    to: Vec<String>,
    /// The message.
    #[schema(min_length = 1, max_length = 100000)]
    text: String,
    /// The message this one answers (its id).
    #[serde(default)]
    #[schema(value_type = Option<crate::openapi::CidText>)]
    reply_to: Option<String>,
    /// Send as this account (admins only); default: the caller.
    #[serde(default, rename = "as")]
    #[schema(value_type = Option<crate::openapi::HandleText>)]
    as_handle: Option<String>,
}

/// Sends a direct message: a `social.message` sealed for `to` and the sender.
///
/// Only the people it is for (and the sender) read it; every node stores and relays it.
#[utoipa::path(
    post,
    path = "/messages",
    tag = "messages",
    request_body = SendBody,
    responses(
        (status = 200, description = "`{cid, id, seq, stored, forked}`", body = Object),
        (status = 400, description = "No one to send to, someone who is neither a did:key nor an account here, or `reply_to` is not a CID", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "`as` another account without being an admin", body = ErrorBody),
        (status = 422, description = "The message breaks its schema (`invalid_record`: empty or too long)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn send_message(
    State(s): State<ApiState>,
    caller: Caller,
    Json(b): Json<SendBody>,
) -> ApiResult {
    Ok(Json(
        send(&s, &caller, b.to, b.text, b.reply_to, b.as_handle)
            .await?
            .to_json(),
    ))
}

/// Sends `text` to `to` as a `social.message`, answering `reply_to` when given.
pub async fn send(
    s: &ApiState,
    caller: &Caller,
    to: Vec<String>,
    text: String,
    reply_to: Option<String>,
    as_handle: Option<String>,
) -> Result<ops::Written, ApiError> {
    let to: Vec<String> = to.into_iter().filter(|t| !t.trim().is_empty()).collect();
    if to.is_empty() {
        return Err(ApiError::bad_request(
            "to: say whom the message is for (a did:key or a handle on this node)",
        ));
    }
    // An empty `reply_to` is not a CID: refused, not read as "none".
    let reply_to = reply_to
        .as_deref()
        .map(|r| crate::routes::parse_cid(r.trim()))
        .transpose()?;
    let mut body = BTreeMap::from([("text".to_owned(), Ipld::String(text))]);
    if let Some(cid) = reply_to {
        body.insert("reply_to".to_owned(), Ipld::Link(cid));
    }
    let body = Ipld::Map(body);
    ops::create_to(
        s,
        caller,
        Message::KIND,
        body,
        None,
        &Audience::people(to),
        as_handle,
    )
    .await
}

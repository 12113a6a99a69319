//! The operations the REST handlers and the web UI (`mnode-ui`) share, so that a record, an
//! account or a file made from a page goes through exactly the checks, signing and publishing
//! of the same call made over `/api/v1`. Each takes the [`ApiState`] and the [`Caller`] it acts
//! for; errors are [`ApiError`]s, which the UI shows next to the form and the API as JSON.

use mnode_dag::{Cid, Draft, Ipld, Record, model::core::Profile, registry};
use mnode_node::{
    accounts::{Account, Role},
    sessions::Session,
    store::Put,
};

use crate::{
    ApiError, ApiState,
    routes::{head_of, owner_key, pin_items, signed, signer},
    with_repo, with_store,
};
pub use crate::{
    accounts::{KeyChange, recover_key, rotate_key},
    auth::Caller,
    private::Audience,
    social::{WIDGET_ITEMS, WIDGET_SCAN, set_mute, widget_json},
};

/// What a write made: the new version, the item it belongs to, and whether it was new here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// The new version's CID.
    pub cid: Cid,
    /// The item's id (its first version's CID).
    pub id: Cid,
    /// The new version's number.
    pub seq: u64,
    /// Whether the node did not hold this version before.
    pub stored: bool,
    /// Whether this version forks its item (another version already replaced the same one).
    pub fork: bool,
}

impl Written {
    /// The answer of the record routes: `{cid, id, seq, stored, forked}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "cid": self.cid.to_string(),
            "id": self.id.to_string(),
            "seq": self.seq,
            "stored": self.stored,
            "forked": self.fork,
        })
    }
}

/// Who a bearer or session token belongs to.
pub async fn caller(s: &ApiState, token: &str) -> Result<Caller, ApiError> {
    crate::auth::check(s, token).await
}

/// Signs `body` as a new item of `kind` by the account `as_handle` (or the caller), publishes
/// it and pins it.
pub async fn create(
    s: &ApiState,
    caller: &Caller,
    kind: &str,
    body: Ipld,
    as_handle: Option<String>,
) -> Result<Written, ApiError> {
    create_in(s, caller, kind, body, None, as_handle).await
}

/// [`create`], the new item owned by `group` when given: any member the group allows to edit
/// may then change it (403 `group_role` when the acting account may not edit in the group).
pub async fn create_in(
    s: &ApiState,
    caller: &Caller,
    kind: &str,
    body: Ipld,
    group: Option<Cid>,
    as_handle: Option<String>,
) -> Result<Written, ApiError> {
    create_to(
        s,
        caller,
        kind,
        body,
        group,
        &Audience::default(),
        as_handle,
    )
    .await
}

/// [`create_in`], the body sealed for `audience` unless it is everyone (see
/// [`crate::private`]); a `social.message` must name its readers.
pub async fn create_to(
    s: &ApiState,
    caller: &Caller,
    kind: &str,
    body: Ipld,
    group: Option<Cid>,
    audience: &Audience,
    as_handle: Option<String>,
) -> Result<Written, ApiError> {
    known_kind(kind)?;
    writable_kind(kind)?;
    let body = crate::private::seal_new(s, caller, kind, body, audience, as_handle.clone()).await?;
    let record = match group {
        Some(group) => crate::groups::create_owned(s, caller, kind, body, group, as_handle).await?,
        None => {
            let handle = caller.acting_as(s, as_handle)?;
            let key = signer(s, handle).await?;
            signed(Draft::new(kind.to_owned(), body), &key)?
        }
    };
    check_reply(s, &record).await?;
    publish_pinned(s, record).await
}

/// A reply must fit the conversation of its parent, when this node holds the parent (as
/// every node receiving it checks): 422 otherwise.
async fn check_reply(s: &ApiState, record: &Record) -> Result<(), ApiError> {
    if record.index().targets.is_empty() {
        return Ok(());
    }
    let r = record.clone();
    let why = with_store(s, move |store| {
        let targets = store.targets(&r)?;
        Ok(mnode_protocols::gossip::inconsistent_reply(&r, &targets))
    })
    .await?;
    match why {
        Some(why) => Err(ApiError::new(
            422,
            "invalid_record",
            format!("reply: {why}"),
        )),
        None => Ok(()),
    }
}

/// Signs and publishes a new version of the item `cid` names with `body`, by its author.
pub async fn update(
    s: &ApiState,
    caller: &Caller,
    cid: Cid,
    body: Ipld,
    as_handle: Option<String>,
) -> Result<Written, ApiError> {
    update_to(s, caller, cid, body, &Audience::default(), as_handle).await
}

/// [`update`] for `audience`: a private item's new version is sealed for the readers of the
/// version it replaces unless `audience` names others (or everyone).
pub async fn update_to(
    s: &ApiState,
    caller: &Caller,
    cid: Cid,
    body: Ipld,
    audience: &Audience,
    as_handle: Option<String>,
) -> Result<Written, ApiError> {
    let current = live_head(s, cid, "takes no new versions").await?;
    writable_kind(current.kind())?;
    let body =
        crate::private::seal_edit(s, caller, &current, body, audience, as_handle.clone()).await?;
    if let Some(cite) = current.owner() {
        return crate::groups::update_owned(s, caller, &current, cite, body, as_handle).await;
    }
    let key = if current.kind() == mnode_dag::group::GROUP_KIND {
        let perm = mnode_dag::group::Permission::Manage;
        crate::groups::member_key(s, caller, current.id(), as_handle, perm)
            .await?
            .0
    } else {
        owner_key(s, caller, &current, as_handle).await?
    };
    let record = signed(current.update_body(body), &key)?;
    publish(s, record).await
}

/// Deletes the item `cid` names with a signed tombstone.
pub async fn delete(
    s: &ApiState,
    caller: &Caller,
    cid: Cid,
    as_handle: Option<String>,
) -> Result<Written, ApiError> {
    let current = live_head(s, cid, "is already deleted").await?;
    writable_kind(current.kind())?;
    if KEPT_KINDS.contains(&current.kind()) {
        forbid_deletion(s, mnode_dag::registry::with_article(current.kind()))?;
    }
    if let Some(cite) = current.owner() {
        return crate::groups::delete_owned(s, caller, &current, cite, as_handle).await;
    }
    let key = if current.kind() == mnode_dag::group::GROUP_KIND {
        // Deleting a group takes an owner (the group rules check it when it is stored).
        let perm = mnode_dag::group::Permission::Manage;
        crate::groups::member_key(s, caller, current.id(), as_handle, perm)
            .await?
            .0
    } else {
        owner_key(s, caller, &current, as_handle).await?
    };
    if key.must_recite(&current) {
        // A rotated key deletes what an older key signed in two steps: a version citing the
        // key's grant (same body), then the tombstone relying on it.
        let recite = signed(
            current.update_body(crate::routes::uncited_body(&current)),
            &key,
        )?;
        let tombstone = signed(recite.delete(), &key)?;
        let puts = s.node.publish(vec![recite, tombstone.clone()]).await?;
        return Ok(Written {
            cid: tombstone.cid(),
            id: tombstone.id(),
            seq: tombstone.seq(),
            stored: !puts.is_empty(),
            fork: puts
                .iter()
                .any(|p| matches!(p, Put::Stored { fork: true, .. })),
        });
    }
    let record = signed(current.delete(), &key)?;
    publish(s, record).await
}

/// The kinds `api.forbid_deletion` keeps: artists and file records.
pub const KEPT_KINDS: &[&str] = &["art.artist", "art.artist_group", "core.file"];

/// Whether this node keeps accounts, artists and files (`api.forbid_deletion`).
pub fn deletion_forbidden(s: &ApiState) -> bool {
    s.node.repo().config().api.forbid_deletion
}

/// 403 `deletion_forbidden` when this node keeps accounts, artists and files; `what` names what
/// was to be deleted.
pub fn forbid_deletion(s: &ApiState, what: impl std::fmt::Display) -> Result<(), ApiError> {
    if deletion_forbidden(s) {
        return Err(ApiError::new(
            403,
            "deletion_forbidden",
            format!(
                "this node keeps accounts, artists and files (api.forbid_deletion: true), so \
                 {what} cannot be deleted; its admin can turn that off"
            ),
        ));
    }
    Ok(())
}

async fn live_head(s: &ApiState, cid: Cid, deleted: &str) -> Result<Record, ApiError> {
    let current = head_of(s, cid).await?;
    if current.is_tombstone() {
        return Err(ApiError::new(
            409,
            "deleted",
            format!("{} was deleted; a deleted item {deleted}", current.id()),
        ));
    }
    Ok(current)
}

/// Publishes one signed record.
pub(crate) async fn publish(s: &ApiState, record: Record) -> Result<Written, ApiError> {
    let puts = s.node.publish(vec![record.clone()]).await?;
    Ok(Written {
        cid: record.cid(),
        id: record.id(),
        seq: record.seq(),
        stored: puts.iter().any(|p| matches!(p, Put::Stored { .. })),
        fork: puts
            .iter()
            .any(|p| matches!(p, Put::Stored { fork: true, .. })),
    })
}

/// Publishes a new item's first version and pins the item (with its history and links).
pub(crate) async fn publish_pinned(s: &ApiState, record: Record) -> Result<Written, ApiError> {
    let id = record.id();
    let written = publish(s, record).await?;
    pin_items(s, vec![id]).await?;
    Ok(written)
}

/// Creates an account with a new signing key, the root of its identity's key log (naming a new
/// recovery key) and its `core.profile` record (handle and display name), signed by the new
/// key; answers the account and the recovery key as text
/// ([`mnode_node::accounts::recovery_text`]), which the node does not keep: shown only now.
/// Open to anyone while `api.open_registration` is on; only an admin may make an admin.
pub async fn register(
    s: &ApiState,
    caller: Option<&Caller>,
    handle: String,
    email: String,
    phone: Option<String>,
    password: Option<String>,
    role: Role,
) -> Result<(Account, Option<String>), ApiError> {
    let admin = caller.is_some_and(Caller::is_admin);
    if password.is_none() && !admin {
        return Err(ApiError::bad_request(
            "password: required (only an admin may make an account without one)",
        ));
    }
    if !admin && !s.node.repo().config().api.open_registration {
        return Err(ApiError::forbidden(
            "registration is closed on this node (api.open_registration: false); ask its admin",
        ));
    }
    if role == Role::Admin && !admin {
        return Err(ApiError::forbidden("only an admin may create an admin"));
    }
    let account = with_repo(s, move |repo| {
        Ok(repo
            .accounts()
            .create(&handle, &email, phone.as_deref(), password.as_deref(), role)?)
    })
    .await?;
    let profile = Profile {
        handle: account.handle.clone(),
        display_name: account.handle.clone(),
        bio: None,
        avatar: None,
        links: vec![],
    };
    let draft = Record::create(&profile).map_err(|e| ApiError::internal(&e))?;
    let recovery = crate::accounts::publish_key_log(s, account.handle.clone()).await?;
    let key = signer(s, account.handle.clone()).await?;
    publish_pinned(s, signed(draft, &key)?).await?;
    // The node hears replies and notes to the new account on its feed's topic.
    if let Some(did) = account.did() {
        s.node
            .follow(mnode_protocols::GossipTopic::Author(*did))
            .await
            .map_err(|e| ApiError::internal(&e))?;
    }
    Ok((account, recovery))
}

/// Checks a handle (or email) and password and opens a session: its token, shown only now.
pub async fn login(
    s: &ApiState,
    login: String,
    password: String,
) -> Result<(String, Session), ApiError> {
    let ttl_ms = s
        .node
        .repo()
        .config()
        .api
        .session_ttl_secs
        .saturating_mul(1000);
    with_repo(s, move |repo| {
        let accounts = repo.accounts();
        // A handle, an email, or a phone number in international form: handles have no `@`
        // and do not start with `+`.
        let found = if login.contains('@') {
            accounts.by_email(&login)?
        } else if login.trim_start().starts_with('+') || login.starts_with("tel:") {
            accounts.by_phone(&login)?
        } else {
            None
        };
        let handle = found.map_or_else(|| login.clone(), |a| a.handle);
        let account = accounts.check_password(&handle, &password)?;
        Ok(repo.sessions().create(&account.handle, ttl_ms)?)
    })
    .await
}

/// Sets the password of the account `handle`: the person or an admin may.
pub async fn set_password(
    s: &ApiState,
    caller: &Caller,
    handle: String,
    password: String,
) -> Result<(), ApiError> {
    if !caller.may_act_for(s, &handle) {
        return Err(ApiError::forbidden(
            "only the account itself or an admin may set its password",
        ));
    }
    with_repo(s, move |repo| {
        Ok(repo.accounts().set_password(&handle, &password)?)
    })
    .await
}

/// Sets (or with `None` removes) the phone number of the account `handle`, normalised to
/// E.164; answers the account.
pub async fn set_phone(
    s: &ApiState,
    caller: &Caller,
    handle: String,
    phone: Option<String>,
) -> Result<Account, ApiError> {
    if !caller.may_act_for(s, &handle) {
        return Err(ApiError::forbidden(
            "only the account itself or an admin may set its phone number",
        ));
    }
    with_repo(s, move |repo| {
        Ok(repo.accounts().set_phone(&handle, phone.as_deref())?)
    })
    .await
}

/// Deletes the account `handle` and ends its sessions; answers the account and how many
/// sessions ended. Its records stay; its keys leave the node.
pub async fn delete_account(
    s: &ApiState,
    caller: &Caller,
    handle: String,
) -> Result<(Account, usize), ApiError> {
    if !caller.may_act_for(s, &handle) {
        return Err(ApiError::forbidden(
            "only the account itself or an admin may delete it",
        ));
    }
    forbid_deletion(s, format_args!("the account {handle}"))?;
    if handle == s.node.repo().info().owner {
        return Err(ApiError::new(
            409,
            "node_owner",
            format!("{handle} owns this node; its account cannot be deleted"),
        ));
    }
    with_repo(s, move |repo| {
        let account = repo.accounts().delete(&handle)?;
        let ended = repo.sessions().revoke_all(&account.handle)?;
        Ok((account, ended))
    })
    .await
}

/// Ends the session `id`: one of the caller's, or anyone's for an admin.
pub async fn revoke_session(s: &ApiState, caller: &Caller, id: String) -> Result<(), ApiError> {
    let session = with_repo(s, move |repo| Ok(repo.sessions().get(&id)?))
        .await?
        .filter(|x| caller.may_act_for(s, &x.handle))
        // Someone else's session is reported as missing: ids are not to be probed.
        .ok_or_else(|| ApiError::not_found("no such session of yours"))?;
    with_repo(s, move |repo| Ok(repo.sessions().revoke(&session.id)?)).await?;
    Ok(())
}

pub use crate::files::upload;

/// Forums: a post in a thread and a fork of a thread, as `POST /threads/{id}/replies` and
/// `POST /threads/{id}/fork` make them.
pub use crate::forums::{Forked, NewFork, NewReply, Replied, fork_thread, fork_title, post_reply};
/// Reading one live item of a kind (404 when missing or of another kind, 410 when deleted)
/// and its body as a model, as the forum and fact routes do.
pub use crate::social::{body_of, live_item};

/// The kinds the node writes itself, never the record routes or forms: `core.keys`, an
/// identity's key log, which rotating or recovering the account's key writes. They are read,
/// listed and explored like any other kind.
pub const SYSTEM_KINDS: &[&str] = &[mnode_dag::key_log::KEYS_KIND];

/// Refuses (403) to create, edit or delete an item of one of the [`SYSTEM_KINDS`], saying
/// what writes it.
pub fn writable_kind(kind: &str) -> Result<(), ApiError> {
    if !SYSTEM_KINDS.contains(&kind) {
        return Ok(());
    }
    Err(ApiError::new(
        403,
        "written_by_node",
        format!(
            "{kind} (an account's key log) is written only by rotating or recovering the \
             account's key: POST /api/v1/accounts/{{handle}}/keys/rotate or \
             POST /api/v1/accounts/{{handle}}/keys/recover"
        ),
    ))
}

/// Refuses a kind the registry does not know (400), suggesting the nearest one.
pub(crate) fn known_kind(kind: &str) -> Result<(), ApiError> {
    if registry::lookup(kind).is_some() {
        return Ok(());
    }
    Err(ApiError::bad_request(match registry::suggest(kind) {
        Some(k) => format!("unknown kind {kind:?}; did you mean {}?", k.name),
        None => format!("unknown kind {kind:?}; GET /api/v1/openapi.json lists them (KindName)"),
    }))
}

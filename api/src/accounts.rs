//! `/api/v1/accounts`, `/api/v1/sessions`, `/api/v1/me`: register, log in, sessions, delete,
//! and key rotation and recovery (`/api/v1/accounts/{handle}/keys/…`).

use axum::{
    Json,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use mnode_dag::{Cid, Did};
use mnode_node::{
    accounts::{Account, Role, parse_recovery, recovery_text},
    sessions::Session,
};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    ApiError, ApiState,
    auth::{Admin, Caller},
    error::ErrorBody,
    ops, with_repo,
};

type ApiResult = Result<Json<Value>, ApiError>;

pub(crate) fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list, register))
        .routes(routes!(show, remove))
        .routes(routes!(set_password))
        .routes(routes!(set_phone))
        .routes(routes!(sessions, login, logout))
        .routes(routes!(revoke))
        .routes(routes!(me))
        .routes(routes!(logout_post))
        .routes(routes!(rotate))
        .routes(routes!(recover))
}

/// An account as others see it; `private` adds the email (for the person and admins).
fn account_json(a: &Account, private: bool) -> Value {
    let mut v = json!({
        "handle": a.handle,
        "did": a.identity().map(ToString::to_string),
        "key": a.did().map(ToString::to_string),
        "keys": a.keys.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "role": a.role,
        "created": a.created,
    });
    if private {
        v["email"] = json!(a.email);
        v["phone"] = json!(a.phone);
        v["password_set"] = json!(a.password.is_some());
        v["recovery"] = json!(a.recovery.as_ref().map(ToString::to_string));
    }
    v
}

fn session_json(s: &Session, current: Option<&str>) -> Value {
    json!({
        "id": s.id,
        "handle": s.handle,
        "created": s.created,
        "expires": s.expires,
        "current": current == Some(s.id.as_str()),
    })
}

/// A new account.
#[derive(Deserialize, ToSchema)]
#[schema(as = Register)]
struct RegisterBody {
    #[schema(value_type = crate::openapi::HandleText)]
    handle: String,
    #[schema(value_type = crate::openapi::EmailText)]
    email: String,
    /// Optional; unique among the node's accounts.
    #[schema(value_type = Option<crate::openapi::PhoneText>)]
    phone: Option<String>,
    /// Required, except from an admin: an account made without one signs records on this
    /// node but cannot log in until it is given one.
    #[schema(value_type = Option<crate::openapi::PasswordText>)]
    password: Option<String>,
    /// `user` (the default) or `admin`; only an admin may make another admin.
    #[serde(default)]
    #[schema(schema_with = role_schema)]
    role: Option<Role>,
}

fn role_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            utoipa::openapi::Type::String,
            utoipa::openapi::Type::Null,
        ]))
        .enum_values(Some([Some("user"), Some("admin"), None]))
        .description(Some(
            "`user` (the default) or `admin`; only an admin may make another admin.",
        ))
        .build()
}

/// Creates an account with a new signing key.
///
/// Open to anyone when `api.open_registration` is on (the default); admin only otherwise.
#[utoipa::path(
    post,
    path = "/accounts",
    tag = "accounts",
    operation_id = "register",
    request_body = RegisterBody,
    responses(
        (status = 201, description = "The account: `{handle, did, key, keys, role, created, email, phone, password_set, recovery, recovery_key}`; `did` is the identity, `key` the key it signs with, `recovery_key` the secret of its recovery key, shown only now (the node keeps only its public half, `recovery`)", body = Object),
        (status = 400, description = "A bad handle, email or phone number, or no password from someone not an admin", body = ErrorBody),
        (status = 401, description = "A bad token (none is fine)", body = ErrorBody),
        (status = 403, description = "Registration is closed, or a non-admin asked for an admin", body = ErrorBody),
        (status = 409, description = "The handle, email or phone number is taken", body = ErrorBody),
        (status = 422, description = "The password is too weak", body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
async fn register(
    State(s): State<ApiState>,
    caller: Option<Caller>,
    Json(b): Json<RegisterBody>,
) -> Result<Response, ApiError> {
    let role = b.role.unwrap_or(Role::User);
    let (account, recovery_key) = ops::register(
        &s,
        caller.as_ref(),
        b.handle,
        b.email,
        b.phone,
        b.password,
        role,
    )
    .await?;
    let mut v = account_json(&account, true);
    v["recovery_key"] = json!(recovery_key);
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

/// Every account on this node.
///
/// Admin only.
#[utoipa::path(
    get,
    path = "/accounts",
    tag = "accounts",
    operation_id = "list_accounts",
    responses(
        (status = 200, description = "`{accounts: [{handle, did, keys, role, created, email}]}`", body = Object),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "The caller is not an admin", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn list(State(s): State<ApiState>, _admin: Admin) -> ApiResult {
    let accounts = with_repo(&s, |repo| Ok(repo.accounts().list()?)).await?;
    let list: Vec<Value> = accounts.iter().map(|a| account_json(a, true)).collect();
    Ok(Json(json!({ "accounts": list })))
}

/// An account: public fields for anyone, the email for the person and admins.
#[utoipa::path(
    get,
    path = "/accounts/{handle}",
    tag = "accounts",
    operation_id = "show_account",
    params(("handle" = crate::openapi::HandleText, Path, description = "The account's handle")),
    responses(
        (status = 200, description = "`{handle, did, keys, role, created}` (and `email`)", body = Object),
        (status = 401, description = "A bad token (none is fine)", body = ErrorBody),
        (status = 404, description = "No such account", body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
async fn show(
    State(s): State<ApiState>,
    caller: Option<Caller>,
    Path(handle): Path<String>,
) -> ApiResult {
    let private = caller.as_ref().is_some_and(|c| c.may_act_for(&s, &handle));
    let h = handle.clone();
    let account = with_repo(&s, move |repo| Ok(repo.accounts().get(&h)?))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no account {handle:?}")))?;
    Ok(Json(account_json(&account, private)))
}

#[derive(Deserialize, ToSchema)]
#[schema(as = NewPassword)]
struct PasswordBody {
    /// The new password (checked for strength).
    #[schema(value_type = crate::openapi::PasswordText)]
    password: String,
}

/// Sets an account's password.
///
/// The person or an admin may. Sessions already open stay open; revoke them with
/// `DELETE /api/v1/sessions/{id}` if the old password leaked.
#[utoipa::path(
    put,
    path = "/accounts/{handle}/password",
    tag = "accounts",
    params(("handle" = crate::openapi::HandleText, Path, description = "The account's handle")),
    request_body = PasswordBody,
    responses(
        (status = 200, description = "`{handle}`", body = Object),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "Neither the account itself nor an admin", body = ErrorBody),
        (status = 404, description = "No such account", body = ErrorBody),
        (status = 422, description = "The password is too weak (`weak_password`)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn set_password(
    State(s): State<ApiState>,
    caller: Caller,
    Path(handle): Path<String>,
    Json(b): Json<PasswordBody>,
) -> ApiResult {
    ops::set_password(&s, &caller, handle.clone(), b.password).await?;
    Ok(Json(json!({ "handle": handle })))
}

/// A phone number for an account, or none.
#[derive(Deserialize, ToSchema)]
#[schema(as = PhoneBody)]
struct PhoneBody {
    /// The number, or `null` to remove it.
    #[schema(value_type = Option<crate::openapi::PhoneText>)]
    phone: Option<String>,
}

/// Sets or removes an account's phone number.
///
/// The person or an admin may. The number is stored in E.164 form and no two accounts on the
/// node may have the same one.
#[utoipa::path(
    put,
    path = "/accounts/{handle}/phone",
    tag = "accounts",
    operation_id = "set_phone",
    params(("handle" = crate::openapi::HandleText, Path, description = "The account's handle")),
    request_body = PhoneBody,
    responses(
        (status = 200, description = "The account: `{handle, did, keys, role, created, email, phone, password_set}`", body = Object),
        (status = 400, description = "Not a phone number", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "Neither the account itself nor an admin", body = ErrorBody),
        (status = 404, description = "No such account", body = ErrorBody),
        (status = 409, description = "Another account has this number (`taken`)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn set_phone(
    State(s): State<ApiState>,
    caller: Caller,
    Path(handle): Path<String>,
    Json(b): Json<PhoneBody>,
) -> ApiResult {
    let account = ops::set_phone(&s, &caller, handle, b.phone).await?;
    Ok(Json(account_json(&account, true)))
}

/// Deletes an account and ends its sessions.
///
/// The person or an admin may. Its records stay, signed and verifiable; its keys are removed
/// from the node, so it can publish no more.
#[utoipa::path(
    delete,
    path = "/accounts/{handle}",
    tag = "accounts",
    operation_id = "delete_account",
    params(("handle" = crate::openapi::HandleText, Path, description = "The account's handle")),
    responses(
        (status = 200, description = "`{deleted: handle, sessions_ended}`", body = Object),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "Neither the account itself nor an admin, or the node keeps its accounts (`deletion_forbidden`, `api.forbid_deletion`)", body = ErrorBody),
        (status = 404, description = "No such account", body = ErrorBody),
        (status = 409, description = "The node owner's account (`node_owner`)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn remove(
    State(s): State<ApiState>,
    caller: Caller,
    Path(handle): Path<String>,
) -> ApiResult {
    let (account, ended) = ops::delete_account(&s, &caller, handle).await?;
    Ok(Json(
        json!({ "deleted": account.handle, "sessions_ended": ended }),
    ))
}

/// Credentials.
#[derive(Deserialize, ToSchema)]
#[schema(as = Login)]
struct LoginBody {
    /// A handle, an email, or a phone number with `+` and its country code.
    login: String,
    password: String,
}

/// Logs in with handle (or email) and password; answers a session token, shown only now.
#[utoipa::path(
    post,
    path = "/sessions",
    tag = "accounts",
    operation_id = "login",
    request_body = LoginBody,
    responses(
        (status = 201, description = "The session with its `token`: `{id, handle, created, expires, current, token}`", body = Object),
        (status = 401, description = "No such account, or the wrong password (`wrong_password`)", body = ErrorBody),
    ),
)]
async fn login(
    State(s): State<ApiState>,
    client: crate::limits::Client,
    Json(b): Json<LoginBody>,
) -> Result<Response, crate::limits::Refusal> {
    // Throttled: failed logins make the next wait (429), whatever its password.
    let attempt = ops::login(&s, b.login.clone(), b.password);
    let (token, session) = s.limits().login(&b.login, client, attempt).await?;
    let mut v = session_json(&session, Some(&session.id));
    v["token"] = json!(token);
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

#[derive(Deserialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
struct SessionsQuery {
    /// An admin: another account's sessions, or `*` for all.
    #[param(pattern = r"^(?:\*|[a-z0-9][a-z0-9_.-]{0,31})$")]
    handle: Option<String>,
}

/// The caller's sessions; an admin may ask for anyone's.
#[utoipa::path(
    get,
    path = "/sessions",
    tag = "accounts",
    operation_id = "list_sessions",
    params(SessionsQuery),
    responses(
        (status = 200, description = "`{sessions: [{id, handle, created, expires, current}]}`", body = Object),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "Another account's sessions without being an admin", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn sessions(
    State(s): State<ApiState>,
    caller: Caller,
    Query(q): Query<SessionsQuery>,
) -> ApiResult {
    let me = caller.handle(&s).to_owned();
    if let Some(h) = q.handle.as_deref().filter(|h| *h != "*") {
        mnode_dag::model::check::handle("handle", h)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    let which = match q.handle {
        Some(h) if h != me && !caller.is_admin() => {
            return Err(ApiError::forbidden(
                "only an admin may list others' sessions",
            ));
        }
        Some(h) if h == "*" => None,
        Some(h) => Some(h),
        None => Some(me),
    };
    let current = match &caller {
        Caller::Account { session, .. } => Some(session.clone()),
        Caller::Node => None,
    };
    let list = with_repo(&s, move |repo| {
        Ok(repo.sessions().list(which.as_deref())?)
    })
    .await?;
    let list: Vec<Value> = list
        .iter()
        .map(|x| session_json(x, current.as_deref()))
        .collect();
    Ok(Json(json!({ "sessions": list })))
}

/// Ends one session: one of the caller's, or anyone's for an admin.
#[utoipa::path(
    delete,
    path = "/sessions/{id}",
    tag = "accounts",
    operation_id = "revoke_session",
    params(("id" = crate::openapi::SessionIdText, Path, description = "The session id")),
    responses(
        (status = 200, description = "`{revoked: id}`", body = Object),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 404, description = "No such session of the caller's", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn revoke(State(s): State<ApiState>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    ops::revoke_session(&s, &caller, id.clone()).await?;
    Ok(Json(json!({ "revoked": id })))
}

/// Ends the session that made this request.
#[utoipa::path(
    delete,
    path = "/sessions",
    tag = "accounts",
    operation_id = "logout",
    responses(
        (status = 200, description = "`{logged_out: true}`", body = Object),
        (status = 403, description = "The admin token is not a session (`not_a_session`)", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn logout(State(s): State<ApiState>, caller: Caller) -> ApiResult {
    let Caller::Account { session, .. } = caller else {
        return Err(ApiError::new(
            403,
            "not_a_session",
            "the admin token is not a session; nothing to log out",
        ));
    };
    with_repo(&s, move |repo| Ok(repo.sessions().revoke(&session)?)).await?;
    Ok(Json(json!({ "logged_out": true })))
}

/// Ends the session that made this request (as `DELETE /sessions`).
#[utoipa::path(
    post,
    path = "/logout",
    tag = "accounts",
    operation_id = "logout_post",
    responses(
        (status = 200, description = "`{logged_out: true}`", body = Object),
        (status = 403, description = "The admin token is not a session (`not_a_session`)", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn logout_post(s: State<ApiState>, caller: Caller) -> ApiResult {
    logout(s, caller).await
}

/// The caller's own account, and whether the caller is an admin.
#[utoipa::path(
    get,
    path = "/me",
    tag = "accounts",
    responses(
        (status = 200, description = "`{handle, did, keys, role, created, email, admin}`", body = Object),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 404, description = "The caller's account is gone", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn me(State(s): State<ApiState>, caller: Caller) -> ApiResult {
    let handle = caller.handle(&s).to_owned();
    let h = handle.clone();
    let account = with_repo(&s, move |repo| Ok(repo.accounts().get(&h)?))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no account {handle:?}")))?;
    let mut v = account_json(&account, true);
    v["admin"] = json!(caller.is_admin());
    Ok(Json(v))
}

/// Publishes (stores, pins and announces) the root of the account's key log, making it first
/// when there is none; answers the new recovery key as text when one was made (shown once).
pub(crate) async fn publish_key_log(
    s: &ApiState,
    handle: String,
) -> Result<Option<String>, ApiError> {
    let (root, recovery) =
        with_repo(s, move |repo| Ok(repo.accounts().ensure_log(&handle)?)).await?;
    ops::publish_pinned(s, root).await?;
    Ok(recovery.as_ref().map(recovery_text))
}

/// What a key rotation or recovery made.
#[derive(Debug, Clone)]
pub struct KeyChange {
    /// The identity the account speaks for (unchanged).
    pub identity: Did,
    /// The key it signs with from now on.
    pub key: Did,
    /// The key log version granting `key`.
    pub log_version: Cid,
    /// A recovery key made now, as text, shown only now: at the first rotation of an account
    /// made before key logs (with the log's root), and at every recovery (the old one is spent).
    pub recovery_key: Option<String>,
}

impl KeyChange {
    /// The answer of the key routes: `{identity, key, log_version, recovery_key}`.
    pub fn to_json(&self) -> Value {
        json!({
            "identity": self.identity.to_string(),
            "key": self.key.to_string(),
            "log_version": self.log_version.to_string(),
            "recovery_key": self.recovery_key,
        })
    }
}

fn may_change_keys(s: &ApiState, caller: &Caller, handle: &str) -> Result<(), ApiError> {
    if caller.may_act_for(s, handle) {
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "only {handle} or an admin of this node may change the keys of {handle}"
    )))
}

/// Rotates the key of the account `handle` (the account itself or an admin): a new key signs
/// for its identity from now on, granted by the next version of its key log, which is published
/// first; what the old key signed stays in force. An account made before key logs gets its
/// log's root first, with a recovery key returned once.
pub async fn rotate_key(
    s: &ApiState,
    caller: &Caller,
    handle: String,
) -> Result<KeyChange, ApiError> {
    change_key(s, caller, handle, Grant::Rotate).await
}

/// Recovers the account `handle` with the recovery key its key log names (given as text, as
/// shown at sign-up): a new key and a fresh recovery key (returned once; the one given is
/// spent), granted by a key log version the recovery key signs. 422 `wrong_recovery_key`,
/// changing nothing, when it is not the account's recovery key.
pub async fn recover_key(
    s: &ApiState,
    caller: &Caller,
    handle: String,
    recovery_key: &str,
) -> Result<KeyChange, ApiError> {
    change_key(s, caller, handle, Grant::Recover(recovery_key)).await
}

/// What grants the new key: the current key (a rotation) or a recovery key, as text.
enum Grant<'a> {
    Rotate,
    Recover(&'a str),
}

/// What [`rotate_key`] and [`recover_key`] share: who may, the new key log version made and
/// published, and the answer.
async fn change_key(
    s: &ApiState,
    caller: &Caller,
    handle: String,
    grant: Grant<'_>,
) -> Result<KeyChange, ApiError> {
    may_change_keys(s, caller, &handle)?;
    // A rotation publishes the log's root first when the account has none (its recovery key
    // is then answered); a recovery needs the log and says so below when it is missing.
    let (recovery, made) = match grant {
        Grant::Rotate => (None, publish_key_log(s, handle.clone()).await?),
        Grant::Recover(text) => {
            let key = parse_recovery(text).map_err(|e| ApiError::bad_request(e.to_string()))?;
            (Some(key), None)
        }
    };
    let h = handle.clone();
    let (new, record, fresh, account) = with_repo(s, move |repo| {
        let accounts = repo.accounts();
        let (new, record, fresh) = match &recovery {
            None => {
                let (new, record) = accounts.rotate(&h)?;
                (new, record, None)
            }
            Some(key) => {
                let (new, record, fresh) = accounts.recover(&h, key)?;
                (new, record, Some(fresh))
            }
        };
        let account = accounts
            .get(&h)?
            .ok_or_else(|| ApiError::not_found(format!("no account {h:?}")))?;
        Ok((new, record, fresh, account))
    })
    .await?;
    let log_version = record.cid();
    ops::publish(s, record).await?;
    Ok(KeyChange {
        identity: account.identity().copied().unwrap_or(*new.did()),
        key: *new.did(),
        log_version,
        recovery_key: fresh.as_ref().map(recovery_text).or(made),
    })
}

/// Rotates an account's signing key.
///
/// The account itself or an admin may. A new key signs for the account's identity (`did`,
/// unchanged) from now on, granted by the next version of the identity's key log (`core.keys`),
/// signed by the current key and published before anything the new key signs. The items the old
/// key signed stay in force; a version the old key signs after this is not. An account made
/// before key logs existed gets its log first, and its recovery key is answered once
/// (`recovery_key`; otherwise null).
#[utoipa::path(
    post,
    path = "/accounts/{handle}/keys/rotate",
    tag = "accounts",
    operation_id = "rotate_key",
    params(("handle" = crate::openapi::HandleText, Path, description = "The account's handle")),
    responses(
        (status = 200, description = "`{identity, key, log_version, recovery_key}`: the new key, the key log version granting it, and a recovery key made now (shown only now) or null", body = Object),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "Neither the account itself nor an admin", body = ErrorBody),
        (status = 404, description = "No such account", body = ErrorBody),
        (status = 409, description = "The key log grants a key this node does not hold: the account rotated or recovered elsewhere (`key_elsewhere`)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn rotate(
    State(s): State<ApiState>,
    caller: Caller,
    Path(handle): Path<String>,
) -> ApiResult {
    Ok(Json(rotate_key(&s, &caller, handle).await?.to_json()))
}

/// A recovery key.
#[derive(Deserialize, ToSchema)]
#[schema(as = Recovery)]
struct RecoverBody {
    /// The recovery key, as shown at sign-up (or by the last recovery or first rotation).
    #[schema(value_type = crate::openapi::RecoveryKeyText)]
    recovery_key: String,
}

/// Recovers an account with its recovery key.
///
/// For an account whose key was lost or stolen: the account itself or an admin may. The
/// recovery key signs the next version of the identity's key log, granting a new key (which
/// signs for the identity from now on) and naming a fresh recovery key, answered once; the one
/// given is spent. On every node, a recovery beats a rotation made from the same log version
/// with the old key.
#[utoipa::path(
    post,
    path = "/accounts/{handle}/keys/recover",
    tag = "accounts",
    operation_id = "recover_key",
    params(("handle" = crate::openapi::HandleText, Path, description = "The account's handle")),
    request_body = RecoverBody,
    responses(
        (status = 200, description = "`{identity, key, log_version, recovery_key}`: the new key, the key log version granting it, and the new recovery key (shown only now)", body = Object),
        (status = 400, description = "Not a recovery key (`mnode-recovery-1:` and 64 hex digits)", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "Neither the account itself nor an admin", body = ErrorBody),
        (status = 404, description = "No such account", body = ErrorBody),
        (status = 409, description = "The account has no key log on this node (`no_key_log`)", body = ErrorBody),
        (status = 422, description = "Not the recovery key the account's key log names (`wrong_recovery_key`); nothing changed", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn recover(
    State(s): State<ApiState>,
    caller: Caller,
    Path(handle): Path<String>,
    Json(b): Json<RecoverBody>,
) -> ApiResult {
    Ok(Json(
        recover_key(&s, &caller, handle, &b.recovery_key)
            .await?
            .to_json(),
    ))
}

//! `/api/v1/accounts`, `/api/v1/sessions`, `/api/v1/me`: register, log in, sessions, delete.

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{delete, get, post},
};
use mnode_node::{
    accounts::{Account, Role},
    sessions::Session,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    ApiError, ApiState,
    auth::{Admin, Caller},
};

type ApiResult = Result<Json<Value>, ApiError>;

pub(crate) fn router() -> Router<ApiState> {
    Router::new()
        .route("/accounts", get(list).post(register))
        .route("/accounts/{handle}", get(show).delete(remove))
        .route("/sessions", get(sessions).post(login).delete(logout))
        .route("/sessions/{id}", delete(revoke))
        .route("/me", get(me))
        .route("/logout", post(logout))
}

/// An account as others see it; `private` adds the email (for the person and admins).
fn account_json(a: &Account, private: bool) -> Value {
    let mut v = json!({
        "handle": a.handle,
        "did": a.did().map(ToString::to_string),
        "keys": a.keys.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "role": a.role,
        "created": a.created,
    });
    if private {
        v["email"] = json!(a.email);
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

async fn blocking<T: Send + 'static>(
    s: &ApiState,
    f: impl FnOnce(&mnode_node::repo::Repo) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let repo = s.node.repo().clone();
    tokio::task::spawn_blocking(move || f(&repo)).await?
}

#[derive(Deserialize)]
struct RegisterBody {
    handle: String,
    email: String,
    password: String,
    /// Only an admin may make another admin.
    #[serde(default)]
    role: Option<Role>,
}

/// Creates an account with a new signing key. Open to anyone when `api.open_registration` is
/// on (the default); an admin otherwise.
async fn register(
    State(s): State<ApiState>,
    caller: Option<Caller>,
    Json(b): Json<RegisterBody>,
) -> Result<Response, ApiError> {
    let admin = caller.as_ref().is_some_and(Caller::is_admin);
    if !admin && !s.node.repo().config().api.open_registration {
        return Err(ApiError::forbidden(
            "registration is closed on this node (api.open_registration: false); ask its admin",
        ));
    }
    let role = b.role.unwrap_or(Role::User);
    if role == Role::Admin && !admin {
        return Err(ApiError::forbidden("only an admin may create an admin"));
    }
    let account = blocking(&s, move |repo| {
        Ok(repo
            .accounts()
            .create(&b.handle, &b.email, Some(&b.password), role)?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(account_json(&account, true))).into_response())
}

async fn list(State(s): State<ApiState>, _admin: Admin) -> ApiResult {
    let accounts = blocking(&s, |repo| Ok(repo.accounts().list()?)).await?;
    let list: Vec<Value> = accounts.iter().map(|a| account_json(a, true)).collect();
    Ok(Json(json!({ "accounts": list })))
}

/// Account page data: public fields for anyone, the email for the person and admins.
async fn show(
    State(s): State<ApiState>,
    caller: Option<Caller>,
    Path(handle): Path<String>,
) -> ApiResult {
    let private = caller.as_ref().is_some_and(|c| c.may_act_for(&s, &handle));
    let h = handle.clone();
    let account = blocking(&s, move |repo| Ok(repo.accounts().get(&h)?))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no account {handle:?}")))?;
    Ok(Json(account_json(&account, private)))
}

/// Deletes an account (the person or an admin) and ends its sessions. Its records stay, signed
/// and verifiable; its keys are removed from the node, so it can publish no more.
async fn remove(
    State(s): State<ApiState>,
    caller: Caller,
    Path(handle): Path<String>,
) -> ApiResult {
    if !caller.may_act_for(&s, &handle) {
        return Err(ApiError::forbidden(
            "only the account itself or an admin may delete it",
        ));
    }
    if handle == s.node.repo().info().owner {
        return Err(ApiError::new(
            409,
            "node_owner",
            "the node owner's account cannot be deleted through the API",
        ));
    }
    let (account, ended) = blocking(&s, move |repo| {
        let account = repo.accounts().delete(&handle)?;
        let ended = repo.sessions().revoke_all(&account.handle)?;
        Ok((account, ended))
    })
    .await?;
    Ok(Json(
        json!({ "deleted": account.handle, "sessions_ended": ended }),
    ))
}

#[derive(Deserialize)]
struct LoginBody {
    /// A handle or an email.
    login: String,
    password: String,
}

/// Logs in with handle (or email) and password; returns a session token, shown only now.
async fn login(State(s): State<ApiState>, Json(b): Json<LoginBody>) -> Result<Response, ApiError> {
    let ttl_ms = s
        .node
        .repo()
        .config()
        .api
        .session_ttl_secs
        .saturating_mul(1000);
    let (token, session) = blocking(&s, move |repo| {
        let accounts = repo.accounts();
        let handle = if b.login.contains('@') {
            match accounts.by_email(&b.login)? {
                Some(a) => a.handle,
                None => b.login.clone(),
            }
        } else {
            b.login.clone()
        };
        let account = accounts.check_password(&handle, &b.password)?;
        Ok(repo.sessions().create(&account.handle, ttl_ms)?)
    })
    .await?;
    let mut v = session_json(&session, Some(&session.id));
    v["token"] = json!(token);
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

#[derive(Deserialize, Default)]
struct SessionsQuery {
    /// An admin: another account's sessions, or `*` for all.
    handle: Option<String>,
}

/// My sessions (an admin may ask for anyone's).
async fn sessions(
    State(s): State<ApiState>,
    caller: Caller,
    Query(q): Query<SessionsQuery>,
) -> ApiResult {
    let me = caller.handle(&s).to_owned();
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
    let list = blocking(&s, move |repo| {
        Ok(repo.sessions().list(which.as_deref())?)
    })
    .await?;
    let list: Vec<Value> = list
        .iter()
        .map(|x| session_json(x, current.as_deref()))
        .collect();
    Ok(Json(json!({ "sessions": list })))
}

/// Ends one session: one of mine, or anyone's for an admin.
async fn revoke(State(s): State<ApiState>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    let session = blocking(&s, move |repo| Ok(repo.sessions().get(&id)?))
        .await?
        .filter(|x| caller.may_act_for(&s, &x.handle))
        // Someone else's session is reported as missing: ids are not to be probed.
        .ok_or_else(|| ApiError::not_found("no such session of yours"))?;
    let id = session.id.clone();
    blocking(&s, move |repo| Ok(repo.sessions().revoke(&id)?)).await?;
    Ok(Json(json!({ "revoked": session.id })))
}

/// Ends the session that made this request.
async fn logout(State(s): State<ApiState>, caller: Caller) -> ApiResult {
    let Caller::Account { session, .. } = caller else {
        return Err(ApiError::bad_request(
            "the admin token is not a session; nothing to log out",
        ));
    };
    blocking(&s, move |repo| Ok(repo.sessions().revoke(&session)?)).await?;
    Ok(Json(json!({ "logged_out": true })))
}

/// The caller's own account.
async fn me(State(s): State<ApiState>, caller: Caller) -> ApiResult {
    let handle = caller.handle(&s).to_owned();
    let h = handle.clone();
    let account = blocking(&s, move |repo| Ok(repo.accounts().get(&h)?))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no account {handle:?}")))?;
    let mut v = account_json(&account, true);
    v["admin"] = json!(caller.is_admin());
    Ok(Json(v))
}

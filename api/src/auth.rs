//! Who is calling: the node's admin token, a login session, or nobody.
//!
//! `Authorization: Bearer <token>` carries either the admin token in `<repo>/api.token` (the
//! CLI; acts as the node's owner, with admin rights) or a session token from
//! `POST /api/v1/sessions`. Handlers take [`Caller`] when they need someone, [`Admin`] when
//! they need an admin, and `Option<Caller>` when anyone may call but a caller sees more.

use axum::{
    extract::{FromRequestParts, OptionalFromRequestParts},
    http::{HeaderMap, header::AUTHORIZATION, request::Parts},
};
use mnode_node::{accounts::Role, sessions::Check};

use crate::{ApiError, ApiState};

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Caller {
    /// The node's admin token: the node's owner, as admin.
    Node,
    /// A logged-in account.
    Account {
        /// Its handle.
        handle: String,
        /// Its role when the session was checked.
        role: Role,
        /// The session id (hex SHA-256 of the token).
        session: String,
    },
}

impl Caller {
    /// Whether the caller may manage the node and every account on it.
    pub fn is_admin(&self) -> bool {
        match self {
            Self::Node => true,
            Self::Account { role, .. } => *role == Role::Admin,
        }
    }

    /// The account the caller is.
    pub fn handle<'a>(&'a self, s: &'a ApiState) -> &'a str {
        match self {
            Self::Node => &s.node.repo().info().owner,
            Self::Account { handle, .. } => handle,
        }
    }

    /// The account a request acts as: the caller, or `as_handle` if the caller is an admin.
    pub fn acting_as(&self, s: &ApiState, as_handle: Option<String>) -> Result<String, ApiError> {
        let me = self.handle(s);
        match as_handle {
            Some(h) if h != me && !self.is_admin() => Err(ApiError::forbidden(format!(
                "only an admin may act as another account ({h:?})"
            ))),
            Some(h) => Ok(h),
            None => Ok(me.to_owned()),
        }
    }

    /// Whether the caller may act for the account `handle`: it is theirs, or they are an admin.
    pub fn may_act_for(&self, s: &ApiState, handle: &str) -> bool {
        self.is_admin() || self.handle(s) == handle
    }
}

fn bearer(headers: &HeaderMap) -> Option<Result<&str, ApiError>> {
    let value = headers.get(AUTHORIZATION)?;
    Some(
        value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::new(401, "bad_token", "Authorization must be `Bearer <token>`")
            }),
    )
}

/// What a request's `Authorization` header made of it, kept in the request's extensions: the
/// limits guard resolves it before the routes, and the handler's extractor reads it there
/// instead of looking the session up again.
#[derive(Debug, Clone)]
struct Resolved(Option<Result<Caller, ApiError>>);

/// The caller of the request `parts`: `None` without an `Authorization` header, an error for
/// a malformed, unknown or expired token. Looked up once a request; the answer is kept in
/// its extensions for whoever asks next.
pub(crate) async fn resolve(parts: &mut Parts, s: &ApiState) -> Option<Result<Caller, ApiError>> {
    if let Some(Resolved(known)) = parts.extensions.get::<Resolved>() {
        return known.clone();
    }
    let resolved = match bearer(&parts.headers) {
        None => None,
        Some(Err(e)) => Some(Err(e)),
        Some(Ok(token)) => Some(check(s, token).await),
    };
    parts.extensions.insert(Resolved(resolved.clone()));
    resolved
}

pub(crate) async fn check(s: &ApiState, token: &str) -> Result<Caller, ApiError> {
    if constant_time_eq(token.as_bytes(), s.token.as_bytes()) {
        return Ok(Caller::Node);
    }
    // Only hex tokens of the right length are looked up.
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad_token());
    }
    let repo = s.node.repo().clone();
    let token = token.to_owned();
    tokio::task::spawn_blocking(move || {
        let session = match repo.sessions().check(&token)? {
            Check::Valid(session) => session,
            Check::Expired => {
                return Err(ApiError::new(
                    401,
                    "session_expired",
                    "the session has expired; log in again (POST /api/v1/sessions)",
                ));
            }
            Check::Unknown => return Err(bad_token()),
        };
        let account = repo
            .accounts()
            .get(&session.handle)
            .map_err(|e| ApiError::internal(&e))?
            .ok_or_else(bad_token)?;
        Ok(Caller::Account {
            handle: account.handle,
            role: account.role,
            session: session.id,
        })
    })
    .await?
}

fn bad_token() -> ApiError {
    ApiError::new(
        401,
        "bad_token",
        "unknown, revoked or logged-out token; log in again (POST /api/v1/sessions)",
    )
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &ApiState) -> Result<Self, ApiError> {
        resolve(parts, s)
            .await
            .unwrap_or_else(|| Err(ApiError::unauthorized()))
    }
}

impl OptionalFromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    /// No `Authorization` header is nobody; a header with a bad token is still a 401.
    async fn from_request_parts(parts: &mut Parts, s: &ApiState) -> Result<Option<Self>, ApiError> {
        resolve(parts, s).await.transpose()
    }
}

/// A caller with admin rights.
#[derive(Debug, Clone)]
pub(crate) struct Admin;

impl FromRequestParts<ApiState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &ApiState) -> Result<Self, ApiError> {
        let caller = <Caller as FromRequestParts<ApiState>>::from_request_parts(parts, s).await?;
        if !caller.is_admin() {
            return Err(ApiError::forbidden("this needs an admin"));
        }
        Ok(Self)
    }
}

//! Errors as JSON `{"error": {"code", "message"}}` with the right status, never an internal
//! detail.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use mnode_node::{accounts::AccountError, node::NodeError, store::StoreError};
use serde::Serialize;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// A stable machine-readable code, like `not_found`.
    pub code: &'static str,
    /// What went wrong, for a person.
    pub message: String,
}

impl ApiError {
    /// A 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "bad_request", message)
    }

    /// A 401: no token.
    pub fn unauthorized() -> Self {
        Self::new(
            401,
            "unauthorized",
            "this needs a token: send Authorization: Bearer <token> with a session token from \
             POST /api/v1/sessions (or the admin token in <repo>/api.token)",
        )
    }

    /// A 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "forbidden", message)
    }

    /// A 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "not_found", message)
    }

    /// Any status.
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// A 507 `disk_full`: the disk that holds the repo is full, nothing was written. Reads
    /// still work, and writes do again once there is room (docs/decisions.md).
    pub fn disk_full() -> Self {
        Self::new(507, "disk_full", mnode_node::DISK_FULL)
    }

    /// A 500 that logs `e` and tells the client only that the node failed; or, when `e` says
    /// that the disk is full (from any store, on any route), a 507 that says so.
    pub fn internal(e: &dyn std::fmt::Display) -> Self {
        let text = e.to_string();
        if mnode_node::says_disk_full(&text) {
            tracing::warn!("refused, the disk is full: {text}");
            return Self::disk_full();
        }
        tracing::error!("internal error: {text}");
        Self::new(500, "internal", "the node failed; see its log")
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        match e {
            NodeError::Store(s) => s.into(),
            NodeError::Dial { .. } => Self::new(502, "dial_failed", e.to_string()),
            NodeError::NotFound(_) => Self::not_found(e.to_string()),
            NodeError::Fetch { .. } => Self::new(502, "fetch_failed", e.to_string()),
            NodeError::Stopped => Self::new(503, "stopping", e.to_string()),
            NodeError::Blobs(mnode_node::blobs::BlobError::DiskFull) => Self::disk_full(),
            other => Self::internal(&other),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::internal(&e)
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::HandleTaken(_)
            | AccountError::EmailTaken(_)
            | AccountError::PhoneTaken(_) => Self::new(409, "taken", e.to_string()),
            AccountError::NotFound(_) => Self::not_found(e.to_string()),
            AccountError::Invalid(_) => Self::bad_request(e.to_string()),
            AccountError::WeakPassword(_) => Self::new(422, "weak_password", e.to_string()),
            AccountError::WrongPassword => Self::new(401, "wrong_password", e.to_string()),
            AccountError::Store(s) => s.into(),
            AccountError::KeyElsewhere { .. } => Self::new(409, "key_elsewhere", e.to_string()),
            AccountError::NoKeyLog(_) => Self::new(409, "no_key_log", e.to_string()),
            AccountError::WrongRecovery(_) => Self::new(422, "wrong_recovery_key", e.to_string()),
            other => Self::internal(&other),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Record(_) => Self::new(422, "invalid_record", e.to_string()),
            StoreError::MissingPrev { .. } => Self::new(409, "missing_prev", e.to_string()),
            StoreError::MissingAuthority { .. } => Self::new(409, "missing_group", e.to_string()),
            StoreError::DiskFull => Self::disk_full(),
            other => Self::internal(&other),
        }
    }
}

/// The body of every error answer.
// The OpenAPI document calls it `Error`; every handler documents its errors with it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorDetail {
    /// A stable machine-readable code, like `not_found` or `bad_token`.
    #[schema(example = "not_found")]
    code: &'static str,
    /// What went wrong, for a person.
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
        };
        (status, Json(body)).into_response()
    }
}

/// Turns the framework's own refusals into the API's JSON error form: a body, path or query that
/// does not parse (axum answers those in plain text), no such route and a method the route does
/// not take (empty answers). JSON answers and successes pass untouched.
pub(crate) async fn json_errors(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if !status.is_client_error() && !status.is_server_error() {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    if is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 << 10)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let or = |default: &str| {
        if text.is_empty() {
            default.to_owned()
        } else {
            text.clone()
        }
    };
    let (code, message) = match status.as_u16() {
        400 => ("bad_request", or("the request is malformed")),
        404 => ("no_route", or("no such route; see /api/v1/openapi.json")),
        405 => (
            "method_not_allowed",
            or("this route does not take this method"),
        ),
        413 => ("too_large", or("the request body is too large")),
        415 => (
            "unsupported_media_type",
            or("send Content-Type: application/json"),
        ),
        422 => ("invalid_body", or("the body does not fit this route")),
        _ => ("error", or("the request failed")),
    };
    let mut out = ApiError::new(status.as_u16(), code, message).into_response();
    for name in [
        axum::http::header::ALLOW,
        axum::http::header::ACCESS_CONTROL_ALLOW_ORIGIN,
    ] {
        if let Some(v) = parts.headers.get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}

//! Who is looking, and the guards every page request passes.
//!
//! - The session is the API's own session token (`POST /api/v1/sessions` makes the same
//!   kind), kept in the `mnode_session` cookie: HttpOnly, SameSite=Strict, Secure when the
//!   request came over TLS. Logging in makes a new session (and a new CSRF token); logging out
//!   revokes it on the node.
//! - CSRF: a random token in the `mnode_csrf` cookie (SameSite=Strict) that every form repeats
//!   in a hidden `_csrf` field (scripts send it as `X-CSRF-Token`), plus a refusal of any
//!   unsafe request whose `Sec-Fetch-Site` or `Origin` says it came from another site. A
//!   urlencoded form is checked here; a multipart form carries `_csrf` as its first part and its
//!   handler checks it before reading anything else ([`check_multipart`]).
//! - Every answer gets a Content-Security-Policy without inline scripts or styles.

use axum::{
    body::Body,
    extract::{FromRequestParts, Multipart, Request, State},
    http::{
        HeaderMap, HeaderName, HeaderValue, Method, StatusCode,
        header::{self, CONTENT_TYPE, SET_COOKIE},
        request::Parts,
    },
    middleware::Next,
    response::{IntoResponse, Response},
};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use mnode_api::{ApiError, ApiState, limits::Action, ops::Caller, with_repo};
use mnode_dag::Did;

pub(crate) const SESSION_COOKIE: &str = "mnode_session";
pub(crate) const CSRF_COOKIE: &str = "mnode_csrf";
pub(crate) const CSRF_FIELD: &str = "_csrf";
const CSRF_HEADER: &str = "x-csrf-token";
/// The largest urlencoded form read (a long text is 100 000 characters, escaped).
const FORM_MAX: usize = 2 << 20;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
                   media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
                   form-action 'self'; frame-ancestors 'none'";

/// The CSRF token of this request (from its cookie, or new).
#[derive(Debug, Clone)]
pub(crate) struct CsrfToken(pub(crate) String);

/// A new random token, 32 bytes as hex.
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    hex::encode(bytes)
}

fn is_token(t: &str) -> bool {
    t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether the request came over TLS (a proxy in front says so with `X-Forwarded-Proto`).
fn secure(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// A cookie with the attributes every cookie of ours has.
pub(crate) fn cookie(
    name: &'static str,
    value: String,
    http_only: bool,
    headers: &HeaderMap,
) -> Cookie<'static> {
    Cookie::build((name, value))
        .path("/")
        .http_only(http_only)
        .same_site(SameSite::Strict)
        .secure(secure(headers))
        .build()
}

/// A cookie that removes `name`.
pub(crate) fn removal(name: &'static str) -> Cookie<'static> {
    let mut c = Cookie::build((name, "")).path("/").build();
    c.make_removal();
    c
}

pub(crate) fn forbidden(message: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        [(CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("403 Forbidden: {message}\nReload the page and try again."),
    )
        .into_response()
}

/// Whether an unsafe request says it came from another site.
fn cross_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return !matches!(site, "same-origin" | "none");
    }
    let (Some(origin), Some(host)) = (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) else {
        return false;
    };
    let origin_host = origin.split_once("://").map_or(origin, |(_, h)| h);
    origin == "null" || origin_host != host
}

fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The guard around every page: security headers, the CSRF cookie, and the CSRF check of
/// unsafe requests.
pub(crate) async fn guard(req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let jar = CookieJar::from_headers(&parts.headers);
    let existing = jar
        .get(CSRF_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|t| is_token(t));
    let token = existing.clone().unwrap_or_else(random_token);
    parts.extensions.insert(CsrfToken(token.clone()));
    let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    let req = if safe {
        Request::from_parts(parts, body)
    } else {
        if cross_site(&parts.headers) {
            return forbidden("this form was sent from another site");
        }
        let Some(expected) = existing.as_deref() else {
            return forbidden("the form's security token is missing (are cookies on?)");
        };
        let header_token = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let content_type = parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if let Some(sent) = header_token {
            if !same_token(&sent, expected) {
                return forbidden("the form's security token does not match");
            }
            Request::from_parts(parts, body)
        } else if content_type.starts_with("application/x-www-form-urlencoded") {
            let Ok(bytes) = axum::body::to_bytes(body, FORM_MAX).await else {
                return (StatusCode::PAYLOAD_TOO_LARGE, "the form is too large").into_response();
            };
            let fields: Vec<(String, String)> =
                serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
            let sent = fields.iter().find(|(k, _)| k == CSRF_FIELD).map(|(_, v)| v);
            if !sent.is_some_and(|s| same_token(s, expected)) {
                return forbidden("the form's security token does not match");
            }
            Request::from_parts(parts, Body::from(bytes))
        } else if content_type.starts_with("multipart/form-data") {
            // Checked by the handler on the first part, before any file is read.
            parts.extensions.insert(MultipartCsrf(expected.to_owned()));
            Request::from_parts(parts, body)
        } else {
            return forbidden("send forms as HTML forms do");
        }
    };
    let headers = req.headers().clone();
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let sets_csrf = h
        .get_all(SET_COOKIE)
        .iter()
        .any(|v| v.as_bytes().starts_with(CSRF_COOKIE.as_bytes()));
    if existing.is_none()
        && !sets_csrf
        && let Ok(v) = cookie(CSRF_COOKIE, token, true, &headers)
            .to_string()
            .parse::<HeaderValue>()
    {
        h.append(SET_COOKIE, v);
    }
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    h.append(header::VARY, HeaderValue::from_static("HX-Request"));
    h.append(header::VARY, HeaderValue::from_static("Cookie"));
    resp
}

/// The token a multipart form must start with.
#[derive(Debug, Clone)]
pub(crate) struct MultipartCsrf(String);

/// Reads the first part of a multipart form, which must be `_csrf` with the right token.
pub(crate) async fn check_multipart(
    parts_csrf: Option<&MultipartCsrf>,
    multipart: &mut Multipart,
) -> Result<(), Response> {
    let Some(MultipartCsrf(expected)) = parts_csrf else {
        // The guard checked a header token already.
        return Ok(());
    };
    let field = multipart
        .next_field()
        .await
        .map_err(|_| forbidden("the form's security token is missing"))?;
    let Some(field) = field.filter(|f| f.name() == Some(CSRF_FIELD)) else {
        return Err(forbidden("the form's security token is missing"));
    };
    let sent = field
        .text()
        .await
        .map_err(|_| forbidden("the form's security token is missing"))?;
    if !same_token(sent.trim(), expected) {
        return Err(forbidden("the form's security token does not match"));
    }
    Ok(())
}

/// Spends each form sent (any unsafe request but logging in, which its handler throttles) from
/// the rate limits (`api.limits`) of its account and address, as the API's routes do; over them
/// the error page says so, with 429 and `Retry-After`.
pub(crate) async fn limit(State(s): State<ApiState>, req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if safe || req.uri().path() == "/login" {
        return next.run(req).await;
    }
    let action = if req.uri().path() == "/upload" {
        Action::Upload
    } else {
        Action::Write
    };
    let jar = CookieJar::from_headers(req.headers());
    let caller = match jar.get(SESSION_COOKIE).map(|c| c.value().to_owned()) {
        Some(token) if is_token(&token) => mnode_api::ops::caller(&s, &token).await.ok(),
        _ => None,
    };
    let account = match caller {
        Some(Caller::Account { handle, .. }) => Some(handle),
        // The admin token is never limited.
        Some(_) => return next.run(req).await,
        None => None,
    };
    let client = s.limits().client(req.extensions(), req.headers());
    let Err(limited) = s.limits().spend(action, account.as_deref(), client) else {
        return next.run(req).await;
    };
    let (mut parts, _) = req.into_parts();
    let mut resp = match Viewer::from_request_parts(&mut parts, &s).await {
        Ok(v) => crate::layout::error(&v, &limited.clone().into()),
        Err(resp) => resp,
    };
    limited.add_retry_after(&mut resp);
    resp
}

/// Who is looking at a page, and what the page needs to know about the request.
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    /// The logged-in account, if any.
    pub(crate) caller: Option<Caller>,
    /// Its handle.
    pub(crate) handle: Option<String>,
    /// The identity it speaks for (its first key; the key it signs with may be newer).
    pub(crate) did: Option<Did>,
    /// Whether it may manage the node.
    pub(crate) admin: bool,
    /// The CSRF token forms repeat.
    pub(crate) csrf: String,
    /// An htmx request (answer with the partial).
    pub(crate) hx: bool,
    /// The path asked for (for `next` after logging in).
    pub(crate) path: String,
}

impl Viewer {
    /// The caller, or the answer that sends a person to the login page.
    pub(crate) fn require(&self) -> Result<&Caller, Response> {
        self.caller.as_ref().ok_or_else(|| {
            let next = urlencode(&self.path);
            axum::response::Redirect::to(&format!("/login?next={next}")).into_response()
        })
    }
}

pub(crate) fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|e| e.trim_start_matches('=').to_owned())
        .unwrap_or_default()
}

impl FromRequestParts<ApiState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &ApiState) -> Result<Self, Response> {
        let csrf = parts
            .extensions
            .get::<CsrfToken>()
            .map(|t| t.0.clone())
            .unwrap_or_default();
        let hx = parts.headers.get("hx-request").is_some()
            && parts.headers.get("hx-history-restore-request").is_none();
        let path = parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        let jar = CookieJar::from_headers(&parts.headers);
        let caller = match jar.get(SESSION_COOKIE).map(|c| c.value().to_owned()) {
            // An expired or revoked session is nobody: the pages say "Log in".
            Some(token) if is_token(&token) => mnode_api::ops::caller(s, &token).await.ok(),
            _ => None,
        };
        let handle = caller.as_ref().map(|c| c.handle(s).to_owned());
        let did = match &handle {
            Some(h) => {
                let h = h.clone();
                with_repo(s, move |repo| {
                    Ok(repo
                        .accounts()
                        .get(&h)
                        .map_err(ApiError::from)?
                        .and_then(|a| a.identity().copied()))
                })
                .await
                .map_err(|e| crate::layout::plain_error(&e))?
            }
            None => None,
        };
        Ok(Self {
            admin: caller.as_ref().is_some_and(Caller::is_admin),
            caller,
            handle,
            did,
            csrf,
            hx,
            path,
        })
    }
}

/// Headers that set the session and a fresh CSRF token after logging in.
pub(crate) fn login_cookies(token: String, headers: &HeaderMap) -> [(HeaderName, String); 2] {
    [
        (
            SET_COOKIE,
            cookie(SESSION_COOKIE, token, true, headers).to_string(),
        ),
        (
            SET_COOKIE,
            cookie(CSRF_COOKIE, random_token(), true, headers).to_string(),
        ),
    ]
}

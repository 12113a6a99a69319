//! Sign up, log in, log out, and the account page (profile, password, signing key rotation and
//! recovery, sessions, deletion).

use axum::{
    Form, Router,
    extract::{Path, Query, State},
    http::{
        HeaderMap, HeaderValue, StatusCode,
        header::{CACHE_CONTROL, SET_COOKIE},
    },
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use maud::{Markup, html};
use mnode_api::{
    ApiError, ApiState,
    limits::{Client, Refusal},
    ops, with_repo,
};
use mnode_node::accounts::Role;
use serde::Deserialize;

use super::{item_url, store};
use crate::{
    fmt,
    layout::{self, OrPage, csrf},
    session::{self, CSRF_COOKIE, SESSION_COOKIE, Viewer},
};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/signup", get(signup_page).post(signup))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/account", get(account))
        .route("/account/password", post(password))
        .route("/account/phone", post(phone))
        .route("/account/recovery-key", get(recovery_key_page))
        .route("/account/keys/rotate", post(rotate_key))
        .route("/account/keys/recover", post(recover_key))
        .route("/account/sessions/{id}/revoke", post(revoke))
        .route("/account/delete", get(confirm_delete).post(delete))
}

/// The strength rule, said where the password is typed. It names the node's minimum length,
/// which the assertion below keeps it in step with.
const PASSWORD_RULE: &str = "At least 10 characters and hard to guess: a few unrelated words \
     work well. Passwords that contain your handle or email, or common ones, are refused.";

const _: () = assert!(mnode_node::accounts::MIN_PASSWORD_LEN == 10);

#[derive(Deserialize, Default)]
struct SignupForm {
    #[serde(default)]
    handle: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    password: String,
}

/// What the phone field says where it is typed.
const PHONE_HINT: &str = "With + and the country code, as +49 30 1234567. Only this node's \
     admins see it; no other account may use the same number.";

fn field(
    id: &str,
    label: &str,
    kind: &str,
    value: &str,
    autocomplete: &str,
    hint: Option<&str>,
    error: Option<&str>,
) -> Markup {
    input_field(id, label, kind, value, autocomplete, true, hint, error)
}

/// A labelled input with its hint and error, tied to it for screen readers.
#[allow(clippy::too_many_arguments)]
fn input_field(
    id: &str,
    label: &str,
    kind: &str,
    value: &str,
    autocomplete: &str,
    required: bool,
    hint: Option<&str>,
    error: Option<&str>,
) -> Markup {
    let hint_id = format!("{id}-hint");
    let err_id = format!("{id}-error");
    let described: Vec<&str> = [
        error.map(|_| err_id.as_str()),
        hint.map(|_| hint_id.as_str()),
    ]
    .into_iter()
    .flatten()
    .collect();
    let described = (!described.is_empty()).then(|| described.join(" "));
    html! {
        label for=(id) { (label) }
        input id=(id) name=(id) type=(kind) value=(value) required[required] autocomplete=(autocomplete)
            aria-invalid=[error.map(|_| "true")] aria-describedby=[described];
        @if let Some(h) = hint { small id=(hint_id) { (h) } }
        @if let Some(e) = error { small.error id=(err_id) role="alert" { (e) } }
    }
}

fn signup_form(v: &Viewer, f: &SignupForm, error: Option<(&str, &str)>) -> Markup {
    let err = |name: &str| error.filter(|(n, _)| *n == name).map(|(_, m)| m);
    html! {
        h1 { "Sign up" }
        p { "An account on this node gets its own signing key: everything you publish is signed with it, and anyone can check that it is yours." }
        @if let Some(("", m)) = error { p.error role="alert" { (m) } }
        form method="post" action="/signup" {
            (csrf(v))
            (field("handle", "Handle", "text", &f.handle, "username", Some("Lowercase letters, digits, - and _; how people find you (@handle)."), err("handle")))
            (field("email", "Email", "email", &f.email, "email", Some("Only this node's admins see it."), err("email")))
            (input_field("phone", "Phone (optional)", "tel", &f.phone, "tel", false, Some(PHONE_HINT), err("phone")))
            (field("password", "Password", "password", "", "new-password", Some(PASSWORD_RULE), err("password")))
            button type="submit" { "Sign up" }
        }
        p { "Have an account? " a href="/login" { "Log in" } }
    }
}

async fn signup_page(v: Viewer) -> Response {
    layout::respond(
        &v,
        StatusCode::OK,
        "Sign up",
        signup_form(&v, &SignupForm::default(), None),
    )
}

/// Which field an account error is about.
fn account_field(e: &ApiError) -> &'static str {
    match e.code {
        "weak_password" => "password",
        "taken" if e.message.contains("email") => "email",
        "taken" if e.message.contains("phone") => "phone",
        "taken" => "handle",
        "bad_request" if e.message.contains("phone number") => "phone",
        "bad_request" if e.message.contains("email") => "email",
        "bad_request" if e.message.contains("handle") => "handle",
        _ => "",
    }
}

async fn signup(
    State(s): State<ApiState>,
    v: Viewer,
    headers: HeaderMap,
    Form(f): Form<SignupForm>,
) -> Response {
    let made = ops::register(
        &s,
        v.caller.as_ref().filter(|c| c.is_admin()),
        f.handle.trim().to_owned(),
        f.email.trim().to_owned(),
        Some(f.phone.trim().to_owned()).filter(|p| !p.is_empty()),
        Some(f.password.clone()),
        Role::User,
    )
    .await;
    let result = match made {
        Ok((account, recovery)) => ops::login(&s, account.handle, f.password.clone())
            .await
            .map(|(token, _)| (token, recovery)),
        Err(e) => Err(e),
    };
    match result {
        Ok((token, Some(recovery))) => {
            let mut resp = show_recovery_once(&recovery, &headers);
            add_login_cookies(&mut resp, token, &headers);
            resp
        }
        Ok((token, None)) => logged_in(token, &headers, "/"),
        Err(e) => {
            let status = if e.status >= 500 {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            layout::respond(
                &v,
                status,
                "Sign up",
                signup_form(&v, &f, Some((account_field(&e), &e.message))),
            )
        }
    }
}

fn logged_in(token: String, headers: &HeaderMap, next: &str) -> Response {
    let mut resp = Redirect::to(next).into_response();
    add_login_cookies(&mut resp, token, headers);
    resp
}

fn add_login_cookies(resp: &mut Response, token: String, headers: &HeaderMap) {
    for (name, value) in session::login_cookies(token, headers) {
        if let Ok(v) = value.parse() {
            resp.headers_mut().append(name, v);
        }
    }
}

/// The cookie carrying a recovery key from the request that made it to the one page that
/// shows it ([`recovery_key_page`]), which removes it: the node keeps no copy.
const RECOVERY_COOKIE: &str = "mnode_recovery";
const RECOVERY_PATH: &str = "/account/recovery-key";

/// Sends the browser to the page that shows `recovery` once (303), handing it over in a cookie
/// only that page receives.
fn show_recovery_once(recovery: &str, headers: &HeaderMap) -> Response {
    let mut cookie = session::cookie(RECOVERY_COOKIE, recovery.to_owned(), true, headers);
    cookie.set_path(RECOVERY_PATH);
    let mut resp = Redirect::to(RECOVERY_PATH).into_response();
    if let Ok(v) = cookie.to_string().parse() {
        resp.headers_mut().append(SET_COOKIE, v);
    }
    resp
}

/// The page showing a recovery key, once: the node keeps only its public half, and the cookie
/// that brought it here is removed.
async fn recovery_key_page(v: Viewer, headers: HeaderMap) -> Result<Response, Response> {
    v.require()?;
    let jar = axum_extra::extract::CookieJar::from_headers(&headers);
    let Some(recovery) = jar
        .get(RECOVERY_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|r| mnode_node::accounts::parse_recovery(r).is_ok())
    else {
        let body = html! {
            h1 { "Recovery key" }
            p { "A recovery key is shown only once, right after it was made, and this node keeps no copy, so there is nothing to show here now." }
            p { a href="/account" { "Back to your account" } }
        };
        return Ok(layout::respond(&v, StatusCode::OK, "Recovery key", body));
    };
    // The key is `mnode-recovery-1:` and hex digits: nothing in it needs escaping in a URL.
    let download = format!("data:text/plain;charset=utf-8,{recovery}%0A");
    let body = html! {
        h1 { "Your recovery key" }
        p { "If your signing key is ever lost or stolen, this recovery key lets you take your account back: it makes a new signing key, and everything you published stays yours." }
        p.notice role="status" { strong { "It is shown only now." } " This node does not keep it, so nobody can show it to you again. Download it or copy it, and keep it somewhere safe and offline, such as a password manager or a printout. Anyone who has it can take over your account: do not share it." }
        label for="recovery-key" { "Recovery key" }
        textarea #recovery-key readonly rows="2" { (recovery) }
        p {
            a role="button" href=(download) download="mnode-recovery-key.txt" { "Download recovery key" }
            " "
            a href="/" { "Continue" }
        }
    };
    let mut resp = layout::respond(&v, StatusCode::OK, "Your recovery key", body);
    let mut gone = session::removal(RECOVERY_COOKIE);
    gone.set_path(RECOVERY_PATH);
    if let Ok(value) = gone.to_string().parse() {
        resp.headers_mut().append(SET_COOKIE, value);
    }
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

#[derive(Deserialize, Default)]
struct LoginQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: Option<String>,
}

fn safe_next(next: Option<&str>) -> String {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//"))
        .unwrap_or("/")
        .to_owned()
}

fn login_form(v: &Viewer, login: &str, next: &str, error: Option<&str>) -> Markup {
    html! {
        h1 { "Log in" }
        @if let Some(e) = error { p.error role="alert" #login-error { (e) } }
        form method="post" action="/login" {
            (csrf(v))
            input type="hidden" name="next" value=(next);
            (field("login", "Handle or email", "text", login, "username", None, None))
            (field("password", "Password", "password", "", "current-password", None, None))
            button type="submit" { "Log in" }
        }
        p { "New here? " a href="/signup" { "Sign up" } }
    }
}

async fn login_page(v: Viewer, Query(q): Query<LoginQuery>) -> Response {
    let next = safe_next(q.next.as_deref());
    layout::respond(
        &v,
        StatusCode::OK,
        "Log in",
        login_form(&v, "", &next, None),
    )
}

async fn login(
    State(s): State<ApiState>,
    v: Viewer,
    client: Client,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let next = safe_next(f.next.as_deref());
    let attempt = ops::login(&s, f.login.trim().to_owned(), f.password);
    match s.limits().login(f.login.trim(), client, attempt).await {
        Ok((token, _)) => logged_in(token, &headers, &next),
        Err(Refusal::Limited(l)) => {
            let form = login_form(&v, &f.login, &next, Some(l.message()));
            let mut resp = layout::respond(&v, StatusCode::TOO_MANY_REQUESTS, "Log in", form);
            l.add_retry_after(&mut resp);
            resp
        }
        Err(Refusal::Failed(e)) if e.status == 401 || e.status == 404 => layout::respond(
            &v,
            StatusCode::UNAUTHORIZED,
            "Log in",
            login_form(
                &v,
                &f.login,
                &next,
                Some("That handle or email and password do not match an account here."),
            ),
        ),
        Err(e) => layout::error(&v, &e.into()),
    }
}

/// Back to the home page, with the session and CSRF cookies removed.
fn home_logged_out() -> Response {
    let mut resp = Redirect::to("/").into_response();
    for name in [SESSION_COOKIE, CSRF_COOKIE] {
        if let Ok(value) = session::removal(name).to_string().parse() {
            resp.headers_mut().append(SET_COOKIE, value);
        }
    }
    resp
}

async fn logout(State(s): State<ApiState>, v: Viewer) -> Response {
    if let Some(ops::Caller::Account { session, .. }) = &v.caller {
        let id = session.clone();
        if let Err(e) = with_repo(&s, move |repo| {
            repo.sessions().revoke(&id).map_err(ApiError::from)
        })
        .await
        {
            return layout::error(&v, &e);
        }
    }
    home_logged_out()
}

async fn account(State(s): State<ApiState>, v: Viewer) -> Result<Response, Response> {
    account_page(&s, &v, StatusCode::OK, None).await
}

async fn account_page(
    s: &ApiState,
    v: &Viewer,
    status: StatusCode,
    notice: Option<(&str, bool)>,
) -> Result<Response, Response> {
    let caller = v.require()?.clone();
    let handle = caller.handle(s).to_owned();
    let current = match &caller {
        ops::Caller::Account { session, .. } => Some(session.clone()),
        _ => None,
    };
    let did = v.did;
    let h = handle.clone();
    let (account, sessions) = with_repo(s, move |repo| {
        let account = repo.accounts().get(&h)?;
        let sessions = repo.sessions().list(Some(&h))?;
        Ok((account, sessions))
    })
    .await
    .or_page(v)?;
    let account =
        account.ok_or_else(|| layout::error(v, &ApiError::not_found("your account is gone")))?;
    let profile = match did {
        Some(did) => store(s, move |st| {
            let page = st.list(&mnode_node::store::ListFilter {
                kind: Some("core.profile".into()),
                author: Some(did),
                limit: 1,
                ..Default::default()
            })?;
            Ok(page.items.into_iter().next().map(|(id, _)| id))
        })
        .await
        .or_page(v)?,
        None => None,
    };
    let owner = handle == s.node().repo().info().owner;
    let body = html! {
        h1 { "Account" }
        @if let Some((text, ok)) = notice {
            p.notice role=(if ok { "status" } else { "alert" }) { (text) }
        }
        section aria-labelledby="me" {
            h2 #me { "@" (handle) }
            dl.fields {
                dt { "Email" } dd { (account.email) }
                dt { "Phone" } dd { (account.phone.as_deref().unwrap_or("none")) }
                dt { "Role" } dd { (if v.admin { "admin" } else { "user" }) }
                dt { "Identity" } dd { @if let Some(d) = did { code title=(d) { (fmt::did(&d)) } " " a href={ "/authors/" (d) } { "Your public page" } } }
                dt { "Signing key" } dd { @if let Some(k) = account.did() { code title=(k) { (fmt::did(k)) } @if Some(k) != did.as_ref() { " (rotated; your identity stays the same)" } } }
                dt { "Profile" } dd {
                    @if let Some(id) = profile { a href=(item_url("core.profile", &id)) { "Your profile" } " · " a href={ (item_url("core.profile", &id)) "/edit" } { "Edit profile" } }
                    @else { a href="/core/profiles/new" { "Make your profile" } }
                }
            }
        }
        section aria-labelledby="pw" {
            h2 #pw { "Change password" }
            form method="post" action="/account/password" {
                (csrf(v))
                (field("current", "Current password", "password", "", "current-password", None, None))
                (field("new", "New password", "password", "", "new-password", Some(PASSWORD_RULE), None))
                button type="submit" { "Change password" }
            }
        }
        section aria-labelledby="ph" {
            h2 #ph { "Phone number" }
            form method="post" action="/account/phone" {
                (csrf(v))
                (input_field("phone", "Phone", "tel", account.phone.as_deref().unwrap_or(""), "tel", false, Some("With + and the country code, as +49 30 1234567. Leave it empty to remove the number. Only this node's admins see it."), None))
                button type="submit" { "Save phone number" }
            }
        }
        section aria-labelledby="keys" {
            h2 #keys { "Signing key" }
            p { "Rotating makes a new signing key for your account and retires the current one. What you published stays yours and you can keep editing it; anything signed with the old key from now on is refused, so do this if you think your key was copied." }
            form method="post" action="/account/keys/rotate" {
                (csrf(v))
                button type="submit" { "Rotate key" }
            }
            h3 { "Recover your account" }
            p { "If your signing key was lost or stolen, paste the recovery key you saved at sign-up. You get a new signing key and a new recovery key; the one you paste can't be used again." }
            form method="post" action="/account/keys/recover" {
                (csrf(v))
                label for="recovery_key" { "Recovery key" }
                textarea #recovery_key name="recovery_key" rows="2" required autocomplete="off" spellcheck="false" aria-describedby="recovery_key-hint" {}
                small #recovery_key-hint { "It starts with mnode-recovery-1: (open the file you downloaded and copy its line)." }
                button type="submit" { "Recover" }
            }
        }
        section aria-labelledby="sessions" {
            h2 #sessions { "Sessions" }
            p { "Where you are logged in. Revoke one you do not recognise." }
            table {
                thead { tr { th scope="col" { "Started" } th scope="col" { "Expires" } th scope="col" { span.visually-hidden { "Action" } } } }
                tbody {
                    @for x in &sessions {
                        tr {
                            td { (fmt::time(x.created)) @if current.as_deref() == Some(x.id.as_str()) { " " mark { "this browser" } } }
                            td { time datetime=(fmt::utc(x.expires)) { (fmt::readable(x.expires)) } }
                            td {
                                form.inline method="post" action={ "/account/sessions/" (x.id) "/revoke" } {
                                    (csrf(v))
                                    button.secondary.outline type="submit" aria-label={ "Revoke session started " (fmt::readable(x.created)) } { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="del" {
            h2 #del { "Delete account" }
            @if owner {
                p { "This is the node owner's account; it cannot be deleted from here." }
            } @else if ops::deletion_forbidden(s) {
                p { "This node keeps its accounts: its admin has turned deletion off (api.forbid_deletion)." }
            } @else {
                p { "Your published records stay, signed; your keys leave this node, so nothing more can be published as you." }
                a role="button" class="secondary outline" href="/account/delete" { "Delete account" }
            }
        }
    };
    Ok(layout::respond(v, status, "Account", body))
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
}

async fn password(
    State(s): State<ApiState>,
    v: Viewer,
    Form(f): Form<PasswordForm>,
) -> Result<Response, Response> {
    let caller = v.require()?.clone();
    let handle = caller.handle(&s).to_owned();
    let h = handle.clone();
    let checked = with_repo(&s, move |repo| {
        Ok(repo.accounts().check_password(&h, &f.current)?)
    })
    .await;
    if checked.is_err() {
        return account_page(
            &s,
            &v,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(("The current password is wrong; nothing changed.", false)),
        )
        .await;
    }
    let done = ops::set_password(&s, &caller, handle, f.new)
        .await
        .map(|()| {
            "Password changed. Other sessions stay open: revoke them below if the old password \
         leaked."
                .to_owned()
        });
    changed(&s, &v, done).await
}

/// The account page after a change: with what was done, or with why nothing changed when the
/// person can mend it (a bad or taken value, a weak password).
async fn changed(
    s: &ApiState,
    v: &Viewer,
    done: Result<String, ApiError>,
) -> Result<Response, Response> {
    match done {
        Ok(text) => account_page(s, v, StatusCode::OK, Some((&text, true))).await,
        Err(e) if matches!(e.status, 400 | 409 | 422) => {
            let msg = format!("Not changed: {}", e.message);
            account_page(s, v, StatusCode::UNPROCESSABLE_ENTITY, Some((&msg, false))).await
        }
        Err(e) => Err(layout::error(v, &e)),
    }
}

async fn rotate_key(
    State(s): State<ApiState>,
    v: Viewer,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let caller = v.require()?.clone();
    let handle = caller.handle(&s).to_owned();
    match ops::rotate_key(&s, &caller, handle).await {
        Ok(change) => match change.recovery_key {
            Some(recovery) => Ok(show_recovery_once(&recovery, &headers)),
            None => {
                let text = format!(
                    "Key rotated: you now sign with {}. Your identity stays {}.",
                    fmt::did(&change.key),
                    fmt::did(&change.identity)
                );
                account_page(&s, &v, StatusCode::OK, Some((&text, true))).await
            }
        },
        Err(e) => changed(&s, &v, Err(e)).await,
    }
}

#[derive(Deserialize)]
struct RecoverForm {
    #[serde(default)]
    recovery_key: String,
}

async fn recover_key(
    State(s): State<ApiState>,
    v: Viewer,
    headers: HeaderMap,
    Form(f): Form<RecoverForm>,
) -> Result<Response, Response> {
    let caller = v.require()?.clone();
    let handle = caller.handle(&s).to_owned();
    match ops::recover_key(&s, &caller, handle, &f.recovery_key).await {
        Ok(change) => match change.recovery_key {
            Some(recovery) => Ok(show_recovery_once(&recovery, &headers)),
            None => Ok(Redirect::to("/account").into_response()),
        },
        Err(e) => changed(&s, &v, Err(e)).await,
    }
}

#[derive(Deserialize)]
struct PhoneForm {
    #[serde(default)]
    phone: String,
}

async fn phone(
    State(s): State<ApiState>,
    v: Viewer,
    Form(f): Form<PhoneForm>,
) -> Result<Response, Response> {
    let caller = v.require()?.clone();
    let handle = caller.handle(&s).to_owned();
    let phone = Some(f.phone.trim().to_owned()).filter(|p| !p.is_empty());
    let done = ops::set_phone(&s, &caller, handle, phone)
        .await
        .map(|account| match &account.phone {
            Some(p) => format!("Phone number saved as {p}."),
            None => "Phone number removed.".to_owned(),
        });
    changed(&s, &v, done).await
}

async fn revoke(
    State(s): State<ApiState>,
    v: Viewer,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let caller = v.require()?.clone();
    ops::revoke_session(&s, &caller, id).await.or_page(&v)?;
    Ok(Redirect::to("/account").into_response())
}

async fn confirm_delete(v: Viewer) -> Result<Response, Response> {
    v.require()?;
    let body = html! {
        h1 { "Delete your account?" }
        p { "Your account, its sessions and its signing keys leave this node. What you published stays: it is signed and other nodes may hold it. Nobody can publish as you any more." }
        form method="post" action="/account/delete" {
            (csrf(&v))
            button.danger type="submit" { "Delete" }
            " " a href="/account" { "Cancel" }
        }
    };
    Ok(layout::respond(&v, StatusCode::OK, "Delete account", body))
}

async fn delete(State(s): State<ApiState>, v: Viewer) -> Result<Response, Response> {
    let caller = v.require()?.clone();
    let handle = caller.handle(&s).to_owned();
    ops::delete_account(&s, &caller, handle).await.or_page(&v)?;
    Ok(home_logged_out())
}

//! The frame of every page: head, navigation, main, footer; and error pages.

use axum::{
    http::StatusCode,
    response::{Html, IntoResponse, Response},
};
use maud::{DOCTYPE, Markup, html};
use mnode_api::ApiError;

use crate::{assets, session::Viewer};

/// The embedded files the pages link.
#[cfg(test)]
pub(crate) const ASSETS: &[&str] = &[
    "vendor/pico.min.css",
    "app.css",
    "vendor/htmx.min.js",
    "vendor/sse.js",
    "app.js",
    "upload.js",
    "editor.js",
];

/// htmx without the inline indicator styles (the CSP allows no inline style) and with the
/// answers a refused form gets (422) swapped in like successes, and a rate limit's (429, the
/// short alert [`error`] answers htmx) put beside the button that was pressed.
const HTMX_CONFIG: &str = r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"responseHandling":[{"code":"204","swap":false},{"code":"[23]..","swap":true},{"code":"422","swap":true},{"code":"429","swap":true,"error":true},{"code":"[45]..","swap":false,"error":true}]}"#;

/// How htmx places the alert [`error`] answers an htmx request: at the end of the element the
/// request was to swap (the Follow form, a reply form), which stays as it was.
const HX_ERROR_SWAP: &str = "beforeend";

/// What a page needs beyond its body.
#[derive(Default)]
pub(crate) struct Extra {
    /// Load the upload island.
    pub(crate) upload: bool,
    /// Load the rich-text editor island.
    pub(crate) editor: bool,
}

/// A whole page.
pub(crate) fn page(v: &Viewer, title: &str, body: Markup) -> Markup {
    page_with(v, title, Extra::default(), body)
}

/// A whole page, with the scripts `extra` asks for.
pub(crate) fn page_with(v: &Viewer, title: &str, extra: Extra, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                meta name="htmx-config" content=(HTMX_CONFIG);
                title { (title) " · mnode" }
                link rel="stylesheet" href=(assets::url("vendor/pico.min.css"));
                link rel="stylesheet" href=(assets::url("app.css"));
                script src=(assets::url("vendor/htmx.min.js")) defer {}
                script src=(assets::url("vendor/sse.js")) defer {}
                script src=(assets::url("app.js")) defer {}
                @if extra.upload {
                    script src=(assets::url("upload.js")) defer {}
                }
                @if extra.editor {
                    script src=(assets::url("editor.js")) defer {}
                }
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.container {
                    (nav(v))
                }
                main.container #main {
                    (body)
                }
                footer.container {
                    small { "mnode — every item here is a signed, versioned IPLD record. "
                        a href="/explore" { "Explore" } " · " a href="/api/v1/openapi.json" { "API" } }
                }
            }
        }
    }
}

fn nav(v: &Viewer) -> Markup {
    html! {
        nav aria-label="Main" {
            ul {
                li { a.brand href="/" { strong { "mnode" } } }
            }
            details.menu open {
            summary { "Menu" }
            ul.links {
                li { a href="/art/releases" { "Releases" } }
                li { a href="/art/artists" { "Artists" } }
                li { a href="/social/posts" { "Posts" } }
                li { a href="/forums" { "Forums" } }
                li { a href="/groups" { "Groups" } }
                li { a href="/explore" { "Explore" } }
                @if v.admin { li { a href="/node" { "Node" } } }
                @if let Some(handle) = &v.handle {
                    li { a href="/art/releases/new" { "New release" } }
                    li { a href="/following" { "Following" } }
                    li { a href="/messages" { "Messages" } }
                    li { a href="/account" title={ "Signed in as " (handle) } { "Account" } }
                    li {
                        form.inline method="post" action="/logout" {
                            (csrf(v))
                            button.secondary.outline type="submit" { "Log out" }
                        }
                    }
                } @else {
                    li { a href="/login" { "Log in" } }
                    li { a href="/signup" role="button" { "Sign up" } }
                }
            }
            }
        }
    }
}

/// The hidden CSRF field every form starts with.
pub(crate) fn csrf(v: &Viewer) -> Markup {
    html! { input type="hidden" name="_csrf" value=(v.csrf); }
}

/// A page, or only its main part for htmx.
pub(crate) fn respond(v: &Viewer, status: StatusCode, title: &str, body: Markup) -> Response {
    respond_with(v, status, title, Extra::default(), body)
}

/// [`respond`], with the scripts `extra` asks for on a whole page.
pub(crate) fn respond_with(
    v: &Viewer,
    status: StatusCode,
    title: &str,
    extra: Extra,
    body: Markup,
) -> Response {
    let markup = if v.hx {
        body
    } else {
        page_with(v, title, extra, body)
    };
    (status, Html(markup.into_string())).into_response()
}

/// A page with `title` saying what went wrong and what to do. An htmx request (a button that
/// swaps in place, like Follow) gets only the alert, which htmx adds at the end of what the
/// button would have replaced (`HX-Reswap`); the configuration swaps 429s (and 422s) in.
pub(crate) fn error(v: &Viewer, e: &ApiError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let heading = match e.status {
        401 => "Log in first",
        403 => "Not allowed",
        404 => "Not found",
        409 | 410 => "Gone or changed",
        413 => "Too large",
        422 => "Not saved",
        429 => "Slow down",
        502 | 503 => "The network did not answer",
        _ if e.status >= 500 => "Something went wrong",
        _ => "Not done",
    };
    if v.hx {
        let alert = html! { " " small.error.hx-error role="alert" { (heading) ": " (e.message) } };
        return (
            status,
            [("hx-reswap", HX_ERROR_SWAP)],
            Html(alert.into_string()),
        )
            .into_response();
    }
    let body = html! {
        article.error role="alert" {
            h1 { (heading) }
            p { (e.message) }
            p { a href="/" { "Home" } @if v.caller.is_none() && e.status == 401 { " · " a href={ "/login?next=" (crate::session::urlencode(&v.path)) } { "Log in" } } }
        }
    };
    let markup = page(v, heading, body);
    (status, Html(markup.into_string())).into_response()
}

/// An error page for when even the viewer could not be made.
pub(crate) fn plain_error(e: &ApiError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let markup = html! {
        (DOCTYPE)
        html lang="en" { head { meta charset="utf-8"; title { "Error · mnode" } }
            body { main { h1 { "Something went wrong" } p { (e.message) } } } }
    };
    (status, Html(markup.into_string())).into_response()
}

/// Maps an [`ApiError`] into the error page for `v`.
pub(crate) trait OrPage<T> {
    /// The value, or the error page.
    fn or_page(self, v: &Viewer) -> Result<T, Response>;
}

impl<T, E: Into<ApiError>> OrPage<T> for Result<T, E> {
    fn or_page(self, v: &Viewer) -> Result<T, Response> {
        self.map_err(|e| error(v, &e.into()))
    }
}

/// Text a person reads, kept as text (maud escapes it); paragraphs on blank lines.
pub(crate) fn prose(text: &str) -> Markup {
    html! {
        @for para in text.split("\n\n").filter(|p| !p.trim().is_empty()) {
            p {
                @for (i, line) in para.lines().enumerate() {
                    @if i > 0 { br; }
                    (line)
                }
            }
        }
    }
}

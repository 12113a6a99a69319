//! A node with the UI's router, and a browser's cookie jar over it, for the page tests.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;

use axum::{
    Router,
    body::{Body, to_bytes},
    http::{HeaderMap, Request, StatusCode, header},
};
use mnode_node::{node::Node, repo::InitOptions};
use tower::ServiceExt;

/// The API's test support: the same node setup under the UI's router.
#[path = "../../../api/tests/support/mod.rs"]
pub mod api;

pub use api::PASSWORD;

/// A node whose owner is `owner` (password [`PASSWORD`]), and the UI's router over it.
pub struct TestUi {
    pub node: Node,
    pub router: Router,
    pub _dir: tempfile::TempDir,
}

/// A node with extra `settings` (`key=value`).
pub async fn setup_with(settings: &[&str]) -> TestUi {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = InitOptions {
        handle: Some("owner".into()),
        password: Some(PASSWORD.into()),
        passphrase: Some("test passphrase".into()),
        settings: api::loopback(settings),
        ..InitOptions::default()
    };
    let node = api::spawn_node(&dir.path().join("repo"), &options).await;
    let router = mnode_ui::app(mnode_api::ApiState::new(node.handle(), api::TOKEN));
    TestUi {
        node,
        router,
        _dir: dir,
    }
}

pub async fn setup() -> TestUi {
    setup_with(&[]).await
}

/// A browser's cookie jar over the router.
#[derive(Clone)]
pub struct Browser {
    pub router: Router,
    pub cookies: HashMap<String, String>,
}

pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

impl Browser {
    pub fn new(router: &Router) -> Self {
        Self {
            router: router.clone(),
            cookies: HashMap::new(),
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn send(&mut self, req: Request<Body>) -> Page {
        let resp = self.router.clone().oneshot(req).await.expect("response");
        for v in resp.headers().get_all(header::SET_COOKIE) {
            let text = v.to_str().expect("a text cookie");
            let pair = text.split(';').next().unwrap_or_default();
            let (k, val) = pair.split_once('=').expect("name=value");
            if val.is_empty() || text.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), val.to_owned());
            }
        }
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = to_bytes(resp.into_body(), usize::MAX).await.expect("body");
        Page {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    pub async fn get(&mut self, uri: &str) -> Page {
        let req = Request::get(uri)
            .header(header::COOKIE, self.cookie_header())
            .body(Body::empty())
            .expect("request");
        self.send(req).await
    }

    /// A GET as htmx sends it (`HX-Request`).
    pub async fn get_hx(&mut self, uri: &str) -> Page {
        let req = Request::get(uri)
            .header(header::COOKIE, self.cookie_header())
            .header("hx-request", "true")
            .body(Body::empty())
            .expect("request");
        self.send(req).await
    }

    pub fn csrf(&self) -> String {
        self.cookies.get("mnode_csrf").cloned().unwrap_or_default()
    }

    /// Posts a form with `csrf` for its token (the page's if `None`), as htmx does if `hx`.
    async fn send_form(
        &mut self,
        uri: &str,
        fields: &[(&str, &str)],
        csrf: Option<&str>,
        hx: bool,
    ) -> Page {
        let token = csrf.map_or_else(|| self.csrf(), str::to_owned);
        let mut all: Vec<(&str, &str)> = vec![("_csrf", &token)];
        all.extend_from_slice(fields);
        let body = serde_urlencoded::to_string(&all).expect("form");
        let mut req = Request::post(uri)
            .header(header::COOKIE, self.cookie_header())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("sec-fetch-site", "same-origin");
        if hx {
            req = req.header("hx-request", "true");
        }
        self.send(req.body(Body::from(body)).expect("request"))
            .await
    }

    /// Posts a form as a browser does, with the page's CSRF token unless `csrf` says otherwise.
    pub async fn post_with(
        &mut self,
        uri: &str,
        fields: &[(&str, &str)],
        csrf: Option<&str>,
    ) -> Page {
        self.send_form(uri, fields, csrf, false).await
    }

    pub async fn post(&mut self, uri: &str, fields: &[(&str, &str)]) -> Page {
        self.send_form(uri, fields, None, false).await
    }

    /// Posts a form as htmx does (`HX-Request`), with the page's CSRF token.
    pub async fn post_hx(&mut self, uri: &str, fields: &[(&str, &str)]) -> Page {
        self.send_form(uri, fields, None, true).await
    }

    /// Signs `handle` up (email `handle@example.org`, password [`PASSWORD`]); logged in after.
    pub async fn sign_up(&mut self, handle: &str) {
        self.get("/signup").await;
        let email = format!("{handle}@example.org");
        let fields = [
            ("handle", handle),
            ("email", email.as_str()),
            ("password", PASSWORD),
        ];
        let p = self.post("/signup", &fields).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
        assert!(self.cookies.contains_key("mnode_session"));
    }

    pub async fn log_in(&mut self, login: &str) {
        self.get("/login").await;
        let p = self
            .post("/login", &[("login", login), ("password", PASSWORD)])
            .await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    }
}

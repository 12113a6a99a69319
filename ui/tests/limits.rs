//! The pages under the rate limits (`api.limits`): a form over its budget and a throttled login
//! answer 429 with `Retry-After` and a page a person reads, not a JSON body.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use axum::{
    Router,
    body::{Body, to_bytes},
    http::{HeaderMap, Request, StatusCode, header},
};
use mnode_node::{
    blobs::Blobs,
    node::Node,
    repo::{InitOptions, Repo},
};
use tower::ServiceExt;

const PASSWORD: &str = "correct horse battery staple 42";

async fn setup(limits: &[&str]) -> (Node, Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = vec![
        r#"network.listen=["/ip4/127.0.0.1/tcp/0"]"#.to_owned(),
        "network.blobs_listen=127.0.0.1:0".to_owned(),
        "api.limits.writes_per_address=0".to_owned(),
    ];
    settings.extend(limits.iter().map(|s| format!("api.limits.{s}")));
    let repo = Repo::init(
        &dir.path().join("repo"),
        &InitOptions {
            handle: Some("owner".into()),
            password: Some(PASSWORD.into()),
            passphrase: Some("test passphrase".into()),
            settings,
            ..InitOptions::default()
        },
    )
    .unwrap();
    let blobs = Blobs::open(&repo.blobs_dir(), &repo.tmp_dir())
        .await
        .unwrap();
    let node = Node::spawn(repo, blobs).await.unwrap();
    let router = mnode_ui::app(mnode_api::ApiState::new(node.handle(), "test-token"));
    (node, router, dir)
}

/// A cookie jar over the router.
struct Browser {
    router: Router,
    cookies: HashMap<String, String>,
}

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Browser {
    async fn send(&mut self, req: Request<Body>) -> Page {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        for v in resp.headers().get_all(header::SET_COOKIE) {
            let pair = v.to_str().unwrap().split(';').next().unwrap();
            let (k, val) = pair.split_once('=').unwrap();
            self.cookies.insert(k.to_owned(), val.to_owned());
        }
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        Page {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    fn cookie_header(&self) -> String {
        let pairs: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        pairs.join("; ")
    }

    async fn get(&mut self, uri: &str) -> Page {
        let req = Request::get(uri)
            .header(header::COOKIE, self.cookie_header())
            .body(Body::empty())
            .unwrap();
        self.send(req).await
    }

    async fn post(&mut self, uri: &str, fields: &[(&str, &str)]) -> Page {
        let token = self.cookies.get("mnode_csrf").cloned().unwrap_or_default();
        let mut all: Vec<(&str, &str)> = vec![("_csrf", &token)];
        all.extend_from_slice(fields);
        let req = Request::post(uri)
            .header(header::COOKIE, self.cookie_header())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("sec-fetch-site", "same-origin")
            .body(Body::from(serde_urlencoded::to_string(&all).unwrap()))
            .unwrap();
        self.send(req).await
    }

    async fn sign_up(&mut self, handle: &str) {
        self.get("/signup").await;
        let email = format!("{handle}@example.org");
        let fields = [
            ("handle", handle),
            ("email", &email),
            ("password", PASSWORD),
        ];
        let p = self.post("/signup", &fields).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    }
}

fn retry_after(p: &Page) -> u64 {
    p.headers
        .get(header::RETRY_AFTER)
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn is_html(p: &Page) -> bool {
    p.headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("text/html"))
}

#[tokio::test]
async fn a_form_over_the_write_budget_reads_as_a_page() {
    let (node, router, _dir) = setup(&["writes_per_account=2", "period_secs=600"]).await;
    let mut b = Browser {
        router,
        cookies: HashMap::new(),
    };
    b.sign_up("alice").await;
    let topic = [("topic", "mnode/feed/nobody")];
    for _ in 0..2 {
        let p = b.post("/follow", &topic).await;
        assert_ne!(p.status, StatusCode::TOO_MANY_REQUESTS, "{}", p.body);
    }
    let p = b.post("/follow", &topic).await;
    assert_eq!(p.status, StatusCode::TOO_MANY_REQUESTS, "{}", p.body);
    assert!(is_html(&p), "{:?}", p.headers);
    assert!(retry_after(&p) >= 1);
    assert!(p.body.contains("Slow down"), "{}", p.body);
    assert!(
        p.body.contains(&format!(
            "Too many writes from this account; try again in {} s.",
            retry_after(&p)
        )),
        "{}",
        p.body
    );
    // Reading goes on.
    assert_eq!(b.get("/").await.status, StatusCode::OK);
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_throttled_login_says_so_on_the_login_form() {
    let (node, router, _dir) = setup(&["login_free_failures_per_account=1"]).await;
    let mut b = Browser {
        router,
        cookies: HashMap::new(),
    };
    b.get("/login").await;
    let wrong = b
        .post("/login", &[("login", "owner"), ("password", "a guess")])
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.body);
    let p = b
        .post("/login", &[("login", "owner"), ("password", PASSWORD)])
        .await;
    assert_eq!(p.status, StatusCode::TOO_MANY_REQUESTS, "{}", p.body);
    assert!(is_html(&p));
    assert_eq!(retry_after(&p), 1);
    assert!(p.body.contains("id=\"login-error\""), "{}", p.body);
    assert!(
        p.body
            .contains("Too many failed logins at this account; try again in 1 s."),
        "{}",
        p.body
    );
    assert!(p.body.contains("value=\"owner\""), "what was typed is kept");
    node.shutdown().await.unwrap();
}

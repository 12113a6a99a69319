//! A node with its router, and request helpers, for the API's router tests (the UI's page
//! tests and the gateway bench include it too).
#![allow(dead_code, unreachable_pub)]

use std::path::Path;

use axum::{
    Router,
    body::{Body, Bytes, to_bytes},
    http::{HeaderMap, Request, StatusCode, header},
};
use mnode_node::{
    blobs::Blobs,
    node::Node,
    repo::{InitOptions, Repo},
};
use serde_json::Value;
use tower::ServiceExt;

/// The admin token the test nodes use.
pub const TOKEN: &str = "test-token";
/// A password that passes the strength rules.
pub const PASSWORD: &str = "correct horse battery staple 42";

/// A node in a temp repo, with extra `settings` (`key=value`), and its router.
pub struct TestApi {
    pub node: Node,
    pub router: Router,
    pub dir: tempfile::TempDir,
}

/// Settings that keep a node on 127.0.0.1, on ports the system picks, then `extra`.
pub fn loopback(extra: &[&str]) -> Vec<String> {
    let mut all = vec![
        r#"network.listen=["/ip4/127.0.0.1/tcp/0"]"#.to_owned(),
        "network.blobs_listen=127.0.0.1:0".to_owned(),
    ];
    all.extend(extra.iter().map(|s| (*s).to_owned()));
    all
}

/// Makes a repo at `path` with `options`, opens its blob store and starts its node.
pub async fn spawn_node(path: &Path, options: &InitOptions) -> Node {
    let repo = Repo::init(path, options).expect("init");
    let blobs = Blobs::open(&repo.blobs_dir(), &repo.tmp_dir())
        .await
        .expect("blobs");
    Node::spawn(repo, blobs).await.expect("node")
}

pub async fn setup_with(settings: &[&str]) -> TestApi {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = InitOptions {
        passphrase: Some("test passphrase".into()),
        settings: loopback(settings),
        ..InitOptions::default()
    };
    let node = spawn_node(&dir.path().join("repo"), &options).await;
    let router = mnode_api::router(mnode_api::ApiState::new(node.handle(), TOKEN));
    TestApi { node, router, dir }
}

pub async fn setup() -> TestApi {
    setup_with(&[]).await
}

/// Sends a request; returns status, headers and the whole body.
pub async fn call(router: &Router, req: Request<Body>) -> (StatusCode, HeaderMap, Bytes) {
    let resp = router.clone().oneshot(req).await.expect("response");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = to_bytes(resp.into_body(), usize::MAX).await.expect("body");
    (status, headers, body)
}

/// A JSON request with an optional bearer token; answers status and JSON body (Null if empty
/// or not JSON).
pub async fn json_call(
    router: &Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = match body {
        Some(v) => b
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(v.to_string())),
        None => b.body(Body::empty()),
    }
    .expect("request");
    let (status, _, bytes) = call(router, req).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Registers `handle` (email `handle@example.org`) and logs in; returns the session token.
pub async fn register_and_login(router: &Router, handle: &str) -> String {
    let (status, v) = json_call(
        router,
        "POST",
        "/api/v1/accounts",
        None,
        Some(serde_json::json!({
            "handle": handle, "email": format!("{handle}@example.org"), "password": PASSWORD,
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "register {handle}: {v}");
    login(router, handle).await
}

/// Logs `handle` in with [`PASSWORD`]; returns the session token.
pub async fn login(router: &Router, handle: &str) -> String {
    let (status, v) = json_call(
        router,
        "POST",
        "/api/v1/sessions",
        None,
        Some(serde_json::json!({ "login": handle, "password": PASSWORD })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "login {handle}: {v}");
    v["token"].as_str().expect("token").to_owned()
}

pub fn req(method: &str, uri: &str) -> axum::http::request::Builder {
    Request::builder().method(method).uri(uri)
}

pub fn empty(b: axum::http::request::Builder) -> Request<Body> {
    b.body(Body::empty()).expect("request")
}

/// Creates a record of `kind` as the caller of `token` (`POST /records`); answers its id.
pub async fn create(router: &Router, token: &str, kind: &str, body: Value) -> String {
    let (status, v) = json_call(
        router,
        "POST",
        "/api/v1/records",
        Some(token),
        Some(serde_json::json!({ "kind": kind, "body": body })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "create {kind}: {v}");
    v["id"].as_str().expect("id").to_owned()
}

/// The did:key of the caller of `token`.
pub async fn did_of(router: &Router, token: &str) -> String {
    let (status, v) = json_call(router, "GET", "/api/v1/me", Some(token), None).await;
    assert_eq!(status, StatusCode::OK, "GET /api/v1/me: {v}");
    v["did"].as_str().expect("did").to_owned()
}

/// Dials `b`'s node from `a`'s (its first listen address).
pub async fn connect(a: &TestApi, b: &TestApi) {
    let info = b.node.handle().info().await.expect("info");
    let addr = info.addrs[0].parse().expect("multiaddr");
    a.node.handle().connect(addr).await.expect("connect");
}

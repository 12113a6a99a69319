//! The gateway and the API's auth, through the router without a socket.

use axum::{
    Router,
    body::{Body, to_bytes},
    http::{HeaderMap, Request, StatusCode, header},
};
use bytes::Bytes;
use mnode_dag::{Keypair, Record, model::social::Post};
use mnode_node::{
    blobs::Blobs,
    node::Node,
    repo::{InitOptions, Repo},
};
use tower::ServiceExt;

const TOKEN: &str = "test-token";

async fn setup() -> (Node, Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = Repo::init(
        &dir.path().join("repo"),
        &InitOptions {
            passphrase: Some("test passphrase".into()),
            settings: vec![
                r#"network.listen=["/ip4/127.0.0.1/tcp/0"]"#.into(),
                "network.blobs_listen=127.0.0.1:0".into(),
            ],
            ..InitOptions::default()
        },
    )
    .expect("init");
    let blobs = Blobs::open(&repo.blobs_dir(), &repo.tmp_dir())
        .await
        .expect("blobs");
    let node = Node::spawn(repo, blobs).await.expect("node");
    let router = mnode_api::router(mnode_api::ApiState::new(node.handle(), TOKEN));
    (node, router, dir)
}

async fn call(router: &Router, req: Request<Body>) -> (StatusCode, HeaderMap, Bytes) {
    let resp = router.clone().oneshot(req).await.expect("response");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = to_bytes(resp.into_body(), usize::MAX).await.expect("body");
    (status, headers, body)
}

fn req(method: &str, uri: &str) -> axum::http::request::Builder {
    Request::builder().method(method).uri(uri)
}

fn empty(b: axum::http::request::Builder) -> Request<Body> {
    b.body(Body::empty()).expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_serves_raw_blocks_files_and_ranges_and_refuses_bad_input() {
    let (node, router, _dir) = setup().await;
    let h = node.handle();
    let key = Keypair::derive(1, "gw");
    let record = Record::create(&Post {
        text: "through the gateway".into(),
        ..Post::default()
    })
    .expect("post")
    .sign(&key)
    .expect("sign");
    h.publish(vec![record.clone()]).await.expect("publish");

    // A raw block, which the client checks against its CID.
    let uri = format!("/ipfs/{}?format=raw", record.cid());
    let (status, headers, body) = call(&router, empty(req("GET", &uri))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/vnd.ipld.raw");
    assert_eq!(&body[..], record.bytes());
    assert_eq!(
        headers[header::CACHE_CONTROL],
        "public, max-age=29030400, immutable"
    );
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    let tag = headers[header::ETAG].clone();

    // The Accept header works as the query does; a matching ETag is a 304.
    let r = req("GET", &format!("/ipfs/{}", record.cid()))
        .header(header::ACCEPT, "application/vnd.ipld.raw")
        .header(header::IF_NONE_MATCH, tag);
    let (status, _, body) = call(&router, empty(r)).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());

    // A file: its media type, all of it, a range, a bad range, HEAD.
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend((0..100_000u32).map(|i| (i % 251) as u8));
    let added = h
        .blobs()
        .add_bytes(Bytes::from(png.clone()))
        .await
        .expect("add");
    let uri = format!("/ipfs/{}", added.cid);
    let (status, headers, body) = call(&router, empty(req("GET", &uri))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "image/png");
    assert_eq!(&body[..], &png[..]);
    let r = req("GET", &uri).header(header::RANGE, "bytes=10-19");
    let (status, headers, body) = call(&router, empty(r)).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        headers[header::CONTENT_RANGE],
        format!("bytes 10-19/{}", png.len())
    );
    assert_eq!(&body[..], &png[10..20]);
    let r = req("GET", &uri).header(header::RANGE, "bytes=999999-");
    assert_eq!(
        call(&router, empty(r)).await.0,
        StatusCode::RANGE_NOT_SATISFIABLE
    );
    let (status, headers, body) = call(&router, empty(req("HEAD", &uri))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_LENGTH], png.len().to_string());
    assert!(body.is_empty());

    // Bad input: a malformed CID, a block the node does not hold, a format it does not serve.
    let (status, _, body) = call(&router, empty(req("GET", "/ipfs/not-a-cid"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json error");
    assert_eq!(v["error"]["code"], "bad_request");
    let missing = mnode_dag::cids::record_cid(b"nobody has this");
    let uri = format!("/ipfs/{missing}?format=raw");
    assert_eq!(
        call(&router, empty(req("GET", &uri))).await.0,
        StatusCode::NOT_FOUND
    );
    let uri = format!("/ipfs/{}?format=tar", record.cid());
    assert_eq!(
        call(&router, empty(req("GET", &uri))).await.0,
        StatusCode::BAD_REQUEST
    );
    let uri = format!("/ipfs/{}", record.cid());
    let (status, headers, _) = call(&router, empty(req("OPTIONS", &uri))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(
        headers[header::ACCESS_CONTROL_ALLOW_METHODS]
            .to_str()
            .expect("ascii")
            .contains("GET")
    );
    node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_needs_the_admin_token_and_bad_writes_change_nothing() {
    let (node, router, _dir) = setup().await;
    for auth in [None, Some("Bearer wrong"), Some(TOKEN)] {
        let mut r = req("GET", "/api/v1/node");
        if let Some(a) = auth {
            r = r.header(header::AUTHORIZATION, a);
        }
        let (status, _, body) = call(&router, empty(r)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["error"]["code"], "unauthorized");
    }
    let r = req("GET", "/api/v1/node").header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
    let (status, _, body) = call(&router, empty(r)).await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["peer_id"], node.handle().peer_id().to_string());

    // A record that breaks its schema is refused and nothing is stored.
    let r = req("POST", "/api/v1/records")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"kind":"social.post","body":{"text":""}}"#))
        .expect("request");
    let (status, _, body) = call(&router, r).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body:?}");
    assert_eq!(
        node.handle().repo().store().stats().expect("stats").items,
        0
    );
    node.shutdown().await.expect("shutdown");
}

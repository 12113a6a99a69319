//! Record listings with time ranges, and the framework's refusals in the API's JSON form.

mod support;

use axum::{
    body::Body,
    http::{Request, StatusCode, header},
};
use serde_json::{Value, json};
use support::{TOKEN, TestApi, call, json_call, setup};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_take_a_time_range_and_page_within_it() {
    let TestApi {
        node,
        router,
        dir: _dir,
    } = setup().await;
    let mut created = Vec::new();
    for i in 0..6 {
        let (status, v) = json_call(
            &router,
            "POST",
            "/api/v1/records",
            Some(TOKEN),
            Some(json!({ "kind": "social.post", "body": { "text": format!("post {i}") } })),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        let id = v["id"].as_str().expect("id").to_owned();
        let (_, r) = json_call(&router, "GET", &format!("/api/v1/records/{id}"), None, None).await;
        created.push(r["record"]["created"].as_u64().expect("created"));
        // Distinct creation times.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let (since, until) = (created[1], created[4]);
    let list = |q: String| {
        let router = router.clone();
        async move {
            let (status, v) =
                json_call(&router, "GET", &format!("/api/v1/records?{q}"), None, None).await;
            assert_eq!(status, StatusCode::OK, "{v}");
            v
        }
    };
    let times = |v: &Value| -> Vec<u64> {
        v["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| i["created"].as_u64().expect("created"))
            .collect()
    };
    // Posts 1, 2 and 3, newest first, for the unfiltered listing and a kind's listing.
    for filter in ["", "kind=social.post&"] {
        let v = list(format!("{filter}since={since}&until={until}")).await;
        assert_eq!(times(&v), vec![created[3], created[2], created[1]], "{v}");
        // Paged two at a time, the range holds across pages.
        let first = list(format!("{filter}since={since}&until={until}&limit=2")).await;
        assert_eq!(times(&first), vec![created[3], created[2]]);
        let next = first["next"].as_str().expect("next");
        let second = list(format!(
            "{filter}since={since}&until={until}&limit=2&cursor={next}"
        ))
        .await;
        assert_eq!(times(&second), vec![created[1]]);
    }
    let v = list(format!("until={}", created[0])).await;
    assert_eq!(times(&v), Vec::<u64>::new());
    let (status, v) = json_call(
        &router,
        "GET",
        &format!("/api/v1/records?since={until}&until={since}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_json_errors_and_change_nothing() {
    let TestApi {
        node,
        router,
        dir: _dir,
    } = setup().await;
    let bad = |body: &'static str, content_type: &'static str| {
        Request::builder()
            .method("POST")
            .uri("/api/v1/records")
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .expect("request")
    };
    for (req, status, code) in [
        (
            bad("{not json", "application/json"),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            bad(r#"{"kind": 5}"#, "application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            bad("{}", "text/plain"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            Request::get("/api/v1/records?limit=many")
                .body(Body::empty())
                .expect("request"),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Request::get("/api/v1/no/such/route")
                .body(Body::empty())
                .expect("request"),
            StatusCode::NOT_FOUND,
            "no_route",
        ),
        (
            Request::patch("/api/v1/node")
                .body(Body::empty())
                .expect("request"),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
    ] {
        let what = format!("{} {}", req.method(), req.uri());
        let (got, headers, body) = call(&router, req).await;
        assert_eq!(got, status, "{what}");
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .is_ok_and(|c| c.starts_with("application/json")),
            "{what}"
        );
        let v: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(v["error"]["code"], code, "{what}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{v}"
        );
    }
    assert_eq!(
        node.handle().repo().store().stats().expect("stats").items,
        0
    );
    node.shutdown().await.expect("shutdown");
}

/// The gateway looks for a block it does not hold among connected peers (Bitswap), checks it
/// against its CID and serves it; what no peer has is a 404 after the timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_fetches_a_missing_block_from_a_connected_peer() {
    let a = setup().await;
    let b = support::setup_with(&["api.gateway_fetch_timeout_ms=1500"]).await;
    let (status, v) = json_call(
        &a.router,
        "POST",
        "/api/v1/records",
        Some(TOKEN),
        Some(json!({ "kind": "social.post", "body": { "text": "held by A only" } })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let cid = v["cid"].as_str().expect("cid").to_owned();
    let raw = |router: axum::Router, cid: String| async move {
        call(
            &router,
            Request::get(format!("/ipfs/{cid}?format=raw"))
                .body(Body::empty())
                .expect("request"),
        )
        .await
    };
    // Alone, B does not have it and says so at once.
    let (status, _, _) = raw(b.router.clone(), cid.clone()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let addr = a.node.handle().info().await.expect("info").addrs[0]
        .parse()
        .expect("multiaddr");
    b.node.handle().connect(addr).await.expect("connect");
    // Bitswap learns of the connection just after `connect` returns: ask until it has.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let from_b = loop {
        let (status, _, body) = raw(b.router.clone(), cid.clone()).await;
        if status == StatusCode::OK {
            break body;
        }
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(
            std::time::Instant::now() < deadline,
            "B never got the block"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let (_, _, from_a) = raw(a.router.clone(), cid.clone()).await;
    assert_eq!(from_b, from_a);

    // A block no one has: 404 once the search gives up.
    let nobody = "bafyreigdmqpykrgxyaxtlafqpqhzrb7qy2rh75nldvfd4tucqmqqme5yje";
    let started = std::time::Instant::now();
    let (status, _, body) = raw(b.router.clone(), nobody.to_owned()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["error"]["code"], "not_found");
    b.node.shutdown().await.expect("shutdown");
    a.node.shutdown().await.expect("shutdown");
}

/// `POST /dag/export` and `/dag/import` with `progress`: NDJSON lines of bytes moved, then the
/// answer the call gives without it; a failed export still ends in an error line and leaves no
/// file.
#[tokio::test]
async fn dag_export_and_import_stream_progress() {
    let t = support::setup().await;
    let id = support::create(
        &t.router,
        support::TOKEN,
        "social.post",
        serde_json::json!({ "text": "for the CAR", "media": [], "tags": [] }),
    )
    .await;
    let lines = |body: &[u8]| -> Vec<serde_json::Value> {
        std::str::from_utf8(body)
            .expect("utf-8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    };
    let post = |uri: &str, body: serde_json::Value| {
        support::req("POST", uri)
            .header("authorization", format!("Bearer {}", support::TOKEN))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.to_string()))
            .expect("request")
    };
    let car = t.dir.path().join("post.car");
    let (status, headers, body) = support::call(
        &t.router,
        post(
            "/api/v1/dag/export",
            serde_json::json!({ "cid": id, "path": car, "progress": true }),
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/x-ndjson");
    let got = lines(&body);
    let size = std::fs::metadata(&car).expect("the CAR").len();
    let done = &got.last().expect("a last line")["done"];
    assert!(
        done["report"]["blocks"].as_u64().is_some_and(|n| n >= 1),
        "{got:?}"
    );
    assert!(got.len() >= 2, "a progress line, then done: {got:?}");
    assert!(
        got[..got.len() - 1]
            .iter()
            .all(|l| l["bytes"].as_u64().is_some_and(|n| n > 0 && n <= size)),
        "{got:?}"
    );

    let (status, _, body) = support::call(
        &t.router,
        post(
            "/api/v1/dag/import",
            serde_json::json!({ "path": car, "progress": true }),
        ),
    )
    .await;
    assert_eq!(status, 200);
    let got = lines(&body);
    assert_eq!(got[0]["size"], size, "{got:?}");
    assert!(
        got.last().expect("a last line")["done"].is_object(),
        "{got:?}"
    );

    // An item the node does not hold: an error line, and no file.
    let missing = "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";
    let none = t.dir.path().join("none.car");
    let (_, _, body) = support::call(
        &t.router,
        post(
            "/api/v1/dag/export",
            serde_json::json!({ "cid": missing, "path": none, "progress": true }),
        ),
    )
    .await;
    let got = lines(&body);
    assert_eq!(
        got.last().expect("a last line")["error"]["status"],
        404,
        "{got:?}"
    );
    assert!(!none.exists());
    t.node.shutdown().await.expect("shutdown");
}

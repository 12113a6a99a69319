//! Files of private records: sealed before they become blobs, so every node and the gateway
//! hold and serve only ciphertext, and the record's readers read the file through its record.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use axum::{
    body::Body,
    http::{Request, StatusCode, header},
};
use serde_json::{Value, json};
use support::{TOKEN, TestApi, call, connect, did_of, json_call, register_and_login, setup};

/// Pseudo-random bytes: no run of them appears in their sealed form by chance.
fn content(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

async fn upload(api: &TestApi, token: &str, query: &str, data: &[u8]) -> (StatusCode, Value) {
    let req = Request::builder()
        .method("PUT")
        .uri(format!("/api/v1/files?{query}"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "audio/wav")
        .body(Body::from(data.to_vec()))
        .unwrap();
    let (status, _, body) = call(&api.router, req).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// `GET uri` with an optional token and `Range`: status, headers and body.
async fn get(
    api: &TestApi,
    uri: &str,
    token: Option<&str>,
    range: Option<&str>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let mut b = Request::builder().method("GET").uri(uri);
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    if let Some(r) = range {
        b = b.header(header::RANGE, r);
    }
    let (status, headers, body) = call(&api.router, b.body(Body::empty()).unwrap()).await;
    (status, headers, body.to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_file_is_sealed_and_only_its_readers_read_it_on_any_node() {
    let a = setup().await;
    let b = setup().await;
    let ana = register_and_login(&a.router, "ana").await;
    let dee = register_and_login(&a.router, "dee").await;
    let ben = register_and_login(&b.router, "ben").await;
    let ben_did = did_of(&b.router, &ben).await;
    connect(&a, &b).await;

    let data = content(300_000);
    // Someone who is neither a did:key nor an account here: refused before anything is stored.
    let (status, v) = upload(&a, &ana, "name=demo.wav&to=nobody", &data).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(v.to_string().contains("nobody"), "{v}");

    let (status, v) = upload(&a, &ana, &format!("name=demo.wav&to={ben_did}"), &data).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (blob, id) = (
        v["cid"].as_str().unwrap().to_owned(),
        v["record"]["id"].as_str().unwrap().to_owned(),
    );
    assert_eq!(v["size"], data.len(), "{v}");
    assert_eq!(v["url"], format!("/api/v1/records/{id}/file"), "{v}");
    let sealed_size = v["sealed_size"].as_u64().unwrap();
    assert!(sealed_size > data.len() as u64, "{v}");

    // The gateway serves the blob to anyone, and the blob is ciphertext.
    let (status, _, served) = get(&a, &format!("/ipfs/{blob}"), None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(served.len() as u64, sealed_size);
    assert!(!served.windows(32).any(|w| w == &data[5000..5032]));
    // Its record is private: Dee and strangers see neither its name nor its key.
    let (_, v) = json_call(
        &a.router,
        "GET",
        &format!("/api/v1/records/{id}"),
        Some(&dee),
        None,
    )
    .await;
    assert!(v["record"]["body"].is_null(), "{v}");
    assert!(!v.to_string().contains("demo.wav"), "{v}");

    // GC keeps it: the record's pin cannot see the sealed link, so the file has a pin of its
    // own (a fresh upload outlives one GC anyway, so the pin itself is what is checked).
    let (status, v) = json_call(&a.router, "GET", "/api/v1/pins", Some(TOKEN), None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(
        v.to_string().contains(&blob),
        "the sealed file is pinned: {v}"
    );
    // Its author reads the file, whole and by range.
    let file = format!("/api/v1/records/{id}/file");
    let (status, headers, body) = get(&a, &file, Some(&ana), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, data);
    assert_eq!(headers[header::CONTENT_TYPE], "audio/wav");
    assert_eq!(headers[header::CACHE_CONTROL], "private, no-store");
    let (status, headers, body) = get(&a, &file, Some(&ana), Some("bytes=65530-131080")).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, &data[65530..131081]);
    assert_eq!(
        headers[header::CONTENT_RANGE],
        format!("bytes 65530-131080/{}", data.len())
    );
    // Nobody else does.
    for token in [Some(dee.as_str()), None] {
        let (status, _, body) = get(&a, &file, token, None).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{}",
            String::from_utf8_lossy(&body)
        );
        assert!(String::from_utf8_lossy(&body).contains("not_a_reader"));
    }

    // On B, the record reaches Ben (on his feed's topic); his node fetches the blob from A and
    // he reads the file.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, v) = json_call(
            &b.router,
            "GET",
            &format!("/api/v1/records/{id}"),
            Some(&ben),
            None,
        )
        .await;
        if status == StatusCode::OK {
            assert_eq!(v["record"]["body"]["file"]["name"], "demo.wav", "{v}");
            assert!(
                v["record"]["body"]["file"]["sealed"]["key"].is_string(),
                "{v}"
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "B never got {id}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _, body) = get(&b, &format!("/api/v1/records/{id}/file"), Some(&ben), None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (status, v) = json_call(
        &b.router,
        "POST",
        "/api/v1/files/fetch",
        Some(&ben),
        Some(json!({ "cid": blob })),
    )
    .await;
    assert!(status.is_success(), "{v}");
    let (status, _, body) = get(&b, &format!("/api/v1/records/{id}/file"), Some(&ben), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, data);

    a.node.shutdown().await.expect("shutdown a");
    b.node.shutdown().await.expect("shutdown b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_files_record_serves_its_blob_as_typed() {
    let a = setup().await;
    let ana = register_and_login(&a.router, "ana").await;
    let data = content(1000);
    let (status, v) = upload(&a, &ana, "name=take.wav", &data).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert!(v.get("sealed_size").is_none(), "{v}");
    let id = v["record"]["id"].as_str().unwrap();
    let (status, headers, body) = get(
        &a,
        &format!("/api/v1/records/{id}/file?download=true"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, data);
    assert_eq!(
        headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"take.wav\""
    );
    // A record that holds no file.
    let post = support::create(&a.router, &ana, "social.post", json!({ "text": "hi" })).await;
    let (status, _, _) = get(&a, &format!("/api/v1/records/{post}/file"), None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    a.node.shutdown().await.expect("shutdown a");
}

//! Uploads (`PUT` and multipart `POST /api/v1/files`), file facts and deletion: through the
//! router without a socket, plus real-socket tests for streaming, progress and memory.

mod support;

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Body,
    http::{Request, StatusCode, header},
};
use bytes::Bytes;
use futures::StreamExt as _;
use mnode_dag::testing::noise;
use mnode_node::node::NodeHandle;
use serde_json::Value;
use support::{TOKEN, TestApi, call, json_call, register_and_login, setup, setup_with};
use tokio::sync::mpsc;
use tower::ServiceExt as _;

const WAIT: Duration = Duration::from_secs(30);

/// A PNG header that says 7×5 pixels (enough for the media type and the dimensions).
fn png() -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x07\0\0\0\x05\x08\x06\0\0\0".to_vec();
    b.extend(noise(20_000, 9));
    b
}

fn put(uri: &str, token: Option<&str>, body: Body) -> Request<Body> {
    let mut b = Request::builder().method("PUT").uri(uri);
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(body).expect("request")
}

/// A multipart part: field name, file name, content type, bytes.
type Part<'a> = (&'a str, Option<&'a str>, Option<&'a str>, &'a [u8]);

/// A `multipart/form-data` request.
fn multipart(token: Option<&str>, parts: &[Part<'_>]) -> Request<Body> {
    const BOUNDARY: &str = "x-mnode-test-boundary-7c1f";
    let mut body = Vec::new();
    for (field, file, ctype, bytes) in parts {
        body.extend(format!("--{BOUNDARY}\r\n").as_bytes());
        let mut disp = format!("Content-Disposition: form-data; name=\"{field}\"");
        if let Some(f) = file {
            disp.push_str(&format!("; filename=\"{f}\""));
        }
        body.extend(format!("{disp}\r\n").as_bytes());
        if let Some(c) = ctype {
            body.extend(format!("Content-Type: {c}\r\n").as_bytes());
        }
        body.extend(b"\r\n");
        body.extend(*bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{BOUNDARY}--\r\n").as_bytes());
    let mut b = Request::builder()
        .method("POST")
        .uri("/api/v1/files")
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        );
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(Body::from(body)).expect("request")
}

async fn send(router: &Router, req: Request<Body>) -> (StatusCode, Value) {
    let (status, _, bytes) = call(router, req).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// The bytes the gateway serves for `cid`.
async fn download(router: &Router, cid: &str) -> (StatusCode, Bytes) {
    let req = Request::builder()
        .uri(format!("/ipfs/{cid}"))
        .body(Body::empty())
        .expect("request");
    let (status, _, bytes) = call(router, req).await;
    (status, bytes)
}

fn tmp_dir(h: &NodeHandle) -> PathBuf {
    h.repo().tmp_dir()
}

/// Upload temp files in the repo's temp dir.
fn temp_uploads(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("upload-"))
                .collect()
        })
        .unwrap_or_default()
}

async fn blob_count(h: &NodeHandle) -> usize {
    h.blobs().list().await.expect("list").len()
}

async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < WAIT, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_upload_reads_back_byte_equal_with_a_signed_record() {
    let t = setup().await;
    let r = &t.router;
    let alice = register_and_login(r, "alice").await;

    // A small text file (kept inline by the store) and a larger binary one (a file).
    let text = b"# Notes\nhello from an upload\n".to_vec();
    let (status, v) = send(
        r,
        put(
            "/api/v1/files?name=notes.md",
            Some(&alice),
            Body::from(text.clone()),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["size"], text.len());
    assert_eq!(v["media_type"], "text/markdown");
    assert_eq!(v["name"], "notes.md");
    assert_eq!(v["record"]["type"], "core.file");
    let cid = v["cid"].as_str().expect("cid").to_owned();
    assert!(cid.starts_with("bafkr4i"), "{cid}");
    assert_eq!(v["url"], format!("/ipfs/{cid}"));
    let (status, bytes) = download(r, &cid).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&bytes[..], &text[..]);

    let big = noise(3 << 20, 1);
    let (status, v) = send(
        r,
        put("/api/v1/files", Some(&alice), Body::from(big.clone())),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let big_cid = v["cid"].as_str().expect("cid").to_owned();
    assert_eq!(
        big_cid,
        mnode_dag::cids::blob_cid_of(&big).to_string(),
        "the CID is the BLAKE3 of the bytes"
    );
    assert_eq!(v["media_type"], "application/octet-stream");
    assert_eq!(v["name"], big_cid.as_str(), "no name: the CID");
    let (status, bytes) = download(r, &big_cid).await;
    assert_eq!(status, StatusCode::OK);
    assert!(bytes[..] == big[..], "the download is byte-equal");

    // The record is alice's, pinned, and listed by the file's facts.
    let id = v["record"]["id"].as_str().expect("id").to_owned();
    let (status, rec) = json_call(r, "GET", &format!("/api/v1/records/{id}"), None, None).await;
    assert_eq!(status, StatusCode::OK, "{rec}");
    assert_eq!(rec["record"]["body"]["blob"]["/"], big_cid.as_str());
    assert_eq!(rec["record"]["body"]["kind"], "other");
    let (_, me) = json_call(r, "GET", "/api/v1/accounts/alice", Some(&alice), None).await;
    if let Some(did) = me["did"].as_str() {
        assert_eq!(rec["record"]["author"], did, "signed by the uploader");
    }
    let h = t.node.handle();
    let pins = h.repo().store().pins().expect("pins");
    assert!(
        pins.iter().any(|(c, _)| c.to_string() == id),
        "the record is pinned"
    );
    let (status, info) = json_call(r, "GET", &format!("/api/v1/files/{big_cid}"), None, None).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["size"], big.len());
    assert_eq!(info["url"], format!("/ipfs/{big_cid}"));
    assert_eq!(info["records"][0]["id"], id.as_str());
    assert_eq!(info["records_complete"], true);

    // An image gets an art.image record with its dimensions, whatever Content-Type said.
    let mut req = put(
        "/api/v1/files?name=dot.png",
        Some(&alice),
        Body::from(png()),
    );
    req.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/octet-stream".parse().expect("header"),
    );
    let (status, v) = send(r, req).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["media_type"], "image/png");
    assert_eq!(v["record"]["type"], "art.image");
    let id = v["record"]["id"].as_str().expect("id");
    let (_, rec) = json_call(r, "GET", &format!("/api/v1/records/{id}"), None, None).await;
    assert_eq!(rec["record"]["body"]["width"], 7, "{rec}");
    assert_eq!(rec["record"]["body"]["height"], 5, "{rec}");

    // Facts of a file the node lacks, or of something that is not a file.
    let missing = mnode_dag::cids::blob_cid_of(b"not here");
    let (status, _) = json_call(r, "GET", &format!("/api/v1/files/{missing}"), None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = json_call(r, "GET", &format!("/api/v1/files/{id}"), None, None).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a record CID is not a file"
    );
    assert!(temp_uploads(&tmp_dir(&h)).is_empty());
    t.node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_upload_reads_back_byte_equal() {
    let t = setup().await;
    let r = &t.router;
    let alice = register_and_login(r, "alice").await;

    let bytes = noise(200_000, 2);
    let (status, v) = send(
        r,
        multipart(
            Some(&alice),
            &[("file", Some("C:\\photos\\track.bin"), None, &bytes)],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(
        v["name"], "track.bin",
        "the part's file name, without folders"
    );
    assert_eq!(v["size"], bytes.len());
    let (status, got) = download(r, v["cid"].as_str().expect("cid")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(got[..] == bytes[..]);

    // Two files; a `name` field names the file after it; other fields are ignored; the
    // part's Content-Type is used where the content says only "text".
    let csv = b"a,b\n1,2\n".to_vec();
    let (status, v) = send(
        r,
        multipart(
            Some(&alice),
            &[
                ("note", None, None, b"ignored"),
                ("name", None, None, b"table.csv"),
                ("file", Some("upload.txt"), Some("text/csv"), &csv),
                ("file", Some("dot.png"), Some("image/png"), &png()),
            ],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let files = v["files"].as_array().expect("files");
    assert_eq!(files.len(), 2);
    assert_eq!(files[0]["name"], "table.csv");
    assert_eq!(files[0]["media_type"], "text/csv");
    assert_eq!(files[1]["name"], "dot.png");
    assert_eq!(files[1]["record"]["type"], "art.image");
    let (_, got) = download(r, files[0]["cid"].as_str().expect("cid")).await;
    assert_eq!(&got[..], &csv[..]);
    let (_, got) = download(r, files[1]["cid"].as_str().expect("cid")).await;
    assert!(got[..] == png()[..]);
    t.node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_large_uploads_are_413_and_leave_nothing() {
    let t = setup_with(&["api.max_upload_bytes=100000"]).await;
    let r = &t.router;
    let h = t.node.handle();
    let alice = register_and_login(r, "alice").await;
    let before = blob_count(&h).await;

    // Refused by Content-Length before any byte is read.
    let mut req = put("/api/v1/files", Some(&alice), Body::from(noise(100_001, 3)));
    req.headers_mut()
        .insert(header::CONTENT_LENGTH, "100001".parse().expect("header"));
    let (status, v) = send(r, req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(v["error"]["code"], "too_large");

    // No length given: refused once the limit is passed, the temp file removed.
    let chunks: Vec<Result<Bytes, std::io::Error>> =
        (0..20).map(|i| Ok(Bytes::from(noise(10_000, i)))).collect();
    let body = Body::from_stream(futures::stream::iter(chunks));
    let (status, v) = send(r, put("/api/v1/files", Some(&alice), body)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(v["error"]["code"], "too_large");

    // The same through multipart.
    let big = noise(150_000, 4);
    let (status, v) = send(
        r,
        multipart(Some(&alice), &[("file", Some("big.bin"), None, &big)]),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(v["error"]["code"], "too_large");

    // Exactly the limit is fine.
    let (status, v) = send(
        r,
        put("/api/v1/files", Some(&alice), Body::from(noise(100_000, 5))),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");

    assert_eq!(
        blob_count(&h).await,
        before + 1,
        "only the last one is stored"
    );
    assert!(
        temp_uploads(&tmp_dir(&h)).is_empty(),
        "no temp file is left"
    );
    t.node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_need_a_token_and_multipart_must_be_well_formed() {
    let t = setup().await;
    let r = &t.router;
    let h = t.node.handle();
    let alice = register_and_login(r, "alice").await;
    let before = blob_count(&h).await;

    let (status, v) = send(r, put("/api/v1/files", None, Body::from("x"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{v}");
    let (status, _) = send(r, multipart(None, &[("file", None, None, b"x")])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = send(
        r,
        put(
            "/api/v1/files",
            Some("0".repeat(64).as_str()),
            Body::from("x"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "an unknown token");

    // No boundary; a body that is not multipart; no file part.
    let req = Request::builder()
        .method("POST")
        .uri("/api/v1/files")
        .header(header::AUTHORIZATION, format!("Bearer {alice}"))
        .header(header::CONTENT_TYPE, "multipart/form-data")
        .body(Body::from("x"))
        .expect("request");
    let (status, v) = send(r, req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["code"], "bad_multipart");
    let req = Request::builder()
        .method("POST")
        .uri("/api/v1/files")
        .header(header::AUTHORIZATION, format!("Bearer {alice}"))
        .header(header::CONTENT_TYPE, "multipart/form-data; boundary=abc")
        .body(Body::from(
            "--abc\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nno end",
        ))
        .expect("request");
    let (status, v) = send(r, req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let (status, v) = send(r, multipart(Some(&alice), &[("other", None, None, b"x")])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["code"], "bad_multipart");

    // A user may not act as another account.
    let (status, v) = send(
        r,
        put("/api/v1/files?as=admin", Some(&alice), Body::from("x")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(blob_count(&h).await, before);

    // An admin may: the record is signed by that account.
    let (status, v) = send(
        r,
        put(
            "/api/v1/files?as=alice",
            Some(TOKEN),
            Body::from("for alice"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let cid = v["cid"].as_str().expect("cid");
    let (_, info) = json_call(r, "GET", &format!("/api/v1/files/{cid}"), None, None).await;
    let alice_did = h
        .repo()
        .accounts()
        .get("alice")
        .expect("account")
        .and_then(|a| a.did().map(ToString::to_string));
    assert_eq!(info["records"][0]["author"].as_str(), alice_did.as_deref());

    assert!(temp_uploads(&tmp_dir(&h)).is_empty());
    t.node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_by_owner_or_admin_but_not_by_others() {
    let t = setup().await;
    let r = &t.router;
    let alice = register_and_login(r, "alice").await;
    let bob = register_and_login(r, "bob").await;
    let upload = |token: String, bytes: Vec<u8>| {
        let r = r.clone();
        async move {
            let (status, v) = send(&r, put("/api/v1/files", Some(&token), Body::from(bytes))).await;
            assert_eq!(status, StatusCode::CREATED, "{v}");
            v["cid"].as_str().expect("cid").to_owned()
        }
    };
    let del = |token: Option<String>, cid: String| {
        let r = r.clone();
        async move {
            json_call(
                &r,
                "DELETE",
                &format!("/api/v1/files/{cid}"),
                token.as_deref(),
                None,
            )
            .await
        }
    };

    let a = upload(alice.clone(), noise(50_000, 10)).await;
    let (status, _) = del(None, a.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, v) = del(Some(bob.clone()), a.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["error"]["code"], "not_owner");
    assert_eq!(download(r, &a).await.0, StatusCode::OK, "still there");
    let (status, v) = del(Some(alice.clone()), a.clone()).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["deleted"], true);
    assert_eq!(download(r, &a).await.0, StatusCode::NOT_FOUND);
    let (status, _) = json_call(r, "GET", &format!("/api/v1/files/{a}"), None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = del(Some(alice.clone()), a.clone()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "already gone");

    // An admin may delete anyone's file.
    let b = upload(bob.clone(), noise(50_000, 11)).await;
    let (status, v) = del(Some(TOKEN.to_owned()), b.clone()).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(download(r, &b).await.0, StatusCode::NOT_FOUND);

    // A file both uploaded is not one owner's to delete.
    let shared = noise(50_000, 12);
    let c = upload(alice.clone(), shared.clone()).await;
    assert_eq!(upload(bob.clone(), shared).await, c);
    let (status, v) = del(Some(alice.clone()), c.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "in_use");
    let (_, info) = json_call(r, "GET", &format!("/api/v1/files/{c}"), None, None).await;
    assert_eq!(info["records"].as_array().map(Vec::len), Some(2), "{info}");
    let (status, _) = del(Some(TOKEN.to_owned()), c.clone()).await;
    assert_eq!(status, StatusCode::OK);
    t.node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_committed_later_are_held_at_once_and_committed_together() {
    let t = setup().await;
    let r = &t.router;
    let outside = t.dir.path().join("outside");
    std::fs::create_dir_all(&outside).expect("mkdir");
    let mut imported = Vec::new();
    for (i, len) in [5_000usize, 70_000, 300_000].into_iter().enumerate() {
        let data = noise(len, 40 + i as u64);
        let path = outside.join(format!("f{i}.bin"));
        std::fs::write(&path, &data).expect("write");
        let (status, v) = json_call(
            r,
            "POST",
            "/api/v1/files/import",
            Some(TOKEN),
            Some(serde_json::json!({ "path": path, "commit": "later" })),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["size"], len, "{v}");
        assert!(v["unixfs"].is_string(), "{v}");
        imported.push((v["cid"].as_str().expect("cid").to_owned(), data));
    }
    // Held and served before the commit...
    for (cid, data) in &imported {
        let (status, bytes) = download(r, cid).await;
        assert_eq!(status, StatusCode::OK);
        assert!(bytes[..] == data[..], "{cid} reads back other bytes");
    }
    // ... and committed together (admins only, as the import is).
    let bob = register_and_login(r, "bob").await;
    let (status, v) = json_call(r, "POST", "/api/v1/files/commit", Some(&bob), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    let (status, _, body) = call(
        r,
        Request::builder()
            .method("POST")
            .uri("/api/v1/files/commit")
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(body.is_empty());
    // A commit the route does not know is refused, naming the ones it does; nothing is added.
    let held = blob_count(&t.node.handle()).await;
    let path = outside.join("f0.bin");
    let (status, v) = json_call(
        r,
        "POST",
        "/api/v1/files/import",
        Some(TOKEN),
        Some(serde_json::json!({ "path": path, "commit": "sometime" })),
    )
    .await;
    assert!(status.is_client_error(), "{status} {v}");
    assert!(v.to_string().contains("later"), "{v}");
    assert_eq!(blob_count(&t.node.handle()).await, held);
    t.node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_import_answers_every_file_in_order_and_checks_every_path_first() {
    let t = setup().await;
    let r = &t.router;
    let outside = t.dir.path().join("outside");
    std::fs::create_dir_all(&outside).expect("mkdir");
    // Sizes around the 1 MiB UnixFS leaf, and one file twice under two names.
    let mut files = Vec::new();
    for (i, len) in [5_000usize, 1_048_576, 1_300_000, 70_000]
        .into_iter()
        .enumerate()
    {
        let data = noise(len, 60 + i as u64);
        let path = outside.join(format!("f{i}.bin"));
        std::fs::write(&path, &data).expect("write");
        files.push((path, data));
    }
    let again = outside.join("again.bin");
    std::fs::write(&again, &files[0].1).expect("write");
    files.push((again, files[0].1.clone()));
    let paths: Vec<&PathBuf> = files.iter().map(|(p, _)| p).collect();
    let total: usize = files.iter().map(|(_, d)| d.len()).sum();

    // With progress: the size of all the files first, the answer last.
    let (status, _, body) = call(
        r,
        Request::builder()
            .method("POST")
            .uri("/api/v1/files/import/batch")
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                serde_json::json!({ "paths": paths, "progress": true }).to_string(),
            ))
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let lines: Vec<Value> = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("an NDJSON line"))
        .collect();
    assert_eq!(lines.first().map(|l| &l["size"]), Some(&Value::from(total)));
    let done = &lines.last().expect("a last line")["done"];
    let answered = done["files"].as_array().expect("files");
    assert_eq!(answered.len(), files.len(), "{done}");
    for ((path, data), v) in files.iter().zip(answered) {
        assert_eq!(v["path"], path.to_str().expect("utf-8 path"), "{v}");
        assert_eq!(v["size"], data.len(), "{v}");
        let cid = v["cid"].as_str().expect("cid");
        let (status, bytes) = download(r, cid).await;
        assert_eq!(status, StatusCode::OK);
        assert!(bytes[..] == data[..], "{cid} reads back other bytes");
        let root = v["unixfs"].as_str().expect("unixfs");
        assert_eq!(
            root,
            mnode_dag::unixfs::View::of(data, Default::default())
                .root
                .to_string()
        );
        let (status, bytes) = download(r, root).await;
        assert_eq!(status, StatusCode::OK, "{root}");
        assert!(bytes[..] == data[..], "{root} reads back other bytes");
    }
    assert_eq!(answered[0]["cid"], answered[4]["cid"]);

    // Every path is checked before a file is read: one missing or relative path, or one
    // folder, and nothing of the batch is added.
    let held = blob_count(&t.node.handle()).await;
    let fresh = outside.join("fresh.bin");
    std::fs::write(&fresh, noise(20_000, 70)).expect("write");
    for (bad, status, says) in [
        (
            outside.join("missing.bin"),
            StatusCode::NOT_FOUND,
            "missing.bin",
        ),
        (
            PathBuf::from("relative.bin"),
            StatusCode::BAD_REQUEST,
            "absolute",
        ),
        (outside.clone(), StatusCode::BAD_REQUEST, "not a file"),
    ] {
        let (got, v) = json_call(
            r,
            "POST",
            "/api/v1/files/import/batch",
            Some(TOKEN),
            Some(serde_json::json!({ "paths": [fresh, bad] })),
        )
        .await;
        assert_eq!(got, status, "{v}");
        assert!(v["error"]["message"].to_string().contains(says), "{v}");
        assert_eq!(blob_count(&t.node.handle()).await, held);
    }
    // No paths, or more than a batch takes.
    let many = vec![fresh.clone(); mnode_api::files::MAX_IMPORTS + 1];
    for paths in [vec![], many] {
        let (got, v) = json_call(
            r,
            "POST",
            "/api/v1/files/import/batch",
            Some(TOKEN),
            Some(serde_json::json!({ "paths": paths })),
        )
        .await;
        assert_eq!(got, StatusCode::BAD_REQUEST, "{v}");
        assert!(v["error"]["message"].to_string().contains("1 to"), "{v}");
    }
    // Admins only; without progress, one JSON answer.
    let bob = register_and_login(r, "bob").await;
    let body = serde_json::json!({ "paths": [fresh] });
    let (got, v) = json_call(
        r,
        "POST",
        "/api/v1/files/import/batch",
        Some(&bob),
        Some(body.clone()),
    )
    .await;
    assert_eq!(got, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(blob_count(&t.node.handle()).await, held);
    let (got, v) = json_call(
        r,
        "POST",
        "/api/v1/files/import/batch",
        Some(TOKEN),
        Some(body),
    )
    .await;
    assert_eq!(got, StatusCode::OK, "{v}");
    assert_eq!(v["files"][0]["size"], 20_000, "{v}");
    assert_eq!(blob_count(&t.node.handle()).await, held + 1);
    t.node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_uploads_leave_no_temp_files() {
    let t = setup().await;
    let r = &t.router;
    let h = t.node.handle();
    let alice = register_and_login(r, "alice").await;
    let before = blob_count(&h).await;

    // The body breaks off with an error (what hyper reports when the client goes away).
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::from(noise(300_000, 20))),
        Ok(Bytes::from(noise(300_000, 21))),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "client went away",
        )),
    ];
    let body = Body::from_stream(futures::stream::iter(chunks));
    let (status, v) = send(r, put("/api/v1/files", Some(&alice), body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["code"], "upload_failed");
    assert!(temp_uploads(&tmp_dir(&h)).is_empty());

    // The same inside a multipart body.
    let mut head =
        b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\n\r\n".to_vec();
    head.extend(noise(300_000, 22));
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::from(head)),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "gone",
        )),
    ];
    let req = Request::builder()
        .method("POST")
        .uri("/api/v1/files")
        .header(header::AUTHORIZATION, format!("Bearer {alice}"))
        .header(header::CONTENT_TYPE, "multipart/form-data; boundary=b")
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .expect("request");
    let (status, v) = send(r, req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(temp_uploads(&tmp_dir(&h)).is_empty());

    // The client goes away mid-upload: the server drops the request, and its temp file.
    for progress in [false, true] {
        let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(1);
        let body = Body::from_stream(tokio_stream(rx));
        let uri = format!("/api/v1/files?progress={progress}");
        let req = put(&uri, Some(&alice), body);
        let router = r.clone();
        let task = tokio::spawn(async move {
            let resp = router.oneshot(req).await.expect("response");
            // Read the (progress) answer as a client would, until it is dropped.
            let mut body = resp.into_body().into_data_stream();
            while body.next().await.is_some() {}
        });
        tx.send(Ok(Bytes::from(noise(300_000, 23))))
            .await
            .expect("send");
        let dir = tmp_dir(&h);
        wait_until("the upload's temp file exists", || {
            !temp_uploads(&dir).is_empty()
        })
        .await;
        task.abort();
        let _ = task.await;
        wait_until("the temp file is gone", || temp_uploads(&dir).is_empty()).await;
        drop(tx);
    }
    assert_eq!(blob_count(&h).await, before, "nothing was stored");
    t.node.shutdown().await.expect("shutdown");
}

/// A receiver as a stream.
fn tokio_stream<T: Send + 'static>(
    rx: mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
}

/// Reads NDJSON lines from a body stream.
struct Lines<S> {
    body: S,
    buf: Vec<u8>,
}

impl<S, E> Lines<S>
where
    S: futures::Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Debug,
{
    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return Some(serde_json::from_slice(&line).expect("a JSON line"));
            }
            let chunk = tokio::time::timeout(WAIT, self.body.next())
                .await
                .expect("a line in time")?
                .expect("body");
            self.buf.extend_from_slice(&chunk);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_lines_come_while_the_body_does_then_the_answer() {
    let t = setup().await;
    let r = &t.router;
    let alice = register_and_login(r, "alice").await;

    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    let req = put(
        "/api/v1/files?progress=true&name=p.bin",
        Some(&alice),
        Body::from_stream(tokio_stream(rx)),
    );
    let resp = r.clone().oneshot(req).await.expect("response");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/x-ndjson");
    let mut lines = Lines {
        body: resp.into_body().into_data_stream(),
        buf: Vec::new(),
    };
    let mut all = Vec::new();
    for i in 0..3u64 {
        let chunk = noise(100_000, 30 + i);
        all.extend_from_slice(&chunk);
        tx.send(Ok(Bytes::from(chunk))).await.expect("send");
        // Each chunk shows up as a progress line before the next one is sent.
        let line = lines.next().await.expect("line");
        assert_eq!(line["received"], (i + 1) * 100_000, "{line}");
    }
    drop(tx);
    let last = lines.next().await.expect("last line");
    let done = &last["done"];
    assert_eq!(done["size"], all.len(), "{last}");
    assert_eq!(done["cid"], mnode_dag::cids::blob_cid_of(&all).to_string());
    assert!(lines.next().await.is_none(), "the answer ends after it");

    // Errors arrive as the last line.
    let t2 = setup_with(&["api.max_upload_bytes=1000"]).await;
    let bob = register_and_login(&t2.router, "bob").await;
    let resp = t2
        .router
        .clone()
        .oneshot(put(
            "/api/v1/files?progress=true",
            Some(&bob),
            Body::from(noise(5000, 1)),
        ))
        .await
        .expect("response");
    let mut lines = Lines {
        body: resp.into_body().into_data_stream(),
        buf: Vec::new(),
    };
    let last = loop {
        let line = lines.next().await.expect("line");
        if line.get("received").is_none() {
            break line;
        }
    };
    assert_eq!(last["error"]["code"], "too_large", "{last}");
    assert_eq!(last["error"]["status"], 413);
    t.node.shutdown().await.expect("shutdown");
    t2.node.shutdown().await.expect("shutdown");
}

/// Serves `t`'s router on a loopback port; answers the base URL.
async fn serve(t: &TestApi) -> (String, tokio_util::sync::CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let cancel = tokio_util::sync::CancellationToken::new();
    let router = t.router.clone();
    let c = cancel.clone();
    tokio::spawn(async move { mnode_api::serve(listener, router, c).await });
    (base, cancel)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_upload_and_progress_over_a_real_socket() {
    let t = setup().await;
    let (base, cancel) = serve(&t).await;
    let alice = register_and_login(&t.router, "alice").await;

    // The CLI's client streams a file from disk.
    let path = t.dir.path().join("song.bin");
    let bytes = noise(2 << 20, 40);
    std::fs::write(&path, &bytes).expect("write");
    let client = mnode_api::client::Client::new(&base, &alice);
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let s = sent.clone();
    let v = client
        .upload(&path, None, move |n| {
            s.store(n, std::sync::atomic::Ordering::Relaxed)
        })
        .await
        .expect("upload");
    assert_eq!(v["name"], "song.bin");
    assert_eq!(v["size"], bytes.len());
    assert_eq!(
        sent.load(std::sync::atomic::Ordering::Relaxed),
        bytes.len() as u64
    );
    let got = reqwest::get(format!("{base}/ipfs/{}", v["cid"].as_str().expect("cid")))
        .await
        .expect("get")
        .bytes()
        .await
        .expect("bytes");
    assert!(got[..] == bytes[..]);

    // Progress lines reach an HTTP/1.1 client while it is still sending.
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    let resp = reqwest::Client::new()
        .put(format!("{base}/api/v1/files?progress=true"))
        .bearer_auth(&alice)
        .body(reqwest::Body::wrap_stream(tokio_stream(rx)))
        .send();
    let first = Bytes::from(noise(100_000, 41));
    let (resp, sent) = tokio::join!(
        async { tokio::time::timeout(WAIT, resp).await },
        tx.send(Ok(first))
    );
    sent.expect("send");
    let resp = resp
        .expect("the answer starts before the body ends")
        .expect("response");
    let mut lines = Lines {
        body: resp.bytes_stream(),
        buf: Vec::new(),
    };
    // The body may arrive in pieces: lines count up to what was sent, never past it.
    let mut received = 0;
    while received < 100_000 {
        let n = lines.next().await.expect("line")["received"]
            .as_u64()
            .expect("received");
        assert!(n >= received && n <= 100_000, "{n} after {received}");
        received = n;
    }
    tx.send(Ok(Bytes::from(noise(100_000, 42))))
        .await
        .expect("send");
    while received < 200_000 {
        let n = lines.next().await.expect("line")["received"]
            .as_u64()
            .expect("received");
        assert!(n >= received && n <= 200_000, "{n} after {received}");
        received = n;
    }
    drop(tx);
    let last = lines.next().await.expect("last");
    assert_eq!(last["done"]["size"], 200_000, "{last}");

    cancel.cancel();
    t.node.shutdown().await.expect("shutdown");
}

/// A number from `/proc/self/status`, in KiB.
fn proc_status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// An upload of `MNODE_UPLOAD_TEST_MB` (default 200) MB through a real socket: the server's
/// memory must not grow with the file. Prints the throughput and the peak RSS growth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_of_200_mb_keeps_memory_flat() {
    const CEILING_MIB: u64 = 64;
    const CHUNK: usize = 1 << 20;
    let mb: usize = std::env::var("MNODE_UPLOAD_TEST_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let t = setup().await;
    let (base, cancel) = serve(&t).await;
    let alice = register_and_login(&t.router, "alice").await;

    // One chunk of pseudo-random bytes, made distinct per position by its first 8 bytes.
    let pattern = Bytes::from(noise(CHUNK, 50));
    let mut hasher = blake3::Hasher::new();
    for i in 0..mb {
        let mut c = pattern.to_vec();
        c[..8].copy_from_slice(&(i as u64).to_le_bytes());
        hasher.update(&c);
    }
    let expected = mnode_dag::cids::blob_cid(*hasher.finalize().as_bytes());
    let body = futures::stream::iter(0..mb).map(move |i| {
        let mut c = pattern.to_vec();
        c[..8].copy_from_slice(&(i as u64).to_le_bytes());
        Ok::<_, std::io::Error>(Bytes::from(c))
    });

    // Peak RSS from here on: reset the high-water mark, and sample too in case the kernel
    // does not allow the reset.
    let baseline = proc_status_kib("VmRSS");
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let sampling = tokio_util::sync::CancellationToken::new();
    let sampler = {
        let stop = sampling.clone();
        tokio::spawn(async move {
            let mut peak = 0;
            while !stop.is_cancelled() {
                peak = peak.max(proc_status_kib("VmRSS"));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            peak
        })
    };
    let start = Instant::now();
    let resp = reqwest::Client::new()
        .put(format!("{base}/api/v1/files?name=big.bin"))
        .bearer_auth(&alice)
        .header(header::CONTENT_LENGTH, (mb * CHUNK) as u64)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .expect("upload");
    let status = resp.status();
    let v: Value = resp.json().await.expect("json");
    let secs = start.elapsed().as_secs_f64();
    sampling.cancel();
    let sampled = sampler.await.expect("sampler");
    let hwm = if reset { proc_status_kib("VmHWM") } else { 0 };
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["cid"], expected.to_string());
    assert_eq!(v["size"], (mb * CHUNK) as u64);

    let peak = sampled.max(hwm);
    let delta_mib = peak.saturating_sub(baseline) / 1024;
    println!(
        "upload of {mb} MiB: {secs:.2} s, {:.1} MiB/s; peak RSS {} MiB, {delta_mib} MiB above \
         the baseline of {} MiB (VmHWM reset: {reset})",
        mb as f64 / secs,
        peak / 1024,
        baseline / 1024,
    );
    assert!(
        delta_mib < CEILING_MIB,
        "RSS grew by {delta_mib} MiB during a {mb} MiB upload (ceiling {CEILING_MIB} MiB)"
    );
    assert!(temp_uploads(&tmp_dir(&t.node.handle())).is_empty());
    cancel.cancel();
    t.node.shutdown().await.expect("shutdown");
}

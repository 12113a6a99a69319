//! The gateway and the API's auth, through the router without a socket.

mod support;

use std::collections::HashMap;

use axum::{
    Router,
    body::Body,
    http::{HeaderMap, StatusCode, header},
};
use bytes::Bytes;
use futures::StreamExt as _;
use mnode_dag::{
    Cid, Ipld, Keypair, Record,
    car::CarReader,
    cbor,
    cids::{self, LinkKind},
    model::{
        Link,
        core::{File, FileKind},
        social::Post,
    },
    walk,
};
use mnode_node::node::Node;
use support::{TOKEN, call, empty, req};
use tower::ServiceExt as _;

async fn setup() -> (Node, Router, tempfile::TempDir) {
    let t = support::setup().await;
    (t.node, t.router, t.dir)
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
    // Node info is public; the peer list is for admins only.
    for (auth, status, code) in [
        (None, StatusCode::UNAUTHORIZED, "unauthorized"),
        (Some("Bearer wrong"), StatusCode::UNAUTHORIZED, "bad_token"),
        (Some(TOKEN), StatusCode::UNAUTHORIZED, "bad_token"),
    ] {
        let mut r = req("GET", "/api/v1/peers");
        if let Some(a) = auth {
            r = r.header(header::AUTHORIZATION, a);
        }
        let (got, _, body) = call(&router, empty(r)).await;
        assert_eq!(got, status, "{auth:?}");
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["error"]["code"], code, "{auth:?}");
    }
    let r = req("GET", "/api/v1/peers").header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
    let (status, _, _) = call(&router, empty(r)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = call(&router, empty(req("GET", "/api/v1/node"))).await;
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

const CAR_N: &str = "application/vnd.ipld.car; version=1; order=dfs; dups=n";
const CAR_Y: &str = "application/vnd.ipld.car; version=1; order=dfs; dups=y";

/// The roots and blocks of a CAR, each block checked against its CID.
fn parse_car(body: &[u8]) -> (Vec<Cid>, Vec<(Cid, Vec<u8>)>) {
    let reader = CarReader::new(body).expect("a CAR v1 header");
    let roots = reader.roots().to_vec();
    let blocks = reader
        .collect::<Result<Vec<_>, _>>()
        .expect("every block matches its CID");
    (roots, blocks)
}

fn cids_of(blocks: &[(Cid, Vec<u8>)]) -> Vec<Cid> {
    blocks.iter().map(|(c, _)| *c).collect()
}

/// A GET of `uri` that must answer 200 with a CAR whose one root is `root`: its headers and
/// blocks.
async fn get_car(
    router: &Router,
    uri: &str,
    accept: Option<&str>,
    root: &Cid,
) -> (HeaderMap, Vec<(Cid, Vec<u8>)>) {
    let mut r = req("GET", uri);
    if let Some(a) = accept {
        r = r.header(header::ACCEPT, a);
    }
    let (status, headers, body) = call(router, empty(r)).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {body:?}");
    let (roots, blocks) = parse_car(&body);
    assert_eq!(roots, vec![*root], "{uri}");
    (headers, blocks)
}

/// A file, a `core.file` record naming it and a post whose media is that record.
struct Fixture {
    file: Vec<u8>,
    blob: Cid,
    file_record: Record,
    post: Record,
}

async fn fixture(node: &Node) -> Fixture {
    let h = node.handle();
    let key = Keypair::derive(2, "car");
    let file: Vec<u8> = (0..150_000u32).map(|i| (i % 253) as u8).collect();
    let added = h
        .blobs()
        .add_bytes(Bytes::from(file.clone()))
        .await
        .expect("add");
    let file_record = Record::create(&File {
        blob: Link(added.cid),
        name: "numbers.bin".into(),
        media_type: "application/octet-stream".into(),
        size: file.len() as u64,
        kind: FileKind::Other,
        sealed: None,
        unixfs: None,
    })
    .expect("file")
    .sign(&key)
    .expect("sign");
    let post = Record::create(&Post {
        text: "a post with a file".into(),
        media: vec![Link(file_record.cid())],
        ..Post::default()
    })
    .expect("post")
    .sign(&key)
    .expect("sign");
    h.publish(vec![file_record.clone(), post.clone()])
        .await
        .expect("publish");
    Fixture {
        file,
        blob: added.cid,
        file_record,
        post,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_car_of_a_record_follows_dag_scope_headers_and_etags() {
    let (node, router, _dir) = setup().await;
    let f = fixture(&node).await;
    let post = f.post.cid();
    let known: HashMap<Cid, Vec<u8>> = [
        (post, f.post.bytes().to_vec()),
        (f.file_record.cid(), f.file_record.bytes().to_vec()),
        (f.blob, f.file.clone()),
    ]
    .into_iter()
    .collect();
    // The reference depth-first walk of what the post reaches.
    let mut order = Vec::new();
    let missing = walk::walk(
        &[post],
        |c| Ok::<_, std::convert::Infallible>(known.get(c).cloned()),
        |c, _| {
            order.push(*c);
            Ok(())
        },
    )
    .expect("walk");
    assert!(missing.is_empty(), "{missing:?}");
    assert_eq!(order, vec![post, f.file_record.cid(), f.blob]);

    // dag-scope=all (the default): the post, the file record, the file as one raw block.
    let uri = format!("/ipfs/{post}?format=car");
    let (headers, blocks) = get_car(&router, &uri, None, &post).await;
    assert_eq!(cids_of(&blocks), order);
    for (cid, bytes) in &blocks {
        assert_eq!(bytes, &known[cid], "{cid}");
    }
    assert_eq!(headers[header::CONTENT_TYPE], CAR_N);
    assert_eq!(
        headers[header::CONTENT_DISPOSITION],
        format!("attachment; filename=\"{post}.car\"")
    );
    assert_eq!(
        headers[header::CACHE_CONTROL],
        "public, max-age=29030400, immutable"
    );
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    let all_tag = headers[header::ETAG].to_str().expect("ascii").to_owned();
    assert!(all_tag.contains(&post.to_string()), "{all_tag}");

    // The Accept header asks for the same CAR, with the same ETag.
    let (headers, accepted) = get_car(
        &router,
        &format!("/ipfs/{post}"),
        Some("application/vnd.ipld.car"),
        &post,
    )
    .await;
    assert_eq!(accepted, blocks);
    assert_eq!(headers[header::ETAG], all_tag.as_str());
    assert_eq!(headers[header::CONTENT_TYPE], CAR_N);
    // So does every explicit spelling of the defaults, in the query or in Accept.
    let uri =
        format!("/ipfs/{post}?format=car&dag-scope=all&car-version=1&car-order=dfs&car-dups=n");
    let (headers, explicit) = get_car(&router, &uri, None, &post).await;
    assert_eq!(explicit, blocks);
    assert_eq!(headers[header::ETAG], all_tag.as_str());
    let (_, unk) = get_car(
        &router,
        &format!("/ipfs/{post}"),
        Some("application/vnd.ipld.car; version=1; order=unk"),
        &post,
    )
    .await;
    assert_eq!(unk, blocks);

    // block and entity: a record is not UnixFS, so both are the root block alone; so is
    // entity-bytes, which means nothing for a record. Each has its own ETag.
    let mut tags = vec![all_tag.clone()];
    for query in ["dag-scope=block", "dag-scope=entity", "entity-bytes=0:*"] {
        let uri = format!("/ipfs/{post}?format=car&{query}");
        let (headers, blocks) = get_car(&router, &uri, None, &post).await;
        assert_eq!(cids_of(&blocks), vec![post], "{query}");
        assert_eq!(blocks[0].1, f.post.bytes(), "{query}");
        let tag = headers[header::ETAG].to_str().expect("ascii").to_owned();
        assert!(!tags.contains(&tag), "{query}: ETag {tag} is not its own");
        tags.push(tag);
    }

    // HEAD: the headers, no body.
    let uri = format!("/ipfs/{post}?format=car");
    let (status, headers, body) = call(&router, empty(req("HEAD", &uri))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], CAR_N);
    assert_eq!(headers[header::ETAG], all_tag.as_str());
    assert!(body.is_empty());

    // If-None-Match: the same ETag (strong or weak) is a 304, another scope's is not.
    for tag in [all_tag.clone(), format!("W/{all_tag}")] {
        let r = req("GET", &uri).header(header::IF_NONE_MATCH, tag);
        let (status, headers, body) = call(&router, empty(r)).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);
        assert_eq!(headers[header::ETAG], all_tag.as_str());
        assert!(body.is_empty());
    }
    let r = req("GET", &uri).header(header::IF_NONE_MATCH, tags[1].as_str());
    assert_eq!(call(&router, empty(r)).await.0, StatusCode::OK);
    // The raw block of the same CID has an ETag of its own too.
    let r = req("GET", &format!("/ipfs/{post}?format=raw"))
        .header(header::IF_NONE_MATCH, all_tag.as_str());
    assert_eq!(call(&router, empty(r)).await.0, StatusCode::OK);
    node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_car_of_a_file_is_one_block_and_entity_bytes_is_checked() {
    let (node, router, _dir) = setup().await;
    let f = fixture(&node).await;
    let blob = f.blob;
    for query in [
        "",
        "&dag-scope=block",
        "&dag-scope=entity",
        "&entity-bytes=0:*",
        "&entity-bytes=10:19",
        "&entity-bytes=-1024:*",
        "&entity-bytes=100:-1000",
        "&dag-scope=entity&entity-bytes=149999:200000",
    ] {
        let uri = format!("/ipfs/{blob}?format=car{query}");
        let (headers, blocks) = get_car(&router, &uri, None, &blob).await;
        assert_eq!(cids_of(&blocks), vec![blob], "{query}");
        assert_eq!(blocks[0].1, f.file, "{query}");
        assert_eq!(headers[header::CONTENT_TYPE], CAR_N);
    }
    // A range that starts past the end of the file is refused up front.
    let uri = format!("/ipfs/{blob}?format=car&entity-bytes=150000:*");
    let (status, _, body) = call(&router, empty(req("GET", &uri))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body:?}");
    // Without a format the same CID is still the file itself.
    let (status, headers, body) = call(&router, empty(req("GET", &format!("/ipfs/{blob}")))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/octet-stream");
    assert_eq!(&body[..], &f.file[..]);
    node.shutdown().await.expect("shutdown");
}

/// Stores a DAG-CBOR block that is not a record.
fn put_ipld(node: &Node, ipld: &Ipld) -> Cid {
    let bytes = cbor::encode(ipld).expect("encode");
    let cid = cids::record_cid(&bytes);
    node.handle()
        .repo()
        .store()
        .put_block(&cid, &bytes)
        .expect("put block");
    cid
}

fn map(entries: &[(&str, Ipld)]) -> Ipld {
    Ipld::Map(
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_car_dups_repeat_shared_blocks_and_a_missing_link_truncates_the_stream() {
    let (node, router, _dir) = setup().await;
    let file = b"shared file".to_vec();
    let blob = node
        .handle()
        .blobs()
        .add_bytes(Bytes::from(file.clone()))
        .await
        .expect("add")
        .cid;
    // root {a: mid, b: leaf, c: mid}; mid {x: leaf, y: file}.
    let leaf = put_ipld(&node, &map(&[("n", Ipld::Integer(1))]));
    let mid = put_ipld(
        &node,
        &map(&[("x", Ipld::Link(leaf)), ("y", Ipld::Link(blob))]),
    );
    let root = put_ipld(
        &node,
        &map(&[
            ("a", Ipld::Link(mid)),
            ("b", Ipld::Link(leaf)),
            ("c", Ipld::Link(mid)),
        ]),
    );

    // dups=n (the default): each block once, where the walk first meets it.
    let (headers, blocks) =
        get_car(&router, &format!("/ipfs/{root}?format=car"), None, &root).await;
    assert_eq!(cids_of(&blocks), vec![root, mid, leaf, blob]);
    assert_eq!(headers[header::CONTENT_TYPE], CAR_N);
    let n_tag = headers[header::ETAG].clone();

    // dups=y, from the query or from Accept: every block wherever the walk meets it.
    let dup_order = vec![root, mid, leaf, blob, leaf, mid, leaf, blob];
    let (headers, blocks) = get_car(
        &router,
        &format!("/ipfs/{root}?format=car&car-dups=y"),
        None,
        &root,
    )
    .await;
    assert_eq!(cids_of(&blocks), dup_order);
    assert_eq!(headers[header::CONTENT_TYPE], CAR_Y);
    assert_ne!(headers[header::ETAG], n_tag);
    let y_tag = headers[header::ETAG].clone();
    let (headers, blocks) = get_car(
        &router,
        &format!("/ipfs/{root}"),
        Some("application/vnd.ipld.car; version=1; order=dfs; dups=y"),
        &root,
    )
    .await;
    assert_eq!(cids_of(&blocks), dup_order);
    assert_eq!(headers[header::ETAG], y_tag);
    // The first variant in Accept that can be served wins; a query parameter beats Accept.
    let (headers, blocks) = get_car(
        &router,
        &format!("/ipfs/{root}"),
        Some(
            "application/vnd.ipld.car;order=foo, application/vnd.ipld.car;order=dfs;dups=y;q=0.5, \
             application/vnd.ipld.raw;q=0.1",
        ),
        &root,
    )
    .await;
    assert_eq!(cids_of(&blocks), dup_order);
    assert_eq!(headers[header::CONTENT_TYPE], CAR_Y);
    let (headers, blocks) = get_car(
        &router,
        &format!("/ipfs/{root}?format=car&car-dups=n"),
        Some("application/vnd.ipld.car; dups=y"),
        &root,
    )
    .await;
    assert_eq!(cids_of(&blocks), vec![root, mid, leaf, blob]);
    assert_eq!(headers[header::CONTENT_TYPE], CAR_N);
    let (_, blocks) = get_car(
        &router,
        &format!("/ipfs/{root}?format=car&car-dups=y&dag-scope=block"),
        None,
        &root,
    )
    .await;
    assert_eq!(cids_of(&blocks), vec![root]);

    // A linked block the node does not have: 200 (the root is here), the blocks before it,
    // then the body ends in error, so no client mistakes it for the whole DAG.
    let gone = cids::record_cid(b"nobody has this");
    let broken = put_ipld(
        &node,
        &map(&[("a", Ipld::Link(leaf)), ("b", Ipld::Link(gone))]),
    );
    let uri = format!("/ipfs/{broken}?format=car");
    let resp = router
        .clone()
        .oneshot(empty(req("GET", &uri)))
        .await
        .expect("response");
    assert_eq!(resp.status(), StatusCode::OK);
    let mut stream = resp.into_body().into_data_stream();
    let mut got = Vec::new();
    let mut failed = false;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => got.extend_from_slice(&c),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(
        failed,
        "the body of a CAR with a missing block must end in error"
    );
    let (roots, blocks) = parse_car(&got);
    assert_eq!(roots, vec![broken]);
    assert_eq!(cids_of(&blocks), vec![broken, leaf]);
    node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_car_refuses_bad_params_and_what_it_does_not_hold() {
    let (node, router, _dir) = setup().await;
    let f = fixture(&node).await;
    let post = f.post.cid();
    for query in [
        "format=car&car-version=2",
        "format=car&car-order=bfs",
        "format=car&car-dups=maybe",
        "format=car&dag-scope=everything",
        "format=car&entity-bytes=abc",
        "format=car&entity-bytes=10:5",
        "format=car&entity-bytes=5",
        "format=car&dag-scope=all&entity-bytes=0:10",
        "format=tar",
    ] {
        let (status, _, body) =
            call(&router, empty(req("GET", &format!("/ipfs/{post}?{query}")))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json error");
        assert_eq!(v["error"]["code"], "bad_request", "{query}");
    }
    for accept in [
        "application/vnd.ipld.car; version=2",
        "application/vnd.ipld.car; order=bfs",
        "application/vnd.ipld.car; dups=maybe",
    ] {
        let r = req("GET", &format!("/ipfs/{post}")).header(header::ACCEPT, accept);
        assert_eq!(
            call(&router, empty(r)).await.0,
            StatusCode::BAD_REQUEST,
            "{accept}"
        );
    }
    // With a wildcard after it, the CID is served as it is by default.
    let r = req("GET", &format!("/ipfs/{post}")).header(
        header::ACCEPT,
        "application/vnd.ipld.car; version=2, */*;q=0.1",
    );
    let (status, headers, _) = call(&router, empty(r)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/vnd.ipld.raw");
    let (status, _, _) = call(&router, empty(req("GET", "/ipfs/bafy-nope?format=car"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // What the node does not hold is a 404 before any CAR is begun, for GET and HEAD.
    let missing_record = cids::record_cid(b"nobody has this");
    let missing_file = cids::blob_cid_of(b"nobody has this file");
    assert_eq!(cids::link_kind(&missing_file), LinkKind::Blob);
    for cid in [missing_record, missing_file] {
        for method in ["GET", "HEAD"] {
            let uri = format!("/ipfs/{cid}?format=car");
            let (status, headers, _) = call(&router, empty(req(method, &uri))).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {cid}");
            assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        }
    }

    // The spec's probe, the empty identity CID: an empty block, a CAR of the header alone.
    let probe = "bafkqaaa";
    let (status, headers, body) = call(
        &router,
        empty(req("GET", &format!("/ipfs/{probe}?format=raw"))),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/vnd.ipld.raw");
    assert!(body.is_empty());
    let probe_cid = cids::parse(probe).expect("cid");
    let (_, blocks) = get_car(
        &router,
        &format!("/ipfs/{probe}?format=car"),
        None,
        &probe_cid,
    )
    .await;
    assert!(blocks.is_empty());
    node.shutdown().await.expect("shutdown");
}

/// Uploads `bytes` as the node's owner; the answer.
async fn upload(router: &Router, bytes: &[u8]) -> serde_json::Value {
    let r = req("PUT", "/api/v1/files")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::from(bytes.to_vec()))
        .expect("request");
    let (status, _, body) = call(router, r).await;
    assert_eq!(status, StatusCode::CREATED, "{body:?}");
    serde_json::from_slice(&body).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_serves_a_files_unixfs_view_from_its_blob() {
    let (node, router, _dir) = setup().await;
    let file = mnode_dag::testing::noise((3 << 20) + 12_345, 21);
    let answer = upload(&router, &file).await;
    let blob: Cid = answer["cid"].as_str().expect("cid").parse().expect("cid");
    let root: Cid = answer["unixfs"]
        .as_str()
        .expect("a public upload has a UnixFS CID")
        .parse()
        .expect("cid");
    assert_eq!(
        root,
        mnode_dag::unixfs::View::of(&file, Default::default()).root
    );
    assert_eq!(cids::link_kind(&root), LinkKind::UnixFs);
    assert_eq!(root.codec(), cids::DAG_PB);

    // The record names both.
    let id = answer["record"]["id"].as_str().expect("id");
    let (status, _, body) =
        call(&router, empty(req("GET", &format!("/api/v1/records/{id}")))).await;
    assert_eq!(status, StatusCode::OK);
    let rec: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(rec["record"]["body"]["blob"]["/"], blob.to_string());
    assert_eq!(rec["record"]["body"]["unixfs"]["/"], root.to_string());

    // The root as a block: a dag-pb node whose links are the 1 MiB leaves, each served as a
    // raw block out of the file.
    let (status, headers, node_bytes) = call(
        &router,
        empty(req("GET", &format!("/ipfs/{root}?format=raw"))),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/vnd.ipld.raw");
    cids::verify_block(&root, &node_bytes).expect("the root hashes to its CID");
    let leaves = mnode_dag::unixfs::links(&node_bytes).expect("a dag-pb node");
    assert_eq!(leaves.len(), 4);
    let mut joined = Vec::new();
    for (leaf, tsize) in &leaves {
        let (status, _, bytes) = call(
            &router,
            empty(req("GET", &format!("/ipfs/{leaf}?format=raw"))),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{leaf}");
        cids::verify_block(leaf, &bytes).expect("a leaf hashes to its CID");
        assert_eq!(bytes.len() as u64, *tsize);
        joined.extend_from_slice(&bytes);
    }
    assert!(joined == file, "the leaves are the file");

    // As a CAR: the root and its leaves, in order, each checked against its CID.
    let (_, blocks) = get_car(&router, &format!("/ipfs/{root}?format=car"), None, &root).await;
    let mut want = vec![root];
    want.extend(leaves.iter().map(|(c, _)| *c));
    assert_eq!(cids_of(&blocks), want);

    // Without a format the root is the file, with ranges.
    let (status, headers, body) = call(&router, empty(req("GET", &format!("/ipfs/{root}")))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_LENGTH], file.len().to_string());
    assert!(body[..] == file[..]);
    let r = req("GET", &format!("/ipfs/{root}")).header(header::RANGE, "bytes=1048570-1048589");
    let (status, _, body) = call(&router, empty(r)).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(&body[..], &file[1_048_570..1_048_590]);

    // The file by its BLAKE3 CID as one raw block: up to api.gateway_max_raw_block (16 MiB).
    let (status, _, body) = call(
        &router,
        empty(req("GET", &format!("/ipfs/{blob}?format=raw"))),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body[..] == file[..]);

    // A record's CAR leaves the view out: its blob link brings the same bytes.
    let rid: Cid = id.parse().expect("cid");
    let (_, blocks) = get_car(&router, &format!("/ipfs/{id}?format=car"), None, &rid).await;
    assert!(cids_of(&blocks).contains(&blob));
    assert!(!cids_of(&blocks).contains(&root));

    // Once the file is deleted and collected, the view goes with it.
    let h = node.handle();
    let store = h.repo().store();
    assert_eq!(store.view_of(&blob).expect("index"), Some(root));
    let r = req("DELETE", &format!("/api/v1/files/{blob}"))
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
    let (status, _, body) = call(&router, empty(r)).await;
    assert!(status.is_success(), "{status}: {body:?}");
    assert_eq!(store.view_of(&blob).expect("index"), None);
    assert_eq!(store.view_file(&root).expect("index"), None);
    for (leaf, _) in &leaves {
        assert_eq!(store.view_leaf(leaf).expect("index"), None);
    }
    let (status, _, _) = call(&router, empty(req("GET", &format!("/ipfs/{root}")))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_raw_answers_files_up_to_the_configured_size() {
    let t = support::setup_with(&["api.gateway_max_raw_block=1000000"]).await;
    let small = mnode_dag::testing::noise(999_999, 3);
    let large = mnode_dag::testing::noise(1_000_001, 4);
    for (bytes, ok) in [(&small, true), (&large, false)] {
        let answer = upload(&t.router, bytes).await;
        let blob = answer["cid"].as_str().expect("cid");
        let (status, _, body) = call(
            &t.router,
            empty(req("GET", &format!("/ipfs/{blob}?format=raw"))),
        )
        .await;
        if ok {
            assert_eq!(status, StatusCode::OK);
            assert!(body[..] == bytes[..]);
        } else {
            assert_eq!(status, StatusCode::NOT_ACCEPTABLE, "{body:?}");
            let text = String::from_utf8_lossy(&body);
            assert!(text.contains("api.gateway_max_raw_block"), "{text}");
        }
    }
    t.node.shutdown().await.expect("shutdown");
}

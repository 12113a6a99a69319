//! The OpenAPI document at `GET /api/v1/openapi.json`: it is served, it is OpenAPI 3.1, it
//! describes every `/api/v1` route the router has (and no route it lacks), its references
//! resolve, and record bodies come from the kind registry.

mod support;

use std::{collections::BTreeSet, time::Duration};

use axum::{
    Router,
    body::{Body, to_bytes},
    http::{Request, StatusCode, header},
};
use mnode_dag::registry;
use mnode_node::node::Node;
use serde_json::{Value, json};
use support::{TOKEN, TestApi, json_call, login, register_and_login, setup};
use tower::ServiceExt;

const WAIT: Duration = Duration::from_secs(30);

async fn document(router: &Router) -> Value {
    let req = Request::get("/api/v1/openapi.json")
        .body(Body::empty())
        .expect("request");
    let resp = router.clone().oneshot(req).await.expect("response");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE],
        "application/json",
        "the document is JSON"
    );
    let bytes = to_bytes(resp.into_body(), usize::MAX).await.expect("body");
    serde_json::from_slice(&bytes).expect("the document parses as JSON")
}

/// A node, its router, the document the router serves, and the node's folder.
async fn documented() -> (Node, Router, Value, tempfile::TempDir) {
    let TestApi { node, router, dir } = setup().await;
    let doc = document(&router).await;
    (node, router, doc, dir)
}

/// Every `(METHOD, path)` the document describes.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, _) in item.as_object().expect("path item") {
            if matches!(
                method.as_str(),
                "get" | "put" | "post" | "delete" | "patch" | "head" | "options" | "trace"
            ) {
                ops.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

/// Every `$ref` in `v`.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get("$ref") {
                out.push(r.clone());
            }
            o.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

/// `v`, or what it refers to if it is a `$ref` into `doc`.
fn deref<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v["$ref"].as_str() {
        Some(r) => doc
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("{r} does not resolve")),
        None => v,
    }
}

#[tokio::test]
async fn the_document_is_served_and_is_openapi_3_1() {
    let (node, _, doc, _dir) = documented().await;
    let version = doc["openapi"].as_str().expect("openapi version");
    assert!(version.starts_with("3.1."), "OpenAPI {version}");
    assert_eq!(doc["info"]["title"], "mnode");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        &doc,
        mnode_api::openapi(),
        "one document for the router and the crate"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"],
        json!({
            "type": "http",
            "scheme": "bearer",
            "description": doc["components"]["securitySchemes"]["bearer"]["description"],
        })
    );

    // A validator of OpenAPI 3.1 documents reads it.
    let spec = oas3::from_json(doc.to_string()).expect("an OpenAPI 3.1 document");
    let v = spec.validate_version().expect("a supported version");
    assert_eq!((v.major, v.minor), (3, 1));
    node.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn the_document_lists_the_routes_of_every_module() {
    let (node, _, doc, _dir) = documented().await;
    let ops = operations(&doc);
    let expected = [
        // node and records (routes.rs)
        ("GET", "/api/v1/node"),
        ("GET", "/api/v1/peers"),
        ("POST", "/api/v1/peers"),
        ("GET", "/api/v1/follows"),
        ("POST", "/api/v1/follows"),
        ("DELETE", "/api/v1/follows"),
        ("GET", "/api/v1/records"),
        ("POST", "/api/v1/records"),
        ("POST", "/api/v1/records/batch"),
        ("GET", "/api/v1/records/{cid}"),
        ("PUT", "/api/v1/records/{cid}"),
        ("DELETE", "/api/v1/records/{cid}"),
        ("GET", "/api/v1/records/{cid}/history"),
        ("GET", "/api/v1/openapi.json"),
        // accounts.rs
        ("GET", "/api/v1/accounts"),
        ("POST", "/api/v1/accounts"),
        ("GET", "/api/v1/accounts/{handle}"),
        ("DELETE", "/api/v1/accounts/{handle}"),
        ("GET", "/api/v1/sessions"),
        ("POST", "/api/v1/sessions"),
        ("DELETE", "/api/v1/sessions"),
        ("DELETE", "/api/v1/sessions/{id}"),
        ("GET", "/api/v1/me"),
        ("POST", "/api/v1/logout"),
        // files.rs
        ("PUT", "/api/v1/files"),
        ("POST", "/api/v1/files"),
        ("GET", "/api/v1/files/{cid}"),
        ("DELETE", "/api/v1/files/{cid}"),
        ("GET", "/api/v1/records/{cid}/file"),
        ("POST", "/api/v1/files/fetch"),
        ("POST", "/api/v1/files/export"),
        ("POST", "/api/v1/files/import"),
        ("POST", "/api/v1/files/import/batch"),
        ("POST", "/api/v1/files/commit"),
        // social.rs
        ("GET", "/api/v1/me/follows"),
        ("POST", "/api/v1/me/follows"),
        ("DELETE", "/api/v1/me/follows"),
        ("GET", "/api/v1/me/timeline"),
        ("GET", "/api/v1/feeds/{id}"),
        ("GET", "/api/v1/tags"),
        ("GET", "/api/v1/tags/{tag}"),
        ("GET", "/api/v1/query"),
        ("GET", "/api/v1/facts/{id}"),
        // forums.rs
        ("GET", "/api/v1/forums"),
        ("GET", "/api/v1/forums/{id}"),
        ("GET", "/api/v1/branches/{id}"),
        ("GET", "/api/v1/threads/{id}"),
        ("POST", "/api/v1/threads/{id}/replies"),
        ("POST", "/api/v1/threads/{id}/fork"),
        // events.rs
        ("GET", "/api/v1/events"),
        // pins.rs
        ("GET", "/api/v1/pins"),
        ("POST", "/api/v1/pins"),
        ("DELETE", "/api/v1/pins/{cid}"),
    ];
    for (method, path) in expected {
        assert!(
            ops.contains(&(method.to_owned(), path.to_owned())),
            "{method} {path} is not in the document"
        );
    }
    for (method, path) in &ops {
        assert!(
            path.starts_with("/api/v1/"),
            "{method} {path}: only /api/v1 is described"
        );
    }

    // Every operation has a summary, a declared tag and a unique id; path parameters are
    // declared.
    let tags: BTreeSet<&str> = doc["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter(|t| t["description"].is_string())
        .filter_map(|t| t["name"].as_str())
        .collect();
    let mut ids = BTreeSet::new();
    for (method, path) in &ops {
        let op = &doc["paths"][path][method.to_lowercase()];
        let summary = op["summary"].as_str().unwrap_or_default();
        assert!(
            !summary.is_empty() && !summary.contains('\n'),
            "{method} {path}: a one-line summary (the doc comment's first paragraph), not \
             {summary:?}"
        );
        let tag = op["tags"][0].as_str().unwrap_or_default();
        assert!(
            tags.contains(tag),
            "{method} {path}: tag {tag:?} is not declared"
        );
        let id = op["operationId"].as_str().expect("operationId");
        assert!(ids.insert(id.to_owned()), "operationId {id} twice");
        let declared: BTreeSet<&str> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "path")
            .filter_map(|p| p["name"].as_str())
            .collect();
        let in_path: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        assert_eq!(declared, in_path, "{method} {path}: path parameters");
    }
    node.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn responses_and_security_fit_the_handlers() {
    let (node, _, doc, _dir) = documented().await;
    let error = &doc["components"]["schemas"]["Error"];
    assert_eq!(error["required"], json!(["error"]), "{error}");
    let detail = deref(&doc, &error["properties"]["error"]);
    assert!(
        detail["properties"]["code"].is_object() && detail["properties"]["message"].is_object(),
        "{detail}"
    );
    let bearer = json!([{ "bearer": [] }]);
    for (method, path) in operations(&doc) {
        let op = &doc["paths"][&path][method.to_lowercase()];
        let responses = op["responses"].as_object().expect("responses");
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{method} {path}: no success answer"
        );
        for (status, response) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/Error",
                    "{method} {path} {status}: the error body"
                );
            }
        }
        // Routes that take a token say what a bad one gets; routes that need one say so.
        let security = &op["security"];
        if security.is_array() {
            assert!(responses.contains_key("401"), "{method} {path}: no 401");
        }
        if responses.contains_key("401")
            && responses["401"]["description"] == "No token, or a bad one"
        {
            assert_eq!(security, &bearer, "{method} {path}");
        }
        if responses.contains_key("403")
            && responses["403"]["description"] == "The caller is not an admin"
        {
            assert_eq!(security, &bearer, "{method} {path}");
            let description = op["description"].as_str().unwrap_or_default();
            assert!(
                description.contains("Admin only"),
                "{method} {path}: the description says it is admin only (a doc comment \
                 paragraph `Admin only.`)"
            );
        }
    }
    // Open routes have no security; optional-token routes say so.
    assert!(doc["paths"]["/api/v1/node"]["get"]["security"].is_null());
    assert_eq!(
        doc["paths"]["/api/v1/accounts"]["post"]["security"],
        json!([{}, { "bearer": [] }])
    );
    assert_eq!(doc["paths"]["/api/v1/records"]["post"]["security"], bearer);
    node.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn every_reference_resolves() {
    let (node, _, doc, _dir) = documented().await;
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 50, "the document uses its components");
    for r in all {
        assert!(r.starts_with("#/components/"), "{r} points outside");
        assert!(
            doc.pointer(r.trim_start_matches('#')).is_some(),
            "{r} does not resolve"
        );
    }
    node.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn records_are_typed_by_the_kind_registry() {
    let (node, _, doc, _dir) = documented().await;
    let schemas = &doc["components"]["schemas"];
    let names: Vec<&str> = registry::KINDS.iter().map(|k| k.name).collect();
    for name in &names {
        let schema = &schemas[format!("kind.{name}")];
        assert!(schema.is_object(), "kind.{name} is missing");
        assert!(schema.get("$defs").is_none(), "kind.{name}: $defs hoisted");
    }
    assert!(schemas["kind.art.release"]["properties"]["title"].is_object());

    let kind_refs = |body: &Value| -> Vec<String> {
        deref(&doc, body)["oneOf"]
            .as_array()
            .expect("oneOf")
            .iter()
            .map(|s| s["$ref"].as_str().expect("$ref").to_owned())
            .collect()
    };
    let expected: Vec<String> = names
        .iter()
        .map(|n| format!("#/components/schemas/kind.{n}"))
        .collect();
    // Every kind but key logs, which only the key rotation routes write.
    let made: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| *n != "core.keys")
        .collect();
    assert_eq!(made.len() + 1, names.len());
    for body in ["CreateRecord", "BatchRecord"] {
        let props = &schemas[body]["properties"];
        let kind = deref(&doc, &props["kind"]);
        assert_eq!(kind["enum"], json!(made), "{body}.kind");
        assert_eq!(kind_refs(&props["body"]), expected, "{body}.body");
    }
    let create = &doc["paths"]["/api/v1/records"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"];
    assert_eq!(create["$ref"], "#/components/schemas/CreateRecord");
    node.shutdown().await.expect("shutdown");
}

/// Sends `method uri` with the admin token (and `{}` for a JSON body); answers the status and
/// the body if it is JSON. Event streams are not read.
async fn probe(router: &Router, method: &str, uri: &str, json_body: bool) -> (StatusCode, Value) {
    let b = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
    let req = if json_body {
        b.header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{}"))
    } else {
        b.body(Body::empty())
    }
    .expect("request");
    let resp = tokio::time::timeout(WAIT, router.clone().oneshot(req))
        .await
        .unwrap_or_else(|_| panic!("{method} {uri} answers"))
        .expect("response");
    let status = resp.status();
    let json = resp.headers().get(header::CONTENT_TYPE)
        == Some(&"application/json".parse().expect("value"));
    if !json {
        return (status, Value::Null);
    }
    let bytes = tokio::time::timeout(WAIT, to_bytes(resp.into_body(), usize::MAX))
        .await
        .expect("body in time")
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// The router has no route for what answered this (its refusals say `no_route` and
/// `method_not_allowed`; a handler's 404 says what it did not find).
fn unrouted(status: StatusCode, body: &Value) -> bool {
    status == StatusCode::METHOD_NOT_ALLOWED
        || (status == StatusCode::NOT_FOUND && body["error"]["code"] == "no_route")
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let (node, router, doc, _dir) = documented().await;

    // Real values for the path parameters.
    let alice = register_and_login(&router, "alice").await;
    let _second = login(&router, "alice").await;
    let (_, sessions) = json_call(&router, "GET", "/api/v1/sessions", Some(&alice), None).await;
    let session = sessions["sessions"][0]["id"]
        .as_str()
        .expect("session id")
        .to_owned();
    let (_, me) = json_call(&router, "GET", "/api/v1/me", Some(TOKEN), None).await;
    let did = me["did"].as_str().expect("did").to_owned();
    let create = |kind: &'static str, body: Value| {
        let router = router.clone();
        async move {
            let (status, v) = json_call(
                &router,
                "POST",
                "/api/v1/records",
                Some(TOKEN),
                Some(json!({ "kind": kind, "body": body })),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "create {kind}: {v}");
            v["id"].as_str().expect("id").to_owned()
        }
    };
    let forum = create(
        "social.forum",
        json!({ "name": "Jazz", "tags": ["music", "music/jazz"] }),
    )
    .await;
    let branch = create(
        "social.branch",
        json!({ "forum": { "/": forum }, "name": "Listening" }),
    )
    .await;
    let thread = create(
        "social.thread",
        json!({ "branch": { "/": branch }, "title": "Bebop", "tags": ["music/jazz"] }),
    )
    .await;
    let (status, file) = json_call(
        &router,
        "PUT",
        "/api/v1/files?name=a.txt",
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{file}");
    let blob = file["cid"].as_str().expect("cid").to_owned();

    // The classifier tells a missing route from a handler's 404.
    let (status, body) = probe(&router, "GET", "/api/v1/no-such-route", false).await;
    assert!(unrouted(status, &body));
    let (status, body) = probe(&router, "PATCH", "/api/v1/node", false).await;
    assert!(unrouted(status, &body));
    let (status, body) = probe(&router, "GET", "/api/v1/accounts/nobody", false).await;
    assert!(!unrouted(status, &body), "{status} {body}");

    let ops = operations(&doc);
    assert!(ops.len() >= 50, "{} operations", ops.len());
    for (method, path) in ops {
        let id = if path.starts_with("/api/v1/feeds/") {
            did.clone()
        } else if path.starts_with("/api/v1/sessions/") {
            session.clone()
        } else if path.starts_with("/api/v1/forums/") {
            forum.clone()
        } else if path.starts_with("/api/v1/branches/") {
            branch.clone()
        } else {
            thread.clone()
        };
        let cid = if path.starts_with("/api/v1/files/") {
            &blob
        } else if path.starts_with("/api/v1/pins/") {
            &forum
        } else {
            &thread
        };
        let uri = path
            .replace("{cid}", cid)
            .replace("{id}", &id)
            .replace("{handle}", "alice")
            .replace("{tag}", "music/jazz");
        let op = &doc["paths"][&path][method.to_lowercase()];
        let json_body = op["requestBody"]["content"]["application/json"].is_object();
        let (status, body) = probe(&router, &method, &uri, json_body).await;
        assert!(
            !unrouted(status, &body),
            "{method} {uri} (documented as {path}) has no route: {status} {body}"
        );
        if status.is_client_error() && body.is_object() {
            assert!(
                body["error"]["code"].is_string(),
                "{method} {uri}: an error body of the documented form, not {body}"
            );
        }
    }
    node.shutdown().await.expect("shutdown");
}

/// The auth matrix over every operation the document says needs a token: none, malformed,
/// unknown, expired and revoked tokens are refused with the matching code (and change nothing:
/// the refusal comes before the handler runs); operations documented as admin-only refuse a
/// user's session.
#[tokio::test]
async fn every_operation_that_needs_a_token_refuses_bad_ones_and_users_where_admin_only() {
    let (node, router, doc, _dir) = documented().await;
    let user = register_and_login(&router, "alice").await;
    let revoked = login(&router, "alice").await;
    let (status, _) = json_call(&router, "POST", "/api/v1/logout", Some(&revoked), None).await;
    assert_eq!(status, StatusCode::OK);
    let repo = node.handle().repo().clone();
    let expired = tokio::task::spawn_blocking(move || repo.sessions().create("alice", 0))
        .await
        .expect("join")
        .expect("session")
        .0;
    let items_before = node.handle().repo().store().stats().expect("stats").items;
    let some_cid = "bafyreigdmqpykrgxyaxtlafqpqhzrb7qy2rh75nldvfd4tucqmqqme5yje";
    let mut checked = 0;
    let mut admin_only = 0;
    for (method, path) in operations(&doc) {
        let op = &doc["paths"][&path][method.to_lowercase()];
        let security = op["security"].as_array().cloned().unwrap_or_default();
        let needs_token = !security.is_empty()
            && !security
                .iter()
                .any(|s| s.as_object().is_some_and(|o| o.is_empty()));
        if !needs_token {
            continue;
        }
        let uri = path
            .replace("{cid}", some_cid)
            .replace("{id}", some_cid)
            .replace("{handle}", "alice")
            .replace("{tag}", "music");
        let body = (method != "GET").then(|| json!({}));
        for (token, code) in [
            (None, "unauthorized"),
            (Some("not hex"), "bad_token"),
            (Some(&"ab".repeat(32)[..]), "bad_token"),
            (Some(expired.as_str()), "session_expired"),
            (Some(revoked.as_str()), "bad_token"),
        ] {
            let (status, v) = json_call(&router, &method, &uri, token, body.clone()).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {uri} with {token:?}: {v}"
            );
            assert_eq!(
                v["error"]["code"], code,
                "{method} {uri} with {token:?}: {v}"
            );
        }
        let description = op["description"].as_str().unwrap_or_default();
        if description.contains("Admin only") && path != "/api/v1/sessions" {
            let (status, v) = json_call(&router, &method, &uri, Some(&user), body.clone()).await;
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{method} {uri} is admin only, yet a user got: {v}"
            );
            admin_only += 1;
        }
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} operations need a token");
    assert!(admin_only >= 10, "only {admin_only} admin-only operations");
    assert_eq!(
        node.handle().repo().store().stats().expect("stats").items,
        items_before,
        "refused requests changed nothing"
    );
    node.shutdown().await.expect("shutdown");
}

/// The schema `v` is, or refers to.
fn component<'a>(doc: &'a Value, v: &'a Value) -> (&'a str, &'a Value) {
    let name = v["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
        .unwrap_or_default();
    (name, deref(doc, v))
}

#[tokio::test]
async fn inputs_say_what_they_must_look_like_and_every_refusal_is_listed() {
    let (node, _, doc, _dir) = documented().await;
    let schemas = &doc["components"]["schemas"];

    // CIDs, handles, cursors and session ids have exact patterns; texts whose validity no
    // pattern can say (a did:key must be a point on the curve) name their format.
    for name in [
        "Cid",
        "FileCid",
        "BlockCid",
        "Handle",
        "Cursor",
        "SessionId",
        "Email",
    ] {
        let s = &schemas[name];
        assert!(
            s["pattern"].as_str().is_some_and(|p| p.starts_with('^')),
            "{name}: {s}"
        );
    }
    for (name, format) in [
        ("Did", "did-key"),
        ("TopicName", "mnode-topic"),
        ("FeedId", "mnode-feed-id"),
        ("PeerId", "peer-id"),
        ("Multiaddr", "multiaddr"),
        ("WidgetQuery", "widget-query"),
    ] {
        assert_eq!(schemas[name]["format"], format, "{name}");
        assert!(
            schemas[name]["description"].is_string(),
            "{name} says what it looks like"
        );
    }
    assert_eq!(
        schemas["dag.Link"]["properties"]["/"]["pattern"], schemas["Cid"]["pattern"],
        "a link in a record body is a CID"
    );

    let param = |path: &str, method: &str, name: &str| -> &str {
        let p = doc["paths"][path][method]["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{method} {path} has no {name}"));
        component(&doc, &p["schema"]).0
    };
    assert_eq!(param("/api/v1/records/{cid}", "get", "cid"), "Cid");
    assert_eq!(param("/api/v1/files/{cid}", "get", "cid"), "FileCid");
    assert_eq!(param("/api/v1/dag/block/{cid}", "get", "cid"), "BlockCid");
    assert_eq!(param("/api/v1/feeds/{id}", "get", "id"), "FeedId");
    assert_eq!(
        param("/api/v1/accounts/{handle}", "get", "handle"),
        "Handle"
    );
    assert_eq!(param("/api/v1/records", "get", "author"), "Did");
    assert_eq!(param("/api/v1/records", "get", "cursor"), "Cursor");
    assert_eq!(param("/api/v1/events", "get", "topic"), "TopicName");
    let body = |path: &str, method: &str, field: &str| -> &str {
        let op = &doc["paths"][path][method];
        let (_, body) = component(
            &doc,
            &op["requestBody"]["content"]["application/json"]["schema"],
        );
        component(&doc, &body["properties"][field]).0
    };
    assert_eq!(body("/api/v1/follows", "post", "topic"), "TopicName");
    assert_eq!(body("/api/v1/me/mutes", "post", "author"), "Did");
    assert_eq!(body("/api/v1/peers", "post", "addr"), "Multiaddr");
    assert_eq!(body("/api/v1/accounts", "post", "handle"), "Handle");
    assert_eq!(body("/api/v1/pins", "post", "cid"), "Cid");

    for (method, path) in operations(&doc) {
        let op = &doc["paths"][&path][method.to_lowercase()];
        let responses = &op["responses"];
        // Every path parameter says what it must look like.
        for p in op["parameters"].as_array().into_iter().flatten() {
            if p["in"] == "path" {
                let (_, s) = component(&doc, &p["schema"]);
                assert!(
                    s["pattern"].is_string() || s["format"].is_string(),
                    "{method} {path}: parameter {} has neither a pattern nor a format",
                    p["name"]
                );
            }
        }
        // A JSON body can be refused before the handler runs: not JSON, not sent as JSON, not
        // of its schema.
        if op["requestBody"]["content"]["application/json"].is_object() {
            for status in ["400", "415", "422"] {
                assert!(
                    responses[status].is_object(),
                    "{method} {path}: no {status}"
                );
            }
        }
        if op["parameters"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["in"] == "query" || p["in"] == "path"))
        {
            assert!(responses["400"].is_object(), "{method} {path}: no 400");
        }
    }
    // Unsigned integers go up to u64::MAX, not to int64's bound.
    let limit = doc["paths"]["/api/v1/records"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "until")
        .unwrap();
    assert_eq!(limit["schema"]["maximum"], json!(u64::MAX), "{limit}");
    node.shutdown().await.expect("shutdown");
}

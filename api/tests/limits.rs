//! Rate limits (`api.limits`): budgets of writes, uploads and login attempts per account and per
//! address, answered 429 with `Retry-After`; login throttling; bounded memory.

mod support;

use std::{net::SocketAddr, time::Duration};

use axum::{
    Router,
    body::Body,
    extract::ConnectInfo,
    http::{HeaderMap, Request, StatusCode, header},
};
use serde_json::{Value, json};
use support::*;

/// Every budget off, then `settings` (`key=value` under `api.limits.`).
fn limits(settings: &[&str]) -> Vec<String> {
    // Later settings win: flags apply in order.
    [
        "writes_per_account=0",
        "writes_per_address=0",
        "uploads_per_account=0",
        "uploads_per_address=0",
        "logins_per_account=0",
        "logins_per_address=0",
        "login_free_failures_per_account=0",
        "login_free_failures_per_address=0",
    ]
    .iter()
    .chain(settings)
    .map(|s| format!("api.limits.{s}"))
    .collect()
}

async fn setup_limits(settings: &[&str]) -> TestApi {
    let all = limits(settings);
    setup_with(&all.iter().map(String::as_str).collect::<Vec<_>>()).await
}

/// A request from `from` (the TCP peer a served router would see), or from no address.
fn request(
    method: &str,
    uri: &str,
    token: Option<&str>,
    from: Option<&str>,
    body: Option<Value>,
) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let mut req = match body {
        Some(v) => b
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(v.to_string())),
        None => b.body(Body::empty()),
    }
    .expect("request");
    if let Some(ip) = from {
        let addr: SocketAddr = format!("{ip}:40000").parse().expect("addr");
        req.extensions_mut().insert(ConnectInfo(addr));
    }
    req
}

async fn send(router: &Router, req: Request<Body>) -> (StatusCode, HeaderMap, Value) {
    let (status, headers, bytes) = call(router, req).await;
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn post(
    router: &Router,
    token: &str,
    from: Option<&str>,
    text: &str,
) -> (StatusCode, HeaderMap, Value) {
    let body = json!({ "kind": "social.post", "body": { "text": text } });
    send(
        router,
        request("POST", "/api/v1/records", Some(token), from, Some(body)),
    )
    .await
}

async fn login_as(
    router: &Router,
    handle: &str,
    password: &str,
    from: Option<&str>,
) -> (StatusCode, HeaderMap, Value) {
    let body = json!({ "login": handle, "password": password });
    send(
        router,
        request("POST", "/api/v1/sessions", None, from, Some(body)),
    )
    .await
}

/// Asserts a 429 as the limits answer it, naming `what`; answers its `Retry-After`.
fn assert_limited((status, headers, v): &(StatusCode, HeaderMap, Value), what: &str) -> u64 {
    assert_eq!(*status, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(v["error"]["code"], "rate_limited", "{v}");
    let message = v["error"]["message"].as_str().expect("message");
    assert!(
        message.starts_with(&format!("Too many {what}; try again in ")),
        "{message}"
    );
    let secs: u64 = headers
        .get(header::RETRY_AFTER)
        .expect("Retry-After")
        .to_str()
        .expect("ascii")
        .parse()
        .expect("whole seconds");
    assert!(secs >= 1, "{secs}");
    assert!(
        message.ends_with(&format!(" {}.", mnode_api::limits::wait_text(secs))),
        "{message} vs {secs}"
    );
    secs
}

fn items(t: &TestApi) -> u64 {
    t.node.handle().repo().store().stats().expect("stats").items
}

#[tokio::test]
async fn writes_over_the_account_budget_get_429_and_change_nothing_until_it_refills() {
    // Three writes per 6 s: one comes back every 2 s.
    let t = setup_limits(&["writes_per_account=3", "period_secs=6"]).await;
    let alice = register_and_login(&t.router, "alice").await;
    let bob = register_and_login(&t.router, "bob").await;
    for i in 0..3 {
        let (status, _, v) = post(&t.router, &alice, None, &format!("post {i}")).await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    let before = items(&t);
    let refused = post(&t.router, &alice, None, "one too many").await;
    let wait = assert_limited(&refused, "writes from this account");
    assert!((1..=2).contains(&wait), "{wait}");
    assert_eq!(items(&t), before, "a refused write stored nothing");
    // Other accounts and the admin token have budgets of their own.
    assert_eq!(post(&t.router, &bob, None, "bob's").await.0, StatusCode::OK);
    for i in 0..5 {
        assert_eq!(
            post(&t.router, TOKEN, None, &format!("admin {i}")).await.0,
            StatusCode::OK
        );
    }
    // Deletes and updates are writes too.
    let (status, _, _) = send(
        &t.router,
        request(
            "DELETE",
            "/api/v1/records/bafyfake",
            Some(&alice),
            None,
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    tokio::time::sleep(Duration::from_secs(wait) + Duration::from_millis(50)).await;
    let (status, _, v) = post(&t.router, &alice, None, "after the wait").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // Only as many as came back: soon it is refused again.
    let mut refused = None;
    for i in 0..4 {
        let answer = post(&t.router, &alice, None, &format!("again {i}")).await;
        if answer.0 == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(answer);
            break;
        }
    }
    assert_limited(&refused.expect("refused again"), "writes from this account");
}

#[tokio::test]
async fn each_address_has_its_own_budget_whoever_writes() {
    let t = setup_limits(&["writes_per_address=2", "period_secs=60"]).await;
    // Registering is a write, from no address (in-process): the `unknown` address.
    let alice = register_and_login(&t.router, "alice").await;
    let bob = register_and_login(&t.router, "bob").await;
    let a = Some("192.0.2.1");
    assert_eq!(post(&t.router, &alice, a, "1").await.0, StatusCode::OK);
    assert_eq!(post(&t.router, &bob, a, "2").await.0, StatusCode::OK);
    let wait = assert_limited(
        &post(&t.router, &alice, a, "3").await,
        "writes from this address",
    );
    assert_eq!(wait, 30, "one write comes back every 30 s");
    assert_limited(
        &post(&t.router, &bob, a, "3").await,
        "writes from this address",
    );
    // Unauthenticated writes spend the address's budget too (before their 401).
    let anon = send(
        &t.router,
        request("POST", "/api/v1/records", None, a, Some(json!({}))),
    )
    .await;
    assert_limited(&anon, "writes from this address");
    // Another address, an IPv6 /64 and a v4-mapped address are other clients.
    assert_eq!(
        post(&t.router, &alice, Some("198.51.100.7"), "4").await.0,
        StatusCode::OK
    );
    assert_eq!(
        post(&t.router, &alice, Some("[2001:db8::1]"), "5").await.0,
        StatusCode::OK
    );
    assert_eq!(
        post(&t.router, &alice, Some("[2001:db8::2]"), "6").await.0,
        StatusCode::OK
    );
    assert_limited(
        &post(&t.router, &alice, Some("[2001:db8::3]"), "7").await,
        "writes from this address",
    );
    assert_limited(
        &post(&t.router, &alice, Some("[::ffff:192.0.2.1]"), "8").await,
        "writes from this address",
    );
    // Reads are never limited.
    let (status, _, _) = send(
        &t.router,
        request("GET", "/api/v1/records", Some(&alice), a, None),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn x_forwarded_for_counts_only_from_a_trusted_proxy() {
    let t = setup_limits(&["writes_per_address=1", "trusted_proxies=[10.0.0.1]"]).await;
    let alice = register_and_login(&t.router, "alice").await;
    let via = |ip: &str, forwarded: &str, text: &str| {
        let mut req = request(
            "POST",
            "/api/v1/records",
            Some(&alice),
            Some(ip),
            Some(json!({ "kind": "social.post", "body": { "text": text } })),
        );
        req.headers_mut()
            .insert("x-forwarded-for", forwarded.parse().expect("header"));
        req
    };
    // Behind the proxy, two clients.
    assert_eq!(
        send(&t.router, via("10.0.0.1", "203.0.113.1", "a")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        send(&t.router, via("10.0.0.1", "203.0.113.2", "b")).await.0,
        StatusCode::OK
    );
    assert_limited(
        &send(&t.router, via("10.0.0.1", "203.0.113.1", "c")).await,
        "writes from this address",
    );
    // A peer that is no proxy of ours cannot pick its address.
    assert_eq!(
        send(&t.router, via("192.0.2.9", "203.0.113.3", "d"))
            .await
            .0,
        StatusCode::OK
    );
    assert_limited(
        &send(&t.router, via("192.0.2.9", "203.0.113.4", "e")).await,
        "writes from this address",
    );
}

#[tokio::test]
async fn uploads_have_a_budget_of_their_own() {
    let t = setup_limits(&["uploads_per_account=1", "writes_per_account=5"]).await;
    let alice = register_and_login(&t.router, "alice").await;
    let upload = |name: &str| {
        let mut req = request(
            "PUT",
            &format!("/api/v1/files?name={name}"),
            Some(&alice),
            None,
            None,
        );
        *req.body_mut() = Body::from(format!("the text of {name}"));
        req
    };
    let (status, _, v) = send(&t.router, upload("a.txt")).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_limited(
        &send(&t.router, upload("b.txt")).await,
        "uploads from this account",
    );
    // Writes are another budget.
    assert_eq!(
        post(&t.router, &alice, None, "still writing").await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn password_guessing_is_throttled_even_for_the_right_password_and_a_success_resets() {
    let t = setup_limits(&["login_free_failures_per_account=2", "login_max_wait_secs=1"]).await;
    register_and_login(&t.router, "alice").await;
    register_and_login(&t.router, "bob").await;
    for _ in 0..2 {
        let (status, _, v) = login_as(&t.router, "alice", "wrong guess", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{v}");
    }
    // Now even the right password waits: the answer tells nothing about it.
    let throttled = login_as(&t.router, "alice", PASSWORD, None).await;
    assert_eq!(
        assert_limited(&throttled, "failed logins at this account"),
        1
    );
    let throttled = login_as(&t.router, "ALICE ", "another guess", None).await;
    assert_limited(&throttled, "failed logins at this account");
    // Another account is not affected.
    assert_eq!(
        login_as(&t.router, "bob", PASSWORD, None).await.0,
        StatusCode::CREATED
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _, v) = login_as(&t.router, "alice", PASSWORD, None).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    // The success cleared the count: two free failures again.
    for _ in 0..2 {
        assert_eq!(
            login_as(&t.router, "alice", "wrong", None).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_limited(
        &login_as(&t.router, "alice", "wrong", None).await,
        "failed logins at this account",
    );
}

#[tokio::test]
async fn failed_logins_from_one_address_wait_whichever_account_they_try() {
    let t = setup_limits(&[
        "login_free_failures_per_address=2",
        "login_max_wait_secs=900",
    ])
    .await;
    register_and_login(&t.router, "alice").await;
    let a = Some("192.0.2.1");
    assert_eq!(
        login_as(&t.router, "alice", "guess", a).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _, v) = login_as(&t.router, "nobody", "guess", a).await;
    assert!(matches!(status.as_u16(), 401 | 404), "{v}");
    assert_limited(
        &login_as(&t.router, "carol", "guess", a).await,
        "failed logins from this address",
    );
    assert_limited(
        &login_as(&t.router, "alice", PASSWORD, a).await,
        "failed logins from this address",
    );
    // Elsewhere, alice logs in.
    assert_eq!(
        login_as(&t.router, "alice", PASSWORD, Some("198.51.100.1"))
            .await
            .0,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn login_attempts_have_a_budget_whatever_their_outcome() {
    let t = setup_limits(&["logins_per_account=2", "period_secs=600"]).await;
    register_and_login(&t.router, "alice").await;
    // register_and_login logged in once; one attempt is left.
    assert_eq!(
        login_as(&t.router, "alice", PASSWORD, None).await.0,
        StatusCode::CREATED
    );
    let wait = assert_limited(
        &login_as(&t.router, "alice", PASSWORD, None).await,
        "login attempts at this account",
    );
    assert_eq!(wait, 300);
}

#[tokio::test]
async fn with_every_limit_at_zero_nothing_is_refused() {
    let t = setup_limits(&[]).await;
    let alice = register_and_login(&t.router, "alice").await;
    for i in 0..150 {
        let (status, _, v) = post(&t.router, &alice, Some("192.0.2.1"), &format!("post {i}")).await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    for _ in 0..12 {
        assert_eq!(
            login_as(&t.router, "alice", "wrong", Some("192.0.2.1"))
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login_as(&t.router, "alice", PASSWORD, Some("192.0.2.1"))
            .await
            .0,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn the_defaults_let_a_busy_person_through() {
    let t = setup().await;
    let alice = register_and_login(&t.router, "alice").await;
    for i in 0..200 {
        let (status, _, v) = post(&t.router, &alice, None, &format!("post {i}")).await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    // A few mistyped passwords are free.
    for _ in 0..4 {
        assert_eq!(
            login_as(&t.router, "alice", "typo", None).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login_as(&t.router, "alice", PASSWORD, None).await.0,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn the_keyed_state_stays_bounded_under_many_addresses() {
    let t = setup_limits(&["writes_per_address=100", "max_tracked=50"]).await;
    let state = mnode_api::ApiState::new(t.node.handle(), TOKEN);
    let router = mnode_api::router(state.clone());
    for i in 0..400u32 {
        let ip = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
        // No token: refused with 401 after spending the address's budget.
        let (status, _, v) = send(
            &router,
            request("POST", "/api/v1/follows", None, Some(&ip), Some(json!({}))),
        )
        .await;
        assert_ne!(status, StatusCode::TOO_MANY_REQUESTS, "{v}");
        assert!(
            state.limits().tracked() <= 51,
            "{} keys",
            state.limits().tracked()
        );
    }
}

#[test]
fn the_429_is_documented_with_retry_after_on_every_write() {
    let doc = mnode_api::openapi();
    let paths = doc["paths"].as_object().expect("paths");
    let mut documented = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("item") {
            let r429 = &op["responses"]["429"];
            if matches!(method.as_str(), "post" | "put" | "patch" | "delete") {
                assert_eq!(
                    r429["headers"]["Retry-After"]["schema"]["type"], "integer",
                    "{method} {path}: {r429}"
                );
                assert!(
                    r429["content"]["application/json"]["schema"]["$ref"]
                        .as_str()
                        .is_some_and(|r| r.ends_with("/Error")),
                    "{method} {path}: {r429}"
                );
                documented += 1;
            } else if matches!(method.as_str(), "get" | "head") {
                assert!(r429.is_null(), "{method} {path} never answers 429");
            }
        }
    }
    assert!(documented > 20, "{documented}");
    assert!(!doc["paths"]["/api/v1/sessions"]["post"]["responses"]["429"].is_null());
}

#[tokio::test]
async fn a_served_router_sees_the_tcp_peer_and_trusts_only_its_proxies() {
    let t = setup_limits(&["writes_per_address=1", "trusted_proxies=[127.0.0.1]"]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/api/v1/follows",
        listener.local_addr().expect("addr")
    );
    let cancel = tokio_util::sync::CancellationToken::new();
    tokio::spawn(mnode_api::serve(listener, t.router.clone(), cancel.clone()));
    let http = reqwest::Client::new();
    let from = |client: &'static str| {
        http.post(&url)
            .header("x-forwarded-for", client)
            .json(&json!({}))
            .send()
    };
    // The peer is 127.0.0.1, a trusted proxy: the clients it names have a budget each.
    let first = from("203.0.113.1").await.expect("send");
    assert_ne!(first.status(), StatusCode::TOO_MANY_REQUESTS);
    let other = from("203.0.113.2").await.expect("send");
    assert_ne!(other.status(), StatusCode::TOO_MANY_REQUESTS);
    let again = from("203.0.113.1").await.expect("send");
    assert_eq!(again.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = again.headers()[header::RETRY_AFTER]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert_eq!(wait, 60);
    let v: Value = again.json().await.expect("json");
    assert_eq!(v["error"]["code"], "rate_limited");
    cancel.cancel();
}

//! Key rotation and recovery through the API: an author rotates their key and keeps editing
//! what they published, a node following them takes the new versions, a version the old key
//! signs after the rotation does not count, and the recovery key shown at sign-up takes the
//! account back.

mod support;

use std::time::Duration;

use axum::{Router, http::StatusCode};
use mnode_dag::{Did, Record};
use serde_json::{Value, json};
use support::{TOKEN, json_call, login, register_and_login, setup};

async fn call(
    router: &Router,
    method: &str,
    uri: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    json_call(router, method, uri, Some(token), body).await
}

async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(t) = f().await {
            return t;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Registers `handle` and logs in: the session token and the recovery key shown once.
async fn sign_up(router: &Router, handle: &str) -> (String, String) {
    let (status, v) = json_call(
        router,
        "POST",
        "/api/v1/accounts",
        None,
        Some(json!({
            "handle": handle, "email": format!("{handle}@example.org"), "password": support::PASSWORD,
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["did"], v["key"], "a new account signs with its first key");
    let recovery = v["recovery_key"].as_str().expect("recovery key").to_owned();
    assert!(recovery.starts_with("mnode-recovery-1:"), "{recovery}");
    // Shown once: the account never shows it again.
    let token = login(router, handle).await;
    let (_, me) = call(router, "GET", "/api/v1/me", &token, None).await;
    assert!(me.get("recovery_key").is_none(), "{me}");
    assert!(!me.to_string().contains(&recovery));
    (token, recovery)
}

async fn body_text(router: &Router, id: &str) -> Option<String> {
    let (status, v) = json_call(router, "GET", &format!("/api/v1/records/{id}"), None, None).await;
    (status == StatusCode::OK).then(|| v["record"]["body"]["text"].as_str().map(str::to_owned))?
}

async fn connect(from: &Router, to: &Router) {
    let (_, info) = json_call(to, "GET", "/api/v1/node", Some(TOKEN), None).await;
    let addr = info["addrs"]
        .as_array()
        .expect("addrs")
        .iter()
        .filter_map(Value::as_str)
        .find(|a| a.contains("/tcp/"))
        .expect("a TCP address")
        .to_owned();
    let (status, v) = json_call(
        from,
        "POST",
        "/api/v1/peers",
        Some(TOKEN),
        Some(json!({ "addr": addr })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_follow_an_author_through_a_rotation_and_a_recovery() {
    let a = setup().await;
    let b = setup().await;
    let (ra, rb) = (&a.router, &b.router);
    let (ana, recovery) = sign_up(ra, "ana").await;
    let ben = register_and_login(rb, "ben").await;
    connect(ra, rb).await;
    let (_, me) = call(ra, "GET", "/api/v1/me", &ana, None).await;
    let identity = me["did"].as_str().unwrap().to_owned();
    let k0: Did = identity.parse().unwrap();

    let post = support::create(ra, &ana, "social.post", json!({ "text": "v1" })).await;
    let (status, v) = call(
        rb,
        "POST",
        "/api/v1/me/follows",
        &ben,
        Some(json!({ "topic": identity })),
    )
    .await;
    assert!(status.is_success(), "{v}");
    eventually("B holds ana's post", || async {
        (body_text(rb, &post).await.as_deref() == Some("v1")).then_some(())
    })
    .await;

    // Ana rotates on A: same identity, a new key; her recovery key was made at sign-up.
    let (status, rotated) = call(ra, "POST", "/api/v1/accounts/ana/keys/rotate", &ana, None).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_eq!(rotated["identity"], identity.as_str());
    assert_ne!(rotated["key"], identity.as_str());
    assert!(rotated["recovery_key"].is_null(), "{rotated}");
    let (_, me) = call(ra, "GET", "/api/v1/me", &ana, None).await;
    assert_eq!(
        (&me["did"], &me["key"]),
        (&json!(identity), &rotated["key"])
    );

    // She keeps editing her post with the new key; B, following her, takes the new version.
    let uri = format!("/api/v1/records/{post}");
    let (status, v) = call(
        ra,
        "PUT",
        &uri,
        &ana,
        Some(json!({ "body": { "text": "v2" } })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let v2 = v["cid"].as_str().unwrap().to_owned();
    eventually("B shows the version the new key signed", || async {
        (body_text(rb, &post).await.as_deref() == Some("v2")).then_some(())
    })
    .await;
    let (_, v) = json_call(rb, "GET", &uri, None, None).await;
    assert_eq!(
        v["record"]["body"]["$signer"]["identity"],
        identity.as_str(),
        "{v}"
    );

    // A version the old key signs after the rotation is refused on B: it follows a version
    // relying on the newer grant (K7) …
    let old = a.node.handle().repo().keystore().get(&k0).unwrap();
    let head: Record = b
        .node
        .handle()
        .repo()
        .store()
        .record(&v2.parse().unwrap())
        .unwrap()
        .unwrap();
    let forged = head
        .update_body(mnode_dag::json::from_json_value(&json!({ "text": "forged" })).unwrap())
        .sign(&old)
        .unwrap();
    assert!(b.node.handle().publish(vec![forged.clone()]).await.is_err());
    assert!(
        b.node
            .handle()
            .repo()
            .store()
            .record(&forged.cid())
            .unwrap()
            .is_none()
    );
    // … and one forking from the version the old key signed before does not count.
    let v1 = b
        .node
        .handle()
        .repo()
        .store()
        .record(&head.envelope().prev.unwrap())
        .unwrap()
        .unwrap();
    let late = v1
        .update_body(mnode_dag::json::from_json_value(&json!({ "text": "late" })).unwrap())
        .sign(&old)
        .unwrap();
    let _ = b.node.handle().publish(vec![late]).await;
    assert_eq!(body_text(rb, &post).await.as_deref(), Some("v2"));

    // A wrong recovery key is refused and changes nothing.
    let (_, before) = call(ra, "GET", "/api/v1/me", &ana, None).await;
    let wrong = mnode_node::accounts::recovery_text(&mnode_dag::Keypair::generate());
    let (status, v) = call(
        ra,
        "POST",
        "/api/v1/accounts/ana/keys/recover",
        &ana,
        Some(json!({ "recovery_key": wrong })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["code"], "wrong_recovery_key");
    let (_, after) = call(ra, "GET", "/api/v1/me", &ana, None).await;
    assert_eq!(before, after);

    // The recovery key shown at sign-up takes the account back; a fresh one comes once.
    let (status, recovered) = call(
        ra,
        "POST",
        "/api/v1/accounts/ana/keys/recover",
        &ana,
        Some(json!({ "recovery_key": recovery })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{recovered}");
    assert_eq!(recovered["identity"], identity.as_str());
    assert_ne!(recovered["key"], rotated["key"]);
    let fresh = recovered["recovery_key"].as_str().unwrap();
    assert_ne!(fresh, recovery);
    let (status, v) = call(
        ra,
        "POST",
        "/api/v1/accounts/ana/keys/recover",
        &ana,
        Some(json!({ "recovery_key": recovery })),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a spent recovery key: {v}"
    );
    let (status, v) = call(
        ra,
        "PUT",
        &uri,
        &ana,
        Some(json!({ "body": { "text": "v3" } })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(body_text(ra, &post).await.as_deref(), Some("v3"));
    a.node.shutdown().await.expect("shutdown a");
    b.node.shutdown().await.expect("shutdown b");
}

/// A recovery's key log version is signed by the recovery key, so it travels on that key's
/// feed, not the identity's: a follower of the identity gets it only once the store indexes a
/// key log's versions under its identity's feed too (`Store::put_batch_with`, sync index) and
/// gossip accepts them there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_a_recovery_reaches_a_follower() {
    let a = setup().await;
    let b = setup().await;
    let (ra, rb) = (&a.router, &b.router);
    let (ana, recovery) = sign_up(ra, "ana").await;
    let ben = register_and_login(rb, "ben").await;
    connect(ra, rb).await;
    let identity = support::did_of(ra, &ana).await;
    let post = support::create(ra, &ana, "social.post", json!({ "text": "v1" })).await;
    let (status, v) = call(
        rb,
        "POST",
        "/api/v1/me/follows",
        &ben,
        Some(json!({ "topic": identity })),
    )
    .await;
    assert!(status.is_success(), "{v}");
    eventually("B holds ana's post", || async {
        (body_text(rb, &post).await.as_deref() == Some("v1")).then_some(())
    })
    .await;
    let (status, v) = call(
        ra,
        "POST",
        "/api/v1/accounts/ana/keys/recover",
        &ana,
        Some(json!({ "recovery_key": recovery })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let uri = format!("/api/v1/records/{post}");
    let (status, v) = call(
        ra,
        "PUT",
        &uri,
        &ana,
        Some(json!({ "body": { "text": "v2" } })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    eventually("B shows the version the recovered key signed", || async {
        (body_text(rb, &post).await.as_deref() == Some("v2")).then_some(())
    })
    .await;
    a.node.shutdown().await.expect("shutdown a");
    b.node.shutdown().await.expect("shutdown b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_changes_refused_change_nothing() {
    let t = setup().await;
    let r = &t.router;
    let (ana, _) = sign_up(r, "ana").await;
    let (bob, _) = sign_up(r, "bob").await;
    let (_, before) = call(r, "GET", "/api/v1/accounts/ana", TOKEN, None).await;

    let cases = [
        (
            "/api/v1/accounts/ana/keys/rotate",
            &bob,
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            "/api/v1/accounts/ana/keys/recover",
            &bob,
            Some(json!({ "recovery_key": format!("mnode-recovery-1:{}", "0".repeat(64)) })),
            StatusCode::FORBIDDEN,
        ),
        (
            "/api/v1/accounts/ana/keys/recover",
            &ana,
            Some(json!({ "recovery_key": "not a key" })),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/accounts/ana/keys/recover",
            &ana,
            Some(json!({ "recovery_key": format!("mnode-recovery-1:{}", "1".repeat(64)) })),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (uri, token, body, expected) in cases {
        let (status, v) = call(r, "POST", uri, token, body).await;
        assert_eq!(status, expected, "{uri}: {v}");
    }
    let (status, v) = call(
        r,
        "POST",
        "/api/v1/accounts/nobody/keys/rotate",
        TOKEN,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    let (_, after) = call(r, "GET", "/api/v1/accounts/ana", TOKEN, None).await;
    assert_eq!(before, after);
    t.node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_without_a_key_log_gets_one_at_its_first_rotation() {
    let t = setup().await;
    let r = &t.router;
    // An account made before key logs: none published for it.
    let node = t.node.handle();
    let old = node
        .repo()
        .accounts()
        .create(
            "old",
            "old@example.org",
            None,
            Some(support::PASSWORD),
            mnode_node::accounts::Role::User,
        )
        .unwrap();
    let identity = old.did().unwrap().to_string();
    let token = login(r, "old").await;
    let post = support::create(r, &token, "social.post", json!({ "text": "before" })).await;

    let (status, v) = call(r, "POST", "/api/v1/accounts/old/keys/rotate", TOKEN, None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["identity"], identity.as_str());
    let recovery = v["recovery_key"].as_str().expect("made now, shown once");
    let (_, me) = call(r, "GET", "/api/v1/me", &token, None).await;
    assert_eq!(
        me["did"],
        identity.as_str(),
        "is-this-mine checks keep the identity"
    );

    // The post the first key signed is edited, then deleted, with the new key.
    let uri = format!("/api/v1/records/{post}");
    let (status, v) = call(
        r,
        "PUT",
        &uri,
        &token,
        Some(json!({ "body": { "text": "after" } })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (_, v) = json_call(r, "GET", &uri, None, None).await;
    assert_eq!(v["record"]["body"]["text"], "after", "{v}");
    let other = support::create(r, &token, "social.post", json!({ "text": "x" })).await;
    // Rotating again: the item the previous key signed is deleted in two steps.
    let (status, v) = call(r, "POST", "/api/v1/accounts/old/keys/rotate", &token, None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(v["recovery_key"].is_null(), "{v}");
    let (status, v) = call(
        r,
        "DELETE",
        &format!("/api/v1/records/{other}"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v["seq"], 2,
        "a version citing the new key, then the tombstone: {v}"
    );
    let (status, v) = call(
        r,
        "DELETE",
        &format!("/api/v1/records/{other}"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "already deleted: {v}");

    // The recovery key made at the first rotation recovers.
    let (status, v) = call(
        r,
        "POST",
        "/api/v1/accounts/old/keys/recover",
        &token,
        Some(json!({ "recovery_key": recovery })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    t.node.shutdown().await.expect("shutdown");
}

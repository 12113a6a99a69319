//! A discussion across three nodes on 127.0.0.1: a forum followed by its topic finds its
//! branches, a reply from someone nobody follows reaches the author it answers, and a
//! moderator's hide on one node applies on another.

mod support;

use std::time::Duration;

use axum::{Router, http::StatusCode};
use serde_json::{Value, json};
use support::{TestApi, connect, create, json_call, register_and_login, setup_with};

const WAIT: Duration = Duration::from_secs(30);

async fn node() -> TestApi {
    setup_with(&["network.gossip_heartbeat_ms=100"]).await
}

async fn call(router: &Router, method: &str, uri: &str, token: &str, body: Value) -> Value {
    let (status, v) = json_call(router, method, uri, Some(token), Some(body)).await;
    assert!(status.is_success(), "{method} {uri}: {status} {v}");
    v
}

/// Polls `uri` on `router` until `done` holds for its JSON (or fails after [`WAIT`]).
async fn until(router: &Router, uri: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, v) = json_call(router, "GET", uri, None, None).await;
        if status == StatusCode::OK && done(&v) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: last answer {status} {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn post_of<'a>(thread: &'a Value, id: &str) -> Option<&'a Value> {
    thread["posts"].as_array()?.iter().find(|p| p["id"] == id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_discuss_in_a_forum_and_a_hide_applies_everywhere() {
    let (a, b, c) = (node().await, node().await, node().await);
    connect(&a, &b).await;
    connect(&c, &b).await;
    let olga = register_and_login(&a.router, "olga").await;
    let moddy = register_and_login(&a.router, "moddy").await;
    let bob = register_and_login(&b.router, "bob").await;
    let carol = register_and_login(&c.router, "carol").await;
    let (_, me) = json_call(&a.router, "GET", "/api/v1/me", Some(&moddy), None).await;

    // Olga's forum, with Moddy as moderator, on node A.
    let forum = create(
        &a.router,
        &olga,
        "social.forum",
        json!({ "name": "Field recording", "moderators": [me["did"]] }),
    )
    .await;
    let branch = create(
        &a.router,
        &olga,
        "social.branch",
        json!({ "forum": { "/": forum }, "name": "Gear" }),
    )
    .await;
    let thread = create(
        &a.router,
        &olga,
        "social.thread",
        json!({ "branch": { "/": branch }, "title": "Which recorder?" }),
    )
    .await;
    let replies = format!("/api/v1/threads/{thread}/replies");
    let first = call(
        &a.router,
        "POST",
        &replies,
        &olga,
        json!({ "text": "Mine is old." }),
    )
    .await;
    let first = first["id"].as_str().expect("id").to_owned();

    // Bob and Carol follow the forum, not Olga: they find its branch, its thread and the post.
    let topic = format!("/mnode/1/forum/{forum}");
    call(
        &b.router,
        "POST",
        "/api/v1/me/follows",
        &bob,
        json!({ "topic": topic }),
    )
    .await;
    call(
        &c.router,
        "POST",
        "/api/v1/me/follows",
        &carol,
        json!({ "topic": topic }),
    )
    .await;
    let thread_uri = format!("/api/v1/threads/{thread}");
    until(&c.router, &thread_uri, "the thread on C", |v| {
        post_of(v, &first).is_some()
    })
    .await;
    let (_, follows) = json_call(&c.router, "GET", "/api/v1/me/follows", Some(&carol), None).await;
    let branch_topic = format!("/mnode/1/branch/{branch}");
    assert!(
        follows["follows"]
            .as_array()
            .expect("follows")
            .iter()
            .any(|f| f["topic"] == branch_topic),
        "following the forum follows its branches: {follows}"
    );

    // Carol answers on C. Node A never followed Carol, nor the branch: the reply reaches it
    // because it answers Olga.
    let answer = call(
        &c.router,
        "POST",
        &replies,
        &carol,
        json!({ "text": "A borrowed one, with far too much hiss", "parent": first }),
    )
    .await;
    let answer = answer["id"].as_str().expect("id").to_owned();
    let (_, a_follows) = json_call(&a.router, "GET", "/api/v1/me/follows", Some(&olga), None).await;
    assert!(!a_follows.to_string().contains(&branch_topic));
    let v = until(&a.router, &thread_uri, "Carol's reply on A", |v| {
        post_of(v, &answer).is_some()
    })
    .await;
    assert_eq!(
        post_of(&v, &answer).expect("reply")["record"]["body"]["reply"]["parent"]["/"],
        first
    );

    // Moddy hides it on A; C, following the forum, applies it.
    let hide = json!({ "action": "hide", "target": answer, "reason": "off topic" });
    call(
        &a.router,
        "POST",
        &format!("/api/v1/forums/{forum}/moderation"),
        &moddy,
        hide,
    )
    .await;
    let started = std::time::Instant::now();
    let v = until(&c.router, &thread_uri, "the hide on C", |v| {
        post_of(v, &answer).is_some_and(|p| p["moderation"]["action"] == "hide")
    })
    .await;
    eprintln!("the hide applied on C after {:?}", started.elapsed());
    let p = post_of(&v, &answer).expect("listed");
    assert_eq!(p["moderation"]["reason"], "off topic");
    assert_eq!(p["record"], Value::Null);
    // Still readable by its CID on C, where it was written.
    let (status, v) = json_call(
        &c.router,
        "GET",
        &format!("/api/v1/records/{answer}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        v["record"]["body"]["text"],
        "A borrowed one, with far too much hiss"
    );
    for n in [a, b, c] {
        n.node.shutdown().await.expect("shutdown");
    }
}

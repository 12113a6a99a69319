//! The social side of the API through the router: follows and timelines, feeds, forums and
//! threads (reply, fork), tags, widget queries, facts, pins and Server-Sent Events.

mod support;

use std::time::Duration;

use axum::{
    Router,
    http::{StatusCode, header},
};
use futures::StreamExt;
use mnode_dag::{Keypair, Record, model::social::Post};
use serde_json::{Value, json};
use support::{TOKEN, TestApi, create, did_of, json_call, register_and_login, setup};
use tower::ServiceExt;

const WAIT: Duration = Duration::from_secs(30);

async fn post(router: &Router, token: &str, text: &str, tags: &[&str]) -> String {
    create(
        router,
        token,
        "social.post",
        json!({ "text": text, "tags": tags }),
    )
    .await
}

async fn get(router: &Router, uri: &str, token: Option<&str>) -> Value {
    let (status, v) = json_call(router, "GET", uri, token, None).await;
    assert_eq!(status, StatusCode::OK, "GET {uri}: {v}");
    v
}

async fn status_of(
    router: &Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> StatusCode {
    json_call(router, method, uri, token, body).await.0
}

fn ids(items: &Value) -> Vec<String> {
    items
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_owned())
        .collect()
}

fn link(id: &str) -> Value {
    json!({ "/": id })
}

/// Every page of a listing at `uri` (which takes `&limit=…&cursor=…`), `key` naming the items.
async fn all_pages(router: &Router, uri: &str, key: &str, token: Option<&str>) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if uri.contains('?') { '&' } else { '?' };
        let page_uri = match &cursor {
            Some(c) => format!("{uri}{sep}cursor={c}"),
            None => uri.to_owned(),
        };
        let v = get(router, &page_uri, token).await;
        let page = ids(&v[key]);
        // A full page says there may be more; the page after it can be empty.
        if page.is_empty() && cursor.is_some() {
            assert_eq!(v["next"], Value::Null);
            break;
        }
        pages.push(page);
        match v["next"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages.len() < 20, "paging does not end");
    }
    pages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_are_per_account_and_the_node_follows_their_union() {
    let TestApi {
        node,
        router,
        dir: _dir,
    } = setup().await;
    let alice = register_and_login(&router, "alice").await;
    let bob = register_and_login(&router, "bob").await;
    let did = Keypair::derive(1, "followed").did().to_string();
    let topic = format!("/mnode/1/author/{did}");
    let body = |t: &str| Some(json!({ "topic": t }));

    let uri = "/api/v1/me/follows";
    assert_eq!(
        status_of(&router, "POST", uri, None, body(&did)).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status_of(&router, "GET", uri, None, None).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status_of(&router, "POST", uri, Some(&alice), body("/mnode/1/feed/x")).await,
        StatusCode::BAD_REQUEST
    );

    // A bare did and the full topic name the same topic.
    let (status, v) = json_call(&router, "POST", uri, Some(&alice), body(&did)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["following"], topic);
    assert_eq!(v["added"], true);
    let (_, v) = json_call(&router, "POST", uri, Some(&alice), body(&topic)).await;
    assert_eq!(v["added"], false);
    let (status, _) = json_call(&router, "POST", uri, Some(&bob), body(&topic)).await;
    assert_eq!(status, StatusCode::OK);

    let mine = get(&router, uri, Some(&alice)).await;
    assert_eq!(mine["handle"], "alice");
    assert_eq!(mine["follows"][0]["topic"], topic);
    let node_follows = || async {
        get(&router, "/api/v1/follows", Some(TOKEN)).await["follows"]
            .as_array()
            .expect("follows")
            .contains(&json!(topic))
    };
    assert!(node_follows().await);

    // The node keeps following while one account does.
    let (status, v) = json_call(&router, "DELETE", uri, Some(&alice), body(&topic)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(node_follows().await);
    assert_eq!(get(&router, uri, Some(&alice)).await["follows"], json!([]));
    assert_eq!(
        status_of(&router, "DELETE", uri, Some(&alice), body(&topic)).await,
        StatusCode::NOT_FOUND
    );
    let (status, _) = json_call(&router, "DELETE", uri, Some(&bob), body(&topic)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!node_follows().await);

    // The admin token acts as the node's owner.
    let owner = get(&router, "/api/v1/node", None).await["owner"].clone();
    let (status, _) = json_call(&router, "POST", uri, Some(TOKEN), body(&did)).await;
    assert_eq!(status, StatusCode::OK);
    let mine = get(&router, uri, Some(TOKEN)).await;
    assert_eq!(mine["handle"], owner);
    assert_eq!(mine["follows"][0]["topic"], topic);
    assert!(node_follows().await);
    node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeline_merges_followed_topics_newest_first_with_cursor_paging() {
    let TestApi {
        node,
        router,
        dir: _dir,
    } = setup().await;
    let alice = register_and_login(&router, "alice").await;
    let bob = register_and_login(&router, "bob").await;
    let carol = register_and_login(&router, "carol").await;
    let vic = register_and_login(&router, "vic").await;
    let mut expected = Vec::new();
    // Each in its own millisecond: items made in the same one list by CID, not by order made.
    for i in 0..3 {
        expected.push(post(&router, &alice, &format!("alice {i}"), &[]).await);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    for i in 0..2 {
        expected.push(post(&router, &bob, &format!("bob {i}"), &[]).await);
    }
    let unfollowed = post(&router, &carol, "carol", &[]).await;
    for t in [&alice, &bob] {
        let did = did_of(&router, t).await;
        let (status, _) = json_call(
            &router,
            "POST",
            "/api/v1/me/follows",
            Some(&vic),
            Some(json!({ "topic": did })),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }

    let uri = "/api/v1/me/timeline?kind=social.post&limit=2";
    let pages = all_pages(&router, uri, "items", Some(&vic)).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
    let seen: Vec<String> = pages.concat();
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 5, "each item once: {seen:?}");
    let mut all_expected = expected.clone();
    all_expected.sort();
    assert_eq!(sorted, all_expected);
    assert!(!seen.contains(&unfollowed));

    // Newest first, items as listings show them with the record.
    let v = get(&router, "/api/v1/me/timeline?kind=social.post", Some(&vic)).await;
    let created: Vec<u64> = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["created"].as_u64().expect("created"))
        .collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "{created:?}");
    assert_eq!(v["items"][0]["type"], "social.post");
    assert!(v["items"][0]["record"]["body"]["text"].is_string());

    assert_eq!(
        status_of(&router, "GET", "/api/v1/me/timeline", None, None).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status_of(
            &router,
            "GET",
            "/api/v1/me/timeline?cursor=nope",
            Some(&vic),
            None
        )
        .await,
        StatusCode::BAD_REQUEST
    );

    // An author's feed is open.
    let alice_did = did_of(&router, &alice).await;
    let uri = format!("/api/v1/feeds/{alice_did}?kind=social.post&limit=2");
    let pages = all_pages(&router, &uri, "items", None).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 1]);
    let feed = get(&router, &uri, None).await;
    assert_eq!(feed["topic"], format!("/mnode/1/author/{alice_did}"));
    for bad in ["did:key:z6Mknope", "not-a-cid"] {
        let uri = format!("/api/v1/feeds/{bad}");
        assert_eq!(
            status_of(&router, "GET", &uri, None, None).await,
            StatusCode::BAD_REQUEST
        );
    }

    // A feed record: its curated items, then its query's.
    let query = format!("social.posts.author = '{alice_did}'");
    let feed_id = create(
        &router,
        &alice,
        "social.feed",
        json!({ "name": "picks", "items": [link(&unfollowed)], "query": query }),
    )
    .await;
    let v = get(&router, &format!("/api/v1/feeds/{feed_id}"), None).await;
    let alice_posts: Vec<String> = expected[..3].iter().rev().cloned().collect();
    assert_eq!(
        ids(&v["items"]),
        [vec![unfollowed.clone()], alice_posts].concat()
    );
    assert_eq!(v["feed"]["id"], feed_id);
    node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forums_branches_and_threads_take_replies_and_forks() {
    let TestApi {
        node,
        router,
        dir: _dir,
    } = setup().await;
    let alice = register_and_login(&router, "alice").await;
    let bob = register_and_login(&router, "bob").await;
    let forum = create(
        &router,
        &alice,
        "social.forum",
        json!({ "name": "Jazz", "tags": ["music", "music/jazz"] }),
    )
    .await;
    let branch = create(
        &router,
        &alice,
        "social.branch",
        json!({ "forum": link(&forum), "name": "Listening" }),
    )
    .await;
    let sub = create(
        &router,
        &alice,
        "social.branch",
        json!({ "forum": link(&forum), "name": "Records", "parent": link(&branch) }),
    )
    .await;
    let thread = create(
        &router,
        &alice,
        "social.thread",
        json!({ "branch": link(&branch), "title": "Bebop", "tags": ["music/jazz"] }),
    )
    .await;

    let v = get(&router, "/api/v1/forums", None).await;
    assert_eq!(ids(&v["items"]), [forum.as_str()]);
    let v = get(&router, &format!("/api/v1/forums/{forum}"), None).await;
    assert_eq!(v["forum"]["id"], forum);
    assert_eq!(ids(&v["branches"]), [branch.clone(), sub.clone()]);
    let v = get(&router, &format!("/api/v1/branches/{branch}"), None).await;
    assert_eq!(v["forum"], forum);
    assert_eq!(ids(&v["branches"]), [sub.as_str()]);
    assert_eq!(ids(&v["threads"]), [thread.as_str()]);

    // Replies: the first post answers nothing, later ones the first by default.
    let replies = format!("/api/v1/threads/{thread}/replies");
    let say = |text: &str| Some(json!({ "text": text }));
    assert_eq!(
        status_of(&router, "POST", &replies, None, say("hi")).await,
        StatusCode::UNAUTHORIZED
    );
    let (status, v) = json_call(&router, "POST", &replies, Some(&alice), say("first")).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["reply"], Value::Null);
    let first = v["id"].as_str().expect("id").to_owned();
    let (status, v) = json_call(&router, "POST", &replies, Some(&bob), say("second")).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["reply"], json!({ "root": first, "parent": first }));
    let second = v["id"].as_str().expect("id").to_owned();
    let (status, v) = json_call(
        &router,
        "POST",
        &replies,
        Some(&alice),
        Some(json!({ "text": "third", "parent": second })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["reply"], json!({ "root": first, "parent": second }));
    let third = v["id"].as_str().expect("id").to_owned();
    let read = get(&router, &format!("/api/v1/records/{third}"), None).await;
    assert_eq!(read["record"]["author"], did_of(&router, &alice).await);
    assert_eq!(read["record"]["body"]["thread"], link(&thread));
    assert_eq!(read["record"]["body"]["branch"], link(&branch));

    // Bad replies.
    let outside = post(&router, &alice, "not in the thread", &[]).await;
    for (token, body, want) in [
        (
            &alice,
            json!({ "text": "x", "parent": "nope" }),
            StatusCode::BAD_REQUEST,
        ),
        (
            &alice,
            json!({ "text": "x", "parent": outside }),
            StatusCode::BAD_REQUEST,
        ),
        (
            &bob,
            json!({ "text": "x", "as": "alice" }),
            StatusCode::FORBIDDEN,
        ),
        (
            &alice,
            json!({ "text": "" }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (status, v) = json_call(&router, "POST", &replies, Some(token), Some(body)).await;
        assert_eq!(status, want, "{v}");
    }
    let uri = format!("/api/v1/threads/{forum}/replies");
    assert_eq!(
        status_of(&router, "POST", &uri, Some(&alice), say("x")).await,
        StatusCode::NOT_FOUND
    );

    // The thread's posts, oldest first, paged.
    let uri = format!("/api/v1/threads/{thread}?limit=2");
    let pages = all_pages(&router, &uri, "posts", None).await;
    assert_eq!(
        pages,
        [vec![first.clone(), second.clone()], vec![third.clone()]]
    );

    // A fork at the second post: its own thread and topic, followed by the forker.
    let fork_uri = format!("/api/v1/threads/{thread}/fork");
    let at = |p: &str| Some(json!({ "post": p }));
    assert_eq!(
        status_of(&router, "POST", &fork_uri, None, at(&second)).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status_of(&router, "POST", &fork_uri, Some(&bob), at(&outside)).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status_of(&router, "POST", &fork_uri, Some(&bob), at("nope")).await,
        StatusCode::BAD_REQUEST
    );
    let (status, v) = json_call(&router, "POST", &fork_uri, Some(&bob), at(&second)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let fork = v["id"].as_str().expect("id").to_owned();
    assert_eq!(v["topic"], format!("/mnode/1/thread/{fork}"));
    let follows = get(&router, "/api/v1/me/follows", Some(&bob)).await;
    assert_eq!(follows["follows"][0]["topic"], v["topic"]);

    let v = get(&router, &format!("/api/v1/threads/{fork}"), None).await;
    assert_eq!(v["fork"], json!({ "thread": thread, "post": second }));
    assert_eq!(v["thread"]["record"]["body"]["title"], "Bebop (fork)");
    assert_eq!(v["posts"], json!([]));
    let v = get(&router, &format!("/api/v1/threads/{thread}"), None).await;
    assert_eq!(ids(&v["forks"]), [fork.as_str()]);

    // A reply in the fork answers the post it forked at; its posts stay out of the parent.
    let uri = format!("/api/v1/threads/{fork}/replies");
    let (status, v) = json_call(&router, "POST", &uri, Some(&bob), say("elsewhere")).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["reply"], json!({ "root": first, "parent": second }));
    let in_fork = v["id"].as_str().expect("id").to_owned();
    let v = get(&router, &format!("/api/v1/threads/{fork}"), None).await;
    assert_eq!(ids(&v["posts"]), [in_fork.as_str()]);
    let v = get(&router, &format!("/api/v1/threads/{thread}"), None).await;
    assert!(!ids(&v["posts"]).contains(&in_fork));

    for (uri, want) in [
        (format!("/api/v1/threads/{forum}"), StatusCode::NOT_FOUND),
        ("/api/v1/threads/nope".to_owned(), StatusCode::BAD_REQUEST),
        (format!("/api/v1/forums/{thread}"), StatusCode::NOT_FOUND),
        (format!("/api/v1/branches/{forum}"), StatusCode::NOT_FOUND),
        (
            format!("/api/v1/threads/{thread}?cursor=nope"),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        assert_eq!(
            status_of(&router, "GET", &uri, None, None).await,
            want,
            "{uri}"
        );
    }
    node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_form_a_tree_and_list_their_items_hierarchically() {
    let TestApi {
        node,
        router,
        dir: _dir,
    } = setup().await;
    let alice = register_and_login(&router, "alice").await;
    let jazz = post(&router, &alice, "jazz", &["music/jazz"]).await;
    let bebop = post(&router, &alice, "bebop", &["music/jazz/bebop"]).await;
    let photo = post(&router, &alice, "photo", &["visual"]).await;

    let v = get(&router, "/api/v1/tags", None).await;
    let music = &v["tags"][0];
    assert_eq!(music["tag"], "music");
    assert_eq!(music["count"], 2);
    assert_eq!(music["children"][0]["tag"], "music/jazz");
    assert_eq!(music["children"][0]["name"], "jazz");
    assert_eq!(music["children"][0]["count"], 2);
    assert_eq!(
        music["children"][0]["children"][0]["tag"],
        "music/jazz/bebop"
    );
    assert_eq!(music["children"][0]["children"][0]["count"], 1);
    assert_eq!(v["tags"][1]["tag"], "visual");
    assert_eq!(v["tags"][1]["count"], 1);

    let pages = all_pages(&router, "/api/v1/tags/music?limit=1", "items", None).await;
    assert_eq!(pages, [vec![bebop.clone()], vec![jazz.clone()]]);
    let v = get(&router, "/api/v1/tags/music/jazz/bebop", None).await;
    assert_eq!(ids(&v["items"]), [bebop]);
    let v = get(&router, "/api/v1/tags/visual", None).await;
    assert_eq!(ids(&v["items"]), [photo]);
    for bad in ["/api/v1/tags/Music", "/api/v1/tags/music//jazz"] {
        assert_eq!(
            status_of(&router, "GET", bad, None, None).await,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn widget_queries_answer_and_bad_ones_name_the_column() {
    let TestApi {
        node,
        router,
        dir: _dir,
    } = setup().await;
    let alice = register_and_login(&router, "alice").await;
    let ada = create(
        &router,
        &alice,
        "art.artist",
        json!({ "name": { "full": "Ada" } }),
    )
    .await;
    let jazz = post(&router, &alice, "jazz", &["music/jazz"]).await;
    post(&router, &alice, "other", &["visual"]).await;

    let v = get(&router, "/api/v1/query?q=art.artists.list()", None).await;
    assert_eq!(v["kind"], "art.artist");
    assert_eq!(ids(&v["items"]), [ada]);
    let v = get(
        &router,
        "/api/v1/query?q=social.posts.tag%20%3D%20%27music%27",
        None,
    )
    .await;
    assert_eq!(ids(&v["items"]), [jazz]);
    let v = get(&router, "/api/v1/query?q=social.posts.count()", None).await;
    assert_eq!(v["count"], 2);

    let (status, v) = json_call(
        &router,
        "GET",
        "/api/v1/query?q=art.artists.lst()",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["code"], "bad_query");
    assert!(
        v["error"]["message"]
            .as_str()
            .expect("message")
            .contains("column"),
        "{v}"
    );
    for bad in [
        "/api/v1/query",
        "/api/v1/query?q=art.nothing.list()",
        "/api/v1/query?q=art.artists.id%20%3D%20%27nope%27",
    ] {
        assert_eq!(
            status_of(&router, "GET", bad, None, None).await,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facts_come_with_their_context_and_the_facts_under_them() {
    let TestApi {
        node,
        router,
        dir: _dir,
    } = setup().await;
    let alice = register_and_login(&router, "alice").await;
    let bob = register_and_login(&router, "bob").await;
    let fact = create(
        &router,
        &alice,
        "info.fact",
        json!({ "statement": "Bebop began in the 1940s." }),
    )
    .await;
    let under = create(
        &router,
        &alice,
        "info.fact",
        json!({ "statement": "Minton's hosted it.", "parent": link(&fact) }),
    )
    .await;
    let mut notes = Vec::new();
    for (token, note) in [
        (&bob, "Some say earlier."),
        (&alice, "See the liner notes."),
    ] {
        notes.push(
            create(
                &router,
                token,
                "info.context",
                json!({ "target": link(&fact), "note": note }),
            )
            .await,
        );
        // Notes made in the same millisecond are listed by CID, not in the order made.
        let made = mnode_dag::record::now_ms();
        while mnode_dag::record::now_ms() == made {
            tokio::task::yield_now().await;
        }
    }

    let v = get(&router, &format!("/api/v1/facts/{fact}"), None).await;
    assert_eq!(v["fact"]["id"], fact);
    assert_eq!(v["parent"], Value::Null);
    assert_eq!(ids(&v["facts"]), [under.as_str()]);
    notes.reverse();
    assert_eq!(ids(&v["context"]), notes);
    let pages = all_pages(
        &router,
        &format!("/api/v1/facts/{fact}?limit=1"),
        "context",
        None,
    )
    .await;
    assert_eq!(pages.concat(), notes);
    let v = get(&router, &format!("/api/v1/facts/{under}"), None).await;
    assert_eq!(v["parent"], fact);

    assert_eq!(
        status_of(
            &router,
            "GET",
            &format!("/api/v1/facts/{}", notes[0]),
            None,
            None
        )
        .await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status_of(&router, "GET", "/api/v1/facts/nope", None, None).await,
        StatusCode::BAD_REQUEST
    );
    node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pins_are_for_the_admin() {
    let TestApi {
        node,
        router,
        dir: _dir,
    } = setup().await;
    let alice = register_and_login(&router, "alice").await;
    let record = Record::create(&Post {
        text: "from afar".into(),
        ..Post::default()
    })
    .expect("post")
    .sign(&Keypair::derive(1, "afar"))
    .expect("sign");
    // Stored as a record received from a peer is: not pinned (what this node publishes is).
    node.handle()
        .repo()
        .store()
        .put(record.clone())
        .expect("store");
    let cid = record.cid().to_string();
    let body = |c: &str| Some(json!({ "cid": c }));

    assert_eq!(
        status_of(&router, "GET", "/api/v1/pins", None, None).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status_of(&router, "POST", "/api/v1/pins", None, body(&cid)).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status_of(&router, "GET", "/api/v1/pins", Some(&alice), None).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status_of(&router, "POST", "/api/v1/pins", Some(&alice), body(&cid)).await,
        StatusCode::FORBIDDEN
    );
    let del = format!("/api/v1/pins/{cid}");
    assert_eq!(
        status_of(&router, "DELETE", &del, Some(&alice), None).await,
        StatusCode::FORBIDDEN
    );

    let pinned = || async {
        get(&router, "/api/v1/pins", Some(TOKEN)).await["pins"]
            .as_array()
            .expect("pins")
            .iter()
            .find(|p| p["cid"] == cid)
            .cloned()
    };
    assert_eq!(pinned().await, None);
    let (status, v) = json_call(&router, "POST", "/api/v1/pins", Some(TOKEN), body(&cid)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["recursive"], true);
    assert_eq!(pinned().await.expect("pinned")["recursive"], true);
    let (status, _) = json_call(
        &router,
        "POST",
        "/api/v1/pins",
        Some(TOKEN),
        Some(json!({ "cid": cid, "recursive": false })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(pinned().await.expect("pinned")["recursive"], false);

    assert_eq!(
        status_of(&router, "DELETE", &del, Some(TOKEN), None).await,
        StatusCode::OK
    );
    assert_eq!(pinned().await, None);
    assert_eq!(
        status_of(&router, "DELETE", &del, Some(TOKEN), None).await,
        StatusCode::NOT_FOUND
    );

    let absent = mnode_dag::cids::record_cid(b"not here").to_string();
    assert_eq!(
        status_of(&router, "POST", "/api/v1/pins", Some(TOKEN), body(&absent)).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status_of(&router, "POST", "/api/v1/pins", Some(TOKEN), body("nope")).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status_of(&router, "DELETE", "/api/v1/pins/nope", Some(TOKEN), None).await,
        StatusCode::BAD_REQUEST
    );
    node.shutdown().await.expect("shutdown");
}

/// One Server-Sent Event: its fields.
#[derive(Debug, Default)]
struct Sse {
    event: String,
    id: String,
    data: String,
}

/// Reads `body` until an event with `id` arrives (within [`WAIT`]); answers every event read.
async fn read_until(body: &mut axum::body::BodyDataStream, buf: &mut String, id: &str) -> Vec<Sse> {
    let mut events = Vec::new();
    let found = tokio::time::timeout(WAIT, async {
        loop {
            while let Some(end) = buf.find("\n\n") {
                let block: String = buf.drain(..end + 2).collect();
                let mut e = Sse::default();
                for line in block.lines() {
                    if let Some((k, v)) = line.split_once(':') {
                        let v = v.strip_prefix(' ').unwrap_or(v).to_owned();
                        match k {
                            "event" => e.event = v,
                            "id" => e.id = v,
                            "data" => e.data = v,
                            _ => {}
                        }
                    }
                }
                let done = e.id == id;
                events.push(e);
                if done {
                    return;
                }
            }
            let chunk = body.next().await.expect("stream open").expect("chunk");
            buf.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        }
    })
    .await;
    assert!(
        found.is_ok(),
        "no event {id} within {WAIT:?}; got {events:?}"
    );
    events
}

/// Opens `GET uri` as an event stream.
async fn subscribe(router: &Router, uri: &str) -> axum::body::BodyDataStream {
    let req = support::empty(support::req("GET", uri));
    let resp = router.clone().oneshot(req).await.expect("response");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "text/event-stream");
    resp.into_body().into_data_stream()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_local_writes_of_a_topic() {
    let TestApi {
        node,
        router,
        dir: _dir,
    } = setup().await;
    let alice = register_and_login(&router, "alice").await;
    let bob = register_and_login(&router, "bob").await;
    let alice_did = did_of(&router, &alice).await;
    for bad in [
        "/api/v1/events?topic=nope",
        "/api/v1/events?topic=/mnode/1/thread/nope",
    ] {
        assert_eq!(
            status_of(&router, "GET", bad, None, None).await,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }

    let mut body = subscribe(&router, &format!("/api/v1/events?topic={alice_did}")).await;
    let mut all = subscribe(&router, "/api/v1/events").await;
    let other = post(&router, &bob, "not alice", &[]).await;
    let mine = post(&router, &alice, "alice live", &[]).await;
    let mut buf = String::new();
    let events = read_until(&mut body, &mut buf, &mine).await;
    assert!(events.iter().all(|e| e.id != other), "{events:?}");
    let last = events.last().expect("event");
    assert_eq!(last.event, "record");
    let data: Value = serde_json::from_str(&last.data).expect("json data");
    assert_eq!(data["id"], mine);
    assert_eq!(data["cid"], mine);
    assert_eq!(data["record"]["body"]["text"], "alice live");

    // Without a topic, every record.
    let mut buf_all = String::new();
    let events = read_until(&mut all, &mut buf_all, &mine).await;
    assert!(events.iter().any(|e| e.id == other), "{events:?}");

    // A thread topic carries the replies made in it.
    let forum = create(&router, &alice, "social.forum", json!({ "name": "F" })).await;
    let branch = create(
        &router,
        &alice,
        "social.branch",
        json!({ "forum": link(&forum), "name": "B" }),
    )
    .await;
    let thread = create(
        &router,
        &alice,
        "social.thread",
        json!({ "branch": link(&branch), "title": "T" }),
    )
    .await;
    let mut body = subscribe(
        &router,
        &format!("/api/v1/events?topic=/mnode/1/thread/{thread}"),
    )
    .await;
    let (status, v) = json_call(
        &router,
        "POST",
        &format!("/api/v1/threads/{thread}/replies"),
        Some(&bob),
        Some(json!({ "text": "live reply" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let reply = v["cid"].as_str().expect("cid").to_owned();
    let mut buf = String::new();
    read_until(&mut body, &mut buf, &reply).await;
    node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_events_stream_records_arriving_by_gossip() {
    let a = setup().await;
    let b = setup().await;
    let addr = a.node.handle().info().await.expect("info").addrs[0]
        .parse()
        .expect("multiaddr");
    b.node.handle().connect(addr).await.expect("connect");
    let author = get(&a.router, "/api/v1/node", None).await["owner_did"]
        .as_str()
        .expect("owner did")
        .to_owned();

    // B's owner follows A's owner; wait until A knows, so that gossip reaches B.
    let mut a_events = a.node.handle().events();
    let (status, _) = json_call(
        &b.router,
        "POST",
        "/api/v1/me/follows",
        Some(TOKEN),
        Some(json!({ "topic": author })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let topic = format!("/mnode/1/author/{author}");
    let b_peer = b.node.handle().peer_id();
    tokio::time::timeout(WAIT, async {
        loop {
            match a_events.recv().await {
                Ok(mnode_node::node::NodeEvent::PeerSubscribed { peer, topic: t })
                    if peer == b_peer && t == topic =>
                {
                    break;
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("events: {e}"),
            }
        }
    })
    .await
    .expect("B subscribes to A's feed");

    let mut body = subscribe(&b.router, &format!("/api/v1/events?topic={topic}")).await;
    let id = post(&a.router, TOKEN, "across the wire", &[]).await;
    let mut buf = String::new();
    let events = read_until(&mut body, &mut buf, &id).await;
    let data: Value = serde_json::from_str(&events.last().expect("event").data).expect("json");
    assert_eq!(data["record"]["body"]["text"], "across the wire");
    assert_eq!(data["author"], author);

    // B's owner sees it in the timeline too.
    let v = get(&b.router, "/api/v1/me/timeline", Some(TOKEN)).await;
    assert!(ids(&v["items"]).contains(&id), "{v}");
    a.node.shutdown().await.expect("shutdown a");
    b.node.shutdown().await.expect("shutdown b");
}

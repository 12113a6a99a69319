//! Forum moderation through the router: who may hide and ban, and how the forum's views show
//! it; the post stays readable by its CID.

mod support;

use axum::{Router, http::StatusCode};
use serde_json::{Value, json};
use support::{TestApi, create, did_of, json_call, register_and_login, setup};

async fn get(router: &Router, uri: &str) -> Value {
    let (status, v) = json_call(router, "GET", uri, None, None).await;
    assert_eq!(status, StatusCode::OK, "GET {uri}: {v}");
    v
}

async fn reply(router: &Router, token: &str, thread: &str, text: &str) -> String {
    let (status, v) = json_call(
        router,
        "POST",
        &format!("/api/v1/threads/{thread}/replies"),
        Some(token),
        Some(json!({ "text": text })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "reply: {v}");
    v["id"].as_str().expect("id").to_owned()
}

async fn moderate(router: &Router, token: &str, forum: &str, body: Value) -> (StatusCode, Value) {
    json_call(
        router,
        "POST",
        &format!("/api/v1/forums/{forum}/moderation"),
        Some(token),
        Some(body),
    )
    .await
}

/// The moderation of each post of a thread view, by post id.
async fn marks(router: &Router, thread: &str) -> Vec<(String, Value)> {
    let v = get(router, &format!("/api/v1/threads/{thread}")).await;
    v["posts"]
        .as_array()
        .expect("posts")
        .iter()
        .map(|p| {
            (
                p["id"].as_str().expect("id").to_owned(),
                p["moderation"].clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn moderators_hide_and_ban_and_nobody_else_can() {
    let TestApi {
        node: _node,
        router,
        dir: _dir,
    } = setup().await;
    let owner = register_and_login(&router, "olga").await;
    let moddy = register_and_login(&router, "moddy").await;
    let troll = register_and_login(&router, "troll").await;
    let guest = register_and_login(&router, "guest").await;
    let (owner_did, mod_did, troll_did) = (
        did_of(&router, &owner).await,
        did_of(&router, &moddy).await,
        did_of(&router, &troll).await,
    );
    let forum = create(
        &router,
        &owner,
        "social.forum",
        json!({ "name": "Jazz", "moderators": [mod_did] }),
    )
    .await;
    let branch = create(
        &router,
        &owner,
        "social.branch",
        json!({ "forum": { "/": forum }, "name": "Listening" }),
    )
    .await;
    let thread = create(
        &router,
        &owner,
        "social.thread",
        json!({ "branch": { "/": branch }, "title": "Bebop" }),
    )
    .await;
    let first = reply(&router, &owner, &thread, "What are you listening to?").await;
    let spam = reply(&router, &troll, &thread, "buy cheap watches").await;
    let fine = reply(&router, &guest, &thread, "Monk, all week").await;

    // Nobody but the owner and the moderators: 403, nothing written.
    let hide = |target: &str| json!({ "action": "hide", "target": target, "reason": "spam" });
    let (status, v) = moderate(&router, &guest, &forum, hide(&spam)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("not a moderator"),
        "{v}"
    );
    // A moderator may not hide the owner's post, nor ban the owner.
    let (status, _) = moderate(&router, &moddy, &forum, hide(&first)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let ban_owner = json!({ "action": "ban", "author": owner_did, "reason": "x" });
    assert_eq!(
        moderate(&router, &moddy, &forum, ban_owner).await.0,
        StatusCode::FORBIDDEN
    );
    // A decision without a reason, or without what it acts on, is refused.
    let (status, _) = moderate(
        &router,
        &moddy,
        &forum,
        json!({ "action": "hide", "target": spam, "reason": "" }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = moderate(
        &router,
        &moddy,
        &forum,
        json!({ "action": "ban", "reason": "x" }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        marks(&router, &thread)
            .await
            .iter()
            .all(|(_, m)| m.is_null())
    );

    // The moderator hides the spam: the thread view marks it and leaves its text out.
    let (status, v) = moderate(&router, &moddy, &forum, hide(&spam)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let m = marks(&router, &thread).await;
    let spam_mark = &m.iter().find(|(id, _)| *id == spam).expect("spam listed").1;
    assert_eq!(spam_mark["action"], "hide");
    assert_eq!(spam_mark["reason"], "spam");
    assert_eq!(spam_mark["by"], mod_did);
    assert!(
        m.iter()
            .filter(|(id, _)| *id != spam)
            .all(|(_, m)| m.is_null())
    );
    let v = get(&router, &format!("/api/v1/threads/{thread}")).await;
    let listed = v["posts"]
        .as_array()
        .expect("posts")
        .iter()
        .find(|p| p["id"] == spam)
        .expect("spam");
    assert_eq!(listed["record"], Value::Null);
    // Still readable by its CID.
    let v = get(&router, &format!("/api/v1/records/{spam}")).await;
    assert_eq!(v["record"]["body"]["text"], "buy cheap watches", "{v}");

    // Banned: everything the troll posts in the forum is hidden, later posts too.
    let ban = json!({ "action": "ban", "author": troll_did, "reason": "repeat spam" });
    assert_eq!(
        moderate(&router, &moddy, &forum, ban).await.0,
        StatusCode::CREATED
    );
    let later = reply(&router, &troll, &thread, "more watches").await;
    let m = marks(&router, &thread).await;
    let later_mark = &m.iter().find(|(id, _)| *id == later).expect("listed").1;
    assert_eq!(later_mark["action"], "ban");
    assert_eq!(later_mark["reason"], "repeat spam");
    let v = get(&router, &format!("/api/v1/forums/{forum}/moderation")).await;
    assert_eq!(v["owner"], owner_did);
    assert_eq!(v["banned"][0]["author"], troll_did);
    assert_eq!(v["hidden"][0]["id"], spam);

    // The owner lets the troll back and shows one post again.
    let unban = json!({ "action": "unban", "author": troll_did, "reason": "apologised" });
    assert_eq!(
        moderate(&router, &owner, &forum, unban).await.0,
        StatusCode::CREATED
    );
    let unhide = json!({ "action": "unhide", "target": spam, "reason": "on second thought" });
    assert_eq!(
        moderate(&router, &owner, &forum, unhide).await.0,
        StatusCode::CREATED
    );
    assert!(
        marks(&router, &thread)
            .await
            .iter()
            .all(|(_, m)| m.is_null())
    );

    // The owner removes the moderator in a new forum version: their rights end with it.
    let (status, v) = json_call(
        &router,
        "PUT",
        &format!("/api/v1/records/{forum}"),
        Some(&owner),
        Some(json!({ "body": { "name": "Jazz", "moderators": [] } })),
    )
    .await;
    assert!(status.is_success(), "{v}");
    let (status, _) = moderate(&router, &moddy, &forum, hide(&fine)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_muted_author_leaves_the_timeline_and_is_folded_in_threads() {
    let TestApi {
        node: _node,
        router,
        dir: _dir,
    } = setup().await;
    let ann = register_and_login(&router, "ann").await;
    let noisy = register_and_login(&router, "noisy").await;
    let noisy_did = did_of(&router, &noisy).await;
    let forum = create(&router, &ann, "social.forum", json!({ "name": "F" })).await;
    let branch = create(
        &router,
        &ann,
        "social.branch",
        json!({ "forum": { "/": forum }, "name": "B" }),
    )
    .await;
    let thread = create(
        &router,
        &ann,
        "social.thread",
        json!({ "branch": { "/": branch }, "title": "T" }),
    )
    .await;
    reply(&router, &ann, &thread, "hello").await;
    let loud = reply(&router, &noisy, &thread, "LOUD").await;
    let topic = json!({ "topic": noisy_did });
    let (status, _) = json_call(
        &router,
        "POST",
        "/api/v1/me/follows",
        Some(&ann),
        Some(topic),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let timeline = |router: Router, token: String| async move {
        let (_, v) = json_call(&router, "GET", "/api/v1/me/timeline", Some(&token), None).await;
        v["items"].to_string()
    };
    assert!(timeline(router.clone(), ann.clone()).await.contains(&loud));

    // Bad input changes nothing.
    let (status, _) = json_call(
        &router,
        "POST",
        "/api/v1/me/mutes",
        Some(&ann),
        Some(json!({ "author": "nope" })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = json_call(
        &router,
        "POST",
        "/api/v1/me/mutes",
        None,
        Some(json!({ "author": noisy_did })),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, v) = json_call(
        &router,
        "POST",
        "/api/v1/me/mutes",
        Some(&ann),
        Some(json!({ "author": noisy_did })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["changed"], true);
    let (_, v) = json_call(&router, "GET", "/api/v1/me/mutes", Some(&ann), None).await;
    assert_eq!(v["mutes"][0]["author"], noisy_did);
    assert!(!timeline(router.clone(), ann.clone()).await.contains(&loud));
    let (_, v) = json_call(
        &router,
        "GET",
        &format!("/api/v1/threads/{thread}"),
        Some(&ann),
        None,
    )
    .await;
    let p = v["posts"]
        .as_array()
        .expect("posts")
        .iter()
        .find(|p| p["id"] == loud)
        .expect("listed");
    assert_eq!(p["muted"], true);
    // Only for Ann: others still see it plainly.
    let (_, v) = json_call(
        &router,
        "GET",
        &format!("/api/v1/threads/{thread}"),
        Some(&noisy),
        None,
    )
    .await;
    let p = v["posts"]
        .as_array()
        .expect("posts")
        .iter()
        .find(|p| p["id"] == loud)
        .expect("listed");
    assert_eq!(p["muted"], Value::Null);

    let (status, _) = json_call(
        &router,
        "DELETE",
        "/api/v1/me/mutes",
        Some(&ann),
        Some(json!({ "author": noisy_did })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(timeline(router.clone(), ann.clone()).await.contains(&loud));
}

#[tokio::test]
async fn pages_come_with_their_widgets_evaluated() {
    let TestApi {
        node: _node,
        router,
        dir: _dir,
    } = setup().await;
    let ann = register_and_login(&router, "ann").await;
    for name in ["Alice Coltrane", "Moondog"] {
        create(
            &router,
            &ann,
            "art.artist",
            json!({ "name": { "full": name } }),
        )
        .await;
    }
    let page = create(
        &router,
        &ann,
        "social.page",
        json!({
            "title": "Artists",
            "blocks": [
                { "heading": { "level": 1, "text": "Our artists" } },
                { "widget": { "query": "art.artists.list()" } },
                { "widget": { "query": "art.artists.count()" } },
            ],
        }),
    )
    .await;
    let v = get(&router, &format!("/api/v1/pages/{page}")).await;
    assert_eq!(v["page"]["id"], page);
    assert_eq!(v["widgets"][0], Value::Null);
    assert_eq!(v["widgets"][1]["total"], 2, "{v}");
    assert_eq!(v["widgets"][1]["items"].as_array().expect("items").len(), 2);
    assert_eq!(v["widgets"][2]["count"], 2, "{v}");
    let (status, _) = json_call(&router, "GET", "/api/v1/pages/nope", None, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = json_call(
        &router,
        "GET",
        &format!(
            "/api/v1/pages/{}",
            v["widgets"][1]["items"][0]["id"].as_str().expect("id")
        ),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_reply_that_does_not_fit_its_conversation_is_refused() {
    let TestApi {
        node: _node,
        router,
        dir: _dir,
    } = setup().await;
    let ann = register_and_login(&router, "ann").await;
    let root = create(&router, &ann, "social.post", json!({ "text": "root" })).await;
    let other = create(&router, &ann, "social.post", json!({ "text": "another" })).await;
    let link = |c: &str| json!({ "/": c });
    let one = create(
        &router,
        &ann,
        "social.post",
        json!({ "text": "one", "reply": { "root": link(&root), "parent": link(&root) } }),
    )
    .await;
    let (status, v) = json_call(
        &router,
        "POST",
        "/api/v1/records",
        Some(&ann),
        Some(json!({ "kind": "social.post", "body": {
            "text": "two", "reply": { "root": link(&other), "parent": link(&one) },
        } })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("conversation"),
        "{v}"
    );
}

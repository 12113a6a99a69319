//! Private writing through the pages: Messages (send, list, one conversation), and a post
//! only listed people may read, as its readers and everyone else see it.
#![allow(clippy::unwrap_used)]

mod support;

use axum::http::StatusCode;
use support::{Browser, setup};

async fn did_of(b: &mut Browser) -> String {
    let account = b.get("/account").await.body;
    let at = account.find("href=\"/authors/did:key:").unwrap() + "href=\"/authors/".len();
    account[at..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_message_and_a_private_post_are_read_by_their_readers_only() {
    let t = setup().await;
    let mut alice = Browser::new(&t.router);
    alice.sign_up("alice").await;
    let mut bob = Browser::new(&t.router);
    bob.sign_up("bob").await;
    let mut carol = Browser::new(&t.router);
    carol.sign_up("carol").await;
    let bob_did = did_of(&mut bob).await;

    // The nav links Messages; a visitor is sent to log in.
    let page = alice.get("/messages").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<a href=\"/messages\">Messages</a>"));
    assert!(page.body.contains("No messages yet"));
    for label in [">To", ">Message", ">Send<"] {
        assert!(page.body.contains(label), "{label}");
    }
    assert_eq!(
        Browser::new(&t.router).get("/messages").await.status,
        StatusCode::SEE_OTHER
    );

    // Refused: nobody to send to, an unknown person, no text; what was typed stays.
    let refused = alice
        .post("/messages", &[("to", "nobody"), ("text", "hello <b>?</b>")])
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("neither a handle on this node"));
    assert!(refused.body.contains("hello &lt;b&gt;?&lt;/b&gt;"));
    let refused = alice
        .post("/messages", &[("to", "bob"), ("text", " ")])
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("Write a message first."));

    let sent = alice
        .post(
            "/messages",
            &[("to", "bob"), ("text", "the mix is <ready>")],
        )
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    assert_eq!(sent.location(), format!("/messages/{bob_did}"));
    let conv = alice.get(sent.location()).await;
    assert!(conv.body.contains("the mix is &lt;ready&gt;"));

    // Bob finds it; Carol neither finds nor reads it.
    let list = bob.get("/messages").await.body;
    assert!(list.contains("the mix is &lt;ready&gt;"), "{list}");
    let carol_list = carol.get("/messages").await.body;
    assert!(carol_list.contains("No messages yet"));
    assert!(!carol_list.contains("the mix is"));
    let carol_conv = carol.get(&format!("/messages/{bob_did}")).await.body;
    assert!(!carol_conv.contains("the mix is"));

    // A post only Bob may read.
    let form = alice.get("/social/posts/new").await.body;
    for label in [
        ">Who can read<",
        ">Everyone<",
        ">People I list<",
        ">People who can read<",
    ] {
        assert!(form.contains(label), "{label}");
    }
    let refused = alice
        .post(
            "/social/posts/new",
            &[("text", "for bob"), ("_readers", "people"), ("_to", "")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("List the people who can read it"));
    let made = alice
        .post(
            "/social/posts/new",
            &[
                ("text", "rehearsal on Thursday"),
                ("_readers", "people"),
                ("_to", "bob"),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    let post = made.location().to_owned();
    let read = bob.get(&post).await.body;
    assert!(read.contains("Private: readable by"), "{read}");
    assert!(read.contains("rehearsal on Thursday"));
    let withheld = carol.get(&post).await;
    assert_eq!(withheld.status, StatusCode::OK);
    assert!(
        withheld
            .body
            .contains("only the people it is for can read it")
    );
    assert!(!withheld.body.contains("rehearsal on Thursday"));
    assert_eq!(
        carol.get(&format!("{post}/edit")).await.status,
        StatusCode::FORBIDDEN
    );
    assert!(
        !carol
            .get("/social/posts")
            .await
            .body
            .contains("rehearsal on Thursday")
    );

    // Edited for everyone, Carol reads the next version.
    let edit = alice.get(&format!("{post}/edit")).await.body;
    assert!(edit.contains(&bob_did), "the edit form lists the readers");
    let saved = alice
        .post(
            &format!("{post}/edit"),
            &[("text", "rehearsal moved, all welcome"), ("_readers", "")],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let open = carol.get(&post).await.body;
    assert!(open.contains("rehearsal moved, all welcome"));
    assert!(!open.contains("Private: readable by"));
}

/// Creates a record through the API as the node's owner (the admin token); answers its id.
async fn create_as_owner(
    router: &axum::Router,
    kind: &str,
    body: serde_json::Value,
    to: Option<&[&str]>,
) -> String {
    let mut request = serde_json::json!({ "kind": kind, "body": body });
    if let Some(to) = to {
        request["to"] = serde_json::json!(to);
    }
    let (status, v) = support::api::json_call(
        router,
        "POST",
        "/api/v1/records",
        Some(support::api::TOKEN),
        Some(request),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn counts_and_widgets_leave_out_private_items() {
    let t = setup().await;
    let mut alice = Browser::new(&t.router);
    alice.sign_up("alice").await;
    let post = |text: &str| serde_json::json!({ "text": text });
    create_as_owner(&t.router, "social.post", post("open to all"), None).await;
    let secret = create_as_owner(
        &t.router,
        "social.post",
        post("for alice only"),
        Some(&["alice"]),
    )
    .await;
    let page = create_as_owner(
        &t.router,
        "social.page",
        serde_json::json!({
            "title": "Numbers",
            "blocks": [
                { "widget": { "query": "social.posts.count()" } },
                { "widget": { "query": "social.posts.list().limit(1)" } },
            ],
        }),
        None,
    )
    .await;

    // The page's widgets, for anyone (alice, who reads the private post, too): one post.
    for mut b in [Browser::new(&t.router), alice.clone()] {
        let shown = b.get(&format!("/social/pages/{page}")).await;
        assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
        assert!(shown.body.contains("<strong>1</strong>"), "{}", shown.body);
        assert!(!shown.body.contains("<strong>2</strong>"), "{}", shown.body);
        assert!(!shown.body.contains(&secret), "{}", shown.body);
        assert!(shown.body.contains("open to all"), "{}", shown.body);
    }
    // The API's widget queries and pages count the same.
    let (status, v) = support::api::json_call(
        &t.router,
        "GET",
        "/api/v1/query?q=social.posts.count()",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["count"], 1, "{v}");
    let (_, v) = support::api::json_call(
        &t.router,
        "GET",
        "/api/v1/query?q=social.posts.list()",
        None,
        None,
    )
    .await;
    assert_eq!(v["total"], 1, "{v}");
    let (_, v) = support::api::json_call(
        &t.router,
        "GET",
        &format!("/api/v1/pages/{page}"),
        None,
        None,
    )
    .await;
    assert_eq!(v["widgets"][0]["count"], 1, "{v}");
    assert_eq!(v["widgets"][1]["total"], 1, "{v}");
    // `limit(1)` keeps the newest public post, not the newer private one.
    assert_eq!(
        v["widgets"][1]["items"][0]["record"]["body"]["text"], "open to all",
        "{v}"
    );
    t.node.shutdown().await.unwrap();
}

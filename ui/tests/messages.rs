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

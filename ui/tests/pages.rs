//! Every page through the router, without a browser: status, escaping, partials, CSRF
//! refusals, who may do what, and the headers the pages promise.
#![allow(clippy::unwrap_used)]

mod support;

use axum::{
    body::Body,
    http::{Request, StatusCode, header},
};
use support::{Browser, PASSWORD, setup};

fn id_in(location: &str) -> String {
    location.rsplit('/').next().unwrap().to_owned()
}

#[tokio::test]
async fn pages_answer_for_visitors_and_members() {
    let t = setup().await;
    let mut visitor = Browser::new(&t.router);
    for (uri, status) in [
        ("/", StatusCode::OK),
        ("/signup", StatusCode::OK),
        ("/login", StatusCode::OK),
        ("/art/releases", StatusCode::OK),
        ("/art/artists", StatusCode::OK),
        ("/social/posts", StatusCode::OK),
        ("/core/groups", StatusCode::OK),
        ("/explore", StatusCode::OK),
        ("/nothing/here", StatusCode::NOT_FOUND),
        ("/art/releases/new", StatusCode::SEE_OTHER),
        ("/account", StatusCode::SEE_OTHER),
        ("/node", StatusCode::SEE_OTHER),
    ] {
        let p = visitor.get(uri).await;
        assert_eq!(p.status, status, "GET {uri}: {}", p.body);
    }
    let home = visitor.get("/").await;
    assert!(home.body.contains("New on this node"));
    assert!(home.body.contains(">Log in<") && home.body.contains(">Sign up<"));
    // Every kind has its list page.
    for kind in mnode_dag::registry::KINDS {
        let uri = format!("/{}/{}", kind.namespace(), kind.collection);
        assert_eq!(visitor.get(&uri).await.status, StatusCode::OK, "{uri}");
    }

    let mut alice = Browser::new(&t.router);
    alice.sign_up("alice").await;
    let home = alice.get("/").await;
    assert!(home.body.contains("Timeline"), "{}", home.body);
    assert!(home.body.contains(">Log out<"));
    for uri in [
        "/account",
        "/following",
        "/art/releases/new",
        "/social/posts/new",
    ] {
        let p = alice.get(uri).await;
        assert_eq!(p.status, StatusCode::OK, "GET {uri}: {}", p.body);
    }
    // Every kind people write has its New form (key logs are written by key rotation).
    for kind in mnode_dag::registry::KINDS {
        let uri = format!("/{}/{}/new", kind.namespace(), kind.collection);
        let expected = if mnode_api::ops::SYSTEM_KINDS.contains(&kind.name) {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        };
        assert_eq!(alice.get(&uri).await.status, expected, "{uri}");
    }
    // The node page is for admins.
    assert_eq!(alice.get("/node").await.status, StatusCode::FORBIDDEN);
    let mut owner = Browser::new(&t.router);
    owner.log_in("owner").await;
    let node = owner.get("/node").await;
    assert_eq!(node.status, StatusCode::OK);
    assert!(node.body.contains("Multiaddr") && node.body.contains(">Connect<"));
    t.node.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_new_account_gets_its_profile_and_a_weak_password_is_explained() {
    let t = setup().await;
    let mut b = Browser::new(&t.router);
    b.get("/signup").await;
    let weak = b
        .post(
            "/signup",
            &[
                ("handle", "bob"),
                ("email", "bob@example.org"),
                ("password", "bob"),
            ],
        )
        .await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        weak.body.contains("value=\"bob@example.org\""),
        "what was typed is kept"
    );
    assert!(weak.body.contains("role=\"alert\""));
    b.sign_up("bob").await;
    let profiles = b.get("/core/profiles").await;
    assert!(profiles.body.contains(">bob<"), "{}", profiles.body);
    let taken = Browser::new(&t.router)
        .clone()
        .post_with("/signup", &[], Some(""))
        .await;
    assert_eq!(taken.status, StatusCode::FORBIDDEN);
    t.node.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_phone_number_is_optional_kept_in_e164_and_changed_on_the_account_page() {
    let t = setup().await;
    let mut b = Browser::new(&t.router);
    let signup = b.get("/signup").await;
    assert!(
        signup
            .body
            .contains("<label for=\"phone\">Phone (optional)</label>"),
        "{}",
        signup.body
    );
    let fields = |phone: &'static str| {
        [
            ("handle", "dora"),
            ("email", "dora@example.org"),
            ("phone", phone),
            ("password", PASSWORD),
        ]
    };
    // A number without its country code is explained at the phone field; what was typed stays.
    let bad = b.post("/signup", &fields("030 901820")).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert!(bad.body.contains("id=\"phone-error\""), "{}", bad.body);
    assert!(
        bad.body.contains("with + and the country code"),
        "{}",
        bad.body
    );
    assert!(bad.body.contains("value=\"030 901820\""), "{}", bad.body);
    let made = b.post("/signup", &fields("+49 30 901820")).await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    let account = b.get("/account").await;
    assert!(account.body.contains("+4930901820"), "{}", account.body);

    // Someone else cannot take it; its holder changes and removes it.
    let mut other = Browser::new(&t.router);
    other.sign_up("erin").await;
    other.get("/account").await;
    let taken = other
        .post("/account/phone", &[("phone", "+4930901820")])
        .await;
    assert_eq!(taken.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        taken
            .body
            .contains("Not changed: the phone number +4930901820 is used by another account"),
        "{}",
        taken.body
    );
    let changed = b
        .post("/account/phone", &[("phone", "+1 201 555 0123")])
        .await;
    assert_eq!(changed.status, StatusCode::OK);
    assert!(
        changed.body.contains("Phone number saved as +12015550123."),
        "{}",
        changed.body
    );
    let removed = b.post("/account/phone", &[("phone", "")]).await;
    assert!(
        removed.body.contains("Phone number removed."),
        "{}",
        removed.body
    );
    assert_eq!(
        other
            .post("/account/phone", &[("phone", "+4930901820")])
            .await
            .status,
        StatusCode::OK,
        "free again"
    );
    t.node.shutdown().await.unwrap();
}

#[tokio::test]
async fn forms_without_the_token_or_from_another_site_are_refused() {
    let t = setup().await;
    let mut b = Browser::new(&t.router);
    b.sign_up("carol").await;
    let fields = [("text", "hello")];
    let before = b.get("/social/posts").await.body;
    assert_eq!(
        b.post_with("/social/posts/new", &fields, Some(""))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        b.post_with("/social/posts/new", &fields, Some(&"0".repeat(64)))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let cross = Request::post("/social/posts/new")
        .header(header::COOKIE, b.cookie_header())
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "cross-site")
        .body(Body::from(format!("_csrf={}&text=hello", b.csrf())))
        .unwrap();
    assert_eq!(b.send(cross).await.status, StatusCode::FORBIDDEN);
    let multipart_without_token = Request::post("/upload")
        .header(header::COOKIE, b.cookie_header())
        .header(header::CONTENT_TYPE, "multipart/form-data; boundary=X")
        .body(Body::from(
            "--X\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nhi\r\n--X--\r\n",
        ))
        .unwrap();
    assert_eq!(
        b.send(multipart_without_token).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        b.get("/social/posts").await.body,
        before,
        "nothing was posted"
    );
    // Logged out: a form that needs an account sends the person to log in.
    let mut visitor = Browser::new(&t.router);
    visitor.get("/").await;
    let p = visitor.post("/social/posts/new", &fields).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert!(p.location().starts_with("/login"));
    t.node.shutdown().await.unwrap();
}

const XSS: &str = "<script>window.__xss=1</script><img src=x onerror=\"window.__xss=2\">";

#[tokio::test]
async fn user_text_renders_as_text_everywhere() {
    let t = setup().await;
    let mut b = Browser::new(&t.router);
    b.sign_up("dave").await;
    let post = b
        .post("/social/posts/new", &[("text", XSS), ("tags", "test/xss")])
        .await;
    assert_eq!(post.status, StatusCode::SEE_OTHER, "{}", post.body);
    let artist = b
        .post(
            "/art/artists/new",
            &[("name.full", XSS), ("bio", XSS), ("tags", "a")],
        )
        .await;
    assert_eq!(artist.status, StatusCode::SEE_OTHER, "{}", artist.body);
    let release = b
        .post(
            "/art/releases/new",
            &[
                ("title.full", XSS),
                ("description", XSS),
                ("license", XSS),
                ("artists", &id_in(artist.location())),
                ("artists__new", XSS),
            ],
        )
        .await;
    assert_eq!(release.status, StatusCode::SEE_OTHER, "{}", release.body);
    let profile_id = {
        let list = b.get("/core/profiles").await.body;
        let at = list.find("/core/profiles/bafy").unwrap();
        list[at + "/core/profiles/".len()..]
            .split('"')
            .next()
            .unwrap()
            .to_owned()
    };
    let edited = b
        .post(
            &format!("/core/profiles/{profile_id}/edit"),
            &[("handle", "dave"), ("display_name", XSS), ("bio", XSS)],
        )
        .await;
    assert_eq!(edited.status, StatusCode::SEE_OTHER, "{}", edited.body);
    for uri in [
        post.location().to_owned(),
        artist.location().to_owned(),
        release.location().to_owned(),
        format!("/core/profiles/{profile_id}"),
        "/social/posts".to_owned(),
        "/art/artists".to_owned(),
        "/art/releases".to_owned(),
        "/core/profiles".to_owned(),
        format!("{}/history", release.location()),
        format!("{}/edit", release.location()),
    ] {
        let p = b.get(&uri).await;
        assert_eq!(p.status, StatusCode::OK, "{uri}");
        assert!(
            !p.body.contains("<script>window"),
            "{uri} ran a script: {}",
            p.body
        );
        assert!(!p.body.contains("<img src=x"), "{uri} made an element");
        // Lists show a profile by its handle; every other page shows the payload as text.
        if uri != "/core/profiles" {
            assert!(
                p.body.contains("&lt;script&gt;") || p.body.contains("&lt;img"),
                "{uri} shows the text"
            );
        }
    }
    t.node.shutdown().await.unwrap();
}

#[tokio::test]
async fn edit_history_and_delete_make_signed_versions_and_only_the_author_may() {
    let t = setup().await;
    let mut erin = Browser::new(&t.router);
    erin.sign_up("erin").await;
    let made = erin
        .post("/art/artists/new", &[("name.full", "First Name")])
        .await;
    let page = made.location().to_owned();
    // An invalid edit keeps what was typed and says which field.
    let bad = erin
        .post(&format!("{page}/edit"), &[("name.full", "  ")])
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("aria-invalid=\"true\""));
    let saved = erin
        .post(&format!("{page}/edit"), &[("name.full", "Second Name")])
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert!(erin.get(&page).await.body.contains("Second Name"));
    let history = erin.get(&format!("{page}/history")).await.body;
    assert!(history.contains("Version 0") && history.contains("Version 1"));
    assert!(
        history.contains("Name: <del>First Name</del> → <ins>Second Name</ins>"),
        "the diff names the field and shows both values: {history}"
    );

    let mut frank = Browser::new(&t.router);
    frank.sign_up("frank").await;
    let read = frank.get(&page).await.body;
    assert!(!read.contains(">Edit<"), "no Edit for others");
    let refused = frank
        .post(&format!("{page}/edit"), &[("name.full", "Hijacked")])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        frank.post(&format!("{page}/delete"), &[]).await.status,
        StatusCode::FORBIDDEN
    );
    assert!(erin.get(&page).await.body.contains("Second Name"));

    let confirm = erin.get(&format!("{page}/delete")).await;
    assert!(confirm.body.contains(">Delete<") && confirm.body.contains("History"));
    let gone = erin.post(&format!("{page}/delete"), &[]).await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER);
    assert_eq!(gone.location(), "/art/artists");
    assert!(erin.get(&page).await.body.contains("was deleted"));
    t.node.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_node_that_forbids_deletion_offers_no_delete_for_accounts_and_artists() {
    let t = support::setup_with(&["api.forbid_deletion=true"]).await;
    let mut erin = Browser::new(&t.router);
    erin.sign_up("erin").await;
    let artist = erin
        .post("/art/artists/new", &[("name.full", "Kept Name")])
        .await;
    let artist = artist.location().to_owned();
    let post = erin
        .post("/social/posts/new", &[("text", "gone soon")])
        .await;
    let post = post.location().to_owned();
    let delete_link = |page: &str| format!("href=\"{page}/delete\"");

    let page = erin.get(&artist).await;
    assert!(page.body.contains(">Edit<"), "{}", page.body);
    assert!(!page.body.contains(&delete_link(&artist)), "{}", page.body);
    // Posts are deleted as usual.
    assert!(erin.get(&post).await.body.contains(&delete_link(&post)));
    // Asked anyway, the node says why, and the artist stays.
    let refused = erin.post(&format!("{artist}/delete"), &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused.body.contains("api.forbid_deletion"),
        "{}",
        refused.body
    );
    assert!(erin.get(&artist).await.body.contains("Kept Name"));

    let account = erin.get("/account").await;
    assert!(
        account.body.contains("This node keeps its accounts"),
        "{}",
        account.body
    );
    assert!(!account.body.contains("href=\"/account/delete\""));
    let refused = erin.post("/account/delete", &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        erin.get("/account").await.status,
        StatusCode::OK,
        "still here"
    );
    t.node.shutdown().await.unwrap();
}

#[tokio::test]
async fn pages_send_their_guards_and_partials() {
    let t = setup().await;
    let mut b = Browser::new(&t.router);
    let home = b.get("/").await;
    let csp = home.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    assert!(csp.contains("form-action 'self'"));
    let cookie = home.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(home.body.contains("<html"));
    // htmx asks for the partial.
    let req = Request::get("/")
        .header("hx-request", "true")
        .header(header::COOKIE, b.cookie_header())
        .body(Body::empty())
        .unwrap();
    let partial = b.send(req).await;
    assert!(!partial.body.contains("<html"));
    assert!(partial.body.contains("New on this node"));
    let vary: Vec<_> = partial.headers.get_all(header::VARY).iter().collect();
    assert!(
        vary.iter()
            .any(|v| v.to_str().unwrap().contains("HX-Request"))
    );
    // Assets are embedded and cached by their hash.
    let at = home.body.find("/assets/").unwrap();
    let css = home.body[at..].split('"').next().unwrap().to_owned();
    let asset = b.get(&css).await;
    assert_eq!(asset.status, StatusCode::OK);
    assert!(
        asset.headers[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    // The API's answers stay the API's.
    let api = b.get("/api/v1/nothing").await;
    assert_eq!(api.status, StatusCode::NOT_FOUND);
    assert!(api.body.starts_with('{'), "{}", api.body);
    t.node.shutdown().await.unwrap();
}

#[tokio::test]
async fn following_an_author_puts_their_posts_on_the_timeline() {
    let t = setup().await;
    let mut gail = Browser::new(&t.router);
    gail.sign_up("gail").await;
    let mut hank = Browser::new(&t.router);
    hank.sign_up("hank").await;
    let account = hank.get("/account").await.body;
    let at = account.find("/authors/did:key:").unwrap();
    let did = account[at + "/authors/".len()..]
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let before = hank
        .post("/social/posts/new", &[("text", "before the follow")])
        .await;
    assert_eq!(before.status, StatusCode::SEE_OTHER);
    assert!(!gail.get("/").await.body.contains("before the follow"));
    let author = gail.get(&format!("/authors/{did}")).await.body;
    assert!(
        author.contains("@hank") && author.contains(">Follow<"),
        "{author}"
    );
    let followed = gail
        .post(
            "/follow",
            &[("topic", &did), ("back", &format!("/authors/{did}"))],
        )
        .await;
    assert_eq!(followed.status, StatusCode::SEE_OTHER);
    assert!(
        gail.get(&format!("/authors/{did}"))
            .await
            .body
            .contains(">Unfollow<")
    );
    assert!(gail.get("/following").await.body.contains("@hank"));
    hank.post("/social/posts/new", &[("text", "after the follow")])
        .await;
    let home = gail.get("/").await.body;
    assert!(
        home.contains("after the follow") && home.contains("before the follow"),
        "{home}"
    );
    // Her own posts are on her timeline too.
    gail.post("/social/posts/new", &[("text", "my own words")])
        .await;
    assert!(gail.get("/").await.body.contains("my own words"));
    let unfollowed = gail.post("/unfollow", &[("topic", &did)]).await;
    assert_eq!(unfollowed.status, StatusCode::SEE_OTHER);
    assert!(!gail.get("/").await.body.contains("after the follow"));
    t.node.shutdown().await.unwrap();
}

/// A 1×1 PNG.
fn png() -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0".to_vec();
    v.extend_from_slice(&[0x90, 0x77, 0x53, 0xde]);
    v.extend_from_slice(b"\0\0\0\x0cIDAT\x08\xd7c\xf8\xcf\xc0\0\0\x03\x01\x01\0");
    v.extend_from_slice(&[0x18, 0xdd, 0x8d, 0xb0]);
    v.extend_from_slice(b"\0\0\0\0IEND\xaeB`\x82");
    v
}

/// A tenth of a second of silence as 8 kHz mono 16-bit PCM.
fn wav() -> Vec<u8> {
    let samples = 800u32;
    let data = samples * 2;
    let mut v = b"RIFF".to_vec();
    v.extend_from_slice(&(36 + data).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&8000u32.to_le_bytes());
    v.extend_from_slice(&16000u32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&16u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&data.to_le_bytes());
    v.resize(v.len() + data as usize, 0);
    v
}

#[tokio::test]
async fn a_release_made_with_a_plain_form_plays_its_files() {
    let t = setup().await;
    let mut b = Browser::new(&t.router);
    b.sign_up("ivy").await;
    let boundary = "XyZ";
    let mut body = Vec::new();
    let mut text = |name: &str, value: &str| {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    };
    text("_csrf", &b.csrf());
    text("title.full", "Home Recordings");
    text("artists__new", "The Kitchen Band");
    text("cover", "");
    text("date", "2026-12");
    let mut file = |name: &str, file_name: &str, kind: &str, bytes: &[u8]| {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\nContent-Type: {kind}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    };
    file("cover", "cover.png", "image/png", &png());
    file("files", "song.wav", "audio/wav", &wav());
    file("files", "", "application/octet-stream", b"");
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let req = Request::post("/art/releases/new")
        .header(header::COOKIE, b.cookie_header())
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header("sec-fetch-site", "same-origin")
        .body(Body::from(body))
        .unwrap();
    let made = b.send(req).await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    let page = b.get(made.location()).await.body;
    assert!(page.contains("<h1>Home Recordings</h1>"), "{page}");
    assert!(page.contains("The Kitchen Band"));
    assert!(page.contains("alt=\"Cover of Home Recordings\""));
    let at = page.find("<audio").expect("a player");
    let src = page[at..]
        .split("src=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    assert!(src.starts_with("/ipfs/bafkr4i"), "{src}");
    let ranged = Request::get(&src)
        .header(header::RANGE, "bytes=0-43")
        .body(Body::empty())
        .unwrap();
    let part = b.send(ranged).await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert!(
        part.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("audio/")
    );
    assert!(page.contains("Download CAR"));
    // Each file also names its UnixFS CID, which IPFS clients fetch it by (a file this small
    // is one raw leaf), and the gateway serves the same bytes by it.
    let at = page
        .find("<a href=\"/ipfs/bafkrei")
        .expect("the file's UnixFS CID");
    let ipfs = page[at..].split('"').nth(1).unwrap().to_owned();
    assert!(page[at..].contains(&format!("data-copy=\"{}\"", &ipfs["/ipfs/".len()..])));
    let by_ipfs = b
        .send(Request::get(&ipfs).body(Body::empty()).unwrap())
        .await;
    assert_eq!(by_ipfs.status, StatusCode::OK);
    let by_blob = b
        .send(Request::get(&src).body(Body::empty()).unwrap())
        .await;
    assert_eq!(by_ipfs.body, by_blob.body);
    t.node.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_node_page_verifies_and_collects_and_explore_checks_signatures() {
    let t = setup().await;
    let mut owner = Browser::new(&t.router);
    owner.log_in("owner").await;
    let made = owner
        .post("/social/posts/new", &[("text", "a signed post")])
        .await;
    let id = id_in(made.location());
    let verified = owner.post("/node/verify", &[]).await;
    assert_eq!(verified.status, StatusCode::OK);
    assert!(verified.body.contains("all intact"), "{}", verified.body);
    let collected = owner.post("/node/gc", &[]).await;
    assert!(collected.body.contains("Garbage collected"));
    let bad = owner
        .post("/node/connect", &[("addr", "not an address")])
        .await;
    assert!(bad.body.contains("is not a multiaddr"));
    let explored = owner.get(&format!("/explore/{id}")).await;
    assert_eq!(explored.status, StatusCode::OK);
    assert!(explored.body.contains("Signature: valid"));
    assert!(explored.body.contains("Version 0"));
    assert!(explored.body.contains(&format!("/ipfs/{id}?format=car")));
    assert_eq!(
        owner.get("/explore/not-a-cid").await.status,
        StatusCode::BAD_REQUEST
    );
    let unknown = mnode_dag::cids::record_cid(b"nothing").to_string();
    assert_eq!(
        owner.get(&format!("/explore/{unknown}")).await.status,
        StatusCode::NOT_FOUND
    );
    let search = owner.get(&format!("/explore?cid={id}")).await;
    assert_eq!(search.status, StatusCode::SEE_OTHER);
    // Someone who is not an admin may do none of it.
    let mut user = Browser::new(&t.router);
    user.sign_up("jill").await;
    for uri in ["/node/verify", "/node/gc"] {
        assert_eq!(
            user.post(uri, &[]).await.status,
            StatusCode::FORBIDDEN,
            "{uri}"
        );
    }
    t.node.shutdown().await.unwrap();
}

/// The id in a location like `/threads/<id>#post-<id>`.
fn id_before_hash(location: &str) -> String {
    id_in(location.split('#').next().unwrap())
}

#[tokio::test]
async fn forums_branches_and_threads_are_read_and_written_through_their_pages() {
    let t = setup().await;
    let mut alice = Browser::new(&t.router);
    alice.sign_up("alice").await;
    let mut visitor = Browser::new(&t.router);

    // A forum, made with the generic form, opens on its own page.
    let made = alice
        .post(
            "/social/forums/new",
            &[
                ("name", "Kitchen Music"),
                ("description", "Songs made at home"),
                ("rules", "Be kind."),
                ("tags", "music, music/jazz"),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    assert!(
        made.location().starts_with("/forums/"),
        "{}",
        made.location()
    );
    let forum = id_in(made.location());
    let generic = visitor.get(&format!("/social/forums/{forum}")).await;
    assert_eq!(generic.status, StatusCode::SEE_OTHER);
    assert_eq!(generic.location(), format!("/forums/{forum}"));

    let list = visitor.get("/forums").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains("Kitchen Music") && list.body.contains("0 branches"));
    assert!(
        !list.body.contains(">New forum<"),
        "visitors get no New forum"
    );
    assert!(alice.get("/forums").await.body.contains(">New forum<"));
    let page = visitor.get(&format!("/forums/{forum}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Be kind.") && page.body.contains("href=\"/tags/music/jazz\""));
    assert!(!page.body.contains(">New branch<"));
    assert!(
        alice
            .get(&format!("/forums/{forum}"))
            .await
            .body
            .contains(">New branch<")
    );

    // New branch: refused without a name (422, what was typed kept, nothing written).
    let url = format!("/forums/{forum}/new-branch");
    assert_eq!(alice.get(&url).await.status, StatusCode::OK);
    assert_eq!(visitor.get(&url).await.status, StatusCode::SEE_OTHER);
    let refused = alice
        .post(
            &url,
            &[("name", " "), ("description", "Only jazz"), ("parent", "")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.body.contains("Name must not be empty."),
        "{}",
        refused.body
    );
    assert!(refused.body.contains(">Only jazz</textarea>"));
    assert!(visitor.get("/forums").await.body.contains("0 branches"));
    let jazz = alice
        .post(
            &url,
            &[
                ("name", "Jazz"),
                ("description", "Only jazz"),
                ("parent", ""),
            ],
        )
        .await;
    assert_eq!(jazz.status, StatusCode::SEE_OTHER, "{}", jazz.body);
    let jazz = id_in(jazz.location());
    let bebop = alice
        .post(&url, &[("name", "Bebop"), ("parent", &jazz)])
        .await;
    assert_eq!(bebop.status, StatusCode::SEE_OTHER, "{}", bebop.body);
    let page = visitor.get(&format!("/forums/{forum}")).await.body;
    let (at_jazz, at_bebop) = (page.find(">Jazz<").unwrap(), page.find(">Bebop<").unwrap());
    assert!(
        page[at_jazz..at_bebop].contains("<ul class=\"branches\">"),
        "the sub-branch is nested under its parent"
    );

    // New thread: both the title and the text are needed; nothing is written otherwise.
    let branch = visitor.get(&format!("/branches/{jazz}")).await;
    assert_eq!(branch.status, StatusCode::OK);
    assert!(branch.body.contains("Log in to start a thread"));
    assert!(branch.body.contains("No threads here yet"));
    let url = format!("/branches/{jazz}/new-thread");
    assert_eq!(alice.get(&url).await.status, StatusCode::OK);
    let no_title = alice
        .post(&url, &[("title", ""), ("text", "Kept text"), ("tags", "")])
        .await;
    assert_eq!(no_title.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        no_title.body.contains("Title must not be empty.")
            && no_title.body.contains(">Kept text</textarea>")
    );
    let no_text = alice
        .post(&url, &[("title", "Kept title"), ("text", ""), ("tags", "")])
        .await;
    assert_eq!(no_text.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        no_text.body.contains("Text must not be empty.")
            && no_text.body.contains("value=\"Kept title\"")
    );
    let bad_tag = alice
        .post(
            &url,
            &[("title", "T"), ("text", "x"), ("tags", "Not A Tag")],
        )
        .await;
    assert_eq!(bad_tag.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        visitor
            .get(&format!("/branches/{jazz}"))
            .await
            .body
            .contains("No threads here yet")
    );
    let started = alice
        .post(
            &url,
            &[
                ("title", "Favourite standards"),
                ("text", "Mine is Autumn Leaves."),
                ("tags", "music/jazz"),
            ],
        )
        .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    assert!(started.location().starts_with("/threads/"));
    let thread = id_before_hash(started.location());
    let first = started
        .location()
        .split("#post-")
        .nth(1)
        .unwrap()
        .to_owned();
    let branch = visitor.get(&format!("/branches/{jazz}")).await.body;
    assert!(
        branch.contains("Favourite standards") && branch.contains("0 replies"),
        "{branch}"
    );
    let page = visitor.get(&format!("/threads/{thread}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Mine is Autumn Leaves.") && page.body.contains("Log in to reply"));
    assert!(!page.body.contains(">Reply<"), "visitors get no Reply");
    assert_eq!(
        visitor
            .get(&format!("/social/threads/{thread}"))
            .await
            .location(),
        format!("/threads/{thread}")
    );
    assert!(
        visitor
            .get("/tags/music/jazz")
            .await
            .body
            .contains("Favourite standards")
    );

    // Bob replies to Alice's post: refused empty, then in place (htmx) and as a plain form.
    let mut bob = Browser::new(&t.router);
    bob.sign_up("bob").await;
    let url = format!("/threads/{thread}/reply");
    let form = bob.get_hx(&format!("{url}?to={first}")).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(!form.body.contains("<html"), "a partial for htmx");
    assert!(form.body.contains("<blockquote>") && form.body.contains("Mine is Autumn Leaves."));
    assert!(form.body.contains(">Text <") && form.body.contains(">Reply</button>"));
    assert!(
        bob.get(&format!("{url}?to={first}"))
            .await
            .body
            .contains("<html")
    );
    let empty = bob
        .post_hx(&url, &[("parent", &first), ("text", "  ")])
        .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(empty.body.contains("Text must not be empty."));
    let answer = bob
        .post_hx(
            &url,
            &[("parent", &first), ("text", "Mine is Blue in Green.")],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert!(answer.body.contains("Mine is Blue in Green.") && answer.body.contains(">@bob<"));
    let reply = answer
        .body
        .split("id=\"post-")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let plain = bob
        .post(&url, &[("parent", &reply), ("text", "And So What.")])
        .await;
    assert_eq!(plain.status, StatusCode::SEE_OTHER);
    assert!(
        plain
            .location()
            .starts_with(&format!("/threads/{thread}#post-"))
    );
    let deeper = plain.location().split("#post-").nth(1).unwrap().to_owned();
    let not_in = bob
        .post(
            &url,
            &[
                ("parent", &mnode_dag::cids::record_cid(b"x").to_string()),
                ("text", "lost"),
            ],
        )
        .await;
    assert_eq!(not_in.status, StatusCode::BAD_REQUEST);
    let page = bob.get(&format!("/threads/{thread}")).await.body;
    let (a, b, c) = (
        page.find(&format!("id=\"post-{first}\"")).unwrap(),
        page.find(&format!("id=\"post-{reply}\"")).unwrap(),
        page.find(&format!("id=\"post-{deeper}\"")).unwrap(),
    );
    assert!(a < b && b < c);
    assert!(
        page[a..b].contains("<ul class=\"tree\">"),
        "the reply is nested under its parent"
    );
    assert!(
        page[b..c].contains("<ul class=\"tree\">"),
        "and its reply under it"
    );
    assert!(!page.contains("lost"));
    assert!(
        visitor
            .get(&format!("/branches/{jazz}"))
            .await
            .body
            .contains("2 replies")
    );
    let post_page = visitor.get(&format!("/social/posts/{reply}")).await.body;
    assert!(post_page.contains(&format!("/threads/{thread}#post-{reply}")));
    // The conversation under one post.
    let under = visitor
        .get(&format!("/threads/{thread}?post={reply}"))
        .await
        .body;
    assert!(under.contains("Blue in Green") && !under.contains("Autumn Leaves"));
    // Logged out, a reply goes to the login page.
    visitor.get("/").await;
    let p = visitor.post(&url, &[("text", "hi")]).await;
    assert!(p.location().starts_with("/login"));

    // Alice forks at Bob's reply.
    let url = format!("/threads/{thread}/fork");
    let form = alice.get(&format!("{url}?at={reply}")).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("value=\"Favourite standards (fork)\""));
    let refused = alice.post(&url, &[("at", &reply), ("title", "")]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("Title must not be empty."));
    let forked = alice
        .post(&url, &[("at", &reply), ("title", "Modal jazz")])
        .await;
    assert_eq!(forked.status, StatusCode::SEE_OTHER, "{}", forked.body);
    let fork = id_in(forked.location());
    let page = visitor.get(&format!("/threads/{fork}")).await.body;
    assert!(page.contains("Forked from") && page.contains(&format!("href=\"/threads/{thread}\"")));
    assert!(
        page.contains("Blue in Green"),
        "the post forked at is quoted"
    );
    let original = visitor.get(&format!("/threads/{thread}")).await.body;
    assert!(original.contains(">Forks<") && original.contains("Modal jazz"));
    // A fork's first reply answers the post it forked at.
    let first_in_fork = alice
        .post(
            &format!("/threads/{fork}/reply"),
            &[("text", "Kind of Blue, then.")],
        )
        .await;
    assert_eq!(first_in_fork.status, StatusCode::SEE_OTHER);
    assert!(
        visitor
            .get(&format!("/threads/{fork}"))
            .await
            .body
            .contains("Kind of Blue, then.")
    );
    t.node.shutdown().await.unwrap();
}

#[tokio::test]
async fn facts_show_their_tree_and_take_context() {
    let t = setup().await;
    let mut alice = Browser::new(&t.router);
    alice.sign_up("alice").await;
    let made = alice
        .post("/info/facts/new", &[("statement", "Water boils at 100 °C")])
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    assert!(made.location().starts_with("/facts/"));
    let fact = id_in(made.location());
    let mut visitor = Browser::new(&t.router);
    assert!(visitor.get("/facts").await.body.contains("Water boils"));
    let page = visitor.get(&format!("/facts/{fact}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("Log in to add context") && !page.body.contains(">Add context</button>")
    );
    assert_eq!(
        visitor.get(&format!("/info/facts/{fact}")).await.location(),
        format!("/facts/{fact}")
    );

    let url = format!("/facts/{fact}/context");
    let refused = alice
        .post(
            &url,
            &[
                ("note", ""),
                ("source_title", "Handbook"),
                ("source_url", ""),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.body.contains("Note must not be empty.")
            && refused.body.contains("value=\"Handbook\"")
    );
    let bad_url = alice
        .post(
            &url,
            &[
                ("note", "At sea level."),
                ("source_title", "Handbook"),
                ("source_url", "nowhere"),
            ],
        )
        .await;
    assert_eq!(bad_url.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad_url.body.contains("Source URL") && bad_url.body.contains(">At sea level.</textarea>")
    );
    assert!(
        visitor
            .get(&format!("/facts/{fact}"))
            .await
            .body
            .contains("No context notes yet.")
    );
    let added = alice
        .post(
            &url,
            &[
                ("note", "At sea level."),
                ("source_title", "Handbook"),
                ("source_url", "https://example.org/h"),
            ],
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    let page = visitor.get(&format!("/facts/{fact}")).await.body;
    assert!(
        page.contains("At sea level.")
            && page.contains("href=\"https://example.org/h\"")
            && page.contains(">@alice<")
    );

    let url = format!("/facts/{fact}/facts");
    assert_eq!(
        alice
            .post(
                &url,
                &[("statement", ""), ("source_title", ""), ("source_url", "")]
            )
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let under = alice
        .post(
            &url,
            &[
                ("statement", "At 1 atm"),
                ("source_title", ""),
                ("source_url", ""),
            ],
        )
        .await;
    assert_eq!(under.status, StatusCode::SEE_OTHER);
    let sub = under.location().split("#fact-").nth(1).unwrap().to_owned();
    let deeper = alice
        .post(
            &format!("/facts/{sub}/facts"),
            &[("statement", "Exactly 1 atm")],
        )
        .await;
    assert_eq!(deeper.status, StatusCode::SEE_OTHER);
    let page = visitor.get(&format!("/facts/{fact}")).await.body;
    let (a, b) = (
        page.find("At 1 atm").unwrap(),
        page.find("Exactly 1 atm").unwrap(),
    );
    assert!(
        a < b && page[a..b].contains("<ul class=\"facts\">"),
        "a sub-fact nests under its parent"
    );
    let sub_page = visitor.get(&format!("/facts/{sub}")).await.body;
    assert!(
        sub_page.contains(&format!("href=\"/facts/{fact}\"")),
        "a fact links its parent"
    );
    t.node.shutdown().await.unwrap();
}

/// The did of the account signed in on `b` (through the API, with its session token).
async fn did_of(b: &Browser) -> String {
    let token = b.cookies.get("mnode_session").cloned().unwrap();
    support::api::did_of(&b.router, &token).await
}

#[tokio::test]
async fn moderators_hide_and_ban_from_the_thread_and_anyone_mutes() {
    let t = setup().await;
    let (mut olga, mut mia, mut troll, mut visitor) = (
        Browser::new(&t.router),
        Browser::new(&t.router),
        Browser::new(&t.router),
        Browser::new(&t.router),
    );
    olga.sign_up("olga").await;
    mia.sign_up("mia").await;
    troll.sign_up("troll").await;
    let made = olga.post("/social/forums/new", &[("name", "Tape")]).await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    let forum = id_in(made.location());
    let page = olga.get(&format!("/forums/{forum}")).await.body;
    assert!(
        page.contains("aria-label=\"Follow Tape\""),
        "Follow forum: {page}"
    );
    assert!(
        page.contains(">Add moderator<"),
        "the owner adds moderators"
    );
    // Only the owner, and only someone this node knows (or a did:key).
    let mods = format!("/forums/{forum}/moderators");
    assert!(
        !troll
            .get(&format!("/forums/{forum}"))
            .await
            .body
            .contains(">Add moderator<")
    );
    assert_eq!(
        troll.post(&mods, &[("who", "mia")]).await.status,
        StatusCode::FORBIDDEN
    );
    let unknown = olga.post(&mods, &[("who", "@nobody")]).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{}", unknown.body);
    let added = olga.post(&mods, &[("who", "@mia")]).await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    let page = olga.get(&format!("/forums/{forum}")).await.body;
    assert!(
        page.contains("aria-label=\"Remove @mia as moderator\""),
        "{page}"
    );
    let branch = olga
        .post(
            &format!("/forums/{forum}/new-branch"),
            &[("name", "Decks"), ("parent", "")],
        )
        .await;
    let branch = id_in(branch.location());
    let started = olga
        .post(
            &format!("/branches/{branch}/new-thread"),
            &[
                ("title", "Hiss"),
                ("text", "How do you clean heads?"),
                ("tags", ""),
            ],
        )
        .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let thread = id_before_hash(started.location());
    troll.get(&format!("/threads/{thread}")).await;
    let spam = troll
        .post(
            &format!("/threads/{thread}/reply"),
            &[("text", "cheap watches")],
        )
        .await;
    assert_eq!(spam.status, StatusCode::SEE_OTHER, "{}", spam.body);
    let spam = spam.location().rsplit("#post-").next().unwrap().to_owned();
    let url = format!("/threads/{thread}");

    // A reply written with formatting (Markdown, what the editor posts) keeps it.
    let rich = olga
        .post(
            &format!("/threads/{thread}/reply"),
            &[(
                "text",
                "Use **isopropyl** and [a swab](https://example.org/swab).",
            )],
        )
        .await;
    assert_eq!(rich.status, StatusCode::SEE_OTHER, "{}", rich.body);
    let seen = visitor.get(&url).await.body;
    assert!(seen.contains("<strong>isopropyl</strong>"), "{seen}");
    assert!(
        seen.contains(r#"href="https://example.org/swab""#),
        "{seen}"
    );
    assert!(
        olga.get(&url).await.body.contains("editor.js"),
        "members get the editor"
    );

    // Only the moderator (and the owner) get the moderation buttons.
    assert!(!troll.get(&url).await.body.contains(">Ban from forum<"));
    assert!(!visitor.get(&url).await.body.contains(">Moderate<"));
    let as_mod = mia.get(&url).await.body;
    assert!(
        as_mod.contains(">Hide<") && as_mod.contains(">Ban from forum<"),
        "{as_mod}"
    );

    // Anyone else's decision is refused and changes nothing.
    let hide = |back: &str| {
        vec![
            ("forum", forum.clone()),
            ("action", "hide".to_owned()),
            ("target", spam.clone()),
            ("reason", "spam".to_owned()),
            ("back", back.to_owned()),
        ]
    };
    let fields = hide(&url);
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let refused = troll.post("/moderate", &fields).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(
        !visitor
            .get(&url)
            .await
            .body
            .contains("Hidden by a moderator")
    );

    // The moderator hides it: everyone sees it folded away behind the reason.
    let done = mia.post("/moderate", &fields).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location(), url);
    let seen = visitor.get(&url).await.body;
    assert!(seen.contains("Hidden by a moderator: spam"), "{seen}");
    assert!(mia.get(&url).await.body.contains(">Unhide<"));

    // Olga mutes the troll for herself only.
    let troll_did = did_of(&troll).await;
    let muted = olga
        .post(
            "/mute",
            &[("author", &troll_did), ("on", "true"), ("back", &url)],
        )
        .await;
    assert_eq!(muted.status, StatusCode::SEE_OTHER, "{}", muted.body);
    let ban = [
        ("forum", forum.as_str()),
        ("action", "ban"),
        ("author", troll_did.as_str()),
        ("reason", "again"),
        ("back", url.as_str()),
    ];
    assert_eq!(
        mia.post("/moderate", &ban).await.status,
        StatusCode::SEE_OTHER
    );
    let later = troll
        .post(
            &format!("/threads/{thread}/reply"),
            &[("text", "more watches")],
        )
        .await;
    assert_eq!(later.status, StatusCode::SEE_OTHER);
    let seen = visitor.get(&url).await.body;
    assert!(
        seen.contains("Author banned from this forum: again"),
        "{seen}"
    );
    let olga_sees = olga.get(&url).await.body;
    assert!(
        olga_sees.contains("aria-label=\"Unmute @troll\""),
        "{olga_sees}"
    );
    assert!(!mia.get(&url).await.body.contains("You muted"));
}

#[tokio::test]
async fn key_logs_are_read_and_explored_but_never_made_by_hand() {
    let t = setup().await;
    let mut alice = Browser::new(&t.router);
    // Signing up writes alice's key log.
    alice.sign_up("alice").await;

    // No New form to choose, nor a link to one.
    let list = alice.get("/core/keys").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(!list.body.contains("/core/keys/new"), "{}", list.body);
    assert!(!list.body.contains("New key"), "{}", list.body);
    let new = alice.get("/core/keys/new").await;
    assert_eq!(new.status, StatusCode::BAD_REQUEST, "{}", new.body);
    assert!(new.body.contains("rotated or recovered"), "{}", new.body);
    let posted = alice.post("/core/keys/new", &[("identity", "x")]).await;
    assert_eq!(posted.status, StatusCode::BAD_REQUEST, "{}", posted.body);
    // Other kinds keep theirs.
    assert!(
        alice
            .get("/art/artists")
            .await
            .body
            .contains("href=\"/art/artists/new\"")
    );

    // Alice's key log is listed, read (no Edit or Delete) and explored by its CID.
    let at = list.body.find("href=\"/core/keys/").unwrap() + "href=\"".len();
    let page_url = list.body[at..].split('"').next().unwrap().to_owned();
    let page = alice.get(&page_url).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(!page.body.contains("/edit\""), "{}", page.body);
    assert!(!page.body.contains("/delete\""), "{}", page.body);
    assert_eq!(
        alice.get(&format!("{page_url}/edit")).await.status,
        StatusCode::BAD_REQUEST
    );
    let explore = alice.get(&format!("/explore/{}", id_in(&page_url))).await;
    assert_eq!(explore.status, StatusCode::OK, "{}", explore.body);
    assert!(
        explore.body.contains("Signature: valid"),
        "{}",
        explore.body
    );

    // The API refuses to make one, naming what does.
    for (uri, body) in [
        (
            "/api/v1/records",
            serde_json::json!({ "kind": "core.keys", "body": {} }),
        ),
        (
            "/api/v1/records/batch",
            serde_json::json!({ "records": [{ "kind": "core.keys", "body": {} }] }),
        ),
    ] {
        let (status, v) = support::api::json_call(
            &t.router,
            "POST",
            uri,
            Some(support::api::TOKEN),
            Some(body),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{uri}: {v}");
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("/keys/rotate"), "{uri}: {v}");
    }
    // Nor edits or deletes one.
    let id = id_in(&page_url);
    let (status, v) = support::api::json_call(
        &t.router,
        "PUT",
        &format!("/api/v1/records/{id}"),
        Some(support::api::TOKEN),
        Some(serde_json::json!({ "body": {} })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert!(v.to_string().contains("/keys/rotate"), "{v}");
    let (status, v) = support::api::json_call(
        &t.router,
        "DELETE",
        &format!("/api/v1/records/{id}"),
        Some(support::api::TOKEN),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    // It is still read by its CID.
    let (status, v) = support::api::json_call(
        &t.router,
        "GET",
        &format!("/api/v1/records/{id}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    t.node.shutdown().await.unwrap();
}

//! The pages under the rate limits (`api.limits`): a form over its budget and a throttled login
//! answer 429 with `Retry-After` and a page a person reads, not a JSON body.
#![allow(clippy::unwrap_used)]

mod support;

use axum::http::{StatusCode, header};
use support::{Browser, PASSWORD, Page, TestUi, setup_with};

/// A node with the settings `limits`, and no limit on writes per address (the router's
/// requests all come from the address `unknown`).
async fn setup(limits: &[&str]) -> TestUi {
    let mut settings = vec!["api.limits.writes_per_address=0"];
    settings.extend_from_slice(limits);
    setup_with(&settings).await
}

fn retry_after(p: &Page) -> u64 {
    p.headers
        .get(header::RETRY_AFTER)
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn is_html(p: &Page) -> bool {
    p.headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("text/html"))
}

#[tokio::test]
async fn a_form_over_the_write_budget_reads_as_a_page() {
    let t = setup(&[
        "api.limits.writes_per_account=2",
        "api.limits.period_secs=600",
    ])
    .await;
    let mut b = Browser::new(&t.router);
    b.sign_up("alice").await;
    let topic = [("topic", "mnode/feed/nobody")];
    for _ in 0..2 {
        let p = b.post("/follow", &topic).await;
        assert_ne!(p.status, StatusCode::TOO_MANY_REQUESTS, "{}", p.body);
    }
    let p = b.post("/follow", &topic).await;
    assert_eq!(p.status, StatusCode::TOO_MANY_REQUESTS, "{}", p.body);
    assert!(is_html(&p), "{:?}", p.headers);
    assert!(retry_after(&p) >= 1);
    assert!(p.body.contains("Slow down"), "{}", p.body);
    assert!(
        p.body.contains(&format!(
            "Too many writes from this account; try again in {}.",
            mnode_api::limits::wait_text(retry_after(&p))
        )),
        "{}",
        p.body
    );
    // Reading goes on.
    assert_eq!(b.get("/").await.status, StatusCode::OK);
    t.node.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_throttled_login_says_so_on_the_login_form() {
    let t = setup(&["api.limits.login_free_failures_per_account=1"]).await;
    let mut b = Browser::new(&t.router);
    b.get("/login").await;
    let wrong = b
        .post("/login", &[("login", "owner"), ("password", "a guess")])
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.body);
    let p = b
        .post("/login", &[("login", "owner"), ("password", PASSWORD)])
        .await;
    assert_eq!(p.status, StatusCode::TOO_MANY_REQUESTS, "{}", p.body);
    assert!(is_html(&p));
    assert_eq!(retry_after(&p), 1);
    assert!(p.body.contains("id=\"login-error\""), "{}", p.body);
    assert!(
        p.body
            .contains("Too many failed logins at this account; try again in 1 s."),
        "{}",
        p.body
    );
    assert!(p.body.contains("value=\"owner\""), "what was typed is kept");
    t.node.shutdown().await.unwrap();
}

#[tokio::test]
async fn follow_over_the_write_budget_says_so_beside_the_button() {
    let t = setup(&[
        "api.limits.writes_per_account=2",
        "api.limits.period_secs=600",
    ])
    .await;
    let mut bob = Browser::new(&t.router);
    bob.sign_up("bob").await;
    let account = bob.get("/account").await.body;
    let at = account.find("href=\"/authors/did:key:").unwrap() + "href=\"/authors/".len();
    let bob_did = account[at..].split('"').next().unwrap().to_owned();
    let mut b = Browser::new(&t.router);
    b.sign_up("alice").await;
    // htmx swaps a 429 in, as it does a refused form's 422.
    let home = b.get("/").await.body;
    assert!(
        home.contains(r#"{&quot;code&quot;:&quot;429&quot;,&quot;swap&quot;:true"#),
        "{home}"
    );
    let topic = [("topic", bob_did.as_str()), ("what", "@bob")];
    for _ in 0..2 {
        let p = b.post_hx("/follow", &topic).await;
        assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    }
    let p = b.post_hx("/follow", &topic).await;
    assert_eq!(p.status, StatusCode::TOO_MANY_REQUESTS, "{}", p.body);
    assert!(retry_after(&p) >= 1);
    // Only the alert, added at the end of the Follow form (which stays), not a whole page.
    assert!(!p.body.contains("<html"), "{}", p.body);
    assert_eq!(
        p.headers.get("hx-reswap").and_then(|v| v.to_str().ok()),
        Some("beforeend")
    );
    assert!(p.body.contains("role=\"alert\""), "{}", p.body);
    assert!(
        p.body.contains(&format!(
            "Slow down: Too many writes from this account; try again in {}.",
            mnode_api::limits::wait_text(retry_after(&p))
        )),
        "{}",
        p.body
    );
    // Without htmx, the page as before.
    let page = b.post("/follow", &topic).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(page.body.contains("<h1>Slow down</h1>"), "{}", page.body);
    t.node.shutdown().await.unwrap();
}

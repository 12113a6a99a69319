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

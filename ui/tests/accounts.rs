//! The account page's signing key: the recovery key shown once after sign-up, rotating the key,
//! and recovering the account with the recovery key.
#![allow(clippy::unwrap_used)]

mod support;

use axum::http::{StatusCode, header};
use support::{Browser, PASSWORD, setup};

/// The recovery key in a page (`mnode-recovery-1:` and 64 hex digits), if it shows one.
fn recovery_in(body: &str) -> Option<String> {
    let at = body.find("mnode-recovery-1:")?;
    let key: String = body[at..].chars().take(17 + 64).collect();
    (key.len() == 81 && key[17..].bytes().all(|b| b.is_ascii_hexdigit())).then_some(key)
}

#[tokio::test]
async fn the_recovery_key_is_shown_once_and_takes_the_account_back_after_a_rotation() {
    let t = setup().await;
    let mut b = Browser::new(&t.router);
    b.get("/signup").await;
    let made = b
        .post(
            "/signup",
            &[
                ("handle", "kim"),
                ("email", "kim@example.org"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    assert_eq!(made.location(), "/account/recovery-key");

    // Shown once, with a download, and not cached; the next visit shows nothing.
    let shown = b.get("/account/recovery-key").await;
    assert_eq!(shown.status, StatusCode::OK);
    let recovery = recovery_in(&shown.body).expect("the recovery key");
    assert!(shown.body.contains("Download recovery key"));
    assert!(shown.body.contains(&format!(
        "href=\"data:text/plain;charset=utf-8,{recovery}%0A\""
    )));
    assert!(shown.body.contains("shown only now"));
    assert_eq!(shown.headers[header::CACHE_CONTROL], "no-store");
    let again = b.get("/account/recovery-key").await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(recovery_in(&again.body).is_none(), "{}", again.body);

    let account = b.get("/account").await.body;
    assert!(account.contains(">Rotate key</button>"), "{account}");
    assert!(account.contains("<label for=\"recovery_key\">Recovery key</label>"));
    assert!(account.contains(">Recover</button>"));

    // Rotating keeps the identity and changes the signing key; the log was made at sign-up,
    // so no new recovery key is shown.
    let rotated = b.post("/account/keys/rotate", &[]).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    assert!(rotated.body.contains("Key rotated"), "{}", rotated.body);
    assert!(
        rotated
            .body
            .contains("(rotated; your identity stays the same)")
    );

    // A wrong key changes nothing and says so.
    let wrong = format!("mnode-recovery-1:{}", "ab".repeat(32));
    let refused = b
        .post("/account/keys/recover", &[("recovery_key", &wrong)])
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("Not changed"), "{}", refused.body);

    // The saved key recovers: a new recovery key is shown, once.
    let recovered = b
        .post("/account/keys/recover", &[("recovery_key", &recovery)])
        .await;
    assert_eq!(
        recovered.status,
        StatusCode::SEE_OTHER,
        "{}",
        recovered.body
    );
    let fresh = b.get("/account/recovery-key").await;
    let fresh = recovery_in(&fresh.body).expect("a new recovery key");
    assert_ne!(fresh, recovery);
    let spent = b
        .post("/account/keys/recover", &[("recovery_key", &recovery)])
        .await;
    assert_eq!(spent.status, StatusCode::UNPROCESSABLE_ENTITY, "spent");

    // The recovery page is for the logged-in only.
    let visitor = Browser::new(&t.router).get("/account/recovery-key").await;
    assert_eq!(visitor.status, StatusCode::SEE_OTHER);
    t.node.shutdown().await.unwrap();
}

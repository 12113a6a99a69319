//! Accounts, sessions and the auth matrix of the write routes, through the router.

mod support;

use axum::body::Body;
use axum::http::StatusCode;
use serde_json::{Value, json};
use support::{
    PASSWORD, TOKEN, call, create, json_call, login, register_and_login, req, setup, setup_with,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_login_sessions_logout_delete() {
    let t = setup().await;
    let r = &t.router;

    // Register: strength rules, unique handle, email unique without regard to case.
    let (status, v) = json_call(
        r,
        "POST",
        "/api/v1/accounts",
        None,
        Some(json!({ "handle": "alice", "email": "alice@example.org", "password": "password1" })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["code"], "weak_password");
    let alice = register_and_login(r, "alice").await;
    let (status, v) = json_call(
        r,
        "POST",
        "/api/v1/accounts",
        None,
        Some(json!({ "handle": "alice2", "email": "ALICE@Example.org", "password": PASSWORD })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    let (status, _) = json_call(
        r,
        "POST",
        "/api/v1/accounts",
        None,
        Some(json!({ "handle": "alice", "email": "other@example.org", "password": PASSWORD })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, v) = json_call(
        r,
        "POST",
        "/api/v1/accounts",
        None,
        Some(json!({ "handle": "x", "email": "x@example.org", "password": PASSWORD, "role": "admin" })),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "only an admin makes admins: {v}"
    );
    let (status, v) = json_call(
        r,
        "POST",
        "/api/v1/accounts",
        None,
        Some(json!({ "handle": "bad handle!", "email": "y@example.org", "password": PASSWORD })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");

    // Login by handle or email; wrong password is a 401 that does not say which part was wrong.
    let (status, v) = json_call(
        r,
        "POST",
        "/api/v1/sessions",
        None,
        Some(json!({ "login": "alice", "password": "wrong password here" })),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"]["code"], "wrong_password");
    let (status, v) = json_call(
        r,
        "POST",
        "/api/v1/sessions",
        None,
        Some(json!({ "login": "nobody", "password": PASSWORD })),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"]["code"], "wrong_password");
    let (status, v) = json_call(
        r,
        "POST",
        "/api/v1/sessions",
        None,
        Some(json!({ "login": "Alice@EXAMPLE.org", "password": PASSWORD })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let alice2 = v["token"].as_str().expect("token").to_owned();

    // Me, and the account page: the email only for the person and admins.
    let (status, v) = json_call(r, "GET", "/api/v1/me", Some(&alice), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["handle"], "alice");
    assert_eq!(v["admin"], false);
    assert!(v["did"].as_str().is_some_and(|d| d.starts_with("did:key:")));
    let (_, public) = json_call(r, "GET", "/api/v1/accounts/alice", None, None).await;
    assert_eq!(public["handle"], "alice");
    assert!(public.get("email").is_none(), "{public}");
    let (_, own) = json_call(r, "GET", "/api/v1/accounts/alice", Some(&alice), None).await;
    assert_eq!(own["email"], "alice@example.org");
    let (status, _) = json_call(r, "GET", "/api/v1/accounts", Some(&alice), None).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "listing accounts is for admins"
    );
    let (status, v) = json_call(r, "GET", "/api/v1/accounts", Some(TOKEN), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["accounts"].as_array().map(Vec::len), Some(2), "{v}");

    // Sessions: mine, marked current; revoke one; log out the other.
    let (_, v) = json_call(r, "GET", "/api/v1/sessions", Some(&alice), None).await;
    let list = v["sessions"].as_array().expect("sessions").clone();
    assert_eq!(list.len(), 2, "{v}");
    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);
    let other: &Value = list.iter().find(|s| s["current"] == false).expect("other");
    let id = other["id"].as_str().expect("id");
    assert_ne!(id, alice2, "the id is not the token");
    let (status, _) = json_call(
        r,
        "DELETE",
        &format!("/api/v1/sessions/{id}"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, v) = json_call(r, "GET", "/api/v1/me", Some(&alice2), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a revoked session: {v}");
    let (status, _) = json_call(r, "POST", "/api/v1/logout", Some(&alice), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = json_call(r, "GET", "/api/v1/me", Some(&alice), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a logged-out session");

    // Bob cannot see or revoke Alice's sessions; an admin can.
    let alice = login(r, "alice").await;
    let bob = register_and_login(r, "bob").await;
    let (_, v) = json_call(r, "GET", "/api/v1/sessions", Some(&alice), None).await;
    let alice_id = v["sessions"][0]["id"].as_str().expect("id").to_owned();
    let (status, _) = json_call(
        r,
        "DELETE",
        &format!("/api/v1/sessions/{alice_id}"),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = json_call(r, "GET", "/api/v1/sessions?handle=alice", Some(&bob), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, v) = json_call(r, "GET", "/api/v1/sessions?handle=*", Some(TOKEN), None).await;
    assert_eq!(v["sessions"].as_array().map(Vec::len), Some(2), "{v}");
    let (status, _) = json_call(
        r,
        "DELETE",
        &format!("/api/v1/sessions/{alice_id}"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = json_call(r, "GET", "/api/v1/me", Some(&alice), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Delete: not someone else's; one's own ends one's sessions; the owner's account stays.
    let alice = login(r, "alice").await;
    let (status, _) = json_call(r, "DELETE", "/api/v1/accounts/alice", Some(&bob), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, v) = json_call(r, "DELETE", "/api/v1/accounts/bob", Some(&bob), None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["sessions_ended"], 1);
    let (status, _) = json_call(r, "GET", "/api/v1/me", Some(&bob), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = json_call(r, "GET", "/api/v1/accounts/bob", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = json_call(r, "DELETE", "/api/v1/accounts/alice", Some(TOKEN), None).await;
    assert_eq!(status, StatusCode::OK, "an admin deletes anyone");
    let (status, _) = json_call(r, "GET", "/api/v1/me", Some(&alice), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let owner = t.node.handle().repo().info().owner.clone();
    let (status, _) = json_call(
        r,
        "DELETE",
        &format!("/api/v1/accounts/{owner}"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    t.node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_registration_needs_an_admin() {
    let t = setup_with(&["api.open_registration=false"]).await;
    let body = json!({ "handle": "carol", "email": "carol@example.org", "password": PASSWORD });
    let (status, v) = json_call(
        &t.router,
        "POST",
        "/api/v1/accounts",
        None,
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    let (status, v) = json_call(
        &t.router,
        "POST",
        "/api/v1/accounts",
        Some(TOKEN),
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    t.node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_numbers_are_optional_e164_unique_private_and_log_in() {
    let t = setup().await;
    let r = &t.router;
    let register = |handle: &str, phone: Value| json!({ "handle": handle, "email": format!("{handle}@example.org"), "phone": phone, "password": PASSWORD });
    let (status, v) = json_call(
        r,
        "POST",
        "/api/v1/accounts",
        None,
        Some(register("dora", json!("+49 (30) 901820"))),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["phone"], "+4930901820", "stored in E.164: {v}");

    // The same number in another spelling is taken; numbers without a country code or in no
    // numbering plan are refused; nothing is made either way.
    for (phone, want, code) in [
        ("tel:+49-30-901820", StatusCode::CONFLICT, "taken"),
        ("030 901820", StatusCode::BAD_REQUEST, "bad_request"),
        ("+999 123456", StatusCode::BAD_REQUEST, "bad_request"),
        ("+49", StatusCode::BAD_REQUEST, "bad_request"),
    ] {
        let (status, v) = json_call(
            r,
            "POST",
            "/api/v1/accounts",
            None,
            Some(register("erin", json!(phone))),
        )
        .await;
        assert_eq!(status, want, "{phone}: {v}");
        assert_eq!(v["error"]["code"], code, "{phone}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("phone number"),
            "{phone}: the message names the phone number: {v}"
        );
    }
    let (status, v) = json_call(r, "GET", "/api/v1/accounts/erin", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no account was made: {v}");
    let erin = register_and_login(r, "erin").await;

    // Log in with the number in any international spelling.
    for login in ["+4930901820", "+49 30 901820"] {
        let (status, v) = json_call(
            r,
            "POST",
            "/api/v1/sessions",
            None,
            Some(json!({ "login": login, "password": PASSWORD })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{login}: {v}");
        assert_eq!(v["handle"], "dora", "{login}: {v}");
    }

    // The number is private: the person and admins see it, others do not.
    let (_, public) = json_call(r, "GET", "/api/v1/accounts/dora", Some(&erin), None).await;
    assert!(public.get("phone").is_none(), "{public}");
    let (_, admin) = json_call(r, "GET", "/api/v1/accounts/dora", Some(TOKEN), None).await;
    assert_eq!(admin["phone"], "+4930901820", "{admin}");

    // Set, move and remove; a taken number is refused and changes nothing.
    let (status, v) = json_call(
        r,
        "PUT",
        "/api/v1/accounts/erin/phone",
        Some(&erin),
        Some(json!({ "phone": "+4930901820" })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    let (status, v) = json_call(
        r,
        "PUT",
        "/api/v1/accounts/dora/phone",
        Some(&erin),
        Some(json!({ "phone": "+12015550123" })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not Erin's account: {v}");
    let (status, v) = json_call(
        r,
        "PUT",
        "/api/v1/accounts/dora/phone",
        Some(TOKEN),
        Some(json!({ "phone": null })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["phone"], Value::Null, "{v}");
    let (status, v) = json_call(
        r,
        "PUT",
        "/api/v1/accounts/erin/phone",
        Some(&erin),
        Some(json!({ "phone": "+49 30 901820" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "freed by Dora: {v}");
    assert_eq!(v["phone"], "+4930901820", "{v}");
    t.node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_forbids_deletion_keeps_accounts_artists_and_files() {
    let t = setup_with(&["api.forbid_deletion=true"]).await;
    let r = &t.router;
    let alice = register_and_login(r, "alice").await;
    let artist = create(
        r,
        &alice,
        "art.artist",
        json!({ "name": { "full": "Ada" } }),
    )
    .await;
    let post = create(r, &alice, "social.post", json!({ "text": "hello" })).await;
    let upload = req("PUT", "/api/v1/files?name=a.txt")
        .header("authorization", format!("Bearer {alice}"))
        .body(Body::from("kept"))
        .expect("request");
    let (status, _, body) = call(r, upload).await;
    assert_eq!(status, StatusCode::CREATED);
    let file: Value = serde_json::from_slice(&body).expect("json");
    let blob = file["cid"].as_str().expect("cid").to_owned();
    let file_record = file["record"]["id"].as_str().expect("record").to_owned();

    // Refused for the person and for the admin alike, naming what was kept; nothing changes.
    for token in [alice.as_str(), TOKEN] {
        for (uri, what) in [
            ("/api/v1/accounts/alice".to_owned(), "the account alice"),
            (format!("/api/v1/records/{artist}"), "an art.artist"),
            (format!("/api/v1/records/{file_record}"), "a core.file"),
            (format!("/api/v1/files/{blob}"), "the file"),
        ] {
            let (status, v) = json_call(r, "DELETE", &uri, Some(token), None).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "DELETE {uri}: {v}");
            assert_eq!(v["error"]["code"], "deletion_forbidden", "{v}");
            let message = v["error"]["message"].as_str().unwrap_or_default();
            assert!(
                message.contains(what) && message.contains("api.forbid_deletion"),
                "{message}"
            );
        }
    }
    let (status, _) = json_call(r, "GET", "/api/v1/accounts/alice", Some(TOKEN), None).await;
    assert_eq!(status, StatusCode::OK);
    for id in [&artist, &file_record] {
        let (_, v) = json_call(r, "GET", &format!("/api/v1/records/{id}"), None, None).await;
        assert_eq!(v["record"]["seq"], 0, "not deleted: {v}");
    }
    let (status, _, bytes) = call(
        r,
        req("GET", &format!("/ipfs/{blob}"))
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!((status, &bytes[..]), (StatusCode::OK, &b"kept"[..]));

    // Everything else is deleted as usual.
    let (status, v) = json_call(
        r,
        "DELETE",
        &format!("/api/v1/records/{post}"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    t.node.shutdown().await.expect("shutdown");
}

/// Who may call a write route.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Needs {
    /// Any account.
    Account,
    /// An admin.
    Admin,
    /// The owner of the item (or an admin).
    Owner,
}

/// Every write route without a token, with a malformed, unknown, expired and revoked token,
/// as a user, as another user and as an admin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_matrix_of_the_write_routes() {
    let t = setup().await;
    let r = &t.router;
    let repo = t.node.handle().repo().clone();
    let alice = register_and_login(r, "alice").await;
    let bob = register_and_login(r, "bob").await;
    let revoked = login(r, "alice").await;
    let (status, _) = json_call(r, "POST", "/api/v1/logout", Some(&revoked), None).await;
    assert_eq!(status, StatusCode::OK);
    // Made last: a login removes the account's expired sessions.
    let expired = {
        let repo = repo.clone();
        tokio::task::spawn_blocking(move || repo.sessions().create("alice", 0))
            .await
            .expect("join")
            .expect("session")
            .0
    };

    // An item of Alice's to update and delete.
    let post = json!({ "kind": "social.post", "body": { "text": "hello" } });
    let (status, v) = json_call(
        r,
        "POST",
        "/api/v1/records",
        Some(&alice),
        Some(post.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let item = v["id"].as_str().expect("id").to_owned();
    let (_, me) = json_call(r, "GET", "/api/v1/me", Some(&alice), None).await;
    let (_, rec) = json_call(r, "GET", &format!("/api/v1/records/{item}"), None, None).await;
    assert_eq!(
        rec["record"]["author"], me["did"],
        "signed with Alice's own key: {rec}"
    );

    let update = json!({ "body": { "text": "edited" } });
    let missing = "/tmp/mnode-auth-matrix-does-not-exist";
    let routes: Vec<(&str, String, Option<Value>, Needs)> = vec![
        (
            "POST",
            "/api/v1/records".into(),
            Some(post.clone()),
            Needs::Account,
        ),
        (
            "PUT",
            format!("/api/v1/records/{item}"),
            Some(update.clone()),
            Needs::Owner,
        ),
        (
            "POST",
            "/api/v1/peers".into(),
            Some(json!({ "addr": "not an addr" })),
            Needs::Admin,
        ),
        (
            "POST",
            "/api/v1/follows".into(),
            Some(json!({ "topic": "nonsense" })),
            Needs::Admin,
        ),
        (
            "DELETE",
            "/api/v1/follows".into(),
            Some(json!({ "topic": "nonsense" })),
            Needs::Admin,
        ),
        (
            "POST",
            "/api/v1/files/fetch".into(),
            Some(json!({ "cid": "nonsense" })),
            Needs::Account,
        ),
        (
            "POST",
            "/api/v1/files/import".into(),
            Some(json!({ "path": missing })),
            Needs::Admin,
        ),
        (
            "POST",
            "/api/v1/files/import/batch".into(),
            Some(json!({ "paths": [missing] })),
            Needs::Admin,
        ),
        ("POST", "/api/v1/files/commit".into(), None, Needs::Admin),
        (
            "POST",
            "/api/v1/files/export".into(),
            Some(json!({ "cid": "nonsense", "path": missing })),
            Needs::Admin,
        ),
        ("GET", "/api/v1/accounts".into(), None, Needs::Admin),
        (
            "PUT",
            "/api/v1/accounts/alice/phone".into(),
            Some(json!({ "phone": "+49 30 901820" })),
            Needs::Owner,
        ),
        ("DELETE", "/api/v1/sessions".into(), None, Needs::Account),
        // Last: it deletes the item.
        (
            "DELETE",
            format!("/api/v1/records/{item}"),
            None,
            Needs::Owner,
        ),
    ];
    for (method, uri, body, needs) in routes {
        let what = format!("{method} {uri}");
        for (token, code) in [
            (None, "unauthorized"),
            (Some("not hex"), "bad_token"),
            (Some(&"ab".repeat(32)[..]), "bad_token"),
            (Some(expired.as_str()), "session_expired"),
            (Some(revoked.as_str()), "bad_token"),
        ] {
            let (status, v) = json_call(r, method, &uri, token, body.clone()).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{what} with {token:?}: {v}"
            );
            assert_eq!(v["error"]["code"], code, "{what} with {token:?}: {v}");
        }
        // DELETE /sessions logs the caller out: give it a session of its own.
        let user = if uri.ends_with("/sessions") {
            login(r, "bob").await
        } else {
            bob.clone()
        };
        let (status, v) = json_call(r, method, &uri, Some(&user), body.clone()).await;
        match needs {
            Needs::Admin | Needs::Owner => {
                assert_eq!(status, StatusCode::FORBIDDEN, "{what} as another user: {v}");
            }
            Needs::Account => {
                assert_ne!(status, StatusCode::UNAUTHORIZED, "{what} as a user: {v}");
                assert_ne!(status, StatusCode::FORBIDDEN, "{what} as a user: {v}");
            }
        }
        if needs == Needs::Owner {
            let (status, v) = json_call(r, method, &uri, Some(&alice), body.clone()).await;
            assert_eq!(status, StatusCode::OK, "{what} as the owner: {v}");
        }
        if method == "DELETE" && uri.contains("/records/") {
            // Already deleted by its owner: the admin gets a conflict, not a refusal.
            let (status, v) = json_call(r, method, &uri, Some(TOKEN), body.clone()).await;
            assert_eq!(status, StatusCode::CONFLICT, "{what} again as admin: {v}");
            continue;
        }
        if uri.ends_with("/sessions") {
            continue; // DELETE /sessions logs the caller out: not for the admin token.
        }
        let (status, v) = json_call(r, method, &uri, Some(TOKEN), body.clone()).await;
        assert_ne!(status, StatusCode::UNAUTHORIZED, "{what} as admin: {v}");
        assert_ne!(status, StatusCode::FORBIDDEN, "{what} as admin: {v}");
    }

    // The admin edits Alice's item with Alice's key: the chain stays hers.
    let (status, v) = json_call(r, "POST", "/api/v1/records", Some(&alice), Some(post)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let item = v["id"].as_str().expect("id").to_owned();
    let (status, v) = json_call(
        r,
        "PUT",
        &format!("/api/v1/records/{item}"),
        Some(TOKEN),
        Some(update),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (_, rec) = json_call(r, "GET", &format!("/api/v1/records/{item}"), None, None).await;
    assert_eq!(rec["record"]["author"], me["did"]);
    assert_eq!(rec["record"]["seq"], 1);

    // A user cannot publish as someone else.
    let (status, v) = json_call(
        r,
        "POST",
        "/api/v1/records",
        Some(&bob),
        Some(json!({ "kind": "social.post", "body": { "text": "x" }, "as": "alice" })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    t.node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_route_and_report_the_store() {
    let t = setup().await;
    let r = &t.router;
    for _ in 0..3 {
        let (status, _) = json_call(r, "GET", "/api/v1/accounts/nobody", None, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (status, _) = json_call(r, "GET", "/no/such/route", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, headers, body) =
        support::call(r, support::empty(support::req("GET", "/metrics"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[axum::http::header::CONTENT_TYPE]
            .to_str()
            .is_ok_and(|c| c.starts_with("text/plain"))
    );
    let text = String::from_utf8(body.to_vec()).expect("utf-8");
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("mnode_http_requests_total{")
                && l.contains(r#"route="/api/v1/accounts/{handle}""#)
                && l.contains(r#"status="404""#)
        })
        .unwrap_or_else(|| panic!("no request counter by route pattern in:\n{text}"));
    assert!(line.ends_with(" 3"), "{line}");
    assert!(text.contains(r#"route="unmatched""#), "{text}");
    assert!(text.contains("mnode_http_request_duration_seconds_bucket{"));
    assert!(
        text.contains(r#"mnode_store_keys{family="accounts"} 1"#),
        "{text}"
    );
    assert!(text.contains("mnode_peers 0"), "{text}");
    t.node.shutdown().await.expect("shutdown");
}

//! Groups through the API: a band makes its page together, roles decide who may do what, and
//! a removed member's edits stop counting while their earlier work stays.

mod support;

use axum::http::StatusCode;
use serde_json::{Value, json};
use support::{json_call, register_and_login, setup};

fn artist_group(name: &str) -> Value {
    json!({ "name": { "full": name }, "members": [] })
}

async fn call(
    router: &axum::Router,
    method: &str,
    uri: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    json_call(router, method, uri, Some(token), body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_band_edits_its_page_together() {
    let t = setup().await;
    let r = &t.router;
    let ana = register_and_login(r, "ana").await;
    let ben = register_and_login(r, "ben").await;
    let cy = register_and_login(r, "cy").await;
    let dee = register_and_login(r, "dee").await;

    let (status, v) = call(
        r,
        "POST",
        "/api/v1/groups",
        &ana,
        Some(json!({ "name": "The Band", "members": [
            { "member": "ben", "role": "member" },
            { "member": "@cy", "role": "admin" },
        ]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let group = v["id"].as_str().unwrap().to_owned();

    // Ben makes the band's page as the group's; Dee, not in the band, cannot.
    let (status, v) = call(
        r,
        "POST",
        "/api/v1/records",
        &ben,
        Some(
            json!({ "kind": "art.artist_group", "body": artist_group("The Band"), "owner": group }),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let page = v["id"].as_str().unwrap().to_owned();
    let (status, v) = call(
        r,
        "POST",
        "/api/v1/records",
        &dee,
        Some(json!({ "kind": "art.artist_group", "body": artist_group("Fake"), "owner": group })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["error"]["code"], "group_role", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("dee is not a member"),
        "{v}"
    );

    // Ana edits Ben's page; Dee cannot; Ben (a member) cannot delete it.
    let uri = format!("/api/v1/records/{page}");
    let (status, v) = call(
        r,
        "PUT",
        &uri,
        &ana,
        Some(json!({ "body": artist_group("The Band (live)") })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, v) = call(
        r,
        "PUT",
        &uri,
        &dee,
        Some(json!({ "body": artist_group("x") })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    let (status, v) = call(r, "DELETE", &uri, &ben, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("deleting needs owner or admin"),
        "{v}"
    );
    let (_, v) = json_call(r, "GET", &uri, None, None).await;
    assert_eq!(
        v["record"]["body"]["name"]["full"], "The Band (live)",
        "{v}"
    );

    // The group lists its members with their handles, and its items.
    let (status, v) = json_call(r, "GET", &format!("/api/v1/groups/{group}"), None, None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let roles: Vec<(String, String)> = v["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["handle"].as_str().unwrap().into(),
                m["role"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [("ana", "owner"), ("ben", "member"), ("cy", "admin")]
            .map(|(h, r)| (h.to_owned(), r.to_owned()))
    );
    assert_eq!(v["items"][0]["id"], page.as_str(), "{v}");
    let (_, v) = json_call(r, "GET", "/api/v1/groups?member=ben", None, None).await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1, "{v}");
    let (_, v) = json_call(r, "GET", "/api/v1/groups?member=dee", None, None).await;
    assert_eq!(v["items"].as_array().unwrap().len(), 0, "{v}");

    // Cy (admin) adds Dee but may not make anyone an admin or touch the owner.
    let members = format!("/api/v1/groups/{group}/members");
    let (status, v) = call(
        r,
        "PUT",
        &format!("{members}/dee"),
        &cy,
        Some(json!({"role": "member"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, v) = call(
        r,
        "PUT",
        &format!("{members}/ben"),
        &cy,
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("only owners"),
        "{v}"
    );
    let (status, v) = call(r, "DELETE", &format!("{members}/ana"), &cy, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    let (status, v) = call(
        r,
        "PUT",
        &format!("{members}/dee"),
        &cy,
        Some(json!({"role": "member"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");

    // Dee edits now; then Ana removes Dee: Dee's past edit stays (settled), later ones are refused.
    let (status, v) = call(
        r,
        "PUT",
        &uri,
        &dee,
        Some(json!({ "body": artist_group("The Band + Dee") })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, v) = call(r, "DELETE", &format!("{members}/dee"), &ana, None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (_, v) = json_call(r, "GET", &uri, None, None).await;
    assert_eq!(v["record"]["body"]["name"]["full"], "The Band + Dee", "{v}");
    let (status, v) = call(
        r,
        "PUT",
        &uri,
        &dee,
        Some(json!({ "body": artist_group("mine") })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");

    // Ben leaves on his own; the last owner cannot.
    let (status, v) = call(r, "DELETE", &format!("{members}/ben"), &ben, None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, v) = call(r, "DELETE", &format!("{members}/ana"), &ana, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");

    // Cy (admin) deletes the page: the group's head is newer than the page's citation, so the
    // node re-cites it first, in the same write.
    let (status, v) = call(r, "DELETE", &uri, &cy, None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, v) = json_call(r, "GET", &format!("{uri}/history"), None, None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let versions = v["versions"].as_array().unwrap();
    assert!(
        versions.last().unwrap()["deleted"].as_bool().unwrap(),
        "{v}"
    );
    t.node.shutdown().await.expect("shutdown");
}

/// Polls `f` until it gives `Some`, for up to 30 s.
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(t) = f().await {
            return t;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_on_another_node_edits_and_a_removal_reaches_them() {
    let a = setup().await;
    let b = setup().await;
    let (ra, rb) = (&a.router, &b.router);
    let ana = register_and_login(ra, "ana").await;
    let ben = register_and_login(rb, "ben").await;
    let (_, me) = json_call(rb, "GET", "/api/v1/me", Some(&ben), None).await;
    let ben_did = me["did"].as_str().unwrap().to_owned();
    // Connect the two nodes.
    let (_, info) = json_call(rb, "GET", "/api/v1/node", Some(support::TOKEN), None).await;
    let addr = info["addrs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .find(|a| a.contains("/tcp/"))
        .unwrap()
        .to_owned();
    let (status, v) = json_call(
        ra,
        "POST",
        "/api/v1/peers",
        Some(support::TOKEN),
        Some(json!({ "addr": addr })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");

    // Ana, on A, makes the band with Ben (an identity from B) and the band's page.
    let (status, v) = call(
        ra,
        "POST",
        "/api/v1/groups",
        &ana,
        Some(json!({ "name": "The Band", "members": [{ "member": ben_did, "role": "member" }] })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let group = v["id"].as_str().unwrap().to_owned();
    let (status, v) = call(
        ra,
        "POST",
        "/api/v1/records",
        &ana,
        Some(
            json!({ "kind": "art.artist_group", "body": artist_group("The Band"), "owner": group }),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let page = v["id"].as_str().unwrap().to_owned();

    // Ben follows the group on B: catch-up brings its versions and its page.
    let topic = format!("/mnode/1/group/{group}");
    let (status, v) = call(
        rb,
        "POST",
        "/api/v1/me/follows",
        &ben,
        Some(json!({ "topic": topic })),
    )
    .await;
    assert!(status.is_success(), "{v}");
    let uri = format!("/api/v1/records/{page}");
    eventually("B holds the band's page", || async {
        let (status, _) = json_call(rb, "GET", &uri, None, None).await;
        (status == StatusCode::OK).then_some(())
    })
    .await;

    // Ben edits on B; the version reaches A and becomes the page's head there.
    let (status, v) = call(
        rb,
        "PUT",
        &uri,
        &ben,
        Some(json!({ "body": artist_group("The Band, with Ben") })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    eventually("A shows Ben's edit", || async {
        let (_, v) = json_call(ra, "GET", &uri, None, None).await;
        (v["record"]["body"]["name"]["full"] == "The Band, with Ben").then_some(())
    })
    .await;

    // Ana removes Ben on A; once B holds the removal, B refuses Ben's next edit.
    let (status, v) = call(
        ra,
        "DELETE",
        &format!("/api/v1/groups/{group}/members/{ben_did}"),
        &ana,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let removal = v["cid"].as_str().unwrap().to_owned();
    eventually("B holds the removal", || async {
        let (_, v) = json_call(rb, "GET", &format!("/api/v1/groups/{group}"), None, None).await;
        (v["cid"] == removal.as_str()).then_some(())
    })
    .await;
    let (status, v) = call(
        rb,
        "PUT",
        &uri,
        &ben,
        Some(json!({ "body": artist_group("mine") })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    // What Ben wrote before the removal stays, on both nodes.
    for r in [ra, rb] {
        let (_, v) = json_call(r, "GET", &uri, None, None).await;
        assert_eq!(
            v["record"]["body"]["name"]["full"], "The Band, with Ben",
            "{v}"
        );
    }
    a.node.shutdown().await.expect("shutdown a");
    b.node.shutdown().await.expect("shutdown b");
}

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

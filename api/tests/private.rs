//! Private records and direct messages through the API: the readers of a sealed version read
//! it on any node; everyone else stores, relays and serves the block but never reads it, nor
//! finds it in a listing.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use axum::http::StatusCode;
use mnode_dag::{Draft, Ipld, Keypair, cbor, json as dag_json, private};
use rand::{SeedableRng as _, rngs::ChaCha8Rng};
use serde_json::{Value, json};
use support::{TOKEN, connect, did_of, json_call, register_and_login, setup};

async fn call(
    router: &axum::Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    json_call(router, method, uri, token, body).await
}

async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(t) = f().await {
            return t;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET /records/{cid}` as `token`.
async fn read(router: &axum::Router, cid: &str, token: Option<&str>) -> Value {
    let (status, v) = call(
        router,
        "GET",
        &format!("/api/v1/records/{cid}"),
        token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v
}

/// The ids `GET /records?kind=…` lists for `token`.
async fn listed(router: &axum::Router, kind: &str, token: Option<&str>) -> Vec<String> {
    let (status, v) = call(
        router,
        "GET",
        &format!("/api/v1/records?kind={kind}"),
        token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

fn withheld(v: &Value) -> bool {
    v["private"]["readable"] == false && v["record"]["body"].is_null()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_a_message_reaches_its_reader_and_no_one_else() {
    let a = setup().await;
    let b = setup().await;
    let (ra, rb) = (&a.router, &b.router);
    let ana = register_and_login(ra, "ana").await;
    let ben = register_and_login(rb, "ben").await;
    let cy = register_and_login(rb, "cy").await;
    let (ana_did, ben_did) = (did_of(ra, &ana).await, did_of(rb, &ben).await);
    connect(&a, &b).await;
    // Ben hears Ana's feed on B.
    let (status, v) = call(
        rb,
        "POST",
        "/api/v1/me/follows",
        Some(&ben),
        Some(json!({ "topic": ana_did })),
    )
    .await;
    assert!(status.is_success(), "{v}");

    // A message is always private.
    let (status, v) = call(
        ra,
        "POST",
        "/api/v1/records",
        Some(&ana),
        Some(json!({ "kind": "social.message", "body": { "text": "to all" } })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (status, v) = call(
        ra,
        "POST",
        "/api/v1/messages",
        Some(&ana),
        Some(json!({ "to": ["nobody-here"], "text": "hi" })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");

    let (status, v) = call(
        ra,
        "POST",
        "/api/v1/messages",
        Some(&ana),
        Some(json!({ "to": [ben_did], "text": "hi Ben, the mix is done" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();

    // B stores it; anyone may see that it exists and whom it is for, not what it says.
    let v = eventually("B holds the message", || async {
        let (status, v) = call(rb, "GET", &format!("/api/v1/records/{id}"), None, None).await;
        (status == StatusCode::OK).then_some(v)
    })
    .await;
    assert!(withheld(&v), "{v}");
    let to: Vec<&str> = v["private"]["to"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        to.contains(&ana_did.as_str()) && to.contains(&ben_did.as_str()),
        "{v}"
    );
    assert_eq!(to.len(), 2, "{v}");

    // Ben reads it on B.
    let v = read(rb, &id, Some(&ben)).await;
    assert_eq!(v["private"]["readable"], true, "{v}");
    assert_eq!(
        v["record"]["body"]["text"], "hi Ben, the mix is done",
        "{v}"
    );
    assert_eq!(
        listed(rb, "social.message", Some(&ben)).await,
        vec![id.clone()]
    );
    let (_, v) = call(rb, "GET", "/api/v1/messages", Some(&ben), None).await;
    let convs = v["conversations"].as_array().unwrap();
    assert_eq!(convs.len(), 1, "{v}");
    assert_eq!(convs[0]["with"][0]["did"], ana_did.as_str(), "{v}");
    assert_eq!(convs[0]["last"]["text"], "hi Ben, the mix is done", "{v}");
    let (status, v) = call(
        rb,
        "GET",
        &format!("/api/v1/messages?with={ana_did}"),
        Some(&ben),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["messages"].as_array().unwrap().len(), 1, "{v}");

    // Cy, on the same node, holds the block but cannot read it and never sees it listed.
    let v = read(rb, &id, Some(&cy)).await;
    assert!(withheld(&v), "{v}");
    assert!(listed(rb, "social.message", Some(&cy)).await.is_empty());
    assert!(listed(rb, "social.message", None).await.is_empty());
    let (_, v) = call(rb, "GET", "/api/v1/messages", Some(&cy), None).await;
    assert_eq!(v["conversations"], json!([]), "{v}");
    let (_, v) = call(rb, "GET", &format!("/api/v1/feeds/{ana_did}"), None, None).await;
    assert!(
        !v.to_string().contains(&id),
        "a feed never lists a private item: {v}"
    );
    // The gateway serves the sealed block to anyone: ciphertext, not the text.
    let (status, _, bytes) = support::call(
        rb,
        support::empty(support::req("GET", &format!("/ipfs/{id}?format=raw"))),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!String::from_utf8_lossy(&bytes).contains("the mix is done"));

    // Ben answers; the conversation holds both, oldest first, on A for Ana.
    let (status, v) = call(
        rb,
        "POST",
        "/api/v1/messages",
        Some(&ben),
        Some(json!({ "to": [ana_did], "text": "great, thanks", "reply_to": id })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, v) = call(
        ra,
        "POST",
        "/api/v1/me/follows",
        Some(&ana),
        Some(json!({ "topic": ben_did })),
    )
    .await;
    assert!(status.is_success(), "{v}");
    let v = eventually("Ana reads Ben's answer on A", || async {
        let (_, v) = call(
            ra,
            "GET",
            &format!("/api/v1/messages?with={ben_did}"),
            Some(&ana),
            None,
        )
        .await;
        (v["messages"].as_array().map_or(0, Vec::len) == 2).then_some(v)
    })
    .await;
    assert_eq!(v["messages"][1]["text"], "great, thanks", "{v}");
    assert_eq!(v["messages"][1]["reply_to"], id.as_str(), "{v}");
    a.node.shutdown().await.expect("shutdown a");
    b.node.shutdown().await.expect("shutdown b");
}

/// `body` with one byte of `$private.ct` flipped.
fn tamper(body: &Ipld) -> Ipld {
    let Ipld::Map(mut m) = body.clone() else {
        panic!("not a map")
    };
    let mut sealed = private::shape(body).unwrap().unwrap();
    sealed.ct[0] ^= 1;
    m.insert(private::PRIVATE_KEY.to_owned(), sealed.to_ipld());
    Ipld::Map(m)
}

async fn put(router: &axum::Router, record: &mnode_dag::Record) -> (StatusCode, Value) {
    let ipld = cbor::decode_ipld(record.bytes()).unwrap();
    let text = dag_json::to_json_value(&ipld).unwrap().to_string();
    call(
        router,
        "POST",
        "/api/v1/dag/put",
        Some(TOKEN),
        Some(json!({ "dag_json": text })),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_ciphertext_does_not_open_and_changes_nothing() {
    let t = setup().await;
    let r = &t.router;
    let ben = register_and_login(r, "ben").await;
    let ben_did: mnode_dag::Did = did_of(r, &ben).await.parse().unwrap();
    let eve = Keypair::derive(7, "eve");
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let body = Ipld::Map([("text".to_owned(), Ipld::String("psst".into()))].into());
    let to = [(*eve.did(), *eve.did()), (ben_did, ben_did)];
    let sealed = private::seal("social.message", eve.did(), None, &body, &to, &mut rng).unwrap();

    // The sealed message as made: Ben reads it.
    let good = Draft::new("social.message", sealed.clone())
        .sign(&eve)
        .unwrap();
    let (status, v) = put(r, &good).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let v = read(r, &good.cid().to_string(), Some(&ben)).await;
    assert_eq!(v["record"]["body"]["text"], "psst", "{v}");

    // Altered in transit (the signature no longer holds): refused, nothing stored.
    let signed = cbor::decode_ipld(good.bytes()).unwrap();
    let Ipld::Map(mut altered) = signed else {
        panic!("not a map")
    };
    altered.insert("body".into(), tamper(&sealed));
    let text = dag_json::to_json_value(&Ipld::Map(altered))
        .unwrap()
        .to_string();
    let (status, v) = call(
        r,
        "POST",
        "/api/v1/dag/put",
        Some(TOKEN),
        Some(json!({ "dag_json": text })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(
        listed(r, "social.message", Some(&ben)).await,
        vec![good.id().to_string()]
    );

    // Altered and signed again by its author: a valid record every node keeps, that no one
    // can open; Ben is told it does not decrypt, and it is in none of his conversations.
    let forged = Draft::new("social.message", tamper(&sealed))
        .sign(&eve)
        .unwrap();
    let (status, v) = put(r, &forged).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let v = read(r, &forged.cid().to_string(), Some(&ben)).await;
    assert!(withheld(&v), "{v}");
    assert!(
        v["private"]["error"]
            .as_str()
            .unwrap()
            .contains("cannot decrypt"),
        "{v}"
    );
    let (_, v) = call(r, "GET", "/api/v1/messages", Some(&ben), None).await;
    assert_eq!(v["conversations"][0]["count"], 1, "{v}");
    assert_eq!(v["conversations"][0]["last"]["text"], "psst", "{v}");
    t.node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_removed_from_the_list_cannot_read_later_versions() {
    let t = setup().await;
    let r = &t.router;
    let ana = register_and_login(r, "ana").await;
    let ben = register_and_login(r, "ben").await;
    let cy = register_and_login(r, "cy").await;
    let (ben_did, cy_did) = (did_of(r, &ben).await, did_of(r, &cy).await);

    let (status, v) = call(
        r,
        "POST",
        "/api/v1/records",
        Some(&ana),
        Some(
            json!({ "kind": "social.post", "body": { "text": "v0 for ben and cy" },
                     "to": [ben_did, "@cy"] }),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (id, v0) = (
        v["id"].as_str().unwrap().to_owned(),
        v["cid"].as_str().unwrap().to_owned(),
    );
    for tok in [&ana, &ben, &cy] {
        let v = read(r, &id, Some(tok)).await;
        assert_eq!(v["record"]["body"]["text"], "v0 for ben and cy", "{v}");
    }
    assert!(withheld(&read(r, &id, None).await));
    assert!(listed(r, "social.post", None).await.is_empty());
    assert_eq!(listed(r, "social.post", Some(&cy)).await, vec![id.clone()]);

    // A bad audience changes nothing.
    let uri = format!("/api/v1/records/{id}");
    let (status, v) = call(
        r,
        "PUT",
        &uri,
        Some(&ana),
        Some(json!({ "body": { "text": "x" }, "to": [cy_did], "public": true })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (status, v) = call(
        r,
        "PUT",
        &uri,
        Some(&ana),
        Some(json!({ "body": { "text": "" } })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(read(r, &id, Some(&ana)).await["cid"], v0.as_str());

    // Cy is left out of v1: Ben reads it, Cy does not (v0 stays readable for Cy).
    let (status, v) = call(
        r,
        "PUT",
        &uri,
        Some(&ana),
        Some(json!({ "body": { "text": "v1 for ben only" }, "to": [ben_did] })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        read(r, &id, Some(&ben)).await["record"]["body"]["text"],
        "v1 for ben only"
    );
    let v = read(r, &id, Some(&cy)).await;
    assert!(withheld(&v), "{v}");
    assert!(!v["private"]["to"].to_string().contains(&cy_did), "{v}");
    assert!(listed(r, "social.post", Some(&cy)).await.is_empty());
    let v = read(r, &format!("{v0}?exact=true"), Some(&cy)).await;
    assert_eq!(v["record"]["body"]["text"], "v0 for ben and cy", "{v}");

    // An edit naming no one keeps the readers; `public` opens the next version to all.
    let (status, v) = call(
        r,
        "PUT",
        &uri,
        Some(&ana),
        Some(json!({ "body": { "text": "v2 still for ben" } })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(withheld(&read(r, &id, Some(&cy)).await));
    assert_eq!(
        read(r, &id, Some(&ben)).await["record"]["body"]["text"],
        "v2 still for ben"
    );
    let (status, v) = call(
        r,
        "PUT",
        &uri,
        Some(&ana),
        Some(json!({ "body": { "text": "v3 for all" }, "public": true })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let v = read(r, &id, None).await;
    assert_eq!(v["record"]["body"]["text"], "v3 for all", "{v}");
    assert!(v.get("private").is_none(), "{v}");
    assert_eq!(listed(r, "social.post", None).await, vec![id.clone()]);

    // A kind with a page of its own: that page says it is private, the record opens it.
    let (status, v) = call(
        r,
        "POST",
        "/api/v1/records",
        Some(&ana),
        Some(
            json!({ "kind": "social.page", "body": { "title": "Plans", "blocks": [] },
                     "to": [ben_did] }),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let page = v["id"].as_str().unwrap().to_owned();
    let (status, v) = call(r, "GET", &format!("/api/v1/pages/{page}"), Some(&ben), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    assert!(v.to_string().contains("private"), "{v}");
    assert_eq!(
        read(r, &page, Some(&ben)).await["record"]["body"]["title"],
        "Plans"
    );
    t.node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_a_members_only_post_reaches_only_the_groups_members() {
    let a = setup().await;
    let b = setup().await;
    let (ra, rb) = (&a.router, &b.router);
    let ana = register_and_login(ra, "ana").await;
    let dee = register_and_login(ra, "dee").await;
    let ben = register_and_login(rb, "ben").await;
    let ben_did = did_of(rb, &ben).await;
    connect(&a, &b).await;

    let (status, v) = call(
        ra,
        "POST",
        "/api/v1/groups",
        Some(&ana),
        Some(json!({ "name": "The Band", "members": [{ "member": ben_did, "role": "member" }] })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let group = v["id"].as_str().unwrap().to_owned();
    let (status, v) = call(
        rb,
        "POST",
        "/api/v1/me/follows",
        Some(&ben),
        Some(json!({ "topic": format!("/mnode/1/group/{group}") })),
    )
    .await;
    assert!(status.is_success(), "{v}");

    // A group that does not exist is refused.
    let (status, v) = call(
        ra,
        "POST",
        "/api/v1/records",
        Some(&ana),
        Some(json!({ "kind": "social.post", "body": { "text": "x" },
                     "to_group": "bafyreigbtj4x7ip5legnfznufuopl4sg4knzc2cof6duas4b3q2fy6swua" })),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");

    let (status, v) = call(
        ra,
        "POST",
        "/api/v1/records",
        Some(&ana),
        Some(
            json!({ "kind": "social.post", "body": { "text": "rehearsal at 8" },
                     "owner": group, "to_group": group }),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();

    let v = eventually("B holds the members' post", || async {
        let (status, v) = call(
            rb,
            "GET",
            &format!("/api/v1/records/{id}"),
            Some(&ben),
            None,
        )
        .await;
        (status == StatusCode::OK).then_some(v)
    })
    .await;
    assert_eq!(v["record"]["body"]["text"], "rehearsal at 8", "{v}");
    assert_eq!(
        v["record"]["body"]["$owner"]["group"]["/"],
        group.as_str(),
        "{v}"
    );
    // Dee, on the author's own node but not in the band, cannot read it.
    let v = read(ra, &id, Some(&dee)).await;
    assert!(withheld(&v), "{v}");
    assert!(listed(ra, "social.post", Some(&dee)).await.is_empty());
    assert_eq!(
        listed(ra, "social.post", Some(&ana)).await,
        vec![id.clone()]
    );
    a.node.shutdown().await.expect("shutdown a");
    b.node.shutdown().await.expect("shutdown b");
}

/// `DELETE /records/{id}` of a group's private item as `token`: status and answer.
async fn delete(router: &axum::Router, id: &str, token: &str) -> (StatusCode, Value) {
    call(
        router,
        "DELETE",
        &format!("/api/v1/records/{id}"),
        Some(token),
        None,
    )
    .await
}

/// Whether the item `id` is deleted (its last version a tombstone).
async fn deleted(router: &axum::Router, id: &str) -> bool {
    let (status, v) = call(
        router,
        "GET",
        &format!("/api/v1/records/{id}/history"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["versions"].as_array().unwrap().last().unwrap()["deleted"] == true
}

/// A tombstone has no body: a group's owner or admin deletes its private item without being
/// among its readers, also when their right is newer than the group version the item cites.
/// A member may not, reading it or having written it: deleting a group's item takes an owner or
/// an admin (the group's rules).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_groups_admin_deletes_its_private_item_without_reading_it() {
    let t = setup().await;
    let r = &t.router;
    let ana = register_and_login(r, "ana").await;
    let ben = register_and_login(r, "ben").await;
    let cy = register_and_login(r, "cy").await;
    let dee = register_and_login(r, "dee").await;
    let eve = register_and_login(r, "eve").await;
    let (status, v) = call(
        r,
        "POST",
        "/api/v1/groups",
        Some(&ana),
        Some(json!({ "name": "The Band", "members": [
            { "member": "ben", "role": "member" },
            { "member": "cy", "role": "admin" },
            { "member": "dee", "role": "member" },
        ]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let group = v["id"].as_str().unwrap().to_owned();
    // Ben writes two of the group's posts for Dee alone.
    let mut ids = vec![];
    for text in ["for dee", "also for dee"] {
        let (status, v) = call(
            r,
            "POST",
            "/api/v1/records",
            Some(&ben),
            Some(json!({ "kind": "social.post", "body": { "text": text },
                         "owner": group, "to": ["@dee"] })),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        ids.push(v["id"].as_str().unwrap().to_owned());
    }
    let (first, second) = (&ids[0], &ids[1]);
    for tok in [&ana, &cy, &eve] {
        assert!(withheld(&read(r, first, Some(tok)).await));
    }

    // Dee reads it and Ben wrote it, but neither is an owner or an admin.
    for tok in [&dee, &ben] {
        let (status, v) = delete(r, first, tok).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
        assert_eq!(v["error"]["code"], "group_role", "{v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("is member in group") && message.contains("owner or admin"),
            "{v}"
        );
    }
    assert!(!deleted(r, first).await);

    // Cy, an admin in the group version the post cites, deletes it without reading it.
    let (status, v) = delete(r, first, &cy).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(deleted(r, first).await);

    // Eve, made an admin after the posts were written, deletes the other: the node first
    // re-cites the group's head in a version sealed for Eve alone (she cannot read, so
    // cannot re-seal, Ben's text), then the tombstone.
    let (status, v) = call(
        r,
        "PUT",
        &format!("/api/v1/groups/{group}/members/eve"),
        Some(&ana),
        Some(json!({ "role": "admin" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, v) = delete(r, second, &eve).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v["seq"], 2,
        "a version re-citing the group, then the tombstone: {v}"
    );
    assert!(deleted(r, second).await);
    let (_, v) = call(
        r,
        "GET",
        &format!("/api/v1/records/{second}/history"),
        None,
        None,
    )
    .await;
    let recite = v["versions"][1]["cid"].as_str().unwrap().to_owned();
    let v = read(r, &format!("{recite}?exact=true"), Some(&eve)).await;
    let eve_did = did_of(r, &eve).await;
    assert_eq!(v["private"]["to"], json!([eve_did]), "{v}");
    assert!(!v.to_string().contains("also for dee"), "{v}");
    t.node.shutdown().await.expect("shutdown");
}

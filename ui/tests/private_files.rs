//! A private record's file through the pages: uploaded sealed for the readers the form chose,
//! shown and served to them from `/file/{id}`, to no one else.

#![allow(clippy::unwrap_used)]

mod support;

use axum::{
    body::Body,
    http::{Request, StatusCode, header},
};
use support::{Browser, setup};

/// A multipart upload to `/upload` as the island sends it: the form's "Who can read" fields,
/// then the file.
fn upload(b: &Browser, readers: &str, to: &str, name: &str, data: &[u8]) -> Request<Body> {
    let mut body = Vec::new();
    for (field, value) in [("_readers", readers), ("_to", to)] {
        body.extend_from_slice(
            format!("--X\r\nContent-Disposition: form-data; name=\"{field}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--X\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(data);
    body.extend_from_slice(b"\r\n--X--\r\n");
    Request::post("/upload")
        .header(header::COOKIE, b.cookie_header())
        .header(header::CONTENT_TYPE, "multipart/form-data; boundary=X")
        .header("x-csrf-token", b.csrf())
        .header("sec-fetch-site", "same-origin")
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_upload_is_sealed_for_the_readers_the_form_chose() {
    let t = setup().await;
    let mut ana = Browser::new(&t.router);
    ana.sign_up("ana").await;
    let mut ben = Browser::new(&t.router);
    ben.sign_up("ben").await;
    let mut cy = Browser::new(&t.router);
    cy.sign_up("cy").await;

    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    // Nobody listed for "People I list": refused, nothing stored.
    let p = ana
        .send(upload(&ana, "people", "", "stems.bin", &data))
        .await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST, "{}", p.body);

    let p = ana
        .send(upload(&ana, "people", "ben", "stems.bin", &data))
        .await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);
    let answer: serde_json::Value = serde_json::from_str(&p.body).unwrap();
    let id = answer["record"]["id"].as_str().unwrap().to_owned();
    let blob = answer["cid"].as_str().unwrap().to_owned();
    assert!(answer["sealed_size"].as_u64().unwrap() > data.len() as u64);

    // Ana and Ben read the file; the page links it from /file/, never from /ipfs/.
    for b in [&mut ana, &mut ben] {
        let page = b.get(&format!("/core/files/{id}")).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page.body.contains(&format!("/file/{id}")), "{}", page.body);
        assert!(
            !page.body.contains(&format!("/ipfs/{blob}")),
            "{}",
            page.body
        );
        let req = Request::get(format!("/file/{id}"))
            .header(header::COOKIE, b.cookie_header())
            .header(header::RANGE, "bytes=70000-70009")
            .body(Body::empty())
            .unwrap();
        let resp = tower::ServiceExt::oneshot(t.router.clone(), req)
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
        let got = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        assert_eq!(&got[..], &data[70_000..70_010]);
    }
    // Cy, and a visitor, get neither the page's file nor the file.
    let page = cy.get(&format!("/core/files/{id}")).await;
    assert!(!page.body.contains("stems.bin"), "{}", page.body);
    assert_eq!(
        cy.get(&format!("/file/{id}")).await.status,
        StatusCode::FORBIDDEN
    );
    let mut visitor = Browser::new(&t.router);
    assert_eq!(
        visitor.get(&format!("/file/{id}")).await.status,
        StatusCode::FORBIDDEN
    );
    // Without a "Who can read" choice the upload is public, as before.
    let p = ana
        .send(upload(&ana, "", "", "open.bin", b"for everyone"))
        .await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);
    let answer: serde_json::Value = serde_json::from_str(&p.body).unwrap();
    assert!(answer.get("sealed_size").is_none(), "{answer}");
    t.node.shutdown().await.unwrap();
}

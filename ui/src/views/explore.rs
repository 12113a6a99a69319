//! `/explore`: any CID this node holds, as DAG-JSON with its links clickable, the signature
//! check of a record, its version chain, and the CAR and raw downloads.

use axum::{
    Router,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use maud::{Markup, html};
use mnode_api::{ApiError, ApiState};
use mnode_dag::{
    Cid, Record,
    cids::{self, LinkKind},
};
use serde::Deserialize;
use serde_json::Value;

use super::{item_url, store};
use crate::{
    fmt,
    layout::{self, OrPage},
    session::Viewer,
};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/explore", get(form))
        .route("/explore/{cid}", get(explore))
}

#[derive(Deserialize)]
struct ExploreQuery {
    cid: Option<String>,
}

fn search(cid: &str) -> Markup {
    html! {
        form.explore method="get" action="/explore" {
            label for="cid" { "CID" }
            input #cid name="cid" type="text" value=(cid) required placeholder="bafyrei…" aria-describedby="cid-hint";
            small #cid-hint { "A record's or a file's content address." }
            button type="submit" { "Explore" }
        }
    }
}

async fn form(v: Viewer, Query(q): Query<ExploreQuery>) -> Response {
    if let Some(cid) = q.cid.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        return Redirect::to(&format!("/explore/{}", crate::session::urlencode(cid)))
            .into_response();
    }
    let body = html! {
        h1 { "Explore" }
        p { "Look at any block or file this node holds: what it says, what it links to, and whether its signature holds." }
        (search(""))
    };
    layout::respond(&v, StatusCode::OK, "Explore", body)
}

/// A DAG-JSON value with every link made a link to its own explorer page.
fn json_view(v: &Value, indent: usize) -> Markup {
    let pad = "  ".repeat(indent);
    let inner = "  ".repeat(indent + 1);
    match v {
        Value::Object(m) if m.len() == 1 && m.get("/").is_some_and(Value::is_string) => {
            let c = m["/"].as_str().unwrap_or_default();
            html! { "{\"/\": \"" a href={ "/explore/" (c) } { (c) } "\"}" }
        }
        Value::Object(m) if m.is_empty() => html! { "{}" },
        Value::Object(m) => html! {
            "{\n"
            @for (i, (k, val)) in m.iter().enumerate() {
                (inner) span.key { (serde_json::to_string(k).unwrap_or_default()) } ": " (json_view(val, indent + 1))
                @if i + 1 < m.len() { "," } "\n"
            }
            (pad) "}"
        },
        Value::Array(a) if a.is_empty() => html! { "[]" },
        Value::Array(a) => html! {
            "[\n"
            @for (i, val) in a.iter().enumerate() {
                (inner) (json_view(val, indent + 1)) @if i + 1 < a.len() { "," } "\n"
            }
            (pad) "]"
        },
        other => html! { (other.to_string()) },
    }
}

async fn explore(
    State(s): State<ApiState>,
    v: Viewer,
    Path(text): Path<String>,
) -> Result<Response, Response> {
    let cid: Cid = match cids::parse(text.trim()) {
        Ok(c) => c,
        Err(e) => {
            let body = html! {
                h1 { "Explore" }
                p.error role="alert" { (e.to_string()) }
                (search(&text))
            };
            return Ok(layout::respond(
                &v,
                StatusCode::BAD_REQUEST,
                "Explore",
                body,
            ));
        }
    };
    if cids::link_kind(&cid) == LinkKind::Blob {
        return blob(&s, &v, cid).await;
    }
    let found = store(&s, move |st| {
        let Some(bytes) = st.block(&cid)? else {
            return Ok(None);
        };
        let json = mnode_dag::cbor::decode_ipld(&bytes)
            .ok()
            .and_then(|i| mnode_dag::json::to_json_value(&i).ok());
        let record = Record::decode(&bytes);
        let chain = match &record {
            Ok(r) => match st.item_id(&r.cid())? {
                Some(id) => st.history(&id)?,
                None => vec![],
            },
            Err(_) => vec![],
        };
        Ok(Some((
            bytes.len(),
            json,
            record.map(|r| (r.verify(), r)),
            chain,
        )))
    })
    .await
    .or_page(&v)?;
    let Some((size, json, record, chain)) = found else {
        return Err(layout::error(
            &v,
            &ApiError::not_found(format!(
                "This node does not hold {cid}. It may be on a peer: follow its author, or fetch it with `mnode fetch`."
            )),
        ));
    };
    let body = html! {
        h1 { "Explore" }
        (search(&cid.to_string()))
        article.block {
            header {
                p { "Block " (fmt::cid(&cid)) " · " (fmt::bytes(size as u64)) " of DAG-CBOR" }
                @match &record {
                    Ok((Ok(()), r)) => {
                        p.valid role="status" { "Signature: valid — signed by " a href={ "/authors/" (r.author()) } { code { (fmt::did(r.author())) } } }
                        p { (capitalised(&mnode_dag::registry::with_article(r.kind()))) ", version " (r.seq()) ". " a href=(item_url(r.kind(), &r.id())) { "Open its page" } }
                    }
                    Ok((Err(e), _)) => { p.error role="alert" { "Signature: invalid — " (e.to_string()) } }
                    Err(_) => { p { "Not a signed record: a plain IPLD block." } }
                }
                p {
                    a href={ "/ipfs/" (cid) "?format=car" } download { "Download CAR" } " · "
                    a href={ "/ipfs/" (cid) "?format=raw" } download { "Download raw block" }
                }
            }
            @if let Some(j) = &json {
                pre.dag-json { code { (json_view(j, 0)) } }
            }
            @if !chain.is_empty() {
                h2 { "Version chain" }
                ol.history {
                    @for info in &chain {
                        li {
                            @if info.cid == cid { strong { "Version " (info.seq) " (this one)" } }
                            @else { a href={ "/explore/" (info.cid) } { "Version " (info.seq) } }
                            " · " (fmt::time(info.updated)) @if info.tombstone { " · deleted" }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::respond(&v, StatusCode::OK, "Explore", body))
}

async fn blob(s: &ApiState, v: &Viewer, cid: Cid) -> Result<Response, Response> {
    let size = s.node().blobs().size(&cid).await.ok().flatten();
    let Some(size) = size else {
        return Err(layout::error(
            v,
            &ApiError::not_found(format!("This node does not hold the file {cid}.")),
        ));
    };
    let body = html! {
        h1 { "Explore" }
        (search(&cid.to_string()))
        article.block {
            p { "File " (fmt::cid(&cid)) " · " (fmt::bytes(size)) }
            p { "Its CID is its BLAKE3 hash: any copy, from any peer, is checked against it." }
            p { a href={ "/ipfs/" (cid) } { "Open the file" } " · " a href={ "/ipfs/" (cid) "?format=raw" } download { "Download raw" } }
        }
    };
    Ok(layout::respond(v, StatusCode::OK, "Explore", body))
}

/// "An art.release" at the start of a sentence.
fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

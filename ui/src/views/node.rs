//! `/node` (admins): what this node is, how to reach it, whom it is connected to, what it
//! stores; Connect, Verify and Collect garbage.

use axum::{
    Form, Router,
    extract::State,
    http::StatusCode,
    response::Response,
    routing::{get, post},
};
use maud::{Markup, html};
use mnode_api::{ApiError, ApiState};
use mnode_node::{maintenance, node::NatStatus};
use serde::Deserialize;

use super::store;
use crate::{
    fmt,
    layout::{self, OrPage, csrf},
    session::Viewer,
};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/node", get(node))
        .route("/node/connect", post(connect))
        .route("/node/verify", post(verify))
        .route("/node/gc", post(gc))
}

fn admin(v: &Viewer) -> Result<(), Response> {
    v.require()?;
    if v.admin {
        Ok(())
    } else {
        Err(layout::error(
            v,
            &ApiError::forbidden("The node page is for this node's admins."),
        ))
    }
}

async fn peers_section(
    s: &ApiState,
    v: &Viewer,
    result: Option<Result<String, String>>,
    typed: &str,
) -> Result<Markup, Response> {
    let peers = s.node().peers().await.or_page(v)?;
    Ok(html! {
        section #peers aria-labelledby="peers-h" {
            h2 #peers-h { "Peers" }
            @match &result {
                Some(Ok(m)) => p.notice role="status" { (m) },
                Some(Err(m)) => p.error role="alert" { (m) },
                None => {},
            }
            @if peers.is_empty() {
                p.empty { "No peers connected. Paste another node's address below to connect to it." }
            } @else {
                p { (peers.len()) @if peers.len() == 1 { " peer" } @else { " peers" } " connected." }
                ul.peers {
                    @for p in &peers {
                        li {
                            code { (p.peer_id) }
                            @if let Some(a) = &p.agent { " " small { (a) } }
                            " " small { @if p.relayed { "through a relay" } @else { "direct" } }
                            @for a in &p.addrs { br; small { code { (a) } } }
                        }
                    }
                }
            }
            form method="post" action="/node/connect" hx-post="/node/connect" hx-target="#peers" hx-swap="outerHTML" {
                (csrf(v))
                label for="multiaddr" { "Multiaddr" }
                input #multiaddr name="addr" type="text" value=(typed) required
                    placeholder="/ip4/192.0.2.7/tcp/4001/p2p/12D3KooW…" aria-describedby="multiaddr-hint";
                small #multiaddr-hint { "Another node's address, as its Node page or " code { "mnode id" } " shows it." }
                button type="submit" { "Connect" }
            }
        }
    })
}

async fn node(State(s): State<ApiState>, v: Viewer) -> Result<Response, Response> {
    admin(&v)?;
    page(&s, &v, None, None).await
}

async fn page(
    s: &ApiState,
    v: &Viewer,
    peers_result: Option<Result<String, String>>,
    repo_result: Option<Markup>,
) -> Result<Response, Response> {
    let info = s.node().info().await.or_page(v)?;
    let stat = maintenance::stat(s.node().repo().store(), s.node().blobs())
        .await
        .map_err(|e| layout::error(v, &ApiError::internal(&e)))?;
    let follows = store(s, |st| Ok(st.follows()?)).await.or_page(v)?;
    let repo = s.node().repo();
    let traffic = s.node().traffic();
    let peers = peers_section(s, v, peers_result, "").await?;
    let body = html! {
        h1 { "Node" }
        section aria-labelledby="id-h" {
            h2 #id-h { "This node" }
            dl.fields {
                dt { "Peer id" } dd { code { (info.peer_id) } }
                dt { "Owner" } dd { "@" (repo.info().owner) }
                dt { "Repo" } dd { code { (repo.path().display()) } }
                dt { "Network" } dd {
                    @match info.nat.status {
                        NatStatus::Public => "Reachable from outside its network",
                        NatStatus::Private => "Behind a router: peers reach it through its relays",
                        NatStatus::Unknown => "Not known yet (no peer has tested it)",
                    }
                    @if !info.nat.relays.is_empty() { "; a slot on " (info.nat.relays.len()) @if info.nat.relays.len() == 1 { " relay" } @else { " relays" } }
                    "; " (info.nat.hole_punches) " hole punches made, " (info.nat.hole_punches_failed) " failed"
                }
                dt { "Traffic" } dd { (fmt::bytes(traffic.sent)) " sent, " (fmt::bytes(traffic.received)) " received since it started" }
            }
            h3 { "Addresses" }
            p { "Other nodes connect to this one with any of these:" }
            ul.addrs { @for a in info.addrs.iter().chain(info.nat.external_addrs.iter().filter(|a| !info.addrs.contains(a))) { li { code { (a) } " " button.copy.secondary.outline type="button" data-copy=(a) aria-label={ "Copy " (a) } { "Copy" } } } }
        }
        (peers)
        section aria-labelledby="follows-h" {
            h2 #follows-h { "Topics followed" }
            @if follows.is_empty() { p.empty { "None: this node receives nothing from the network until someone here follows an author or a topic." } }
            ul { @for t in &follows { li { code { (t) } } } }
        }
        section #repo aria-labelledby="storage-h" {
            h2 #storage-h { "Storage" }
            dl.fields {
                dt { "Records" } dd { (stat.records.items) " items in " (stat.records.versions) " versions (" (stat.records.deleted) " deleted)" }
                dt { "Blocks" } dd { (stat.records.blocks) ", " (fmt::bytes(stat.records.block_bytes)) }
                dt { "Files" } dd {
                    (stat.files) ", " (fmt::bytes(stat.file_bytes))
                    @if let Some(bucket) = &stat.bucket { ", in " code { (bucket) } " (files of up to 16 KiB stay in the repo)" }
                }
                dt { "Pins" } dd { (stat.records.pins) " — pinned items are kept; garbage collection removes what no pin reaches" }
            }
            @if let Some(r) = repo_result { (r) }
            div.actions {
                form.inline method="post" action="/node/verify" {
                    (csrf(v)) button type="submit" { "Verify" }
                }
                form.inline method="post" action="/node/gc" {
                    (csrf(v)) button.secondary type="submit" { "Collect garbage" }
                }
            }
            small { "Verify re-hashes every block and file and re-checks every signature. Collect garbage removes records and files that nothing pinned keeps." }
        }
    };
    Ok(layout::respond(v, StatusCode::OK, "Node", body))
}

#[derive(Deserialize)]
struct ConnectForm {
    #[serde(default)]
    addr: String,
}

async fn connect(
    State(s): State<ApiState>,
    v: Viewer,
    Form(f): Form<ConnectForm>,
) -> Result<Response, Response> {
    admin(&v)?;
    let result = match f.addr.trim().parse() {
        Err(e) => Err(format!("{:?} is not a multiaddr: {e}", f.addr.trim())),
        Ok(addr) => match s.node().connect(addr).await {
            Ok(peer) => Ok(format!("Connected to {peer}.")),
            Err(e) => Err(ApiError::from(e).message),
        },
    };
    if v.hx {
        let typed = if result.is_err() {
            f.addr.clone()
        } else {
            String::new()
        };
        let section = peers_section(&s, &v, Some(result), &typed).await?;
        return Ok(axum::response::Html(section.into_string()).into_response());
    }
    page(&s, &v, Some(result), None).await
}

use axum::response::IntoResponse as _;

async fn verify(State(s): State<ApiState>, v: Viewer) -> Result<Response, Response> {
    admin(&v)?;
    let report = maintenance::verify(s.node().repo().store(), s.node().blobs())
        .await
        .map_err(|e| layout::error(&v, &ApiError::internal(&e)))?;
    let result = html! {
        @if report.problems.is_empty() {
            p.notice role="status" { "Verified: " (report.blocks) " blocks, " (report.records) " records, " (report.blobs) " files — all intact." }
        } @else {
            div.error role="alert" {
                p { (report.problems.len()) " problems found:" }
                ul { @for p in &report.problems { li { code { (p.what) } ": " (p.problem) } } }
            }
        }
    };
    page(&s, &v, None, Some(result)).await
}

async fn gc(State(s): State<ApiState>, v: Viewer) -> Result<Response, Response> {
    admin(&v)?;
    let report = maintenance::gc(s.node().repo().store(), s.node().blobs())
        .await
        .map_err(|e| layout::error(&v, &ApiError::internal(&e)))?;
    let result = html! {
        p.notice role="status" { "Garbage collected: " (report.items) " items, " (report.blocks) " blocks (" (fmt::bytes(report.bytes)) ") and " (report.blobs) " files removed." }
    };
    page(&s, &v, None, Some(result)).await
}

//! `GET /events?topic=…`: new records as Server-Sent Events.
//!
//! Each record the node stores from now on, made here (`POST /records`, replies, forks) or
//! received from a peer (gossip or catch-up), is one event `record` whose `id` is the record's
//! CID and whose `data` is the item as listings show it (with `cid` and `record` of this very
//! version). `topic` is a gossip topic (`/mnode/1/author/<did>`, `/mnode/1/branch/<cid>`,
//! `/mnode/1/thread/<cid>`) or a bare `did:key:…` for an author's feed; without it every new
//! record is sent. Records from peers arrive only for topics the node follows
//! (`POST /me/follows`). A subscriber that falls too far behind gets a `lagged` event with the
//! number of events it missed, and the stream goes on. A comment every 15 s keeps the
//! connection open.

use std::convert::Infallible;

use axum::{
    extract::{Query, State},
    response::sse::{Event, KeepAlive, Sse},
};
use futures::{Stream, StreamExt as _};
use mnode_dag::Cid;
use mnode_node::node::{NodeEvent, NodeHandle};
use mnode_protocols::GossipTopic;
use serde::Deserialize;
use tokio::sync::broadcast::{Receiver, error::RecvError};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    ApiError, ApiState, auth::Admin, error::ErrorBody, routes::parse_topic, social::item_json,
};

pub(crate) fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(events))
        .routes(routes!(node_events))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct EventsQuery {
    /// Only records in this gossip topic (or by this `did:key:…`); default: every new record.
    #[param(value_type = Option<crate::openapi::TopicText>)]
    topic: Option<String>,
}

/// New records as Server-Sent Events.
///
/// Each record the node stores from now on is an event `record` whose `id` is its CID and whose
/// `data` is the item as listings show it; a subscriber that falls behind gets a `lagged` event
/// with the number it missed. Records from peers arrive only for followed topics.
#[utoipa::path(
    get,
    path = "/events",
    tag = "events",
    params(EventsQuery),
    responses(
        (status = 200, description = "An endless `text/event-stream` of `record` and `lagged` events", content_type = "text/event-stream", body = String),
        (status = 400, description = "Not a topic", body = ErrorBody),
    ),
)]
async fn events(
    State(s): State<ApiState>,
    Query(q): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let topic = q.topic.as_deref().map(parse_topic).transpose()?;
    // Subscribe before answering, so that nothing published after the answer is missed.
    let rx = s.node.events();
    let stream = futures::stream::unfold(
        (rx, s.node.clone(), topic),
        |(mut rx, node, topic)| async move {
            let event = next_event(&mut rx, &node, topic).await?;
            Some((Ok(event), (rx, node, topic)))
        },
    )
    .take_until(s.shutdown.clone().cancelled_owned());
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// The next event for the subscriber, or `None` when the node stops.
async fn next_event(
    rx: &mut Receiver<NodeEvent>,
    node: &NodeHandle,
    topic: Option<GossipTopic>,
) -> Option<Event> {
    loop {
        let cid = match rx.recv().await {
            Ok(NodeEvent::Stored { cid, .. } | NodeEvent::Published { cid, .. }) => cid,
            Ok(_) => continue,
            Err(RecvError::Lagged(n)) => {
                return Some(Event::default().event("lagged").data(n.to_string()));
            }
            Err(RecvError::Closed) => return None,
        };
        let node = node.clone();
        let found = tokio::task::spawn_blocking(move || record_event(&node, cid, topic)).await;
        match found {
            Ok(Ok(Some(event))) => return Some(event),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::warn!(%cid, "event not sent: {e}"),
            Err(e) => tracing::warn!(%cid, "event not sent: {e}"),
        }
    }
}

/// The event for the stored record `cid`, if it is in `topic`.
fn record_event(
    node: &NodeHandle,
    cid: Cid,
    topic: Option<GossipTopic>,
) -> Result<Option<Event>, ApiError> {
    let store = node.repo().store();
    let Some(record) = store.record(&cid)? else {
        return Ok(None);
    };
    // Events are open to anyone: a private record is not announced.
    if crate::private::is_private(&record)
        || topic.is_some_and(|t| !GossipTopic::of(&record).contains(&t))
    {
        return Ok(None);
    }
    let id = record.id();
    let Some(item) = store.item(&id)? else {
        return Ok(None);
    };
    let data = item_json(store, &id, &item, Some(&record))?;
    Ok(Some(
        Event::default()
            .event("record")
            .id(cid.to_string())
            .data(data.to_string()),
    ))
}

/// Everything the node's network does, as Server-Sent Events.
///
/// One event per node event, named as its `event` field: `peer_connected`,
/// `peer_disconnected`, `peer_subscribed`, `stored` (a record from a peer, with `via` gossip or
/// sync), `published`, `rejected` (a peer's invalid message, with the reason), `peer_banned`,
/// `synced` (a finished catch-up exchange, with its byte counts). `data` is the event as JSON,
/// `{"event": "stored", "cid": …, "from": …, "via": "gossip", …}`. A subscriber that falls
/// behind gets a `lagged` event, `{"event": "lagged", "missed": N}`. Admin only.
#[utoipa::path(
    get,
    path = "/node/events",
    tag = "node",
    responses(
        (status = 200, description = "An endless `text/event-stream` of node events", content_type = "text/event-stream", body = String),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "The caller is not an admin", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn node_events(
    State(s): State<ApiState>,
    _admin: Admin,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = s.node.events();
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        let event = match rx.recv().await {
            Ok(ev) => match serde_json::to_value(&ev) {
                Ok(data) => {
                    let name = data["event"].as_str().unwrap_or("event").to_owned();
                    Event::default().event(name).data(data.to_string())
                }
                Err(e) => Event::default().event("error").data(
                    serde_json::json!({ "event": "error", "message": e.to_string() }).to_string(),
                ),
            },
            Err(RecvError::Lagged(n)) => Event::default()
                .event("lagged")
                .data(serde_json::json!({ "event": "lagged", "missed": n }).to_string()),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(event), rx))
    })
    .take_until(s.shutdown.clone().cancelled_owned());
    Sse::new(stream).keep_alive(KeepAlive::default())
}

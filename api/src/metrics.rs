//! `/metrics` in the Prometheus text format: HTTP requests and latencies by route, store sizes
//! by column family, and connected peers.
//!
//! Request metrics are labelled with the route pattern (`/api/v1/records/{cid}`), never the
//! raw path, so that the series stay few whatever clients ask for.

use std::{sync::Arc, time::Instant};

use axum::{
    extract::{MatchedPath, Request, State},
    http::{StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

use crate::{ApiError, ApiState};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FamilyLabels {
    family: String,
}

fn latency_histogram() -> Histogram {
    // 50 µs to ~1.6 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

/// The node's metrics.
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    store_keys: Family<FamilyLabels, Gauge>,
    store_bytes: Family<FamilyLabels, Gauge>,
    peers: Gauge,
    p2p_bytes: Family<DirectionLabels, Gauge>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    direction: &'static str,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("mnode");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let store_keys = Family::<FamilyLabels, Gauge>::default();
        let store_bytes = Family::<FamilyLabels, Gauge>::default();
        let peers = Gauge::default();
        let p2p_bytes = Family::<DirectionLabels, Gauge>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to the response head, by method and route",
            latency.clone(),
        );
        registry.register(
            "store_keys",
            "Estimated keys per store column family",
            store_keys.clone(),
        );
        registry.register(
            "store_bytes",
            "Bytes per store column family (SST files and memtables)",
            store_bytes.clone(),
        );
        registry.register("peers", "Connected peers", peers.clone());
        registry.register(
            "p2p_bytes",
            "Bytes the libp2p transports moved since the node started, by direction",
            p2p_bytes.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            store_keys,
            store_bytes,
            peers,
            p2p_bytes,
        }
    }
}

/// Counts and times every request.
pub(crate) async fn track(State(s): State<ApiState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let resp = next.run(req).await;
    let m = &s.metrics;
    m.latency
        .get_or_create(&RouteLabels {
            method: method.clone(),
            route: route.clone(),
        })
        .observe(start.elapsed().as_secs_f64());
    m.requests
        .get_or_create(&RequestLabels {
            method,
            route,
            status: resp.status().as_u16(),
        })
        .inc();
    resp
}

/// `GET /metrics`.
pub(crate) async fn metrics(State(s): State<ApiState>) -> Result<Response, ApiError> {
    let peers = s.node.peers().await.map(|p| p.len()).unwrap_or(0);
    s.metrics
        .peers
        .set(i64::try_from(peers).unwrap_or(i64::MAX));
    let traffic = s.node.traffic();
    for (direction, n) in [("sent", traffic.sent), ("received", traffic.received)] {
        s.metrics
            .p2p_bytes
            .get_or_create(&DirectionLabels { direction })
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    let repo = s.node.repo().clone();
    let sizes = tokio::task::spawn_blocking(move || repo.store().sizes()).await??;
    for f in sizes {
        let labels = FamilyLabels {
            family: f.name.to_owned(),
        };
        s.metrics
            .store_keys
            .get_or_create(&labels)
            .set(i64::try_from(f.keys).unwrap_or(i64::MAX));
        s.metrics
            .store_bytes
            .get_or_create(&labels)
            .set(i64::try_from(f.bytes).unwrap_or(i64::MAX));
    }
    let mut text = String::new();
    encode(&mut text, &s.metrics.registry).map_err(|e| ApiError::internal(&e))?;
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// Shared between handlers.
pub(crate) type SharedMetrics = Arc<Metrics>;

#![doc = include_str!("../README.md")]

mod accounts;
mod admin;
mod auth;
mod car_response;
pub mod client;
mod error;
mod events;
pub mod files;
mod forums;
mod gateway;
pub mod groups;
pub mod limits;
mod metrics;
pub mod moderation;
mod openapi;
pub mod ops;
mod pins;
pub mod private;
mod progress;
mod routes;
mod shutdown;
mod social;

use std::{io, net::SocketAddr, path::Path, sync::Arc};

use axum::Router;
use mnode_node::node::NodeHandle;
use tokio_util::sync::CancellationToken;

pub use crate::{error::ApiError, shutdown::Requests};

/// The file in the repo that holds the admin token.
pub const TOKEN_FILE: &str = "api.token";

/// What every handler sees.
#[derive(Clone)]
pub struct ApiState {
    node: NodeHandle,
    token: Arc<str>,
    metrics: metrics::SharedMetrics,
    shutdown: CancellationToken,
    limits: Arc<limits::Limits>,
}

impl ApiState {
    /// State for a node whose admin token is `token`.
    pub fn new(node: NodeHandle, token: impl Into<Arc<str>>) -> Self {
        let limits = Arc::new(limits::Limits::new(&node.repo().config().api.limits));
        Self {
            limits,
            node,
            token: token.into(),
            metrics: Default::default(),
            shutdown: CancellationToken::new(),
        }
    }

    /// Ends the endless responses (event streams) when `token` fires, so that a graceful
    /// shutdown ([`serve`] with the same token) does not wait for their clients to leave.
    pub fn with_shutdown(mut self, token: CancellationToken) -> Self {
        self.shutdown = token;
        self
    }
}

impl ApiState {
    /// The node this state serves.
    pub fn node(&self) -> &NodeHandle {
        &self.node
    }

    /// The rate limits (`api.limits`) the routes and the pages spend from.
    pub fn limits(&self) -> &limits::Limits {
        &self.limits
    }

    /// Fires when the server shuts down (ends endless responses).
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.shutdown
    }
}

/// Runs `f` on the repo in the blocking pool (RocksDB and argon2 block).
pub async fn with_repo<T: Send + 'static>(
    s: &ApiState,
    f: impl FnOnce(&mnode_node::repo::Repo) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let repo = s.node.repo().clone();
    tokio::task::spawn_blocking(move || f(&repo)).await?
}

/// Runs `f` on the record store in the blocking pool.
pub async fn with_store<T: Send + 'static>(
    s: &ApiState,
    f: impl FnOnce(&mnode_node::store::Store) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    with_repo(s, move |repo| f(repo.store())).await
}

/// The whole HTTP surface.
pub fn router(state: ApiState) -> Router {
    routes::router(state.clone()).layer(axum::middleware::from_fn_with_state(state, limits::guard))
}

/// The OpenAPI 3.1 document of `/api/v1` that `GET /api/v1/openapi.json` serves.
pub fn openapi() -> &'static serde_json::Value {
    openapi::document()
}

/// Reads the repo's admin token, creating it (random, 0600) if there is none.
pub fn admin_token(repo: &Path) -> io::Result<String> {
    let path = repo.join(TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => return Ok(t.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    let token = hex::encode(bytes);
    mnode_node::keystore::write_private(&path, token.as_bytes())
        .map_err(|e| io::Error::other(e.to_string()))?;
    Ok(token)
}

/// Serves `router` on `listener` until `cancel` fires and the requests in flight are answered.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    cancel: CancellationToken,
) -> io::Result<()> {
    serve_tracked(listener, router, cancel, Requests::default()).await
}

/// [`serve`], counting the requests in flight in `requests`, which can also end them
/// ([`Requests::cut`]) when a shutdown should wait no longer.
pub async fn serve_tracked(
    listener: tokio::net::TcpListener,
    router: Router,
    cancel: CancellationToken,
    requests: Requests,
) -> io::Result<()> {
    let router = router.layer(axum::middleware::from_fn_with_state(
        requests,
        shutdown::track,
    ));
    // Without TCP_NODELAY, an answer written in parts (an NDJSON progress line, then the last
    // one) waits for the client's delayed ACK of the first part: 40 ms a request on Linux,
    // which made `mnode add DIR` through the daemon take 36 ms a file.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY on an API connection: {e}");
        }
    });
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { cancel.cancelled().await })
    .await
}

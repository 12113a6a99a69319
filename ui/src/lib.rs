#![doc = include_str!("../README.md")]

mod assets;
mod doc;
mod fmt;
mod form;
mod layout;
mod session;
mod views;

use axum::{Router, middleware};
use mnode_api::ApiState;

/// The pages alone, with their guards (security headers, CSRF, the session cookie), for
/// `state`'s node. `/api/v1`, `/ipfs/` and `/metrics` are not in it: see [`app`].
pub fn router(state: ApiState) -> Router {
    views::routes()
        .fallback(views::not_found)
        // Layers go after the routes they guard: a layer on an empty router guards nothing.
        // The limits inside the CSRF guard: a forged form spends nobody's budget.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            session::limit,
        ))
        .layer(middleware::from_fn(session::guard))
        .layer(tower_http::compression::CompressionLayer::new())
        .with_state(state)
}

/// Everything the daemon serves on its API address: the pages, the REST API, the gateway.
pub fn app(state: ApiState) -> Router {
    mnode_api::router(state.clone()).merge(router(state))
}

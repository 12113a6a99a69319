//! Pins, for the node's admin: what `repo gc` keeps.
//!
//! | route | auth | what |
//! |---|---|---|
//! | `GET /pins` | admin | every pin: `{"pins": [{"cid", "recursive", "created"}]}` |
//! | `POST /pins {cid, recursive?}` | admin | pin a record or file the node holds (recursive by default: with its history and everything it links) |
//! | `DELETE /pins/{cid}` | admin | remove a pin |

use axum::{
    Json,
    extract::{Path, State},
};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{ApiError, ApiState, auth::Admin, error::ErrorBody, routes::parse_cid, with_store};

type ApiResult = Result<Json<Value>, ApiError>;

pub(crate) fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(pins, pin))
        .routes(routes!(unpin))
}

/// Every pin.
///
/// Admin only.
#[utoipa::path(
    get,
    path = "/pins",
    tag = "pins",
    responses(
        (status = 200, description = "`{pins: [{cid, recursive, created}]}`", body = Object),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "The caller is not an admin", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn pins(State(s): State<ApiState>, _admin: Admin) -> ApiResult {
    let list = with_store(&s, |store| Ok(store.pins()?)).await?;
    let pins: Vec<Value> = list
        .iter()
        .map(|(c, p)| json!({ "cid": c.to_string(), "recursive": p.recursive, "created": p.created }))
        .collect();
    Ok(Json(json!({ "pins": pins })))
}

/// What to pin.
#[derive(Deserialize, ToSchema)]
#[schema(as = Pin)]
struct PinBody {
    /// A record or file the node holds.
    #[schema(value_type = crate::openapi::CidText)]
    cid: String,
    /// With its history and everything it links (the default).
    #[serde(default = "yes")]
    #[schema(default = true)]
    recursive: bool,
}

fn yes() -> bool {
    true
}

/// Pins a record or file the node holds.
///
/// Admin only.
#[utoipa::path(
    post,
    path = "/pins",
    tag = "pins",
    request_body = PinBody,
    responses(
        (status = 200, description = "`{pinned: cid, recursive}`", body = Object),
        (status = 400, description = "Not a CID", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "The caller is not an admin", body = ErrorBody),
        (status = 404, description = "The node does not hold it", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn pin(State(s): State<ApiState>, _admin: Admin, Json(b): Json<PinBody>) -> ApiResult {
    let cid = parse_cid(&b.cid)?;
    let held = mnode_node::car::have(s.node.repo().store(), s.node.blobs(), &cid)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    if !held {
        return Err(ApiError::not_found(format!(
            "{cid} is not on this node; fetch or add it first"
        )));
    }
    let recursive = b.recursive;
    with_store(&s, move |store| Ok(store.pin(&cid, recursive)?)).await?;
    Ok(Json(
        json!({ "pinned": cid.to_string(), "recursive": recursive }),
    ))
}

/// Removes a pin.
///
/// Admin only.
#[utoipa::path(
    delete,
    path = "/pins/{cid}",
    tag = "pins",
    params(("cid" = crate::openapi::CidText, Path, description = "The pinned CID")),
    responses(
        (status = 200, description = "`{unpinned: cid}`", body = Object),
        (status = 400, description = "Not a CID", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "The caller is not an admin", body = ErrorBody),
        (status = 404, description = "It is not pinned", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn unpin(State(s): State<ApiState>, _admin: Admin, Path(cid): Path<String>) -> ApiResult {
    let cid = parse_cid(&cid)?;
    if !with_store(&s, move |store| Ok(store.unpin(&cid)?)).await? {
        return Err(ApiError::not_found(format!("{cid} is not pinned")));
    }
    Ok(Json(json!({ "unpinned": cid.to_string() })))
}

//! Pins, for the node's admin: what `repo gc` keeps.
//!
//! | route | auth | what |
//! |---|---|---|
//! | `GET /pins` | admin | every pin: `{"pins": [{"cid", "recursive", "created"}]}` |
//! | `POST /pins {cid, recursive?}` | admin | pin a record or file the node holds (recursive by default: with its history and everything it links) |
//! | `DELETE /pins/{cid}` | admin | remove a pin |

use axum::{
    Json, Router,
    extract::{Path, State},
    routing::{delete, get},
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{ApiError, ApiState, auth::Admin, routes::parse_cid, social::with_store};

type ApiResult = Result<Json<Value>, ApiError>;

pub(crate) fn router() -> Router<ApiState> {
    Router::new()
        .route("/pins", get(pins).post(pin))
        .route("/pins/{cid}", delete(unpin))
}

async fn pins(State(s): State<ApiState>, _admin: Admin) -> ApiResult {
    let list = with_store(&s, |store| Ok(store.pins()?)).await?;
    let pins: Vec<Value> = list
        .iter()
        .map(|(c, p)| json!({ "cid": c.to_string(), "recursive": p.recursive, "created": p.created }))
        .collect();
    Ok(Json(json!({ "pins": pins })))
}

#[derive(Deserialize)]
struct PinBody {
    cid: String,
    #[serde(default = "yes")]
    recursive: bool,
}

fn yes() -> bool {
    true
}

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

async fn unpin(State(s): State<ApiState>, _admin: Admin, Path(cid): Path<String>) -> ApiResult {
    let cid = parse_cid(&cid)?;
    if !with_store(&s, move |store| Ok(store.unpin(&cid)?)).await? {
        return Err(ApiError::not_found(format!("{cid} is not pinned")));
    }
    Ok(Json(json!({ "unpinned": cid.to_string() })))
}

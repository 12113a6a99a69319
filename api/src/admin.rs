//! Repo maintenance and CAR files for the node's admin (the CLI's `repo` and `dag` verbs while
//! a daemon holds the repo):
//!
//! | route | what |
//! |---|---|
//! | `GET /api/v1/repo/stat` | counts and sizes of records and files |
//! | `POST /api/v1/repo/gc` | removes records and files no pin reaches |
//! | `POST /api/v1/repo/verify` | re-hashes every block and file, re-verifies every record, checks every index entry |
//! | `POST /api/v1/dag/export {cid, path}` | writes an item (every version, everything linked, files included) as a CAR to a path on the node's disk |
//! | `POST /api/v1/dag/import {path}` | reads a CAR from the node's disk, verifying every block, and pins its roots |
//! | `POST /api/v1/dag/put {dag_json}` | stores a block given as DAG-JSON (a record is fully verified and published) and pins it |
//! | `GET /api/v1/dag/block/{cid}` | a stored block as DAG-JSON (open, like `/ipfs/{cid}`) |
//!
//! All but the last need an admin: they read or write the node's own disk, touch all of the
//! repo, or pin.

use std::path::PathBuf;

use axum::{
    Json,
    extract::{Path, State},
    response::{IntoResponse as _, Response},
};
use mnode_dag::{Record, cbor, cids, json};
use mnode_node::{car, maintenance};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    ApiError, ApiState, auth::Admin, error::ErrorBody, ops::publish_pinned, progress,
    routes::parse_cid, with_repo, with_store,
};

type ApiResult = Result<Json<Value>, ApiError>;

pub(crate) fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(stat))
        .routes(routes!(gc))
        .routes(routes!(verify))
        .routes(routes!(export))
        .routes(routes!(import))
        .routes(routes!(put))
        .routes(routes!(block))
}

fn repo_error(e: maintenance::RepoOpError) -> ApiError {
    match e {
        maintenance::RepoOpError::Store(s) => s.into(),
        other => ApiError::internal(&other),
    }
}

/// Counts and sizes of records and files.
///
/// Admin only.
#[utoipa::path(
    get,
    path = "/repo/stat",
    tag = "repo",
    responses(
        (status = 200, description = "`{repo, records, files, file_bytes, bucket, accounts}`; bucket is null when files live in the repo", body = Object),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "The caller is not an admin", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn stat(State(s): State<ApiState>, _admin: Admin) -> ApiResult {
    let repo = s.node.repo();
    let mut v = json!(
        maintenance::stat(repo.store(), s.node.blobs())
            .await
            .map_err(repo_error)?
    );
    v["repo"] = json!(repo.path());
    v["accounts"] = json!(
        with_repo(&s, |repo| Ok(repo.accounts().list()?))
            .await?
            .len()
    );
    Ok(Json(v))
}

/// Removes records and files no pin reaches.
///
/// Admin only.
#[utoipa::path(
    post,
    path = "/repo/gc",
    tag = "repo",
    responses(
        (status = 200, description = "`{items, blocks, bytes, blobs}` removed", body = Object),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "The caller is not an admin", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn gc(State(s): State<ApiState>, _admin: Admin) -> ApiResult {
    let report = maintenance::gc(s.node.repo().store(), s.node.blobs())
        .await
        .map_err(repo_error)?;
    Ok(Json(json!(report)))
}

/// Re-hashes and re-verifies everything; `ok` is false if anything is wrong.
///
/// Admin only.
#[utoipa::path(
    post,
    path = "/repo/verify",
    tag = "repo",
    responses(
        (status = 200, description = "`{ok, report}`", body = Object),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "The caller is not an admin", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn verify(State(s): State<ApiState>, _admin: Admin) -> ApiResult {
    let report = maintenance::verify(s.node.repo().store(), s.node.blobs())
        .await
        .map_err(repo_error)?;
    Ok(Json(
        json!({ "ok": report.problems.is_empty(), "report": report }),
    ))
}

#[derive(Deserialize, ToSchema)]
#[schema(as = DagExport)]
struct ExportBody {
    #[schema(value_type = crate::openapi::CidText)]
    cid: String,
    #[schema(value_type = crate::openapi::NodePathText)]
    path: PathBuf,
    /// Stream progress as NDJSON lines (`{"bytes":…}` written so far, then `{"done":…}` or
    /// `{"error":…}`) instead of one JSON answer at the end.
    #[serde(default)]
    progress: bool,
}

/// Writes an item as a CAR to a new file on the node's disk.
///
/// Admin only.
#[utoipa::path(
    post,
    path = "/dag/export",
    tag = "dag",
    request_body = ExportBody,
    responses(
        (status = 200, description = "`{path, report}`; with `progress`, NDJSON lines `{bytes}`, then `{done}` or `{error}`", content(
            (Object = "application/json"),
            (String = "application/x-ndjson"),
        )),
        (status = 400, description = "Not a CID, or a bad path", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "The caller is not an admin", body = ErrorBody),
        (status = 404, description = "The node does not hold it", body = ErrorBody),
        (status = 409, description = "The file exists", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn export(
    State(s): State<ApiState>,
    _admin: Admin,
    Json(b): Json<ExportBody>,
) -> Result<Response, ApiError> {
    let cid = parse_cid(&b.cid)?;
    if !b.path.is_absolute() {
        return Err(ApiError::bad_request("path must be absolute"));
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&b.path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => ApiError::new(
                409,
                "exists",
                format!("{} exists; choose another path", b.path.display()),
            ),
            _ => ApiError::bad_request(format!("{}: {e}", b.path.display())),
        })?;
    if !b.progress {
        let v = export_to(&s, &cid, file, &b.path, |_| {}).await?;
        return Ok(Json(v).into_response());
    }
    Ok(progress::answer(move |mut lines| async move {
        export_to(&s, &cid, file, &b.path, move |n| {
            lines.send(json!({ "bytes": n }));
        })
        .await
    }))
}

/// Writes the CAR of `cid` into `file` (at `path`), telling `progress` the bytes written;
/// a failed export removes the file.
async fn export_to(
    s: &ApiState,
    cid: &mnode_dag::Cid,
    file: std::fs::File,
    path: &std::path::Path,
    progress: impl FnMut(u64) + Send,
) -> Result<Value, ApiError> {
    let out = progress::Counted::new(std::io::BufWriter::new(file), progress);
    match car::export(s.node.repo().store(), s.node.blobs(), cid, out).await {
        Ok(report) => Ok(json!({ "path": path, "report": report })),
        Err(e) => {
            // Nothing half-written is left behind.
            let _ = std::fs::remove_file(path);
            Err(match e {
                car::CarIoError::NotFound(_) => ApiError::not_found(e.to_string()),
                other => ApiError::new(422, "export_failed", other.to_string()),
            })
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[schema(as = DagImport)]
struct ImportBody {
    #[schema(value_type = crate::openapi::CarPathText)]
    path: PathBuf,
    /// Stream progress as NDJSON lines (`{"size":…}`, `{"bytes":…}` read so far, then
    /// `{"done":…}` or `{"error":…}`) instead of one JSON answer at the end.
    #[serde(default)]
    progress: bool,
}

/// Reads a CAR from the node's disk into the repo, verifying every block; pins its roots.
///
/// Admin only.
#[utoipa::path(
    post,
    path = "/dag/import",
    tag = "dag",
    request_body = ImportBody,
    responses(
        (status = 200, description = "The import report; with `progress`, NDJSON lines `{size}`, `{bytes}`, then `{done}` or `{error}`", content(
            (Object = "application/json"),
            (String = "application/x-ndjson"),
        )),
        (status = 400, description = "A bad path", body = ErrorBody),
        (status = 404, description = "Nothing is at the path", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "The caller is not an admin", body = ErrorBody),
        (status = 422, description = "Not a CAR", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn import(
    State(s): State<ApiState>,
    _admin: Admin,
    Json(b): Json<ImportBody>,
) -> Result<Response, ApiError> {
    if !b.path.is_absolute() {
        return Err(ApiError::bad_request("path must be absolute"));
    }
    let file = std::fs::File::open(&b.path).map_err(|e| path_error(&b.path, &e))?;
    if !b.progress {
        let v = import_from(&s, file, |_| {}).await?;
        return Ok(Json(v).into_response());
    }
    let size = file.metadata().map(|m| m.len()).unwrap_or_default();
    Ok(progress::answer(move |mut lines| async move {
        lines.now(json!({ "size": size }));
        import_from(&s, file, move |n| lines.send(json!({ "bytes": n }))).await
    }))
}

/// Imports the CAR in `file`, telling `progress` the bytes read: the import report.
async fn import_from(
    s: &ApiState,
    file: std::fs::File,
    progress: impl FnMut(u64) + Send,
) -> Result<Value, ApiError> {
    let input = progress::Counted::new(std::io::BufReader::new(file), progress);
    let report = car::import(s.node.repo().store(), s.node.blobs(), input)
        .await
        .map_err(|e| ApiError::new(422, "import_failed", e.to_string()))?;
    Ok(json!(report))
}

#[derive(Deserialize, ToSchema)]
#[schema(as = DagPut)]
struct PutBody {
    #[schema(value_type = crate::openapi::DagJsonText)]
    dag_json: String,
}

/// Stores a block given as DAG-JSON and pins it.
///
/// A record (a map with `sig` and `author`) is decoded strictly, verified and published like
/// any write; other IPLD is stored as is. Admin only.
#[utoipa::path(
    post,
    path = "/dag/put",
    tag = "dag",
    request_body = PutBody,
    responses(
        (status = 200, description = "`{cid, record}`", body = Object),
        (status = 400, description = "Not DAG-JSON", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "The caller is not an admin", body = ErrorBody),
        (status = 422, description = "An invalid record", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn put(State(s): State<ApiState>, _admin: Admin, Json(b): Json<PutBody>) -> ApiResult {
    let ipld = json::from_dag_json(&b.dag_json)
        .map_err(|e| ApiError::bad_request(format!("not DAG-JSON: {e}")))?;
    let bytes = cbor::encode(&ipld).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let is_record = matches!(&ipld, mnode_dag::Ipld::Map(m) if m.contains_key("sig") && m.contains_key("author"));
    let cid = if is_record {
        let record = Record::decode_owned(bytes)
            .map_err(|e| ApiError::new(422, "invalid_record", e.to_string()))?;
        let cid = record.cid();
        let _answer = publish_pinned(&s, record).await?;
        cid
    } else {
        let cid = cids::record_cid(&bytes);
        with_store(&s, move |store| {
            store.put_block(&cid, &bytes)?;
            Ok(store.pin(&cid, true)?)
        })
        .await?;
        cid
    };
    Ok(Json(json!({ "cid": cid.to_string(), "record": is_record })))
}

/// A stored block as DAG-JSON.
#[utoipa::path(
    get,
    path = "/dag/block/{cid}",
    tag = "dag",
    params(("cid" = crate::openapi::BlockCidText, Path, description = "The block's CID")),
    responses(
        (status = 200, description = "`{cid, value}`, the block as DAG-JSON", body = Object),
        (status = 400, description = "Not a CID, or a file", body = ErrorBody),
        (status = 404, description = "The node does not hold it", body = ErrorBody),
    ),
)]
async fn block(State(s): State<ApiState>, Path(cid): Path<String>) -> ApiResult {
    let cid = parse_cid(&cid)?;
    if cids::link_kind(&cid) == cids::LinkKind::Blob {
        return Err(ApiError::bad_request(format!(
            "{cid} is a file, not a block: GET /ipfs/{cid}"
        )));
    }
    let bytes = with_store(&s, move |store| Ok(store.block(&cid)?))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no block {cid} on this node")))?;
    Ok(Json(
        json!({ "cid": cid.to_string(), "value": crate::social::block_json(&bytes)? }),
    ))
}

/// A path the node cannot open: 404 when nothing is there, else 400 with the reason.
pub(crate) fn path_error(path: &std::path::Path, e: &std::io::Error) -> ApiError {
    let message = format!("{}: {e}", path.display());
    if e.kind() == std::io::ErrorKind::NotFound {
        ApiError::not_found(message)
    } else {
        ApiError::bad_request(message)
    }
}

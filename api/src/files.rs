//! `/api/v1/files`: uploads, file facts and deletion; fetching files from peers; import and
//! export of files on the node's own disk.
//!
//! An upload streams into a temp file under the repo's `tmp/` while it is hashed
//! ([`Blobs::add_reader`]), then the file is moved into the blob store by a rename (no second
//! copy) and gets a file record signed by the acting account (`core.file`, or `art.image`,
//! `art.audio`, `art.video` by the media type detected from the content), which is pinned and
//! gossiped; the file is announced in the DHT. Nothing is held in memory beyond a read buffer,
//! and an upload that breaks off (too large, client gone, bad body) leaves nothing behind.
//!
//! What a file's record says (its name, media type, title and dimensions) comes from
//! [`mnode_dag::files`], which the CLI's offline `mnode add` uses too, so both make the same
//! record.

use std::{
    convert::Infallible,
    future::Future,
    io,
    path::PathBuf,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{
    Json,
    body::{Body, Bytes},
    extract::{
        DefaultBodyLimit, Multipart, Path, Query, State,
        multipart::{MultipartError, MultipartRejection},
        rejection::QueryRejection,
    },
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures::{Stream, StreamExt as _, TryStreamExt as _};
use mnode_dag::{
    Cid, Did, Ipld, Link,
    cids::{self, LinkKind},
    files::{SNIFF_LEN, clean_name, file_draft, image_dims, media_type},
    model::core::{FileData, FileKind, FileSeal},
    sealed_file::{self, FileKey},
    unixfs::View,
};
use mnode_node::{
    blobs::{Added, BlobError, Blobs, Commit, IMPORTS_AT_ONCE, ImportMode},
    node::{FetchProgress, FetchedMany, ManyProgress},
    store::{ListFilter, Store, StoreError},
};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::{sync::watch, time::Instant};
use tokio_util::io::StreamReader;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    ApiError, ApiState,
    auth::{Admin, Caller},
    error::ErrorBody,
    ops::publish_pinned,
    private::Audience,
    routes::{Signer, parse_cid, signed, signer},
    with_store,
};

type ApiResult = Result<Json<Value>, ApiError>;

/// How much of an uploaded image is read to find its dimensions.
const DIMS_LEN: u64 = 1 << 20;
/// A multipart body may be this much larger than `max_upload_bytes` (boundaries, part
/// headers) before its `Content-Length` alone gets it refused.
const MULTIPART_SLACK: u64 = 64 * 1024;
/// The longest `name` field of a multipart upload.
const NAME_FIELD_MAX: usize = 1024;
/// Progress lines of an upload come at most this often.
const PROGRESS_EVERY: Duration = crate::progress::EVERY;
/// At most this many file records are read to list the records that link a file.
const RECORDS_SCAN: usize = 10_000;
/// How long an export of a file that is still arriving waits for more of it.
const EXPORT_STALL: Duration = Duration::from_secs(60);
/// The kinds of record that hold a file.
const FILE_KINDS: [&str; 4] = ["core.file", "art.image", "art.audio", "art.video"];

pub(crate) fn router() -> OpenApiRouter<ApiState> {
    let (schemas, paths, uploads) = routes!(upload_raw, upload_multipart);
    OpenApiRouter::new()
        // The uploads enforce `api.max_upload_bytes` themselves, while streaming.
        .routes((schemas, paths, uploads.layer(DefaultBodyLimit::disable())))
        .routes(routes!(file_info, delete_file))
        .routes(routes!(record_file))
        .routes(routes!(fetch_file))
        .routes(routes!(export_file))
        .routes(routes!(import_file))
        .routes(routes!(import_batch))
        .routes(routes!(commit_files))
}

// ---------------------------------------------------------------------------------------------
// The file of a record, as its readers read it.

#[derive(Deserialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
struct RecordFileQuery {
    /// Answer as an attachment named after the file (`Content-Disposition`).
    #[serde(default)]
    download: bool,
    /// Read as this account (admins only, or your own).
    #[serde(default, rename = "as")]
    #[param(value_type = Option<crate::openapi::HandleText>)]
    as_handle: Option<String>,
}

/// The file a file record holds, as the caller may read it.
///
/// The record is a `core.file`, `art.image`, `art.audio` or `art.video`. For a public record this is the blob (as `/ipfs/{cid}` serves it, typed by the record). For
/// a private one it is the file sealed in the blob, decrypted for the record's readers only
/// (403 `not_a_reader` for anyone else, who may still fetch the ciphertext from the gateway).
/// `Range` (one range, 206) works either way; a private file is sent `Cache-Control: private,
/// no-store`. `cid` may name the item or any of its versions; the item's current version is
/// read.
#[utoipa::path(
    get,
    path = "/records/{cid}/file",
    tag = "files",
    params(
        ("cid" = crate::openapi::BlockCidText, Path, description = "A file record's id or version CID"),
        RecordFileQuery,
    ),
    responses(
        (status = 200, description = "The file's bytes, typed as its record says", content_type = "*/*", body = String),
        (status = 206, description = "One range of the file", content_type = "*/*", body = String),
        (status = 400, description = "Not a CID", body = ErrorBody),
        (status = 401, description = "A bad token", body = ErrorBody),
        (status = 403, description = "A private file and the caller is not among its readers (`not_a_reader`)", body = ErrorBody),
        (status = 404, description = "No such record, it holds no file, or this node does not hold the file yet", body = ErrorBody),
        (status = 416, description = "The range does not fit the file", body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
async fn record_file(
    State(s): State<ApiState>,
    caller: Option<Caller>,
    Path(cid): Path<String>,
    query: Result<Query<RecordFileQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let cid = parse_cid(&cid)?;
    let reader = crate::private::reader_as(&s, caller.as_ref(), q.as_handle).await?;
    record_file_response(&s, reader.as_ref(), cid, &headers, q.download).await
}

/// What `GET /records/{cid}/file` answers `reader` (the pages serve private files with it).
pub async fn record_file_response(
    s: &ApiState,
    reader: Option<&crate::private::Reader>,
    cid: Cid,
    headers: &HeaderMap,
    download: bool,
) -> Result<Response, ApiError> {
    let node = s.node.clone();
    let record = tokio::task::spawn_blocking(move || node.repo().store().head(&cid))
        .await?
        .map_err(|e| ApiError::internal(&e))?
        .ok_or_else(|| ApiError::not_found(format!("no record {cid} on this node")))?;
    let view = {
        let node = s.node.clone();
        let (record, reader) = (record.clone(), reader.cloned());
        tokio::task::spawn_blocking(move || {
            crate::private::view(node.repo(), &record, reader.as_ref())
        })
        .await?
    };
    let private = !matches!(view, crate::private::View::Public);
    let body = match view {
        crate::private::View::Public => record.body().cloned(),
        crate::private::View::Opened { body, .. } => Some(body),
        crate::private::View::Withheld { error: Some(e), .. } if reader.is_some() => {
            return Err(ApiError::new(
                422,
                "unreadable",
                format!("this private record does not open for you: {e}"),
            ));
        }
        crate::private::View::Withheld { .. } => {
            return Err(ApiError::new(
                403,
                "not_a_reader",
                format!("{cid} is private: only its readers may read its file"),
            ));
        }
    };
    let data = body
        .as_ref()
        .filter(|_| FILE_KINDS.contains(&record.kind()))
        .and_then(mnode_dag::files::file_of)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "{cid} is {} record, which holds no file",
                mnode_dag::registry::with_article(record.kind())
            ))
        })?;
    let blob = data.blob.0;
    let key = match &data.sealed {
        Some(seal) => Some(
            seal.key()
                .map_err(|e| ApiError::new(422, "unreadable", e.to_string()))?,
        ),
        None => None,
    };
    let blobs = s.node.blobs();
    if !blobs.has(&blob).await.map_err(blob_error)? {
        return Err(ApiError::not_found(format!(
            "this node does not hold the file {blob} yet; fetch it (POST /api/v1/files/fetch)"
        )));
    }
    let size = data.size;
    let range = crate::gateway::requested_range(headers, size)?;
    let (start, end, status) = match range {
        Some((a, b)) => (a, b, StatusCode::PARTIAL_CONTENT),
        None => (0, size, StatusCode::OK),
    };
    let mut builder = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, &data.media_type)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_LENGTH, end - start)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        // The type is what the record says: never let a file run as a page of this origin.
        .header(header::CONTENT_SECURITY_POLICY, "sandbox");
    if private {
        builder = builder.header(header::CACHE_CONTROL, "private, no-store");
    }
    if range.is_some() {
        builder = builder.header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{size}", end.saturating_sub(1)),
        );
    }
    if download {
        let ascii: String = data
            .name
            .chars()
            .map(|c| {
                if c == '"' || c == '\\' || !c.is_ascii() || c.is_ascii_control() {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        builder = builder.header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{ascii}\""),
        );
    }
    if end <= start {
        return builder
            .body(Body::empty())
            .map_err(|e| ApiError::internal(&e));
    }
    let body = match &key {
        Some(key) => Body::from_stream(
            blobs
                .read_range_opened(&blob, key, start, Some(end))
                .await
                .map_err(blob_error)?
                .map(|r| r.map_err(axum::Error::new)),
        ),
        None => Body::from_stream(
            blobs
                .read_range(&blob, start, Some(end))
                .await
                .map_err(blob_error)?
                .map(|r| r.map_err(axum::Error::new)),
        ),
    };
    builder.body(body).map_err(|e| ApiError::internal(&e))
}

// ---------------------------------------------------------------------------------------------
// Uploads.

#[derive(Deserialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
struct UploadQuery {
    /// The file's name (PUT only); default: the part's file name (multipart), else the CID.
    name: Option<String>,
    /// Answer NDJSON progress lines instead of one JSON object.
    #[serde(default)]
    progress: bool,
    /// Sign the record as this account (admins only).
    #[serde(default, rename = "as")]
    #[param(value_type = Option<crate::openapi::HandleText>)]
    as_handle: Option<String>,
    /// Make the file private to these people (handles on this node or `did:key`s, separated
    /// by commas) and the uploader: the file is encrypted before it is stored, and its record
    /// is sealed for them (see `POST /records`, `to`).
    #[param(value_type = Option<crate::openapi::PeopleText>)]
    to: Option<String>,
    /// Make the file private to the current members of this group (its id).
    #[param(value_type = Option<crate::openapi::CidText>)]
    to_group: Option<String>,
}

impl UploadQuery {
    fn audience(&self) -> Result<Audience, ApiError> {
        audience_of(self.to.as_deref(), self.to_group.as_deref())
    }
}

/// The audience of an upload from its `to` (people, separated by commas) and `to_group` (a
/// group's id): everyone when both are absent or empty.
pub fn audience_of(to: Option<&str>, to_group: Option<&str>) -> Result<Audience, ApiError> {
    let to: Vec<String> = match to {
        None => vec![],
        Some(text) => {
            let people: Vec<String> = text.split(',').map(|t| t.trim().to_owned()).collect();
            if people.iter().any(String::is_empty) {
                return Err(ApiError::bad_request(format!(
                    "to: {text:?} names no one between two commas; list handles or did:keys \
                     separated by commas"
                )));
            }
            people
        }
    };
    let to_group = match to_group {
        Some(g) => Some(
            parse_cid(g).map_err(|e| ApiError::bad_request(format!("to_group: {}", e.message)))?,
        ),
        None => None,
    };
    Ok(Audience {
        to,
        to_group,
        public: false,
    })
}

/// Who an upload is by and for.
struct Uploader {
    caller: Caller,
    as_handle: Option<String>,
    key: Signer,
    audience: Audience,
}

impl Uploader {
    /// Checks the acting account and the audience before any byte of the body is read.
    async fn new(
        s: &ApiState,
        caller: &Caller,
        as_handle: Option<String>,
        audience: Audience,
    ) -> Result<Self, ApiError> {
        let key = upload_key(s, caller, as_handle.clone()).await?;
        if audience.names_readers() {
            crate::private::readers_for(s, "core.file", &audience, None).await?;
        }
        Ok(Self {
            caller: caller.clone(),
            as_handle,
            key,
            audience,
        })
    }

    fn private(&self) -> bool {
        self.audience.names_readers()
    }
}

/// The upload was larger than `api.max_upload_bytes`.
#[derive(Debug, thiserror::Error)]
#[error("the upload is larger than this node's limit of {0} bytes (api.max_upload_bytes)")]
struct TooLarge(u64);

fn too_large(limit: u64) -> ApiError {
    ApiError::new(413, "too_large", TooLarge(limit).to_string())
}

/// Counts the bytes of one request against the limit and tells the progress stream.
struct Meter {
    limit: u64,
    received: AtomicU64,
    progress: watch::Sender<u64>,
}

impl Meter {
    fn new(limit: u64) -> Arc<Self> {
        Arc::new(Self {
            limit,
            received: AtomicU64::new(0),
            progress: watch::Sender::new(0),
        })
    }

    /// Counts `n` more bytes; an error once the total passes the limit.
    fn count(&self, n: usize) -> io::Result<()> {
        let total = self.received.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        if total > self.limit {
            return Err(io::Error::other(TooLarge(self.limit)));
        }
        self.progress.send_replace(total);
        Ok(())
    }
}

type ChunkStream<'a> = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send + 'a>>;

/// `stream` as a reader that counts what passes through `meter`.
fn metered<'a, E>(
    stream: impl Stream<Item = Result<Bytes, E>> + Send + 'a,
    meter: Arc<Meter>,
) -> StreamReader<ChunkStream<'a>, Bytes>
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let counted = stream.map(move |item| {
        let chunk = item.map_err(io::Error::other)?;
        meter.count(chunk.len())?;
        Ok(chunk)
    });
    StreamReader::new(Box::pin(counted))
}

/// Refuses a body whose declared length already passes the limit, before reading it.
fn check_length(headers: &HeaderMap, limit: u64) -> Result<(), ApiError> {
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match length {
        Some(n) if n > limit => Err(too_large(limit)),
        _ => Ok(()),
    }
}

fn upload_error(e: BlobError) -> ApiError {
    match e {
        BlobError::Upload { received, source } => {
            match source.get_ref().and_then(|e| e.downcast_ref::<TooLarge>()) {
                Some(t) => too_large(t.0),
                None => ApiError::new(
                    400,
                    "upload_failed",
                    format!(
                        "the upload broke off after {received} bytes, nothing was stored: {source}"
                    ),
                ),
            }
        }
        BlobError::DiskFull => ApiError::disk_full(),
        other => ApiError::internal(&other),
    }
}

/// Who signs the records of an upload, checked before its body is read.
async fn upload_key(
    s: &ApiState,
    caller: &Caller,
    as_handle: Option<String>,
) -> Result<Signer, ApiError> {
    let handle = caller.acting_as(s, as_handle)?;
    signer(s, handle).await
}

/// Stores one file from `reader`, makes its record, pins and announces it; answers what the
/// upload routes answer for one file.
async fn store_file(
    s: &ApiState,
    up: &Uploader,
    reader: impl tokio::io::AsyncRead + Unpin + Send,
    name: Option<String>,
    declared: Option<String>,
) -> Result<Value, ApiError> {
    let blobs = s.node.blobs();
    let file_key = up.private().then(|| FileKey::generate(&mut rand::rng()));
    // A public file gets its UnixFS view from the same pass; a sealed one has none.
    let (added, view) = match &file_key {
        Some(k) => blobs
            .add_reader_sealed(reader, k, |_| {})
            .await
            .map(|a| (a, None)),
        None => blobs
            .add_reader_viewed(reader, |_| {})
            .await
            .map(|(a, v)| (a, Some(v))),
    }
    .map_err(upload_error)?;
    let cid = added.cid;
    let size = match &file_key {
        Some(_) => {
            sealed_file::plain_size(added.size).map_err(|e| ApiError::internal(&e.to_string()))?
        }
        None => added.size,
    };
    let head = read_plain_head(blobs, &cid, file_key.as_ref(), SNIFF_LEN as u64).await?;
    let name = name
        .as_deref()
        .and_then(clean_name)
        .unwrap_or_else(|| cid.to_string());
    let media_type = media_type(&head, &name, declared.as_deref());
    let dims = if FileKind::of_media_type(&media_type) == FileKind::Image {
        match image_dims(&head) {
            Some(d) => Some(d),
            None if size > head.len() as u64 => {
                image_dims(&read_plain_head(blobs, &cid, file_key.as_ref(), DIMS_LEN).await?)
            }
            None => None,
        }
    } else {
        None
    };
    let data = FileData {
        blob: Link(cid),
        name: name.clone(),
        media_type: media_type.clone(),
        size,
        sealed: file_key.as_ref().map(FileSeal::new),
        unixfs: view.as_ref().map(|v| Link(v.root)),
    };
    let draft =
        file_draft(data, dims).map_err(|e| ApiError::new(422, "invalid_record", e.to_string()))?;
    let (record_id, record_cid, kind) = if up.private() {
        let kind = draft.kind().to_owned();
        let body = draft
            .body()
            .cloned()
            .ok_or_else(|| ApiError::internal(&"a file record has a body"))?;
        let written = crate::ops::create_to(
            s,
            &up.caller,
            &kind,
            body,
            None,
            &up.audience,
            up.as_handle.clone(),
        )
        .await?;
        // The blob's link is sealed in the record, where no pin walk sees it: the file is
        // pinned itself, as the public record's pin keeps a public file.
        with_store(s, move |store| Ok(store.pin(&cid, false)?)).await?;
        (written.id, written.cid, kind)
    } else {
        let record = signed(draft, &up.key)?;
        let (id, cid, kind) = (record.id(), record.cid(), record.kind().to_owned());
        let _answer = publish_pinned(s, record).await?;
        (id, cid, kind)
    };
    s.node.provide(vec![cid]).await?;
    if let Some(view) = &view {
        s.node.add_view(&cid, view).await?;
    }
    let mut answer = json!({
        "cid": cid.to_string(),
        "size": size,
        "name": name,
        "media_type": media_type,
        "url": format!("/ipfs/{cid}"),
        "record": {
            "id": record_id.to_string(),
            "cid": record_cid.to_string(),
            "type": kind,
        },
    });
    if let Some(view) = &view {
        answer["unixfs"] = json!(view.root.to_string());
    }
    if up.private() {
        // The blob is the sealed file; its readers read the file through its record.
        answer["url"] = json!(format!("/api/v1/records/{record_id}/file"));
        answer["sealed_size"] = json!(added.size);
    }
    Ok(answer)
}

/// Stores one uploaded file from `stream` for `caller` as [`store_file`] does for the upload
/// routes: `api.max_upload_bytes` enforced while it streams, a file record signed by the
/// caller, pinned, gossiped and announced. Answers what `PUT /api/v1/files` answers.
pub async fn upload<E>(
    s: &ApiState,
    caller: &Caller,
    stream: impl Stream<Item = Result<Bytes, E>> + Send,
    name: Option<String>,
    declared: Option<String>,
    audience: Audience,
) -> Result<Value, ApiError>
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let up = Uploader::new(s, caller, None, audience).await?;
    let meter = Meter::new(s.node.repo().config().api.max_upload_bytes);
    store_file(s, &up, metered(stream, meter), name, declared).await
}

/// Up to `len` bytes from the start of a stored file: the blob's, or the file sealed in it.
async fn read_plain_head(
    blobs: &Blobs,
    cid: &Cid,
    key: Option<&FileKey>,
    len: u64,
) -> Result<Vec<u8>, ApiError> {
    let Some(key) = key else {
        return read_head(blobs, cid, len).await;
    };
    let chunks: Vec<Bytes> = blobs
        .read_range_opened(cid, key, 0, Some(len))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .try_collect()
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(chunks.concat())
}

/// Up to `len` bytes from the start of a stored blob.
async fn read_head(blobs: &Blobs, cid: &Cid, len: u64) -> Result<Vec<u8>, ApiError> {
    let chunks: Vec<Bytes> = blobs
        .read_range(cid, 0, Some(len))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .try_collect()
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(chunks.concat())
}

/// Uploads one file as the request body.
///
/// Needs a token (any account). `Content-Type` is optional: the media type comes from the
/// content ([`media_type`]: magic bytes, then text or binary). Bodies over `api.max_upload_bytes` are refused with 413
/// `too_large`, by their `Content-Length` before any byte is read, or as soon as that many
/// bytes have come. Answers 201 with `{cid, size, name, media_type, url, unixfs, record: {id, cid,
/// type}}`.
///
/// Progress: with `progress=true` the answer is `200` `application/x-ndjson` right away, with
/// a line `{"received": bytes}` at most every 200 ms while the body comes in, then a last line
/// `{"done": {…the 201 answer…}}` or `{"error": {status, code, message}}` (the form of
/// `POST /files/fetch`). An HTTP/1.1 client must read the answer while it sends (curl and
/// hyper do; a browser cannot, and uses `XMLHttpRequest.upload.onprogress` instead, which
/// needs nothing from the server).
#[utoipa::path(
    put,
    path = "/files",
    tag = "files",
    params(UploadQuery),
    request_body(description = "The file's bytes, of any type", content(("*/*"))),
    responses(
        (status = 201, description = "`{cid, size, name, media_type, url, unixfs, record: {id, cid, type}}` (`unixfs`: the file's UnixFS CID, for IPFS clients; absent for a private file)", body = Object),
        (status = 200, description = "With `progress=true`: NDJSON lines `{received}`, then `{done}` or `{error}`", content_type = "application/x-ndjson", body = String),
        (status = 400, description = "A bad query, the upload broke off, or no such account", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "`as` another account without being an admin", body = ErrorBody),
        (status = 413, description = "Larger than `api.max_upload_bytes` (`too_large`)", body = ErrorBody),
        (status = 422, description = "The file's record breaks its schema (`invalid_record`)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn upload_raw(
    State(s): State<ApiState>,
    caller: Caller,
    query: Result<Query<UploadQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = s.node.repo().config().api.max_upload_bytes;
    check_length(&headers, limit)?;
    let audience = q.audience()?;
    let up = Uploader::new(&s, &caller, q.as_handle, audience).await?;
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let meter = Meter::new(limit);
    let progress = meter.progress.subscribe();
    let reader = metered(body.into_data_stream(), meter);
    let job = async move { store_file(&s, &up, reader, q.name, declared).await };
    if q.progress {
        Ok(ndjson(job, progress))
    } else {
        Ok(created(job.await?))
    }
}

/// Uploads files as `multipart/form-data`, one or more `file` parts.
///
/// Each `file` part is stored like a `PUT` body; its name is the value of the last `name`
/// field *before* it, else the part's file name, else the CID; its declared type is the part's
/// `Content-Type`. Other fields are read and ignored. `api.max_upload_bytes` limits the whole
/// request. Answers 201 with the `PUT` answer for one file, or `{"files": [answer, …]}` for
/// several (in the order of the parts). A broken multipart body is a 400 `bad_multipart`;
/// files of earlier parts stay stored then. Progress: as for `PUT`, counting the bytes of all
/// parts.
#[utoipa::path(
    post,
    path = "/files",
    tag = "files",
    params(UploadQuery),
    request_body(content = inline(UploadForm), content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "The `PUT` answer for one file, or `{files: [answer, …]}` for several", body = Object),
        (status = 200, description = "With `progress=true`: NDJSON lines `{received}`, then `{done}` or `{error}`", content_type = "application/x-ndjson", body = String),
        (status = 400, description = "A bad query or multipart body (`bad_multipart`), or no such account", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "`as` another account without being an admin", body = ErrorBody),
        (status = 413, description = "Larger than `api.max_upload_bytes` (`too_large`)", body = ErrorBody),
        (status = 422, description = "A file's record breaks its schema (`invalid_record`)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn upload_multipart(
    State(s): State<ApiState>,
    caller: Caller,
    query: Result<Query<UploadQuery>, QueryRejection>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = s.node.repo().config().api.max_upload_bytes;
    check_length(&headers, limit.saturating_add(MULTIPART_SLACK))?;
    let mut multipart = multipart.map_err(|e| {
        ApiError::new(
            400,
            "bad_multipart",
            format!(
                "{}; send multipart/form-data with a `file` part, or PUT the file as the body",
                e.body_text()
            ),
        )
    })?;
    let audience = q.audience()?;
    let up = Uploader::new(&s, &caller, q.as_handle, audience).await?;
    let meter = Meter::new(limit);
    let progress = meter.progress.subscribe();
    let job = async move {
        let mut files = Vec::new();
        let mut name = None;
        while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
            match field.name() {
                Some("file") => {
                    let name = name.take().or_else(|| field.file_name().map(str::to_owned));
                    let declared = field.content_type().map(str::to_owned);
                    let reader = metered(&mut field, meter.clone());
                    files.push(store_file(&s, &up, reader, name, declared).await?);
                }
                Some("name") => {
                    let mut text = Vec::new();
                    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                        meter.count(chunk.len()).map_err(|_| too_large(limit))?;
                        text.extend_from_slice(&chunk);
                        if text.len() > NAME_FIELD_MAX {
                            return Err(ApiError::bad_request(format!(
                                "the name field is longer than {NAME_FIELD_MAX} bytes"
                            )));
                        }
                    }
                    name = Some(
                        String::from_utf8(text)
                            .map_err(|_| ApiError::bad_request("the name field is not UTF-8"))?,
                    );
                }
                _ => {
                    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                        meter.count(chunk.len()).map_err(|_| too_large(limit))?;
                    }
                }
            }
        }
        match files.len() {
            0 => Err(ApiError::new(
                400,
                "bad_multipart",
                "no `file` part: send the file in a part named `file`",
            )),
            1 => Ok(files.swap_remove(0)),
            _ => Ok(json!({ "files": files })),
        }
    };
    if q.progress {
        Ok(ndjson(job, progress))
    } else {
        Ok(created(job.await?))
    }
}

/// The parts of a multipart upload.
// Only describes the form in the OpenAPI document: the handler reads the parts as a stream.
#[derive(ToSchema)]
#[allow(dead_code)]
struct UploadForm {
    /// A file; repeat the part for several.
    #[schema(value_type = String, format = Binary, content_media_type = "application/octet-stream")]
    file: Vec<u8>,
    /// The name of the next `file` part; default: its file name, else its CID.
    #[schema(max_length = 1024)]
    name: Option<String>,
}

fn multipart_error(e: MultipartError) -> ApiError {
    match e.status().as_u16() {
        413 => ApiError::new(413, "too_large", e.body_text()),
        _ => ApiError::new(400, "bad_multipart", e.body_text()),
    }
}

/// 201 with the answer, and `Location` for a single file.
fn created(v: Value) -> Response {
    let location = v["cid"].as_str().map(|c| format!("/api/v1/files/{c}"));
    let mut resp = (StatusCode::CREATED, Json(v)).into_response();
    if let Some(l) = location.and_then(|l| l.parse().ok()) {
        resp.headers_mut().insert(header::LOCATION, l);
    }
    resp
}

type Job = Pin<Box<dyn Future<Output = Result<Value, ApiError>> + Send>>;

/// Runs `job` while the answer streams: `{"received": n}` lines, then `{"done": …}` or
/// `{"error": …}`. The job is driven by the answer's body, so a client that goes away drops
/// the upload with it (and its temp file).
fn ndjson(
    job: impl Future<Output = Result<Value, ApiError>> + Send + 'static,
    progress: watch::Receiver<u64>,
) -> Response {
    struct Running {
        job: Job,
        progress: watch::Receiver<u64>,
        /// No progress line before this.
        next: Instant,
        /// A progress line waits for `next`.
        pending: bool,
        /// The meter is gone: the job is about to end.
        closed: bool,
    }
    let start = Running {
        job: Box::pin(job),
        progress,
        next: Instant::now(),
        pending: false,
        closed: false,
    };
    let lines = futures::stream::unfold(Some(start), |state| async move {
        let mut r = state?;
        loop {
            tokio::select! {
                biased;
                result = &mut r.job => {
                    let line = match result {
                        Ok(v) => json!({ "done": v }),
                        Err(e) => json!({
                            "error": { "status": e.status, "code": e.code, "message": e.message }
                        }),
                    };
                    return Some((Ok::<_, Infallible>(format!("{line}\n")), None));
                }
                () = tokio::time::sleep_until(r.next), if r.pending => {
                    let n = *r.progress.borrow_and_update();
                    r.pending = false;
                    r.next = Instant::now() + PROGRESS_EVERY;
                    let line = json!({ "received": n });
                    return Some((Ok(format!("{line}\n")), Some(r)));
                }
                changed = r.progress.changed(), if !r.pending && !r.closed => {
                    match changed {
                        Ok(()) => r.pending = true,
                        Err(_) => r.closed = true,
                    }
                }
            }
        }
    });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// Facts and deletion.

/// A live file record that links a blob.
struct FileRef {
    id: Cid,
    head: Cid,
    kind: String,
    author: Did,
    name: Option<String>,
    media_type: Option<String>,
}

impl FileRef {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id.to_string(),
            "cid": self.head.to_string(),
            "type": self.kind,
            "author": self.author.to_string(),
            "name": self.name,
            "media_type": self.media_type,
        })
    }
}

/// The file data in a file record's body (`core.file` holds it at the top, the art kinds
/// under `file`): blob, name, media type.
fn file_fields(body: &Ipld) -> Option<(Cid, Option<String>, Option<String>)> {
    let Ipld::Map(m) = body else { return None };
    let f = match m.get("file") {
        Some(Ipld::Map(f)) => f,
        _ => m,
    };
    let text = |k: &str| match f.get(k) {
        Some(Ipld::String(s)) => Some(s.clone()),
        _ => None,
    };
    match f.get("blob") {
        Some(Ipld::Link(c)) => Some((*c, text("name"), text("media_type"))),
        _ => None,
    }
}

/// The live file records on this node that link `blob`, newest first per kind, reading at
/// most `cap` records; `true` if all were read.
///
/// There is no index from blobs to records, so this reads every file record (up to `cap`).
fn file_records(store: &Store, blob: &Cid, cap: usize) -> Result<(Vec<FileRef>, bool), StoreError> {
    let mut found = Vec::new();
    let mut read = 0usize;
    for kind in FILE_KINDS {
        let remaining = cap.saturating_sub(read);
        if remaining == 0 {
            return Ok((found, false));
        }
        let page = store.list(&ListFilter {
            kind: Some(kind.to_owned()),
            limit: remaining,
            ..ListFilter::default()
        })?;
        read += page.items.len();
        for (id, item) in page.items {
            let Some(record) = store.record(&item.head)? else {
                continue;
            };
            let Some((linked, name, media_type)) = record.body().and_then(file_fields) else {
                continue;
            };
            if linked == *blob {
                found.push(FileRef {
                    id,
                    head: item.head,
                    kind: item.kind,
                    author: item.author,
                    name,
                    media_type,
                });
            }
        }
        if page.next.is_some() {
            return Ok((found, false));
        }
    }
    Ok((found, true))
}

fn blob_cid(text: &str) -> Result<Cid, ApiError> {
    let cid = parse_cid(text)?;
    if cids::link_kind(&cid) != LinkKind::Blob {
        return Err(ApiError::bad_request(format!(
            "{cid} names a record, not a file (files are bafkr4i…); see /api/v1/records/{cid}"
        )));
    }
    Ok(cid)
}

fn blob_error(e: BlobError) -> ApiError {
    match e {
        BlobError::NotFound(cid) => ApiError::not_found(format!("this node does not hold {cid}")),
        BlobError::NotABlobCid(_) => ApiError::bad_request(e.to_string()),
        BlobError::DiskFull => ApiError::disk_full(),
        other => ApiError::internal(&other),
    }
}

/// What the node knows about a file it holds, and the records that link it.
///
/// Answers `{cid, size, media_type, url, records: [{id, cid, type, author, name, media_type}],
/// records_complete}`. `records` are the live file records on this node that link the file;
/// finding them reads up to 10 000 file records (`records_complete` is false if there were
/// more). `media_type` is the newest record's, else detected from the content. The bytes are
/// at `url` (`/ipfs/{cid}`, with ranges). Anyone may ask: the gateway serves the file to anyone
/// too.
#[utoipa::path(
    get,
    path = "/files/{cid}",
    tag = "files",
    params(("cid" = crate::openapi::FileCidText, Path, description = "The file's CID (`bafkr4i…`)")),
    responses(
        (status = 200, description = "`{cid, size, media_type, url, records, records_complete}`", body = Object),
        (status = 400, description = "Not a CID, or a record's CID", body = ErrorBody),
        (status = 404, description = "This node does not hold the file", body = ErrorBody),
    ),
)]
async fn file_info(State(s): State<ApiState>, Path(cid): Path<String>) -> ApiResult {
    let cid = blob_cid(&cid)?;
    let blobs = s.node.blobs();
    let size = blobs
        .size(&cid)
        .await
        .map_err(blob_error)?
        .ok_or_else(|| ApiError::not_found(format!("this node does not hold {cid}")))?;
    let node = s.node.clone();
    let (records, complete) =
        tokio::task::spawn_blocking(move || file_records(node.repo().store(), &cid, RECORDS_SCAN))
            .await??;
    let media_type = match records.iter().find_map(|r| r.media_type.clone()) {
        Some(t) => t,
        None => media_type(&read_head(blobs, &cid, SNIFF_LEN as u64).await?, "", None),
    };
    Ok(Json(json!({
        "cid": cid.to_string(),
        "size": size,
        "media_type": media_type,
        "url": format!("/ipfs/{cid}"),
        "records": records.iter().map(FileRef::to_json).collect::<Vec<_>>(),
        "records_complete": complete,
    })))
}

/// Removes a file from this node's blob store and drops a pin of the file itself.
///
/// Answers `{cid, deleted, unpinned}`. Who may: an admin, always; an account, if it wrote a
/// live file record on this node that links the file (it uploaded it) and no one else did (409
/// `in_use` then: the file is theirs too; an admin can still delete it); anyone else gets 403
/// `not_owner`. The records stay —
/// they are signed history; `DELETE /api/v1/records/{id}` deletes one — and the file can come
/// back from a peer that holds it.
#[utoipa::path(
    delete,
    path = "/files/{cid}",
    tag = "files",
    params(("cid" = crate::openapi::FileCidText, Path, description = "The file's CID (`bafkr4i…`)")),
    responses(
        (status = 200, description = "`{cid, deleted, unpinned}`", body = Object),
        (status = 400, description = "Not a CID, or a record's CID", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "Neither an admin nor the uploader (`not_owner`), or the node keeps its files (`deletion_forbidden`, `api.forbid_deletion`)", body = ErrorBody),
        (status = 404, description = "This node does not hold the file", body = ErrorBody),
        (status = 409, description = "Other authors' records link the file too (`in_use`)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn delete_file(
    State(s): State<ApiState>,
    caller: Caller,
    Path(cid): Path<String>,
) -> ApiResult {
    let cid = blob_cid(&cid)?;
    let blobs = s.node.blobs();
    if !blobs.has(&cid).await.map_err(blob_error)? {
        return Err(ApiError::not_found(format!(
            "this node does not hold {cid}"
        )));
    }
    crate::ops::forbid_deletion(&s, format_args!("the file {cid}"))?;
    if !caller.is_admin() {
        let node = s.node.clone();
        let handle = caller.handle(&s).to_owned();
        let (me, records) = tokio::task::spawn_blocking(move || {
            let repo = node.repo();
            let me = repo
                .accounts()
                .get(&handle)?
                .and_then(|a| a.identity().copied());
            let (records, _) = file_records(repo.store(), &cid, usize::MAX)?;
            Ok::<_, ApiError>((me, records))
        })
        .await??;
        let mine = |r: &&FileRef| Some(r.author) == me;
        if !records.iter().any(|r| mine(&r)) {
            return Err(ApiError::new(
                403,
                "not_owner",
                format!(
                    "only an admin, or the account that uploaded {cid} (and wrote its file \
                     record), may delete it"
                ),
            ));
        }
        let others: Vec<String> = records
            .iter()
            .filter(|r| !mine(r))
            .map(|r| format!("{} ({})", r.id, r.author))
            .collect();
        if !others.is_empty() {
            return Err(ApiError::new(
                409,
                "in_use",
                format!(
                    "{cid} is also the file of records by other authors: {}; only an admin may \
                     delete it",
                    others.join(", ")
                ),
            ));
        }
    }
    let deleted = blobs.delete(&cid).await.map_err(blob_error)?;
    let node = s.node.clone();
    let unpinned = tokio::task::spawn_blocking(move || {
        let store = node.repo().store();
        store.drop_view(&cid)?;
        store.unpin(&cid)
    })
    .await??;
    Ok(Json(json!({
        "cid": cid.to_string(),
        "deleted": deleted,
        "unpinned": unpinned,
    })))
}

// ---------------------------------------------------------------------------------------------
// Fetching from peers, and files on the node's own disk.

/// A file to fetch, or a record whose DAG to fetch.
#[derive(Deserialize, ToSchema)]
#[schema(as = FetchFile)]
struct FetchBody {
    /// A file's CID (`bafkr4i…`), or a record's (`bafyrei…`, a release say): the record, what
    /// it links, and every file in it.
    #[schema(value_type = crate::openapi::CidText)]
    cid: String,
    /// Stream progress as NDJSON lines instead of one JSON answer at the end: for a file
    /// `{"size":…}`, `{"bytes":…}`; for a record `{"files":…,"held":…,"bytes":…}`; then
    /// `{"done":…}` or `{"error":…}`.
    #[serde(default)]
    progress: bool,
}

/// Fetches a file, or a record with all it links and its files (a release), from peers.
///
/// For a record, the node fetches the blocks it links over Bitswap (each checked against its
/// CID, every record verified), then the files, many at once, and pins the record's item so
/// that it keeps them. What no peer gives is listed in `missing` and `complete` is false; the
/// rest is kept.
#[utoipa::path(
    post,
    path = "/files/fetch",
    tag = "files",
    request_body = FetchBody,
    responses(
        (status = 200, description = "A file: `{cid, size, transferred, from: [{peer_id, bytes}]}` (`from`: the peers that sent bytes). A record: `{cid, complete, files, held_before, size, transferred, blocks, blocks_fetched, missing: [{cid, reason}]}`. With `progress`, NDJSON lines, then `{done}` or `{error}`", content(
            (Object = "application/json"),
            (String = "application/x-ndjson"),
        )),
        (status = 400, description = "Not a CID, or a CID of neither a file nor a record", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 404, description = "No peer has the file, or the record", body = ErrorBody),
        (status = 502, description = "The fetch failed", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn fetch_file(
    State(s): State<ApiState>,
    _caller: Caller,
    Json(b): Json<FetchBody>,
) -> Result<Response, ApiError> {
    let cid = parse_cid(&b.cid)?;
    match cids::link_kind(&cid) {
        LinkKind::Blob => {}
        LinkKind::Record => return fetch_dag(s, cid, b.progress).await,
        LinkKind::UnixFs => {
            return Err(ApiError::bad_request(format!(
                "{cid} is a UnixFS CID, the name IPFS clients use for a file; fetch the file by \
                 its BLAKE3 CID (bafkr4i…) or its record"
            )));
        }
        LinkKind::Other => {
            return Err(ApiError::bad_request(format!(
                "{cid} names neither a file (bafkr4i…) nor a record (bafyrei…)"
            )));
        }
    }
    if !b.progress {
        let f = s.node.fetch_file(cid, |_| {}).await?;
        return Ok(Json(fetched_file(cid, &f)).into_response());
    }
    let node = s.node.clone();
    Ok(crate::progress::answer(move |mut lines| async move {
        let f = node
            .fetch_file(cid, move |p| match p {
                FetchProgress::Size(n) => lines.now(json!({ "size": n })),
                FetchProgress::Bytes(n) => lines.send(json!({ "bytes": n })),
            })
            .await?;
        Ok(fetched_file(cid, &f))
    }))
}

/// What `POST /files/fetch` of a file answers: its size, the bytes moved, and who sent them.
fn fetched_file(cid: Cid, f: &mnode_node::node::Fetched) -> Value {
    let from: Vec<Value> = f
        .from
        .iter()
        .map(|(peer, bytes)| json!({ "peer_id": peer.to_string(), "bytes": bytes }))
        .collect();
    json!({
        "cid": cid.to_string(),
        "size": f.size,
        "transferred": f.transferred,
        "from": from,
    })
}

/// `POST /files/fetch` of a record: its DAG and every file in it.
async fn fetch_dag(s: ApiState, cid: Cid, progress: bool) -> Result<Response, ApiError> {
    let answer = move |f: FetchedMany| {
        let missing: Vec<Value> = f
            .missing
            .iter()
            .map(|(c, why)| json!({ "cid": c.to_string(), "reason": why }))
            .collect();
        json!({
            "cid": cid.to_string(),
            "complete": f.missing.is_empty(),
            "files": f.files,
            "held_before": f.held_before,
            "size": f.size,
            "transferred": f.transferred,
            "blocks": f.blocks,
            "blocks_fetched": f.blocks_fetched,
            "missing": missing,
        })
    };
    if !progress {
        let f = s.node.fetch_dag(cid, |_| {}).await?;
        return Ok(Json(answer(f)).into_response());
    }
    let node = s.node.clone();
    Ok(crate::progress::answer(move |mut lines| async move {
        let mut first = true;
        let f = node
            .fetch_dag(cid, move |p: ManyProgress| {
                let line = json!({ "files": p.files, "held": p.held, "bytes": p.bytes });
                if std::mem::take(&mut first) {
                    lines.now(line);
                } else {
                    lines.send(line);
                }
            })
            .await?;
        Ok(answer(f))
    }))
}

/// Where to export a file.
#[derive(Deserialize, ToSchema)]
#[schema(as = ExportFile)]
struct ExportBody {
    #[schema(value_type = crate::openapi::FileCidText)]
    cid: String,
    /// An absolute path on the node's disk that does not exist yet.
    #[schema(value_type = crate::openapi::NodePathText)]
    path: PathBuf,
    /// Create the folders of `path` that are missing (like `mkdir -p`); without it, a missing
    /// folder is refused, as `cp` refuses it.
    #[serde(default)]
    parents: bool,
}

/// Writes a held file to a path on the node's own disk; refuses to overwrite.
///
/// A file that is still arriving (a fetch from peers in progress, `POST /files/fetch`) is
/// written as its verified bytes come in, and answered once all of it is written: so a client
/// that starts the fetch and, once its first bytes are in, the export, gets the file on disk
/// about when the fetch ends (`mnode get` does this). A file the node holds is copied by the
/// kernel from the store's own file where it can be. The path never holds part of the file:
/// it is written under a temp name beside it and renamed when complete.
///
/// Admin only.
#[utoipa::path(
    post,
    path = "/files/export",
    tag = "files",
    request_body = ExportBody,
    responses(
        (status = 200, description = "`{cid, path, size}`", body = Object),
        (status = 400, description = "Not a CID, a relative path, or a folder that does not exist (without `parents`)", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "The caller is not an admin", body = ErrorBody),
        (status = 404, description = "The node does not hold the file, nor any part of it", body = ErrorBody),
        (status = 409, description = "The path exists (`exists`)", body = ErrorBody),
        (status = 504, description = "The file was arriving, but no more of it came for a minute (`stalled`)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn export_file(
    State(s): State<ApiState>,
    _admin: Admin,
    Json(b): Json<ExportBody>,
) -> ApiResult {
    let cid = parse_cid(&b.cid)?;
    if !b.path.is_absolute() {
        return Err(ApiError::bad_request("path must be absolute"));
    }
    if tokio::fs::try_exists(&b.path).await.unwrap_or(true) {
        return Err(ApiError::new(
            409,
            "exists",
            format!("{} exists; choose another path", b.path.display()),
        ));
    }
    if let Some(dir) = b.path.parent().filter(|_| !b.parents)
        && !tokio::fs::metadata(dir).await.is_ok_and(|m| m.is_dir())
    {
        return Err(ApiError::bad_request(format!(
            "{} is not a folder; create it first, or ask for it with `parents`",
            dir.display()
        )));
    }
    let size = s
        .node
        .blobs()
        .export_arriving(&cid, &b.path, EXPORT_STALL)
        .await
        .map_err(|e| match e {
            BlobError::NotFound(_) => ApiError::not_found(format!("the node does not hold {cid}")),
            BlobError::NotABlobCid(_) => ApiError::bad_request(e.to_string()),
            BlobError::DiskFull => ApiError::disk_full(),
            BlobError::Stalled { .. } => ApiError::new(504, "stalled", e.to_string()),
            other => ApiError::new(500, "export_failed", other.to_string()),
        })?;
    Ok(Json(
        json!({ "cid": cid.to_string(), "path": b.path, "size": size }),
    ))
}

/// A file on the node's disk.
#[derive(Deserialize, ToSchema)]
#[schema(as = ImportFile)]
struct ImportBody {
    /// An absolute path.
    #[schema(value_type = crate::openapi::FilePathText)]
    path: PathBuf,
    /// Stream progress as NDJSON lines (`{"size":…}`, `{"bytes":…}` at most every 200 ms, then
    /// `{"done":…}` or `{"error":…}`) instead of one JSON answer at the end.
    #[serde(default)]
    progress: bool,
    /// When the file is committed to disk: `now` (the default), before the answer, so that it
    /// survives a crash from then on; or `later`, with the next `POST /files/commit` (or when
    /// the daemon stops), so that the files of a folder share one commit instead of waiting for
    /// the disk one by one. Until then a crash may lose the file (whole: it is never half
    /// there).
    #[serde(default)]
    commit: CommitWhen,
}

/// When an imported file is committed to disk (see `ImportFile.commit`).
#[derive(Deserialize, ToSchema, Default, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum CommitWhen {
    /// Before the answer.
    #[default]
    Now,
    /// With the next `POST /files/commit`.
    Later,
}

impl From<CommitWhen> for Commit {
    fn from(c: CommitWhen) -> Self {
        match c {
            CommitWhen::Now => Commit::Now,
            CommitWhen::Later => Commit::Later,
        }
    }
}

/// Imports a file that is on the node's own disk into its blob store.
///
/// Admin only: it reads local paths. To add many files, import each with `commit: later`,
/// then commit them all with one `POST /files/commit`.
#[utoipa::path(
    post,
    path = "/files/import",
    tag = "files",
    request_body = ImportBody,
    responses(
        (status = 200, description = "`{cid, size, unixfs}`; with `progress`, NDJSON lines `{size}`, `{bytes}`, then `{done}` or `{error}`", content(
            (Object = "application/json"),
            (String = "application/x-ndjson"),
        )),
        (status = 400, description = "A relative path, or not a readable file", body = ErrorBody),
        (status = 404, description = "Nothing is at the path", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "The caller is not an admin", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn import_file(
    State(s): State<ApiState>,
    _admin: Admin,
    Json(b): Json<ImportBody>,
) -> Result<Response, ApiError> {
    if !b.path.is_absolute() {
        return Err(ApiError::bad_request("path must be absolute"));
    }
    let size = file_size(&b.path).await?;
    let commit = b.commit.into();
    if !b.progress {
        let v = import_path(&s, &b.path, commit, |_| {}).await?;
        return Ok(Json(v).into_response());
    }
    Ok(crate::progress::answer(move |mut lines| async move {
        lines.now(json!({ "size": size }));
        import_path(&s, &b.path, commit, move |n| {
            lines.send(json!({ "bytes": n }));
        })
        .await
    }))
}

/// The size of the file at `path` on the node's disk: 404 if nothing is there, 400 if it is
/// not a readable file.
async fn file_size(path: &std::path::Path) -> Result<u64, ApiError> {
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| crate::admin::path_error(path, &e))?;
    if !meta.is_file() {
        return Err(ApiError::bad_request(format!(
            "{} is not a file",
            path.display()
        )));
    }
    Ok(meta.len())
}

/// Copies a file on the node's disk into the blob store, committed as `commit` says, builds
/// its UnixFS view and announces both: `{cid, size, unixfs}`.
async fn import_path(
    s: &ApiState,
    path: &std::path::Path,
    commit: Commit,
    progress: impl FnMut(u64) + Send,
) -> Result<Value, ApiError> {
    let (added, view) = s
        .node
        .blobs()
        .add_path_viewed(path, ImportMode::Copy, commit, progress)
        .await
        .map_err(|e| import_error(path, e))?;
    s.node.provide(vec![added.cid]).await?;
    s.node.add_view(&added.cid, &view).await?;
    Ok(json!({
        "cid": added.cid.to_string(),
        "size": added.size,
        "unixfs": view.root.to_string(),
    }))
}

/// The most files one `POST /files/import/batch` takes.
pub const MAX_IMPORTS: usize = 1000;

/// Files on the node's disk, imported together.
#[derive(Deserialize, ToSchema)]
#[schema(as = ImportFiles)]
struct ImportBatchBody {
    /// Absolute paths, 1 to 1,000.
    #[schema(value_type = Vec<crate::openapi::FilePathText>, min_items = 1, max_items = 1000)]
    paths: Vec<PathBuf>,
    /// Stream progress as NDJSON lines (`{"size":…}` of all the files, `{"bytes":…}` at most
    /// every 200 ms, then `{"done":…}` or `{"error":…}`) instead of one JSON answer at the end.
    #[serde(default)]
    progress: bool,
    /// When the files are committed to disk: `now` (the default), once for all of them, before
    /// the answer; or `later`, with the next `POST /files/commit`.
    #[serde(default)]
    commit: CommitWhen,
}

/// Imports many files that are on the node's own disk into its blob store, a few at a time.
///
/// Admin only: it reads local paths. Every path is checked before any file is read. Answers
/// `{files: [{path, cid, size, unixfs}]}` in the order of `paths`. If a file cannot be
/// imported (it changed or went away meanwhile), the answer is that error; the files imported
/// before it are held, and an import of them again adds nothing.
#[utoipa::path(
    post,
    path = "/files/import/batch",
    tag = "files",
    request_body = ImportBatchBody,
    responses(
        (status = 200, description = "`{files: [{path, cid, size, unixfs}]}`; with `progress`, NDJSON lines `{size}`, `{bytes}`, then `{done}` or `{error}`", content(
            (Object = "application/json"),
            (String = "application/x-ndjson"),
        )),
        (status = 400, description = "No paths or too many, a relative path, or not a readable file", body = ErrorBody),
        (status = 404, description = "Nothing is at one of the paths", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "The caller is not an admin", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn import_batch(
    State(s): State<ApiState>,
    _admin: Admin,
    Json(b): Json<ImportBatchBody>,
) -> Result<Response, ApiError> {
    if b.paths.is_empty() || b.paths.len() > MAX_IMPORTS {
        return Err(ApiError::bad_request(format!(
            "a batch imports 1 to {MAX_IMPORTS} files, not {}",
            b.paths.len()
        )));
    }
    let mut size = 0;
    for path in &b.paths {
        if !path.is_absolute() {
            return Err(ApiError::bad_request(format!(
                "{} is not an absolute path",
                path.display()
            )));
        }
        size += file_size(path).await?;
    }
    let commit = b.commit.into();
    if !b.progress {
        let v = import_paths(&s, &b.paths, commit, |_| {}).await?;
        return Ok(Json(v).into_response());
    }
    Ok(crate::progress::answer(move |mut lines| async move {
        lines.now(json!({ "size": size }));
        import_paths(&s, &b.paths, commit, move |n| {
            lines.send(json!({ "bytes": n }));
        })
        .await
    }))
}

/// Imports `paths` [`IMPORTS_AT_ONCE`] at a time (each uncommitted), keeps and announces their
/// UnixFS views in one write, and commits them all once if `commit` is `Now`; `progress` sees
/// the bytes read of all of them. `{files: [{path, cid, size, unixfs}]}`.
async fn import_paths(
    s: &ApiState,
    paths: &[PathBuf],
    commit: Commit,
    progress: impl FnMut(u64) + Send,
) -> Result<Value, ApiError> {
    // The bytes read so far over all files, and who is told.
    let read = std::sync::Mutex::new((0u64, progress));
    let read = &read;
    let blobs = s.node.blobs();
    let imported: Vec<(Added, View)> = futures::stream::iter(paths.iter().cloned())
        .map(|path| async move {
            let mut shown = 0;
            blobs
                .add_path_viewed(&path, ImportMode::Copy, Commit::Later, move |done| {
                    if let Ok(mut r) = read.lock() {
                        r.0 += done.saturating_sub(shown);
                        shown = shown.max(done);
                        let total = r.0;
                        (r.1)(total);
                    }
                })
                .await
                .map_err(|e| import_error(&path, e))
        })
        .buffered(IMPORTS_AT_ONCE)
        .try_collect()
        .await?;
    s.node
        .provide(imported.iter().map(|(a, _)| a.cid).collect())
        .await?;
    let files: Vec<Value> = paths
        .iter()
        .zip(&imported)
        .map(|(path, (added, view))| {
            json!({
                "path": path,
                "cid": added.cid.to_string(),
                "size": added.size,
                "unixfs": view.root.to_string(),
            })
        })
        .collect();
    s.node
        .add_views(imported.into_iter().map(|(a, v)| (a.cid, v)).collect())
        .await?;
    if commit == Commit::Now {
        s.node.blobs().commit().await.map_err(|e| match e {
            BlobError::DiskFull => ApiError::disk_full(),
            other => ApiError::new(500, "commit_failed", other.to_string()),
        })?;
    }
    Ok(json!({ "files": files }))
}

/// Why the file at `path` could not be imported: `disk_full` (507), else `import_failed`.
fn import_error(path: &std::path::Path, e: BlobError) -> ApiError {
    match e {
        BlobError::DiskFull => ApiError::disk_full(),
        other => ApiError::new(
            500,
            "import_failed",
            format!("cannot import {}: {other}", path.display()),
        ),
    }
}

/// Commits the files imported with `commit: later` to disk.
///
/// Admin only, as the import is. Answers once they survive a crash; files imported with
/// `commit: later` while it runs may wait for the next commit.
#[utoipa::path(
    post,
    path = "/files/commit",
    tag = "files",
    responses(
        (status = 204, description = "The files imported so far are on disk"),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "The caller is not an admin", body = ErrorBody),
        (status = 500, description = "The commit failed (`commit_failed`): files imported with `commit: later` since the last commit may be lost; import them again", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn commit_files(State(s): State<ApiState>, _admin: Admin) -> Result<StatusCode, ApiError> {
    s.node.blobs().commit().await.map_err(|e| match e {
        BlobError::DiskFull => ApiError::disk_full(),
        other => ApiError::new(500, "commit_failed", other.to_string()),
    })?;
    Ok(StatusCode::NO_CONTENT)
}

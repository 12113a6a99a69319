//! `/ipfs/{cid}`: the trustless gateway for record blocks and the file gateway for blobs.
//!
//! - `?format=raw` or `Accept: application/vnd.ipld.raw`: the block itself
//!   (`application/vnd.ipld.raw`), which the client checks against the CID.
//! - `?format=car` or `Accept: application/vnd.ipld.car`: a CAR v1 of the block and, by
//!   default, everything it links, streamed (see `car_response` for the parameters).
//! - A file CID (raw codec, BLAKE3) without a format: the file, with its media type (sniffed
//!   from its first bytes), `Range` (one range, 206) and `If-None-Match`, streamed.
//!
//! `format` wins over `Accept`; in `Accept` the media range with the highest `q` that can be
//! served wins. Identity CIDs are answered from the CID itself (`/ipfs/bafkqaaa` is the
//! spec's probe). Every answer is immutable (`Cache-Control: public, max-age=29030400,
//! immutable`) and carries an `ETag`. GET and HEAD are open to any origin (CORS); nothing here
//! needs a token.

use axum::{
    Router,
    body::Body,
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use futures::StreamExt;
use mnode_dag::{
    Cid,
    cids::{self, LinkKind},
};
use mnode_node::node::NodeError;
use mnode_protocols::bitswap::FetchError;
use serde::Deserialize;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

use crate::{
    ApiError, ApiState,
    car_response::{self, CAR, CarParams, CarRequest, MAX_CAR_FILE},
};

/// Bytes per read when a file is streamed from disk.
const FILE_READ: usize = 256 << 10;
const IMMUTABLE: &str = "public, max-age=29030400, immutable";
const RAW: &str = "application/vnd.ipld.raw";

pub(crate) fn router() -> Router<ApiState> {
    Router::new().route("/ipfs/{cid}", get(ipfs).head(ipfs).options(preflight))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct GatewayQuery {
    format: Option<String>,
    dag_scope: Option<String>,
    entity_bytes: Option<String>,
    car_version: Option<String>,
    car_order: Option<String>,
    car_dups: Option<String>,
}

fn cors(h: &mut HeaderMap) {
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, HEAD, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Range, Accept, If-None-Match"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(
            "Content-Range, Content-Length, Content-Disposition, ETag, X-Ipfs-Path",
        ),
    );
}

async fn preflight() -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    cors(r.headers_mut());
    r
}

/// What the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Raw,
    File,
    Car(CarParams),
}

/// One media range of an `Accept` header: its type and parameters, lowercased, without `q`.
#[derive(Debug)]
struct MediaRange<'a> {
    media: String,
    params: Vec<(String, &'a str)>,
}

impl MediaRange<'_> {
    fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
    }
}

/// The media ranges of an `Accept` header, most wanted first (`q=0` left out).
fn accept(headers: &HeaderMap) -> Vec<MediaRange<'_>> {
    let mut ranges: Vec<(f32, MediaRange<'_>)> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|part| {
            let mut fields = part.split(';');
            let media = fields.next()?.trim().to_ascii_lowercase();
            if media.is_empty() {
                return None;
            }
            let mut q = 1.0f32;
            let mut params = Vec::new();
            for field in fields {
                let Some((k, v)) = field.split_once('=') else {
                    continue;
                };
                let k = k.trim().to_ascii_lowercase();
                let v = v.trim().trim_matches('"');
                if k == "q" {
                    q = v.parse().unwrap_or(0.0);
                } else {
                    params.push((k, v));
                }
            }
            (q > 0.0).then_some((q, MediaRange { media, params }))
        })
        .collect();
    // Stable: equal weights keep the client's order.
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
    ranges.into_iter().map(|(_, r)| r).collect()
}

fn car_format(q: &GatewayQuery, range: Option<&MediaRange<'_>>) -> Result<Format, ApiError> {
    let from_accept = |name| range.and_then(|r| r.param(name));
    let request = CarRequest {
        dag_scope: q.dag_scope.as_deref(),
        entity_bytes: q.entity_bytes.as_deref(),
        version: q.car_version.as_deref().or(from_accept("version")),
        order: q.car_order.as_deref().or(from_accept("order")),
        dups: q.car_dups.as_deref().or(from_accept("dups")),
    };
    Ok(Format::Car(CarParams::parse(&request)?))
}

fn format(q: &GatewayQuery, headers: &HeaderMap, cid: &Cid) -> Result<Format, ApiError> {
    let ranges = accept(headers);
    // The CAR media range the client prefers among those that can be served.
    let car_range = || {
        ranges.iter().filter(|r| r.media == CAR).find(|r| {
            car_response::check_media_params(r.param("version"), r.param("order"), r.param("dups"))
                .is_ok()
        })
    };
    match q.format.as_deref() {
        Some("raw") => return Ok(Format::Raw),
        Some("car") => return car_format(q, car_range()),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "format={other} is not served; use format=raw or format=car"
            )));
        }
        None => {}
    }
    let mut refused = None;
    for range in &ranges {
        if range.media == RAW {
            return Ok(Format::Raw);
        }
        if matches!(range.media.as_str(), "*/*" | "application/*") {
            // Anything will do: what this CID is served as by default.
            refused = None;
            break;
        }
        if range.media == CAR {
            match car_response::check_media_params(
                range.param("version"),
                range.param("order"),
                range.param("dups"),
            ) {
                Ok(()) => return car_format(q, Some(range)),
                Err(e) => refused = refused.or(Some(e)),
            }
        }
    }
    // Only CAR variants this gateway cannot make were asked for (before any wildcard).
    if let Some(e) = refused {
        return Err(e);
    }
    Ok(match cids::link_kind(cid) {
        // A UnixFS CID is a file too when it is a view's root (`serve` checks that).
        LinkKind::Blob | LinkKind::UnixFs => Format::File,
        _ => Format::Raw,
    })
}

fn etag(cid: &Cid, format: &Format) -> String {
    match format {
        Format::Raw => format!("\"{cid}.raw\""),
        Format::File => format!("\"{cid}\""),
        Format::Car(p) => p.etag(cid),
    }
}

/// Whether `If-None-Match` names `tag` (weak comparison, as RFC 9110 asks for it).
fn none_match(headers: &HeaderMap, tag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim())
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == tag)
}

async fn ipfs(
    State(s): State<ApiState>,
    Path(cid_text): Path<String>,
    Query(q): Query<GatewayQuery>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let mut r = match serve(&s, &cid_text, &q, &method, &headers).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    cors(r.headers_mut());
    r
}

/// A block: a record or other IPLD from the store, the data inside an identity CID, or (when
/// the node does not hold it and peers are connected) fetched from them with Bitswap, checked
/// against its CID, within `api.gateway_fetch_timeout_ms`.
async fn block(s: &ApiState, cid: &Cid) -> Result<Option<Vec<u8>>, ApiError> {
    if cid.hash().code() == cids::IDENTITY {
        return Ok(Some(cid.hash().digest().to_vec()));
    }
    // A point read from RocksDB, usually from its block cache: microseconds, less than a hop to
    // the blocking pool would cost, so it runs right here.
    if let Some(b) = s.node.repo().store().block(cid)? {
        return Ok(Some(b));
    }
    if cids::link_kind(cid) == LinkKind::UnixFs
        && let Some(b) = mnode_node::unixfs::view_block(s.node.repo().store(), s.node.blobs(), cid)
            .await
            .map_err(|e| ApiError::internal(&e))?
    {
        return Ok(Some(b));
    }
    let timeout = s.node.repo().config().api.gateway_fetch_timeout_ms;
    if timeout == 0 || s.node.peers().await.map_or(true, |p| p.is_empty()) {
        return Ok(None);
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(timeout);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match s.node.fetch_block(*cid, left).await {
            Ok(bytes) => return Ok(Some(bytes)),
            // A peer that has just connected is not yet known to Bitswap: ask again shortly.
            Err(NodeError::Bitswap(FetchError::NoPeers(_)))
                if left > std::time::Duration::from_millis(50) =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            }
            Err(e) => {
                tracing::debug!(%cid, "gateway: no peer gave the block: {e}");
                return Ok(None);
            }
        }
    }
}

async fn serve(
    s: &ApiState,
    cid_text: &str,
    q: &GatewayQuery,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let cid = cids::parse(cid_text).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut format = format(q, headers, &cid)?;
    let blobs = s.node.blobs();
    // The blob to answer from: the file itself, or the file a UnixFS view's root names when
    // the file is asked for (a view's other blocks, and a view's root asked for as a block or
    // a CAR, are blocks).
    let mut file = (cids::link_kind(&cid) == LinkKind::Blob).then_some(cid);
    if cids::link_kind(&cid) == LinkKind::UnixFs && format == Format::File {
        file = s.node.repo().store().view_file(&cid)?;
        if file.is_none() {
            format = Format::Raw;
        }
    }
    let tag = etag(&cid, &format);
    let head = *method == Method::HEAD;
    // Existence first, so a 304 is only given for what the node holds. A block is read once,
    // here, and kept for a raw answer.
    let mut held: Option<Vec<u8>> = None;
    let size = match &file {
        Some(f) => blobs.size(f).await.ok().flatten(),
        None => {
            held = block(s, &cid).await?;
            held.as_ref().map(|b| b.len() as u64)
        }
    };
    let blob = file.is_some();
    let max_raw = s.node.repo().config().api.gateway_max_raw_block;
    let Some(size) = size else {
        return Err(ApiError::not_found(format!(
            "this node does not hold {cid} and no connected peer gave it"
        )));
    };
    if let Format::Car(p) = &format
        && blob
    {
        if p.entity_bytes.is_some_and(|r| r.outside(size)) {
            let range = q.entity_bytes.as_deref().unwrap_or_default();
            return Err(ApiError::bad_request(format!(
                "entity-bytes={range} starts past the end of {cid}, a file of {size} bytes"
            )));
        }
        if size > MAX_CAR_FILE {
            return Err(ApiError::new(
                406,
                "too_large_for_car",
                format!(
                    "{cid} is a file of {size} bytes, more than the {MAX_CAR_FILE} a CAR block \
                     may hold; fetch it without a format"
                ),
            ));
        }
    }
    let mut builder = Response::builder()
        .header(header::ETAG, &tag)
        .header(header::CACHE_CONTROL, IMMUTABLE)
        .header("X-Ipfs-Path", format!("/ipfs/{cid}"))
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::VARY, "Accept");
    if none_match(headers, &tag) {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .map_err(|e| ApiError::internal(&e));
    }
    match format {
        Format::Car(params) => {
            builder = builder
                .header(header::CONTENT_TYPE, params.content_type())
                .header(
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{cid}.car\""),
                );
            let body = if head {
                Body::empty()
            } else {
                car_response::body(s.node.clone(), cid, params)
            };
            builder.body(body).map_err(|e| ApiError::internal(&e))
        }
        Format::Raw => {
            if blob && size > max_raw {
                return Err(ApiError::new(
                    406,
                    "not_a_block",
                    format!(
                        "{cid} is a file of {size} bytes, more than the {max_raw} this node \
                         answers as one raw block (api.gateway_max_raw_block); fetch it without \
                         format=raw, or by its UnixFS CID"
                    ),
                ));
            }
            builder = builder
                .header(header::CONTENT_TYPE, RAW)
                .header(
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{cid}.bin\""),
                )
                .header(header::CONTENT_LENGTH, size);
            if head {
                return builder
                    .body(Body::empty())
                    .map_err(|e| ApiError::internal(&e));
            }
            let body =
                if blob {
                    // Streamed: the file is checked against its BLAKE3 tree as it is read.
                    let stream = blobs
                        .read_range(&cid, 0, None)
                        .await
                        .map_err(|e| ApiError::internal(&e))?;
                    Body::from_stream(stream)
                } else {
                    Body::from(held.ok_or_else(|| {
                        ApiError::not_found(format!("this node does not hold {cid}"))
                    })?)
                };
            builder.body(body).map_err(|e| ApiError::internal(&e))
        }
        Format::File => {
            let fcid = file.unwrap_or(cid);
            let media = sniff(s, &fcid, size).await;
            let range = requested_range(headers, size)?;
            let (start, end, status) = match range {
                Some((a, b)) => (a, b, StatusCode::PARTIAL_CONTENT),
                None => (0, size, StatusCode::OK),
            };
            builder = builder
                .status(status)
                .header(header::CONTENT_TYPE, media)
                .header(header::ACCEPT_RANGES, "bytes")
                .header(header::CONTENT_LENGTH, end - start);
            if range.is_some() {
                builder = builder.header(
                    header::CONTENT_RANGE,
                    format!("bytes {start}-{}/{size}", end.saturating_sub(1)),
                );
            }
            if head || end == start {
                return builder
                    .body(Body::empty())
                    .map_err(|e| ApiError::internal(&e));
            }
            // A file the store owns is streamed straight from disk in big reads; others (files
            // imported in place) through the store's verified chunks.
            if let Ok(Some((path, _))) = blobs.owned_file(&fcid).await
                && let Ok(mut file) = tokio::fs::File::open(&path).await
                && file.seek(std::io::SeekFrom::Start(start)).await.is_ok()
            {
                let reader =
                    tokio_util::io::ReaderStream::with_capacity(file.take(end - start), FILE_READ);
                return builder
                    .body(Body::from_stream(reader))
                    .map_err(|e| ApiError::internal(&e));
            }
            let stream = blobs
                .read_range(&fcid, start, Some(end))
                .await
                .map_err(|e| ApiError::internal(&e))?;
            builder
                .body(Body::from_stream(
                    stream.map(|r| r.map_err(axum::Error::new)),
                ))
                .map_err(|e| ApiError::internal(&e))
        }
    }
}

/// The media type of a file, from its first bytes.
async fn sniff(s: &ApiState, cid: &Cid, size: u64) -> String {
    let head = match s
        .node
        .blobs()
        .read_range(cid, 0, Some(size.min(8192)))
        .await
    {
        Ok(mut stream) => {
            let mut buf = Vec::new();
            while let Some(Ok(chunk)) = stream.next().await {
                buf.extend_from_slice(&chunk);
            }
            buf
        }
        Err(_) => Vec::new(),
    };
    if let Some(t) = infer::get(&head) {
        return t.mime_type().to_owned();
    }
    if !head.is_empty() && !head.contains(&0) && std::str::from_utf8(&head).is_ok() {
        return "text/plain; charset=utf-8".into();
    }
    "application/octet-stream".into()
}

/// The one range a request's `Range` asks of a file of `size` bytes, as `[start, end)`;
/// `None` without the header; 416 when it cannot be served.
pub(crate) fn requested_range(
    headers: &HeaderMap,
    size: u64,
) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(r) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    parse_range(r, size).map(Some).ok_or_else(|| {
        ApiError::new(
            416,
            "range_not_satisfiable",
            format!("range {r:?} does not fit a file of {size} bytes"),
        )
    })
}

/// One `bytes=` range as `[start, end)`, or `None` if it cannot be served.
fn parse_range(text: &str, size: u64) -> Option<(u64, u64)> {
    let spec = text.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        if n == 0 {
            return None;
        }
        (size.saturating_sub(n), size)
    } else {
        let start: u64 = a.parse().ok()?;
        let end = if b.is_empty() {
            size
        } else {
            b.parse::<u64>().ok()?.saturating_add(1).min(size)
        };
        (start, end)
    };
    (start < end && start < size).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 10)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 100)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 100)));
        assert_eq!(parse_range("bytes=95-200", 100), Some((95, 100)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=5-2", 100), None);
        assert_eq!(parse_range("bytes=0-1,4-5", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
        assert_eq!(parse_range("bytes=-0", 100), None);
    }
}

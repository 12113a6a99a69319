//! `/ipfs/{cid}`: the trustless gateway for record blocks and the file gateway for blobs.
//!
//! - `?format=raw` or `Accept: application/vnd.ipld.raw`: the block itself
//!   (`application/vnd.ipld.raw`), which the client checks against the CID.
//! - A file CID (raw codec, BLAKE3) without a format: the file, with its media type (sniffed
//!   from its first bytes), `Range` (one range, 206) and `If-None-Match`, streamed.
//!
//! Every answer is immutable (`Cache-Control: public, max-age=29030400, immutable`) and carries
//! an `ETag`. GET and HEAD are open to any origin (CORS); nothing here needs a token.

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
use serde::Deserialize;

use crate::{ApiError, ApiState};

const IMMUTABLE: &str = "public, max-age=29030400, immutable";
const RAW: &str = "application/vnd.ipld.raw";
/// The largest file served as one raw block (larger files are files, not blocks).
const MAX_RAW_BLOB: u64 = 2 << 20;

pub(crate) fn router() -> Router<ApiState> {
    Router::new().route("/ipfs/{cid}", get(ipfs).head(ipfs).options(preflight))
}

#[derive(Debug, Deserialize)]
pub(crate) struct GatewayQuery {
    format: Option<String>,
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
        HeaderValue::from_static("Content-Range, Content-Length, ETag, X-Ipfs-Path"),
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
}

fn format(q: &GatewayQuery, headers: &HeaderMap, cid: &Cid) -> Result<Format, ApiError> {
    match q.format.as_deref() {
        Some("raw") => return Ok(Format::Raw),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "format={other} is not served; use format=raw (CAR export: `mnode dag export`)"
            )));
        }
        None => {}
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if accept.split(',').any(|a| a.trim().starts_with(RAW)) {
        return Ok(Format::Raw);
    }
    Ok(if cids::link_kind(cid) == LinkKind::Blob {
        Format::File
    } else {
        Format::Raw
    })
}

fn etag(cid: &Cid, format: Format) -> String {
    match format {
        Format::Raw => format!("\"{cid}.raw\""),
        Format::File => format!("\"{cid}\""),
    }
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

async fn serve(
    s: &ApiState,
    cid_text: &str,
    q: &GatewayQuery,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let cid = cids::parse(cid_text)
        .map_err(|e| ApiError::bad_request(format!("{cid_text:?} is not a CID: {e}")))?;
    let format = format(q, headers, &cid)?;
    let tag = etag(&cid, format);
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let head = *method == Method::HEAD;
    let blob = cids::link_kind(&cid) == LinkKind::Blob;
    let blobs = s.node.blobs();
    // Existence first, so a 304 is only given for what the node holds.
    let size = if blob {
        match blobs.size(&cid).await {
            Ok(Some(n)) if blobs.has(&cid).await.unwrap_or(false) => Some(n),
            _ => None,
        }
    } else {
        let node = s.node.clone();
        tokio::task::spawn_blocking(move || node.repo().store().block(&cid))
            .await??
            .map(|b| b.len() as u64)
    };
    let Some(size) = size else {
        return Err(ApiError::not_found(format!(
            "this node does not hold {cid}"
        )));
    };
    let mut builder = Response::builder()
        .header(header::ETAG, &tag)
        .header(header::CACHE_CONTROL, IMMUTABLE)
        .header("X-Ipfs-Path", format!("/ipfs/{cid}"))
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    if matches {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .map_err(|e| ApiError::internal(&e));
    }
    match format {
        Format::Raw => {
            if blob && size > MAX_RAW_BLOB {
                return Err(ApiError::new(
                    406,
                    "not_a_block",
                    format!(
                        "{cid} is a file of {size} bytes, not a block; fetch it without format=raw"
                    ),
                ));
            }
            let bytes = if blob {
                blobs
                    .read_to_bytes(&cid)
                    .await
                    .map_err(|e| ApiError::internal(&e))?
                    .to_vec()
            } else {
                let node = s.node.clone();
                tokio::task::spawn_blocking(move || node.repo().store().block(&cid))
                    .await??
                    .ok_or_else(|| ApiError::not_found(format!("this node does not hold {cid}")))?
            };
            builder = builder
                .header(header::CONTENT_TYPE, RAW)
                .header(
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{cid}.bin\""),
                )
                .header(header::CONTENT_LENGTH, bytes.len())
                .header(header::VARY, "Accept");
            let body = if head {
                Body::empty()
            } else {
                Body::from(bytes)
            };
            builder.body(body).map_err(|e| ApiError::internal(&e))
        }
        Format::File => {
            let media = sniff(s, &cid, size).await;
            let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
                None => None,
                Some(r) => Some(parse_range(r, size).ok_or_else(|| {
                    ApiError::new(
                        416,
                        "range_not_satisfiable",
                        format!("range {r:?} does not fit a file of {size} bytes"),
                    )
                })?),
            };
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
            let stream = blobs
                .read_range(&cid, start, Some(end))
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

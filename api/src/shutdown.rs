//! What a stopping server waits for, and how it stops without waiting.
//!
//! A graceful shutdown waits for every request to be answered, and an upload from a slow client
//! can take minutes. [`Requests`] counts the requests in flight, uploads apart, so that the
//! daemon can say what it waits for; [`Requests::cut`] ends them when the daemon will wait no
//! longer. A cut drops the handlers (an upload's temp file goes with its future) and breaks the
//! body of an upload that is still being read, so an upload answering with progress lines ends
//! with an error line. Nothing half-written stays: a file enters the store only once it is
//! whole.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use axum::{
    body::{Body, HttpBody as _},
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse as _, Response},
};
use futures::StreamExt as _;
use tokio_util::sync::CancellationToken;

use crate::ApiError;

/// A request body larger than this (or of unknown length) makes the request an upload.
const UPLOAD_MIN_BYTES: u64 = 64 << 10;

/// The requests a server is answering; clones share the counts.
#[derive(Debug, Clone, Default)]
pub struct Requests {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    uploads: AtomicUsize,
    others: AtomicUsize,
    cut: CancellationToken,
}

impl Requests {
    /// Uploads in flight: requests sending a body of unknown length or more than 64 KiB.
    pub fn uploads(&self) -> usize {
        self.inner.uploads.load(Ordering::SeqCst)
    }

    /// Other requests whose handler is running (a response that streams to its client after
    /// the handler returned is not counted).
    pub fn others(&self) -> usize {
        self.inner.others.load(Ordering::SeqCst)
    }

    /// Ends every request in flight now, and every request that comes after.
    pub fn cut(&self) {
        self.inner.cut.cancel();
    }

    fn counter(&self, upload: bool) -> &AtomicUsize {
        if upload {
            &self.inner.uploads
        } else {
            &self.inner.others
        }
    }
}

/// One request counted until dropped.
struct InFlight {
    requests: Requests,
    upload: bool,
}

impl InFlight {
    fn new(requests: &Requests, upload: bool) -> Self {
        requests.counter(upload).fetch_add(1, Ordering::SeqCst);
        Self {
            requests: requests.clone(),
            upload,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.requests
            .counter(self.upload)
            .fetch_sub(1, Ordering::SeqCst);
    }
}

/// The middleware: counts the request while its handler runs and, for an upload, while its body
/// is read (an upload answering with progress lines reads it after the handler returned).
pub(crate) async fn track(State(requests): State<Requests>, req: Request, next: Next) -> Response {
    let cut = requests.inner.cut.clone();
    let stopping = || ApiError::new(503, "stopping", "the node is stopping").into_response();
    if cut.is_cancelled() {
        return stopping();
    }
    let upload = req
        .body()
        .size_hint()
        .upper()
        .is_none_or(|n| n > UPLOAD_MIN_BYTES);
    let in_flight = Arc::new(InFlight::new(&requests, upload));
    let req = if upload {
        let (parts, body) = req.into_parts();
        Request::from_parts(parts, cut_off(body, cut.clone(), in_flight.clone()))
    } else {
        req
    };
    let response = tokio::select! {
        biased;
        () = cut.cancelled() => stopping(),
        response = next.run(req) => response,
    };
    drop(in_flight);
    response
}

/// `body`, which breaks off with an error when `cut` fires, and holds `in_flight` until it ends.
fn cut_off(body: Body, cut: CancellationToken, in_flight: Arc<InFlight>) -> Body {
    let state = Some((body.into_data_stream(), cut, in_flight));
    Body::from_stream(futures::stream::unfold(state, |state| async move {
        let (mut data, cut, in_flight) = state?;
        tokio::select! {
            biased;
            () = cut.cancelled() => Some((Err(axum::Error::new("the node is stopping")), None)),
            item = data.next() => {
                let item = item?;
                Some((item, Some((data, cut, in_flight))))
            }
        }
    }))
}

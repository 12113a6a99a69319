//! Long jobs answered as NDJSON: progress lines as the job goes, then one last line,
//! `{"done": …}` or `{"error": {status, code, message}}`. Clients that ask for `progress` read
//! them (`curl -N` shows them as they come); the CLI draws a bar from them.

use std::{
    convert::Infallible,
    time::{Duration, Instant},
};

use axum::{
    body::Body,
    http::header,
    response::{IntoResponse as _, Response},
};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::ApiError;

/// At most one progress line this often.
pub(crate) const EVERY: Duration = Duration::from_millis(200);

/// Where a job sends its progress lines. Lines come at most every [`EVERY`] (or at once with
/// [`Lines::now`]), and a line a slow reader has no room for is skipped: the last line, which
/// [`answer`] sends, always arrives.
#[derive(Debug)]
pub(crate) struct Lines {
    tx: mpsc::Sender<Value>,
    next: Instant,
}

impl Lines {
    /// Sends `line` unless one went out less than [`EVERY`] ago.
    pub(crate) fn send(&mut self, line: Value) {
        if Instant::now() >= self.next {
            self.now(line);
        }
    }

    /// Sends `line` now (a size known at the start, say).
    pub(crate) fn now(&mut self, line: Value) {
        self.next = Instant::now() + EVERY;
        let _ = self.tx.try_send(line);
    }
}

/// Runs `job` on its own task and answers `200 application/x-ndjson` at once: the lines the
/// job sends, then `{"done": <its value>}` or `{"error": …}`.
pub(crate) fn answer<F, Fut>(job: F) -> Response
where
    F: FnOnce(Lines) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Value, ApiError>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Value>(64);
    let lines = Lines {
        tx: tx.clone(),
        next: Instant::now(),
    };
    tokio::spawn(async move {
        let last = match job(lines).await {
            Ok(v) => json!({ "done": v }),
            Err(e) => {
                json!({ "error": { "status": e.status, "code": e.code, "message": e.message } })
            }
        };
        let _ = tx.send(last).await;
    });
    let body = futures::stream::unfold(rx, |mut rx| async move {
        let v = rx.recv().await?;
        Some((Ok::<_, Infallible>(format!("{v}\n")), rx))
    });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(body),
    )
        .into_response()
}

/// A reader or writer that tells `report` how many bytes have passed through it.
pub(crate) struct Counted<T, F> {
    inner: T,
    bytes: u64,
    report: F,
}

impl<T, F: FnMut(u64)> Counted<T, F> {
    pub(crate) fn new(inner: T, report: F) -> Self {
        Self {
            inner,
            bytes: 0,
            report,
        }
    }

    fn passed(&mut self, n: usize) {
        self.bytes += n as u64;
        (self.report)(self.bytes);
    }
}

impl<T: std::io::Read, F: FnMut(u64)> std::io::Read for Counted<T, F> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.passed(n);
        Ok(n)
    }
}

impl<T: std::io::Write, F: FnMut(u64)> std::io::Write for Counted<T, F> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.passed(n);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

//! A small HTTP/1.1 client for tests that drive a daemon's API from plain threads: one request
//! a connection (`Connection: close`), a timeout on every read and write, so that a daemon that
//! dies mid-request is an error and never a hang.

use std::{
    io::{self, Read as _, Write as _},
    net::TcpStream,
    path::Path,
    thread,
    time::Duration,
};

use serde_json::Value;

/// How long one read or write may block.
const IO_TIMEOUT: Duration = Duration::from_secs(120);
/// Bodies larger than this are sent from a thread while the answer is read, so that an answer
/// given before the whole body was taken (an error) is not lost to a reset connection.
const SEND_ASIDE: usize = 64 << 10;

/// A daemon's API: where it listens and the admin token.
#[derive(Debug, Clone)]
pub struct Api {
    /// `host:port`.
    pub addr: String,
    /// The admin token from `<repo>/api.token`.
    pub token: String,
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}), status {}: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Api {
    /// The API of the daemon running on `repo` (from its `daemon.json` and `api.token`).
    pub fn of(repo: &Path) -> Self {
        let info: Value =
            serde_json::from_slice(&std::fs::read(repo.join("daemon.json")).unwrap()).unwrap();
        let url = info["api"].as_str().unwrap();
        let token = std::fs::read_to_string(repo.join("api.token")).unwrap();
        Self {
            addr: url.strip_prefix("http://").unwrap().to_owned(),
            token: token.trim().to_owned(),
        }
    }

    /// Sends one request; `Err` if the connection failed or broke before a whole answer came.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> io::Result<Answer> {
        self.call_with(method, path, content_type, &[], body)
    }

    /// A GET with extra headers (`Range`, say).
    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> io::Result<Answer> {
        self.call_with("GET", path, None, headers, &[])
    }

    /// [`Api::call`] with extra headers.
    pub fn call_with(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Answer> {
        let mut stream = TcpStream::connect(&self.addr)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
             Connection: close\r\nContent-Length: {}\r\n",
            self.addr,
            self.token,
            body.len()
        );
        if let Some(ct) = content_type {
            head.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;
        if body.len() <= SEND_ASIDE {
            // A write error (the daemon answered early and closed) still leaves its answer
            // to read.
            let _ = stream.write_all(body);
            return read_answer(&mut stream);
        }
        let mut writer = stream.try_clone()?;
        thread::scope(|s| {
            s.spawn(move || {
                let _ = writer.write_all(body);
            });
            let answer = read_answer(&mut stream);
            // The sender stops once the socket is shut.
            let _ = stream.shutdown(std::net::Shutdown::Both);
            answer
        })
    }

    pub fn get(&self, path: &str) -> io::Result<Answer> {
        self.call("GET", path, None, &[])
    }

    pub fn delete(&self, path: &str) -> io::Result<Answer> {
        self.call("DELETE", path, None, &[])
    }

    pub fn post(&self, path: &str, body: &Value) -> io::Result<Answer> {
        self.call(
            "POST",
            path,
            Some("application/json"),
            body.to_string().as_bytes(),
        )
    }

    pub fn put_bytes(&self, path: &str, bytes: &[u8]) -> io::Result<Answer> {
        self.call("PUT", path, Some("application/octet-stream"), bytes)
    }

    /// A request that must answer 2xx with JSON.
    pub fn ok(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let bytes = body.map(Value::to_string).unwrap_or_default();
        let ct = body.map(|_| "application/json");
        let a = self
            .call(method, path, ct, bytes.as_bytes())
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        assert!(a.ok(), "{method} {path}: {} {}", a.status, a.text());
        a.json()
    }
}

fn read_answer(stream: &mut TcpStream) -> io::Result<Answer> {
    let mut raw = Vec::new();
    let read = stream.read_to_end(&mut raw);
    // An answer read whole counts even if the connection was then reset.
    match parse(&raw) {
        Some(a) => Ok(a),
        None => Err(read.err().unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("an incomplete answer of {} bytes", raw.len()),
            )
        })),
    }
}

/// A whole answer, or `None` if `raw` ends before it does.
fn parse(raw: &[u8]) -> Option<Answer> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let rest = &raw[end + 4..];
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let body = if find("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        dechunk(rest)?
    } else if let Some(len) = find("content-length") {
        let len: usize = len.parse().ok()?;
        rest.get(..len)?.to_vec()
    } else {
        rest.to_vec()
    };
    Some(Answer {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let eol = rest.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&rest[..eol]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

//! The web UI's figures (issue #14), each next to its reference measured in the same run, on
//! a repo of 1,000,000 `social.post` records by the owner (plus the owner's `core.profile`, so
//! that author names resolve as they do for a real user):
//!
//! - `list`: server time of the posts page `GET /social/posts` (the newest 50 posts, HTML),
//!   2,000 sequential requests through the router in-process (`oneshot`, body read to the
//!   end, after 100 not counted), vs the JSON listing of the same items
//!   `GET /api/v1/records?kind=social.post&limit=50`: p50, p99, max.
//! - `wrk`: the same two URLs over HTTP with `wrk` (2 threads, 32 connections): requests/s,
//!   p50, p99, and the page's requests/s as a multiple of the JSON listing's.
//! - `weight`: the home page `/` (logged out) and every stylesheet and script it links, each
//!   asked for with `Accept-Encoding: gzip`, counted as compressed bytes; and `upload.js`,
//!   which only forms with file uploads load.
//!
//! The node runs in this process (the same `Node` and router `mnode daemon` serves) on a
//! 2-worker runtime; `wrk` runs as a process on the same two cores.
//!
//! Run: `cargo bench -p mnode-ui --bench pages [-- list|wrk|weight]` (all by default). The
//! repo is made once under `$MNODE_BENCH_DIR` (default: a folder in the system temp dir) and
//! reused. Sizes: `MNODE_BENCH_RECORDS` (1000000), `MNODE_BENCH_WRK_SECS` (10).

#![allow(clippy::unwrap_used)]

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::{Body, Bytes, to_bytes},
    http::{HeaderMap, Request, StatusCode, header},
};
use mnode_bench_support::{bench_dir, env_num, met, wrk};
use mnode_dag::{
    Record,
    model::{core::Profile, social::Post},
};
use mnode_node::{
    blobs::Blobs,
    node::Node,
    repo::{InitOptions, Repo},
};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

const TOKEN: &str = "bench-token";
const PAGE: &str = "/social/posts";
const JSON: &str = "/api/v1/records?kind=social.post&limit=50";
const REQUESTS: usize = 2000;
const WARM_UP: usize = 100;
/// The first post's time (ms); post `i` is `i` ms later, the profile 1 ms earlier.
const T0: u64 = 1_732_400_000_000;

fn settings() -> Vec<String> {
    vec![
        r#"network.listen=["/ip4/127.0.0.1/tcp/0"]"#.into(),
        "network.blobs_listen=127.0.0.1:0".into(),
    ]
}

fn post(i: u64) -> Post {
    Post {
        text: format!(
            "Post number {i}. Finished the last mix of the album tonight: three years of field \
             recordings from the coast and a borrowed upright piano."
        ),
        tags: vec![["music/ambient", "music/jazz", "visual/photo"][(i % 3) as usize].into()],
        ..Post::default()
    }
}

/// The repo with `n` posts and the owner's profile, made once (the `.done` file next to it
/// says it is complete).
fn repo(dir: &Path, n: u64) -> PathBuf {
    let path = dir.join(format!("repo-{n}"));
    let done = dir.join(format!("repo-{n}.done"));
    if done.exists() {
        return path;
    }
    let _ = std::fs::remove_dir_all(&path);
    let repo = Repo::init(
        &path,
        &InitOptions {
            settings: settings(),
            ..InitOptions::default()
        },
    )
    .unwrap();
    let key = repo.accounts().signing_key("owner").unwrap();
    let start = Instant::now();
    let profile = Profile {
        handle: "owner".into(),
        display_name: "Owner".into(),
        ..Profile::default()
    };
    let profile = Record::create(&profile)
        .unwrap()
        .at(T0 - 1)
        .sign(&key)
        .unwrap();
    repo.store().put_batch(vec![profile]).unwrap();
    let mut i = 0;
    while i < n {
        let end = (i + 10_000).min(n);
        let records: Vec<Record> = (i..end)
            .map(|i| {
                Record::create(&post(i))
                    .unwrap()
                    .at(T0 + i)
                    .sign(&key)
                    .unwrap()
            })
            .collect();
        repo.store().put_batch(records).unwrap();
        i = end;
    }
    repo.store().flush().unwrap();
    drop(repo);
    std::fs::write(&done, b"").unwrap();
    eprintln!(
        "built a {n}-post repo in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    path
}

struct Ui {
    node: Node,
    router: Router,
    addr: SocketAddr,
    cancel: CancellationToken,
}

async fn start(path: &Path) -> Ui {
    let repo = Repo::open(path, Vec::<(String, String)>::new(), &settings()).unwrap();
    let blobs = Blobs::open(&repo.blobs_dir(), &repo.tmp_dir())
        .await
        .unwrap();
    let node = Node::spawn(repo, blobs).await.unwrap();
    let cancel = CancellationToken::new();
    let router =
        mnode_ui::app(mnode_api::ApiState::new(node.handle(), TOKEN).with_shutdown(cancel.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(mnode_api::serve(listener, router.clone(), cancel.clone()));
    Ui {
        node,
        router,
        addr,
        cancel,
    }
}

/// One GET through the router, the body read to the end.
async fn get(router: &Router, uri: &str, gzip: bool) -> (StatusCode, HeaderMap, Bytes) {
    let mut req = Request::get(uri);
    if gzip {
        req = req.header(header::ACCEPT_ENCODING, "gzip");
    }
    let resp = router
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    let body = to_bytes(body, usize::MAX).await.unwrap();
    (parts.status, parts.headers, body)
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// The nearest-rank percentile of sorted samples.
fn pct(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn rows_in(html: &[u8]) -> usize {
    String::from_utf8_lossy(html)
        .matches(r#"class="row""#)
        .count()
}

fn check_page(body: &[u8]) {
    assert_eq!(rows_in(body), 50, "the page does not list 50 rows");
    assert!(
        String::from_utf8_lossy(body).contains("@owner"),
        "the author's name does not resolve to the profile's handle"
    );
}

fn check_json(body: &[u8]) {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 50, "the JSON listing does not hold 50 items");
}

// ---------------------------------------------------------------------------------------------

fn list(rt: &tokio::runtime::Runtime, ui: &Ui, n: u64) {
    let time = |uri: &str, gzip: bool| {
        rt.block_on(async {
            let (status, headers, body) = get(&ui.router, uri, gzip).await;
            assert_eq!(status, StatusCode::OK, "{uri}");
            let bytes = body.len();
            if uri == PAGE {
                let encoding = headers.get(header::CONTENT_ENCODING);
                assert_eq!(gzip, encoding.is_some_and(|e| e == "gzip"), "{uri}");
                if !gzip {
                    check_page(&body);
                }
            } else {
                check_json(&body);
            }
            for _ in 0..WARM_UP {
                get(&ui.router, uri, gzip).await;
            }
            let mut samples = Vec::with_capacity(REQUESTS);
            for _ in 0..REQUESTS {
                let t = Instant::now();
                let (status, _, _) = get(&ui.router, uri, gzip).await;
                samples.push(t.elapsed());
                assert_eq!(status, StatusCode::OK, "{uri}");
            }
            samples.sort();
            (bytes, samples)
        })
    };
    let json = time(JSON, false);
    let page = time(PAGE, false);
    let page_gz = time(PAGE, true);
    println!(
        "\n### List of 50 of {n} posts: server time in-process ({REQUESTS} sequential requests, \
         after {WARM_UP} not counted)\n"
    );
    println!("| route | body bytes | p50 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|---:|");
    let row = |name: &str, (bytes, s): &(usize, Vec<Duration>)| {
        println!(
            "| {name} | {bytes} | {} | {} | {} |",
            ms(pct(s, 50.0)),
            ms(pct(s, 99.0)),
            ms(*s.last().unwrap())
        );
    };
    row(&format!("`GET {JSON}` (JSON, reference)"), &json);
    row(&format!("`GET {PAGE}` (HTML page)"), &page);
    row(
        &format!("`GET {PAGE}`, `Accept-Encoding: gzip` (as browsers ask)"),
        &page_gz,
    );
    let p99 = pct(&page.1, 99.0);
    println!(
        "\nlist page p99 = {} ms (target ≤ 20 ms): {}",
        ms(p99),
        met(p99 <= Duration::from_millis(20))
    );
}

fn wrk_run(ui: &Ui) {
    let secs = u32::try_from(env_num("MNODE_BENCH_WRK_SECS", 10)).unwrap();
    let json = format!("http://{}{JSON}", ui.addr);
    let page = format!("http://{}{PAGE}", ui.addr);
    println!("\n### Over HTTP (wrk -t2 -c32 -d{secs}s, no compression asked)\n");
    println!("| route | requests/s | p50 ms | p99 ms | errors | ratio |");
    println!("|---|---:|---:|---:|---:|---:|");
    let j = wrk(&json, 2, 32, secs);
    let p = wrk(&page, 2, 32, secs);
    println!(
        "| `GET {JSON}` (JSON, reference) | {:.0} | {} | {} | {} | 1.00 |",
        j.rps,
        ms(j.p50),
        ms(j.p99),
        j.errors
    );
    let ratio = p.rps / j.rps;
    println!(
        "| `GET {PAGE}` (HTML page) | {:.0} | {} | {} | {} | {ratio:.2} |",
        p.rps,
        ms(p.p50),
        ms(p.p99),
        p.errors
    );
    println!(
        "\nlist page requests/s = {ratio:.2} × the JSON listing (target ≥ 0.50): {}",
        met(ratio >= 0.5 && p.errors == 0 && j.errors == 0)
    );
}

/// The value of `name="…"` in one tag's text.
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let len = tag[start..].find('"')?;
    Some(&tag[start..start + len])
}

/// The stylesheets and scripts a page links, in order.
fn linked(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in html.match_indices('<') {
        let Some(len) = html[i..].find('>') else {
            break;
        };
        let tag = &html[i..i + len];
        if tag.starts_with("<link ") && attr(tag, "rel") == Some("stylesheet") {
            out.extend(attr(tag, "href").map(str::to_owned));
        } else if tag.starts_with("<script ") {
            out.extend(attr(tag, "src").map(str::to_owned));
        }
    }
    out
}

fn weight(rt: &tokio::runtime::Runtime, ui: &Ui) {
    // (uri, raw bytes, gzip bytes as received)
    let fetch = |uri: &str| {
        rt.block_on(async {
            let (status, _, raw) = get(&ui.router, uri, false).await;
            assert_eq!(status, StatusCode::OK, "{uri}");
            let (status, headers, gz) = get(&ui.router, uri, true).await;
            assert_eq!(status, StatusCode::OK, "{uri}");
            assert!(
                headers
                    .get(header::CONTENT_ENCODING)
                    .is_some_and(|e| e == "gzip"),
                "{uri} is not sent gzip-compressed"
            );
            (raw, gz.len())
        })
    };
    let (html, home_gz) = fetch("/");
    assert_eq!(rows_in(&html), 50, "the home page does not list 50 rows");
    let assets = linked(&String::from_utf8_lossy(&html));
    assert!(
        assets.iter().any(|a| a.ends_with(".css")) && assets.iter().any(|a| a.ends_with(".js")),
        "no stylesheet or script found in the home page: {assets:?}"
    );
    println!("\n### Page weight: `/` logged out (50 items) and what it links, gzip\n");
    println!("| file | bytes | gzip bytes |");
    println!("|---|---:|---:|");
    println!("| `/` (HTML) | {} | {home_gz} |", html.len());
    let (mut raw_total, mut gz_total) = (html.len(), home_gz);
    for uri in &assets {
        let (raw, gz) = fetch(uri);
        println!("| `{uri}` | {} | {gz} |", raw.len());
        raw_total += raw.len();
        gz_total += gz;
    }
    println!("| **total** | {raw_total} | {gz_total} |");
    println!(
        "\nhome page + linked assets = {gz_total} bytes gzip (target ≤ 100,000): {}",
        met(gz_total <= 100_000)
    );
    // Not linked from `/`; an asset under an old hash is still served (with `no-cache`), the
    // bytes are the same.
    let (raw, gz) = fetch("/assets/bench/upload.js");
    println!(
        "\nupload.js: {gz} bytes gzip ({} bytes), loaded only by forms with file uploads, \
         not counted above",
        raw.len()
    );
}

fn main() {
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |name: &str| which.is_empty() || which.iter().any(|w| w == name);
    let n = env_num("MNODE_BENCH_RECORDS", 1_000_000);
    let dir = bench_dir().join("pages");
    std::fs::create_dir_all(&dir).unwrap();
    let path = repo(&dir, n);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let ui = rt.block_on(start(&path));
    if wants("list") {
        list(&rt, &ui, n);
    }
    if wants("wrk") {
        wrk_run(&ui);
    }
    if wants("weight") {
        weight(&rt, &ui);
    }
    ui.cancel.cancel();
    if let Err(e) = rt.block_on(ui.node.shutdown()) {
        eprintln!("node shutdown: {e}");
    }
}

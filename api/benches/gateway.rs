//! The gateway's figures (issue #5), each next to its reference measured in the same run:
//!
//! - `raw`: `GET /ipfs/{cid}?format=raw` of a 1 KiB record block with `wrk` (2 threads, 32
//!   connections), vs nginx serving the same bytes as a static file: requests/s, p50, p99.
//! - `file`: a 1 GiB file downloaded through `/ipfs/{cid}` with `curl -o /dev/null`, vs nginx
//!   serving the same file (best of 3 each).
//! - `records`: record creation through `POST /api/v1/records` (one client in a loop, and 16
//!   concurrent clients) and `POST /api/v1/records/batch` (100 per request), vs the same records
//!   signed and published in-process without HTTP (`NodeHandle::publish`, one by one and in
//!   batches of 100).
//!
//! The node runs in this process (the same `Node` and router `mnode daemon` serves) on a
//! 2-worker runtime; `wrk`, `curl` and nginx run as processes on the same two cores.
//!
//! Run: `cargo bench --workspace --bench gateway [-- raw|file|records]` (all by default). It
//! installs `wrk` and nginx with apt-get when missing. Work files go under `$MNODE_BENCH_DIR`
//! (default: a folder in the system temp dir). Sizes: `MNODE_BENCH_WRK_SECS` (10),
//! `MNODE_BENCH_FILE_MIB` (1024), `MNODE_BENCH_RECORDS` (4000).

#![allow(clippy::unwrap_used)]

use std::{
    net::SocketAddr,
    path::Path,
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

use mnode_bench_support::{Nginx, bench_dir, best_of, big_file, env_num, met, run, wrk};
use mnode_dag::{Keypair, Record, model::social::Post};
use mnode_node::{
    blobs::ImportMode,
    node::{Node, NodeHandle},
    repo::InitOptions,
};
use serde_json::{Value, json};

/// The API tests' node setup.
#[path = "../tests/support/mod.rs"]
mod support;

const TOKEN: &str = "bench-token";

struct Gateway {
    node: Node,
    addr: SocketAddr,
    cancel: tokio_util::sync::CancellationToken,
}

async fn start(dir: &Path) -> Gateway {
    let _ = std::fs::remove_dir_all(dir);
    let options = InitOptions {
        settings: support::loopback(&[]),
        ..InitOptions::default()
    };
    let node = support::spawn_node(dir, &options).await;
    let router = mnode_api::router(mnode_api::ApiState::new(node.handle(), TOKEN));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    tokio::spawn(mnode_api::serve(listener, router, cancel.clone()));
    Gateway { node, addr, cancel }
}

fn owner_key(h: &NodeHandle) -> Keypair {
    let repo = h.repo();
    repo.accounts().signing_key(&repo.info().owner).unwrap()
}

fn post(i: u64, text_len: usize) -> Post {
    let mut text = format!("post {i} ");
    while text.len() < text_len {
        text.push_str("lorem ipsum ");
    }
    text.truncate(text_len);
    Post {
        text,
        ..Post::default()
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

// ---------------------------------------------------------------------------------------------

fn raw(rt: &tokio::runtime::Runtime, g: &Gateway, dir: &Path) {
    let secs = u32::try_from(env_num("MNODE_BENCH_WRK_SECS", 10)).unwrap();
    let h = g.node.handle();
    let key = owner_key(&h);
    // A record block of about 1 KiB.
    let mut record = Record::create(&post(0, 900)).unwrap().sign(&key).unwrap();
    let mut len = 900;
    while record.bytes().len() < 1024 {
        len += 1024 - record.bytes().len();
        record = Record::create(&post(0, len)).unwrap().sign(&key).unwrap();
    }
    let bytes = record.bytes().to_vec();
    let cid = record.cid();
    rt.block_on(h.publish(vec![record])).unwrap();
    let root = dir.join("www");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("block.bin"), &bytes).unwrap();
    let nginx = Nginx::start(dir, &root);
    let ours = format!("http://{}/ipfs/{cid}?format=raw", g.addr);
    let theirs = format!("http://127.0.0.1:{}/block.bin", nginx.port);
    for url in [&ours, &theirs] {
        let got = Command::new("curl")
            .args(["-sf", url.as_str()])
            .output()
            .unwrap();
        assert!(got.stdout == bytes, "{url} serves other bytes");
    }
    println!(
        "\n### Raw block GET ({} bytes, wrk -t2 -c32 -d{secs}s)\n",
        bytes.len()
    );
    println!("| server | requests/s | p50 ms | p99 ms | errors | ratio |");
    println!("|---|---:|---:|---:|---:|---:|");
    let n = wrk(&theirs, 2, 32, secs);
    let m = wrk(&ours, 2, 32, secs);
    println!(
        "| nginx, static file (reference) | {:.0} | {} | {} | {} | 1.00 |",
        n.rps,
        ms(n.p50),
        ms(n.p99),
        n.errors
    );
    let ratio = m.rps / n.rps;
    println!(
        "| mnode `/ipfs/{{cid}}?format=raw` | {:.0} | {} | {} | {} | {ratio:.2} |",
        m.rps,
        ms(m.p50),
        ms(m.p99),
        m.errors
    );
    println!(
        "\nraw block requests/s = {ratio:.2} × nginx (target ≥ 0.50): {}",
        met(ratio >= 0.5 && m.errors == 0)
    );
}

fn file(rt: &tokio::runtime::Runtime, g: &Gateway, dir: &Path) {
    let size = env_num("MNODE_BENCH_FILE_MIB", 1024) << 20;
    let path = big_file(dir, "gateway", size);
    let added = rt
        .block_on(
            g.node
                .handle()
                .blobs()
                .add_path(&path, ImportMode::Copy, |_| {}),
        )
        .unwrap();
    let root = path.parent().unwrap();
    let nginx = Nginx::start(dir, root);
    let name = path.file_name().unwrap().to_str().unwrap();
    let curl = |url: &str| {
        best_of(3, || {
            let out = run(Command::new("curl").args([
                "-sf",
                "-o",
                "/dev/null",
                "-w",
                "%{time_total} %{size_download}",
                url,
            ]));
            let mut parts = out.split_whitespace();
            let secs: f64 = parts.next().unwrap().parse().unwrap();
            let got: u64 = parts.next().unwrap().parse().unwrap();
            assert_eq!(got, size, "{url} sent {got} bytes");
            Duration::from_secs_f64(secs)
        })
    };
    let t_nginx = curl(&format!("http://127.0.0.1:{}/{name}", nginx.port));
    let t_ours = curl(&format!("http://{}/ipfs/{}", g.addr, added.cid));
    let mbps = |t: Duration| size as f64 / t.as_secs_f64() / 1e6;
    println!(
        "\n### File download ({} MiB, curl -o /dev/null, best of 3)\n",
        size >> 20
    );
    println!("| server | seconds | MB/s | ratio |");
    println!("|---|---:|---:|---:|");
    println!(
        "| nginx, static file (reference) | {:.3} | {:.0} | 1.00 |",
        t_nginx.as_secs_f64(),
        mbps(t_nginx)
    );
    let ratio = t_nginx.as_secs_f64() / t_ours.as_secs_f64();
    println!(
        "| mnode `/ipfs/{{cid}}` | {:.3} | {:.0} | {ratio:.2} |",
        t_ours.as_secs_f64(),
        mbps(t_ours)
    );
    println!(
        "\nfile download = {ratio:.2} × nginx (target ≥ 0.70): {}",
        met(ratio >= 0.7)
    );
}

fn records(rt: &tokio::runtime::Runtime, g: &Gateway) {
    let n = env_num("MNODE_BENCH_RECORDS", 4000);
    let h = g.node.handle();
    let key = owner_key(&h);
    let base = format!("http://{}/api/v1", g.addr);
    let client = reqwest::Client::new();
    let body = |i: u64| json!({ "text": format!("bench post {i}") });
    let create = |client: reqwest::Client, url: String, v: Value| async move {
        let r = client
            .post(url)
            .bearer_auth(TOKEN)
            .json(&v)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    };
    let mut rows: Vec<(String, f64)> = Vec::new();

    // In-process references: sign and publish, one by one and in batches.
    let t = Instant::now();
    rt.block_on(async {
        for i in 0..n {
            let r = Record::create(&post(i, 16)).unwrap().sign(&key).unwrap();
            h.publish(vec![r]).await.unwrap();
        }
    });
    rows.push((
        "in-process `publish`, one record per call (reference)".into(),
        n as f64 / t.elapsed().as_secs_f64(),
    ));
    let t = Instant::now();
    rt.block_on(async {
        for chunk in (n..2 * n).collect::<Vec<_>>().chunks(100) {
            let batch: Vec<Record> = chunk
                .iter()
                .map(|&i| Record::create(&post(i, 16)).unwrap().sign(&key).unwrap())
                .collect();
            h.publish(batch).await.unwrap();
        }
    });
    rows.push((
        "in-process `publish`, 100 records per call (reference)".into(),
        n as f64 / t.elapsed().as_secs_f64(),
    ));

    // One client, one record per request.
    let t = Instant::now();
    rt.block_on(async {
        for i in 0..n {
            create(
                client.clone(),
                format!("{base}/records"),
                json!({ "kind": "social.post", "body": body(i) }),
            )
            .await;
        }
    });
    rows.push((
        "`POST /records`, 1 client".into(),
        n as f64 / t.elapsed().as_secs_f64(),
    ));

    // 16 clients at once.
    let t = Instant::now();
    rt.block_on(async {
        let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (client, next, url) = (client.clone(), next.clone(), format!("{base}/records"));
                tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= n {
                            break;
                        }
                        create(
                            client.clone(),
                            url.clone(),
                            json!({ "kind": "social.post", "body": body(n + i) }),
                        )
                        .await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    rows.push((
        "`POST /records`, 16 concurrent clients".into(),
        n as f64 / t.elapsed().as_secs_f64(),
    ));

    // Batches of 100.
    let t = Instant::now();
    rt.block_on(async {
        for chunk in (2 * n..3 * n).collect::<Vec<_>>().chunks(100) {
            let records: Vec<Value> = chunk
                .iter()
                .map(|&i| json!({ "kind": "social.post", "body": body(i) }))
                .collect();
            create(
                client.clone(),
                format!("{base}/records/batch"),
                json!({ "records": records }),
            )
            .await;
        }
    });
    rows.push((
        "`POST /records/batch`, 100 records per request, 1 client".into(),
        n as f64 / t.elapsed().as_secs_f64(),
    ));

    println!("\n### Record creation ({n} records per row)\n");
    println!("| path | records/s |");
    println!("|---|---:|");
    for (name, rate) in rows {
        println!("| {name} | {rate:.0} |");
    }
}

fn main() {
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |name: &str| which.is_empty() || which.iter().any(|w| w == name);
    let dir = bench_dir().join("gateway");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let g = rt.block_on(start(&dir.join("repo")));
    if wants("raw") {
        raw(&rt, &g, &dir);
    }
    if wants("file") {
        file(&rt, &g, &dir);
    }
    if wants("records") {
        records(&rt, &g);
    }
    g.cancel.cancel();
    if let Err(e) = rt.block_on(g.node.shutdown()) {
        eprintln!("node shutdown: {e}");
    }
}

//! What the node's integration tests share: a real node on 127.0.0.1, waiting on its events,
//! and (for the JS interop tests) a Node.js script run beside it that reports in JSON lines.
//!
//! The scripts need Node.js (>= 20.19) and `npm ci` in their folder. Without `node_modules` a
//! test prints why and passes, unless `CI` is set, where it fails.

#![allow(dead_code, unreachable_pub)]

use std::{
    io::{BufRead as _, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use mnode_node::{
    blobs::Blobs,
    node::{Node, NodeEvent, NodeHandle},
    repo::{InitOptions, Repo},
};
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::{broadcast, mpsc};

/// This crate's folder, as the test runner says when the test runs: a binary built in another
/// checkout that shares the target dir (and counts as fresh here) carries that checkout's path.
fn crate_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), Into::into)
}

/// How long one step may take: a node event, or the next line of a script (js-libp2p and Helia
/// start, dial and fetch within it).
pub const WAIT: Duration = Duration::from_secs(60);

/// A node with its own temp repo, listening on 127.0.0.1 port 0.
pub struct TestNode {
    pub node: Node,
    pub h: NodeHandle,
    _dir: TempDir,
}

pub async fn spawn() -> TestNode {
    spawn_with(&mnode_node::config::BlobsConfig::default()).await
}

/// [`spawn`] with file bytes where `blobs` says (a bucket, say).
pub async fn spawn_with(blobs: &mnode_node::config::BlobsConfig) -> TestNode {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("repo");
    let repo = Repo::init(
        &path,
        &InitOptions {
            passphrase: Some("test passphrase".into()),
            settings: vec![
                r#"network.listen=["/ip4/127.0.0.1/tcp/0"]"#.into(),
                "network.blobs_listen=127.0.0.1:0".into(),
                "network.gossip_heartbeat_ms=100".into(),
            ],
            ..InitOptions::default()
        },
    )
    .expect("init repo");
    let blobs = Blobs::open_with(&repo.blobs_dir(), &repo.tmp_dir(), blobs)
        .await
        .expect("blobs");
    let node = Node::spawn(repo, blobs).await.expect("spawn node");
    let h = node.handle();
    TestNode { node, h, _dir: dir }
}

impl TestNode {
    /// The node's first TCP address, with `/p2p/<peer id>`.
    pub async fn addr(&self) -> String {
        let info = self.h.info().await.expect("info");
        let addr = info
            .addrs
            .iter()
            .find(|a| a.contains("/tcp/"))
            .expect("a TCP listen address")
            .clone();
        if addr.contains("/p2p/") {
            addr
        } else {
            format!("{addr}/p2p/{}", info.peer_id)
        }
    }
}

/// Waits (up to [`WAIT`]) for the first event that `f` maps to `Some`.
pub async fn wait_for<T>(
    rx: &mut broadcast::Receiver<NodeEvent>,
    what: &str,
    f: impl FnMut(&NodeEvent) -> Option<T>,
) -> T {
    wait_within(rx, WAIT, what, f).await
}

/// Waits up to `limit` for the first event that `f` maps to `Some`.
pub async fn wait_within<T>(
    rx: &mut broadcast::Receiver<NodeEvent>,
    limit: Duration,
    what: &str,
    mut f: impl FnMut(&NodeEvent) -> Option<T>,
) -> T {
    let fut = async {
        loop {
            match rx.recv().await {
                Ok(ev) => {
                    if let Some(t) = f(&ev) {
                        return t;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(e) => panic!("event stream ended: {e}"),
            }
        }
    };
    tokio::time::timeout(limit, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// A folder of JS interop scripts, relative to the workspace root.
pub fn js_dir(rel: &str) -> PathBuf {
    let node_crate = &crate_dir();
    node_crate.parent().unwrap_or(node_crate).join(rel)
}

/// Whether the scripts in `rel` are installed; when they are not, outside CI, says so and
/// returns false.
pub fn js_installed(rel: &str) -> bool {
    let modules = js_dir(rel).join("node_modules");
    if modules.is_dir() {
        return true;
    }
    let in_ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    assert!(
        !in_ci,
        "{} is missing: run `npm ci` in {rel} (CI must run it)",
        modules.display()
    );
    println!(
        "SKIPPED: {} is missing; run `npm ci --prefix {rel}` to run this interop test",
        modules.display()
    );
    false
}

/// A running `node <script> <args>…` whose stdout is one JSON object a line. Killed when
/// dropped.
pub struct Script {
    child: Child,
    lines: mpsc::Receiver<std::io::Result<String>>,
    name: String,
}

impl Script {
    /// Starts `node script args…` in `rel`. Its stderr goes to the test's.
    pub fn start(rel: &str, script: &str, args: &[String]) -> Script {
        let mut child = Command::new("node")
            .current_dir(js_dir(rel))
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("could not run `node` (Node.js >= 20.19 must be on PATH)");
        let stdout = child.stdout.take().expect("stdout");
        // Blocking reads on a thread of their own (this crate's tokio has no process support).
        let (tx, lines) = mpsc::channel(64);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.blocking_send(line).is_err() {
                    break;
                }
            }
        });
        Script {
            child,
            lines,
            name: script.to_owned(),
        }
    }

    /// The next line, parsed; fails on a line that reports an error (`"event": "error"` or
    /// `"ok": false`), on the end of output, and after [`WAIT`].
    pub async fn next(&mut self, what: &str) -> Value {
        let line = tokio::time::timeout(WAIT, self.lines.recv())
            .await
            .unwrap_or_else(|_| panic!("{}: timed out waiting for {what}", self.name))
            .unwrap_or_else(|| panic!("{} exited before {what}", self.name))
            .expect("read the script's output");
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("{}: not a JSON line ({e}): {line}", self.name));
        assert!(
            v["event"] != "error" && v["ok"] != false,
            "{} failed before {what}: {}",
            self.name,
            v["error"].as_str().unwrap_or(&line)
        );
        v
    }

    /// The next line, which must have `"event": event`.
    pub async fn expect_event(&mut self, event: &str) -> Value {
        let v = self.next(event).await;
        assert_eq!(v["event"], event, "{}: unexpected line {v}", self.name);
        v
    }

    /// Closes stdin (the scripts' cue to stop) and waits for a clean exit.
    pub async fn finish(mut self) {
        drop(self.child.stdin.take());
        // Its stdout closes when it exits.
        loop {
            let line = tokio::time::timeout(WAIT, self.lines.recv())
                .await
                .unwrap_or_else(|_| panic!("{} did not stop", self.name));
            match line {
                Some(line) => println!("{}: {}", self.name, line.unwrap_or_default()),
                None => break,
            }
        }
        let status = self.child.wait().expect("wait for the script");
        assert!(status.success(), "{} exited with {status}", self.name);
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

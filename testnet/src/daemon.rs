//! A testnet node as its own `mnode daemon` process, driven over its HTTP API: dials, bans,
//! follows and publishing go through the admin routes, and its node events stream into the
//! ledger from `GET /api/v1/node/events`. It can be stopped cleanly (SIGTERM) or killed
//! (SIGKILL), and started again on the same repo.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use futures::StreamExt as _;
use libp2p::{Multiaddr, PeerId};
use mnode_api::client::{Client, ClientError};
use mnode_dag::{Record, cbor, json};
use mnode_node::node::Traffic;
use rustix::process::{Pid, Signal, kill_process};
use serde::Deserialize;
use tokio::{sync::Notify, task::JoinHandle};

use crate::net::{Ledger, note};

/// How long a daemon may take to write `daemon.json`, or to exit after SIGTERM.
const DAEMON_WAIT: Duration = Duration::from_secs(60);

/// The part of `<repo>/daemon.json` the testnet reads.
#[derive(Deserialize)]
struct DaemonFile {
    pid: u32,
    peer_id: String,
    addrs: Vec<String>,
    api: Option<String>,
}

/// A running daemon process.
pub(crate) struct Daemon {
    /// Taken once it has exited; a daemon dropped while running is killed.
    child: Option<Child>,
    pid: u32,
    pub(crate) client: Client,
    pub(crate) peer_id: PeerId,
    pub(crate) addr: Multiaddr,
    forwarder: JoinHandle<()>,
}

impl Daemon {
    /// Starts `mnode --repo <repo> daemon`, waits until it is ready, and subscribes to its
    /// node events before anything can happen to it. Its log goes to `<repo>/daemon.log`.
    pub(crate) async fn spawn(
        i: usize,
        mnode: &Path,
        repo: &Path,
        ledger: &Arc<Mutex<Ledger>>,
        notify: &Arc<Notify>,
    ) -> anyhow::Result<Daemon> {
        let log_path = repo.join("daemon.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("open {}", log_path.display()))?;
        let mut child = Command::new(mnode)
            .arg("--repo")
            .arg(repo)
            .arg("daemon")
            .env(
                "MNODE_LOG",
                std::env::var("MNODE_TESTNET_DAEMON_LOG")
                    .unwrap_or_else(|_| "warn,libp2p_kad=error".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {} for node {i}", mnode.display()))?;
        let pid = child.id();
        let file = match wait_ready(i, &mut child, pid, repo, &log_path).await {
            Ok(f) => f,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        let api = file.api.context("daemon.json names no API URL")?;
        let token =
            mnode_api::admin_token(repo).with_context(|| format!("read node {i}'s admin token"))?;
        let client = Client::new(api, token);
        let events = client
            .node_events()
            .await
            .with_context(|| format!("subscribe to node {i}'s events"))?;
        let forwarder = {
            let (ledger, notify) = (ledger.clone(), notify.clone());
            tokio::spawn(async move {
                let mut events = std::pin::pin!(events);
                while let Some(item) = events.next().await {
                    match item {
                        Ok(ev) => note(&ledger, &notify, i, ev, Instant::now()),
                        Err(ClientError::Lagged(k)) => {
                            tracing::warn!(node = i, "the testnet missed {k} events");
                        }
                        // The stream breaks off when the daemon dies.
                        Err(e) => {
                            tracing::debug!(node = i, "event stream ended: {e}");
                            return;
                        }
                    }
                }
            })
        };
        let peer_id: PeerId = file.peer_id.parse()?;
        let addr = file
            .addrs
            .iter()
            .find(|a| a.contains("/tcp/"))
            .context("a TCP listen address in daemon.json")?
            .parse()?;
        Ok(Daemon {
            child: Some(child),
            pid,
            client,
            peer_id,
            addr,
            forwarder,
        })
    }

    /// Bytes its libp2p transports moved in this run.
    pub(crate) async fn traffic(&self) -> anyhow::Result<Traffic> {
        let v = self.client.node().await?;
        Ok(Traffic {
            sent: v["traffic"]["sent"].as_u64().unwrap_or(0),
            received: v["traffic"]["received"].as_u64().unwrap_or(0),
        })
    }

    /// Its resident memory, bytes (Linux; `None` elsewhere or once it has gone).
    pub(crate) fn rss_bytes(&self) -> Option<u64> {
        crate::net::rss_of(&format!("/proc/{}/status", self.pid))
    }

    /// Stops it: SIGTERM and a clean shutdown, or with `kill` SIGKILL, as a crash would.
    /// Returns once the process has gone and every event it sent is in the ledger.
    pub(crate) async fn stop(mut self, i: usize, kill: bool) -> anyhow::Result<()> {
        let mut child = self.child.take().context("the daemon has already exited")?;
        if kill {
            child.kill()?;
        } else if let Some(pid) = Pid::from_raw(self.pid as i32) {
            kill_process(pid, Signal::TERM)
                .with_context(|| format!("SIGTERM node {i} (pid {})", self.pid))?;
        }
        let deadline = Instant::now() + DAEMON_WAIT;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                tracing::warn!(node = i, "no exit {DAEMON_WAIT:?} after SIGTERM: killed");
                child.kill()?;
                break child.wait()?;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        if !kill && !status.success() {
            tracing::warn!(node = i, "the daemon exited with {status}");
        }
        if tokio::time::timeout(Duration::from_secs(5), &mut self.forwarder)
            .await
            .is_err()
        {
            self.forwarder.abort();
        }
        Ok(())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.forwarder.abort();
    }
}

/// Publishes `records` with `client`, one `POST /dag/put` each.
pub(crate) async fn publish_over(client: &Client, records: &[Record]) -> anyhow::Result<()> {
    for r in records {
        let ipld = cbor::decode_ipld(r.bytes())?;
        let text = json::to_dag_json(&ipld)?;
        client
            .dag_put(&text)
            .await
            .with_context(|| format!("publish {}", r.cid()))?;
    }
    Ok(())
}

/// Waits for the daemon `pid` to write its `daemon.json` (a killed run's file may still be
/// there, with another pid).
async fn wait_ready(
    i: usize,
    child: &mut Child,
    pid: u32,
    repo: &Path,
    log: &Path,
) -> anyhow::Result<DaemonFile> {
    let path: PathBuf = repo.join("daemon.json");
    let deadline = Instant::now() + DAEMON_WAIT;
    loop {
        if let Some(status) = child.try_wait()? {
            bail!(
                "node {i}'s daemon exited with {status} before it was ready (log: {})",
                log.display()
            );
        }
        if let Ok(text) = std::fs::read(&path)
            && let Ok(file) = serde_json::from_slice::<DaemonFile>(&text)
            && file.pid == pid
        {
            return Ok(file);
        }
        if Instant::now() > deadline {
            bail!(
                "node {i}'s daemon was not ready within {DAEMON_WAIT:?} (log: {})",
                log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

//! `mnode daemon`: runs the node in the foreground until Ctrl-C or SIGTERM.

use super::say;
use std::{path::Path, process::ExitCode};

use anyhow::Context as _;
use mnode_node::node::{Node, NodeInfo};
use tracing_subscriber::EnvFilter;

use super::Ctx;

/// The file a running daemon writes into its repo.
pub(crate) const DAEMON_FILE: &str = "daemon.json";

/// What `daemon.json` holds.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct DaemonFile {
    pub(crate) pid: u32,
    pub(crate) peer_id: String,
    pub(crate) addrs: Vec<String>,
    pub(crate) blobs: serde_json::Value,
    pub(crate) api: Option<String>,
}

impl DaemonFile {
    fn new(info: &NodeInfo) -> anyhow::Result<Self> {
        Ok(Self {
            pid: std::process::id(),
            peer_id: info.peer_id.clone(),
            addrs: info.addrs.clone(),
            blobs: serde_json::to_value(&info.blobs)?,
            api: None,
        })
    }
}

/// Whether a process with this id is running (a daemon file may be left by a killed daemon).
pub(crate) fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Reads the daemon file of a repo, if a daemon wrote one.
pub(crate) fn read(repo: &Path) -> Option<DaemonFile> {
    let text = std::fs::read(repo.join(DAEMON_FILE)).ok()?;
    serde_json::from_slice(&text).ok()
}

pub(crate) fn run(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let repo = ctx.open()?;
    let filter = EnvFilter::try_from_env("MNODE_LOG")
        .or_else(|_| EnvFilter::try_new(&repo.config().log.level))
        .context("log.level is not a valid tracing filter")?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let rt = super::runtime()?;
    rt.block_on(async move {
        let path = repo.path().to_owned();
        let api_listen = repo.config().api.listen.clone();
        let token = mnode_api::admin_token(&path)
            .with_context(|| format!("cannot make the admin token in {}", path.display()))?;
        let listener = tokio::net::TcpListener::bind(&api_listen)
            .await
            .with_context(|| format!("cannot listen on {api_listen} (api.listen)"))?;
        let api_addr = listener.local_addr()?;
        let repo_owner = repo.info().owner.clone();
        let blobs = super::open_blobs(&repo).await?;
        let node = Node::spawn(repo, blobs).await?;
        let info = node.handle().info().await?;
        let cancel = tokio_util::sync::CancellationToken::new();
        let router = mnode_ui::app(
            mnode_api::ApiState::new(node.handle(), token).with_shutdown(cancel.clone()),
        );
        let server = tokio::spawn(mnode_api::serve(listener, router, cancel.clone()));
        let file = path.join(DAEMON_FILE);
        let mut daemon_file = DaemonFile::new(&info)?;
        daemon_file.api = Some(format!("http://{api_addr}"));
        let text = serde_json::to_vec_pretty(&daemon_file)?;
        mnode_node::keystore::write_private(&file, &text)
            .with_context(|| format!("cannot write {}", file.display()))?;
        tracing::info!(peer_id = %info.peer_id, "daemon ready");
        for a in &info.addrs {
            say!("listening on {a}");
        }
        say!("api on http://{api_addr}");
        say!("UI on http://{api_addr}/ (log in as {})", repo_owner);
        say!("daemon ready (peer id {})", info.peer_id);
        wait_for_signal().await;
        say!("shutting down");
        let _ = std::fs::remove_file(&file);
        cancel.cancel();
        if let Ok(Err(e)) = server.await {
            tracing::warn!("api server: {e}");
        }
        node.shutdown().await?;
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

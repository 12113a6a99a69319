//! `mnode daemon`: runs the node in the foreground until Ctrl-C or SIGTERM.
//!
//! The first signal stops it gracefully: no new requests, and those in flight (uploads) get
//! `api.shutdown_grace_secs` to finish. A second signal, or the end of that time, cuts them
//! off: an upload cut off leaves nothing behind (its temp file is removed, and a file enters the
//! store only once whole). A signal while the node itself stops ends the process at once; the
//! store is consistent after any stop, as the crash tests show.

use super::say;
use std::{io::IsTerminal as _, path::Path, process::ExitCode, time::Duration};

use anyhow::Context as _;
use mnode_api::Requests;
use mnode_node::{
    node::{Node, NodeEvent, NodeInfo},
    repo::Repo,
};
use serde_json::{Value, json};
use tokio::{sync::broadcast, task::JoinHandle};
use tracing_subscriber::EnvFilter;

use super::Ctx;

/// The file a running daemon writes into its repo.
pub(crate) const DAEMON_FILE: &str = "daemon.json";

/// How long the server may take to close its connections once the requests are cut off.
const CUT_WAIT: Duration = Duration::from_secs(1);
/// How long blocking work (a file write, a RocksDB call) may hold the exit.
const RUNTIME_STOP: Duration = Duration::from_secs(1);

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
    init_logs(&repo)?;
    let grace = Duration::from_secs(repo.config().api.shutdown_grace_secs);
    let rt = super::runtime()?;
    let result = rt.block_on(serve(repo, Events { json: ctx.out.json }, grace));
    // What a stop without waiting left running (a download to a slow client) is dropped here.
    rt.shutdown_timeout(RUNTIME_STOP);
    result
}

/// Logs on stderr, coloured only for a terminal (and unless `NO_COLOR` is set).
fn init_logs(repo: &Repo) -> anyhow::Result<()> {
    let mut filter = EnvFilter::try_from_env("MNODE_LOG")
        .or_else(|_| EnvFilter::try_new(&repo.config().log.level))
        .context("log.level is not a valid tracing filter")?;
    // libp2p's swarm logs the peer id at INFO as it starts; the daemon prints it already. A
    // filter that names libp2p_swarm itself is taken as given.
    if !filter.to_string().contains("libp2p_swarm") {
        filter = filter.add_directive(
            "libp2p_swarm=warn"
                .parse()
                .context("the libp2p_swarm log directive")?,
        );
    }
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && !no_color)
        .init();
    Ok(())
}

async fn serve(repo: Repo, events: Events, grace: Duration) -> anyhow::Result<ExitCode> {
    // Before anything starts: a signal is then never left to its default action, which would
    // kill the process mid-start.
    let mut signals = Signals::new().context("cannot listen for signals")?;
    let path = repo.path().to_owned();
    let api_listen = repo.config().api.listen.clone();
    let token = mnode_api::admin_token(&path)
        .with_context(|| format!("cannot make the admin token in {}", path.display()))?;
    let listener = tokio::net::TcpListener::bind(&api_listen)
        .await
        .with_context(|| format!("cannot listen on {api_listen} (api.listen)"))?;
    let api_addr = listener.local_addr()?;
    let owner = repo.info().owner.clone();
    let blobs = super::open_blobs(&repo).await?;
    let node = Node::spawn(repo, blobs).await?;
    let info = node.handle().info().await?;
    let node_events = node.handle().events();
    let cancel = tokio_util::sync::CancellationToken::new();
    let router =
        mnode_ui::app(mnode_api::ApiState::new(node.handle(), token).with_shutdown(cancel.clone()));
    let requests = Requests::default();
    let server = tokio::spawn(mnode_api::serve_tracked(
        listener,
        router,
        cancel.clone(),
        requests.clone(),
    ));
    let file = path.join(DAEMON_FILE);
    let mut daemon_file = DaemonFile::new(&info)?;
    daemon_file.api = Some(format!("http://{api_addr}"));
    let text = serde_json::to_vec_pretty(&daemon_file)?;
    mnode_node::keystore::write_private(&file, &text)
        .with_context(|| format!("cannot write {}", file.display()))?;
    events.started(&info, &daemon_file, &owner);
    let forward = events
        .json
        .then(|| tokio::spawn(forward(node_events, events)));

    signals.recv().await;
    let _ = std::fs::remove_file(&file);
    events.stopping(&requests, grace);
    cancel.cancel();
    stop_server(server, &requests, &mut signals, grace, events).await;
    tokio::select! {
        result = node.shutdown() => result?,
        () = signals.recv() => events.stopping_now(Cut::Signal, &requests, grace),
    }
    if let Some(task) = forward {
        task.abort();
    }
    events.stopped();
    Ok(ExitCode::SUCCESS)
}

/// Waits for the server to answer the requests in flight, for `grace` at most or until the
/// next signal, then cuts them off.
async fn stop_server(
    mut server: JoinHandle<std::io::Result<()>>,
    requests: &Requests,
    signals: &mut Signals,
    grace: Duration,
    events: Events,
) {
    let cut = tokio::select! {
        ended = &mut server => return server_ended(ended),
        () = tokio::time::sleep(grace) => Cut::Grace,
        () = signals.recv() => Cut::Signal,
    };
    events.stopping_now(cut, requests, grace);
    requests.cut();
    // The handlers end at once; a response still streaming to a slow client does not hold the
    // stop (it ends with the runtime).
    match tokio::time::timeout(CUT_WAIT, &mut server).await {
        Ok(ended) => server_ended(ended),
        Err(_) => server.abort(),
    }
}

fn server_ended(ended: Result<std::io::Result<()>, tokio::task::JoinError>) {
    match ended {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("api server: {e}"),
        Err(e) => tracing::warn!("api server: {e}"),
    }
}

/// With `--json`, the node's events as JSON lines.
async fn forward(mut rx: broadcast::Receiver<NodeEvent>, events: Events) {
    loop {
        match rx.recv().await {
            Ok(event) => match serde_json::to_value(&event) {
                Ok(v) => events.line(&v),
                Err(e) => tracing::warn!("cannot write an event as JSON: {e}"),
            },
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                events.line(&json!({ "event": "lagged", "missed": missed }));
            }
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
}

/// Why the daemon stopped waiting for the requests in flight.
#[derive(Debug, Clone, Copy)]
enum Cut {
    /// Another signal.
    Signal,
    /// `api.shutdown_grace_secs` went by.
    Grace,
}

/// How the daemon tells what happens. Text: the start (the addresses to use) on stdout; what
/// happens while it stops on stderr, in order with the log lines of the stop. `--json`: one
/// JSON object a line on stdout (`started`, the node's events, `stopping`, `stopping_now`,
/// `stopped`), each with its `event`.
#[derive(Debug, Clone, Copy)]
struct Events {
    json: bool,
}

impl Events {
    fn line(self, v: &Value) {
        say!("{v}");
    }

    fn started(self, info: &NodeInfo, file: &DaemonFile, owner: &str) {
        let api = file.api.clone().unwrap_or_default();
        if self.json {
            self.line(&json!({
                "event": "started",
                "pid": file.pid,
                "peer_id": info.peer_id,
                "addrs": info.addrs,
                "blobs": file.blobs,
                "api": api,
                "ui": format!("{api}/"),
                "owner": owner,
            }));
            return;
        }
        for a in &info.addrs {
            say!("listening on {a}");
        }
        say!("api on {api}");
        say!("UI on {api}/ (log in as {owner})");
        say!("daemon ready (peer id {})", info.peer_id);
    }

    fn stopping(self, requests: &Requests, grace: Duration) {
        let (uploads, others) = (requests.uploads(), requests.others());
        if self.json {
            self.line(&json!({
                "event": "stopping",
                "uploads": uploads,
                "requests": others,
                "grace_secs": grace.as_secs(),
            }));
        } else if uploads + others == 0 {
            eprintln!("stopping");
        } else {
            eprintln!(
                "stopping: waiting for {} (up to {} s; Ctrl-C again to stop now)",
                in_flight(uploads, others),
                grace.as_secs()
            );
        }
    }

    fn stopping_now(self, cut: Cut, requests: &Requests, grace: Duration) {
        let (uploads, others) = (requests.uploads(), requests.others());
        if self.json {
            let reason = match cut {
                Cut::Signal => "signal",
                Cut::Grace => "grace_period",
            };
            self.line(&json!({
                "event": "stopping_now",
                "reason": reason,
                "uploads": uploads,
                "requests": others,
            }));
            return;
        }
        let what = in_flight(uploads, others);
        match cut {
            _ if uploads + others == 0 => eprintln!("stopping now"),
            Cut::Signal => eprintln!("stopping now: cutting off {what}"),
            Cut::Grace => eprintln!(
                "stopping now: {what} still running after {} s, cut off",
                grace.as_secs()
            ),
        }
    }

    fn stopped(self) {
        if self.json {
            self.line(&json!({ "event": "stopped" }));
        } else {
            eprintln!("stopped");
        }
    }
}

/// "1 upload", "2 uploads and 1 request".
fn in_flight(uploads: usize, others: usize) -> String {
    let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    match (uploads, others) {
        (0, n) => count(n, "request"),
        (n, 0) => count(n, "upload"),
        (u, n) => format!("{} and {}", count(u, "upload"), count(n, "other request")),
    }
}

/// SIGINT and SIGTERM, each registered once for the daemon's life, so that the signal after the
/// first is seen too (`tokio::signal::ctrl_c` keeps its handler after the first Ctrl-C, and
/// later ones would do nothing).
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// The next signal.
    async fn recv(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

//! The repo's HTTP API for one command: the running daemon's, or, when no daemon runs, the
//! same API served for the length of the command by a node started in this process on the
//! repo with no network listeners ([`Local`]). Verbs that go through [`with_api`] keep their
//! rules once, in `mnode-api`, and answer the same with and without a daemon.

use std::collections::HashMap;

use anyhow::{Context as _, anyhow};
use mnode_api::client::Client;
use mnode_dag::when;
use mnode_node::{node::Node, repo::Repo};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{Ctx, say};

/// A string field of a JSON answer, empty when absent.
pub(crate) fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// Settings that keep the in-process node off the network: no listeners, no bootstrap peers,
/// no mDNS, file transfers bound to loopback.
const OFFLINE: [&str; 4] = [
    "network.listen=[]",
    "network.bootstrap=[]",
    "network.mdns=false",
    "network.blobs_listen=127.0.0.1:0",
];

/// The repo's node and its API, run in this process while a command needs them.
pub(crate) struct Local {
    node: Node,
    cancel: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Local {
    /// Opens the repo, starts its node off the network and serves the API on a loopback port
    /// with a one-time admin token; answers a client for it.
    pub(crate) async fn start(ctx: &Ctx) -> anyhow::Result<(Self, Client)> {
        let mut settings = ctx.config.clone();
        settings.extend(OFFLINE.map(String::from));
        let repo = Repo::open(&ctx.repo_path(), std::env::vars(), &settings)?;
        let blobs = super::open_blobs(&repo).await?;
        let node = Node::spawn(repo, blobs).await?;
        let mut secret = [0u8; 32];
        rand::fill(&mut secret);
        let token: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot open a loopback port for the repo's API")?;
        let addr = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let state =
            mnode_api::ApiState::new(node.handle(), token.clone()).with_shutdown(cancel.clone());
        let server = tokio::spawn(mnode_api::serve(
            listener,
            mnode_api::router(state),
            cancel.clone(),
        ));
        let local = Self {
            node,
            cancel,
            server,
        };
        Ok((local, Client::new(format!("http://{addr}"), token)))
    }

    /// Stops the server and the node, and flushes the store.
    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        self.cancel.cancel();
        if let Ok(Err(e)) = self.server.await {
            tracing::debug!("in-process api: {e}");
        }
        self.node.shutdown().await?;
        Ok(())
    }
}

/// Runs `f` against the daemon's API, or, with no daemon, against the repo's own API served
/// in this process.
pub(crate) fn with_api<T>(
    ctx: &Ctx,
    f: impl AsyncFnOnce(&Client) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let rt = super::runtime()?;
    if let Some(client) = super::net::daemon_client(ctx)? {
        return rt.block_on(f(&client));
    }
    rt.block_on(async {
        let (local, client) = Local::start(ctx).await?;
        let result = f(&client).await;
        let stopped = local.stop().await;
        let out = result?;
        stopped?;
        Ok(out)
    })
}

/// A did:key shortened for reading: `did:key:z6MkhaXg…9dQe`.
pub(crate) fn short_did(did: &str) -> String {
    let key = did.strip_prefix("did:key:").unwrap_or(did);
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 14 {
        return did.to_owned();
    }
    let head: String = chars[..8].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("did:key:{head}…{tail}")
}

/// The first line of a text, cut to `max` characters.
pub(crate) fn line(text: &str, max: usize) -> String {
    let first = text.lines().next().unwrap_or_default();
    if first.chars().count() > max {
        let cut: String = first.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        first.to_owned()
    }
}

/// Names of authors for people to read: a local account's handle, else a profile's name, else
/// a short did.
#[derive(Default)]
pub(crate) struct Names(HashMap<String, String>);

impl Names {
    /// The local accounts' handles (an admin token lists them; anyone else starts empty).
    pub(crate) async fn load(client: &Client) -> Self {
        let mut names = Self::default();
        if let Ok(v) = client.accounts().await {
            for a in v["accounts"].as_array().into_iter().flatten() {
                if let Some(did) = a["did"].as_str() {
                    names.0.insert(did.to_owned(), s(&a["handle"]).to_owned());
                }
            }
        }
        names
    }

    pub(crate) async fn get(&mut self, client: &Client, did: &str) -> String {
        if let Some(n) = self.0.get(did) {
            return n.clone();
        }
        let q = [
            ("kind", "core.profile".to_owned()),
            ("author", did.to_owned()),
            ("limit", "1".to_owned()),
        ];
        let name = match client.list(&q).await {
            Ok(v) => v["items"][0]["summary"]
                .as_str()
                .filter(|n| !n.is_empty())
                .map(str::to_owned),
            Err(_) => None,
        }
        .unwrap_or_else(|| short_did(did));
        self.0.insert(did.to_owned(), name.clone());
        name
    }
}

/// The did of `who` (a did, or a local account's handle), or of the acting account.
pub(crate) async fn did_of(
    client: &Client,
    ctx: &Ctx,
    who: Option<&str>,
) -> anyhow::Result<String> {
    let who = match who.or(ctx.as_handle.as_deref()) {
        Some(w) if w.starts_with("did:") => return Ok(w.to_owned()),
        Some(h) => client
            .account(h)
            .await
            .with_context(|| format!("{h:?} is neither a did:key nor an account here"))?,
        None => client.me().await?,
    };
    who["did"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("the account {:?} has no signing key", s(&who["handle"])))
}

/// Prints `v` as JSON with `--json`, else runs `text`.
pub(crate) fn print_json_or(
    ctx: &Ctx,
    v: &Value,
    text: impl FnOnce(),
) -> anyhow::Result<std::process::ExitCode> {
    if ctx.out.json {
        ctx.out.print_json(v)?;
    } else {
        text();
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// The handle of the account a command acts as: `--as`, else the one the client's token is
/// for (the node's owner, for the CLI's admin token).
pub(crate) async fn acting(client: &Client, ctx: &Ctx) -> anyhow::Result<String> {
    match &ctx.as_handle {
        Some(h) => Ok(h.clone()),
        None => Ok(s(&client.me().await?["handle"]).to_owned()),
    }
}

/// Prints a listing's items as aligned rows: id, time, author, kind, summary.
pub(crate) async fn print_items(client: &Client, items: &[Value], next: Option<&str>) {
    let mut names = Names::load(client).await;
    let mut rows = Vec::new();
    for i in items {
        let author = names.get(client, s(&i["author"])).await;
        rows.push((
            s(&i["id"]).to_owned(),
            when::since(i["created"].as_u64().unwrap_or(0)),
            author,
            s(&i["type"]).to_owned(),
            line(s(&i["summary"]), 60),
        ));
    }
    let width = rows.iter().map(|r| r.2.chars().count()).max().unwrap_or(0);
    if rows.is_empty() {
        say!("nothing yet");
    }
    for (id, time, author, kind, summary) in rows {
        say!("{id}  {time}  {author:width$}  {kind:14}  {summary}");
    }
    if let Some(next) = next {
        say!("more: --cursor {next}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_dids_keep_both_ends() {
        let did = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK";
        assert_eq!(short_did(did), "did:key:z6MkhaXg…2doK");
    }
}

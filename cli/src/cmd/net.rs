//! Commands that need the network, and so a running daemon: `peers`, `connect`, `follow`,
//! `unfollow`, `post`, `fetch`.

use super::say;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use mnode_api::client::Client;
use serde_json::{Value, json};

use super::{Ctx, daemon};

/// A client for the daemon running on the repo, if one is.
pub(crate) fn daemon_client(ctx: &Ctx) -> anyhow::Result<Option<Client>> {
    let path = ctx.repo_path();
    let Some(file) = daemon::read(&path) else {
        return Ok(None);
    };
    if !daemon::alive(file.pid) {
        return Ok(None);
    }
    let Some(api) = file.api else {
        return Ok(None);
    };
    let token = std::fs::read_to_string(path.join(mnode_api::TOKEN_FILE))
        .with_context(|| format!("cannot read the admin token in {}", path.display()))?;
    Ok(Some(Client::new(api, token.trim())))
}

/// The running daemon's client, or an error that says how to start one.
fn require(ctx: &Ctx, what: &str) -> anyhow::Result<Client> {
    daemon_client(ctx)?.ok_or_else(|| needs_daemon(ctx, what))
}

/// The error of a command that needs a running daemon when none runs: how to start one.
pub(crate) fn needs_daemon(ctx: &Ctx, what: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{what} needs a running node: start one with `mnode daemon{}`",
        ctx.repo
            .as_ref()
            .map(|r| format!(" --repo {}", r.display()))
            .unwrap_or_default()
    )
}

#[derive(Debug, clap::Args)]
pub(crate) struct ConnectArgs {
    /// The peer's multiaddr, ending in /p2p/<peer id> (from its `mnode id`).
    addr: String,
}

#[derive(Debug, clap::Args)]
pub(crate) struct FollowArgs {
    /// An author (did:key:…) or a topic (/mnode/1/author|branch|thread/…).
    target: Option<String>,
    /// Follow a forum branch by its id.
    #[arg(long, conflicts_with_all = ["target", "thread"])]
    branch: Option<String>,
    /// Follow a thread (or a fork of one) by its id.
    #[arg(long, conflicts_with_all = ["target", "branch"])]
    thread: Option<String>,
}

impl FollowArgs {
    fn topic(&self) -> anyhow::Result<String> {
        Ok(match (&self.target, &self.branch, &self.thread) {
            (Some(t), _, _) => t.clone(),
            (_, Some(b), _) => format!("/mnode/1/branch/{b}"),
            (_, _, Some(t)) => format!("/mnode/1/thread/{t}"),
            _ => bail!("say what to follow: a did:key, --branch ID or --thread ID"),
        })
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct PostArgs {
    /// The text.
    text: String,
    /// Post into a forum branch (its id).
    #[arg(long)]
    branch: Option<String>,
    /// Post into a thread (its id).
    #[arg(long)]
    thread: Option<String>,
    /// A tag such as music/jazz (repeatable).
    #[arg(long = "tag")]
    tags: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct FetchArgs {
    /// The file's CID.
    cid: String,
}

fn print(ctx: &Ctx, value: &Value, text: impl FnOnce(&Value)) -> anyhow::Result<()> {
    if ctx.out.json {
        ctx.out.print_json(value)
    } else {
        text(value);
        Ok(())
    }
}

pub(crate) fn peers(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let client = require(ctx, "listing peers")?;
    let v = super::runtime()?.block_on(client.peers())?;
    print(ctx, &v, |v| {
        let peers = v["peers"].as_array().cloned().unwrap_or_default();
        if peers.is_empty() {
            say!("no peers connected");
        }
        for p in peers {
            say!(
                "{} {}",
                p["peer_id"].as_str().unwrap_or_default(),
                p["agent"].as_str().unwrap_or_default()
            );
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn connect(args: ConnectArgs, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let client = require(ctx, "connecting")?;
    let v = super::runtime()?.block_on(client.connect(&args.addr))?;
    print(ctx, &v, |v| {
        say!("connected to {}", v["peer_id"].as_str().unwrap_or_default());
    })?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn follow(args: FollowArgs, follow: bool, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let client = require(ctx, "following")?;
    let topic = args.topic()?;
    let v = super::runtime()?.block_on(client.follow(&topic, follow))?;
    print(ctx, &v, |v| {
        if follow {
            say!("following {}", v["following"].as_str().unwrap_or_default());
        } else {
            say!(
                "unfollowed {}",
                v["unfollowed"].as_str().unwrap_or_default()
            );
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn follows(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let client = require(ctx, "listing follows")?;
    let v = super::runtime()?.block_on(client.follows())?;
    print(ctx, &v, |v| {
        for t in v["follows"].as_array().cloned().unwrap_or_default() {
            say!("{}", t.as_str().unwrap_or_default());
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn post(args: PostArgs, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let mut body = json!({ "text": args.text, "media": [], "tags": args.tags });
    if let Some(b) = &args.branch {
        body["branch"] = json!({ "/": b });
    }
    if let Some(t) = &args.thread {
        body["thread"] = json!({ "/": t });
    }
    let Some(client) = daemon_client(ctx)? else {
        // No daemon: store it locally; it is gossiped when the node next runs and peers sync.
        return super::record::create_local(ctx, "social.post", body);
    };
    let v =
        super::runtime()?.block_on(client.create("social.post", body, ctx.as_handle.as_deref()))?;
    print(ctx, &v, |v| {
        say!("posted {}", v["id"].as_str().unwrap_or_default());
    })?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn fetch(args: FetchArgs, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let client = require(ctx, "fetching from peers")?;
    let v = super::runtime()?.block_on(client.fetch(&args.cid))?;
    print(ctx, &v, |v| {
        say!(
            "fetched {} ({} bytes)",
            v["cid"].as_str().unwrap_or_default(),
            v["size"]
        );
    })?;
    Ok(ExitCode::SUCCESS)
}

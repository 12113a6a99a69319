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
    /// An author (did:key:…) or a topic (/mnode/1/author|branch|thread|group/…).
    target: Option<String>,
    /// Follow a forum branch by its id.
    #[arg(long, conflicts_with_all = ["target", "thread", "group"])]
    branch: Option<String>,
    /// Follow a thread (or a fork of one) by its id.
    #[arg(long, conflicts_with_all = ["target", "branch", "group"])]
    thread: Option<String>,
    /// Follow a group by its id: its members, roles and everything it owns.
    #[arg(long, conflicts_with_all = ["target", "branch", "thread"])]
    group: Option<String>,
}

impl FollowArgs {
    fn topic(&self) -> anyhow::Result<String> {
        Ok(
            match (&self.target, &self.branch, &self.thread, &self.group) {
                (Some(t), ..) => t.clone(),
                (_, Some(b), ..) => format!("/mnode/1/branch/{b}"),
                (_, _, Some(t), _) => format!("/mnode/1/thread/{t}"),
                (.., Some(g)) => format!("/mnode/1/group/{g}"),
                _ => bail!("say what to follow: a did:key, --branch ID, --thread ID or --group ID"),
            },
        )
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
    /// A file's CID, or a record's (a release, say): the record, what it links and every file
    /// in it, which the node then keeps (pinned).
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

/// `fetch` of a record: the record, what it links and every file in it, with a bar over the
/// files; fails (after keeping what came) if anything is missing.
fn fetch_dag(
    ctx: &Ctx,
    client: &Client,
    rt: &tokio::runtime::Runtime,
    cid: &str,
) -> anyhow::Result<ExitCode> {
    let pb = super::files::count_bar(ctx, "files")?;
    let v = rt.block_on(client.fetch_dag_progress(cid, |line| {
        if let (Some(files), Some(held)) = (line["files"].as_u64(), line["held"].as_u64()) {
            pb.set_length(files);
            pb.set_position(held);
            let bytes = line["bytes"].as_u64().unwrap_or_default();
            pb.set_message(indicatif::HumanBytes(bytes).to_string());
        }
    }))?;
    pb.finish_and_clear();
    print(ctx, &v, |v| {
        let n = |k: &str| v[k].as_u64().unwrap_or_default();
        say!(
            "fetched {cid}: {} records and blocks ({} from peers), {} files of {} ({} moved, {} \
             held before); pinned",
            n("blocks"),
            n("blocks_fetched"),
            n("files"),
            indicatif::HumanBytes(n("size")),
            indicatif::HumanBytes(n("transferred")),
            n("held_before"),
        );
    })?;
    let missing = v["missing"].as_array().cloned().unwrap_or_default();
    if missing.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    if !ctx.out.json {
        say!(
            "{} missing (no peer gave them; run this again to retry):",
            missing.len()
        );
        for m in missing.iter().take(10) {
            say!(
                "  {}: {}",
                m["cid"].as_str().unwrap_or_default(),
                m["reason"].as_str().unwrap_or_default()
            );
        }
        if missing.len() > 10 {
            say!("  and {} more", missing.len() - 10);
        }
    }
    Ok(ExitCode::FAILURE)
}

pub(crate) fn peers(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let client = require(ctx, "listing peers")?;
    let v = super::runtime()?.block_on(client.peers())?;
    print(ctx, &v, |v| {
        let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        let first_addr = |p: &Value| p["addrs"].get(0).map(s).unwrap_or_default();
        let peers = v["peers"].as_array().cloned().unwrap_or_default();
        if peers.is_empty() {
            say!("no peers connected");
        } else {
            say!("connected:");
        }
        for p in &peers {
            let via = if p["relayed"] == Value::Bool(true) {
                "relayed"
            } else {
                "direct"
            };
            say!(
                "  {}  {}  {via}  {}",
                s(&p["peer_id"]),
                s(&p["agent"]),
                first_addr(p)
            );
        }
        say!("{}", super::init::reachability(&v["nat"]));
        let away: Vec<Value> = v["remembered"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|p| p["connected"] != Value::Bool(true))
            .collect();
        if !away.is_empty() {
            say!("remembered, not connected (dialled again when the daemon starts):");
        }
        for p in &away {
            say!(
                "  {}  last seen {}  {}",
                s(&p["peer_id"]),
                mnode_dag::when::since(p["last_seen"].as_u64().unwrap_or(0)),
                first_addr(p)
            );
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn connect(args: ConnectArgs, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let client = require(ctx, "connecting")?;
    if args.addr.trim().is_empty() {
        bail!(
            "say which address to connect to: a multiaddr ending in /p2p/<peer id>, from the other node's `mnode id`"
        );
    }
    let v = super::runtime()?
        .block_on(client.connect(&args.addr))
        .map_err(|e| {
            // The node's error names the address; an error from elsewhere may not.
            let text = e.to_string();
            if text.contains(&args.addr) {
                anyhow::Error::new(e)
            } else {
                anyhow::Error::new(e).context(format!("cannot connect to {}", args.addr))
            }
        })?;
    print(ctx, &v, |v| {
        say!("connected to {}", v["peer_id"].as_str().unwrap_or_default());
    })?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn follow(args: FollowArgs, follow: bool, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let client = require(ctx, "following")?;
    let topic = args.topic()?;
    let rt = super::runtime()?;
    let before = if follow {
        Value::Null
    } else {
        rt.block_on(client.follows())?
    };
    let mut v = rt.block_on(client.follow(&topic, follow))?;
    if !follow {
        // The answer names the topic as the node spells it, which the list of follows uses.
        let followed = before["follows"]
            .as_array()
            .is_some_and(|l| l.contains(&v["unfollowed"]));
        v["was_following"] = Value::Bool(followed);
    }
    print(ctx, &v, |v| {
        if follow {
            say!("following {}", v["following"].as_str().unwrap_or_default());
        } else if v["was_following"] == Value::Bool(false) {
            say!(
                "not following {}: nothing to unfollow (`mnode follows` lists what is followed)",
                v["unfollowed"].as_str().unwrap_or_default()
            );
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
    // Without a daemon the post is stored in the repo; it is gossiped when the node next runs
    // and its followers catch up.
    super::record::create(ctx, "social.post", body)
}

pub(crate) fn fetch(args: FetchArgs, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let client = require(ctx, "fetching from peers")?;
    let cid = super::parse_cid(&args.cid)?;
    let rt = super::runtime()?;
    if mnode_dag::cids::link_kind(&cid) == mnode_dag::cids::LinkKind::Record {
        return fetch_dag(ctx, &client, &rt, &cid.to_string());
    }
    let pb = super::files::progress_bar(0, ctx)?;
    let mut v = rt.block_on(client.fetch_progress(&args.cid, |held, size| {
        if let Some(size) = size {
            pb.set_length(size);
        }
        pb.set_position(held);
    }))?;
    pb.finish_and_clear();
    // Nothing moved for a file of some size: it was here already (the fetch kept it).
    let held = v["transferred"].as_u64() == Some(0) && v["size"].as_u64().is_some_and(|n| n > 0);
    v["held"] = Value::Bool(held);
    print(ctx, &v, |v| {
        let cid = v["cid"].as_str().unwrap_or_default();
        if held {
            say!(
                "file {cid} ({} bytes) is held here already: nothing to fetch",
                v["size"]
            );
        } else {
            say!("fetched {cid} ({} bytes)", v["size"]);
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

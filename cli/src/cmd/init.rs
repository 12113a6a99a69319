//! `mnode init`, `mnode id`

use super::say;
use std::{path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use mnode_node::repo::{InitOptions, Repo};
use serde_json::json;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Handle of the owner account (an admin).
    #[arg(long, default_value = "owner")]
    handle: String,
    /// Email of the owner account (default: HANDLE@localhost).
    #[arg(long)]
    email: Option<String>,
    /// Read the owner's password from this file (default: a strong one is generated and shown once).
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// Leave the owner without a password (HTTP login disabled until `mnode account passwd`).
    #[arg(long, conflicts_with = "password_file")]
    no_password: bool,
}

pub(crate) fn run(args: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let path = ctx.repo_path();
    let (password, generated) = if args.no_password {
        (None, false)
    } else if let Some(file) = &args.password_file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        (Some(text.trim_end_matches(['\n', '\r']).to_owned()), false)
    } else {
        (Some(generate_password()), true)
    };
    let opts = InitOptions {
        handle: Some(args.handle.clone()),
        email: args.email.clone(),
        password: password.clone(),
        passphrase: std::env::var(mnode_node::keystore::PASSPHRASE_ENV).ok(),
        settings: ctx.config.clone(),
        node_key: None,
    };
    let repo = Repo::init(&path, &opts)?;
    let owner = repo
        .accounts()
        .get(&args.handle)?
        .context("the owner account is missing")?;
    let owner_did = owner.did().map(ToString::to_string).unwrap_or_default();
    if ctx.out.json {
        ctx.out.print_json(&json!({
            "repo": path,
            "node": repo.info().node.to_string(),
            "owner": { "handle": owner.handle, "email": owner.email, "did": owner_did },
            "password": if generated { password } else { None },
        }))?;
    } else {
        say!("initialised mnode repo at {}", path.display());
        say!("node     {}", repo.info().node);
        say!("owner    {} <{}> {}", owner.handle, owner.email, owner_did);
        if let (true, Some(p)) = (generated, &password) {
            say!("password {p}");
            say!(
                "         (shown once: keep it to log in over HTTP; change it with `mnode account passwd`)"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// 15 characters from a 57-letter alphabet (about 87 bits), in groups of five.
fn generate_password() -> String {
    let mut bytes = [0u8; 15];
    rand::fill(&mut bytes);
    let alphabet = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let chars: Vec<char> = bytes
        .iter()
        .map(|b| alphabet[*b as usize % alphabet.len()] as char)
        .collect();
    chars
        .chunks(5)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

pub(crate) fn id(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    if let Some(client) = super::net::daemon_client(ctx)? {
        return id_from_daemon(ctx, &client);
    }
    let repo = ctx.open()?;
    let info = repo.info();
    let owner = repo.accounts().get(&info.owner)?;
    let owner_did = owner
        .as_ref()
        .and_then(|o| o.did())
        .map(ToString::to_string);
    let v = json!({
        "node": info.node.to_string(),
        "owner": info.owner,
        "owner_did": owner_did,
        "repo": repo.path(),
    });
    print_id(ctx, v)
}

/// `mnode id` while a daemon holds the repo: what the daemon reports.
pub(crate) fn id_from_daemon(
    ctx: &Ctx,
    client: &mnode_api::client::Client,
) -> anyhow::Result<ExitCode> {
    let mut v = super::runtime()?.block_on(client.node())?;
    v["repo"] = json!(ctx.repo_path());
    if let Some(file) = super::daemon::read(&ctx.repo_path()) {
        v["api"] = json!(file.api);
        v["pid"] = json!(file.pid);
    }
    print_id(ctx, v)
}

/// A node's reachability (`nat` in `GET /node`) in one line.
pub(crate) fn reachability(nat: &serde_json::Value) -> String {
    let status = match nat["status"].as_str() {
        Some("public") => "reachable from outside its network",
        Some("private") => "behind a router (peers reach it through its relays)",
        _ => "reachability not known yet",
    };
    let relays = nat["relays"].as_array().map_or(0, Vec::len);
    let punched = nat["hole_punches"].as_u64().unwrap_or(0);
    let failed = nat["hole_punches_failed"].as_u64().unwrap_or(0);
    format!(
        "network  {status}; slots on {relays} relay{}; hole punches {punched} made, {failed} failed",
        if relays == 1 { "" } else { "s" }
    )
}

fn print_id(ctx: &Ctx, v: serde_json::Value) -> anyhow::Result<ExitCode> {
    if ctx.out.json {
        ctx.out.print_json(&v)?;
        return Ok(ExitCode::SUCCESS);
    }
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
    say!("node     {}", s("node"));
    say!("owner    {} {}", s("owner"), s("owner_did"));
    say!("repo     {}", v["repo"].as_str().unwrap_or_default());
    if let Some(peer) = v["peer_id"].as_str() {
        say!("peer id  {peer}");
        for a in v["addrs"].as_array().into_iter().flatten() {
            say!("address  {}", a.as_str().unwrap_or_default());
        }
        say!("{}", reachability(&v["nat"]));
    } else {
        say!("daemon   not running (start it with `mnode daemon`)");
    }
    Ok(ExitCode::SUCCESS)
}

//! `mnode pin …`

use super::say;
use std::process::ExitCode;

use serde_json::json;

use super::{Ctx, parse_cid};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Pin a record (with its history and everything it links) or a file.
    Add {
        /// The CID (an item id, a version or a file).
        cid: String,
        /// Pin only this block, not what it links.
        #[arg(long)]
        direct: bool,
    },
    /// Remove a pin.
    Rm {
        /// The CID.
        cid: String,
    },
    /// List pins.
    Ls,
}

pub(crate) fn run(command: Command, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    if let Some(client) = super::net::daemon_client(ctx)? {
        return run_remote(command, ctx, &client);
    }
    let repo = ctx.open()?;
    let store = repo.store();
    match command {
        Command::Add { cid, direct } => {
            let cid = parse_cid(&cid)?;
            let known = super::runtime()?.block_on(async {
                let blobs = super::open_blobs(&repo).await?;
                let has = mnode_node::car::have(store, &blobs, &cid).await;
                blobs.shutdown().await?;
                anyhow::Ok(has?)
            })?;
            if !known {
                anyhow::bail!("{cid} is not on this node; fetch or add it first");
            }
            store.pin(&cid, !direct)?;
            if ctx.out.json {
                ctx.out
                    .print_json(&json!({ "pinned": cid.to_string(), "recursive": !direct }))?;
            } else {
                say!("pinned {cid}{}", if direct { " (direct)" } else { "" });
            }
        }
        Command::Rm { cid } => {
            let cid = parse_cid(&cid)?;
            if !store.unpin(&cid)? {
                anyhow::bail!("{cid} is not pinned");
            }
            if ctx.out.json {
                ctx.out
                    .print_json(&json!({ "unpinned": cid.to_string() }))?;
            } else {
                say!("unpinned {cid}");
            }
        }
        Command::Ls => {
            let pins = store.pins()?;
            if ctx.out.json {
                let v: Vec<_> = pins.iter().map(|(c, p)| json!({ "cid": c.to_string(), "recursive": p.recursive, "created": p.created })).collect();
                ctx.out.print_json(&json!(v))?;
            } else {
                for (c, p) in pins {
                    say!("{c} {}", if p.recursive { "recursive" } else { "direct" });
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The same through a running daemon.
fn run_remote(
    command: Command,
    ctx: &Ctx,
    client: &mnode_api::client::Client,
) -> anyhow::Result<ExitCode> {
    let rt = super::runtime()?;
    match command {
        Command::Add { cid, direct } => {
            let v = rt.block_on(client.pin(&cid, !direct))?;
            if ctx.out.json {
                ctx.out.print_json(&v)?;
            } else {
                say!(
                    "pinned {}{}",
                    v["pinned"].as_str().unwrap_or_default(),
                    if direct { " (direct)" } else { "" }
                );
            }
        }
        Command::Rm { cid } => {
            let v = rt.block_on(client.unpin(&cid))?;
            if ctx.out.json {
                ctx.out.print_json(&v)?;
            } else {
                say!("unpinned {}", v["unpinned"].as_str().unwrap_or_default());
            }
        }
        Command::Ls => {
            let v = rt.block_on(client.pins())?;
            let pins = v["pins"].as_array().cloned().unwrap_or_default();
            if ctx.out.json {
                ctx.out.print_json(&json!(pins))?;
            } else {
                for p in pins {
                    say!(
                        "{} {}",
                        p["cid"].as_str().unwrap_or_default(),
                        if p["recursive"] == true {
                            "recursive"
                        } else {
                            "direct"
                        }
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

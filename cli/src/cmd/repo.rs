//! `mnode repo gc|verify|stat`

use super::say;
use std::process::ExitCode;

use mnode_node::maintenance;
use serde_json::{Value, json};

use super::{Ctx, runtime};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Remove records and files no pin reaches.
    Gc,
    /// Re-hash every block and file, re-verify every record, check every index entry.
    Verify,
    /// Counts and sizes.
    Stat,
}

pub(crate) fn run(command: Command, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    if let Some(client) = super::net::daemon_client(ctx)? {
        let rt = runtime()?;
        return match command {
            Command::Gc => print_gc(ctx, &rt.block_on(client.repo_gc())?),
            Command::Verify => print_verify(ctx, &rt.block_on(client.repo_verify())?),
            Command::Stat => print_stat(ctx, &rt.block_on(client.repo_stat())?),
        };
    }
    let repo = ctx.open()?;
    let store = repo.store();
    let rt = runtime()?;
    let blobs = rt.block_on(super::open_blobs(&repo))?;
    let result = rt.block_on(async {
        match command {
            Command::Gc => print_gc(ctx, &json!(maintenance::gc(store, &blobs).await?)),
            Command::Verify => {
                let report = maintenance::verify(store, &blobs).await?;
                print_verify(
                    ctx,
                    &json!({ "ok": report.problems.is_empty(), "report": report }),
                )
            }
            Command::Stat => {
                let mut v = json!(maintenance::stat(store, &blobs).await?);
                v["repo"] = json!(repo.path());
                v["accounts"] = json!(repo.accounts().list()?.len());
                print_stat(ctx, &v)
            }
        }
    });
    rt.block_on(blobs.shutdown())?;
    result
}

fn print_gc(ctx: &Ctx, v: &Value) -> anyhow::Result<ExitCode> {
    if ctx.out.json {
        ctx.out.print_json(v)?;
    } else {
        say!(
            "removed {} items, {} blocks ({} bytes), {} files",
            v["items"],
            v["blocks"],
            v["bytes"],
            v["blobs"]
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_verify(ctx: &Ctx, v: &Value) -> anyhow::Result<ExitCode> {
    let ok = v["ok"] == true;
    if ctx.out.json {
        ctx.out.print_json(v)?;
    } else {
        let r = &v["report"];
        say!(
            "checked {} blocks, {} records, {} items, {} index entries, {} files, {} pins",
            r["blocks"],
            r["records"],
            r["items"],
            r["index_entries"],
            r["blobs"],
            r["pins"]
        );
        for p in r["problems"].as_array().into_iter().flatten() {
            say!(
                "FAIL {}: {}",
                p["what"].as_str().unwrap_or_default(),
                p["problem"].as_str().unwrap_or_default()
            );
        }
        say!("result {}", if ok { "OK" } else { "FAILED" });
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_stat(ctx: &Ctx, v: &Value) -> anyhow::Result<ExitCode> {
    if ctx.out.json {
        ctx.out.print_json(v)?;
        return Ok(ExitCode::SUCCESS);
    }
    let r = &v["records"];
    say!("repo        {}", v["repo"].as_str().unwrap_or_default());
    say!(
        "items       {} ({} deleted, {} forked)",
        r["items"],
        r["deleted"],
        r["forked"]
    );
    say!("versions    {}", r["versions"]);
    say!("blocks      {} ({} bytes)", r["blocks"], r["block_bytes"]);
    say!("files       {} ({} bytes)", v["files"], v["file_bytes"]);
    say!("pins        {}", r["pins"]);
    say!("accounts    {}", v["accounts"]);
    for (kind, n) in r["kinds"].as_object().into_iter().flatten() {
        say!("  {kind:20} {n}");
    }
    Ok(ExitCode::SUCCESS)
}

//! `mnode repo gc|verify|stat`

use std::process::ExitCode;

use serde_json::json;

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
    let repo = ctx.open()?;
    let store = repo.store();
    let rt = runtime()?;
    let blobs = rt.block_on(super::open_blobs(&repo))?;
    let result = rt.block_on(async {
        match command {
            Command::Gc => {
                let marked = store.mark()?;
                let mut report = store.sweep(&marked)?;
                let unreached: Vec<_> = blobs
                    .list()
                    .await?
                    .into_iter()
                    .map(|(cid, _)| cid)
                    .filter(|cid| !marked.blobs.contains(cid))
                    .collect();
                report.blobs = blobs.delete_many(&unreached).await? as u64;
                if ctx.out.json {
                    ctx.out.print_json(&json!(report))?;
                } else {
                    println!(
                        "removed {} items, {} blocks ({} bytes), {} files",
                        report.items, report.blocks, report.bytes, report.blobs
                    );
                }
                anyhow::Ok(ExitCode::SUCCESS)
            }
            Command::Verify => {
                let mut report = store.verify()?;
                report.blobs = blobs.list().await?.len() as u64;
                for cid in blobs.verify_all().await? {
                    report.problems.push(mnode_node::maintenance::Problem {
                        what: cid.to_string(),
                        problem: "file contents do not hash to its CID".into(),
                    });
                }
                let ok = report.problems.is_empty();
                if ctx.out.json {
                    ctx.out.print_json(&json!({ "ok": ok, "report": report }))?;
                } else {
                    println!(
                        "checked {} blocks, {} records, {} items, {} index entries, {} files",
                        report.blocks,
                        report.records,
                        report.items,
                        report.index_entries,
                        report.blobs
                    );
                    for p in &report.problems {
                        println!("FAIL {}: {}", p.what, p.problem);
                    }
                    println!("result {}", if ok { "OK" } else { "FAILED" });
                }
                Ok(if ok {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                })
            }
            Command::Stat => {
                let stats = store.stats()?;
                let files = blobs.list().await?;
                let file_bytes: u64 = files.iter().map(|(_, s)| s).sum();
                let accounts = repo.accounts().list()?.len();
                if ctx.out.json {
                    ctx.out.print_json(&json!({
                        "repo": repo.path(),
                        "records": stats,
                        "files": files.len(),
                        "file_bytes": file_bytes,
                        "accounts": accounts,
                    }))?;
                } else {
                    println!("repo        {}", repo.path().display());
                    println!(
                        "items       {} ({} deleted, {} forked)",
                        stats.items, stats.deleted, stats.forked
                    );
                    println!("versions    {}", stats.versions);
                    println!("blocks      {} ({} bytes)", stats.blocks, stats.block_bytes);
                    println!("files       {} ({} bytes)", files.len(), file_bytes);
                    println!("pins        {}", stats.pins);
                    println!("accounts    {accounts}");
                    for (kind, n) in &stats.kinds {
                        println!("  {kind:20} {n}");
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    });
    rt.block_on(blobs.shutdown())?;
    result
}

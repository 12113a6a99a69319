//! `mnode dag get|put|export|import`

use std::{
    fs::File,
    io::{BufReader, BufWriter},
    path::PathBuf,
    process::ExitCode,
};

use anyhow::{Context as _, anyhow, bail};
use mnode_dag::{Record, cbor, cids, json};
use mnode_node::car;
use serde_json::json;

use super::{Ctx, parse_cid, runtime};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Print a block as DAG-JSON.
    Get {
        /// The block's CID.
        cid: String,
    },
    /// Store a block given as DAG-JSON on standard input; records are fully verified.
    Put,
    /// Write a record (with its versions and everything it links, files included) as a CAR.
    Export {
        /// The record's id (or a version's CID, or a file's CID).
        cid: String,
        /// The CAR file to write.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Read a CAR into the repo, verifying every block, and pin its roots.
    Import {
        /// The CAR file (`-` for standard input).
        file: PathBuf,
    },
}

pub(crate) fn run(command: Command, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let repo = ctx.open()?;
    let store = repo.store();
    match command {
        Command::Get { cid } => {
            let cid = parse_cid(&cid)?;
            if cids::link_kind(&cid) == cids::LinkKind::Blob {
                bail!("{cid} is a file; print it with `mnode cat {cid}`");
            }
            let bytes = store
                .block(&cid)?
                .ok_or_else(|| anyhow!("no block {cid} on this node"))?;
            let value = json::to_json_value(&cbor::decode_ipld(&bytes)?)?;
            if ctx.out.json {
                ctx.out.print_json(&value)?;
            } else {
                println!("{}", serde_json::to_string_pretty(&value)?);
            }
        }
        Command::Put => {
            let text =
                std::io::read_to_string(std::io::stdin()).context("cannot read standard input")?;
            let ipld = json::from_dag_json(&text)
                .map_err(|e| anyhow!("standard input is not DAG-JSON: {e}"))?;
            let bytes = cbor::encode(&ipld)?;
            let is_record = matches!(&ipld, mnode_dag::Ipld::Map(m) if m.contains_key("sig") && m.contains_key("author"));
            let cid = if is_record {
                let record = Record::decode_owned(bytes)?;
                store.put(record.clone())?;
                store.pin(&record.id(), true)?;
                record.cid()
            } else {
                let cid = cids::record_cid(&bytes);
                store.put_block(&cid, &bytes)?;
                store.pin(&cid, true)?;
                cid
            };
            if ctx.out.json {
                ctx.out
                    .print_json(&json!({ "cid": cid.to_string(), "record": is_record }))?;
            } else {
                println!("{cid}");
            }
        }
        Command::Export { cid, output } => {
            let cid = parse_cid(&cid)?;
            let file = File::create(&output)
                .with_context(|| format!("cannot create {}", output.display()))?;
            let report = runtime()?.block_on(async {
                let blobs = super::open_blobs(&repo).await?;
                let result = car::export(store, &blobs, &cid, BufWriter::new(file)).await;
                blobs.shutdown().await?;
                anyhow::Ok(result?)
            });
            let report = match report {
                Ok(r) => r,
                Err(e) => {
                    let _ = std::fs::remove_file(&output);
                    return Err(e);
                }
            };
            if ctx.out.json {
                ctx.out.print_json(
                    &json!({ "root": cid.to_string(), "path": output, "report": report }),
                )?;
            } else {
                println!(
                    "wrote {} blocks ({} files, {} bytes) to {}",
                    report.blocks,
                    report.files,
                    report.bytes,
                    output.display()
                );
                if !report.missing.is_empty() {
                    println!(
                        "{} linked blocks are not on this node and were left out",
                        report.missing.len()
                    );
                }
            }
        }
        Command::Import { file } => {
            let input: Box<dyn std::io::Read> = if file.as_os_str() == "-" {
                Box::new(std::io::stdin().lock())
            } else {
                Box::new(BufReader::new(
                    File::open(&file).with_context(|| format!("cannot open {}", file.display()))?,
                ))
            };
            let report = runtime()?.block_on(async {
                let blobs = super::open_blobs(&repo).await?;
                let result = car::import(store, &blobs, input).await;
                blobs.shutdown().await?;
                anyhow::Ok(result?)
            })?;
            let ok = report.failures.is_empty();
            if ctx.out.json {
                ctx.out.print_json(&json!({ "ok": ok, "report": report }))?;
            } else {
                println!(
                    "imported {} blocks: {} new records, {} already here, {} files, {} other blocks",
                    report.blocks, report.records, report.duplicates, report.files, report.other
                );
                for root in &report.roots {
                    println!("pinned {root}");
                }
                for (what, why) in &report.failures {
                    println!("FAIL {what}: {why}");
                }
            }
            if !ok {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

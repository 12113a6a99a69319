//! `mnode dag get|put|export|import`

use super::say;
use std::{
    fs::File,
    io::{BufReader, BufWriter, Read, Write},
    path::PathBuf,
    process::ExitCode,
};

use anyhow::{Context as _, anyhow, bail};
use indicatif::ProgressBar;
use mnode_dag::{Record, cbor, cids, json};
use mnode_node::car;
use serde_json::{Value, json};

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
    /// Read a CAR into the repo, verifying every block, and pin its roots (all or nothing: a
    /// CAR with a bad block is refused whole).
    Import {
        /// The CAR file (`-` for standard input).
        file: PathBuf,
    },
}

pub(crate) fn run(command: Command, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    if let Some(client) = super::net::daemon_client(ctx)? {
        return run_remote(command, ctx, &client);
    }
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
                say!("{}", serde_json::to_string_pretty(&value)?);
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
                say!("{cid}");
            }
        }
        Command::Export { cid, output } => {
            let cid = parse_cid(&cid)?;
            let file = File::create(&output)
                .with_context(|| format!("cannot create {}", output.display()))?;
            let pb = super::files::progress_bar(0, ctx)?;
            let report = runtime()?.block_on(async {
                let blobs = super::open_blobs(&repo).await?;
                let out = Counted::new(BufWriter::new(file), pb.clone());
                let result = car::export(store, &blobs, &cid, out).await;
                blobs.shutdown().await?;
                anyhow::Ok(result?)
            });
            pb.finish_and_clear();
            let report = match report {
                Ok(r) => r,
                Err(e) => {
                    let _ = std::fs::remove_file(&output);
                    return Err(e);
                }
            };
            print_export(
                ctx,
                &json!({ "root": cid.to_string(), "path": output, "report": report }),
            )?;
        }
        Command::Import { file } => {
            let (input, len): (Box<dyn std::io::Read>, u64) = if file.as_os_str() == "-" {
                (Box::new(std::io::stdin().lock()), 0)
            } else {
                let f =
                    File::open(&file).with_context(|| format!("cannot open {}", file.display()))?;
                let len = f.metadata().map(|m| m.len()).unwrap_or_default();
                (Box::new(BufReader::new(f)), len)
            };
            let pb = super::files::progress_bar(len, ctx)?;
            let input = Counted::new(input, pb.clone());
            let report = runtime()?.block_on(async {
                let blobs = super::open_blobs(&repo).await?;
                let result = car::import(store, &blobs, input).await;
                blobs.shutdown().await?;
                anyhow::Ok(result?)
            });
            pb.finish_and_clear();
            return print_import(ctx, &json!(report?));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A reader or writer that moves a progress bar by the bytes that pass.
struct Counted<T> {
    inner: T,
    pb: ProgressBar,
}

impl<T> Counted<T> {
    fn new(inner: T, pb: ProgressBar) -> Self {
        Self { inner, pb }
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pb.inc(n as u64);
        Ok(n)
    }
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.pb.inc(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn print_export(ctx: &Ctx, v: &Value) -> anyhow::Result<()> {
    if ctx.out.json {
        ctx.out.print_json(v)?;
        return Ok(());
    }
    let r = &v["report"];
    say!(
        "wrote {} blocks ({} files, {} bytes) to {}",
        r["blocks"],
        r["files"],
        r["bytes"],
        v["path"].as_str().unwrap_or_default()
    );
    let missing = r["missing"].as_array().map_or(0, Vec::len);
    if missing > 0 {
        say!("{missing} linked blocks are not on this node and were left out");
    }
    Ok(())
}

fn print_import(ctx: &Ctx, report: &Value) -> anyhow::Result<ExitCode> {
    let failures = report["failures"].as_array().cloned().unwrap_or_default();
    let ok = failures.is_empty();
    if ctx.out.json {
        ctx.out.print_json(&json!({ "ok": ok, "report": report }))?;
    } else {
        if ok {
            say!(
                "imported {} blocks: {} new records, {} already here, {} files, {} other blocks",
                report["blocks"],
                report["records"],
                report["duplicates"],
                report["files"],
                report["other"]
            );
        } else {
            say!(
                "nothing was imported: the CAR was refused ({} blocks read, {} refused)",
                report["blocks"],
                failures.len()
            );
        }
        for root in report["roots"].as_array().into_iter().flatten() {
            say!("pinned {}", root.as_str().unwrap_or_default());
        }
        for f in &failures {
            say!(
                "FAIL {}: {}",
                f[0].as_str().unwrap_or_default(),
                f[1].as_str().unwrap_or_default()
            );
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_block(ctx: &Ctx, value: &Value) -> anyhow::Result<()> {
    if ctx.out.json {
        ctx.out.print_json(value)?;
    } else {
        say!("{}", serde_json::to_string_pretty(value)?);
    }
    Ok(())
}

/// The same through a running daemon: it reads and writes CAR files on this machine's disk
/// (the daemon runs here), so paths are made absolute.
fn run_remote(
    command: Command,
    ctx: &Ctx,
    client: &mnode_api::client::Client,
) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    match command {
        Command::Get { cid } => {
            let v = rt.block_on(client.dag_block(&cid))?;
            print_block(ctx, &v["value"])?;
        }
        Command::Put => {
            let text =
                std::io::read_to_string(std::io::stdin()).context("cannot read standard input")?;
            let v = rt.block_on(client.dag_put(&text))?;
            if ctx.out.json {
                ctx.out.print_json(&v)?;
            } else {
                say!("{}", v["cid"].as_str().unwrap_or_default());
            }
        }
        Command::Export { cid, output } => {
            let path = std::path::absolute(&output)?;
            let pb = super::files::progress_bar(0, ctx)?;
            let v = rt.block_on(client.dag_export(&cid, &path, |n| pb.set_position(n)));
            pb.finish_and_clear();
            let v = v?;
            let mut v = v;
            v["root"] = json!(cid);
            print_export(ctx, &v)?;
        }
        Command::Import { file } => {
            if file.as_os_str() == "-" {
                bail!(
                    "a daemon holds the repo and reads CARs from files: save the CAR to a file \
                     and import that, or stop the daemon"
                );
            }
            let path = std::path::absolute(&file)?;
            let pb = super::files::progress_bar(0, ctx)?;
            let report = rt.block_on(client.dag_import(&path, |n, size| {
                pb.set_length(size);
                pb.set_position(n);
            }));
            pb.finish_and_clear();
            let report = report?;
            return print_import(ctx, &report);
        }
    }
    Ok(ExitCode::SUCCESS)
}

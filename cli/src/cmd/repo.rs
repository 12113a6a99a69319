//! `mnode repo gc|verify|stat|migrate-blobs`

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
    /// Move the files' bytes to the S3 bucket that the blobs.s3 settings name, or back to the
    /// local disk; each file is checked after the move. Stop the daemon first. An interrupted
    /// move picks up where it stopped when run again.
    MigrateBlobs {
        /// Where the files go.
        #[arg(long, value_enum)]
        to: Target,
    },
}

/// Where `migrate-blobs` moves files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Target {
    /// The bucket of the blobs.s3 settings (blobs.store becomes s3 first).
    S3,
    /// The repo's own disk (blobs.store becomes local once all are back).
    Local,
}

pub(crate) fn run(command: Command, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    if let Command::MigrateBlobs { to } = command {
        return migrate(ctx, to);
    }
    if let Some(client) = super::net::daemon_client(ctx)? {
        let rt = runtime()?;
        return match command {
            Command::Gc => print_gc(ctx, &rt.block_on(client.repo_gc())?),
            Command::Verify => print_verify(ctx, &rt.block_on(client.repo_verify())?),
            Command::Stat => print_stat(ctx, &rt.block_on(client.repo_stat())?),
            Command::MigrateBlobs { .. } => unreachable!("handled above"),
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
            Command::MigrateBlobs { .. } => unreachable!("handled above"),
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

/// `mnode repo migrate-blobs --to s3|local`.
fn migrate(ctx: &Ctx, to: Target) -> anyhow::Result<ExitCode> {
    if super::net::daemon_client(ctx)?.is_some() {
        anyhow::bail!(
            "the daemon is running and holds the repo: stop it, run migrate-blobs, start it again"
        );
    }
    let mut repo = ctx.open()?;
    let mut config = repo.config().blobs.clone();
    config.store = mnode_node::config::BlobStoreKind::S3;
    let rt = runtime()?;
    // Opening checks that the bucket answers before anything changes.
    let blobs = rt.block_on(mnode_node::blobs::Blobs::open_with(
        &repo.blobs_dir(),
        &repo.tmp_dir(),
        &config,
    ))?;
    let bucket = blobs.bucket().unwrap_or_default().to_owned();
    let pb = super::files::progress_bar(0, ctx)?;
    let show = |m: &mnode_node::blobs::Migration| {
        pb.set_length(m.bytes_total);
        pb.set_position(m.bytes);
        pb.set_message(format!("{}/{} files", m.files, m.files_total));
    };
    let moved = match to {
        Target::S3 => {
            // From here on the node looks in the bucket, and on the disk for what is not
            // moved yet: an interrupted move leaves a node that serves every file.
            repo.set_blob_store(mnode_node::config::BlobStoreKind::S3)?;
            rt.block_on(blobs.migrate_to_bucket(show))
        }
        Target::Local => rt.block_on(blobs.migrate_to_local(show)),
    };
    pb.finish_and_clear();
    rt.block_on(blobs.shutdown())?;
    let moved = moved?;
    if to == Target::Local {
        repo.set_blob_store(mnode_node::config::BlobStoreKind::Local)?;
    }
    if ctx.out.json {
        ctx.out.print_json(&json!({
            "to": if to == Target::S3 { "s3" } else { "local" },
            "bucket": bucket,
            "moved": moved,
        }))?;
    } else {
        let place = match to {
            Target::S3 => format!("to {bucket}"),
            Target::Local => format!("from {bucket} to the local disk"),
        };
        say!(
            "moved {} files ({} bytes) {place}",
            moved.files,
            moved.bytes
        );
        if moved.stayed > 0 {
            say!(
                "{} files added in place (--in-place) stay where they were added",
                moved.stayed
            );
        }
        say!(
            "blobs.store is {} in {}",
            if to == Target::S3 { "s3" } else { "local" },
            repo.path().join(mnode_node::config::FILE_NAME).display()
        );
    }
    Ok(ExitCode::SUCCESS)
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
    if let Some(bucket) = v["bucket"].as_str() {
        say!("            in {bucket}");
    }
    say!("pins        {}", r["pins"]);
    say!("accounts    {}", v["accounts"]);
    for (kind, n) in r["kinds"].as_object().into_iter().flatten() {
        say!("  {kind:20} {n}");
    }
    Ok(ExitCode::SUCCESS)
}

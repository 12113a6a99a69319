//! One module per command.

pub(crate) mod account;
pub(crate) mod api;
pub(crate) mod config;
pub(crate) mod daemon;
pub(crate) mod dag;
pub(crate) mod discuss;
pub(crate) mod example;
pub(crate) mod files;
pub(crate) mod group;
pub(crate) mod init;
pub(crate) mod message;
pub(crate) mod net;
pub(crate) mod pin;
pub(crate) mod record;
pub(crate) mod repo;
pub(crate) mod seed;
pub(crate) mod text;
pub(crate) mod types;
pub(crate) mod verify;

use std::{fmt, io::Write, path::PathBuf};

use anyhow::{Context as _, anyhow};
use mnode_dag::{Cid, Keypair};
use mnode_node::repo::Repo;

/// Prints a line on standard output, like `println!`, except that a reader who stops reading
/// (`mnode record list | head -1`) ends the program quietly instead of with a panic.
macro_rules! say {
    () => {
        $crate::cmd::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cmd::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use say;

/// Writes to standard output. When the reader has gone away (a closed pipe) the program exits
/// with success, as `head` expects of the programs it reads from; any other failure to write
/// ends it with a message and status 1. What a command wrote to the repo before printing is
/// already committed.
pub(crate) fn write_out(args: fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        exit_on_write_error(&e);
    }
}

/// Ends the program after a failed write to standard output (see [`write_out`]).
pub(crate) fn exit_on_write_error(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: cannot write to standard output: {e}");
    std::process::exit(1);
}

/// Whether an error was a write to a pipe nobody reads any more.
pub(crate) fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// How to print results.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    pub(crate) json: bool,
}

/// Fields that hold a time. The API gives times as milliseconds since the epoch; the CLI's
/// JSON gives them as ISO 8601 (RFC 3339, UTC) so that a person or `jq` can read them.
const TIME_FIELDS: [&str; 6] = [
    "created",
    "updated",
    "since",
    "expires",
    "last_seen",
    "time",
];

impl Output {
    /// Prints `value` as pretty JSON on stdout, times as ISO 8601.
    pub(crate) fn print_json(&self, value: &serde_json::Value) -> anyhow::Result<()> {
        let mut value = value.clone();
        iso_times(&mut value);
        let mut stdout = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut stdout, &value)?;
        writeln!(stdout)?;
        Ok(())
    }
}

/// Fields that hold a signed record's own DAG-JSON (or its body), which is printed exactly as
/// signed.
const SIGNED_FIELDS: [&str; 2] = ["record", "body"];

/// Rewrites every [`TIME_FIELDS`] number in `value` as an ISO 8601 string, outside the
/// records themselves.
fn iso_times(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                match v.as_u64() {
                    Some(ms) if TIME_FIELDS.contains(&k.as_str()) => {
                        *v = serde_json::Value::String(mnode_dag::when::iso(ms));
                    }
                    _ if SIGNED_FIELDS.contains(&k.as_str()) => {}
                    _ => iso_times(v),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(iso_times),
        _ => {}
    }
}

/// What every repo command needs: where the repo is, who is acting, config overrides.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) repo: Option<PathBuf>,
    pub(crate) as_handle: Option<String>,
    pub(crate) config: Vec<String>,
    pub(crate) out: Output,
}

impl Ctx {
    pub(crate) fn repo_path(&self) -> PathBuf {
        Repo::locate(self.repo.as_deref())
    }

    /// Opens the repo with the environment's and the flags' settings.
    pub(crate) fn open(&self) -> anyhow::Result<Repo> {
        Ok(Repo::open(
            &self.repo_path(),
            std::env::vars(),
            &self.config,
        )?)
    }

    /// The account acting (`--as`, else the owner) and its signing key.
    pub(crate) fn signer(&self, repo: &Repo) -> anyhow::Result<(String, Keypair)> {
        let handle = self
            .as_handle
            .clone()
            .unwrap_or_else(|| repo.info().owner.clone());
        let key = repo
            .accounts()
            .signing_key(&handle)
            .with_context(|| format!("cannot sign as {handle:?}"))?;
        Ok((handle, key))
    }
}

/// Parses a CID given on the command line.
pub(crate) fn parse_cid(text: &str) -> anyhow::Result<Cid> {
    mnode_dag::cids::parse(text).map_err(|e| anyhow!("{e}"))
}

/// Opens the repo's blob store. The caller holds the repo (RocksDB's lock keeps other processes
/// out), so every temp upload left in `tmp/` belongs to a process that died: remove them all.
pub(crate) async fn open_blobs(repo: &Repo) -> anyhow::Result<mnode_node::blobs::Blobs> {
    let blobs = mnode_node::blobs::Blobs::open_with(
        &repo.blobs_dir(),
        &repo.tmp_dir(),
        &repo.config().blobs,
    )
    .await?;
    blobs.clean_tmp(std::time::Duration::ZERO)?;
    Ok(blobs)
}

/// A tokio runtime for the commands that touch the blob store.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

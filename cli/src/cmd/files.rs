//! `mnode add`, `get`, `cat`, `publish release`.

use super::say;
use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context as _, anyhow, bail};
use futures_lite::StreamExt as _;
use indicatif::{ProgressBar, ProgressStyle};
use mnode_dag::{
    Cid, Keypair, Link, Record, TitleData,
    cids::{self, LinkKind},
    model::{
        art::{Artist, Release, ReleaseKind},
        core::{FileData, FileKind},
    },
};
use mnode_node::{
    blobs::{Blobs, ImportMode},
    repo::Repo,
    store::Store,
};
use serde_json::json;

use super::{Ctx, parse_cid, runtime};

#[derive(Debug, clap::Args)]
pub(crate) struct AddArgs {
    /// Files and folders (folders are added with everything under them).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Reference the files where they are instead of copying them into the repo (they must
    /// then stay unchanged; `mnode repo verify` notices if they do not).
    #[arg(long)]
    in_place: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct GetArgs {
    /// A file's CID, or the id of a record that holds a file (`art.image`, `core.file`, …).
    cid: String,
    /// Where to write it (default: the name recorded for it, else the CID).
    #[arg(short, long)]
    output: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct CatArgs {
    /// A file's CID, or the id of a record that holds a file.
    cid: String,
    /// Only these bytes, as `START-END` (inclusive, like HTTP) or `START-`.
    #[arg(long)]
    range: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum PublishCommand {
    /// Publish every file in a folder as one release.
    Release(ReleaseArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct ReleaseArgs {
    /// The folder.
    dir: PathBuf,
    /// The release's title.
    #[arg(long)]
    title: String,
    /// An artist: a name (an `art.artist` record is made) or the id of an existing artist.
    #[arg(long = "artist")]
    artists: Vec<String>,
    /// Release date: YYYY, YYYY-MM or YYYY-MM-DD.
    #[arg(long)]
    date: Option<String>,
    /// License, as an SPDX id (CC-BY-4.0) or text.
    #[arg(long)]
    license: Option<String>,
    /// A tag such as music/jazz (repeatable).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// What the release is.
    #[arg(long)]
    description: Option<String>,
    /// Reference the files where they are instead of copying them.
    #[arg(long)]
    in_place: bool,
}

/// Every file under `paths`, folders expanded, in a stable order.
fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).with_context(|| format!("cannot read {}", p.display()))?;
        if meta.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("cannot list {}", p.display()))?
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<_, _>>()?;
            entries.sort();
            out.extend(collect_files(&entries)?);
        } else if meta.is_file() {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// The media type of a file, from its content (the rules the API's uploads use too).
fn media_type(path: &Path) -> anyhow::Result<String> {
    let mut head = Vec::with_capacity(mnode_api::files::SNIFF_LEN);
    std::fs::File::open(path)
        .and_then(|f| {
            std::io::Read::read_to_end(
                &mut std::io::Read::take(f, mnode_api::files::SNIFF_LEN as u64),
                &mut head,
            )
        })
        .with_context(|| format!("cannot read {}", path.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    Ok(mnode_api::files::media_type(&head, &name, None))
}

/// The record a file gets: `art.image`, `art.audio`, `art.video` or `core.file`.
fn file_record(path: &Path, data: FileData, key: &Keypair) -> anyhow::Result<Record> {
    Ok(file_draft(path, data)?.sign(key)?)
}

/// The unsigned record a file gets (the same as for an upload through the API).
fn file_draft(path: &Path, data: FileData) -> anyhow::Result<mnode_dag::Draft> {
    let dims = if FileKind::of_media_type(&data.media_type) == FileKind::Image {
        imagesize::size(path)
            .ok()
            .and_then(|d| Some((u32::try_from(d.width).ok()?, u32::try_from(d.height).ok()?)))
    } else {
        None
    };
    Ok(mnode_api::files::file_draft(data, dims)?)
}

/// One added file.
struct Added {
    path: PathBuf,
    blob: Cid,
    size: u64,
    record: Record,
}

/// Adds files to the blob store and makes a pinned record for each.
async fn add_files(
    repo: &Repo,
    blobs: &Blobs,
    key: &Keypair,
    files: &[PathBuf],
    mode: ImportMode,
    show_progress: bool,
) -> anyhow::Result<Vec<Added>> {
    let total: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let pb = if show_progress {
        ProgressBar::new(total)
    } else {
        ProgressBar::hidden()
    };
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
        )
        .map_err(|e| anyhow!("{e}"))?
        .progress_chars("=> "),
    );
    let mut out = Vec::new();
    for path in files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".into());
        pb.set_message(name.clone());
        let start = pb.position();
        let media_type = media_type(path)?;
        let added = blobs
            .add_path(path, mode, |done| pb.set_position(start + done))
            .await
            .with_context(|| format!("cannot add {}", path.display()))?;
        pb.set_position(start + added.size);
        let data = FileData {
            blob: Link(added.cid),
            name,
            media_type,
            size: added.size,
        };
        let record = file_record(path, data, key)?;
        repo.store().put(record.clone())?;
        repo.store().pin(&record.id(), true)?;
        out.push(Added {
            path: path.clone(),
            blob: added.cid,
            size: added.size,
            record,
        });
    }
    pb.finish_and_clear();
    Ok(out)
}

pub(crate) fn add(args: AddArgs, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    if let Some(client) = super::net::daemon_client(ctx)? {
        return add_remote(args, ctx, &client);
    }
    let repo = ctx.open()?;
    let (_, key) = ctx.signer(&repo)?;
    let files = collect_files(&args.paths)?;
    if files.is_empty() {
        bail!("no files under {:?}", args.paths);
    }
    let mode = if args.in_place {
        ImportMode::InPlace
    } else {
        ImportMode::Copy
    };
    let added = runtime()?.block_on(async {
        let blobs = super::open_blobs(&repo).await?;
        let result = add_files(&repo, &blobs, &key, &files, mode, !ctx.out.json).await;
        blobs.shutdown().await?;
        result
    })?;
    if ctx.out.json {
        let v: Vec<_> = added
            .iter()
            .map(|a| json!({ "path": a.path, "cid": a.blob.to_string(), "size": a.size, "record": a.record.id().to_string(), "type": a.record.kind() }))
            .collect();
        ctx.out.print_json(&json!(v))?;
    } else {
        for a in &added {
            say!(
                "added {} {} {} {}",
                a.blob,
                a.record.id(),
                a.record.kind(),
                a.path.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `add` while a daemon holds the repo: the daemon imports each file from this disk and signs
/// its record.
fn add_remote(
    args: AddArgs,
    ctx: &Ctx,
    client: &mnode_api::client::Client,
) -> anyhow::Result<ExitCode> {
    let files = collect_files(&args.paths)?;
    if files.is_empty() {
        bail!("no files under {:?}", args.paths);
    }
    let rt = runtime()?;
    let out = add_remote_files(&files, ctx, client, &rt)?;
    if ctx.out.json {
        ctx.out.print_json(&json!(out))?;
    } else {
        for a in &out {
            let s = |k: &str| a[k].as_str().unwrap_or_default().to_owned();
            say!(
                "added {} {} {} {}",
                s("cid"),
                s("record"),
                s("type"),
                s("path")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Imports `files` through the daemon and creates their records; one JSON object per file
/// (`path`, `cid`, `size`, `record`, `type`).
fn add_remote_files(
    files: &[PathBuf],
    ctx: &Ctx,
    client: &mnode_api::client::Client,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut out = vec![];
    for path in files {
        let abs = std::path::absolute(path)?;
        let v = rt.block_on(client.import(&abs))?;
        let blob = parse_cid(v["cid"].as_str().unwrap_or_default())?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".into());
        let data = FileData {
            blob: Link(blob),
            name,
            media_type: media_type(path)?,
            size: v["size"].as_u64().unwrap_or_default(),
        };
        let draft = file_draft(path, data)?;
        let body = draft
            .body()
            .map(mnode_dag::json::to_json_value)
            .transpose()
            .map_err(|e| anyhow!("{e}"))?
            .unwrap_or_default();
        let r = rt.block_on(client.create(draft.kind(), body, ctx.as_handle.as_deref()))?;
        out.push(json!({ "path": path, "cid": blob.to_string(), "size": v["size"], "record": r["id"], "type": draft.kind() }));
    }
    Ok(out)
}

/// A file's blob CID and recorded name, from a blob CID or a record that holds a file.
fn resolve_file(store: &Store, text: &str) -> anyhow::Result<(Cid, Option<String>)> {
    let cid = parse_cid(text)?;
    if cids::link_kind(&cid) == LinkKind::Blob {
        return Ok((cid, None));
    }
    let record = store
        .head(&cid)?
        .ok_or_else(|| anyhow!("{cid} is neither a file nor a record on this node"))?;
    let body = record.body().ok_or_else(|| anyhow!("{cid} was deleted"))?;
    let data = match body {
        mnode_dag::Ipld::Map(m) => m.get("file").or(Some(body)).and_then(|f| match f {
            mnode_dag::Ipld::Map(f) => match (f.get("blob"), f.get("name")) {
                (Some(mnode_dag::Ipld::Link(b)), name) => Some((
                    *b,
                    match name {
                        Some(mnode_dag::Ipld::String(n)) => Some(n.clone()),
                        _ => None,
                    },
                )),
                _ => None,
            },
            _ => None,
        }),
        _ => None,
    };
    data.ok_or_else(|| anyhow!("{cid} is a {} record, which holds no file", record.kind()))
}

pub(crate) fn get(args: GetArgs, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    if let Some(client) = super::net::daemon_client(ctx)? {
        return get_remote(args, ctx, &client);
    }
    let repo = ctx.open()?;
    let (blob, name) = resolve_file(repo.store(), &args.cid)?;
    let output = args
        .output
        .unwrap_or_else(|| PathBuf::from(name.unwrap_or_else(|| blob.to_string())));
    if output.exists() {
        bail!("{} exists; choose another path with -o", output.display());
    }
    let size = runtime()?.block_on(async {
        let blobs = super::open_blobs(&repo).await?;
        let result = blobs.export(&blob, &output).await;
        blobs.shutdown().await?;
        anyhow::Ok(result?)
    })?;
    if ctx.out.json {
        ctx.out
            .print_json(&json!({ "cid": blob.to_string(), "path": output, "size": size }))?;
    } else {
        say!("wrote {} ({size} bytes) to {}", blob, output.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `get` while a daemon runs: the daemon fetches the file from peers if it lacks it (with a
/// progress bar here), then writes it where asked.
fn get_remote(
    args: GetArgs,
    ctx: &Ctx,
    client: &mnode_api::client::Client,
) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    let cid = parse_cid(&args.cid)?;
    let (blob, name) = if cids::link_kind(&cid) == LinkKind::Blob {
        (cid, None)
    } else {
        let v = rt.block_on(client.record(&args.cid, false))?;
        let body = &v["record"]["body"];
        let file = if body["file"].is_object() {
            &body["file"]
        } else {
            body
        };
        let blob = file["blob"]["/"]
            .as_str()
            .ok_or_else(|| anyhow!("{cid} is a record that holds no file"))?;
        (parse_cid(blob)?, file["name"].as_str().map(str::to_owned))
    };
    let output = args
        .output
        .unwrap_or_else(|| PathBuf::from(name.unwrap_or_else(|| blob.to_string())));
    if output.exists() {
        bail!("{} exists; choose another path with -o", output.display());
    }
    let pb = if ctx.out.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    pb.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
            .map_err(|e| anyhow!("{e}"))?
            .progress_chars("=> "),
    );
    let fetched = rt.block_on(client.fetch_progress(&blob.to_string(), |held, size| {
        if let Some(size) = size {
            pb.set_length(size);
        }
        pb.set_position(held);
    }))?;
    pb.finish_and_clear();
    let abs = std::path::absolute(&output)?;
    let v = rt.block_on(client.export(&blob.to_string(), &abs))?;
    if ctx.out.json {
        ctx.out.print_json(&json!({
            "cid": blob.to_string(),
            "path": abs,
            "size": v["size"],
            "transferred": fetched["transferred"],
        }))?;
    } else {
        say!(
            "wrote {} ({} bytes, {} fetched from peers) to {}",
            blob,
            v["size"],
            fetched["transferred"],
            output.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Parses `START-END` (inclusive) or `START-` into a start and an exclusive end.
fn parse_range(text: &str) -> anyhow::Result<(u64, Option<u64>)> {
    let bad = || anyhow!("--range {text:?}: expected START-END or START-, in bytes");
    let (a, b) = text.split_once('-').ok_or_else(bad)?;
    let start: u64 = a.trim().parse().map_err(|_| bad())?;
    let end = match b.trim() {
        "" => None,
        b => {
            let last: u64 = b.parse().map_err(|_| bad())?;
            if last < start {
                return Err(bad());
            }
            Some(last + 1)
        }
    };
    Ok((start, end))
}

pub(crate) fn cat(args: CatArgs, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    if let Some(client) = super::net::daemon_client(ctx)? {
        return cat_remote(&args, &client);
    }
    let repo = ctx.open()?;
    let (blob, _) = resolve_file(repo.store(), &args.cid)?;
    let (start, end) = args
        .range
        .as_deref()
        .map(parse_range)
        .transpose()?
        .unwrap_or((0, None));
    runtime()?.block_on(async {
        let blobs = super::open_blobs(&repo).await?;
        let result = async {
            let mut stream = blobs.read_range(&blob, start, end).await?;
            let mut stdout = std::io::stdout().lock();
            while let Some(chunk) = stream.next().await {
                match stdout.write_all(&chunk?) {
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break,
                    r => r?,
                }
            }
            stdout.flush()?;
            anyhow::Ok(())
        }
        .await;
        blobs.shutdown().await?;
        result
    })?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn publish(command: PublishCommand, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let PublishCommand::Release(args) = command;
    if let Some(client) = super::net::daemon_client(ctx)? {
        return publish_remote(args, ctx, &client);
    }
    let repo = ctx.open()?;
    let (_, key) = ctx.signer(&repo)?;
    if !args.dir.is_dir() {
        bail!("{} is not a folder", args.dir.display());
    }
    let files = collect_files(std::slice::from_ref(&args.dir))?;
    if files.is_empty() {
        bail!("{} holds no files", args.dir.display());
    }
    // Artists: an existing artist's id, or a name for a new art.artist record.
    let mut artists = Vec::new();
    let mut new_artists = Vec::new();
    for a in &args.artists {
        match cids::parse(a) {
            Ok(cid) => {
                let r = repo
                    .store()
                    .head(&cid)?
                    .ok_or_else(|| anyhow!("--artist {a}: no such record on this node"))?;
                if r.kind() != "art.artist" && r.kind() != "art.artist_group" {
                    bail!("--artist {a}: is a {}, not an artist", r.kind());
                }
                artists.push(Link(r.id()));
            }
            Err(_) => {
                let artist = Record::create(&Artist {
                    name: TitleData::new(a.clone()),
                    ..Artist::default()
                })?
                .sign(&key)?;
                artists.push(Link(artist.id()));
                new_artists.push(artist);
            }
        }
    }
    let mode = if args.in_place {
        ImportMode::InPlace
    } else {
        ImportMode::Copy
    };
    let added = runtime()?.block_on(async {
        let blobs = super::open_blobs(&repo).await?;
        let result = add_files(&repo, &blobs, &key, &files, mode, !ctx.out.json).await;
        blobs.shutdown().await?;
        result
    })?;
    let kinds: Vec<&str> = added.iter().map(|a| a.record.kind()).collect();
    let kind = release_kind(&kinds);
    let release = Release {
        title: TitleData::new(args.title.clone()),
        kind,
        artists,
        files: added.iter().map(|a| Link(a.record.id())).collect(),
        cover: added
            .iter()
            .find(|a| a.record.kind() == "art.image")
            .map(|a| Link(a.record.id())),
        date: args.date.clone(),
        license: args.license.clone(),
        description: args.description.clone(),
        tags: args.tags.clone(),
    };
    let record = Record::create(&release)?.sign(&key)?;
    let store = repo.store();
    store.put_batch(new_artists)?;
    store.put(record.clone())?;
    store.pin(&record.id(), true)?;
    if ctx.out.json {
        ctx.out.print_json(&json!({
            "release": record.id().to_string(),
            "files": added.iter().map(|a| json!({ "path": a.path, "cid": a.blob.to_string(), "record": a.record.id().to_string(), "type": a.record.kind() })).collect::<Vec<_>>(),
        }))?;
    } else {
        for a in &added {
            say!("added {} {} {}", a.blob, a.record.kind(), a.path.display());
        }
        say!("release {}", record.id());
    }
    Ok(ExitCode::SUCCESS)
}

/// What sort of release files of these kinds make.
fn release_kind(kinds: &[&str]) -> ReleaseKind {
    if kinds.iter().all(|k| *k == "art.image") {
        ReleaseKind::Images
    } else if kinds.iter().all(|k| *k == "art.video") {
        ReleaseKind::Video
    } else if kinds.iter().all(|k| *k == "art.audio") {
        if kinds.len() <= 3 {
            ReleaseKind::Single
        } else {
            ReleaseKind::Album
        }
    } else {
        ReleaseKind::Other
    }
}

/// `publish release` while a daemon holds the repo: files are imported by the daemon from this
/// disk, artists and the release are created through its API, signed as the acting account.
fn publish_remote(
    args: ReleaseArgs,
    ctx: &Ctx,
    client: &mnode_api::client::Client,
) -> anyhow::Result<ExitCode> {
    if !args.dir.is_dir() {
        bail!("{} is not a folder", args.dir.display());
    }
    let files = collect_files(std::slice::from_ref(&args.dir))?;
    if files.is_empty() {
        bail!("{} holds no files", args.dir.display());
    }
    let rt = runtime()?;
    let as_handle = ctx.as_handle.as_deref();
    let mut artists = Vec::new();
    for a in &args.artists {
        let id = match cids::parse(a) {
            Ok(cid) => {
                let r = rt
                    .block_on(client.record(&cid.to_string(), false))
                    .with_context(|| format!("--artist {a}"))?;
                let kind = r["record"]["type"].as_str().unwrap_or_default();
                if kind != "art.artist" && kind != "art.artist_group" {
                    bail!("--artist {a}: is a {kind}, not an artist");
                }
                r["id"].as_str().unwrap_or_default().to_owned()
            }
            Err(_) => {
                let body = json!({ "name": { "full": a } });
                let r = rt.block_on(client.create("art.artist", body, as_handle))?;
                r["id"].as_str().unwrap_or_default().to_owned()
            }
        };
        artists.push(json!({ "/": id }));
    }
    let added = add_remote_files(&files, ctx, client, &rt)?;
    let kinds: Vec<&str> = added
        .iter()
        .map(|a| a["type"].as_str().unwrap_or_default())
        .collect();
    let link = |a: &serde_json::Value| json!({ "/": a["record"] });
    let mut body = json!({
        "title": { "full": args.title },
        "kind": release_kind(&kinds),
        "artists": artists,
        "files": added.iter().map(link).collect::<Vec<_>>(),
        "tags": args.tags,
    });
    if let Some(cover) = added.iter().find(|a| a["type"] == "art.image") {
        body["cover"] = link(cover);
    }
    for (key, value) in [
        ("date", &args.date),
        ("license", &args.license),
        ("description", &args.description),
    ] {
        if let Some(v) = value {
            body[key] = json!(v);
        }
    }
    let r = rt.block_on(client.create("art.release", body, as_handle))?;
    let release = r["id"].as_str().unwrap_or_default();
    if ctx.out.json {
        let files: Vec<_> = added
            .iter()
            .map(|a| json!({ "path": a["path"], "cid": a["cid"], "record": a["record"], "type": a["type"] }))
            .collect();
        ctx.out
            .print_json(&json!({ "release": release, "files": files }))?;
    } else {
        for a in &added {
            say!(
                "added {} {} {}",
                a["cid"].as_str().unwrap_or_default(),
                a["type"].as_str().unwrap_or_default(),
                a["path"].as_str().unwrap_or_default()
            );
        }
        say!("release {release}");
    }
    Ok(ExitCode::SUCCESS)
}

/// A file's blob CID from a record's JSON (`body.file.blob` or `body.blob`).
fn file_of_record(record: &serde_json::Value) -> Option<String> {
    let body = &record["record"]["body"];
    let data = if body["file"].is_object() {
        &body["file"]
    } else {
        body
    };
    data["blob"]["/"].as_str().map(str::to_owned)
}

/// `cat` through a running daemon: the bytes come from its gateway.
fn cat_remote(args: &CatArgs, client: &mnode_api::client::Client) -> anyhow::Result<ExitCode> {
    let cid = parse_cid(&args.cid)?;
    let (start, end) = args
        .range
        .as_deref()
        .map(parse_range)
        .transpose()?
        .unwrap_or((0, None));
    let rt = runtime()?;
    let blob = if cids::link_kind(&cid) == LinkKind::Blob {
        cid.to_string()
    } else {
        let record = rt.block_on(client.record(&cid.to_string(), false))?;
        file_of_record(&record)
            .ok_or_else(|| anyhow!("{cid} is neither a file nor a record that holds one"))?
    };
    rt.block_on(async {
        let mut resp = client.file(&blob, start, end).await?;
        let mut stdout = std::io::stdout().lock();
        while let Some(chunk) = resp.chunk().await? {
            match stdout.write_all(&chunk) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break,
                r => r?,
            }
        }
        stdout.flush()?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

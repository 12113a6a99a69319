//! `mnode add`, `get`, `cat`, `publish release`.
//!
//! `add` and `publish release` check everything they can before they write anything (the
//! release's fields, the artists, the cover), then import the files into the blob store and
//! store every record in one atomic batch; if that fails, the files they added are removed
//! again, so a failed run leaves the repo as it was.

use super::say;
use std::{
    io::{IsTerminal as _, Write as _},
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context as _, anyhow, bail};
use futures::{StreamExt as _, TryStreamExt as _};
use indicatif::{ProgressBar, ProgressStyle};
use mnode_api::files::MAX_IMPORTS;
use mnode_dag::{
    Cid, Did, Keypair, Link, Record, TitleData,
    cids::{self, LinkKind},
    model::{
        art::{Artist, Release, ReleaseKind},
        core::{FileData, FileKind},
    },
};
use mnode_node::{
    blobs::{Blobs, Commit, IMPORTS_AT_ONCE, ImportMode},
    store::{ListFilter, Store},
};
use serde_json::{Value, json};

use super::{Ctx, parse_cid, runtime};

/// File names (without extension, any case) that say "this image is the cover", best first.
const COVER_NAMES: [&str; 5] = ["cover", "front", "folder", "album", "artwork"];
/// The most records `POST /records/batch` takes.
const MAX_BATCH: usize = 1000;

#[derive(Debug, clap::Args)]
pub(crate) struct AddArgs {
    /// Files and folders (folders are added with everything under them).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Reference the files where they are instead of copying them into the repo (they must
    /// then stay unchanged; `mnode repo verify` notices if they do not).
    #[arg(long)]
    in_place: bool,
    /// Make the files private to this person (a handle on the node or a did:key; repeatable):
    /// each file is encrypted before it is stored and only its readers can open it. Needs the
    /// daemon.
    #[arg(long = "to", value_name = "PERSON", conflicts_with = "in_place")]
    to: Vec<String>,
    /// Make the files private to the members of this group (its id). Needs the daemon.
    #[arg(long, value_name = "GROUP", conflicts_with = "in_place")]
    to_group: Option<String>,
}

impl AddArgs {
    fn private(&self) -> bool {
        !self.to.is_empty() || self.to_group.is_some()
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct GetArgs {
    /// A file's CID, or the id of a record that holds a file (`art.image`, `core.file`, …).
    cid: String,
    /// Where to write it (default: the name recorded for it, else the CID).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Create the folders of the output path that do not exist yet (without it, a missing
    /// folder is an error, as with `cp`).
    #[arg(long)]
    parents: bool,
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
    /// An artist: the id of an artist record, or a name (the acting account's artist of that
    /// name if it has one, else a new `art.artist` record).
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
    /// The cover: an image in the folder (default: one named cover, front, folder, album or
    /// artwork, else the first image).
    #[arg(long, value_name = "FILE")]
    cover: Option<PathBuf>,
    /// Reference the files where they are instead of copying them.
    #[arg(long)]
    in_place: bool,
}

// ---------------------------------------------------------------------------------------------
// Shared by the offline and the daemon paths.

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

/// The media type of a file, from its content and name (the rules the API's uploads use too).
fn media_type(path: &Path) -> anyhow::Result<String> {
    let mut head = Vec::with_capacity(mnode_dag::files::SNIFF_LEN);
    std::fs::File::open(path)
        .and_then(|f| {
            std::io::Read::read_to_end(
                &mut std::io::Read::take(f, mnode_dag::files::SNIFF_LEN as u64),
                &mut head,
            )
        })
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(mnode_dag::files::media_type(&head, &file_name(path), None))
}

/// The name a file is recorded under: its last path segment.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into())
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
    Ok(mnode_dag::files::file_draft(data, dims)?)
}

/// A progress bar on standard error, or a hidden one when that is not a terminal or the output
/// is JSON.
pub(crate) fn progress_bar(len: u64, ctx: &Ctx) -> anyhow::Result<ProgressBar> {
    if ctx.out.json || !std::io::stderr().is_terminal() {
        return Ok(ProgressBar::hidden());
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
        )
        .map_err(|e| anyhow!("{e}"))?
        .progress_chars("=> "),
    );
    Ok(pb)
}

/// A bar over a count of `what` (files, say) with a message beside it, on standard error; a
/// hidden one when that is not a terminal or the output is JSON.
pub(crate) fn count_bar(ctx: &Ctx, what: &str) -> anyhow::Result<ProgressBar> {
    if ctx.out.json || !std::io::stderr().is_terminal() {
        return Ok(ProgressBar::hidden());
    }
    let pb = ProgressBar::new(0);
    pb.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} [{{bar:30}}] {{pos}}/{{len}} {what} {{msg}} {{elapsed}}"
        ))
        .map_err(|e| anyhow!("{e}"))?
        .progress_chars("=> "),
    );
    Ok(pb)
}

/// The total size of `files`, for a progress bar.
fn total_size(files: &[PathBuf]) -> u64 {
    files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum()
}

/// One added file, as `add` and `publish release` report it.
struct Added {
    path: PathBuf,
    blob: String,
    size: u64,
    record: String,
    kind: String,
    /// The file's UnixFS CID, for IPFS clients.
    unixfs: Option<String>,
}

impl Added {
    fn to_json(&self) -> Value {
        let mut v = json!({
            "path": self.path,
            "cid": self.blob,
            "size": self.size,
            "record": self.record,
            "type": self.kind,
        });
        if let Some(u) = &self.unixfs {
            v["unixfs"] = json!(u);
        }
        v
    }

    fn say(&self) {
        say!(
            "added {}: file {} record {} ({})",
            self.path.display(),
            self.blob,
            self.record,
            self.kind
        );
        if let Some(u) = &self.unixfs {
            say!("  for IPFS clients: {u}");
        }
    }
}

/// An artist of a release, as `publish release` reports it.
struct ArtistPick {
    /// What `--artist` said.
    given: String,
    /// The artist record's id.
    id: String,
    /// Whether this run makes the record.
    new: bool,
    /// Other artists of that name this account has (the newest is used).
    others: usize,
}

impl ArtistPick {
    fn to_json(&self) -> Value {
        json!({ "artist": self.given, "id": self.id, "new": self.new })
    }

    fn say(&self) {
        if self.new {
            say!("artist {}: new art.artist {}", self.given, self.id);
        } else if self.others > 0 {
            say!(
                "artist {}: using your newest of {} artists of that name, {}",
                self.given,
                self.others + 1,
                self.id
            );
        } else if cids::parse(&self.given).is_ok() {
            say!("artist {}", self.id);
        } else {
            say!("artist {}: using your existing {}", self.given, self.id);
        }
    }
}

/// Checks everything about a release that can be checked before anything is written: the
/// fields `--title`, `--date`, `--tag`, `--license` and `--description` give, and the names of
/// new artists.
fn check_release(args: &ReleaseArgs, files: usize) -> anyhow::Result<()> {
    let placeholder = |i: usize| Link(cids::record_cid(&i.to_be_bytes()));
    let release = Release {
        title: TitleData::new(args.title.clone()),
        kind: ReleaseKind::Other,
        artists: (0..args.artists.len()).map(placeholder).collect(),
        files: (0..files).map(placeholder).collect(),
        cover: None,
        date: args.date.clone(),
        license: args.license.clone(),
        description: args.description.clone(),
        tags: args.tags.clone(),
    };
    let _checked = Record::create(&release).map_err(|e| anyhow!("{e}; nothing was published"))?;
    for a in args.artists.iter().filter(|a| cids::parse(a).is_err()) {
        let _checked =
            artist_draft(a).map_err(|e| anyhow!("--artist {a:?}: {e}; nothing was published"))?;
    }
    Ok(())
}

/// The record of a new artist called `name`.
fn artist_draft(name: &str) -> Result<mnode_dag::Draft, mnode_dag::RecordError> {
    Record::create(&Artist {
        name: TitleData::new(name.to_owned()),
        ..Artist::default()
    })
}

/// Which of `files` is the cover: `wanted` (a path as given, or relative to the folder), else
/// the image named most like a cover (see [`COVER_NAMES`]), else the first image.
fn choose_cover(
    dir: &Path,
    files: &[PathBuf],
    media: &[String],
    wanted: Option<&Path>,
) -> anyhow::Result<Option<usize>> {
    let is_image = |i: &usize| {
        media
            .get(*i)
            .is_some_and(|m| FileKind::of_media_type(m) == FileKind::Image)
    };
    if let Some(w) = wanted {
        let canonical: Vec<Option<PathBuf>> = files
            .iter()
            .map(|f| std::fs::canonicalize(f).ok())
            .collect();
        let found = [w.to_owned(), dir.join(w)]
            .iter()
            .filter_map(|c| std::fs::canonicalize(c).ok())
            .find_map(|c| canonical.iter().position(|f| f.as_ref() == Some(&c)))
            .ok_or_else(|| {
                anyhow!(
                    "--cover {}: not a file in {}; nothing was published",
                    w.display(),
                    dir.display()
                )
            })?;
        if !is_image(&found) {
            bail!(
                "--cover {}: is {}, not an image; nothing was published",
                w.display(),
                media.get(found).map_or("unknown", String::as_str)
            );
        }
        return Ok(Some(found));
    }
    let rank = |i: &usize| {
        let stem = files[*i]
            .file_stem()
            .map(|s| s.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        COVER_NAMES
            .iter()
            .position(|n| {
                stem.strip_prefix(n)
                    .is_some_and(|rest| !rest.starts_with(char::is_alphanumeric))
            })
            .unwrap_or(COVER_NAMES.len())
    };
    Ok((0..files.len())
        .filter(is_image)
        .min_by_key(|i| (rank(i), *i)))
}

/// What sort of release files of these kinds make: audio (with any images and documents
/// beside it, such as a cover and liner notes) is a single of up to three tracks or an album;
/// video likewise a video; images alone an image release; anything else, or audio and video
/// mixed, other.
fn release_kind(kinds: &[&str]) -> ReleaseKind {
    let count = |kind: &str| kinds.iter().filter(|k| **k == kind).count();
    let (audio, video, images) = (count("art.audio"), count("art.video"), count("art.image"));
    match (audio, video) {
        (0, 0) if images > 0 && images == kinds.len() => ReleaseKind::Images,
        (0, 0) => ReleaseKind::Other,
        (1..=3, 0) => ReleaseKind::Single,
        (_, 0) => ReleaseKind::Album,
        (0, _) => ReleaseKind::Video,
        _ => ReleaseKind::Other,
    }
}

/// `output`'s folder must exist, unless `parents` asks for it to be made.
fn check_output(output: &Path, parents: bool) -> anyhow::Result<()> {
    if output.exists() {
        bail!("{} exists; choose another path with -o", output.display());
    }
    let dir = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => return Ok(()),
    };
    if !parents && !dir.is_dir() {
        bail!(
            "cannot write {}: the folder {} does not exist (create it, or pass --parents)",
            output.display(),
            dir.display()
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Offline: the repo itself.

/// Imports `files` (with their media types, read beforehand) into the blob store, committed
/// together once all are in, and signs a record for each, in their order; nothing is stored in
/// the record store yet.
async fn import_files(
    blobs: &Blobs,
    store: &Store,
    key: &Keypair,
    files: &[(PathBuf, String)],
    mode: ImportMode,
    pb: &ProgressBar,
) -> anyhow::Result<Vec<(Added, Record)>> {
    let out = futures::stream::iter(files)
        .map(|(path, media_type)| async move {
            let name = file_name(path);
            pb.set_message(name.clone());
            // Each file moves the bar by what it adds, beside the others in flight.
            let mut shown = 0;
            let (added, view) = blobs
                .add_path_viewed(path, mode, Commit::Later, |done| {
                    pb.inc(done.saturating_sub(shown));
                    shown = shown.max(done);
                })
                .await
                .with_context(|| format!("cannot add {}", path.display()))?;
            store
                .put_view(&added.cid, &view)
                .with_context(|| format!("cannot index the UnixFS view of {}", path.display()))?;
            pb.inc(added.size.saturating_sub(shown));
            let data = FileData {
                blob: Link(added.cid),
                name,
                media_type: media_type.clone(),
                size: added.size,
                sealed: None,
                unixfs: Some(Link(view.root)),
            };
            let record = file_draft(path, data)?.sign(key)?;
            let a = Added {
                path: path.clone(),
                blob: added.cid.to_string(),
                size: added.size,
                record: record.id().to_string(),
                kind: record.kind().to_owned(),
                unixfs: Some(view.root.to_string()),
            };
            anyhow::Ok((a, record))
        })
        .buffered(IMPORTS_AT_ONCE)
        .try_collect()
        .await?;
    blobs.commit().await?;
    pb.finish_and_clear();
    Ok(out)
}

/// Stores `records` in one atomic batch, then pins `pins` (recursively).
fn store_records(store: &Store, records: Vec<Record>, pins: &[Cid]) -> anyhow::Result<()> {
    store
        .put_batch(records)
        .context("cannot store the records; nothing was stored")?;
    for id in pins {
        store.pin(id, true)?;
    }
    Ok(())
}

/// The files with their media types; reading each file's start here also finds an unreadable
/// file before anything is written.
fn with_media_types(files: Vec<PathBuf>) -> anyhow::Result<Vec<(PathBuf, String)>> {
    files
        .into_iter()
        .map(|f| {
            let m = media_type(&f)?;
            Ok((f, m))
        })
        .collect()
}

pub(crate) fn add(args: AddArgs, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    if let Some(client) = super::net::daemon_client(ctx)? {
        if args.private() {
            return add_private(args, ctx, &client);
        }
        return add_remote(args, ctx, &client);
    }
    if args.private() {
        bail!(
            "private files are sealed for their readers by the daemon, which knows their current \
             keys: start it (`mnode daemon`) and run this again"
        );
    }
    let repo = ctx.open()?;
    let (_, key) = ctx.signer(&repo)?;
    let files = collect_files(&args.paths)?;
    if files.is_empty() {
        bail!("no files under {:?}", args.paths);
    }
    let pb = progress_bar(total_size(&files), ctx)?;
    let files = with_media_types(files)?;
    let mode = if args.in_place {
        ImportMode::InPlace
    } else {
        ImportMode::Copy
    };
    let imported = runtime()?.block_on(async {
        let blobs = super::open_blobs(&repo).await?;
        let result = import_files(&blobs, repo.store(), &key, &files, mode, &pb).await;
        blobs.shutdown().await?;
        result
    })?;
    let (added, records): (Vec<Added>, Vec<Record>) = imported.into_iter().unzip();
    let ids: Vec<Cid> = records.iter().map(Record::id).collect();
    store_records(repo.store(), records, &ids)?;
    print_added(ctx, &added)
}

fn print_added(ctx: &Ctx, added: &[Added]) -> anyhow::Result<ExitCode> {
    if ctx.out.json {
        let v: Vec<Value> = added.iter().map(Added::to_json).collect();
        ctx.out.print_json(&json!(v))?;
    } else {
        added.iter().for_each(Added::say);
    }
    Ok(ExitCode::SUCCESS)
}

/// The acting account's `art.artist` items named `name`, newest first.
fn artists_named(store: &Store, author: &Did, name: &str) -> anyhow::Result<Vec<Cid>> {
    let page = store.list(&ListFilter {
        kind: Some("art.artist".into()),
        author: Some(*author),
        ..ListFilter::default()
    })?;
    let mut out = Vec::new();
    for (id, item) in page.items {
        if item.deleted {
            continue;
        }
        let Some(record) = store.record(&item.head)? else {
            continue;
        };
        if let Ok(Some(artist)) = record.body_as::<Artist>()
            && artist.name.full == name
        {
            out.push(id);
        }
    }
    Ok(out)
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
    check_output(&output, args.parents)?;
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

pub(crate) fn publish(command: PublishCommand, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let PublishCommand::Release(args) = command;
    if let Some(client) = super::net::daemon_client(ctx)? {
        return publish_remote(args, ctx, &client);
    }
    let repo = ctx.open()?;
    let (_, key) = ctx.signer(&repo)?;
    let plan = plan_release(&args)?;
    let store = repo.store();
    // Artists: an existing artist's id, this account's artist of that name, or a new one.
    let mut picks = Vec::new();
    let mut artists = Vec::new();
    let mut new_artists = Vec::new();
    for a in &args.artists {
        if let Ok(cid) = cids::parse(a) {
            let r = store
                .head(&cid)?
                .ok_or_else(|| anyhow!("--artist {a}: no such record on this node"))?;
            if r.kind() != "art.artist" && r.kind() != "art.artist_group" {
                bail!(
                    "--artist {a}: is {}, not an artist",
                    mnode_dag::registry::with_article(r.kind())
                );
            }
            artists.push(Link(r.id()));
            picks.push(ArtistPick {
                given: a.clone(),
                id: r.id().to_string(),
                new: false,
                others: 0,
            });
            continue;
        }
        let named = artists_named(store, key.did(), a)?;
        let (id, new) = match named.first() {
            Some(id) => (*id, false),
            None => {
                let artist = artist_draft(a)?.sign(&key)?;
                let id = artist.id();
                new_artists.push(artist);
                (id, true)
            }
        };
        artists.push(Link(id));
        picks.push(ArtistPick {
            given: a.clone(),
            id: id.to_string(),
            new,
            others: named.len().saturating_sub(1),
        });
    }
    let mode = if args.in_place {
        ImportMode::InPlace
    } else {
        ImportMode::Copy
    };
    let pb = progress_bar(plan.size, ctx)?;
    let imported = runtime()?.block_on(async {
        let blobs = super::open_blobs(&repo).await?;
        let result = import_files(&blobs, store, &key, &plan.files, mode, &pb).await;
        blobs.shutdown().await?;
        result
    })?;
    let kinds: Vec<&str> = imported.iter().map(|(a, _)| a.kind.as_str()).collect();
    let release = Release {
        title: TitleData::new(args.title.clone()),
        kind: release_kind(&kinds),
        artists,
        files: imported.iter().map(|(_, r)| Link(r.id())).collect(),
        cover: plan
            .cover
            .and_then(|i| imported.get(i))
            .map(|(_, r)| Link(r.id())),
        date: args.date.clone(),
        license: args.license.clone(),
        description: args.description.clone(),
        tags: args.tags.clone(),
    };
    let record = Record::create(&release)?.sign(&key)?;
    let release_id = record.id();
    let (added, mut records): (Vec<Added>, Vec<Record>) = imported.into_iter().unzip();
    let mut pins: Vec<Cid> = records.iter().map(Record::id).collect();
    pins.push(release_id);
    records.extend(new_artists);
    records.push(record);
    store_records(store, records, &pins)?;
    print_release(ctx, &release_id.to_string(), &picks, &added)
}

/// What `publish release` will publish, checked before anything is written.
struct ReleasePlan {
    /// The files with their media types.
    files: Vec<(PathBuf, String)>,
    /// Which of them is the cover.
    cover: Option<usize>,
    /// Their total size.
    size: u64,
}

fn plan_release(args: &ReleaseArgs) -> anyhow::Result<ReleasePlan> {
    if !args.dir.is_dir() {
        bail!("{} is not a folder", args.dir.display());
    }
    let files = collect_files(std::slice::from_ref(&args.dir))?;
    if files.is_empty() {
        bail!("{} holds no files", args.dir.display());
    }
    check_release(args, files.len())?;
    let size = total_size(&files);
    let files = with_media_types(files)?;
    let (paths, media): (Vec<PathBuf>, Vec<String>) = files.iter().cloned().unzip();
    let cover = choose_cover(&args.dir, &paths, &media, args.cover.as_deref())?;
    Ok(ReleasePlan { files, cover, size })
}

fn print_release(
    ctx: &Ctx,
    release: &str,
    picks: &[ArtistPick],
    added: &[Added],
) -> anyhow::Result<ExitCode> {
    if ctx.out.json {
        ctx.out.print_json(&json!({
            "release": release,
            "artists": picks.iter().map(ArtistPick::to_json).collect::<Vec<_>>(),
            "files": added.iter().map(Added::to_json).collect::<Vec<_>>(),
        }))?;
    } else {
        picks.iter().for_each(ArtistPick::say);
        added.iter().for_each(Added::say);
        say!("release {release}");
    }
    Ok(ExitCode::SUCCESS)
}

/// A file's blob CID and recorded name, from a blob CID or a record that holds a file.
fn resolve_file(store: &Store, text: &str) -> anyhow::Result<(Cid, Option<String>)> {
    let cid = parse_cid(text)?;
    if cids::link_kind(&cid) == LinkKind::Blob {
        return Ok((cid, None));
    }
    if cids::link_kind(&cid) == LinkKind::UnixFs {
        // A file's UnixFS CID, as IPFS clients name it: the file it is a view of.
        return match store.view_file(&cid)? {
            Some(blob) => Ok((blob, None)),
            None => bail!(
                "{cid} is a UnixFS CID that names no file on this node (mnode fetches files by                  their BLAKE3 CID, bafkr4i…, or by their record)"
            ),
        };
    }
    let record = store
        .head(&cid)?
        .ok_or_else(|| anyhow!("{cid} is neither a file nor a record on this node"))?;
    let body = record.body().ok_or_else(|| anyhow!("{cid} was deleted"))?;
    if mnode_dag::private::is_private(body) {
        bail!(
            "{cid} is private: its file opens only for its readers, through the daemon; start it \
             (`mnode daemon`) and run this again as one of them"
        );
    }
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
    data.ok_or_else(|| {
        anyhow!(
            "{cid} is {} record, which holds no file",
            mnode_dag::registry::with_article(record.kind())
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Through a running daemon.

/// `add` while a daemon holds the repo: the daemon imports each file from this disk, then signs
/// all their records in one batch.
fn add_remote(
    args: AddArgs,
    ctx: &Ctx,
    client: &mnode_api::client::Client,
) -> anyhow::Result<ExitCode> {
    let files = collect_files(&args.paths)?;
    if files.is_empty() {
        bail!("no files under {:?}", args.paths);
    }
    let pb = progress_bar(total_size(&files), ctx)?;
    let files = with_media_types(files)?;
    let rt = runtime()?;
    let imported = import_remote(&files, client, &rt, &pb)?;
    let records = imported
        .iter()
        .map(|(_, kind, body)| (kind.clone(), body.clone()));
    let ids = create_remote(client, &rt, records.collect(), ctx.as_handle.as_deref())?;
    let added: Vec<Added> = imported
        .into_iter()
        .zip(ids)
        .map(|((a, kind, _), id)| Added {
            record: id,
            kind,
            ..a
        })
        .collect();
    print_added(ctx, &added)
}

/// `add --to/--to-group`: each file is uploaded to the daemon, which seals it for its readers
/// as it stores it and makes its record private to them.
fn add_private(
    args: AddArgs,
    ctx: &Ctx,
    client: &mnode_api::client::Client,
) -> anyhow::Result<ExitCode> {
    let files = collect_files(&args.paths)?;
    if files.is_empty() {
        bail!("no files under {:?}", args.paths);
    }
    let pb = progress_bar(total_size(&files), ctx)?;
    let rt = runtime()?;
    let mut added = Vec::with_capacity(files.len());
    let mut done = 0u64;
    for path in files {
        let bar = pb.clone();
        let base = done;
        let v = rt
            .block_on(client.upload_for(
                &path,
                ctx.as_handle.as_deref(),
                &args.to,
                args.to_group.as_deref(),
                move |sent| bar.set_position(base + sent),
            ))
            .with_context(|| format!("adding {}", path.display()))?;
        let size = v["size"].as_u64().unwrap_or_default();
        done += size;
        added.push(Added {
            path,
            blob: v["cid"].as_str().unwrap_or_default().to_owned(),
            size,
            record: v["record"]["id"].as_str().unwrap_or_default().to_owned(),
            kind: v["record"]["type"].as_str().unwrap_or_default().to_owned(),
            unixfs: None,
        });
    }
    pb.finish_and_clear();
    print_added(ctx, &added)
}

/// Imports `files` through the daemon, up to [`MAX_IMPORTS`] in each request, and commits them
/// to disk together once all are in (as [`import_files`] does without a daemon); for each, in
/// order, what it added and its record's kind and body (not created yet).
fn import_remote(
    files: &[(PathBuf, String)],
    client: &mnode_api::client::Client,
    rt: &tokio::runtime::Runtime,
    pb: &ProgressBar,
) -> anyhow::Result<Vec<(Added, String, Value)>> {
    let out = rt.block_on(async {
        let mut out = Vec::with_capacity(files.len());
        for batch in files.chunks(MAX_IMPORTS) {
            let paths = batch
                .iter()
                .map(|(path, _)| std::path::absolute(path))
                .collect::<Result<Vec<_>, _>>()?;
            if let Some((first, _)) = batch.first() {
                pb.set_message(file_name(first));
            }
            let mut shown = 0;
            let v = client
                .import_batch(&paths, Commit::Later, |done, _| {
                    pb.inc(done.saturating_sub(shown));
                    shown = shown.max(done);
                })
                .await
                .context("cannot add the files")?;
            let answered = v["files"].as_array().map(Vec::as_slice).unwrap_or_default();
            if answered.len() != batch.len() {
                bail!(
                    "the daemon answered {} files for {}",
                    answered.len(),
                    batch.len()
                );
            }
            let mut size = 0;
            for ((path, media_type), v) in batch.iter().zip(answered) {
                let one = imported(path, media_type, v)?;
                size += one.0.size;
                out.push(one);
            }
            pb.inc(size.saturating_sub(shown));
        }
        client
            .commit_files()
            .await
            .context("cannot commit the added files to disk")?;
        anyhow::Ok(out)
    })?;
    pb.finish_and_clear();
    Ok(out)
}

/// What the daemon's import of the file at `path` answered (`v`: `{cid, size, unixfs}`), with
/// its record's kind and body.
fn imported(path: &Path, media_type: &str, v: &Value) -> anyhow::Result<(Added, String, Value)> {
    let size = v["size"].as_u64().unwrap_or_default();
    let blob = parse_cid(v["cid"].as_str().unwrap_or_default())?;
    let unixfs = v["unixfs"].as_str().map(parse_cid).transpose()?;
    let data = FileData {
        blob: Link(blob),
        name: file_name(path),
        media_type: media_type.to_owned(),
        size,
        sealed: None,
        unixfs: unixfs.map(Link),
    };
    let draft = file_draft(path, data)?;
    let body = draft
        .body()
        .map(mnode_dag::json::to_json_value)
        .transpose()
        .map_err(|e| anyhow!("{e}"))?
        .unwrap_or_default();
    let added = Added {
        path: path.to_owned(),
        blob: blob.to_string(),
        size,
        record: String::new(),
        kind: draft.kind().to_owned(),
        unixfs: unixfs.map(|u| u.to_string()),
    };
    Ok((added, draft.kind().to_owned(), body))
}

/// Creates records of `(kind, body)` through the daemon in atomic batches (one, for up to a
/// thousand); their ids in order.
fn create_remote(
    client: &mnode_api::client::Client,
    rt: &tokio::runtime::Runtime,
    records: Vec<(String, Value)>,
    as_handle: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::with_capacity(records.len());
    for chunk in records.chunks(MAX_BATCH) {
        let v = rt.block_on(client.create_batch(chunk, as_handle))?;
        for r in v["records"].as_array().into_iter().flatten() {
            ids.push(r["id"].as_str().unwrap_or_default().to_owned());
        }
    }
    if ids.len() != records.len() {
        bail!(
            "the daemon answered {} ids for {} records",
            ids.len(),
            records.len()
        );
    }
    Ok(ids)
}

/// `get` while a daemon runs: the daemon fetches the file from peers if it lacks it (with a
/// progress bar here) and writes it where asked as it arrives.
fn get_remote(
    args: GetArgs,
    ctx: &Ctx,
    client: &mnode_api::client::Client,
) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    let cid = parse_cid(&args.cid)?;
    if cids::link_kind(&cid) == LinkKind::UnixFs {
        bail!(
            "{cid} is a UnixFS CID, the name IPFS clients use; with the daemon running, get the \
             file by its BLAKE3 CID (bafkr4i…) or its record, or from the gateway: \
             curl -o FILE {}/ipfs/{cid}",
            client.base()
        );
    }
    let (blob, name) = if cids::link_kind(&cid) == LinkKind::Blob {
        (cid, None)
    } else {
        let v = rt.block_on(client.record_as(&args.cid, false, ctx.as_handle.as_deref()))?;
        let body = &v["record"]["body"];
        let file = if body["file"].is_object() {
            &body["file"]
        } else {
            body
        };
        if v["private"]["readable"] == false {
            bail!(
                "{cid} is private and you are not among its readers: its file does not open for you"
            );
        }
        let blob = file["blob"]["/"].as_str().ok_or_else(|| {
            let kind = v["record"]["type"].as_str().unwrap_or("record");
            anyhow!(
                "{cid} is {} record, which holds no file",
                mnode_dag::registry::with_article(kind)
            )
        })?;
        let name = file["name"].as_str().map(str::to_owned);
        if file["sealed"].is_object() {
            return get_sealed(&args, ctx, client, &rt, &cid, parse_cid(blob)?, name);
        }
        (parse_cid(blob)?, name)
    };
    let output = args
        .output
        .unwrap_or_else(|| PathBuf::from(name.unwrap_or_else(|| blob.to_string())));
    check_output(&output, args.parents)?;
    let abs = std::path::absolute(&output)?;
    let pb = progress_bar(0, ctx)?;
    let blob_text = blob.to_string();
    // The export starts once the first bytes are in (or the fetch is done, for a file held
    // already) and follows the fetch, so the file is on disk about when the last byte arrives.
    // Either failing ends both: a failed fetch drops the export, whose temp file goes with it.
    let (arrived, first_bytes) = tokio::sync::oneshot::channel::<()>();
    let mut arrived = Some(arrived);
    let bar = &pb;
    let fetch = client.fetch_progress(&blob_text, move |held, size| {
        if let Some(size) = size {
            bar.set_length(size);
        }
        bar.set_position(held);
        if held > 0
            && let Some(arrived) = arrived.take()
        {
            arrived.send(()).ok();
        }
    });
    let export = async {
        // An error here means the fetch has ended (its progress callback is gone).
        first_bytes.await.ok();
        client.export(&blob_text, &abs, args.parents).await
    };
    let (fetched, v) = rt.block_on(futures_lite::future::try_zip(fetch, export))?;
    pb.finish_and_clear();
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

/// `get` of a private record's file: the daemon fetches the sealed blob, then opens it for the
/// token's account while this writes it out (to a temp file beside the output, renamed when
/// complete, so a failure leaves nothing half-written).
fn get_sealed(
    args: &GetArgs,
    ctx: &Ctx,
    client: &mnode_api::client::Client,
    rt: &tokio::runtime::Runtime,
    record: &Cid,
    blob: Cid,
    name: Option<String>,
) -> anyhow::Result<ExitCode> {
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(name.unwrap_or_else(|| record.to_string())));
    check_output(&output, args.parents)?;
    if args.parents
        && let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir)?;
    }
    let pb = progress_bar(0, ctx)?;
    let bar = &pb;
    let fetched = rt.block_on(client.fetch_progress(&blob.to_string(), move |held, size| {
        if let Some(size) = size {
            bar.set_length(size);
        }
        bar.set_position(held);
    }))?;
    pb.finish_and_clear();
    let dir = output
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    let size = rt.block_on(async {
        let mut resp = client
            .record_file(&record.to_string(), ctx.as_handle.as_deref(), 0, None)
            .await?;
        let mut size = 0u64;
        while let Some(chunk) = resp.chunk().await? {
            temp.write_all(&chunk)?;
            size += chunk.len() as u64;
        }
        anyhow::Ok(size)
    })?;
    temp.as_file().sync_all()?;
    temp.persist(&output)?;
    let abs = std::path::absolute(&output)?;
    if ctx.out.json {
        ctx.out.print_json(&json!({
            "cid": blob.to_string(),
            "record": record.to_string(),
            "path": abs,
            "size": size,
            "transferred": fetched["transferred"],
        }))?;
    } else {
        say!(
            "wrote the private file of {record} ({size} bytes, {} fetched from peers) to {}",
            fetched["transferred"],
            output.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The acting account's `did:key` as the daemon knows it.
fn acting_did(
    client: &mnode_api::client::Client,
    rt: &tokio::runtime::Runtime,
    as_handle: Option<&str>,
) -> anyhow::Result<String> {
    let v = match as_handle {
        Some(h) => rt.block_on(client.account(h))?,
        None => rt.block_on(client.me())?,
    };
    v["did"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("the acting account has no key to sign with"))
}

/// The acting account's `art.artist` items named `name` on the daemon, newest first.
fn artists_named_remote(
    client: &mnode_api::client::Client,
    rt: &tokio::runtime::Runtime,
    did: &str,
    name: &str,
) -> anyhow::Result<Vec<String>> {
    let query = [
        ("kind", "art.artist".to_owned()),
        ("author", did.to_owned()),
        ("limit", "1000".to_owned()),
    ];
    let listed = rt.block_on(client.list(&query))?;
    let mut out = vec![];
    for item in listed["items"].as_array().into_iter().flatten() {
        // Summaries are cut at 60 characters: read the record when the start matches.
        let summary = item["summary"].as_str().unwrap_or_default();
        let head: String = summary.chars().take_while(|c| *c != '…').collect();
        if !name.replace('\n', " ").starts_with(&head) || head.is_empty() {
            continue;
        }
        let id = item["id"].as_str().unwrap_or_default();
        let r = rt.block_on(client.record(id, false))?;
        if r["record"]["body"]["name"]["full"] == name {
            out.push(id.to_owned());
        }
    }
    Ok(out)
}

/// `publish release` while a daemon holds the repo: files are imported by the daemon from this
/// disk; their records and new artists are created in one batch and then the release, signed
/// as the acting account.
fn publish_remote(
    args: ReleaseArgs,
    ctx: &Ctx,
    client: &mnode_api::client::Client,
) -> anyhow::Result<ExitCode> {
    let plan = plan_release(&args)?;
    let rt = runtime()?;
    let as_handle = ctx.as_handle.as_deref();
    // Artists: resolved before anything is written; new ones are created with the files.
    let mut picks = Vec::new();
    let mut new_artists = Vec::new();
    let mut did = None;
    for a in &args.artists {
        if let Ok(cid) = cids::parse(a) {
            let r = rt
                .block_on(client.record(&cid.to_string(), false))
                .with_context(|| format!("--artist {a}"))?;
            let kind = r["record"]["type"].as_str().unwrap_or_default();
            if kind != "art.artist" && kind != "art.artist_group" {
                bail!(
                    "--artist {a}: is {}, not an artist",
                    mnode_dag::registry::with_article(kind)
                );
            }
            picks.push(ArtistPick {
                given: a.clone(),
                id: r["id"].as_str().unwrap_or_default().to_owned(),
                new: false,
                others: 0,
            });
            continue;
        }
        let did = match &did {
            Some(d) => d,
            None => did.insert(acting_did(client, &rt, as_handle)?),
        };
        let named = artists_named_remote(client, &rt, did, a)?;
        let id = match named.first() {
            Some(id) => id.clone(),
            None => {
                new_artists.push((picks.len(), a.clone()));
                String::new()
            }
        };
        picks.push(ArtistPick {
            given: a.clone(),
            id,
            new: named.is_empty(),
            others: named.len().saturating_sub(1),
        });
    }
    let pb = progress_bar(plan.size, ctx)?;
    let imported = import_remote(&plan.files, client, &rt, &pb)?;
    let mut records: Vec<(String, Value)> = imported
        .iter()
        .map(|(_, kind, body)| (kind.clone(), body.clone()))
        .collect();
    for (_, name) in &new_artists {
        records.push(("art.artist".into(), json!({ "name": { "full": name } })));
    }
    let mut ids = create_remote(client, &rt, records, as_handle)?;
    for (i, _) in new_artists.iter().rev() {
        if let (Some(pick), Some(id)) = (picks.get_mut(*i), ids.pop()) {
            pick.id = id;
        }
    }
    let added: Vec<Added> = imported
        .into_iter()
        .zip(ids)
        .map(|((a, kind, _), id)| Added {
            record: id,
            kind,
            ..a
        })
        .collect();
    let kinds: Vec<&str> = added.iter().map(|a| a.kind.as_str()).collect();
    let link = |id: &str| json!({ "/": id });
    let mut body = json!({
        "title": { "full": args.title },
        "kind": release_kind(&kinds),
        "artists": picks.iter().map(|p| link(&p.id)).collect::<Vec<_>>(),
        "files": added.iter().map(|a| link(&a.record)).collect::<Vec<_>>(),
        "tags": args.tags,
    });
    if let Some(cover) = plan.cover.and_then(|i| added.get(i)) {
        body["cover"] = link(&cover.record);
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
    print_release(ctx, release, &picks, &added)
}

// ---------------------------------------------------------------------------------------------
// `cat`.

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

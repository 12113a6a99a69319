//! `mnode record …` and `mnode query`: every registered kind through one generic path.

use super::say;
use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context as _, anyhow, bail};
use mnode_dag::{Cid, Draft, Ipld, Record, cbor, json, query::Query, registry};
use mnode_node::store::{Cursor, ListFilter, Put, QueryResult, Store};
use serde_json::json;

use super::{Ctx, parse_cid};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Create an item of KIND, signed by the acting account.
    Create {
        /// The kind (`mnode types` lists them).
        kind: String,
        #[command(flatten)]
        body: BodyArgs,
    },
    /// Write a new version of an item.
    Update {
        /// The item's id (or any of its versions' CIDs).
        id: String,
        #[command(flatten)]
        body: BodyArgs,
    },
    /// Delete an item (a tombstone version; its history stays verifiable).
    Delete {
        /// The item's id.
        id: String,
    },
    /// Show an item's current version (or a given version) as DAG-JSON.
    Show {
        /// The item's id or a version's CID.
        id: String,
        /// Show exactly the version named by the CID instead of the item's head.
        #[arg(long)]
        exact: bool,
    },
    /// List an item's versions.
    History {
        /// The item's id.
        id: String,
    },
    /// List items of a kind, newest first.
    List {
        /// The kind; omit to list every kind.
        kind: Option<String>,
        /// Only by this author (a did:key or a local handle).
        #[arg(long)]
        author: Option<String>,
        /// Only with this tag or a tag under it.
        #[arg(long)]
        tag: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Continue from the cursor a previous page printed.
        #[arg(long)]
        cursor: Option<String>,
    },
}

/// The body of a new version: a DAG-JSON file, or fields set one by one.
#[derive(Debug, clap::Args)]
pub(crate) struct BodyArgs {
    /// The body as DAG-JSON (`-` for standard input).
    #[arg(long, value_name = "FILE", conflicts_with = "set")]
    file: Option<PathBuf>,
    /// Set a field: `--set title.full="Blue Train" --set tags='["music/jazz"]'`. Values are
    /// read as DAG-JSON when they parse as JSON, else as text.
    #[arg(long, value_name = "FIELD=VALUE")]
    set: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct QueryArgs {
    /// The query, as in `art.artists.list()` or `social.posts.tag = 'jazz'`.
    query: String,
}

impl BodyArgs {
    /// The body: the file's, or `base` (empty for a new item) with the `--set` fields applied.
    fn body(&self, base: Option<&Ipld>) -> anyhow::Result<Ipld> {
        if let Some(file) = &self.file {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read {}", file.display()))?
            };
            return json::from_dag_json(&text)
                .map_err(|e| anyhow!("{}: not DAG-JSON: {e}", file.display()));
        }
        if self.set.is_empty() {
            bail!("give the body with --file FILE or fields with --set field=value");
        }
        let mut body = base.cloned().unwrap_or(Ipld::Map(Default::default()));
        for pair in &self.set {
            let (path, value) = pair
                .split_once('=')
                .ok_or_else(|| anyhow!("--set {pair}: expected field=value"))?;
            let value = match serde_json::from_str::<serde_json::Value>(value) {
                Ok(v) => json::from_json_value(&v).map_err(|e| anyhow!("--set {pair}: {e}"))?,
                Err(_) => Ipld::String(value.to_owned()),
            };
            set_path(&mut body, path, value).map_err(|e| anyhow!("--set {pair}: {e}"))?;
        }
        Ok(body)
    }
}

fn set_path(target: &mut Ipld, path: &str, value: Ipld) -> Result<(), String> {
    let mut cur = target;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            return Err(format!("{path:?} is not a field path"));
        }
        let Ipld::Map(map) = cur else {
            return Err(format!("{} is not a map", parts[..i].join(".")));
        };
        if i == parts.len() - 1 {
            map.insert((*part).to_owned(), value);
            return Ok(());
        }
        cur = map
            .entry((*part).to_owned())
            .or_insert_with(|| Ipld::Map(Default::default()));
    }
    Ok(())
}

/// A record as JSON for output: its CID, id, kind and DAG-JSON.
pub(crate) fn record_json(r: &Record) -> anyhow::Result<serde_json::Value> {
    Ok(json!({
        "cid": r.cid().to_string(),
        "id": r.id().to_string(),
        "type": r.kind(),
        "seq": r.seq(),
        "record": json::to_json_value(&cbor::decode_ipld(r.bytes())?)?,
    }))
}

fn print_put(ctx: &Ctx, verb: &str, record: &Record, put: &Put) -> anyhow::Result<()> {
    if ctx.out.json {
        let mut v = record_json(record)?;
        v["fork"] = json!(matches!(put, Put::Stored { fork: true, .. }));
        ctx.out.print_json(&v)?;
    } else {
        say!("{verb} {} {}", record.kind(), record.id());
        say!("version {} (seq {})", record.cid(), record.seq());
        if matches!(put, Put::Stored { fork: true, .. }) {
            say!(
                "note: this version forks the item (another version already replaced the same one)"
            );
        }
    }
    Ok(())
}

/// Resolves an item id (or a version CID) to its head record.
pub(crate) fn head(store: &Store, text: &str) -> anyhow::Result<Record> {
    let cid = parse_cid(text)?;
    store
        .head(&cid)?
        .ok_or_else(|| anyhow!("no item {cid} on this node"))
}

/// The record verbs while a daemon holds the repo: through its API.
fn run_remote(
    command: Command,
    ctx: &Ctx,
    client: &mnode_api::client::Client,
) -> anyhow::Result<ExitCode> {
    let rt = super::runtime()?;
    match command {
        Command::Create { kind, body } => {
            let body = json::to_json_value(&body.body(None)?).map_err(|e| anyhow!("{e}"))?;
            let v = rt.block_on(client.create(&kind, body, ctx.as_handle.as_deref()))?;
            if ctx.out.json {
                ctx.out.print_json(&v)?;
            } else {
                say!("created {}", v["id"].as_str().unwrap_or_default());
            }
        }
        Command::Show { id, exact } => {
            let v = rt.block_on(client.record(&id, exact))?;
            if ctx.out.json {
                ctx.out.print_json(&v)?;
            } else {
                say!("{}", serde_json::to_string_pretty(&v["record"])?);
                say!("cid: {}", v["cid"].as_str().unwrap_or_default());
            }
        }
        Command::List {
            kind,
            author,
            tag,
            limit,
            cursor,
        } => {
            let mut q = vec![("limit", limit.to_string())];
            q.extend(kind.map(|k| ("kind", k)));
            q.extend(author.map(|a| ("author", a)));
            q.extend(tag.map(|t| ("tag", t)));
            q.extend(cursor.map(|c| ("cursor", c)));
            let v = rt.block_on(client.list(&q))?;
            if ctx.out.json {
                ctx.out.print_json(&v)?;
            } else {
                for i in v["items"].as_array().into_iter().flatten() {
                    let s = |k: &str| i[k].as_str().unwrap_or_default().to_owned();
                    say!("{}  {:16}  {}", s("id"), s("type"), s("summary"));
                }
                if let Some(next) = v["next"].as_str() {
                    say!("more: --cursor {next}");
                }
            }
        }
        Command::Update { id, body } => {
            let current = rt.block_on(client.record(&id, false))?;
            let base = json::from_json_value(&current["record"]["body"]).ok();
            let new =
                json::to_json_value(&body.body(base.as_ref())?).map_err(|e| anyhow!("{e}"))?;
            let v = rt.block_on(client.update(&id, new))?;
            print_remote(ctx, "updated", &v)?;
        }
        Command::Delete { id } => {
            let v = rt.block_on(client.delete(&id))?;
            print_remote(ctx, "deleted", &v)?;
        }
        Command::History { id } => {
            let v = rt.block_on(client.history(&id))?;
            if ctx.out.json {
                ctx.out.print_json(&v)?;
            } else {
                for ver in v["versions"].as_array().into_iter().flatten() {
                    say!(
                        "{:>4}  {}  {}{}{}",
                        ver["seq"],
                        ver["cid"].as_str().unwrap_or_default(),
                        ver["updated"],
                        if ver["head"] == true { "  head" } else { "" },
                        if ver["deleted"] == true {
                            "  deleted"
                        } else {
                            ""
                        },
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_remote(ctx: &Ctx, verb: &str, v: &serde_json::Value) -> anyhow::Result<()> {
    if ctx.out.json {
        ctx.out.print_json(v)
    } else {
        say!(
            "{verb} {} (version {}, {})",
            v["id"].as_str().unwrap_or_default(),
            v["seq"],
            v["cid"].as_str().unwrap_or_default()
        );
        Ok(())
    }
}

/// Creates, stores and pins an item of `kind`, signed by the acting account.
fn create_in(
    ctx: &Ctx,
    repo: &mnode_node::repo::Repo,
    kind: &str,
    body: Ipld,
) -> anyhow::Result<()> {
    if registry::lookup(kind).is_none() {
        let names: Vec<&str> = registry::KINDS.iter().map(|k| k.name).collect();
        bail!("unknown kind {kind:?}; the kinds are: {}", names.join(", "));
    }
    let (_, key) = ctx.signer(repo)?;
    let record = Draft::new(kind, body).sign(&key)?;
    let put = repo.store().put(record.clone())?;
    repo.store().pin(&record.id(), true)?;
    print_put(ctx, "created", &record, &put)
}

/// `create` on the repo directly, with a JSON body (for commands like `post` when no daemon
/// runs).
pub(crate) fn create_local(
    ctx: &Ctx,
    kind: &str,
    body: serde_json::Value,
) -> anyhow::Result<ExitCode> {
    let repo = ctx.open()?;
    let body = json::from_json_value(&body).map_err(|e| anyhow!("{e}"))?;
    create_in(ctx, &repo, kind, body)?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn run(command: Command, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    if let Some(client) = super::net::daemon_client(ctx)? {
        return run_remote(command, ctx, &client);
    }
    let repo = ctx.open()?;
    let store = repo.store();
    match command {
        Command::Create { kind, body } => {
            create_in(ctx, &repo, &kind, body.body(None)?)?;
        }
        Command::Update { id, body } => {
            let current = head(store, &id)?;
            if current.is_tombstone() {
                bail!(
                    "{} was deleted; a deleted item takes no new versions",
                    current.id()
                );
            }
            let (_, key) = ctx.signer(&repo)?;
            let record = current.update_body(body.body(current.body())?).sign(&key)?;
            let put = store.put(record.clone())?;
            print_put(ctx, "updated", &record, &put)?;
        }
        Command::Delete { id } => {
            let current = head(store, &id)?;
            if current.is_tombstone() {
                bail!("{} is already deleted", current.id());
            }
            let (_, key) = ctx.signer(&repo)?;
            let record = current.delete().sign(&key)?;
            let put = store.put(record.clone())?;
            print_put(ctx, "deleted", &record, &put)?;
        }
        Command::Show { id, exact } => {
            let record = if exact {
                let cid = parse_cid(&id)?;
                store
                    .record(&cid)?
                    .ok_or_else(|| anyhow!("no record {cid} on this node"))?
            } else {
                head(store, &id)?
            };
            let v = record_json(&record)?;
            if ctx.out.json {
                ctx.out.print_json(&v)?;
            } else {
                say!("{}", serde_json::to_string_pretty(&v["record"])?);
                say!("cid: {}", record.cid());
            }
        }
        Command::History { id } => {
            let cid = parse_cid(&id)?;
            let item_id = store
                .item_id(&cid)?
                .ok_or_else(|| anyhow!("no item {cid} on this node"))?;
            let item = store
                .item(&item_id)?
                .ok_or_else(|| anyhow!("no item {cid} on this node"))?;
            let history = store.history(&item_id)?;
            if ctx.out.json {
                let versions: Vec<_> = history
                    .iter()
                    .map(|v| json!({ "cid": v.cid.to_string(), "seq": v.seq, "updated": v.updated, "deleted": v.tombstone, "head": v.cid == item.head }))
                    .collect();
                ctx.out.print_json(&json!({ "id": item_id.to_string(), "type": item.kind, "forked": item.forked(), "versions": versions }))?;
            } else {
                say!("{} {} by {}", item.kind, item_id, item.author);
                for v in &history {
                    let mark = if v.cid == item.head { "*" } else { " " };
                    let what = if v.tombstone { " deleted" } else { "" };
                    say!("{mark} {:>3} {} {}{what}", v.seq, v.cid, v.updated);
                }
                if item.forked() {
                    say!(
                        "forked: {} versions compete; * marks the head",
                        item.tips.len()
                    );
                }
            }
        }
        Command::List {
            kind,
            author,
            tag,
            limit,
            cursor,
        } => {
            if let Some(k) = &kind
                && registry::lookup(k).is_none()
                && store
                    .list(&ListFilter {
                        kind: Some(k.clone()),
                        limit: 1,
                        ..ListFilter::default()
                    })?
                    .items
                    .is_empty()
            {
                bail!("unknown kind {k:?}; `mnode types` lists the kinds");
            }
            let author = match author {
                None => None,
                Some(a) if a.starts_with("did:") => {
                    Some(a.parse().map_err(|e| anyhow!("--author: {e}"))?)
                }
                Some(handle) => {
                    let account = repo
                        .accounts()
                        .get(&handle)?
                        .ok_or_else(|| anyhow!("--author: no account {handle:?}"))?;
                    account.did().copied()
                }
            };
            let cursor: Option<Cursor> = cursor.map(|c| c.parse()).transpose()?;
            let page = store.list(&ListFilter {
                kind,
                author,
                tag,
                cursor,
                limit,
                ..ListFilter::default()
            })?;
            if ctx.out.json {
                let items: Vec<_> = page
                    .items
                    .iter()
                    .map(|(id, i)| json!({ "id": id.to_string(), "type": i.kind, "author": i.author.to_string(), "created": i.created, "updated": i.updated, "head": i.head.to_string(), "versions": i.versions }))
                    .collect();
                ctx.out.print_json(
                    &json!({ "items": items, "next": page.next.map(|c| c.to_string()) }),
                )?;
            } else {
                for (id, i) in &page.items {
                    let title = store
                        .record(&i.head)?
                        .map(|r| r.summary())
                        .unwrap_or_default();
                    say!("{id}  {:16}  {title}", i.kind);
                }
                if let Some(next) = page.next {
                    say!("more: --cursor {next}");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn query(args: QueryArgs, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let q = Query::parse(&args.query)?;
    if let Some(client) = super::net::daemon_client(ctx)? {
        let v = super::runtime()?.block_on(client.query(&args.query))?;
        if ctx.out.json {
            ctx.out.print_json(&v)?;
        } else if let Some(n) = v["count"].as_u64() {
            say!("{n}");
        } else {
            for i in v["items"].as_array().into_iter().flatten() {
                let s = |k: &str| i[k].as_str().unwrap_or_default().to_owned();
                say!("{}  {:16}  {}", s("id"), s("type"), s("summary"));
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let repo = ctx.open()?;
    let store = repo.store();
    match store.query(&q)? {
        QueryResult::Count(n) => {
            if ctx.out.json {
                ctx.out.print_json(&json!({ "count": n }))?;
            } else {
                say!("{n}");
            }
        }
        QueryResult::Items(ids) => {
            let heads: Vec<(Cid, Record)> = ids
                .iter()
                .filter_map(|id| store.head(id).ok().flatten().map(|r| (*id, r)))
                .collect();
            if ctx.out.json {
                let items: anyhow::Result<Vec<_>> =
                    heads.iter().map(|(_, r)| record_json(r)).collect();
                ctx.out.print_json(&json!({ "items": items? }))?;
            } else {
                for (id, r) in &heads {
                    say!("{id}  {:16}  {}", r.kind(), r.summary());
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

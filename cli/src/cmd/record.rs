//! `mnode record …` and `mnode query`: every registered kind through one generic path.

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context as _, anyhow, bail};
use mnode_api::client::Client;
use mnode_dag::{
    Ipld, json,
    query::Query,
    registry::{self, Strictness},
};
use serde_json::Value;

use super::{
    Ctx,
    api::{Names, acting, did_of, print_items, s, with_api},
    say,
};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Create an item of KIND, signed by the acting account.
    Create {
        /// The kind (`mnode types` lists them).
        kind: String,
        #[command(flatten)]
        body: BodyArgs,
        /// Make the item a group's (its id): any member the group allows may then change it.
        #[arg(long, value_name = "GROUP")]
        owner: Option<String>,
        /// Only this person may read it (and you): a did:key or a handle on this node;
        /// repeat for more people. The body is encrypted; the record still travels to anyone.
        #[arg(long, value_name = "DID|HANDLE")]
        to: Vec<String>,
        /// Only the current members of this group (its id) may read it (and you).
        #[arg(long, value_name = "GROUP")]
        to_group: Option<String>,
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

    /// Checks `body` against `kind` before it goes anywhere, so a mistake costs nothing; a
    /// wrong field set with `--set` is told how `--set` writes lists, maps and numbers.
    fn check(&self, kind: &str, body: &Ipld) -> anyhow::Result<()> {
        let Some(info) = registry::lookup(kind) else {
            return Ok(());
        };
        // The record's own `$` fields (a group's `$owner`) are not the kind's.
        let (_, fields) = registry::split_record_fields(body, Strictness::Receive)
            .map_err(|e| anyhow!("{kind}: {e}"))?;
        let Err(e) = info.validate(&fields, Strictness::Create) else {
            return Ok(());
        };
        let set_here = self.set.iter().any(|pair| {
            pair.split_once('=')
                .is_some_and(|(path, _)| e.path == path || e.path.starts_with(&format!("{path}.")))
        });
        if set_here && e.message.starts_with("expected") {
            bail!(
                "{kind}: {e}; --set reads lists and numbers as JSON, as in \
                 --set tags='[\"music\"]', and sets a map's fields one by one, as in \
                 --set title.full=\"Blue Train\""
            );
        }
        bail!("{kind}: {e}");
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

/// A kind given on the command line, checked against the registry; a near miss (a plural
/// collection name, a typo) is answered with the kind meant.
pub(crate) fn known_kind(kind: &str) -> anyhow::Result<()> {
    if registry::lookup(kind).is_some() {
        return Ok(());
    }
    match registry::suggest(kind) {
        Some(k) => bail!("unknown kind {kind:?}; did you mean {}?", k.name),
        None => bail!("unknown kind {kind:?}; `mnode types` lists the kinds"),
    }
}

/// Prints what a write made: `created art.release ID`, its version and whether it forks.
fn print_written(ctx: &Ctx, verb: &str, kind: &str, v: &Value) -> anyhow::Result<()> {
    if ctx.out.json {
        let mut v = v.clone();
        v["type"] = kind.into();
        return ctx.out.print_json(&v);
    }
    say!("{verb} {kind} {}", s(&v["id"]));
    say!("version {} (seq {})", s(&v["cid"]), v["seq"]);
    if v["forked"] == true {
        say!("note: this version forks the item (another version already replaced the same one)");
    }
    Ok(())
}

/// The kind of a record as the API reads it.
fn kind_of(v: &Value) -> String {
    s(&v["record"]["type"]).to_owned()
}

/// Every record verb goes through the repo's API (the daemon's, or one run in this process),
/// so each answers the same with and without a daemon.
pub(crate) fn run(command: Command, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    match command {
        Command::Create {
            kind,
            body,
            owner,
            to,
            to_group,
        } => {
            known_kind(&kind)?;
            let owner = owner
                .map(|g| super::discuss::cid_arg("the owner group", &g))
                .transpose()?;
            let to_group = to_group
                .map(|g| super::discuss::cid_arg("the group to send to", &g))
                .transpose()?;
            let ipld = body.body(None)?;
            body.check(&kind, &ipld)?;
            let json = json::to_json_value(&ipld).map_err(|e| anyhow!("{e}"))?;
            with_api(ctx, async |client| {
                let me = ctx.as_handle.as_deref();
                let v = if !to.is_empty() || to_group.is_some() {
                    client
                        .create_private(&kind, json, owner.as_deref(), &to, to_group.as_deref(), me)
                        .await?
                } else {
                    match &owner {
                        Some(g) => client.create_owned(&kind, json, g, me).await?,
                        None => client.create(&kind, json, me).await?,
                    }
                };
                print_written(ctx, "created", &kind, &v)
            })?;
        }
        Command::Update { id, body } => {
            let id = super::discuss::cid_arg("the item", &id)?;
            with_api(ctx, async |client| {
                let me = acting(client, ctx).await?;
                // Read as the account that writes: a private item opens for its readers.
                let current = client.record_as(&id, false, Some(&me)).await?;
                let kind = kind_of(&current);
                // A private item this account cannot read: a new version would lose its text.
                if current["private"]["readable"] == false {
                    bail!(
                        "{id} is private and this account is not among its readers, so it \
                         cannot write a new version of it"
                    );
                }
                // A deleted item has no body; the API answers that it takes no new versions.
                let deleted = current["record"]["body"].is_null();
                let base = json::from_json_value(&current["record"]["body"]).ok();
                let ipld = body.body(base.as_ref().filter(|_| !deleted))?;
                if !deleted {
                    body.check(&kind, &ipld)?;
                }
                let new = json::to_json_value(&ipld).map_err(|e| anyhow!("{e}"))?;
                let v = client.update(&id, new, Some(&me)).await?;
                print_written(ctx, "updated", &kind, &v)
            })?;
        }
        Command::Delete { id } => {
            let id = super::discuss::cid_arg("the item", &id)?;
            with_api(ctx, async |client| {
                let kind = kind_of(&client.record(&id, false).await?);
                let me = acting(client, ctx).await?;
                let v = client.delete(&id, Some(&me)).await?;
                print_written(ctx, "deleted", &kind, &v)
            })?;
        }
        Command::Show { id, exact } => {
            let id = super::discuss::cid_arg("the record", &id)?;
            let v = with_api(ctx, async |client| {
                Ok(client
                    .record_as(&id, exact, ctx.as_handle.as_deref())
                    .await?)
            })?;
            if ctx.out.json {
                ctx.out.print_json(&v)?;
            } else {
                // Only the record on stdout, so that `| jq` reads it; which version it is goes
                // to stderr.
                say!("{}", serde_json::to_string_pretty(&v["record"])?);
                eprintln!("cid: {}", s(&v["cid"]));
            }
        }
        Command::History { id } => {
            let id = super::discuss::cid_arg("the item", &id)?;
            with_api(ctx, async |client| {
                let v = client.history(&id).await?;
                if ctx.out.json {
                    return ctx.out.print_json(&v);
                }
                let author = Names::load(client).await.get(client, s(&v["author"])).await;
                say!("{} {} by {author}", s(&v["type"]), s(&v["id"]));
                for ver in v["versions"].as_array().into_iter().flatten() {
                    let mark = if ver["head"] == true { "*" } else { " " };
                    let what = if ver["deleted"] == true {
                        "  deleted"
                    } else {
                        ""
                    };
                    say!(
                        "{mark} {:>3}  {}  {}{what}",
                        ver["seq"],
                        s(&ver["cid"]),
                        mnode_dag::when::since(ver["updated"].as_u64().unwrap_or(0)),
                    );
                }
                if v["forked"] == true {
                    say!("forked: versions compete; * marks the head");
                }
                Ok(())
            })?;
        }
        Command::List {
            kind,
            author,
            tag,
            limit,
            cursor,
        } => {
            with_api(ctx, async |client| {
                let mut q = vec![("limit", limit.to_string())];
                if let Some(a) = &author {
                    let did = did_of(client, ctx, Some(a))
                        .await
                        .with_context(|| format!("--author {a}"))?;
                    q.push(("author", did));
                }
                q.extend(kind.clone().map(|k| ("kind", k)));
                q.extend(tag.clone().map(|t| ("tag", t)));
                q.extend(cursor.clone().map(|c| ("cursor", c)));
                // As the acting account: the private items it reads are listed too.
                q.extend(ctx.as_handle.clone().map(|h| ("as", h)));
                let v = client.list(&q).await?;
                if let Some(k) = &kind
                    && v["items"].as_array().is_none_or(Vec::is_empty)
                    && cursor.is_none()
                {
                    // A kind nobody registered and nothing stored under: most likely a typo.
                    // (Kinds from newer nodes are stored and listed even when unknown here.)
                    known_kind(k)?;
                }
                if ctx.out.json {
                    return ctx.out.print_json(&v);
                }
                let items = v["items"].as_array().cloned().unwrap_or_default();
                print_items(client, &items, v["next"].as_str()).await;
                Ok(())
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Creates an item of `kind` through the repo's API (for commands like `post`).
pub(crate) fn create(ctx: &Ctx, kind: &str, body: Value) -> anyhow::Result<ExitCode> {
    with_api(ctx, async |client| {
        let v = client.create(kind, body, ctx.as_handle.as_deref()).await?;
        print_written(ctx, "created", kind, &v)
    })?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn query(args: QueryArgs, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    Query::parse(&args.query)?;
    with_api(ctx, async |client: &Client| {
        let v = client.query(&args.query).await?;
        if ctx.out.json {
            ctx.out.print_json(&v)?;
        } else if let Some(n) = v["count"].as_u64() {
            say!("{n}");
        } else {
            let items = v["items"].as_array().cloned().unwrap_or_default();
            print_items(client, &items, None).await;
        }
        Ok(ExitCode::SUCCESS)
    })
}

//! Discussion: `feed`, `timeline`, `forum …`, `thread …`, `reply`, `fact …`, `context …`.
//!
//! Every verb here goes through the HTTP API: the running daemon's, or, when no daemon runs,
//! the same API served for the length of the command by a node started in this process on the
//! repo, with no network listeners ([`Local`]). So the rules of forums, threads, replies, forks
//! and facts live once, in `mnode-api`, and a verb answers offline exactly what it answers
//! through a daemon. Following needs the network and so a daemon, as `mnode follow` does.

use super::say;
use std::{collections::HashMap, process::ExitCode};

use anyhow::{Context as _, bail};
use mnode_api::client::Client;
use mnode_dag::when;
use serde_json::{Value, json};

pub(super) use super::api::{print_json_or, s, with_api};
use super::{
    Ctx,
    api::{Names, did_of, line, print_items},
    parse_cid,
};

/// Most items asked for in one page (the API's largest page).
const MAX_PAGE: usize = 1000;
/// How deep `fact show` follows facts under facts.
const MAX_FACT_DEPTH: usize = 8;

// ---------------------------------------------------------------------------------------------
// Arguments

#[derive(Debug, clap::Args)]
pub(crate) struct FeedArgs {
    /// The author: a did:key or the handle of an account on this node (default: the acting
    /// account).
    who: Option<String>,
    /// Only items of this kind, as in social.post.
    #[arg(long)]
    kind: Option<String>,
    #[command(flatten)]
    page: PageArgs,
}

#[derive(Debug, clap::Args)]
pub(crate) struct TimelineArgs {
    #[command(flatten)]
    page: PageArgs,
}

#[derive(Debug, clap::Args)]
pub(crate) struct PageArgs {
    /// At most this many (up to 1000).
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Continue from the cursor a previous page printed.
    #[arg(long)]
    cursor: Option<String>,
}

impl PageArgs {
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = vec![("limit", self.limit.clamp(1, MAX_PAGE).to_string())];
        q.extend(self.cursor.clone().map(|c| ("cursor", c)));
        q
    }
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum ForumCommand {
    /// Create a forum, signed by the acting account.
    Create {
        /// The forum's name.
        name: String,
        /// What the forum is for.
        #[arg(long)]
        description: Option<String>,
        /// A moderator: a did:key or a local handle (repeatable).
        #[arg(long = "moderator", value_name = "DID")]
        moderators: Vec<String>,
        /// A tag of the forum's tree, such as music/jazz (repeatable; parents are added).
        #[arg(long = "tag", value_name = "PATH")]
        tags: Vec<String>,
    },
    /// List forums, newest first.
    List {
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show a forum and its branches.
    Show {
        /// The forum's id.
        id: String,
    },
    /// Follow a forum: its branches now and those made later (needs a running daemon).
    Follow {
        /// The forum's id.
        id: String,
    },
    /// Create a branch in a forum.
    Branch {
        /// The forum's id.
        forum: String,
        /// The branch's name.
        name: String,
        /// What belongs in the branch.
        #[arg(long)]
        description: Option<String>,
        /// Put the branch under this branch of the same forum.
        #[arg(long, value_name = "BRANCH")]
        parent: Option<String>,
    },
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum ThreadCommand {
    /// Start a thread in a forum branch, with its first post.
    Start {
        /// The branch's id.
        branch: String,
        /// The thread's title.
        #[arg(long)]
        title: String,
        /// The text of the first post.
        #[arg(long)]
        text: String,
        /// A tag such as music/jazz (repeatable).
        #[arg(long = "tag", value_name = "PATH")]
        tags: Vec<String>,
    },
    /// Show a thread: its posts as a tree of replies, and the threads forked from it.
    Show {
        /// The thread's id.
        id: String,
    },
    /// Fork a thread at one of its posts: a new thread that goes on from there.
    Fork {
        /// The thread's id.
        thread: String,
        /// The post to fork at.
        #[arg(long, value_name = "POST")]
        at: String,
        /// The new thread's title (default: the thread's, with " (fork)").
        #[arg(long)]
        title: Option<String>,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct ReplyArgs {
    /// The post to answer.
    cid: String,
    /// The text.
    #[arg(long)]
    text: String,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum FactCommand {
    /// Record a fact, signed by the acting account.
    Add {
        /// The statement.
        statement: String,
        /// What backs it: a title, optionally with `=URL` (repeatable).
        #[arg(long = "source", value_name = "TITLE[=URL]")]
        sources: Vec<String>,
        /// The broader fact this one sits under.
        #[arg(long, value_name = "FACT")]
        parent: Option<String>,
        /// A tag such as history/jazz (repeatable).
        #[arg(long = "tag", value_name = "PATH")]
        tags: Vec<String>,
    },
    /// Show a fact, the facts under it as a tree, and its context notes.
    Show {
        /// The fact's id.
        id: String,
    },
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum ContextCommand {
    /// Attach a context note to any record.
    Add {
        /// The record the note is about.
        cid: String,
        /// The note.
        #[arg(long)]
        text: String,
        /// What backs it: a title, optionally with `=URL` (repeatable).
        #[arg(long = "source", value_name = "TITLE[=URL]")]
        sources: Vec<String>,
    },
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// A DAG-JSON link.
pub(super) fn link(cid: &str) -> Value {
    json!({ "/": cid })
}

/// The CID a DAG-JSON link names.
fn link_cid(v: &Value) -> Option<&str> {
    v["/"].as_str()
}

/// Checks that a CID given on the command line parses, before anything is started.
pub(super) fn cid_arg(what: &str, text: &str) -> anyhow::Result<String> {
    parse_cid(text)
        .map(|c| c.to_string())
        .map_err(|e| e.context(what.to_owned()))
}

/// The sources of `--source TITLE[=URL]` flags; a value after `=` that is a CID becomes a
/// link to that record or file.
fn sources(flags: &[String]) -> anyhow::Result<Vec<Value>> {
    flags
        .iter()
        .map(|f| {
            let (title, at) = match f.split_once('=') {
                Some((t, u)) => (t.trim(), Some(u.trim())),
                None => (f.trim(), None),
            };
            if title.is_empty() {
                bail!("--source {f:?}: give a title, as in --source \"Liner notes=https://…\"");
            }
            let mut v = json!({ "title": title });
            match at {
                None | Some("") => {}
                Some(u) if parse_cid(u).is_ok() => v["link"] = link(u),
                Some(u) => v["url"] = json!(u),
            }
            Ok(v)
        })
        .collect()
}

/// A tag list with every tag's parents (a forum's tree needs them), sorted.
fn tag_tree(tags: &[String]) -> Vec<String> {
    let mut all = std::collections::BTreeSet::new();
    for t in tags {
        let t = t.trim_matches('/');
        let mut at = 0;
        while let Some(i) = t[at..].find('/') {
            all.insert(t[..at + i].to_owned());
            at += i + 1;
        }
        all.insert(t.to_owned());
    }
    all.into_iter().collect()
}

// ---------------------------------------------------------------------------------------------
// feed, timeline

pub(crate) fn feed(args: FeedArgs, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    with_api(ctx, async |client| {
        let did = did_of(client, ctx, args.who.as_deref()).await?;
        let mut q = args.page.query();
        q.extend(args.kind.clone().map(|k| ("kind", k)));
        let v = client.feed(&did, &q).await?;
        if ctx.out.json {
            ctx.out.print_json(&v)?;
        } else {
            let items = v["items"].as_array().cloned().unwrap_or_default();
            print_items(client, &items, v["next"].as_str()).await;
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Sort key of a listing item, newest first as the store orders: (`created`, id bytes).
fn order_key(item: &Value) -> (u64, Vec<u8>) {
    let id = parse_cid(s(&item["id"]))
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    (item["created"].as_u64().unwrap_or(0), id)
}

pub(crate) fn timeline(args: TimelineArgs, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    with_api(ctx, async |client| {
        let me = client.me().await?;
        let handle = s(&me["handle"]).to_owned();
        if let Some(h) = &ctx.as_handle
            && *h != handle
        {
            bail!(
                "a timeline is read by its own account only: the node's token reads {handle}'s; \
                 log in as {h} (the web UI, or POST /api/v1/sessions) to read theirs"
            );
        }
        let did = s(&me["did"]).to_owned();
        let q = args.page.query();
        let limit = args.page.limit.clamp(1, MAX_PAGE);
        // What the account follows, and its own posts (which it does not follow as a topic).
        let followed = client.timeline(&q).await?;
        let mut own_q = q.clone();
        own_q.push(("kind", "social.post".to_owned()));
        let own = client.feed(&did, &own_q).await?;
        let mut items: Vec<Value> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for i in [&followed, &own]
            .iter()
            .flat_map(|v| v["items"].as_array().cloned().unwrap_or_default())
        {
            if seen.insert(s(&i["id"]).to_owned()) {
                items.push(i);
            }
        }
        items.sort_by_key(|i| std::cmp::Reverse(order_key(i)));
        let more = followed["next"].is_string() || own["next"].is_string();
        let next = if items.len() > limit || (more && !items.is_empty()) {
            items.truncate(limit);
            items
                .last()
                .map(|i| format!("{}-{}", i["created"], s(&i["id"])))
        } else {
            None
        };
        let v = json!({ "handle": handle, "items": items, "next": next });
        if ctx.out.json {
            ctx.out.print_json(&v)?;
        } else {
            print_items(client, &items, next.as_deref()).await;
        }
        Ok(ExitCode::SUCCESS)
    })
}

// ---------------------------------------------------------------------------------------------
// forum

pub(crate) fn forum(command: ForumCommand, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    match command {
        ForumCommand::Create {
            name,
            description,
            moderators,
            tags,
        } => with_api(ctx, async |client| {
            let mut mods = Vec::new();
            for m in &moderators {
                mods.push(did_of(client, ctx, Some(m)).await?);
            }
            let mut body = json!({ "name": name, "moderators": mods, "tags": tag_tree(&tags) });
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            let v = client
                .create("social.forum", body, ctx.as_handle.as_deref())
                .await?;
            print_json_or(ctx, &v, || say!("created forum {}", s(&v["id"])))
        }),
        ForumCommand::List { page } => with_api(ctx, async |client| {
            let v = client.forums(&page.query()).await?;
            if ctx.out.json {
                ctx.out.print_json(&v)?;
                return Ok(ExitCode::SUCCESS);
            }
            let mut names = Names::load(client).await;
            let items = v["items"].as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                say!("no forums yet: `mnode forum create NAME` makes one");
            }
            for f in &items {
                let by = names.get(client, s(&f["author"])).await;
                let about = f["record"]["body"]["description"]
                    .as_str()
                    .map(|d| format!("  — {}", line(d, 50)))
                    .unwrap_or_default();
                say!("{}  {}  by {by}{about}", s(&f["id"]), s(&f["summary"]));
            }
            if let Some(next) = v["next"].as_str() {
                say!("more: --cursor {next}");
            }
            Ok(ExitCode::SUCCESS)
        }),
        ForumCommand::Show { id } => {
            let id = cid_arg("forum", &id)?;
            with_api(ctx, async |client| {
                let v = all_pages(client, &id, "branches", Client::forum).await?;
                if ctx.out.json {
                    ctx.out.print_json(&v)?;
                } else {
                    print_forum(client, &v).await;
                }
                Ok(ExitCode::SUCCESS)
            })
        }
        ForumCommand::Follow { id } => {
            let id = cid_arg("forum", &id)?;
            let Some(client) = super::net::daemon_client(ctx)? else {
                return Err(super::net::needs_daemon(ctx, "following"));
            };
            super::runtime()?.block_on(async {
                let me = client.me().await?;
                if let Some(h) = &ctx.as_handle
                    && h != s(&me["handle"])
                {
                    bail!(
                        "the node's token follows as {}; log in as {h} to follow as them",
                        s(&me["handle"])
                    );
                }
                let v = all_pages(&client, &id, "branches", Client::forum).await?;
                // The forum's own topic brings its branches as they are made; the node follows
                // each of them. Those known now are followed at once.
                let forum_id = s(&v["forum"]["id"]).to_owned();
                let mut follows = vec![
                    client
                        .follow_me(&format!("/mnode/1/forum/{forum_id}"))
                        .await?,
                ];
                for b in v["branches"].as_array().into_iter().flatten() {
                    let topic = format!("/mnode/1/branch/{}", s(&b["id"]));
                    follows.push(client.follow_me(&topic).await?);
                }
                let out = json!({ "forum": id, "follows": follows.clone() });
                print_json_or(ctx, &out, || {
                    if follows.len() == 1 {
                        say!("forum {id} has no branches yet; new ones are followed as they come");
                    }
                    for f in &follows {
                        say!("following {}", s(&f["following"]));
                    }
                })
            })
        }
        ForumCommand::Branch {
            forum,
            name,
            description,
            parent,
        } => {
            let forum = cid_arg("forum", &forum)?;
            let parent = parent.map(|p| cid_arg("--parent", &p)).transpose()?;
            with_api(ctx, async |client| {
                // Checked first, so that a typo makes an error, not a branch of nothing.
                let f = client.forum(&forum, &[("limit", "1".into())]).await?;
                let forum_id = s(&f["forum"]["id"]).to_owned();
                let mut body = json!({ "forum": link(&forum_id), "name": name, "tags": [] });
                if let Some(p) = &parent {
                    let b = client.branch(p, &[("limit", "1".into())]).await?;
                    if b["forum"] != forum_id.as_str() {
                        bail!(
                            "branch {p} is in forum {}, not in {forum_id}",
                            s(&b["forum"])
                        );
                    }
                    body["parent"] = link(s(&b["branch"]["id"]));
                }
                if let Some(d) = description {
                    body["description"] = json!(d);
                }
                let v = client
                    .create("social.branch", body, ctx.as_handle.as_deref())
                    .await?;
                print_json_or(ctx, &v, || say!("created branch {}", s(&v["id"])))
            })
        }
    }
}

/// `GET` of a paged answer whose list is `field`, every page, as one answer with `next: null`.
async fn all_pages<F>(client: &Client, id: &str, field: &str, get: F) -> anyhow::Result<Value>
where
    F: AsyncFn(&Client, &str, &[(&str, String)]) -> Result<Value, mnode_api::client::ClientError>,
{
    let mut q = vec![("limit", MAX_PAGE.to_string())];
    let mut v = get(client, id, &q).await?;
    while let Some(next) = v["next"].as_str().map(str::to_owned) {
        q.truncate(1);
        q.push(("cursor", next));
        let page = get(client, id, &q).await?;
        let more = page[field].as_array().cloned().unwrap_or_default();
        if let Some(list) = v[field].as_array_mut() {
            list.extend(more);
        }
        v["next"] = page["next"].clone();
    }
    Ok(v)
}

async fn print_forum(client: &Client, v: &Value) {
    let mut names = Names::load(client).await;
    let f = &v["forum"];
    let body = &f["record"]["body"];
    say!("{}  ({})", s(&f["summary"]), s(&f["id"]));
    if let Some(d) = body["description"].as_str() {
        say!("{d}");
    }
    say!(
        "by {}, {}",
        names.get(client, s(&f["author"])).await,
        when::since(f["created"].as_u64().unwrap_or(0))
    );
    let mut mods = Vec::new();
    for m in body["moderators"].as_array().into_iter().flatten() {
        mods.push(names.get(client, s(m)).await);
    }
    if !mods.is_empty() {
        say!("moderators: {}", mods.join(", "));
    }
    let tags: Vec<&str> = body["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !tags.is_empty() {
        say!("tags: {}", tags.join(", "));
    }
    let branches = v["branches"].as_array().cloned().unwrap_or_default();
    if branches.is_empty() {
        say!("no branches yet: `mnode forum branch {} NAME`", s(&f["id"]));
        return;
    }
    say!("branches:");
    let parent = |b: &Value| link_cid(&b["record"]["body"]["parent"]).map(str::to_owned);
    let ids: std::collections::HashSet<String> =
        branches.iter().map(|b| s(&b["id"]).to_owned()).collect();
    let tree = Tree::new(&branches, |b| {
        parent(b).filter(|p| ids.contains(p.as_str()))
    });
    tree.walk(&mut |b, depth| {
        let about = b["record"]["body"]["description"]
            .as_str()
            .map(|d| format!("  — {}", line(d, 50)))
            .unwrap_or_default();
        say!(
            "{}{}  {}{about}",
            "  ".repeat(depth + 1),
            s(&b["id"]),
            s(&b["summary"])
        );
    });
}

/// Items arranged by a parent link: roots (no parent among the items) in the given order,
/// each followed by its children in the given order.
struct Tree<'a> {
    items: &'a [Value],
    roots: Vec<usize>,
    children: HashMap<String, Vec<usize>>,
}

impl<'a> Tree<'a> {
    fn new(items: &'a [Value], parent_of: impl Fn(&Value) -> Option<String>) -> Self {
        let mut roots = Vec::new();
        let mut children: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            match parent_of(item) {
                Some(p) if p != s(&item["id"]) => children.entry(p).or_default().push(i),
                _ => roots.push(i),
            }
        }
        Self {
            items,
            roots,
            children,
        }
    }

    fn walk(&self, f: &mut impl FnMut(&Value, usize)) {
        let mut stack: Vec<(usize, usize)> = self.roots.iter().rev().map(|&i| (i, 0)).collect();
        let mut seen = std::collections::HashSet::new();
        while let Some((i, depth)) = stack.pop() {
            if !seen.insert(i) {
                continue;
            }
            let item = &self.items[i];
            f(item, depth);
            if let Some(kids) = self.children.get(s(&item["id"])) {
                stack.extend(kids.iter().rev().map(|&k| (k, depth + 1)));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// thread, reply

pub(crate) fn thread(command: ThreadCommand, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    match command {
        ThreadCommand::Start {
            branch,
            title,
            text,
            tags,
        } => {
            let branch = cid_arg("branch", &branch)?;
            if text.trim().is_empty() {
                bail!("--text is empty: a thread starts with a post");
            }
            with_api(ctx, async |client| {
                let b = client.branch(&branch, &[("limit", "1".into())]).await?;
                let body = json!({
                    "branch": link(s(&b["branch"]["id"])),
                    "title": title,
                    "tags": tags,
                });
                let t = client
                    .create("social.thread", body, ctx.as_handle.as_deref())
                    .await?;
                let thread_id = s(&t["id"]).to_owned();
                let p = client
                    .reply(&thread_id, json!({ "text": text, "as": ctx.as_handle }))
                    .await
                    .with_context(|| {
                        format!("thread {thread_id} was created, but not its first post")
                    })?;
                let v = json!({ "thread": t, "post": p });
                print_json_or(ctx, &v, || {
                    say!("started thread {thread_id}");
                    say!("first post {}", s(&p["id"]));
                })
            })
        }
        ThreadCommand::Show { id } => {
            let id = cid_arg("thread", &id)?;
            with_api(ctx, async |client| {
                let v = all_pages(client, &id, "posts", Client::thread).await?;
                if ctx.out.json {
                    ctx.out.print_json(&v)?;
                } else {
                    print_thread(client, &v).await;
                }
                Ok(ExitCode::SUCCESS)
            })
        }
        ThreadCommand::Fork { thread, at, title } => {
            let thread = cid_arg("thread", &thread)?;
            let at = cid_arg("--at", &at)?;
            with_api(ctx, async |client| {
                let v = client
                    .fork(
                        &thread,
                        json!({ "post": at, "title": title, "as": ctx.as_handle }),
                    )
                    .await?;
                print_json_or(ctx, &v, || {
                    say!("forked thread {} at post {}", thread, s(&v["fork"]["post"]));
                    say!("new thread {}", s(&v["id"]));
                })
            })
        }
    }
}

async fn print_thread(client: &Client, v: &Value) {
    let mut names = Names::load(client).await;
    let t = &v["thread"];
    say!("{}  ({})", s(&t["summary"]), s(&t["id"]));
    say!(
        "started by {}, {}",
        names.get(client, s(&t["author"])).await,
        when::since(t["created"].as_u64().unwrap_or(0))
    );
    if let Some(f) = v["fork"].as_object() {
        say!(
            "forked from thread {} at post {}",
            s(&f["thread"]),
            s(&f["post"])
        );
    }
    let posts = v["posts"].as_array().cloned().unwrap_or_default();
    let ids: std::collections::HashSet<String> =
        posts.iter().map(|p| s(&p["id"]).to_owned()).collect();
    let parent = |p: &Value| link_cid(&p["record"]["body"]["reply"]["parent"]).map(str::to_owned);
    let mut lines = Vec::new();
    Tree::new(&posts, |p| parent(p).filter(|x| ids.contains(x))).walk(&mut |p, depth| {
        lines.push((p.clone(), depth));
    });
    if lines.is_empty() {
        say!("no posts yet");
    }
    for (p, depth) in lines {
        let indent = "    ".repeat(depth);
        let author = names.get(client, s(&p["author"])).await;
        let outside = parent(&p)
            .filter(|x| !ids.contains(x))
            .map(|x| format!(", answering {x}"))
            .unwrap_or_default();
        say!();
        say!(
            "{indent}{author}  {}  {}{outside}",
            when::since(p["created"].as_u64().unwrap_or(0)),
            s(&p["id"])
        );
        let text = p["record"]["body"]["text"].as_str().unwrap_or_default();
        for l in text.lines() {
            say!("{indent}  {l}");
        }
    }
    let forks = v["forks"].as_array().cloned().unwrap_or_default();
    if !forks.is_empty() {
        say!();
        say!("forks:");
        for f in &forks {
            let at = link_cid(&f["record"]["body"]["fork"]["post"]).unwrap_or_default();
            say!("  {}  {}  (at post {at})", s(&f["id"]), s(&f["summary"]));
        }
    }
}

pub(crate) fn reply(args: ReplyArgs, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let cid = cid_arg("post", &args.cid)?;
    if args.text.trim().is_empty() {
        bail!("--text is empty: say something");
    }
    with_api(ctx, async |client| {
        let r = client.record(&cid, false).await?;
        let (id, record) = (s(&r["id"]).to_owned(), &r["record"]);
        let kind = s(&record["type"]);
        if kind != "social.post" {
            bail!(
                "{cid} is {}, not a post: `mnode reply` answers posts \
                 (`mnode context add` attaches a note to any record)",
                mnode_dag::registry::with_article(kind)
            );
        }
        let body = &record["body"];
        if body.is_null() {
            bail!("the post {id} was deleted");
        }
        if let Some(thread) = link_cid(&body["thread"]) {
            // In a thread: the thread's route places it (and checks the parent is there).
            let v = client
                .reply(
                    thread,
                    json!({ "text": args.text, "parent": id, "as": ctx.as_handle }),
                )
                .await?;
            return print_json_or(ctx, &v, || {
                say!("replied {} in thread {thread}", s(&v["id"]));
            });
        }
        let root = link_cid(&body["reply"]["root"])
            .unwrap_or(id.as_str())
            .to_owned();
        let mut post = json!({
            "text": args.text,
            "media": [],
            "tags": [],
            "reply": { "root": link(&root), "parent": link(&id) },
        });
        if let Some(b) = link_cid(&body["branch"]) {
            post["branch"] = link(b);
        }
        let mut v = client
            .create("social.post", post, ctx.as_handle.as_deref())
            .await?;
        v["thread"] = Value::Null;
        v["reply"] = json!({ "root": root, "parent": id });
        print_json_or(ctx, &v, || say!("replied {} to {id}", s(&v["id"])))
    })
}

// ---------------------------------------------------------------------------------------------
// fact, context

pub(crate) fn fact(command: FactCommand, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    match command {
        FactCommand::Add {
            statement,
            sources: flags,
            parent,
            tags,
        } => {
            let parent = parent.map(|p| cid_arg("--parent", &p)).transpose()?;
            let sources = sources(&flags)?;
            with_api(ctx, async |client| {
                let mut body = json!({ "statement": statement, "sources": sources, "tags": tags });
                if let Some(p) = &parent {
                    let f = client.fact(p, &[("limit", "1".into())]).await?;
                    body["parent"] = link(s(&f["fact"]["id"]));
                }
                let v = client
                    .create("info.fact", body, ctx.as_handle.as_deref())
                    .await?;
                print_json_or(ctx, &v, || say!("added fact {}", s(&v["id"])))
            })
        }
        FactCommand::Show { id } => {
            let id = cid_arg("fact", &id)?;
            with_api(ctx, async |client| {
                let v = all_pages(client, &id, "context", Client::fact).await?;
                if ctx.out.json {
                    ctx.out.print_json(&v)?;
                } else {
                    print_fact(client, &v).await?;
                }
                Ok(ExitCode::SUCCESS)
            })
        }
    }
}

fn source_text(src: &Value) -> String {
    let mut t = s(&src["title"]).to_owned();
    if let Some(u) = src["url"].as_str() {
        t.push_str(&format!(" <{u}>"));
    }
    if let Some(l) = link_cid(&src["link"]) {
        t.push_str(&format!(" <{l}>"));
    }
    t
}

async fn print_fact(client: &Client, v: &Value) -> anyhow::Result<()> {
    let mut names = Names::load(client).await;
    let f = &v["fact"];
    let body = &f["record"]["body"];
    say!("{}  ({})", s(&body["statement"]), s(&f["id"]));
    say!(
        "by {}, {}",
        names.get(client, s(&f["author"])).await,
        when::since(f["created"].as_u64().unwrap_or(0))
    );
    for src in body["sources"].as_array().into_iter().flatten() {
        say!("  source: {}", source_text(src));
    }
    if let Some(p) = v["parent"].as_str() {
        say!("  under fact {p}");
    }
    let below = v["facts"].as_array().cloned().unwrap_or_default();
    if !below.is_empty() {
        say!("facts under it:");
        // Depth first, each fact's own facts asked for as the tree is walked.
        let mut stack: Vec<(Value, usize)> = below.into_iter().rev().map(|b| (b, 1)).collect();
        while let Some((item, depth)) = stack.pop() {
            let indent = "  ".repeat(depth);
            say!(
                "{indent}{}  ({})",
                s(&item["record"]["body"]["statement"]),
                s(&item["id"])
            );
            if depth < MAX_FACT_DEPTH {
                let sub = client
                    .fact(s(&item["id"]), &[("limit", "1".into())])
                    .await?;
                let kids = sub["facts"].as_array().cloned().unwrap_or_default();
                stack.extend(kids.into_iter().rev().map(|k| (k, depth + 1)));
            }
        }
    }
    let notes = v["context"].as_array().cloned().unwrap_or_default();
    if !notes.is_empty() {
        say!("context:");
        for n in &notes {
            let nb = &n["record"]["body"];
            say!(
                "  {}  {}: {}",
                names.get(client, s(&n["author"])).await,
                when::since(n["created"].as_u64().unwrap_or(0)),
                s(&nb["note"])
            );
            for src in nb["sources"].as_array().into_iter().flatten() {
                say!("    source: {}", source_text(src));
            }
        }
    }
    Ok(())
}

pub(crate) fn context(command: ContextCommand, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let ContextCommand::Add {
        cid,
        text,
        sources: flags,
    } = command;
    let cid = cid_arg("record", &cid)?;
    let sources = sources(&flags)?;
    with_api(ctx, async |client| {
        let r = client.record(&cid, false).await?;
        let body = json!({ "target": link(s(&r["id"])), "note": text, "sources": sources });
        let v = client
            .create("info.context", body, ctx.as_handle.as_deref())
            .await?;
        print_json_or(ctx, &v, || {
            say!("added context {} to {}", s(&v["id"]), s(&r["id"]));
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_trees_get_their_parents() {
        let tags = ["music/jazz/bebop".to_owned(), "visual".to_owned()];
        assert_eq!(
            tag_tree(&tags),
            ["music", "music/jazz", "music/jazz/bebop", "visual"]
        );
    }

    #[test]
    fn sources_take_a_url_or_a_cid() {
        let cid = "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";
        let got = sources(&[
            "Liner notes=https://example.org/x".into(),
            format!("The record={cid}"),
            "Memory".into(),
        ])
        .unwrap();
        assert_eq!(got[0]["url"], "https://example.org/x");
        assert_eq!(got[1]["link"]["/"], cid);
        assert_eq!(got[2], json!({ "title": "Memory" }));
        assert!(sources(&["=https://x".into()]).is_err());
    }
}

//! `mnode mod …` (forum moderation) and `mnode text …` (rich-text documents, Markdown in and
//! out). Like the other discussion verbs they go through the daemon's API when one runs, and
//! through the same API served in this process on the repo otherwise.

use super::say;
use std::{io::Read as _, path::PathBuf, process::ExitCode};

use anyhow::{Context as _, bail};
use mnode_api::client::Client;
use mnode_dag::{doc::Doc, model::core::Text};
use serde_json::{Value, json};

use super::{
    Ctx,
    discuss::{cid_arg, print_json_or, s, with_api},
};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum ModCommand {
    /// Hide a post or thread in its forum's views (it stays readable by its CID).
    Hide(TargetArgs),
    /// Show a hidden post or thread again.
    Unhide(TargetArgs),
    /// Hide everything an author posts in a forum.
    Ban(AuthorArgs),
    /// Let a banned author back into a forum.
    Unban(AuthorArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct TargetArgs {
    /// The post or thread.
    cid: String,
    /// Why; shown with what is hidden.
    #[arg(long)]
    reason: String,
}

#[derive(Debug, clap::Args)]
pub(crate) struct AuthorArgs {
    /// The author's did:key.
    author: String,
    /// The forum.
    #[arg(long)]
    forum: String,
    /// Why; shown with what is hidden.
    #[arg(long)]
    reason: String,
}

/// The forum a post or thread is in: its thread's (or its own) branch's forum.
async fn forum_of(client: &Client, cid: &str) -> anyhow::Result<String> {
    let v = client.record(cid, false).await?;
    let body = &v["record"]["body"];
    let branch = match s(&v["record"]["type"]) {
        "social.thread" | "social.post" => body["branch"]["/"].as_str(),
        other => bail!(
            "{cid} is {}; only posts and threads are moderated",
            mnode_dag::registry::with_article(other)
        ),
    };
    let Some(branch) = branch else {
        bail!("{cid} is not in a forum (it names no branch)");
    };
    let b = client.branch(branch, &[("limit", "1".into())]).await?;
    Ok(s(&b["forum"]).to_owned())
}

pub(crate) fn moderate(c: ModCommand, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let (action, target, author, forum, reason) = match c {
        ModCommand::Hide(a) => ("hide", Some(a.cid), None, None, a.reason),
        ModCommand::Unhide(a) => ("unhide", Some(a.cid), None, None, a.reason),
        ModCommand::Ban(a) => ("ban", None, Some(a.author), Some(a.forum), a.reason),
        ModCommand::Unban(a) => ("unban", None, Some(a.author), Some(a.forum), a.reason),
    };
    let target = target
        .map(|t| cid_arg("the post or thread", &t))
        .transpose()?;
    let forum = forum.map(|f| cid_arg("--forum", &f)).transpose()?;
    let v = with_api(ctx, async |client| {
        let forum = match (&forum, &target) {
            (Some(f), _) => f.clone(),
            (None, Some(t)) => forum_of(client, t).await?,
            (None, None) => bail!("give the forum with --forum"),
        };
        let body = json!({
            "action": action,
            "target": target,
            "author": author,
            "reason": reason,
            "as": ctx.as_handle,
        });
        let mut v = client.moderate(&forum, body).await?;
        v["forum"] = json!(forum);
        Ok(v)
    })?;
    print_json_or(ctx, &v, || {
        say!("{action}: {} in forum {}", s(&v["id"]), s(&v["forum"]));
    })
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum TextCommand {
    /// Write a new text from Markdown (a file, or - for standard input).
    New {
        /// The Markdown file.
        file: PathBuf,
        /// The text's title.
        #[arg(long)]
        title: Option<String>,
    },
    /// Replace a text's document with Markdown (a new version; the old ones stay).
    Edit {
        /// The text's id.
        id: String,
        /// The Markdown file, or - for standard input.
        file: PathBuf,
    },
    /// Print a text as Markdown (or write it to a file).
    Export {
        /// The text's id or any version's CID.
        id: String,
        /// Write here instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

/// Markdown from `file` (`-`: standard input) as a checked document.
fn read_doc(file: &PathBuf) -> anyhow::Result<Value> {
    let md = if file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?
    };
    if md.trim().is_empty() {
        bail!("{} is empty: nothing to write", file.display());
    }
    let doc = Doc::from_markdown(&md);
    doc.validate()
        .map_err(|e| anyhow::anyhow!("the document: {e}"))?;
    Ok(serde_json::to_value(&doc)?)
}

pub(crate) fn text(c: TextCommand, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    match c {
        TextCommand::New { file, title } => {
            let doc = read_doc(&file)?;
            let body = json!({ "title": title, "format": Text::FORMAT, "doc": doc });
            let v = with_api(ctx, async |client| {
                Ok(client
                    .create("core.text", body, ctx.as_handle.as_deref())
                    .await?)
            })?;
            print_json_or(ctx, &v, || say!("wrote {}", s(&v["id"])))
        }
        TextCommand::Edit { id, file } => {
            let id = cid_arg("the text", &id)?;
            let doc = read_doc(&file)?;
            let v = with_api(ctx, async |client| {
                let current = client.record(&id, false).await?;
                if s(&current["record"]["type"]) != "core.text" {
                    bail!(
                        "{id} is {}, not a core.text",
                        mnode_dag::registry::with_article(s(&current["record"]["type"]))
                    );
                }
                let mut body = current["record"]["body"].clone();
                body["doc"] = doc;
                body["format"] = json!(Text::FORMAT);
                let me = super::api::acting(client, ctx).await?;
                Ok(client.update(&id, body, Some(&me)).await?)
            })?;
            print_json_or(ctx, &v, || say!("saved {}", s(&v["cid"])))
        }
        TextCommand::Export { id, output } => {
            let id = cid_arg("the text", &id)?;
            let v = with_api(ctx, async |client| Ok(client.record(&id, false).await?))?;
            if s(&v["record"]["type"]) != "core.text" {
                bail!(
                    "{id} is {}, not a core.text",
                    mnode_dag::registry::with_article(s(&v["record"]["type"]))
                );
            }
            let doc: Doc = serde_json::from_value(v["record"]["body"]["doc"].clone())
                .context("the stored document does not read")?;
            let md = doc.to_markdown();
            match output {
                Some(path) => std::fs::write(&path, md)
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => super::write_out(format_args!("{md}")),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

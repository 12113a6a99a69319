//! `mnode message …`: direct messages, sealed for the people they are for.

use std::process::ExitCode;

use serde_json::Value;

use super::{
    Ctx,
    api::{line, s, short_did, with_api},
    say,
};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Send a message; only its recipients (and you) can read it.
    Send {
        /// Whom to: a did:key or a handle on this node; several separated by commas.
        to: String,
        /// The message.
        text: String,
        /// The message this one answers (its id).
        #[arg(long, value_name = "ID")]
        reply_to: Option<String>,
    },
    /// List your conversations, or the messages of one with --with.
    List {
        /// The conversation with these people (did:keys or handles, separated by commas).
        #[arg(long, value_name = "WHO")]
        with: Option<String>,
    },
}

/// A person as `{did, handle}` for reading: the handle, else a short did.
fn who(p: &Value) -> String {
    p["handle"]
        .as_str()
        .map_or_else(|| short_did(s(&p["did"])), str::to_owned)
}

fn people(list: &Value) -> String {
    let names: Vec<String> = list.as_array().into_iter().flatten().map(who).collect();
    if names.is_empty() {
        "yourself".to_owned()
    } else {
        names.join(", ")
    }
}

pub(crate) fn run(command: Command, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let me = ctx.as_handle.as_deref();
    match command {
        Command::Send { to, text, reply_to } => {
            let to: Vec<String> = to
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect();
            if to.is_empty() {
                anyhow::bail!("say whom the message is for: a did:key or a handle on this node");
            }
            let reply_to = reply_to
                .map(|r| super::discuss::cid_arg("the message answered", &r))
                .transpose()?;
            with_api(ctx, async |client| {
                let v = client
                    .send_message(&to, &text, reply_to.as_deref(), me)
                    .await?;
                if ctx.out.json {
                    return ctx.out.print_json(&v);
                }
                say!("sent message {} to {}", s(&v["id"]), to.join(", "));
                Ok(())
            })?;
        }
        Command::List { with } => {
            with_api(ctx, async |client| {
                let v = client.messages(with.as_deref(), me).await?;
                if ctx.out.json {
                    return ctx.out.print_json(&v);
                }
                if with.is_some() {
                    let messages = v["messages"].as_array().cloned().unwrap_or_default();
                    if messages.is_empty() {
                        say!("no messages with {}", people(&v["with"]));
                    }
                    for m in messages {
                        say!("{}  {}: {}", s(&m["id"]), who(&m["author"]), s(&m["text"]));
                    }
                    return Ok(());
                }
                let list = v["conversations"].as_array().cloned().unwrap_or_default();
                if list.is_empty() {
                    say!("no messages yet; send one with `mnode message send WHO TEXT`");
                }
                for c in list {
                    say!(
                        "{}  ({} messages)  {}: {}",
                        people(&c["with"]),
                        c["count"],
                        who(&c["last"]["author"]),
                        line(s(&c["last"]["text"]), 60)
                    );
                }
                Ok(())
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

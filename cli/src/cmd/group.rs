//! `mnode group …`: groups whose members co-edit the items the group owns.

use std::process::ExitCode;

use anyhow::bail;
use serde_json::{Value, json};

use super::{
    Ctx,
    api::{s, with_api},
    say,
};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Make a group; the acting account is its owner.
    Create {
        /// The group's name.
        name: String,
        /// What the group is for.
        #[arg(long)]
        description: Option<String>,
        /// Add a member: `HANDLE` or `DID`, with `:ROLE` (owner, admin, moderator, member;
        /// default member), as in `--member ben --member cy:admin`.
        #[arg(long = "member", value_name = "WHO[:ROLE]")]
        members: Vec<String>,
    },
    /// Add someone to a group (default role: member).
    Add {
        /// The group's id.
        group: String,
        /// A handle on this node or a did:key.
        who: String,
        /// owner, admin, moderator or member.
        #[arg(long, default_value = "member")]
        role: String,
    },
    /// Remove someone from a group (or leave it: your own handle). What they made so far stays.
    Remove {
        /// The group's id.
        group: String,
        /// A handle on this node or a did:key.
        who: String,
    },
    /// Change someone's role.
    Role {
        /// The group's id.
        group: String,
        /// A handle on this node or a did:key.
        who: String,
        /// owner, admin, moderator or member.
        role: String,
    },
    /// Show a group: its members and the items it owns.
    Show {
        /// The group's id.
        group: String,
    },
    /// List groups (only someone's with --member).
    List {
        /// Only groups this handle or did:key is in.
        #[arg(long)]
        member: Option<String>,
    },
}

const ROLES: [&str; 4] = ["owner", "admin", "moderator", "member"];

fn role(r: &str) -> anyhow::Result<String> {
    let r = r.to_ascii_lowercase();
    if !ROLES.contains(&r.as_str()) {
        bail!("unknown role {r:?}: expected one of {}", ROLES.join(", "));
    }
    Ok(r)
}

fn member_spec(spec: &str) -> anyhow::Result<Value> {
    // A did:key has colons of its own: the role is whatever follows the last one, if it is one.
    let (who, r) = match spec.rsplit_once(':') {
        Some((who, r)) if ROLES.contains(&r.to_ascii_lowercase().as_str()) => (who, role(r)?),
        _ => (spec, "member".to_owned()),
    };
    Ok(json!({ "member": who, "role": r }))
}

fn print_group(ctx: &Ctx, v: &Value) -> anyhow::Result<()> {
    if ctx.out.json {
        return ctx.out.print_json(v);
    }
    say!("{} {}", s(&v["name"]), s(&v["id"]));
    if let Some(d) = v["description"].as_str() {
        say!("{d}");
    }
    for m in v["members"].as_array().into_iter().flatten() {
        say!("  {:<10} {}", s(&m["role"]), s(&m["handle"]));
    }
    let items = v["items"].as_array().map_or(0, Vec::len);
    if items > 0 {
        say!("items:");
        for i in v["items"].as_array().into_iter().flatten() {
            let note = if i["in_force"] == false {
                " (no version in force)"
            } else {
                ""
            };
            say!("  {} {}{note}", s(&i["type"]), s(&i["id"]));
        }
    }
    Ok(())
}

fn print_written(ctx: &Ctx, what: &str, v: &Value) -> anyhow::Result<()> {
    if ctx.out.json {
        return ctx.out.print_json(v);
    }
    say!("{what}");
    say!("group version {} (seq {})", s(&v["cid"]), v["seq"]);
    Ok(())
}

pub(crate) fn run(command: Command, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let me = ctx.as_handle.as_deref();
    match command {
        Command::Create {
            name,
            description,
            members,
        } => {
            let members = members
                .iter()
                .map(|m| member_spec(m))
                .collect::<anyhow::Result<Vec<_>>>()?;
            with_api(ctx, async |client| {
                let v = client
                    .create_group(&name, description.as_deref(), members, me)
                    .await?;
                if ctx.out.json {
                    return ctx.out.print_json(&v);
                }
                say!("created group {} {}", name, s(&v["id"]));
                Ok(())
            })?;
        }
        Command::Add {
            group,
            who,
            role: r,
        } => {
            let group = super::discuss::cid_arg("the group", &group)?;
            let r = role(&r)?;
            with_api(ctx, async |client| {
                let v = client.set_member(&group, &who, Some(&r), me).await?;
                print_written(ctx, &format!("{who} is now {r}"), &v)
            })?;
        }
        Command::Role {
            group,
            who,
            role: r,
        } => {
            let group = super::discuss::cid_arg("the group", &group)?;
            let r = role(&r)?;
            with_api(ctx, async |client| {
                let v = client.set_member(&group, &who, Some(&r), me).await?;
                print_written(ctx, &format!("{who} is now {r}"), &v)
            })?;
        }
        Command::Remove { group, who } => {
            let group = super::discuss::cid_arg("the group", &group)?;
            with_api(ctx, async |client| {
                let v = client.set_member(&group, &who, None, me).await?;
                print_written(ctx, &format!("{who} is no longer in the group"), &v)
            })?;
        }
        Command::Show { group } => {
            let group = super::discuss::cid_arg("the group", &group)?;
            with_api(ctx, async |client| {
                print_group(ctx, &client.group(&group).await?)
            })?;
        }
        Command::List { member } => {
            with_api(ctx, async |client| {
                let v = client.groups(member.as_deref()).await?;
                if ctx.out.json {
                    return ctx.out.print_json(&v);
                }
                let items = v["items"].as_array().cloned().unwrap_or_default();
                if items.is_empty() {
                    say!("no groups");
                }
                for g in items {
                    let n = g["members"].as_array().map_or(0, Vec::len);
                    say!("{}  {}  ({n} members)", s(&g["id"]), s(&g["name"]));
                }
                Ok(())
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

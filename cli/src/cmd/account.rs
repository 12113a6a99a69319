//! `mnode account …`

use super::say;
use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context as _, bail};
use mnode_node::accounts::{Account, Role};
use serde_json::json;

use super::Ctx;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Create an account with a new signing key.
    Create {
        /// Unique handle.
        handle: String,
        /// Email (unique, any case).
        #[arg(long)]
        email: String,
        /// Read the password from this file (`-` for standard input).
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// Make the account an admin.
        #[arg(long)]
        admin: bool,
    },
    /// List accounts.
    List,
    /// Delete an account and its keys (records it signed stay).
    Delete {
        /// The handle.
        handle: String,
    },
    /// Set an account's password.
    Passwd {
        /// The handle.
        handle: String,
        /// Read the password from this file (`-` for standard input).
        #[arg(long, value_name = "FILE")]
        password_file: PathBuf,
    },
    /// Export an account's signing key, sealed with a passphrase.
    ExportKey {
        /// The handle.
        handle: String,
        /// Where to write the sealed key.
        #[arg(short, long)]
        output: PathBuf,
        /// Read the export passphrase from this file.
        #[arg(long, value_name = "FILE")]
        passphrase_file: PathBuf,
    },
    /// Import a sealed key into an account and sign with it from now on.
    ImportKey {
        /// The handle.
        handle: String,
        /// The sealed key file.
        file: PathBuf,
        /// Read the export passphrase from this file.
        #[arg(long, value_name = "FILE")]
        passphrase_file: PathBuf,
    },
}

fn read_secret(file: &PathBuf) -> anyhow::Result<String> {
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?
    };
    Ok(text.trim_end_matches(['\n', '\r']).to_owned())
}

fn account_json(a: &Account) -> serde_json::Value {
    json!({
        "handle": a.handle,
        "email": a.email,
        "role": a.role,
        "keys": a.keys.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "password_set": a.password.is_some(),
        "created": a.created,
    })
}

pub(crate) fn run(command: Command, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    if let Some(client) = super::net::daemon_client(ctx)? {
        return run_remote(command, ctx, &client);
    }
    let repo = ctx.open()?;
    let accounts = repo.accounts();
    match command {
        Command::Create {
            handle,
            email,
            password_file,
            admin,
        } => {
            let password = password_file.as_ref().map(read_secret).transpose()?;
            let role = if admin { Role::Admin } else { Role::User };
            let a = accounts.create(&handle, &email, password.as_deref(), role)?;
            if ctx.out.json {
                ctx.out.print_json(&account_json(&a))?;
            } else {
                say!(
                    "created {} <{}> {}",
                    a.handle,
                    a.email,
                    a.did().map(ToString::to_string).unwrap_or_default()
                );
            }
        }
        Command::List => {
            let list = accounts.list()?;
            if ctx.out.json {
                ctx.out
                    .print_json(&json!(list.iter().map(account_json).collect::<Vec<_>>()))?;
            } else {
                for a in list {
                    let role = if a.role == Role::Admin {
                        "admin"
                    } else {
                        "user"
                    };
                    say!(
                        "{:20} {:5} {:30} {}",
                        a.handle,
                        role,
                        a.email,
                        a.did().map(ToString::to_string).unwrap_or_default()
                    );
                }
            }
        }
        Command::Delete { handle } => {
            if handle == repo.info().owner {
                bail!("{handle:?} owns this node and cannot be deleted");
            }
            let a = accounts.delete(&handle)?;
            if ctx.out.json {
                ctx.out.print_json(&account_json(&a))?;
            } else {
                say!("deleted {}", a.handle);
            }
        }
        Command::Passwd {
            handle,
            password_file,
        } => {
            accounts.set_password(&handle, &read_secret(&password_file)?)?;
            if !ctx.out.json {
                say!("password of {handle} changed");
            }
        }
        Command::ExportKey {
            handle,
            output,
            passphrase_file,
        } => {
            let a = accounts
                .get(&handle)?
                .with_context(|| format!("no account {handle:?}"))?;
            let did = a.did().context("the account has no key")?;
            let sealed = repo
                .keystore()
                .export(did, &read_secret(&passphrase_file)?)?;
            std::fs::write(&output, sealed)
                .with_context(|| format!("cannot write {}", output.display()))?;
            if !ctx.out.json {
                say!("exported {did} to {}", output.display());
            }
        }
        Command::ImportKey {
            handle,
            file,
            passphrase_file,
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let key = repo
                .keystore()
                .import(&text, &read_secret(&passphrase_file)?)?;
            let a = accounts.add_key(&handle, &key, true)?;
            if ctx.out.json {
                ctx.out.print_json(&account_json(&a))?;
            } else {
                say!("{handle} now signs with {}", key.did());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The same through a running daemon. Keys stay with the daemon: `export-key` and `import-key`
/// need the repo itself.
fn run_remote(
    command: Command,
    ctx: &Ctx,
    client: &mnode_api::client::Client,
) -> anyhow::Result<ExitCode> {
    let rt = super::runtime()?;
    match command {
        Command::Create {
            handle,
            email,
            password_file,
            admin,
        } => {
            let Some(file) = password_file else {
                bail!(
                    "a daemon holds the repo: give the password with --password-file (accounts \
                     made through the API can log in), or stop the daemon"
                );
            };
            let a =
                rt.block_on(client.create_account(&handle, &email, &read_secret(&file)?, admin))?;
            if ctx.out.json {
                ctx.out.print_json(&a)?;
            } else {
                say!(
                    "created {} <{}> {}",
                    a["handle"].as_str().unwrap_or_default(),
                    a["email"].as_str().unwrap_or_default(),
                    a["did"].as_str().unwrap_or_default()
                );
            }
        }
        Command::List => {
            let v = rt.block_on(client.accounts())?;
            let list = v["accounts"].as_array().cloned().unwrap_or_default();
            if ctx.out.json {
                ctx.out.print_json(&json!(list))?;
            } else {
                for a in list {
                    let s = |k: &str| a[k].as_str().unwrap_or_default().to_owned();
                    say!(
                        "{:20} {:5} {:30} {}",
                        s("handle"),
                        s("role"),
                        s("email"),
                        s("did")
                    );
                }
            }
        }
        Command::Delete { handle } => {
            let v = rt.block_on(client.delete_account(&handle))?;
            if ctx.out.json {
                ctx.out.print_json(&v)?;
            } else {
                say!("deleted {handle}");
            }
        }
        Command::Passwd {
            handle,
            password_file,
        } => {
            rt.block_on(client.set_password(&handle, &read_secret(&password_file)?))?;
            if !ctx.out.json {
                say!("password of {handle} changed");
            }
        }
        Command::ExportKey { .. } | Command::ImportKey { .. } => {
            bail!("keys stay with the running daemon: stop it to export or import a key");
        }
    }
    Ok(ExitCode::SUCCESS)
}

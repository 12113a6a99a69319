//! `mnode account …`

use super::say;
use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context as _, bail};
use serde_json::json;

use super::{
    Ctx,
    api::{acting, print_json_or, s, with_api},
};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Create an account with a new signing key.
    Create {
        /// Unique handle.
        handle: String,
        /// Email (unique, any case).
        #[arg(long)]
        email: String,
        /// Phone number with + and the country code, as +49 30 1234567 (unique; optional).
        #[arg(long)]
        phone: Option<String>,
        /// Read the password from this file (`-` for standard input).
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// Make the account an admin.
        #[arg(long)]
        admin: bool,
        /// Write the account's recovery key to this file (shown once; printed when not given).
        #[arg(long, value_name = "FILE")]
        recovery_key_out: Option<PathBuf>,
    },
    /// Rotate an account's signing key: a new key signs for the same identity from now on, and
    /// what the old key signed stays in force.
    RotateKey {
        /// The handle (default: `--as`, else the node owner's account).
        handle: Option<String>,
        /// Write a recovery key made now (for an account made before key logs) to this file.
        #[arg(long, value_name = "FILE")]
        recovery_key_out: Option<PathBuf>,
    },
    /// Recover an account whose signing key was lost or stolen, with its recovery key.
    Recover {
        /// The handle (default: `--as`, else the node owner's account).
        handle: Option<String>,
        /// The file holding the recovery key, as saved at sign-up (`-` for standard input).
        #[arg(long, value_name = "FILE")]
        recovery_key: PathBuf,
        /// Write the new recovery key to this file (printed when not given).
        #[arg(long, value_name = "FILE")]
        recovery_key_out: Option<PathBuf>,
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
    /// Set an account's phone number (with + and the country code), or remove it.
    #[command(group(clap::ArgGroup::new("what").required(true).args(["number", "remove"])))]
    Phone {
        /// The handle.
        handle: String,
        /// The number, as +49 30 1234567.
        number: Option<String>,
        /// Remove the account's number.
        #[arg(long)]
        remove: bool,
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

/// Account verbs go through the repo's API (the daemon's, or one run in this process), so they
/// answer the same both ways; keys stay in the repo, so `export-key` and `import-key` open it
/// and need the daemon stopped.
pub(crate) fn run(command: Command, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    match command {
        Command::Create {
            handle,
            email,
            phone,
            password_file,
            admin,
            recovery_key_out,
        } => {
            let password = password_file.as_ref().map(read_secret).transpose()?;
            let a = with_api(ctx, async |client| {
                Ok(client
                    .create_account(
                        &handle,
                        &email,
                        phone.as_deref(),
                        password.as_deref(),
                        admin,
                    )
                    .await?)
            })?;
            let saved = save_recovery(&a, recovery_key_out.as_ref())?;
            print_json_or(ctx, &a, || {
                say!(
                    "created {} <{}> {}",
                    s(&a["handle"]),
                    s(&a["email"]),
                    s(&a["did"])
                );
                say_recovery(&a, saved.as_ref());
            })?;
        }
        Command::RotateKey {
            handle,
            recovery_key_out,
        } => {
            let v = with_api(ctx, async |client| {
                let handle = match handle {
                    Some(h) => h,
                    None => acting(client, ctx).await?,
                };
                Ok(client.rotate_key(&handle).await?)
            })?;
            let saved = save_recovery(&v, recovery_key_out.as_ref())?;
            print_json_or(ctx, &v, || {
                say!(
                    "{} now signs with {} (key log version {})",
                    s(&v["identity"]),
                    s(&v["key"]),
                    s(&v["log_version"])
                );
                say_recovery(&v, saved.as_ref());
            })?;
        }
        Command::Recover {
            handle,
            recovery_key,
            recovery_key_out,
        } => {
            let text = read_secret(&recovery_key)?;
            let v = with_api(ctx, async |client| {
                let handle = match handle {
                    Some(h) => h,
                    None => acting(client, ctx).await?,
                };
                Ok(client.recover_key(&handle, text.trim()).await?)
            })?;
            let saved = save_recovery(&v, recovery_key_out.as_ref())?;
            print_json_or(ctx, &v, || {
                say!(
                    "recovered {}: it now signs with {} (key log version {}); the recovery key \
                     given is spent",
                    s(&v["identity"]),
                    s(&v["key"]),
                    s(&v["log_version"])
                );
                say_recovery(&v, saved.as_ref());
            })?;
        }
        Command::List => {
            let v = with_api(ctx, async |client| Ok(client.accounts().await?))?;
            let list = v["accounts"].as_array().cloned().unwrap_or_default();
            print_json_or(ctx, &json!(list), || {
                for a in &list {
                    say!(
                        "{:20} {:5} {:30} {}",
                        s(&a["handle"]),
                        s(&a["role"]),
                        s(&a["email"]),
                        s(&a["did"])
                    );
                }
            })?;
        }
        Command::Delete { handle } => {
            let v = with_api(ctx, async |client| {
                Ok(client.delete_account(&handle).await?)
            })?;
            print_json_or(ctx, &v, || say!("deleted {handle}"))?;
        }
        Command::Passwd {
            handle,
            password_file,
        } => {
            let password = read_secret(&password_file)?;
            with_api(ctx, async |client| {
                Ok(client.set_password(&handle, &password).await?)
            })?;
            let v = json!({ "handle": handle, "password_set": true });
            print_json_or(ctx, &v, || say!("password of {handle} changed"))?;
        }
        Command::Phone {
            handle,
            number,
            remove: _,
        } => {
            let a = with_api(ctx, async |client| {
                Ok(client.set_phone(&handle, number.as_deref()).await?)
            })?;
            print_json_or(ctx, &a, || match a["phone"].as_str() {
                Some(p) => say!("phone number of {handle}: {p}"),
                None => say!("{handle} has no phone number"),
            })?;
        }
        Command::ExportKey {
            handle,
            output,
            passphrase_file,
        } => {
            let repo = open_for_keys(ctx)?;
            let a = repo
                .accounts()
                .get(&handle)?
                .with_context(|| format!("no account {handle:?}"))?;
            let did = a.did().context("the account has no key")?;
            let sealed = repo
                .keystore()
                .export(did, &read_secret(&passphrase_file)?)?;
            std::fs::write(&output, sealed)
                .with_context(|| format!("cannot write {}", output.display()))?;
            let v = json!({
                "handle": handle,
                "did": did.to_string(),
                "file": output.display().to_string(),
            });
            print_json_or(ctx, &v, || say!("exported {did} to {}", output.display()))?;
        }
        Command::ImportKey {
            handle,
            file,
            passphrase_file,
        } => {
            let repo = open_for_keys(ctx)?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let key = repo
                .keystore()
                .import(&text, &read_secret(&passphrase_file)?)?;
            let a = repo.accounts().add_key(&handle, &key, true)?;
            let v = json!({
                "handle": a.handle,
                "did": key.did().to_string(),
                "keys": a.keys.iter().map(ToString::to_string).collect::<Vec<_>>(),
            });
            print_json_or(ctx, &v, || say!("{handle} now signs with {}", key.did()))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the answer's `recovery_key`, if any, to `out` (0600), returning the file written.
fn save_recovery(v: &serde_json::Value, out: Option<&PathBuf>) -> anyhow::Result<Option<PathBuf>> {
    let (Some(key), Some(out)) = (v["recovery_key"].as_str(), out) else {
        return Ok(None);
    };
    write_private(out, &format!("{key}\n"))
        .with_context(|| format!("cannot write {}", out.display()))?;
    Ok(Some(out.clone()))
}

#[cfg(unix)]
fn write_private(path: &PathBuf, text: &str) -> std::io::Result<()> {
    use std::{io::Write as _, os::unix::fs::OpenOptionsExt as _};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &PathBuf, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

/// Says where the recovery key went, or prints it, and that it is shown once.
fn say_recovery(v: &serde_json::Value, saved: Option<&PathBuf>) {
    let Some(key) = v["recovery_key"].as_str() else {
        return;
    };
    match saved {
        Some(path) => say!(
            "recovery key written to {} (the node does not keep it: store the file safely, \
             offline; `mnode account recover --recovery-key {}` uses it)",
            path.display(),
            path.display()
        ),
        None => {
            say!("recovery key (shown only now; the node does not keep it):");
            say!("{key}");
            say!(
                "save it in a file kept safely offline; `mnode account recover --recovery-key FILE` uses it"
            );
        }
    }
}

/// The repo itself, for the key verbs: keys stay with a running daemon.
fn open_for_keys(ctx: &Ctx) -> anyhow::Result<mnode_node::repo::Repo> {
    if super::net::daemon_client(ctx)?.is_some() {
        bail!("keys stay with the running daemon: stop it to export or import a key");
    }
    ctx.open()
}

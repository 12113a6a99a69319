//! `mnode config show|get`: the settings a command run now would use.

use super::say;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use mnode_node::config::{self, Config};
use serde_json::Value;

use super::Ctx;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Print every setting as YAML: the repo's mnode.yaml with MNODE_* variables and -c applied.
    Show,
    /// Print one setting, as in `mnode config get api.listen`.
    Get {
        /// The setting's path, `section.key` (or `section.sub.key`).
        key: String,
    },
}

pub(crate) fn run(command: Command, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let mut config = effective(ctx)?;
    match command {
        Command::Show => {
            // A secret stays off screens and logs; `config get` prints it when asked by name.
            if !config.blobs.s3.secret_access_key.is_empty() {
                config.blobs.s3.secret_access_key = "(set; hidden)".into();
            }
            if ctx.out.json {
                ctx.out.print_json(&serde_json::to_value(&config)?)?;
            } else {
                // The file `init` writes, without its comments, which speak of defaults.
                let yaml = config.to_commented_yaml();
                for line in yaml.lines().filter(|l| !l.trim_start().starts_with('#')) {
                    if !line.is_empty() {
                        say!("{line}");
                    }
                }
            }
        }
        Command::Get { key } => {
            let tree = serde_json::to_value(&config)?;
            let value = Some(&tree)
                .filter(|_| key.contains('.'))
                .and_then(|tree| key.split('.').try_fold(tree, |v, part| v.get(part)))
                .with_context(|| {
                    format!("{key:?} is not a setting; `mnode config show` lists them")
                })?;
            if ctx.out.json {
                ctx.out.print_json(value)?;
            } else {
                match value {
                    Value::String(s) => say!("{s}"),
                    other => say!("{other}"),
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The config of the repo with the environment's and the flags' settings. Read without opening
/// the repo, so it works while a daemon holds it.
fn effective(ctx: &Ctx) -> anyhow::Result<Config> {
    let path = ctx.repo_path();
    if !path.join("version").exists() {
        bail!(
            "no repo at {} (`mnode init` makes one; --repo or MNODE_REPO names another)",
            path.display()
        );
    }
    Ok(Config::load(
        &path.join(config::FILE_NAME),
        std::env::vars(),
        &ctx.config,
    )?)
}

//! `mnode types`

use super::say;
use std::process::ExitCode;

use mnode_dag::KINDS;
use serde_json::json;

use super::Output;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Include each kind's JSON Schema (with --json).
    #[arg(long)]
    schema: bool,
}

pub(crate) fn run(args: Args, out: Output) -> anyhow::Result<ExitCode> {
    if out.json {
        let kinds: Vec<_> = KINDS
            .iter()
            .map(|k| {
                let mut v = json!({
                    "name": k.name,
                    "namespace": k.namespace(),
                    "collection": format!("{}.{}", k.namespace(), k.collection),
                    "description": k.description,
                });
                if args.schema {
                    v["schema"] = serde_json::to_value(k.schema()).unwrap_or_default();
                }
                v
            })
            .collect();
        out.print_json(&json!(kinds))?;
    } else {
        let width = KINDS.iter().map(|k| k.name.len()).max().unwrap_or(0);
        let cwidth = KINDS
            .iter()
            .map(|k| k.namespace().len() + k.collection.len() + 1)
            .max()
            .unwrap_or(0);
        say!("{:width$}  {:cwidth$}  DESCRIPTION", "KIND", "QUERY AS");
        for k in KINDS {
            let collection = format!("{}.{}", k.namespace(), k.collection);
            say!("{:width$}  {collection:cwidth$}  {}", k.name, k.description);
        }
    }
    Ok(ExitCode::SUCCESS)
}

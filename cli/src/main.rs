//! `mnode`: the command-line tool.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

/// mnode: a peer-to-peer, content-addressed node for publishing and discussing creative work.
#[derive(Debug, Parser)]
#[command(name = "mnode", version, about, long_about = None)]
struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the registered record kinds.
    Types(cmd::types::Args),
    /// Print a signed example record of a kind (and optionally write its whole DAG as a CAR).
    Example(cmd::example::Args),
    /// Verify a CAR file: every block's hash, every record's encoding, signature and chain.
    Verify(cmd::verify::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = cmd::Output { json: cli.json };
    let result = match cli.command {
        Command::Types(args) => cmd::types::run(args, out),
        Command::Example(args) => cmd::example::run(args, out),
        Command::Verify(args) => cmd::verify::run(args, out),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if cli.json {
                let msg = serde_json::json!({ "error": { "message": format!("{e:#}") } });
                println!("{msg}");
            } else {
                eprintln!("error: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}

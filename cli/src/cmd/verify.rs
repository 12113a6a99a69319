//! `mnode verify FILE.car`

use super::say;
use std::{
    fs::File,
    io::{self, Read},
    path::PathBuf,
    process::ExitCode,
};

use anyhow::Context as _;
use mnode_dag::{
    car::{CarError, CarReader},
    verify::{Report, Verifier},
};
use serde_json::json;

use super::Output;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The CAR file to check, or `-` for standard input.
    file: PathBuf,
}

pub(crate) fn run(args: Args, out: Output) -> anyhow::Result<ExitCode> {
    let input: Box<dyn Read> = if args.file.as_os_str() == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(
            File::open(&args.file)
                .with_context(|| format!("cannot open {}", args.file.display()))?,
        )
    };
    let mut car = CarReader::new(input)
        .with_context(|| format!("{} is not a readable CAR", args.file.display()))?;
    let roots = car.roots().to_vec();
    let mut verifier = Verifier::new();
    let mut framing: Option<String> = None;
    loop {
        match car.next_block() {
            Ok(Some((cid, bytes))) => {
                // Failures are collected in the report.
                let _ = verifier.add(cid, bytes);
            }
            Ok(None) => break,
            // A block whose bytes do not match its CID: record it and read on.
            Err(CarError::Block { error, .. }) => {
                let mnode_dag::cids::CidError::HashMismatch(cid) = error else {
                    framing = Some(error.to_string());
                    break;
                };
                verifier.fail(cid, format!("block does not hash to {cid}"));
            }
            // Anything else leaves the stream unreadable from here on.
            Err(e) => {
                framing = Some(e.to_string());
                break;
            }
        }
    }
    let report = verifier.finish(&roots);
    let ok = report.ok() && framing.is_none();
    if out.json {
        out.print_json(&to_json(&report, &roots, framing.as_deref(), ok))?;
    } else {
        print_text(&report, &roots, framing.as_deref(), ok);
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_text(r: &Report, roots: &[mnode_dag::Cid], framing: Option<&str>, ok: bool) {
    say!(
        "blocks    {} ({} records, {} other dag-cbor, {} raw, {} other codecs), {} bytes",
        r.blocks,
        r.records,
        r.ipld,
        r.raw,
        r.other,
        r.bytes
    );
    say!(
        "roots     {} ({} missing)",
        roots.len(),
        r.roots_missing.len()
    );
    let mut kinds: Vec<_> = r.kinds.iter().collect();
    kinds.sort();
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
    say!(
        "kinds     {}",
        if kinds.is_empty() {
            "-".to_owned()
        } else {
            kinds.join(", ")
        }
    );
    say!(
        "chains    {} version links verified, {} previous versions not in the file, {} forks",
        r.chain_links,
        r.prev_missing,
        r.forks
    );
    say!(
        "links     {} linked blocks not in the file",
        r.links_missing
    );
    if r.authority_missing > 0 {
        say!(
            "groups    {} records cite group or key-log versions not in the file (their group and key rules were not checked)",
            r.authority_missing
        );
    }
    for root in &r.roots_missing {
        say!("FAIL      root {root} is not in the file");
    }
    for f in &r.failures {
        say!("FAIL      {}: {}", f.cid, f.error);
    }
    if let Some(e) = framing {
        say!("FAIL      {e}");
    }
    say!("result    {}", if ok { "OK" } else { "FAILED" });
}

fn to_json(
    r: &Report,
    roots: &[mnode_dag::Cid],
    framing: Option<&str>,
    ok: bool,
) -> serde_json::Value {
    json!({
        "ok": ok,
        "roots": roots.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "roots_missing": r.roots_missing.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "blocks": r.blocks,
        "bytes": r.bytes,
        "records": r.records,
        "ipld": r.ipld,
        "raw": r.raw,
        "other": r.other,
        "kinds": r.kinds,
        "chain_links": r.chain_links,
        "prev_missing": r.prev_missing,
        "authority_missing": r.authority_missing,
        "forks": r.forks,
        "links_missing": r.links_missing,
        "failures": r.failures.iter().map(|f| json!({"cid": f.cid.to_string(), "error": f.error})).collect::<Vec<_>>(),
        "framing_error": framing,
    })
}

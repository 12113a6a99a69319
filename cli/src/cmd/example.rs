//! `mnode example KIND`

use super::say;
use std::{collections::HashMap, fs::File, io::BufWriter, path::PathBuf, process::ExitCode};

use anyhow::{Context as _, bail};
use mnode_dag::{Cid, car::CarWriter, cbor, example::ExampleGen, json, registry, walk};
use serde_json::json;

use super::Output;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The kind, as listed by `mnode types` (for example `art.release`).
    kind: String,
    /// Seed of the generator: the same seed always gives the same record and CID.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Also write the record and every block it links to (records and files) to this CAR file.
    #[arg(long, value_name = "FILE")]
    car: Option<PathBuf>,
}

pub(crate) fn run(args: Args, out: Output) -> anyhow::Result<ExitCode> {
    let Some(kind) = registry::lookup(&args.kind) else {
        let names: Vec<&str> = registry::KINDS.iter().map(|k| k.name).collect();
        bail!(
            "unknown kind {:?}; the kinds are: {}",
            args.kind,
            names.join(", ")
        );
    };
    let mut g = ExampleGen::new(args.seed);
    let record = g.record_of(kind)?;
    let blocks: HashMap<Cid, Vec<u8>> = g.take_blocks().into_iter().collect();

    let mut written = None;
    if let Some(path) = &args.car {
        let file =
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut car = CarWriter::new(BufWriter::new(file), &[record.cid()])?;
        let mut count = 0u64;
        let missing = walk::walk(
            &[record.cid()],
            |cid| Ok::<_, std::io::Error>(blocks.get(cid).cloned()),
            |cid, bytes| {
                count += 1;
                car.write_block(cid, bytes)
            },
        )?;
        if !missing.is_empty() {
            bail!("the example links blocks it did not make: {missing:?}");
        }
        car.finish()?;
        written = Some((path.clone(), count));
    }

    let dag_json = json::to_json_value(&cbor::decode_ipld(record.bytes())?)?;
    if out.json {
        let mut v =
            json!({ "cid": record.cid().to_string(), "type": kind.name, "record": dag_json });
        if let Some((path, count)) = &written {
            v["car"] = json!({ "path": path, "blocks": count });
        }
        out.print_json(&v)?;
    } else {
        say!("{}", serde_json::to_string_pretty(&dag_json)?);
        say!("cid: {}", record.cid());
        if let Some((path, count)) = written {
            eprintln!("wrote {count} blocks to {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

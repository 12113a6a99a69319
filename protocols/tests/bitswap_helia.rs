//! Bitswap interop with Helia (`tests/interop/bitswap.mjs`): Helia fetches signed mnode
//! records from a Rust node, and a Rust node fetches records from Helia.
//!
//! Needs Node.js (>= 20.19) and `npm ci` in `tests/interop`. Without `node_modules` the tests
//! print why and pass, unless `CI` is set, where they fail.

mod bitswap_support;

use std::{path::PathBuf, process::Stdio, time::Duration};

use anyhow::{Context as _, Result, bail, ensure};
use bitswap_support::{Node, STEP, example_blocks, within};
use libp2p::{Multiaddr, PeerId};
use mnode_dag::{Cid, Record, cids};
use mnode_protocols::bitswap::FetchError;
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    process::Command,
};

/// This crate's folder, as the test runner says when the test runs: a binary built in another
/// checkout that shares the target dir (and counts as fresh here) carries that checkout's path.
fn crate_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), Into::into)
}

/// The whole script run may take this long (Helia's start, dial and fetches).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(90);

fn interop_dir() -> PathBuf {
    crate_dir().join("tests/interop")
}

/// Whether the JS side is installed; when it is not, outside CI, says so and returns false.
fn helia_installed() -> bool {
    let modules = interop_dir().join("node_modules");
    if modules.is_dir() {
        return true;
    }
    let in_ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    assert!(
        !in_ci,
        "{} is missing: run `npm ci` in protocols/tests/interop (CI must run it)",
        modules.display()
    );
    println!(
        "SKIPPED: {} is missing; run `npm ci --prefix protocols/tests/interop` to test Bitswap \
         against Helia",
        modules.display()
    );
    false
}

fn node_command() -> Command {
    let mut command = Command::new("node");
    command
        .current_dir(interop_dir())
        .kill_on_drop(true)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Signed example records (dag-cbor, sha2-256: what Helia hashes out of the box).
fn records(seed: u64, n: usize) -> Vec<(Cid, Vec<u8>)> {
    let blocks: Vec<_> = example_blocks(seed, n)
        .into_iter()
        .filter(|(cid, _)| cids::link_kind(cid) == cids::LinkKind::Record)
        .collect();
    for (cid, bytes) in &blocks {
        let record = Record::decode(bytes).expect("example blocks are records");
        record.verify().expect("example records are signed");
        assert_eq!(record.cid(), *cid);
    }
    blocks
}

#[tokio::test]
async fn two_nodes_helia_fetches_from_rust() -> Result<()> {
    if !helia_installed() {
        return Ok(());
    }
    let rust = Node::start(21).await?;
    let blocks = records(5, 6);
    ensure!(
        blocks.len() >= 6,
        "expected a small DAG, got {}",
        blocks.len()
    );
    for (cid, data) in &blocks {
        rust.blocks.insert(*cid, data.clone());
    }
    let target = format!("{}/p2p/{}", rust.addr(), rust.peer());
    let mut args = vec!["bitswap.mjs".to_owned(), "fetch".to_owned(), target];
    args.extend(blocks.iter().map(|(cid, _)| cid.to_string()));

    let output = tokio::time::timeout(SCRIPT_TIMEOUT, node_command().args(&args).output())
        .await
        .context("the Helia fetch script timed out")?
        .context("could not run `node` (Node.js >= 20.19 must be on PATH)")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(
        output.status.success(),
        "Helia fetch failed ({})\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        output.status
    );
    let report: Value = serde_json::from_str(stdout.trim().lines().last().unwrap_or_default())
        .with_context(|| format!("unexpected script output: {stdout}"))?;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["remote"], rust.peer().to_string());
    let got = report["blocks"].as_array().context("no blocks")?;
    assert_eq!(got.len(), blocks.len());
    for ((cid, data), entry) in blocks.iter().zip(got) {
        assert_eq!(entry["cid"], cid.to_string());
        let bytes = hex::decode(entry["hex"].as_str().context("hex")?)?;
        assert_eq!(&bytes, data, "{cid}");
    }
    println!("Helia fetched {} records from Rust over Bitswap", got.len());
    Ok(())
}

#[tokio::test]
async fn two_nodes_rust_fetches_from_helia() -> Result<()> {
    if !helia_installed() {
        return Ok(());
    }
    let blocks = records(6, 4);
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("blocks.json");
    let list: Vec<Value> = blocks
        .iter()
        .map(|(cid, data)| serde_json::json!({ "cid": cid.to_string(), "hex": hex::encode(data) }))
        .collect();
    std::fs::write(&file, serde_json::to_vec(&list)?)?;

    let mut child = node_command()
        .stdin(Stdio::piped())
        .arg("bitswap.mjs")
        .arg("serve")
        .arg(&file)
        .spawn()
        .context("could not run `node` (Node.js >= 20.19 must be on PATH)")?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(SCRIPT_TIMEOUT, lines.next_line())
        .await
        .context("Helia did not start in time")??;
    let Some(first) = first else {
        let out = child.wait_with_output().await?;
        bail!(
            "Helia exited early: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let info: Value = serde_json::from_str(&first).with_context(|| first.clone())?;
    assert_eq!(info["ok"], true, "{info}");
    let helia: PeerId = info["peer"].as_str().context("peer")?.parse()?;
    let addr: Multiaddr = info["addrs"][0].as_str().context("addrs")?.parse()?;

    let rust = Node::start(22).await?;
    rust.swarm.connect(helia, addr).await?;
    for (cid, data) in &blocks {
        let got = rust.bitswap.fetch(*cid, vec![helia], STEP).await?;
        assert_eq!(&got, data, "{cid}");
    }
    // Helia answers a want for a block it lacks with DontHave.
    let missing = cids::record_cid(b"\xa1\x61m\x00");
    let err = rust
        .bitswap
        .fetch(missing, vec![helia], STEP)
        .await
        .unwrap_err();
    assert_eq!(err, FetchError::NotFound(missing));

    drop(child.stdin.take());
    let status = within("Helia to stop", child.wait()).await??;
    assert!(status.success(), "Helia exited with {status}");
    println!(
        "Rust fetched {} records from Helia over Bitswap",
        blocks.len()
    );
    Ok(())
}

//! Cross-checks the golden vectors (`tests/vectors/*.json`) with independent JavaScript
//! implementations: `tests/interop/vectors.test.mjs` decodes and re-encodes every block with
//! @ipld/dag-cbor, recomputes its CID with multiformats, re-encodes our DAG-JSON with
//! @ipld/dag-json, and verifies the ed25519 signature with @noble/curves.
//!
//! Needs Node.js (>= 20.19) and npm on PATH; a missing `node` fails the test rather than
//! skipping it. When `tests/interop/node_modules` is missing, the test runs `npm ci` first.

use std::{
    io::ErrorKind,
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// This crate's folder, as the test runner says when the test runs: a binary built in another
/// checkout that shares the target dir (and counts as fresh here) carries that checkout's path.
fn crate_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), Into::into)
}

fn interop_dir() -> PathBuf {
    crate_dir().join("tests/interop")
}

/// Runs `program args` in `dir`, failing the test with a clear message if it can't be started.
fn run(dir: &Path, program: &str, args: &[&str]) -> Output {
    let mut command = Command::new(program);
    // check the committed vectors, whatever the caller's environment points at
    command
        .args(args)
        .current_dir(dir)
        .env_remove("MNODE_VECTORS_DIR");
    match command.output() {
        Ok(output) => output,
        Err(e) if e.kind() == ErrorKind::NotFound => panic!(
            "`{program}` was not found on PATH: the JS interop check of the golden vectors needs \
             Node.js (>= 20.19) and npm (e.g. `apt-get install nodejs npm`)"
        ),
        Err(e) => panic!(
            "could not run `{program} {}` in {}: {e}",
            args.join(" "),
            dir.display()
        ),
    }
}

fn assert_success(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "`{what}` failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}

#[test]
fn js_decodes_reencodes_and_verifies_every_vector() {
    let dir = interop_dir();

    let version = run(&dir, "node", &["--version"]);
    assert_success("node --version", &version);

    if !dir.join("node_modules").is_dir() {
        let install = run(&dir, "npm", &["ci", "--no-audit", "--no-fund"]);
        assert_success("npm ci --no-audit --no-fund", &install);
    }

    let args = ["--test", "--test-reporter=tap", "vectors.test.mjs"];
    let output = run(&dir, "node", &args);
    assert_success("node --test vectors.test.mjs", &output);

    // The exit status is the verdict; also make sure tests really ran.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let count = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|n| n.trim().parse::<u64>().ok())
    };
    let (pass, fail) = (count("# pass "), count("# fail "));
    assert!(
        pass.is_some_and(|n| n > 0) && fail == Some(0),
        "node ran no passing test (pass {pass:?}, fail {fail:?})\n--- stdout ---\n{stdout}"
    );
    println!(
        "node {}: {} JS interop tests passed",
        String::from_utf8_lossy(&version.stdout).trim(),
        pass.unwrap_or_default()
    );
}

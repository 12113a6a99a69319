//! The API contract, measured by a tool nobody here wrote: schemathesis reads
//! `/api/v1/openapi.json` from a daemon with a seeded repo and runs every check over every
//! operation, in every phase (examples, coverage, fuzzing and the stateful phase that chains
//! operations by their answers). It must find nothing: no 5xx, no answer the document does
//! not list, no request the document allows refused, no request it forbids accepted.
//!
//! `cli/tests/schemathesis/` holds what the run needs besides the document: `hooks.py`, the
//! generators of the string formats the document names (a `did:key` must be a point on the
//! curve, which no pattern says), fed with what the repo holds; `schemathesis.toml`, the few
//! answers a schema cannot predict, each with its reason.

#![allow(clippy::unwrap_used)]

mod support;

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use serde_json::{Value, json};
use support::http::Api;

/// This crate's folder, as the test runner says when the test runs: a binary built in another
/// checkout that shares the target dir (and counts as fresh here) carries that checkout's path.
fn crate_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), Into::into)
}

/// The schemathesis release `.ci/run` installs.
const VERSION: &str = "4.32.5";
/// Examples an operation gets in the fuzzing phase (the coverage phase adds its own, derived
/// from each schema's bounds, and the stateful phase its scenarios).
const MAX_EXAMPLES: &str = "10";
const PASSWORD: &str = "correct horse battery staple 77";

/// Where schemathesis's `st` is: `MNODE_SCHEMATHESIS`, the venv `.ci/run` makes, or `PATH`.
fn schemathesis() -> Option<PathBuf> {
    if let Some(st) = std::env::var_os("MNODE_SCHEMATHESIS") {
        return Some(st.into());
    }
    let venv = std::env::var_os("HOME")
        .map(|home| Path::new(&home).join(".cache/mnode-venv/bin/st"))
        .filter(|st| st.is_file());
    venv.or_else(|| {
        std::env::split_paths(&std::env::var_os("PATH")?)
            .map(|dir| dir.join("st"))
            .find(|st| st.is_file())
    })
}

/// Every string in `v` that starts with `prefix`.
fn strings_with(v: &Value, prefix: &str, out: &mut Vec<String>) {
    match v {
        Value::String(s) if s.starts_with(prefix) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings_with(x, prefix, out)),
        Value::Object(o) => o.values().for_each(|x| strings_with(x, prefix, out)),
        _ => {}
    }
}

#[test]
fn schemathesis_finds_no_contract_failure() {
    let st = schemathesis().unwrap_or_else(|| {
        panic!(
            "schemathesis is not installed; .ci/run installs it, or run:\n  python3 -m venv \
             ~/.cache/mnode-venv && ~/.cache/mnode-venv/bin/pip install \
             schemathesis=={VERSION}\n(or set MNODE_SCHEMATHESIS to an `st` binary)"
        )
    });
    let dir = tempfile::tempdir().unwrap();
    // No peers, no mDNS, and no rate limits: the run sends thousands of writes and logins.
    let repo = support::init_with(
        dir.path(),
        "node",
        &[
            "network.mdns=false",
            "api.limits.writes_per_account=0",
            "api.limits.writes_per_address=0",
            "api.limits.uploads_per_account=0",
            "api.limits.uploads_per_address=0",
            "api.limits.logins_per_account=0",
            "api.limits.logins_per_address=0",
            "api.limits.login_free_failures_per_account=0",
            "api.limits.login_free_failures_per_address=0",
        ],
    );
    // Profiles, a release with files, a forum with branches and a forked thread, posts, a fact.
    let seeded = support::mnode(&repo, &["seed"]);
    assert!(
        seeded.status.success(),
        "{}",
        String::from_utf8_lossy(&seeded.stderr)
    );
    let log = dir.path().join("daemon.log");
    let daemon = support::run_logged(&repo, &log);
    let api = Api::of(&repo);

    // A second account with a password, and a session of it.
    let bob = api.ok(
        "POST",
        "/api/v1/accounts",
        Some(&json!({ "handle": "bob", "email": "bob@example.org", "password": PASSWORD })),
    );
    api.ok(
        "POST",
        "/api/v1/sessions",
        Some(&json!({ "login": "bob", "password": PASSWORD })),
    );
    let me = api.ok("GET", "/api/v1/me", None);

    // What the generators draw from: the repo's records, the files they name, their authors.
    let listing = api.ok("GET", "/api/v1/records?limit=1000", None);
    let items = listing["items"].as_array().unwrap();
    assert!(items.len() >= 20, "the seed made records: {listing}");
    let mut record_cids = Vec::new();
    let mut file_cids = Vec::new();
    let mut dids = vec![
        me["did"].as_str().unwrap().to_owned(),
        bob["did"].as_str().unwrap().to_owned(),
    ];
    for item in items {
        strings_with(&item["id"], "bafyrei", &mut record_cids);
        strings_with(&item["head"], "bafyrei", &mut record_cids);
        strings_with(&item["author"], "did:key:", &mut dids);
        let id = item["id"].as_str().unwrap();
        let record = api.ok("GET", &format!("/api/v1/records/{id}"), None);
        strings_with(&record, "bafkr4i", &mut file_cids);
    }
    // Authors nobody here knows.
    dids.extend((0..4).map(|_| mnode_dag::Keypair::generate().did_text().to_owned()));
    for list in [&mut record_cids, &mut file_cids, &mut dids] {
        list.sort();
        list.dedup();
    }
    assert!(!file_cids.is_empty(), "the seed made files");

    // A CAR and a file to import; a folder the export operations may write into.
    let fixtures = dir.path().join("fixtures");
    let scratch = dir.path().join("scratch");
    std::fs::create_dir_all(&fixtures).unwrap();
    std::fs::create_dir_all(&scratch).unwrap();
    let car = fixtures.join("item.car");
    api.ok(
        "POST",
        "/api/v1/dag/export",
        Some(&json!({ "cid": record_cids[0], "path": car })),
    );
    let file = fixtures.join("hello.txt");
    std::fs::write(&file, "hello\n").unwrap();

    let info: Value =
        serde_json::from_slice(&std::fs::read(repo.join("daemon.json")).unwrap()).unwrap();
    let cids = [record_cids.clone(), file_cids.clone()].concat();
    let data = json!({
        "cids": cids,
        "record_cids": record_cids,
        "file_cids": file_cids,
        "dids": dids,
        "peer_ids": [info["peer_id"]],
        "handles": [me["handle"], "bob"],
        "queries": ["art.artists.list()", "art.artists.count()", "social.posts.list()", "art.releases.list()"],
        "scratch": scratch,
        "car": car,
        "file": file,
    });
    let data_file = dir.path().join("data.json");
    std::fs::write(&data_file, data.to_string()).unwrap();

    let here = crate_dir().join("tests/schemathesis");
    let url = format!("http://{}/api/v1/openapi.json", api.addr);
    let start = Instant::now();
    let out = Command::new(&st)
        .arg("--config-file")
        .arg(here.join("schemathesis.toml"))
        .args([
            "run",
            &url,
            "--checks",
            "all",
            "--max-examples",
            MAX_EXAMPLES,
        ])
        // Deterministic generation keeps no example database either: every run is the same.
        .args(["--seed", "1", "--generation-deterministic"])
        // One worker: with two, schemathesis parses sources from two threads at once, which
        // CPython 3.11's `ast` module does not survive ("AST constructor recursion depth
        // mismatch", python/cpython#106905), failing an operation at random.
        .args(["--workers", "1"])
        .args(["--continue-on-failure", "--no-color"])
        .arg("-H")
        .arg(format!("Authorization: Bearer {}", api.token))
        .env("SCHEMATHESIS_HOOKS", here.join("hooks.py"))
        .env("MNODE_ST_DATA", &data_file)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    println!("{report}");
    println!("schemathesis ran {:.0?}", start.elapsed());
    assert!(
        out.status.success(),
        "schemathesis found contract failures ({}):\n{report}\n{}\nthe daemon's log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(
        report.contains(&format!("Schemathesis v{VERSION}")),
        "the run used schemathesis {VERSION} (.ci/run pins it): {st:?}"
    );
    drop(daemon);
}

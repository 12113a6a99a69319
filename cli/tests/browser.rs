//! The web UI in a real browser: two daemons (and a third with low rate limits), and the
//! Node.js tests in `ui/tests/browser` driving headless Chromium through them as people would
//! (sign up, publish a release with a cover and a track, follow, see posts arrive live, across
//! two nodes, without JavaScript, go over a rate limit), with axe-core accessibility checks on
//! every page type and, when `MNODE_SCREENSHOTS` names a folder, screenshots of each page type
//! (desktop and phone, light and dark).
//!
//! Needs Node.js (>= 20.19), `npm ci` in `ui/tests/browser` and Chromium (`chromium` on PATH,
//! or `CHROMIUM`). Without them the test prints why and passes, unless `CI` or
//! `MNODE_REQUIRE_BROWSER` is set, where it fails.

#![allow(clippy::unwrap_used)]

mod support;

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use serde_json::Value;
use support::{Daemon, json, wait_until};

/// This crate's folder, as the test runner says when the test runs: a binary built in another
/// checkout that shares the target dir (and counts as fresh here) carries that checkout's path.
fn crate_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), Into::into)
}

const JS: &str = "ui/tests/browser";

fn js_dir() -> PathBuf {
    let cli = &crate_dir();
    cli.parent().unwrap_or(cli).join(JS)
}

fn flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// `CHROMIUM`, else the first of the usual names on PATH.
fn find_chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|p| p.is_file())
}

/// Chromium, when the browser tests can run; when they cannot, outside CI, says why and
/// returns `None`.
fn browser_ready() -> Option<PathBuf> {
    let modules = js_dir().join("node_modules");
    let chromium = find_chromium();
    let missing = if !modules.is_dir() {
        format!(
            "{} is missing; run `npm ci --prefix {JS}` to run the browser tests",
            modules.display()
        )
    } else if chromium.is_none() {
        "Chromium is missing; install it (`apt-get install -y chromium`) or set CHROMIUM".into()
    } else {
        return chromium;
    };
    assert!(
        !flag("CI") && !flag("MNODE_REQUIRE_BROWSER"),
        "{missing} (CI and MNODE_REQUIRE_BROWSER require the browser tests)"
    );
    println!("SKIPPED: {missing}");
    None
}

/// A daemon the browser tests talk to, with what they need to know of it.
struct Node {
    daemon: Daemon,
    url: String,
    addr: String,
    owner: String,
    password: String,
    did: String,
    log: PathBuf,
}

/// `mnode init` with an owner `handle` whose password is `password` and the extra
/// `settings` (`key=value`), then `mnode daemon`, all on 127.0.0.1 ports the system picks.
fn start(dir: &Path, name: &str, handle: &str, password: &str, settings: &[&str]) -> Node {
    let repo = dir.join(name);
    let secret = dir.join(format!("{name}.password"));
    std::fs::write(&secret, format!("{password}\n")).unwrap();
    let mut args = vec![
        "init",
        "--handle",
        handle,
        "--password-file",
        secret.to_str().unwrap(),
    ];
    for setting in [
        "api.listen=127.0.0.1:0",
        r#"network.listen=["/ip4/127.0.0.1/tcp/0"]"#,
        "network.blobs_listen=127.0.0.1:0",
        "network.gossip_heartbeat_ms=100",
    ]
    .iter()
    .chain(settings)
    {
        args.extend(["-c", setting]);
    }
    let init = json(&repo, &args);
    let did = init["owner"]["did"].as_str().unwrap().to_owned();
    assert!(did.starts_with("did:key:"), "{init}");

    let log = dir.join(format!("{name}.log"));
    let out = File::create(&log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_mnode"))
        .arg("--repo")
        .arg(&repo)
        .arg("daemon")
        .env("MNODE_PASSPHRASE", "a test passphrase")
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .spawn()
        .unwrap();
    let mut daemon = Daemon { child, repo };

    // daemon.json appears when the node and its API listen; read it once it parses whole.
    let mut file = Value::Null;
    wait_until(&format!("{name}'s daemon.json"), || {
        if let Ok(Some(status)) = daemon.child.try_wait() {
            panic!(
                "{name}'s daemon exited ({status}):\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        let read = std::fs::read(daemon.repo.join("daemon.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .filter(|v| v["api"].is_string());
        match read {
            Some(v) => {
                file = v;
                true
            }
            None => false,
        }
    });
    let url = file["api"]
        .as_str()
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    let peer_id = file["peer_id"].as_str().unwrap();
    let addr = file["addrs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .find(|a| a.starts_with("/ip4/127.0.0.1/tcp/"))
        .unwrap_or_else(|| panic!("{name} has no 127.0.0.1 TCP address: {file}"));
    let addr = if addr.contains("/p2p/") {
        addr.to_owned()
    } else {
        format!("{addr}/p2p/{peer_id}")
    };
    Node {
        daemon,
        url,
        addr,
        owner: handle.to_owned(),
        password: password.to_owned(),
        did,
        log,
    }
}

impl Node {
    fn env(&self, letter: &str, cmd: &mut Command) {
        cmd.env(format!("MNODE_{letter}_URL"), &self.url)
            .env(format!("MNODE_{letter}_OWNER"), &self.owner)
            .env(format!("MNODE_{letter}_PASSWORD"), &self.password)
            .env(format!("MNODE_{letter}_ADDR"), &self.addr)
            .env(format!("MNODE_{letter}_DID"), &self.did);
    }

    /// The end of the daemon's log, for a failure's report.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

#[test]
fn the_web_ui_in_a_browser() {
    let Some(chromium) = browser_ready() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let a = start(
        dir.path(),
        "a",
        "owner_a",
        "a long walk along the river Avon",
        &[],
    );
    let b = start(
        dir.path(),
        "b",
        "owner_b",
        "a short swim across the bay of Biscay",
        &[],
    );
    // Node C has low rate limits, for the pages a person sees over them (limits.test.mjs):
    // two writes per account in ten minutes, a wait after one failed login; every request
    // comes from 127.0.0.1, so the per-address budgets are off.
    let c = start(
        dir.path(),
        "c",
        "owner_c",
        "a slow climb up the hill of Crickley",
        &[
            "api.limits.period_secs=600",
            "api.limits.writes_per_account=2",
            "api.limits.writes_per_address=0",
            "api.limits.uploads_per_address=0",
            "api.limits.logins_per_address=0",
            "api.limits.login_free_failures_per_account=1",
            "api.limits.login_free_failures_per_address=0",
        ],
    );
    println!("node A: {} ({})", a.url, a.addr);
    println!("node B: {} ({})", b.url, b.addr);
    println!("node C: {} ({}), with low rate limits", c.url, c.addr);

    let mut cmd = Command::new("node");
    cmd.current_dir(js_dir())
        .args(["--test", "--test-concurrency=1", "--test-reporter=spec"])
        .env("CHROMIUM", &chromium)
        .env_remove("MNODE_SCREENSHOTS")
        .stdin(Stdio::null());
    a.env("A", &mut cmd);
    b.env("B", &mut cmd);
    c.env("C", &mut cmd);
    // A relative MNODE_SCREENSHOTS (docs/ui) is taken from the workspace's root.
    if let Some(shots) = std::env::var_os("MNODE_SCREENSHOTS").filter(|s| !s.is_empty()) {
        let cli = &crate_dir();
        let shots = cli.parent().unwrap_or(cli).join(shots);
        println!("screenshots into {}", shots.display());
        cmd.env("MNODE_SCREENSHOTS", shots);
    }
    // The tests' output goes straight to this test's output, as it comes.
    let status = cmd
        .status()
        .expect("could not run `node` (Node.js >= 20.19 must be on PATH)");
    if !status.success() {
        println!("--- node A's log (end) ---\n{}", a.log_tail());
        println!("--- node B's log (end) ---\n{}", b.log_tail());
        println!("--- node C's log (end) ---\n{}", c.log_tail());
    }
    assert!(status.success(), "the browser tests failed ({status})");
    drop(a.daemon);
    drop(b.daemon);
    drop(c.daemon);
}

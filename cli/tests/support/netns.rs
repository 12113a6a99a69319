//! Daemons in the simulated networks of [`mnode_bench_support::netns`]: started, asked and
//! stopped with `ip netns exec`.

use std::{
    path::Path,
    process::{Child, Command, Output, Stdio},
};

#[allow(unused_imports, reason = "only the namespace tests use them")]
pub use mnode_bench_support::netns::{Nat, Net};

use super::{Daemon, WAIT};

/// `mnode` with `args` on `repo`, run inside `ns` (where the daemon's API is on loopback).
pub fn mnode_in(ns: &str, repo: &Path, args: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", ns, env!("CARGO_BIN_EXE_mnode"), "--repo"])
        .arg(repo)
        .args(args)
        .env("MNODE_PASSPHRASE", "a test passphrase")
        .output()
        .unwrap()
}

/// `mnode --json` with `args` inside `ns`; its answer, checked.
pub fn json_in(ns: &str, repo: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let o = mnode_in(ns, repo, &all);
    assert!(
        o.status.success(),
        "mnode {args:?} in {ns} failed: {}{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// A repo for a daemon in a namespace: listening on every address on `port` (TCP and QUIC),
/// files on `port + 1`, `settings` after.
pub fn init_in(dir: &Path, name: &str, port: u16, settings: &[String]) -> std::path::PathBuf {
    let repo = dir.join(name);
    let listen =
        format!(r#"network.listen=["/ip4/0.0.0.0/tcp/{port}","/ip4/0.0.0.0/udp/{port}/quic-v1"]"#);
    let blobs = format!("network.blobs_listen=0.0.0.0:{}", port + 1);
    let mut args: Vec<&str> = vec![
        "init",
        "-c",
        &listen,
        "-c",
        &blobs,
        "-c",
        "network.gossip_heartbeat_ms=100",
        "-c",
        "api.listen=127.0.0.1:0",
        "-c",
        "log.level=info,mnode_node=debug",
    ];
    for s in settings {
        args.extend(["-c", s]);
    }
    let o = super::mnode(&repo, &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    repo
}

/// Starts `mnode daemon` on `repo` inside `ns`, its log in `repo/daemon.log`, and waits until it
/// is ready.
pub fn run_in(ns: &str, repo: &Path) -> Daemon {
    let log = std::fs::File::create(repo.join("daemon.log")).unwrap();
    let child: Child = Command::new("ip")
        .args(["netns", "exec", ns, env!("CARGO_BIN_EXE_mnode"), "--repo"])
        .arg(repo)
        .arg("daemon")
        .env("MNODE_PASSPHRASE", "a test passphrase")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut d = Daemon {
        child,
        repo: repo.to_owned(),
    };
    let pid = u64::from(d.child.id());
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = d.child.try_wait().unwrap() {
            panic!(
                "the daemon in {ns} exited ({status}) before it was ready:\n{}",
                std::fs::read_to_string(repo.join("daemon.log")).unwrap_or_default()
            );
        }
        let ready = std::fs::read(repo.join("daemon.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .is_some_and(|v| v["pid"].as_u64() == Some(pid));
        if ready {
            return d;
        }
        assert!(start.elapsed() < WAIT, "the daemon in {ns} did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

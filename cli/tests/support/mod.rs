//! Daemons for the CLI's tests: `mnode` runs, a daemon started on 127.0.0.1 ports and stopped
//! (SIGTERM) when dropped, and waiting.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

pub mod http;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

pub const WAIT: Duration = Duration::from_secs(60);

pub fn mnode(repo: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mnode"))
        .arg("--repo")
        .arg(repo)
        .args(args)
        .env("MNODE_PASSPHRASE", "a test passphrase")
        .output()
        .unwrap()
}

pub fn json(repo: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let o = mnode(repo, &all);
    assert!(
        o.status.success(),
        "mnode {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// A running daemon; killed (SIGTERM, then waited for) when dropped.
pub struct Daemon {
    pub child: Child,
    pub repo: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        mnode_bench_support::terminate(&mut self.child);
    }
}

pub fn start(dir: &Path, name: &str) -> Daemon {
    let repo = init(dir, name);
    run(&repo)
}

/// A repo made for daemons on 127.0.0.1 ports (no daemon started).
pub fn init(dir: &Path, name: &str) -> PathBuf {
    init_with(dir, name, &[])
}

/// Starts a daemon on a repo made by [`init`] and waits until it is ready.
pub fn run(repo: &Path) -> Daemon {
    let repo = repo.to_owned();
    let child = Command::new(env!("CARGO_BIN_EXE_mnode"))
        .arg("--repo")
        .arg(&repo)
        .arg("daemon")
        .env("MNODE_PASSPHRASE", "a test passphrase")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let d = Daemon { child, repo };
    wait_until("the daemon to be ready", || {
        d.repo.join("daemon.json").exists()
    });
    d
}

pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A repo like [`init`]'s with `settings` (`key=value`, as `init -c` takes them) applied after
/// its own, so that they win.
pub fn init_with(dir: &Path, name: &str, settings: &[&str]) -> PathBuf {
    let repo = dir.join(name);
    let mut args = vec![
        "init",
        "-c",
        r#"network.listen=["/ip4/127.0.0.1/tcp/0"]"#,
        "-c",
        "network.blobs_listen=127.0.0.1:0",
        "-c",
        "network.gossip_heartbeat_ms=100",
        "-c",
        "api.listen=127.0.0.1:0",
    ];
    for s in settings {
        args.extend(["-c", s]);
    }
    let o = mnode(&repo, &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    repo
}

/// Starts a daemon that should refuse to start and returns how it ended. Panics if it becomes
/// ready instead (it is stopped first) or does not end within [`WAIT`].
pub fn run_refused(repo: &Path) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mnode"))
        .arg("--repo")
        .arg(repo)
        .arg("daemon")
        .env("MNODE_PASSPHRASE", "a test passphrase")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if repo.join("daemon.json").exists() || start.elapsed() > WAIT {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let o = child.wait_with_output().unwrap();
            panic!(
                "the daemon on {} started instead of refusing to: {}",
                repo.display(),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts a daemon on `repo` with its stderr appended to `log`, and waits until it is ready:
/// until `daemon.json` names this process (a daemon killed with SIGKILL leaves its own behind).
/// Panics, with the log, if the daemon exits instead.
pub fn run_logged(repo: &Path, log: &Path) -> Daemon {
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_mnode"))
        .arg("--repo")
        .arg(repo)
        .arg("daemon")
        .env("MNODE_PASSPHRASE", "a test passphrase")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut d = Daemon {
        child,
        repo: repo.to_owned(),
    };
    let pid = u64::from(d.child.id());
    wait_until("the daemon to be ready", || {
        if let Some(status) = d.child.try_wait().unwrap() {
            panic!(
                "the daemon on {} exited ({status}) before it was ready:\n{}",
                repo.display(),
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::fs::read(repo.join("daemon.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .is_some_and(|v| v["pid"].as_u64() == Some(pid))
    });
    d
}

/// Kills a daemon with SIGKILL and reaps it; returns how it ended. Unlike dropping it, this
/// sends no signal after the process is gone (its pid may be another process's by then).
pub fn kill9(mut d: Daemon) -> ExitStatus {
    // It may have exited by itself already; `wait` says how.
    let _ = d.child.kill();
    let status = d.child.wait().unwrap();
    // The child holds no pipes: forgetting it leaks nothing but memory.
    std::mem::forget(d);
    status
}

/// The shell block between `<!-- {marker} -->` and `<!-- /{marker} -->` in the README.
pub fn readme_block(marker: &str) -> String {
    let readme = include_str!("../../../README.md");
    let start = readme.find(&format!("<!-- {marker} -->")).unwrap();
    let end = readme.find(&format!("<!-- /{marker} -->")).unwrap();
    let block = &readme[start..end];
    let code = block.split("```sh\n").nth(1).unwrap();
    code.split("```").next().unwrap().to_owned()
}

#[allow(unused_imports, reason = "not every test file checks for tools")]
pub use mnode_bench_support::have_tools;

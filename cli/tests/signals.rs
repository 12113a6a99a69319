//! Stopping a daemon: it says what it waits for, a second signal stops it at once, the grace
//! period is bounded, and nothing half-written stays. Also the daemon's `--json` events, `mnode
//! config show|get` with `-c`, and `account … --json`.

#![cfg(unix)]
#![allow(clippy::unwrap_used)]

mod support;

use std::{
    io::{BufRead as _, BufReader, Read, Write as _},
    net::{Shutdown, TcpStream},
    path::{Path, PathBuf},
    process::{ChildStdout, Command, ExitStatus, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;
use support::{Daemon, WAIT, json, mnode, wait_until};

/// How long a daemon told to stop at once may take.
const AT_ONCE: Duration = Duration::from_secs(2);

/// A daemon whose output the test reads, line by line.
struct Watched {
    daemon: Daemon,
    stderr: Lines,
    stdout: Option<Lines>,
}

/// The lines a child writes to a pipe, as they come.
struct Lines {
    rx: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Lines {
    fn new(pipe: impl Read + Send + 'static) -> Self {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { rx, seen: vec![] }
    }

    /// Waits for a line that `f` accepts and returns it.
    fn wait_for(&mut self, what: &str, f: impl Fn(&str) -> bool) -> String {
        if let Some(l) = self.seen.iter().find(|l| f(l)) {
            return l.clone();
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if f(&line) {
                        return line;
                    }
                }
                Err(_) => panic!("no line {what}; got:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// Every line, once the child has closed the pipe.
    fn rest(&mut self) -> &[String] {
        while let Ok(line) = self.rx.recv_timeout(WAIT) {
            self.seen.push(line);
        }
        &self.seen
    }
}

/// Starts `mnode [flags] daemon` on `repo` with its output piped, and waits until it is ready.
fn watched(repo: &Path, flags: &[&str]) -> Watched {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mnode"))
        .arg("--repo")
        .arg(repo)
        .args(flags)
        .arg("daemon")
        .env("MNODE_PASSPHRASE", "a test passphrase")
        .env_remove("MNODE_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = Lines::new(child.stderr.take().unwrap());
    let stdout: ChildStdout = child.stdout.take().unwrap();
    let daemon = Daemon {
        child,
        repo: repo.to_owned(),
    };
    wait_until("the daemon to be ready", || {
        daemon.repo.join("daemon.json").exists()
    });
    Watched {
        daemon,
        stderr,
        stdout: Some(Lines::new(stdout)),
    }
}

impl Watched {
    fn pid(&self) -> u32 {
        self.daemon.child.id()
    }

    fn signal(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits up to `limit` for the daemon to exit.
    fn exit_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.daemon.child.try_wait().unwrap() {
                return Some(status);
            }
            if start.elapsed() > limit {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn stdout(&mut self) -> &mut Lines {
        self.stdout.as_mut().unwrap()
    }
}

/// The daemon's API address (`host:port`) and admin token.
fn api(repo: &Path) -> (String, String) {
    let info: Value =
        serde_json::from_slice(&std::fs::read(repo.join("daemon.json")).unwrap()).unwrap();
    let url = info["api"].as_str().unwrap();
    let addr = url.strip_prefix("http://").unwrap().to_owned();
    let token = std::fs::read_to_string(repo.join("api.token")).unwrap();
    (addr, token.trim().to_owned())
}

/// An upload that never ends: `PUT /api/v1/files` with a chunked body sent slowly from a thread
/// until dropped (or until the daemon closes the connection).
struct SlowUpload {
    stop: Arc<AtomicBool>,
    stream: TcpStream,
    sender: Option<thread::JoinHandle<()>>,
}

impl SlowUpload {
    fn start(repo: &Path) -> Self {
        let (addr, token) = api(repo);
        let mut stream = TcpStream::connect(&addr).unwrap();
        write!(
            stream,
            "PUT /api/v1/files?name=slow.bin HTTP/1.1\r\nHost: {addr}\r\n\
             Authorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\n\
             Transfer-Encoding: chunked\r\n\r\n"
        )
        .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let sender = {
            let stop = stop.clone();
            let mut stream = stream.try_clone().unwrap();
            thread::spawn(move || {
                let chunk = vec![b'x'; 4096];
                while !stop.load(Ordering::SeqCst) {
                    let sent = write!(stream, "{:x}\r\n", chunk.len())
                        .and_then(|()| stream.write_all(&chunk))
                        .and_then(|()| stream.write_all(b"\r\n"));
                    if sent.is_err() {
                        break;
                    }
                    thread::sleep(Duration::from_millis(50));
                }
            })
        };
        Self {
            stop,
            stream,
            sender: Some(sender),
        }
    }
}

impl Drop for SlowUpload {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.stream.shutdown(Shutdown::Both);
        if let Some(t) = self.sender.take() {
            let _ = t.join();
        }
    }
}

/// The upload files in the repo's temp dir.
fn temp_uploads(repo: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(repo.join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("upload-"))
        .collect()
}

/// The repo a stopped daemon left is whole: no temp upload, `repo verify` passes, and the cut
/// upload became no file.
fn assert_clean(repo: &Path) {
    assert_eq!(
        temp_uploads(repo),
        Vec::<PathBuf>::new(),
        "temp uploads left"
    );
    let report = json(repo, &["repo", "verify"]);
    assert_eq!(report["ok"], true, "{report}");
    let files = json(repo, &["record", "list", "core.file"]);
    assert!(
        !files.to_string().contains("slow.bin"),
        "the cut upload was stored: {files}"
    );
}

#[test]
fn a_second_signal_stops_the_daemon_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let repo = support::init(dir.path(), "node");
    // A grace period longer than the test: only the second signal can end the wait.
    let mut d = watched(&repo, &["-c", "api.shutdown_grace_secs=600"]);
    let upload = SlowUpload::start(&repo);
    wait_until("the upload to start", || !temp_uploads(&repo).is_empty());

    d.signal();
    let said = d.stderr.wait_for("saying what the daemon waits for", |l| {
        l.contains("waiting for 1 upload")
    });
    assert!(said.contains("Ctrl-C again"), "{said}");
    assert!(
        d.exit_within(Duration::from_millis(500)).is_none(),
        "the daemon did not wait for the upload"
    );

    d.signal();
    let start = Instant::now();
    let status = d
        .exit_within(AT_ONCE)
        .unwrap_or_else(|| panic!("still running {AT_ONCE:?} after the second signal"));
    assert!(status.success(), "{status}");
    eprintln!("stopped {:?} after the second signal", start.elapsed());
    let stderr = d.stderr.rest().join("\n");
    assert!(
        stderr.contains("stopping now: cutting off 1 upload"),
        "{stderr}"
    );
    drop(upload);
    assert_clean(&repo);
}

#[test]
fn one_signal_waits_no_longer_than_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let repo = support::init(dir.path(), "node");
    let grace = Duration::from_secs(2);
    let mut d = watched(&repo, &["-c", "api.shutdown_grace_secs=2"]);
    let upload = SlowUpload::start(&repo);
    wait_until("the upload to start", || !temp_uploads(&repo).is_empty());

    let start = Instant::now();
    d.signal();
    let status = d
        .exit_within(grace + AT_ONCE)
        .unwrap_or_else(|| panic!("still running {:?} after the signal", grace + AT_ONCE));
    assert!(status.success(), "{status}");
    assert!(
        start.elapsed() >= grace,
        "the upload was not given its time"
    );
    let stderr = d.stderr.rest().join("\n");
    assert!(
        stderr.contains("1 upload still running after 2 s, cut off"),
        "{stderr}"
    );
    drop(upload);
    assert_clean(&repo);
}

#[test]
fn a_finished_upload_is_kept_through_a_stop() {
    let dir = tempfile::tempdir().unwrap();
    let repo = support::init(dir.path(), "node");
    let mut d = watched(&repo, &[]);
    let src = dir.path().join("song.txt");
    std::fs::write(&src, "la la la\n".repeat(20_000)).unwrap();
    json(&repo, &["add", src.to_str().unwrap()]);
    d.signal();
    let status = d.exit_within(AT_ONCE).unwrap();
    assert!(status.success(), "{status}");
    let stderr = d.stderr.rest().join("\n");
    assert!(stderr.lines().any(|l| l == "stopping"), "{stderr}");
    assert!(stderr.lines().any(|l| l == "stopped"), "{stderr}");
    assert_eq!(json(&repo, &["repo", "verify"])["ok"], true);
    let files = json(&repo, &["record", "list", "core.file"]);
    assert!(files.to_string().contains("song.txt"), "{files}");
}

#[test]
fn daemon_json_prints_one_json_line_per_event() {
    let dir = tempfile::tempdir().unwrap();
    let a_repo = support::init(dir.path(), "a");
    let mut a = watched(&a_repo, &["--json"]);
    let started = a
        .stdout()
        .wait_for("started", |l| l.contains("\"started\""));
    let started: Value = serde_json::from_str(&started).unwrap();
    assert_eq!(started["event"], "started");
    let addr = started["addrs"][0].as_str().unwrap().to_owned();
    assert!(
        started["api"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    assert!(started["peer_id"].is_string(), "{started}");

    let b = support::start(dir.path(), "b");
    let o = mnode(&b.repo, &["connect", &addr]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    a.stdout()
        .wait_for("peer_connected", |l| l.contains("\"peer_connected\""));

    a.signal();
    assert!(a.exit_within(WAIT).unwrap().success());
    let lines = a.stdout().rest().to_vec();
    let events: Vec<String> = lines
        .iter()
        .map(|l| {
            let v: Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"));
            v["event"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(events.first().map(String::as_str), Some("started"));
    assert!(events.iter().any(|e| e == "stopping"), "{events:?}");
    assert_eq!(events.last().map(String::as_str), Some("stopped"));
    assert_eq!(
        events.iter().filter(|e| *e == "started").count(),
        1,
        "{events:?}"
    );

    let stderr = a.stderr.rest().join("\n");
    assert!(
        !stderr.contains('\x1b'),
        "colours in a log that is no terminal:\n{stderr}"
    );
    assert!(
        !stderr.contains("daemon ready"),
        "the start told twice:\n{stderr}"
    );
}

#[test]
fn config_show_and_get_apply_c_and_a_bad_key_names_c() {
    let dir = tempfile::tempdir().unwrap();
    let repo = support::init(dir.path(), "node");
    let o = mnode(&repo, &["-c", "store.cache_mb=77", "config", "show"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.lines().any(|l| l == "store:"), "{text}");
    assert!(text.lines().any(|l| l == "  cache_mb: 77"), "{text}");
    assert!(text.contains("  listen: \"127.0.0.1:0\""), "{text}");

    let shown = json(&repo, &["-c", "store.cache_mb=77", "config", "show"]);
    assert_eq!(shown["store"]["cache_mb"], 77);
    assert_eq!(shown["api"]["listen"], "127.0.0.1:0");
    let o = mnode(
        &repo,
        &["-c", "store.cache_mb=77", "config", "get", "store.cache_mb"],
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "77\n");
    let o = mnode(&repo, &["config", "get", "api.listen"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "127.0.0.1:0\n");

    for args in [
        &["-c", "store.cahce_mb=1", "config", "show"][..],
        &["-c", "store.cahce_mb=1", "id"][..],
    ] {
        let o = mnode(&repo, args);
        assert!(!o.status.success());
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains("-c store.cahce_mb=1"), "{e}");
        assert!(e.contains("`mnode config show`"), "{e}");
    }
    let o = mnode(&repo, &["config", "get", "store.nope"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("\"store.nope\" is not a setting"));
}

#[test]
fn account_verbs_print_json_with_and_without_a_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let repo = support::init(dir.path(), "node");
    let secret = dir.path().join("pw");
    std::fs::write(&secret, "a long walk by the river\n").unwrap();
    let pw = secret.to_str().unwrap();
    let offline = json(
        &repo,
        &["account", "passwd", "owner", "--password-file", pw],
    );
    assert_eq!(offline["handle"], "owner");
    assert_eq!(offline["password_set"], true);

    let key = dir.path().join("owner.key");
    let exported = json(
        &repo,
        &[
            "account",
            "export-key",
            "owner",
            "-o",
            key.to_str().unwrap(),
            "--passphrase-file",
            pw,
        ],
    );
    assert_eq!(exported["handle"], "owner");
    assert!(exported["did"].as_str().unwrap().starts_with("did:key:"));

    let _d = support::run(&repo);
    let online = json(
        &repo,
        &["account", "passwd", "owner", "--password-file", pw],
    );
    assert_eq!(online, offline);
}

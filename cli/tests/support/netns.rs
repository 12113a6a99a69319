//! Simulated networks on real kernels: network namespaces joined by veth links, a shared
//! "internet" (a bridge in a namespace of its own, on 203.0.113.0/24, TEST-NET-3), public hosts
//! on it, and home routers that NAT a LAN (192.168.N.0/24) with iptables. Everything a
//! [`Net`] makes is named after its process and removed when it is dropped.
//!
//! Needs root and `ip`/`iptables` (`.ci/run` installs them); [`Net::available`] says whether
//! the tests can run.

use std::{
    path::Path,
    process::{Child, Command, Output, Stdio},
    sync::atomic::{AtomicUsize, Ordering},
};

use super::{Daemon, WAIT};

/// How a router maps its LAN's connections onto its WAN address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nat {
    /// Endpoint-independent: a LAN socket keeps its port on the WAN side for every peer (what
    /// most home routers do), so hole punching works.
    Cone,
    /// A new random WAN port for every destination: hole punching cannot work.
    Symmetric,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A simulated network; its namespaces go when it is dropped.
pub struct Net {
    prefix: String,
    namespaces: Vec<String>,
    next_lan: u8,
}

/// Runs `ip` or another tool and panics, with its stderr, if it fails.
fn run(program: &str, args: &[&str]) -> Output {
    let o = Command::new(program).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

impl Net {
    /// Whether this process can make namespaces (root, `ip` and `iptables` present). Outside
    /// CI a missing piece skips the test with a message; in CI (`CI` set) it fails it.
    pub fn available() -> bool {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if !root {
            assert!(
                std::env::var_os("CI").is_none(),
                "the namespace tests need root; .ci/run runs them as root"
            );
            eprintln!("SKIPPED: the namespace tests need root");
            return false;
        }
        super::have_tools(&["ip", "iptables"])
    }

    /// An empty network: the internet bridge only.
    pub fn new() -> Self {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let mut net = Self {
            prefix: format!("mn{}x{n}", std::process::id()),
            namespaces: Vec::new(),
            next_lan: 1,
        };
        let inet = net.namespace("inet");
        run("ip", &["-n", &inet, "link", "add", "br0", "type", "bridge"]);
        run("ip", &["-n", &inet, "link", "set", "br0", "up"]);
        net
    }

    /// Makes a namespace with its loopback up; its full name.
    fn namespace(&mut self, name: &str) -> String {
        let full = format!("{}{name}", self.prefix);
        run("ip", &["netns", "add", &full]);
        self.namespaces.push(full.clone());
        run("ip", &["-n", &full, "link", "set", "lo", "up"]);
        full
    }

    /// Links namespace `ns` to the internet bridge as `eth0` with `ip` (in 203.0.113.0/24).
    fn plug(&self, ns: &str, ip: &str) {
        let inet = format!("{}inet", self.prefix);
        let port = format!("p{}", self.namespaces.len());
        run(
            "ip",
            &[
                "-n", &inet, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                ns,
            ],
        );
        run(
            "ip",
            &["-n", &inet, "link", "set", &port, "master", "br0", "up"],
        );
        run(
            "ip",
            &["-n", ns, "addr", "add", &format!("{ip}/24"), "dev", "eth0"],
        );
        run("ip", &["-n", ns, "link", "set", "eth0", "up"]);
    }

    /// A host on the internet with the public address `ip` (203.0.113.x); its namespace.
    pub fn public(&mut self, name: &str, ip: &str) -> String {
        let ns = self.namespace(name);
        self.plug(&ns, ip);
        ns
    }

    /// A home: a router on the internet at `wan_ip` that NATs its LAN as `nat` says, and one
    /// host on that LAN; the host's namespace and LAN address.
    pub fn home(&mut self, name: &str, wan_ip: &str, nat: Nat) -> (String, String) {
        let router = self.namespace(&format!("{name}r"));
        self.plug(&router, wan_ip);
        let host = self.namespace(name);
        let lan = self.next_lan;
        self.next_lan += 1;
        let (gw, ip) = (format!("192.168.{lan}.1"), format!("192.168.{lan}.2"));
        run(
            "ip",
            &[
                "-n", &router, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0",
                "netns", &host,
            ],
        );
        run(
            "ip",
            &[
                "-n",
                &router,
                "addr",
                "add",
                &format!("{gw}/24"),
                "dev",
                "lan0",
            ],
        );
        run("ip", &["-n", &router, "link", "set", "lan0", "up"]);
        run(
            "ip",
            &[
                "-n",
                &host,
                "addr",
                "add",
                &format!("{ip}/24"),
                "dev",
                "eth0",
            ],
        );
        run("ip", &["-n", &host, "link", "set", "eth0", "up"]);
        run("ip", &["-n", &host, "route", "add", "default", "via", &gw]);
        let sh = |cmd: &str| run("ip", &["netns", "exec", &router, "sh", "-ec", cmd]);
        sh("sysctl -qw net.ipv4.ip_forward=1");
        let masquerade = match nat {
            Nat::Cone => "MASQUERADE",
            Nat::Symmetric => "MASQUERADE --random-fully",
        };
        sh(&format!(
            "iptables -t nat -A POSTROUTING -o eth0 -j {masquerade}\n\
             # Like a home router: from the internet, only answers come in.\n\
             iptables -A FORWARD -i eth0 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n\
             iptables -A FORWARD -i eth0 -j DROP\n\
             iptables -A INPUT -i eth0 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n\
             iptables -A INPUT -i eth0 -j DROP"
        ));
        (host, ip)
    }

    /// Cuts a namespace off the internet (its link to the bridge goes down).
    pub fn unplug(&self, ns: &str) {
        run("ip", &["-n", ns, "link", "set", "eth0", "down"]);
    }

    /// Runs a shell command in `ns`; its output, checked.
    pub fn sh(&self, ns: &str, cmd: &str) -> Output {
        run("ip", &["netns", "exec", ns, "sh", "-ec", cmd])
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            // Processes still in it keep it alive; its links go with it.
            let _ = Command::new("ip")
                .args(["netns", "pids", ns])
                .output()
                .map(|o| {
                    for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                        let _ = Command::new("kill").args(["-KILL", pid]).status();
                    }
                });
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

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

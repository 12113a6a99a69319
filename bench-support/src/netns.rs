//! Simulated networks on real kernels: network namespaces joined by veth links, a shared
//! "internet" (a bridge in a namespace of its own, on 203.0.113.0/24, TEST-NET-3), public hosts
//! on it, and home routers that NAT a LAN (192.168.N.0/24) with iptables. Everything a
//! [`Net`] makes is named after its process and removed when it is dropped.
//!
//! Needs root and `ip`/`iptables` (`.ci/run` installs them); [`Net::available`] says whether
//! the tests can run.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use serde_json::Value;

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

/// A home router made by [`Net::router`].
#[derive(Debug, Clone)]
pub struct Router {
    /// Its namespace.
    pub ns: String,
    lan: u8,
}

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
    #[allow(clippy::new_without_default)]
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
        let router = self.router(&format!("{name}r"), wan_ip, nat);
        self.behind(&router, name)
    }

    /// A home router on the internet at `wan_ip` that NATs its LAN (a bridge, 192.168.N.0/24)
    /// as `nat` says; hosts join it with [`Net::behind`].
    pub fn router(&mut self, name: &str, wan_ip: &str, nat: Nat) -> Router {
        let ns = self.namespace(name);
        self.plug(&ns, wan_ip);
        let lan = self.next_lan;
        self.next_lan += 1;
        let gw = format!("192.168.{lan}.1");
        run("ip", &["-n", &ns, "link", "add", "lan0", "type", "bridge"]);
        run(
            "ip",
            &["-n", &ns, "addr", "add", &format!("{gw}/24"), "dev", "lan0"],
        );
        run("ip", &["-n", &ns, "link", "set", "lan0", "up"]);
        let masquerade = match nat {
            Nat::Cone => "MASQUERADE",
            Nat::Symmetric => "MASQUERADE --random-fully",
        };
        self.sh(
            &ns,
            &format!(
                "sysctl -qw net.ipv4.ip_forward=1\n\
                 iptables -t nat -A POSTROUTING -o eth0 -j {masquerade}\n\
                 # Like a home router: from the internet, only answers come in. Dropped, not\n\
                 # refused: a refusal would leave a conntrack entry that changes the port the\n\
                 # LAN's next packet to that peer goes out on.\n\
                 iptables -A FORWARD -i eth0 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n\
                 iptables -A FORWARD -i eth0 -j DROP\n\
                 iptables -A INPUT -i eth0 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n\
                 iptables -A INPUT -i eth0 -j DROP"
            ),
        );
        Router { ns, lan }
    }

    /// A host on `router`'s LAN; its namespace and address.
    pub fn behind(&mut self, router: &Router, name: &str) -> (String, String) {
        let host = self.namespace(name);
        let n = self.namespaces.len();
        let ip = format!("192.168.{}.{}", router.lan, 2 + n % 250);
        let port = format!("h{n}");
        run(
            "ip",
            &[
                "-n", &router.ns, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                "netns", &host,
            ],
        );
        run(
            "ip",
            &[
                "-n", &router.ns, "link", "set", &port, "master", "lan0", "up",
            ],
        );
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
        let gw = format!("192.168.{}.1", router.lan);
        run("ip", &["-n", &host, "route", "add", "default", "via", &gw]);
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

/// An `mnode daemon` in a namespace, driven with the `mnode` CLI run in the same namespace (as
/// a person at that host would); stopped (SIGTERM, waited for) when dropped.
pub struct Daemon {
    /// Its namespace.
    pub ns: String,
    /// Its repo.
    pub repo: PathBuf,
    mnode: PathBuf,
    child: Child,
}

/// The passphrase of every repo a [`Daemon`] makes.
const PASSPHRASE: &str = "a test passphrase";

impl Daemon {
    /// Makes the repo `dir/name` with `mnode` (libp2p on TCP and QUIC port 4001 and files on
    /// UDP 4002 of every address, the API on loopback, `settings` after, as `-c` takes them)
    /// and starts its daemon in `ns`, its log in `daemon.log` in the repo; returns once it is
    /// ready.
    pub fn start(mnode: &Path, dir: &Path, ns: &str, name: &str, settings: &[String]) -> Self {
        let repo = dir.join(name);
        let _ = std::fs::remove_dir_all(&repo);
        let mut init = Command::new(mnode);
        init.arg("--repo").arg(&repo).arg("init");
        let own = [
            r#"network.listen=["/ip4/0.0.0.0/tcp/4001","/ip4/0.0.0.0/udp/4001/quic-v1"]"#,
            "network.blobs_listen=0.0.0.0:4002",
            "network.gossip_heartbeat_ms=100",
            "api.listen=127.0.0.1:0",
            "log.level=info,mnode_node=debug",
        ];
        for s in own
            .iter()
            .map(|s| (*s).to_owned())
            .chain(settings.iter().cloned())
        {
            init.arg("-c").arg(s);
        }
        let out = init.env("MNODE_PASSPHRASE", PASSPHRASE).output().unwrap();
        assert!(
            out.status.success(),
            "mnode init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let log = std::fs::File::create(repo.join("daemon.log")).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(mnode)
            .arg("--repo")
            .arg(&repo)
            .arg("daemon")
            .env("MNODE_PASSPHRASE", PASSPHRASE)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut d = Self {
            ns: ns.to_owned(),
            repo,
            mnode: mnode.to_owned(),
            child,
        };
        // `ip netns exec` execs the daemon: its pid is the child's.
        let pid = u64::from(d.child.id());
        let start = Instant::now();
        loop {
            if let Some(status) = d.child.try_wait().unwrap() {
                panic!("the daemon in {ns} exited ({status}):\n{}", d.log());
            }
            let ready = std::fs::read(d.repo.join("daemon.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .is_some_and(|v| v["pid"].as_u64() == Some(pid));
            if ready {
                return d;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the daemon in {ns} did not start:\n{}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `mnode --json ARGS` on this daemon's repo, in its namespace: its answer, or what it
    /// said on failure.
    pub fn cli(&self, args: &[&str]) -> Result<Value, String> {
        self.cli_within(Duration::from_secs(600), args)
    }

    /// [`Daemon::cli`], killed (and a failure) if it has not answered within `limit`.
    pub fn cli_within(&self, limit: Duration, args: &[&str]) -> Result<Value, String> {
        let out = Command::new("timeout")
            .arg(limit.as_secs().max(1).to_string())
            .args(["ip", "netns", "exec", &self.ns])
            .arg(&self.mnode)
            .arg("--repo")
            .arg(&self.repo)
            .arg("--json")
            .args(args)
            .env("MNODE_PASSPHRASE", PASSPHRASE)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.code() == Some(124) {
            return Err(format!(
                "mnode {args:?} in {} gave no answer within {limit:?}",
                self.ns
            ));
        }
        if !out.status.success() {
            return Err(format!(
                "mnode {args:?} in {}: {}{}",
                self.ns,
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            ));
        }
        serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
    }

    /// [`Daemon::cli`], which must succeed.
    pub fn json(&self, args: &[&str]) -> Value {
        self.cli(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Its peer id.
    pub fn peer_id(&self) -> String {
        self.json(&["id"])["peer_id"].as_str().unwrap().to_owned()
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.repo.join("daemon.log")).unwrap_or_default()
    }

    /// The bytes of file transfers it received so far: straight from peers, and relayed.
    pub fn received(&self) -> (u64, u64) {
        let blobs = &self.json(&["id"])["blobs"];
        (
            blobs["received_direct"].as_u64().unwrap(),
            blobs["received_relayed"].as_u64().unwrap(),
        )
    }

    /// Its address through a relay (`…/p2p-circuit/p2p/<peer id>`), once it holds a slot
    /// there (waits up to a minute).
    pub fn relayed_addr(&self) -> String {
        let start = Instant::now();
        loop {
            let id = self.json(&["id"]);
            let found = id["nat"]["external_addrs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .find(|a| a.contains("/p2p-circuit/"))
                .map(str::to_owned);
            if let Some(a) = found {
                return a;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{} got no slot on a relay:\n{}",
                self.ns,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The `peers` entry of `peer`, if connected.
    pub fn peer(&self, peer: &str) -> Option<Value> {
        self.json(&["peers"])["peers"]
            .as_array()?
            .iter()
            .find(|p| p["peer_id"] == peer)
            .cloned()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        super::terminate(&mut self.child);
    }
}

/// Polls `f` every 100 ms until it holds or `limit` passes; how long it took.
pub fn within(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

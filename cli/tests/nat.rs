//! Nodes behind home routers, on simulated networks (network namespaces, veth links,
//! iptables NAT; see `mnode_bench_support::netns`): they reach each other through a relay
//! another node runs, punch a hole to a direct connection, gossip and share files across it;
//! the DHT finds a file several hops away. Root only (`.ci/run` runs them as root).

#![allow(clippy::unwrap_used)]

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use mnode_bench_support::netns::{Daemon, Nat, Net, within};

const MNODE: &str = env!("CARGO_BIN_EXE_mnode");
/// The relay's public address.
const RELAY_IP: &str = "203.0.113.10";

fn start(dir: &Path, ns: &str, name: &str, settings: &[String]) -> Daemon {
    Daemon::start(Path::new(MNODE), dir, ns, name, settings)
}

/// A relay on the internet and two homes behind their own routers (`nat_b` for the second),
/// each home node with a slot on the relay.
struct World {
    relay: Daemon,
    a: Daemon,
    b: Daemon,
    /// The peer id of B.
    b_id: String,
    /// Last: its namespaces go after the daemons in them have stopped.
    net: Net,
}

impl World {
    fn new(dir: &Path, nat_b: Nat, relay_settings: &[String]) -> Self {
        let mut net = Net::new();
        let relay_ns = net.public("relay", RELAY_IP);
        let (a_ns, _) = net.home("a", "203.0.113.21", Nat::Cone);
        let (b_ns, _) = net.home("b", "203.0.113.22", nat_b);
        let mut settings = vec![
            "network.relay_server=true".to_owned(),
            format!(
                r#"network.external_addresses=["/ip4/{RELAY_IP}/tcp/4001","/ip4/{RELAY_IP}/udp/4001/quic-v1"]"#
            ),
            format!("network.relay_limits.iroh_listen={RELAY_IP}:3340"),
        ];
        settings.extend_from_slice(relay_settings);
        let relay = start(dir, &relay_ns, "relay", &settings);
        let home = [
            format!(
                r#"network.relays=["/ip4/{RELAY_IP}/tcp/4001/p2p/{}"]"#,
                relay.peer_id()
            ),
            format!(r#"network.relay_urls=["http://{RELAY_IP}:3340"]"#),
        ];
        let a = start(dir, &a_ns, "a", &home);
        let b = start(dir, &b_ns, "b", &home);
        let b_id = b.peer_id();
        Self {
            relay,
            a,
            b,
            b_id,
            net,
        }
    }

    /// The daemons' logs, for a failure's message.
    fn logs(&self) -> String {
        [("relay", &self.relay), ("A", &self.a), ("B", &self.b)]
            .iter()
            .map(|(name, d)| format!("--- {name}'s log:\n{}", d.log()))
            .collect()
    }

    /// A dials B by its relayed address (what B's Node page shows).
    fn a_dials_b(&self) {
        let c = self.a.json(&["connect", &self.b.relayed_addr()]);
        assert_eq!(c["peer_id"], self.b_id.as_str());
    }

    /// Waits until A's connection to B is direct; panics with the logs if it does not become
    /// so within 30 s.
    fn until_direct(&self) {
        let direct = within(Duration::from_secs(30), || {
            self.a
                .peer(&self.b_id)
                .is_some_and(|p| p["relayed"] == false)
        });
        assert!(
            direct.is_some(),
            "the connection did not become direct:\n{}",
            self.logs()
        );
    }

    /// Hole punches of A and B together: (made, failed).
    fn punches(&self) -> (u64, u64) {
        let of = |d: &Daemon, key: &str| d.json(&["id"])["nat"][key].as_u64().unwrap();
        (
            of(&self.a, "hole_punches") + of(&self.b, "hole_punches"),
            of(&self.a, "hole_punches_failed") + of(&self.b, "hole_punches_failed"),
        )
    }
}

/// A file of `mib` MiB in `dir`, added on `d`; its path and CID.
fn add_file(dir: &Path, d: &Daemon, mib: usize) -> (PathBuf, String) {
    let path = dir.join(format!("release-{mib}.bin"));
    let data: Vec<u8> = (0..mib * (1 << 20)).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let cid = d.json(&["add", path.to_str().unwrap()])[0]["cid"]
        .as_str()
        .unwrap()
        .to_owned();
    (path, cid)
}

/// Fetches `cid` on `d` and writes it out; checks the bytes against `original`. The seconds
/// the fetch took, and the bytes it received direct and relayed.
fn fetch_checked(dir: &Path, d: &Daemon, cid: &str, original: &Path) -> (f64, u64, u64) {
    let before = d.received();
    let start = Instant::now();
    let fetched = d.json(&["fetch", cid]);
    let took = start.elapsed().as_secs_f64();
    let after = d.received();
    let size = std::fs::metadata(original).unwrap().len();
    assert_eq!(fetched["size"], size, "{fetched}");
    let out = dir.join(format!("copy-{cid}"));
    d.json(&["get", cid, "-o", out.to_str().unwrap()]);
    assert!(
        std::fs::read(&out).unwrap() == std::fs::read(original).unwrap(),
        "the file arrived changed"
    );
    (took, after.0 - before.0, after.1 - before.1)
}

/// Waits until `d` holds the post `id`.
fn until_post(d: &Daemon, id: &str) {
    let arrived = within(Duration::from_secs(60), || {
        d.json(&["record", "list", "social.post"])["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"] == id)
    });
    assert!(
        arrived.is_some(),
        "the post {id} did not arrive:\n{}",
        d.log()
    );
}

/// `from` posts `text`; its id.
fn post(from: &Daemon, text: &str) -> String {
    from.json(&["post", text])["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn owner(d: &Daemon) -> String {
    d.json(&["id"])["owner_did"].as_str().unwrap().to_owned()
}

#[test]
fn two_homes_meet_through_a_relay_punch_a_hole_and_gossip_both_ways() {
    if !Net::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let w = World::new(dir.path(), Nat::Cone, &[]);

    // Neither home can be dialled from outside; AutoNAT finds that out.
    let private = within(Duration::from_secs(30), || {
        w.a.json(&["id"])["nat"]["status"] == "private"
    });
    assert!(
        private.is_some(),
        "A did not learn it is behind a router:\n{}",
        w.logs()
    );

    // A reaches B by its relayed address, then the hole punch makes it direct.
    w.a_dials_b();
    w.until_direct();
    assert!(w.punches().0 >= 1);
    // The relayed connection closes once the direct one has carried on for a while.
    let closed = within(Duration::from_secs(30), || {
        w.a.peer(&w.b_id).is_some_and(|p| {
            p["addrs"]
                .as_array()
                .unwrap()
                .iter()
                .all(|a| !a.as_str().unwrap().contains("p2p-circuit"))
        })
    });
    assert!(
        closed.is_some(),
        "the relayed connection stayed:\n{}",
        w.logs()
    );

    // Posts gossip both ways over the direct connection.
    w.a.json(&["follow", &owner(&w.b)]);
    w.b.json(&["follow", &owner(&w.a)]);
    until_post(&w.b, &post(&w.a, "hello from A's home"));
    until_post(&w.a, &post(&w.b, "and from B's"));

    // A release file moves from A's home to B's, verified, straight through the punched hole
    // (iroh punches its own, with the addresses the relay saw).
    let (path, cid) = add_file(dir.path(), &w.a, 64);
    let (took, direct, relayed) = fetch_checked(dir.path(), &w.b, &cid, &path);
    eprintln!(
        "64 MiB between two homes: {took:.2} s, {} MiB direct, {} MiB through the relay",
        direct >> 20,
        relayed >> 20
    );
    assert!(
        direct > 48 << 20,
        "most bytes came direct ({direct} direct, {relayed} relayed):\n{}",
        w.logs()
    );
}

#[test]
fn behind_a_symmetric_nat_everything_goes_through_the_relay_within_its_limits() {
    if !Net::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // B's router gives every destination a new port: no hole can be punched to it. The relay
    // lets a node send 4 MiB/s and keeps a relayed libp2p connection 45 s.
    let rate = 4u64 << 20;
    let w = World::new(
        dir.path(),
        Nat::Symmetric,
        &[
            format!("network.relay_limits.iroh_bytes_per_sec={rate}"),
            "network.relay_limits.max_circuit_secs=45".to_owned(),
        ],
    );
    w.a_dials_b();

    // Gossip works over the relayed connection.
    w.a.json(&["follow", &owner(&w.b)]);
    until_post(&w.a, &post(&w.b, "from behind a strict router"));

    // A file from B's home reaches A through the relay, at no more than the relay allows.
    let (path, cid) = add_file(dir.path(), &w.b, 16);
    let (took, direct, relayed) = fetch_checked(dir.path(), &w.a, &cid, &path);
    eprintln!(
        "16 MiB through the relay: {took:.2} s, {} KiB direct, {} KiB relayed",
        direct >> 10,
        relayed >> 10
    );
    assert!(
        relayed >= 16 << 20,
        "it came through the relay: {relayed} bytes"
    );
    // The first second's worth may come at once; the rest at the relay's rate.
    let least = (16.0 * f64::from(1 << 20) - rate as f64) / rate as f64;
    assert!(
        took >= least * 0.9,
        "the relay's rate limit held: {took:.2} s for 16 MiB at {rate} B/s"
    );

    // DCUtR gives up after three tries; the connection stays relayed.
    let failed = within(Duration::from_secs(40), || w.punches().1 > 0);
    assert!(failed.is_some(), "no hole punch was tried:\n{}", w.logs());
    let entry =
        w.a.peer(&w.b_id)
            .unwrap_or_else(|| panic!("A lost B after the failed punch:\n{}", w.logs()));
    assert_eq!(entry["relayed"], true, "{entry}");

    // The relay ends the relayed libp2p connection when its time is up.
    let closed = within(Duration::from_secs(45), || w.a.peer(&w.b_id).is_none());
    assert!(
        closed.is_some(),
        "the relay kept the circuit past its limit:\n{}",
        w.logs()
    );
}

#[test]
fn a_transfer_on_a_punched_connection_outlives_the_relay() {
    if !Net::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let w = World::new(dir.path(), Nat::Cone, &[]);
    w.a_dials_b();
    w.until_direct();
    // The file endpoint has its direct path too once a first small file moved.
    let (small, small_cid) = add_file(dir.path(), &w.b, 1);
    fetch_checked(dir.path(), &w.a, &small_cid, &small);

    let (path, cid) = add_file(dir.path(), &w.b, 256);
    let fetch = std::thread::scope(|s| {
        // The fetch gives up on its own after 30 s without a byte; 120 s is a hang.
        let fetch = s.spawn(|| {
            let fetched = w.a.cli_within(Duration::from_secs(120), &["fetch", &cid]);
            (fetched, Instant::now())
        });
        // The relay's host drops off the internet while the bytes flow.
        std::thread::sleep(Duration::from_millis(300));
        w.net.unplug(&w.relay.ns);
        let unplugged = Instant::now();
        let (fetched, done) = fetch.join().unwrap();
        let fetched =
            fetched.unwrap_or_else(|e| panic!("{e}\n--- a:\n{}\n--- b:\n{}", w.a.log(), w.b.log()));
        assert!(
            done > unplugged,
            "the fetch ended before the relay went: use a bigger file"
        );
        fetched
    });
    assert_eq!(fetch["size"], 256u64 << 20, "{fetch}");
    let out = dir.path().join("after-the-relay.bin");
    w.a.json(&["get", &cid, "-o", out.to_str().unwrap()]);
    assert!(std::fs::read(&out).unwrap() == std::fs::read(&path).unwrap());
}

#[test]
fn the_dht_finds_a_file_five_hops_away() {
    if !Net::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut net = Net::new();
    // Six nodes in a line, each told only of the one before it.
    let mut nodes: Vec<Daemon> = Vec::new();
    for i in 0..6 {
        let ns = net.public(&format!("n{i}"), &format!("203.0.113.{}", 31 + i));
        let mut settings = vec![];
        if let Some(prev) = nodes.last() {
            settings.push(format!(
                r#"network.bootstrap=["/ip4/203.0.113.{}/tcp/4001/p2p/{}"]"#,
                30 + i,
                prev.peer_id()
            ));
        }
        nodes.push(start(dir.path(), &ns, &format!("n{i}"), &settings));
    }
    let file = dir.path().join("stems.bin");
    let data: Vec<u8> = (0..5_000_000u32).map(|i| (i * 13 % 251) as u8).collect();
    std::fs::write(&file, &data).unwrap();
    let (first, last) = (&nodes[0], &nodes[5]);
    let cid = first.json(&["add", file.to_str().unwrap()])[0]["cid"]
        .as_str()
        .unwrap()
        .to_owned();

    // The last node was told of its neighbour only, which does not hold the file: it finds
    // the first node through the DHT and fetches from it.
    let mut fetched = serde_json::Value::Null;
    let found = within(Duration::from_secs(60), || {
        match last.cli(&["fetch", &cid]) {
            Ok(v) => {
                fetched = v;
                true
            }
            Err(_) => false,
        }
    });
    let logs: String = nodes
        .iter()
        .map(|d| format!("--- {}:\n{}", d.ns, d.log()))
        .collect();
    assert!(
        found.is_some(),
        "the last node did not find the file:\n{logs}"
    );
    assert_eq!(fetched["transferred"], data.len() as u64, "{fetched}");
    assert_eq!(fetched["from"][0]["peer_id"], first.peer_id(), "{fetched}");
    let out = dir.path().join("copy.bin");
    last.json(&["get", &cid, "-o", out.to_str().unwrap()]);
    assert_eq!(std::fs::read(&out).unwrap(), data);
}

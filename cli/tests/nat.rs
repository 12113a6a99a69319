//! Nodes behind home routers, on simulated networks (network namespaces, veth links,
//! iptables NAT; see `support::netns`): they reach each other through a relay another node
//! runs, punch a hole to a direct connection, gossip and share files across it; the DHT finds
//! a file several hops away. Root only (`.ci/run` runs them as root).

#![allow(clippy::unwrap_used)]

mod support;

use std::{path::Path, time::Duration};

use serde_json::Value;
use support::{
    netns::{Nat, Net, init_in, json_in, run_in},
    wait_until,
};

/// The relay's public address.
const RELAY_IP: &str = "203.0.113.10";

/// `peers` of the node in `ns`: the entry for `peer`, if connected.
fn peer_entry(ns: &str, repo: &Path, peer: &str) -> Option<Value> {
    json_in(ns, repo, &["peers"])["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["peer_id"] == peer)
        .cloned()
}

/// Waits up to `limit` for `f`, polling every 200 ms; whether it came true.
fn within(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// A relay on the internet and two homes behind their own routers (`nat_b` for the second),
/// each home node with a slot on the relay. Returns the network, the daemons (relay, A, B),
/// their namespaces and peer ids.
struct World {
    relay: support::Daemon,
    a: support::Daemon,
    b: support::Daemon,
    ns: [String; 3],
    ids: [String; 3],
    /// Last: its namespaces go after the daemons in them have stopped.
    net: Net,
}

fn world(dir: &Path, nat_b: Nat, relay_settings: &[String]) -> World {
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
    let relay_repo = init_in(dir, "relay", 4001, &settings);
    let relay = run_in(&relay_ns, &relay_repo);
    let relay_id = json_in(&relay_ns, &relay.repo, &["id"])["peer_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let home = [
        format!(r#"network.relays=["/ip4/{RELAY_IP}/tcp/4001/p2p/{relay_id}"]"#),
        format!(r#"network.relay_urls=["http://{RELAY_IP}:3340"]"#),
    ];
    let a = run_in(&a_ns, &init_in(dir, "a", 4001, &home));
    let b = run_in(&b_ns, &init_in(dir, "b", 4001, &home));
    let id = |ns: &str, d: &support::Daemon| {
        json_in(ns, &d.repo, &["id"])["peer_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let ids = [relay_id, id(&a_ns, &a), id(&b_ns, &b)];
    World {
        relay,
        a,
        b,
        ns: [relay_ns, a_ns, b_ns],
        ids,
        net,
    }
}

impl World {
    /// The daemons' logs, for a failure's message.
    fn logs(&self) -> String {
        [("relay", &self.relay), ("A", &self.a), ("B", &self.b)]
            .iter()
            .map(|(name, d)| {
                let log = std::fs::read_to_string(d.repo.join("daemon.log")).unwrap_or_default();
                format!("--- {name}'s log:\n{log}")
            })
            .collect()
    }
}

/// The relayed address of the home node `i` (1 or 2), once it has its slot: what its Node
/// page and `mnode id` show.
fn relayed_addr(w: &World, i: usize) -> String {
    let d = if i == 1 { &w.a } else { &w.b };
    let mut found = None;
    wait_until("a slot on the relay", || {
        let id = json_in(&w.ns[i], &d.repo, &["id"]);
        found = id["nat"]["external_addrs"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .find(|a| a.contains("/p2p-circuit/"))
            .map(str::to_owned);
        found.is_some()
    });
    found.unwrap()
}

/// A file of `mib` MiB in `dir`, added on the node in `ns`; its path and CID.
fn add_file(dir: &Path, ns: &str, d: &support::Daemon, mib: usize) -> (std::path::PathBuf, String) {
    let path = dir.join(format!("release-{mib}.bin"));
    let data: Vec<u8> = (0..mib * (1 << 20)).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let cid = json_in(ns, &d.repo, &["add", path.to_str().unwrap()])[0]["cid"]
        .as_str()
        .unwrap()
        .to_owned();
    (path, cid)
}

/// File-transfer bytes the node in `ns` received so far: straight from peers, and relayed.
fn received(ns: &str, d: &support::Daemon) -> (u64, u64) {
    let blobs = &json_in(ns, &d.repo, &["id"])["blobs"];
    (
        blobs["received_direct"].as_u64().unwrap(),
        blobs["received_relayed"].as_u64().unwrap(),
    )
}

/// Fetches `cid` on the node in `ns` and writes it out; checks the bytes against `original`.
/// The seconds the fetch took, and the bytes it received direct and relayed.
fn fetch_checked(
    dir: &Path,
    ns: &str,
    d: &support::Daemon,
    cid: &str,
    original: &Path,
) -> (f64, u64, u64) {
    let before = received(ns, d);
    let start = std::time::Instant::now();
    let fetched = json_in(ns, &d.repo, &["fetch", cid]);
    let took = start.elapsed().as_secs_f64();
    let after = received(ns, d);
    let size = std::fs::metadata(original).unwrap().len();
    assert_eq!(fetched["size"], size, "{fetched}");
    let out = dir.join(format!("copy-{cid}"));
    json_in(ns, &d.repo, &["get", cid, "-o", out.to_str().unwrap()]);
    assert!(
        std::fs::read(&out).unwrap() == std::fs::read(original).unwrap(),
        "the file arrived changed"
    );
    (took, after.0 - before.0, after.1 - before.1)
}

#[test]
fn two_homes_meet_through_a_relay_punch_a_hole_and_gossip_both_ways() {
    if !Net::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path(), Nat::Cone, &[]);
    let (a_ns, b_ns) = (&w.ns[1], &w.ns[2]);

    // Neither home can be dialled from outside; AutoNAT finds that out.
    let b_addr = relayed_addr(&w, 2);
    let private = within(Duration::from_secs(30), || {
        json_in(a_ns, &w.a.repo, &["id"])["nat"]["status"] == "private"
    });
    assert!(
        private,
        "A did not learn it is behind a router:\n{}",
        w.logs()
    );

    // A reaches B by its relayed address, then the hole punch makes it direct.
    let c = json_in(a_ns, &w.a.repo, &["connect", &b_addr]);
    assert_eq!(c["peer_id"], w.ids[2].as_str());
    let direct = within(Duration::from_secs(30), || {
        peer_entry(a_ns, &w.a.repo, &w.ids[2]).is_some_and(|p| p["relayed"] == false)
    });
    assert!(
        direct,
        "the connection did not become direct:\n{}",
        w.logs()
    );
    let punched = |ns: &str, d: &support::Daemon| {
        json_in(ns, &d.repo, &["id"])["nat"]["hole_punches"]
            .as_u64()
            .unwrap()
    };
    assert!(punched(a_ns, &w.a) + punched(b_ns, &w.b) >= 1);
    // The relayed connection closes once the direct one has carried on for a while.
    wait_until("the relayed connection to close", || {
        peer_entry(a_ns, &w.a.repo, &w.ids[2]).is_some_and(|p| {
            p["addrs"]
                .as_array()
                .unwrap()
                .iter()
                .all(|a| !a.as_str().unwrap().contains("p2p-circuit"))
        })
    });

    // Posts gossip both ways over the direct connection.
    let did = |ns: &str, d: &support::Daemon| {
        json_in(ns, &d.repo, &["id"])["owner_did"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    json_in(a_ns, &w.a.repo, &["follow", &did(b_ns, &w.b)]);
    json_in(b_ns, &w.b.repo, &["follow", &did(a_ns, &w.a)]);
    for (from_ns, from, to_ns, to, text) in [
        (a_ns, &w.a, b_ns, &w.b, "hello from A's home"),
        (b_ns, &w.b, a_ns, &w.a, "and from B's"),
    ] {
        let id = json_in(from_ns, &from.repo, &["post", text])["id"]
            .as_str()
            .unwrap()
            .to_owned();
        wait_until("the post across the routers", || {
            json_in(to_ns, &to.repo, &["record", "list", "social.post"])["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["id"] == id.as_str())
        });
    }

    // A release file moves from A's home to B's, verified, straight through the punched hole
    // (iroh punches its own, with the addresses the relay saw).
    let (path, cid) = add_file(dir.path(), a_ns, &w.a, 64);
    let (took, direct, relayed) = fetch_checked(dir.path(), b_ns, &w.b, &cid, &path);
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
fn the_dht_finds_a_file_five_hops_away() {
    if !Net::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut net = Net::new();
    // Six nodes in a line, each told only of the one before it.
    let mut nodes: Vec<(String, support::Daemon)> = Vec::new();
    for i in 0..6 {
        let ip = format!("203.0.113.{}", 31 + i);
        let ns = net.public(&format!("n{i}"), &ip);
        let mut settings = vec![];
        if let Some((prev_ns, prev)) = nodes.last() {
            let id = json_in(prev_ns, &prev.repo, &["id"])["peer_id"]
                .as_str()
                .unwrap()
                .to_owned();
            let prev_ip = format!("203.0.113.{}", 30 + i);
            settings.push(format!(
                r#"network.bootstrap=["/ip4/{prev_ip}/tcp/4001/p2p/{id}"]"#
            ));
        }
        let d = run_in(&ns, &init_in(dir.path(), &format!("n{i}"), 4001, &settings));
        nodes.push((ns, d));
    }
    let file = dir.path().join("stems.bin");
    let data: Vec<u8> = (0..5_000_000u32).map(|i| (i * 13 % 251) as u8).collect();
    std::fs::write(&file, &data).unwrap();
    let (first_ns, first) = &nodes[0];
    let cid = json_in(first_ns, &first.repo, &["add", file.to_str().unwrap()])[0]["cid"]
        .as_str()
        .unwrap()
        .to_owned();

    // The last node was told of its neighbour only, which does not hold the file: it finds
    // the first node through the DHT and fetches from it.
    let (last_ns, last) = &nodes[5];
    let first_id = json_in(first_ns, &first.repo, &["id"])["peer_id"].clone();
    let mut fetched = Value::Null;
    let found = within(Duration::from_secs(60), || {
        let o = support::netns::mnode_in(last_ns, &last.repo, &["--json", "fetch", &cid]);
        if o.status.success() {
            fetched = serde_json::from_slice(&o.stdout).unwrap();
        }
        o.status.success()
    });
    let logs: String = nodes
        .iter()
        .map(|(ns, d)| {
            format!(
                "--- {ns}:\n{}",
                std::fs::read_to_string(d.repo.join("daemon.log")).unwrap_or_default()
            )
        })
        .collect();
    assert!(found, "the last node did not find the file:\n{logs}");
    assert_eq!(fetched["transferred"], data.len() as u64, "{fetched}");
    assert_eq!(fetched["from"][0]["peer_id"], first_id, "{fetched}");
    let out = dir.path().join("copy.bin");
    json_in(
        last_ns,
        &last.repo,
        &["get", &cid, "-o", out.to_str().unwrap()],
    );
    assert_eq!(std::fs::read(&out).unwrap(), data);
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
    let w = world(
        dir.path(),
        Nat::Symmetric,
        &[
            format!("network.relay_limits.iroh_bytes_per_sec={rate}"),
            "network.relay_limits.max_circuit_secs=45".to_owned(),
        ],
    );
    let (a_ns, b_ns) = (&w.ns[1], &w.ns[2]);
    let b_addr = relayed_addr(&w, 2);
    json_in(a_ns, &w.a.repo, &["connect", &b_addr]);

    // Gossip works over the relayed connection.
    let did_b = json_in(b_ns, &w.b.repo, &["id"])["owner_did"]
        .as_str()
        .unwrap()
        .to_owned();
    json_in(a_ns, &w.a.repo, &["follow", &did_b]);
    let id = json_in(b_ns, &w.b.repo, &["post", "from behind a strict router"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_until("the post through the relay", || {
        json_in(a_ns, &w.a.repo, &["record", "list", "social.post"])["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"] == id.as_str())
    });

    // A file from B's home reaches A through the relay, at no more than the relay allows.
    let (path, cid) = add_file(dir.path(), b_ns, &w.b, 16);
    let (took, direct, relayed) = fetch_checked(dir.path(), a_ns, &w.a, &cid, &path);
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
    let failed = within(Duration::from_secs(40), || {
        let f = |ns: &str, d: &support::Daemon| {
            json_in(ns, &d.repo, &["id"])["nat"]["hole_punches_failed"]
                .as_u64()
                .unwrap()
        };
        f(a_ns, &w.a) + f(b_ns, &w.b) > 0
    });
    assert!(failed, "no hole punch was tried:\n{}", w.logs());
    let entry = peer_entry(a_ns, &w.a.repo, &w.ids[2])
        .unwrap_or_else(|| panic!("A lost B after the failed punch:\n{}", w.logs()));
    assert_eq!(entry["relayed"], true, "{entry}");

    // The relay ends the relayed libp2p connection when its time is up.
    let closed = within(Duration::from_secs(45), || {
        peer_entry(a_ns, &w.a.repo, &w.ids[2]).is_none()
    });
    assert!(
        closed,
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
    let w = world(dir.path(), Nat::Cone, &[]);
    let (a_ns, b_ns) = (&w.ns[1], &w.ns[2]);
    let b_addr = relayed_addr(&w, 2);
    json_in(a_ns, &w.a.repo, &["connect", &b_addr]);
    let direct = within(Duration::from_secs(30), || {
        peer_entry(a_ns, &w.a.repo, &w.ids[2]).is_some_and(|p| p["relayed"] == false)
    });
    assert!(
        direct,
        "the connection did not become direct:\n{}",
        w.logs()
    );
    // The file endpoint has its direct path too once a first small file moved.
    let (small, small_cid) = add_file(dir.path(), b_ns, &w.b, 1);
    fetch_checked(dir.path(), a_ns, &w.a, &small_cid, &small);

    let (path, cid) = add_file(dir.path(), b_ns, &w.b, 256);
    let fetch = {
        let (ns, repo) = (a_ns.clone(), w.a.repo.clone());
        let cid = cid.clone();
        std::thread::spawn(move || {
            let v = json_in(&ns, &repo, &["fetch", &cid]);
            (v, std::time::Instant::now())
        })
    };
    // The relay's host drops off the internet while the bytes flow.
    std::thread::sleep(Duration::from_millis(300));
    w.net.unplug(&w.ns[0]);
    let unplugged = std::time::Instant::now();
    let (fetched, done) = fetch.join().unwrap();
    assert!(
        done > unplugged,
        "the fetch ended before the relay went: use a bigger file"
    );
    assert_eq!(fetched["size"], 256u64 << 20, "{fetched}");
    let out = dir.path().join("after-the-relay.bin");
    json_in(a_ns, &w.a.repo, &["get", &cid, "-o", out.to_str().unwrap()]);
    assert!(std::fs::read(&out).unwrap() == std::fs::read(&path).unwrap());
}

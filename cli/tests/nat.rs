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
    _net: Net,
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
        _net: net,
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

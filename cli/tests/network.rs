//! The network as a daemon's user meets it: ports another daemon holds, peers remembered
//! across restarts, where the file endpoint binds. Every node listens on 127.0.0.1 only.

#![allow(clippy::unwrap_used)]

mod support;

use std::{
    collections::HashSet,
    net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket},
    path::Path,
};

use serde_json::Value;
use support::{init, init_with, json, mnode, run, run_refused, wait_until};

/// A TCP port and a UDP port free on 127.0.0.1 a moment ago.
fn free_ports() -> (u16, u16) {
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    (
        tcp.local_addr().unwrap().port(),
        udp.local_addr().unwrap().port(),
    )
}

#[test]
fn a_daemon_refuses_a_listen_port_another_daemon_holds() {
    let dir = tempfile::tempdir().unwrap();
    let (tcp, udp) = free_ports();
    let tcp_addr = format!("/ip4/127.0.0.1/tcp/{tcp}");
    let quic_addr = format!("/ip4/127.0.0.1/udp/{udp}/quic-v1");
    let a = run(&init_with(
        dir.path(),
        "a",
        &[&format!(r#"network.listen=["{tcp_addr}","{quic_addr}"]"#)],
    ));
    let id_a = json(&a.repo, &["id"]);

    for (name, taken) in [("b", &tcp_addr), ("c", &quic_addr)] {
        let repo = init_with(
            dir.path(),
            name,
            &[&format!(r#"network.listen=["{taken}"]"#)],
        );
        let o = run_refused(&repo);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{name}: {err}");
        assert!(
            err.contains(taken.as_str()),
            "{name} names the address: {err}"
        );
        assert!(err.contains("in use"), "{name} says why: {err}");
    }

    // The first daemon kept its port: a dial to it reaches it.
    let d = run(&init(dir.path(), "d"));
    let addr = id_a["addrs"][0].as_str().unwrap();
    assert!(addr.contains(&tcp_addr), "{addr}");
    let c = json(&d.repo, &["connect", addr]);
    assert_eq!(c["peer_id"], id_a["peer_id"]);
}

fn peer_ids(v: &Value, list: &str) -> Vec<String> {
    v[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["peer_id"].as_str().unwrap().to_owned())
        .collect()
}

fn connected(repo: &Path, peer: &str) -> bool {
    peer_ids(&json(repo, &["peers"]), "peers")
        .iter()
        .any(|p| p == peer)
}

fn remembered(repo: &Path, peer: &str) -> bool {
    peer_ids(&json(repo, &["peers"]), "remembered")
        .iter()
        .any(|p| p == peer)
}

#[test]
fn two_nodes_reconnect_after_either_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let (repo_a, repo_b) = (init(dir.path(), "a"), init(dir.path(), "b"));
    let mut a = run(&repo_a);
    let b = run(&repo_b);
    let id_a = json(&repo_a, &["id"]);
    let id_b = json(&repo_b, &["id"]);
    let (pa, pb) = (
        id_a["peer_id"].as_str().unwrap().to_owned(),
        id_b["peer_id"].as_str().unwrap().to_owned(),
    );
    json(&repo_b, &["connect", id_a["addrs"][0].as_str().unwrap()]);
    wait_until("A to remember B", || remembered(&repo_a, &pb));
    wait_until("B to remember A", || remembered(&repo_b, &pa));

    // A stops: B lists it as remembered, not connected.
    drop(a);
    wait_until("B to see A leave", || !connected(&repo_b, &pa));
    let peers = json(&repo_b, &["peers"]);
    let entry = peers["remembered"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["peer_id"] == pa.as_str())
        .unwrap()
        .clone();
    assert_eq!(entry["connected"], false, "{peers}");
    let text = String::from_utf8_lossy(&mnode(&repo_b, &["peers"]).stdout).into_owned();
    assert!(text.contains("no peers connected"), "{text}");
    assert!(text.contains("remembered, not connected"), "{text}");
    assert!(text.contains(&pa), "{text}");

    // A comes back on a new port (port 0) and dials B, which it reached before, by itself.
    a = run(&repo_a);
    wait_until("A and B connected again", || {
        connected(&repo_a, &pb) && connected(&repo_b, &pa)
    });
    let text = String::from_utf8_lossy(&mnode(&repo_a, &["peers"]).stdout).into_owned();
    assert!(text.contains("connected:") && text.contains(&pb), "{text}");

    // B restarts: it dials A on the address A announced since its restart, once B has heard
    // it (identify runs just after the connection; a loaded machine can take a moment).
    let listen_a: Vec<String> = json(&repo_a, &["id"])["addrs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            a.as_str()
                .unwrap()
                .split("/p2p/")
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    wait_until("B to remember where A listens now", || {
        json(&repo_b, &["peers"])["remembered"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["peer_id"] == pa.as_str())
            .flat_map(|p| p["addrs"].as_array().cloned().unwrap_or_default())
            .any(|addr| {
                listen_a
                    .iter()
                    .any(|l| addr.as_str().unwrap().starts_with(l.as_str()))
            })
    });
    drop(b);
    let _b = run(&repo_b);
    wait_until("B and A connected again", || {
        connected(&repo_b, &pa) && connected(&repo_a, &pb)
    });
    drop(a);
}

/// The local addresses of a process's UDP sockets, from `/proc`.
#[cfg(target_os = "linux")]
fn udp_sockets(pid: u32) -> Vec<SocketAddr> {
    let inodes: HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let mut out = Vec::new();
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 10 || !inodes.contains(cols[9]) {
                continue;
            }
            let (ip, port) = cols[1].split_once(':').unwrap();
            let port = u16::from_str_radix(port, 16).unwrap();
            let ip: std::net::IpAddr = if ip.len() == 8 {
                // The kernel prints the address as a native-endian u32.
                Ipv4Addr::from(u32::from_be(u32::from_str_radix(ip, 16).unwrap())).into()
            } else {
                let mut bytes = [0u8; 16];
                for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                    let word = u32::from_str_radix(&ip[i * 8..i * 8 + 8], 16).unwrap();
                    chunk.copy_from_slice(&u32::from_be(word).to_be_bytes());
                }
                std::net::Ipv6Addr::from(bytes).into()
            };
            out.push(SocketAddr::new(ip, port));
        }
    }
    out
}

#[cfg(target_os = "linux")]
#[test]
fn the_file_endpoint_binds_where_the_node_listens() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("a");
    // As a person would set it: network.listen only, network.blobs_listen left as it comes.
    let o = mnode(
        &repo,
        &[
            "init",
            "-c",
            r#"network.listen=["/ip4/127.0.0.1/tcp/0","/ip4/127.0.0.1/udp/0/quic-v1"]"#,
            "-c",
            "api.listen=127.0.0.1:0",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let d = run(&repo);
    let id = json(&repo, &["id"]);
    let blob_ports: Vec<u16> = id["blobs"]["addrs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().parse::<SocketAddr>().unwrap().port())
        .collect();
    assert!(!blob_ports.is_empty(), "{id}");
    let sockets = udp_sockets(d.child.id());
    for port in &blob_ports {
        assert!(
            sockets.iter().any(|s| s.port() == *port),
            "the file endpoint's port {port} is among the daemon's UDP sockets {sockets:?}"
        );
    }
    for s in &sockets {
        assert_eq!(
            s.ip(),
            std::net::IpAddr::from(Ipv4Addr::LOCALHOST),
            "every UDP socket of a node told to listen on 127.0.0.1 is on 127.0.0.1: {sockets:?}"
        );
    }
}

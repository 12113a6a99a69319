//! Every scenario at its small size (what CI runs), and the testnet's own faults.
//!
//! These run in debug builds on a shared 2-core machine, where signature checks alone take
//! milliseconds: they check what must hold at any speed (every post delivered, nothing lost,
//! the fork kept, every file verified, the hostile peer cut off). The latency targets are
//! measured by the release-build runs in BENCHMARKS.md.

use std::{collections::HashSet, time::Duration};

use mnode_node::node::Via;
use mnode_testnet::{
    Report, Testnet, Topology,
    report::Target,
    scenario::{
        ProcessArgs, all_delivered, catch_up::CatchUp, churn::Churn, discussion::Discussion,
        hostile_peer::Hostile, partition_heal::PartitionHeal, post, propagation::Propagation,
        release_spread::ReleaseSpread, settle,
    },
};

const WAIT: Duration = Duration::from_secs(60);

fn target<'a>(r: &'a Report, prefix: &str) -> &'a Target {
    r.targets
        .iter()
        .find(|t| t.name.starts_with(prefix))
        .unwrap_or_else(|| panic!("{}: no target {prefix:?}: {:#?}", r.scenario, r.targets))
}

fn assert_met(r: &Report, prefix: &str) {
    let t = target(r, prefix);
    assert!(
        t.met,
        "{}: {} not met ({}):\n{}",
        r.scenario,
        t.name,
        t.value,
        r.summary()
    );
}

fn figure(r: &Report, name: &str) -> f64 {
    *r.figures
        .get(name)
        .unwrap_or_else(|| panic!("{}: no figure {name:?}", r.scenario))
}

/// Writes the report and checks the files: JSON that reads back, and SVG plots.
fn check_written(r: &Report) {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = r.write(dir.path()).expect("write the report");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&files[0]).expect("read report.json"))
            .expect("report.json is JSON");
    assert_eq!(json["scenario"], r.scenario.as_str());
    assert_eq!(json["nodes"], r.nodes);
    for f in &files[1..] {
        let svg = std::fs::read_to_string(f).expect("read a plot");
        assert!(svg.starts_with("<svg"), "{} is not SVG", f.display());
        assert!(
            svg.contains("<polyline") || svg.contains("<rect"),
            "{} is empty",
            f.display()
        );
    }
    assert!(
        files.iter().any(|f| f.ends_with("bytes_per_node.svg")),
        "{files:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_follow_the_topology_through_partition_heal_and_restart() {
    let mut net = Testnet::builder()
        .nodes(6)
        .seed(3)
        .topology(Topology::Ring)
        .spawn()
        .await
        .expect("spawn");
    async fn linked(net: &Testnet, i: usize) -> HashSet<usize> {
        let peers: HashSet<String> = net
            .node(i)
            .peers()
            .await
            .expect("peers")
            .into_iter()
            .map(|p| p.peer_id)
            .collect();
        (0..net.len())
            .filter(|&j| peers.contains(&net.peer_id(j).to_string()))
            .collect()
    }
    // Settle: identify and the DHT have had time to try links outside the ring.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for i in 0..6 {
        let want: HashSet<usize> = [(i + 5) % 6, (i + 1) % 6].into();
        assert_eq!(linked(&net, i).await, want, "node {i}");
    }

    net.partition(&[0, 1, 2]).await.expect("partition");
    for i in 0..6 {
        let side = i < 3;
        assert!(
            linked(&net, i).await.iter().all(|&j| (j < 3) == side),
            "node {i} still reaches across the cut"
        );
    }
    net.heal().await.expect("heal");
    assert_eq!(linked(&net, 0).await, [5, 1].into());
    assert_eq!(linked(&net, 3).await, [2, 4].into());

    let id = net.peer_id(4);
    net.stop(4).await.expect("stop");
    assert!(!net.is_running(4));
    net.start(4).await.expect("start");
    assert_eq!(net.node(4).peer_id(), id, "the key survives a restart");
    assert_eq!(linked(&net, 4).await, [3, 5].into());
    net.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn propagation_small() {
    let r = mnode_testnet::scenario::propagation::run(&Propagation::small(5))
        .await
        .expect("run");
    assert_met(&r, "delivery ratio = 1");
    let l = r.latency_ms.expect("latencies");
    assert_eq!(l.count as f64, figure(&r, "deliveries expected"));
    assert!(l.p50 > 0.0 && l.p50 <= l.p99 && l.p99 <= l.max, "{l:?}");
    assert!(r.bytes.iter().all(|b| b.p2p_sent > 0), "{:?}", r.bytes);
    assert!(r.memory.per_node_bytes > 0);
    check_written(&r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_small() {
    let r = mnode_testnet::scenario::catch_up::run(&CatchUp::small(5))
        .await
        .expect("run");
    assert_met(&r, "every missed post held");
    assert_eq!(figure(&r, "posts caught up"), 1000.0);
    assert!(
        figure(&r, "catch-up record bytes received") >= figure(&r, "bytes of the missed records")
    );
    check_written(&r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_spread_small() {
    let r = mnode_testnet::scenario::release_spread::run(&ReleaseSpread::small(5))
        .await
        .expect("run");
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_met(&r, "every node holds every file");
    // In a 5-node random graph of degree 3 some node is not linked to the publisher.
    assert_met(&r, "publisher served < all");
    assert_eq!(
        figure(&r, "bytes fetched in all"),
        4.0 * figure(&r, "release bytes")
    );
    check_written(&r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_heal_small() {
    let r = mnode_testnet::scenario::partition_heal::run(&PartitionHeal::small(6))
        .await
        .expect("run");
    assert!(r.problems.is_empty(), "{:?}\n{}", r.problems, r.summary());
    assert_met(&r, "no record lost");
    assert_met(&r, "the fork is kept");
    assert!(
        figure(&r, "record copies missing when the cut healed") > 0.0,
        "the sides were not apart"
    );
    assert!(figure(&r, "seconds from heal to equal heads").is_finite());
    check_written(&r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_small() {
    let r = mnode_testnet::scenario::churn::run(&Churn::small(6))
        .await
        .expect("run");
    assert_met(&r, "delivery ratio = 1");
    assert!(figure(&r, "restarts") >= 2.0, "{}", r.summary());
    // A node stopped cleanly reports every record it stored before its events end.
    assert_eq!(
        figure(&r, "deliveries found in a repo at restart, unreported"),
        0.0,
        "{}",
        r.summary()
    );
    check_written(&r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_small_with_daemon_processes_killed() {
    let mut p = Churn::small(5);
    p.procs = ProcessArgs::daemons(None);
    let r = mnode_testnet::scenario::churn::run(&p).await.expect("run");
    assert_met(&r, "delivery ratio = 1");
    let kills = figure(&r, "restarts by kill -9");
    assert!(kills >= 2.0, "{}", r.summary());
    assert_eq!(kills, figure(&r, "restarts"));
    assert!(r.memory.per_node_bytes > 1 << 20, "{:?}", r.memory);
    check_written(&r);
}

/// A daemon killed with SIGKILL (it leaves its `daemon.json` behind) starts again on its repo
/// and catches up on what was posted while it was dead; the others never notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_daemon_restarts_and_catches_up() {
    let mnode = ProcessArgs::daemons(None)
        .binary()
        .expect("the mnode binary")
        .expect("a path");
    let mut net = Testnet::builder()
        .nodes(3)
        .seed(11)
        .topology(Topology::Line)
        .processes(mnode)
        .spawn()
        .await
        .expect("spawn");
    assert!(net.is_processes());
    let author = net.author(0);
    let feed = mnode_protocols::GossipTopic::Author(*author.did());
    net.follow(feed, 0..3).await.expect("follow");
    net.wait_subscribed(&[feed], settle(&net))
        .await
        .expect("subscribed");
    let before: Vec<_> = (0..5).map(|k| post(&author, k, None, None)).collect();
    net.publish(0, before.clone()).await.expect("publish");
    let cids: Vec<_> = before.iter().map(|r| r.cid()).collect();
    assert!(
        net.wait_until(WAIT, |l| all_delivered(l, &cids, &[1, 2]))
            .await,
        "the first posts did not reach everyone"
    );

    let pid_file = net.dir().join("node-2").join("daemon.json");
    net.kill(2).await.expect("kill -9");
    assert!(!net.is_running(2));
    assert!(pid_file.exists(), "SIGKILL leaves daemon.json behind");
    let away: Vec<_> = (5..25).map(|k| post(&author, k, None, None)).collect();
    net.publish(0, away.clone())
        .await
        .expect("publish while 2 is dead");
    let away_cids: Vec<_> = away.iter().map(|r| r.cid()).collect();
    assert!(
        net.wait_until(WAIT, |l| all_delivered(l, &away_cids, &[1]))
            .await,
        "node 1 missed posts"
    );

    net.start(2).await.expect("restart after kill -9");
    assert!(net.is_running(2));
    assert!(
        net.wait_until(WAIT, |l| all_delivered(l, &away_cids, &[2]))
            .await,
        "the restarted daemon did not catch up"
    );
    {
        let l = net.ledger();
        let by_sync = away_cids
            .iter()
            .filter(|c| matches!(l.stored[*c].get(&2), Some((_, Via::Sync))))
            .count();
        assert!(by_sync > 0, "nothing came back by catch-up");
    }
    assert!(net.traffic(2).await.expect("traffic").received > 0);
    assert!(net.node_rss_bytes(2).expect("rss") > 1 << 20);
    assert!(net.kill(1).await.is_ok());
    net.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_peer_small() {
    let r = mnode_testnet::scenario::hostile_peer::run(&Hostile::small(6))
        .await
        .expect("run");
    assert_met(&r, "attack started");
    assert_met(&r, "delivery ratio = 1, both phases");
    assert_met(&r, "every victim it reached scored it down and cut it off");
    assert!(figure(&r, "lowest score a victim gave it") < -80.0);
    check_written(&r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discussion_small() {
    let r = mnode_testnet::scenario::discussion::run(&Discussion::small(7))
        .await
        .expect("run");
    assert!(r.problems.is_empty(), "{:?}\n{}", r.problems, r.summary());
    // Following the forum's topic alone: each follower follows its branch, never an author.
    assert_met(&r, "every follower follows the branch by itself");
    assert_eq!(figure(&r, "nodes following the forum"), 6.0);
    assert_eq!(figure(&r, "of them, following an author"), 0.0);
    assert_eq!(figure(&r, "lone node follows (topics)"), 1.0);
    // Every reply reaches every follower, and the node of the author it answers.
    assert_met(&r, "delivery ratio = 1");
    assert_eq!(figure(&r, "replies"), 48.0);
    assert_eq!(figure(&r, "deliveries expected"), 48.0 * 5.0);
    assert_met(&r, "every reply held by the node of the author it answers");
    assert_met(&r, "each author ≤ 60 replies a minute");
    // The hides reach every follower and are in force there.
    assert_met(&r, "every hide stored by every follower");
    assert_met(&r, "every hide in force on the checked nodes");
    assert!(figure(&r, "hides in force on the checked nodes") >= 4.0 * 3.0);
    assert!(figure(&r, "hide applied everywhere p99 ms") > 0.0);
    // A reply from a linked node reaches an author whose node follows only its own feed.
    assert_met(
        &r,
        "a reply from a linked node reaches a non-follower author",
    );
    let l = r.latency_ms.expect("latencies");
    assert_eq!(l.count as f64, figure(&r, "deliveries expected"));
    check_written(&r);
}

/// Homes behind NAT routers meet through a relay and punch holes (network namespaces; root
/// only, as in CI).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nat_small() {
    if !mnode_bench_support::netns::Net::available() {
        return;
    }
    let p = mnode_testnet::scenario::nat::Nat::small();
    let r = mnode_testnet::scenario::nat::run(&p).await.expect("run");
    assert!(r.problems.is_empty(), "{}", r.summary());
    assert_met(&r, "home-to-home connections behind cone NATs");
    assert_eq!(figure(&r, "pairs_direct"), figure(&r, "pairs"));
    assert!(figure(&r, "file_bytes_direct") > 0.0, "{}", r.summary());
    check_written(&r);
}

//! Real nodes on 127.0.0.1: gossip, catch-up and file sharing.
//!
//! Each node has its own temp repo and listens on port 0; authors' keys are derived from
//! seeds. Tests wait on node events with timeouts, never on fixed sleeps.

mod support;

use std::time::Duration;

use bytes::Bytes;
use mnode_dag::{
    Cid, Keypair, Link, Record, TitleData,
    model::{
        art::{Release, ReleaseKind},
        core::{File, FileKind},
        social::{ForkPoint, Post, Thread},
    },
};
use mnode_node::node::{FetchProgress, ManyProgress, NodeEvent};
use mnode_protocols::GossipTopic;
use support::{TestNode, spawn};
use tokio::sync::broadcast;

const WAIT: Duration = Duration::from_secs(30);

async fn connect(a: &TestNode, b: &TestNode) {
    let info = b.h.info().await.expect("info");
    let addr = info.addrs[0].parse().expect("multiaddr");
    let peer = a.h.connect(addr).await.expect("connect");
    assert_eq!(peer, b.h.peer_id());
}

/// Waits (up to this file's [`WAIT`]) for the first event that `f` maps to `Some`.
async fn wait_for<T>(
    rx: &mut broadcast::Receiver<NodeEvent>,
    what: &str,
    f: impl FnMut(&NodeEvent) -> Option<T>,
) -> T {
    support::wait_within(rx, WAIT, what, f).await
}

/// Follows `topic` on `follower` and waits until `publisher` knows it.
async fn follow(follower: &TestNode, publisher: &TestNode, topic: GossipTopic) {
    let mut ev = publisher.h.events();
    follower.h.follow(topic).await.expect("follow");
    let want = (follower.h.peer_id(), topic.to_string());
    wait_for(&mut ev, "subscription", |e| match e {
        NodeEvent::PeerSubscribed { peer, topic } if (*peer, topic.clone()) == want => Some(()),
        _ => None,
    })
    .await;
}

fn post(key: &Keypair, text: &str, at: u64) -> Record {
    Record::create(&Post {
        text: text.into(),
        ..Post::default()
    })
    .expect("post")
    .at(at)
    .sign(key)
    .expect("sign")
}

async fn wait_stored(rx: &mut broadcast::Receiver<NodeEvent>, cid: Cid) {
    wait_for(rx, "the record", |e| match e {
        NodeEvent::Stored { cid: c, .. } if *c == cid => Some(()),
        _ => None,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_feed_post_propagates() {
    let (a, b) = (spawn().await, spawn().await);
    connect(&b, &a).await;
    let alice = Keypair::derive(1, "alice");
    let topic = GossipTopic::Author(*alice.did());
    follow(&b, &a, topic).await;

    let mut ev = b.h.events();
    let r = post(&alice, "hello from a", 1_700_000_000_000);
    a.h.publish(vec![r.clone()]).await.expect("publish");
    wait_stored(&mut ev, r.cid()).await;
    let got =
        b.h.repo()
            .store()
            .record(&r.cid())
            .expect("read")
            .expect("stored on b");
    assert_eq!(got.bytes(), r.bytes());

    // A new version carries the old one along and lands as the head.
    let v2 = r
        .update(&Post {
            text: "hello again".into(),
            ..Post::default()
        })
        .expect("update")
        .at(1_700_000_000_100)
        .sign(&alice)
        .expect("sign");
    a.h.publish(vec![v2.clone()]).await.expect("publish v2");
    wait_stored(&mut ev, v2.cid()).await;
    let head =
        b.h.repo()
            .store()
            .head(&r.id())
            .expect("head")
            .expect("item");
    assert_eq!(head.cid(), v2.cid());
    a.node.shutdown().await.expect("shutdown a");
    b.node.shutdown().await.expect("shutdown b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_branch_post_reaches_all() {
    let (a, b, c) = (spawn().await, spawn().await, spawn().await);
    connect(&a, &b).await;
    connect(&b, &c).await;
    let branch = mnode_dag::cids::record_cid(b"a branch");
    let topic = GossipTopic::Branch(branch);
    follow(&a, &b, topic).await;
    follow(&c, &b, topic).await;
    follow(&b, &a, topic).await;

    let (mut ea, mut eb) = (a.h.events(), b.h.events());
    let carol = Keypair::derive(3, "carol");
    let r = Record::create(&Post {
        text: "in the branch".into(),
        branch: Some(Link(branch)),
        ..Post::default()
    })
    .expect("post")
    .at(1_700_000_000_000)
    .sign(&carol)
    .expect("sign");
    c.h.publish(vec![r.clone()]).await.expect("publish");
    wait_stored(&mut eb, r.cid()).await;
    wait_stored(&mut ea, r.cid()).await;
    for n in [a, b, c] {
        n.node.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_joiner_catches_up_1000_posts() {
    let a = spawn().await;
    let alice = Keypair::derive(1, "alice");
    let posts: Vec<Record> = (0..1000)
        .map(|i| post(&alice, &format!("post {i}"), 1_700_000_000_000 + i))
        .collect();
    a.h.publish(posts.clone()).await.expect("publish");

    let b = spawn().await;
    connect(&b, &a).await;
    let topic = GossipTopic::Author(*alice.did());
    let mut ev = b.h.events();
    b.h.follow(topic).await.expect("follow");
    let mut total = 0;
    while total < posts.len() {
        total += wait_for(&mut ev, "catch-up", |e| match e {
            NodeEvent::Synced {
                topic: t, stored, ..
            } if *t == topic => Some(*stored),
            _ => None,
        })
        .await;
    }
    assert_eq!(total, 1000);
    let held = b.h.repo().store().sync_items(&topic).expect("sync set");
    assert_eq!(held.len(), 1000);
    for r in &posts {
        assert!(b.h.repo().store().has_block(&r.cid()).expect("read"));
    }
    a.node.shutdown().await.expect("shutdown a");
    b.node.shutdown().await.expect("shutdown b");
}

/// A node that follows a feed two of its peers hold catches it up from one of them and then
/// reconciles with the other, instead of fetching every record from both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_held_by_two_peers_is_fetched_once() {
    let (a, c) = (spawn().await, spawn().await);
    let alice = Keypair::derive(1, "alice");
    let posts: Vec<Record> = (0..300)
        .map(|i| post(&alice, &format!("post {i}"), 1_700_000_000_000 + i))
        .collect();
    let missing: u64 = posts.iter().map(|r| r.bytes().len() as u64).sum();
    a.h.publish(posts.clone()).await.expect("publish on a");
    c.h.publish(posts.clone()).await.expect("publish on c");

    let b = spawn().await;
    connect(&b, &a).await;
    connect(&b, &c).await;
    let topic = GossipTopic::Author(*alice.did());
    let mut ev = b.h.events();
    b.h.follow(topic).await.expect("follow");
    let mut from = Vec::new();
    while from.len() < 2 {
        from.push(
            wait_for(&mut ev, "a catch-up", |e| match e {
                NodeEvent::Synced {
                    topic: t,
                    peer,
                    stored,
                    bytes,
                    ..
                } if *t == topic => Some((*peer, *stored, *bytes)),
                _ => None,
            })
            .await,
        );
    }
    assert_ne!(from[0].0, from[1].0, "{from:?}");
    assert_eq!(from[0].1 + from[1].1, posts.len(), "{from:?}");
    assert_eq!(from[1].1, 0, "the second catch-up fetched again: {from:?}");
    assert_eq!(from[0].2 + from[1].2, missing, "{from:?}");
    for r in &posts {
        assert!(b.h.repo().store().has_block(&r.cid()).expect("read"));
    }
    for n in [a, b, c] {
        n.node.shutdown().await.expect("shutdown");
    }
}

/// A node shut down while records pour in has reported, once `shutdown` returns, every record
/// it stored: stores already running finish and their events go out before the loop ends (a
/// subscriber counting deliveries would otherwise miss records the repo holds). Whether a store
/// is running at the moment of the shutdown depends on timing, so this tries until one was
/// (each try checks the promise all the same).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_while_receiving_reports_every_record_stored() {
    for _ in 0..10 {
        let (held, before) = shut_down_while_receiving().await;
        if held > before {
            return;
        }
    }
    panic!("no try had a store running when the shutdown began");
}

/// One try of the test above: returns the records the receiver held and how many it had
/// reported before its shutdown began.
async fn shut_down_while_receiving() -> (usize, usize) {
    let (a, b) = (spawn().await, spawn().await);
    connect(&b, &a).await;
    let alice = Keypair::derive(1, "alice");
    let topic = GossipTopic::Author(*alice.did());
    follow(&b, &a, topic).await;
    let posts: Vec<Record> = (0..500)
        .map(|i| post(&alice, &format!("post {i}"), 1_700_000_000_000 + i))
        .collect();

    let mut ev = b.h.events();
    a.h.publish(posts.clone()).await.expect("publish");
    let mut reported = std::collections::HashSet::new();
    let mut drain = |ev: &mut broadcast::Receiver<NodeEvent>| loop {
        match ev.try_recv() {
            Ok(NodeEvent::Stored { cid, .. }) => {
                reported.insert(cid);
            }
            Ok(_) => {}
            Err(broadcast::error::TryRecvError::Empty) => break reported.len(),
            Err(e) => panic!("events: {e}"),
        }
    };
    let first = wait_for(&mut ev, "the first record", |e| match e {
        NodeEvent::Stored { cid, .. } => Some(*cid),
        _ => None,
    })
    .await;
    let before = drain(&mut ev) + 1;
    b.node.shutdown().await.expect("shutdown b");
    drain(&mut ev);
    reported.insert(first);
    let held: Vec<Cid> = posts
        .iter()
        .map(Record::cid)
        .filter(|c| b.h.repo().store().has_block(c).expect("read"))
        .collect();
    let unreported = held.iter().filter(|c| !reported.contains(c)).count();
    assert_eq!(
        unreported,
        0,
        "{unreported} of {} records held were never reported",
        held.len()
    );
    assert_eq!(reported.len(), held.len());
    a.node.shutdown().await.expect("shutdown a");
    (held.len(), before)
}

/// A tombstone names no `$owner` (its body is null), yet a deletion of a group's item travels
/// on the group's topic too: a node that follows the group and not whoever deleted hears of it,
/// and one catching the group up later gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_groups_item_deleted_on_one_node_is_deleted_where_only_the_group_is_followed() {
    use mnode_dag::{
        Draft,
        model::core::Role,
        testing::band::{body, cite, group},
    };
    let (a, b) = (spawn().await, spawn().await);
    connect(&b, &a).await;
    let key = |name| Keypair::derive(44, name);
    let (owner, admin, member) = (key("owner"), key("admin"), key("member"));
    let g0 = Record::create(&group(&[
        (&owner, Role::Owner),
        (&admin, Role::Admin),
        (&member, Role::Member),
    ]))
    .expect("group")
    .at(1_700_000_000_000)
    .sign(&owner)
    .expect("sign");
    let page = Draft::new("art.artist_group", body("The Band"))
        .owned_by(cite(&g0, &g0))
        .at(1_700_000_000_001)
        .sign(&member)
        .expect("page");
    let topic = GossipTopic::Group(g0.id());
    follow(&b, &a, topic).await;
    let mut ev = b.h.events();
    a.h.publish(vec![g0.clone(), page.clone()])
        .await
        .expect("publish");
    wait_stored(&mut ev, page.cid()).await;

    let gone = page
        .delete()
        .at(1_700_000_000_002)
        .sign(&admin)
        .expect("tombstone");
    a.h.publish(vec![gone.clone()]).await.expect("publish");
    wait_stored(&mut ev, gone.cid()).await;
    let deleted = |n: &TestNode| {
        n.h.repo()
            .store()
            .item(&page.id())
            .expect("read")
            .expect("item")
            .deleted
    };
    assert!(
        deleted(&b),
        "B, following only the group, sees the deletion"
    );
    let follows = b.h.repo().store().follows().expect("follows");
    for who in [&admin, &member] {
        assert!(!follows.contains(&GossipTopic::Author(*who.did())));
    }

    // A node that catches the group up later gets the deletion with it.
    let c = spawn().await;
    connect(&c, &a).await;
    let mut ec = c.h.events();
    c.h.follow(topic).await.expect("follow");
    wait_stored(&mut ec, gone.cid()).await;
    assert!(deleted(&c));
    for n in [a, b, c] {
        n.node.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fork_of_thread_propagates_as_new_topic() {
    let (a, b) = (spawn().await, spawn().await);
    connect(&b, &a).await;
    let dave = Keypair::derive(4, "dave");
    let branch = mnode_dag::cids::record_cid(b"branch");
    let thread = Record::create(&Thread {
        branch: Link(branch),
        title: "original".into(),
        tags: vec![],
        fork: None,
    })
    .expect("thread")
    .at(1_700_000_000_000)
    .sign(&dave)
    .expect("sign");
    let first = Record::create(&Post {
        text: "first".into(),
        thread: Some(Link(thread.id())),
        ..Post::default()
    })
    .expect("post")
    .at(1_700_000_000_001)
    .sign(&dave)
    .expect("sign");
    let second = Record::create(&Post {
        text: "second".into(),
        thread: Some(Link(thread.id())),
        ..Post::default()
    })
    .expect("post")
    .at(1_700_000_000_001)
    .sign(&dave)
    .expect("sign");
    a.h.publish(vec![thread.clone(), first.clone(), second.clone()])
        .await
        .expect("publish");

    let fork = Record::create(&Thread {
        branch: Link(branch),
        title: "a fork".into(),
        tags: vec![],
        fork: Some(ForkPoint {
            thread: Link(thread.id()),
            post: Link(first.id()),
        }),
    })
    .expect("fork")
    .at(1_700_000_000_002)
    .sign(&dave)
    .expect("sign");
    let fork_topic = GossipTopic::Thread(fork.id());
    assert!(GossipTopic::of(&fork).contains(&fork_topic));
    follow(&b, &a, fork_topic).await;
    let mut ev = b.h.events();
    a.h.publish(vec![fork.clone()]).await.expect("publish fork");
    wait_stored(&mut ev, fork.cid()).await;
    let reply = Record::create(&Post {
        text: "in the fork".into(),
        thread: Some(Link(fork.id())),
        ..Post::default()
    })
    .expect("post")
    .at(1_700_000_000_003)
    .sign(&dave)
    .expect("sign");
    a.h.publish(vec![reply.clone()])
        .await
        .expect("publish reply");
    wait_stored(&mut ev, reply.cid()).await;
    // B follows only the fork: the original thread's posts stay on A, but for the post the
    // fork starts at, which came along with the fork (it is what the fork answers).
    assert!(!b.h.repo().store().has_block(&second.cid()).expect("read"));
    assert!(b.h.repo().store().has_block(&first.cid()).expect("read"));
    a.node.shutdown().await.expect("shutdown a");
    b.node.shutdown().await.expect("shutdown b");
}

fn data(len: usize, seed: u8) -> Bytes {
    let mut out = vec![0u8; len];
    let mut xof = blake3::Hasher::new().update(&[seed]).finalize_xof();
    xof.fill(&mut out);
    Bytes::from(out)
}

/// `core.file` records of `files` (each a blob `node` holds), by `key`.
fn file_records(key: &Keypair, files: &[(Cid, u64)]) -> Vec<Record> {
    files
        .iter()
        .enumerate()
        .map(|(i, (cid, size))| {
            Record::create(&File {
                blob: Link(*cid),
                name: format!("stem-{i}.bin"),
                media_type: "application/octet-stream".into(),
                size: *size,
                kind: FileKind::Other,
                sealed: None,
                unixfs: None,
            })
            .expect("file")
            .at(1_700_000_000_000 + i as u64)
            .sign(key)
            .expect("sign")
        })
        .collect()
}

/// A release naming `files` (records), by `key`.
fn release(key: &Keypair, title: &str, files: &[Record]) -> Record {
    Record::create(&Release {
        title: TitleData::new(title),
        kind: ReleaseKind::Other,
        artists: vec![],
        files: files.iter().map(|r| Link(r.id())).collect(),
        cover: None,
        date: None,
        license: None,
        description: None,
        tags: vec![],
    })
    .expect("release")
    .at(1_800_000_000_000)
    .sign(key)
    .expect("sign")
}

/// A second node fetches a release by its id, in one go: every record over Bitswap and every
/// file (many small ones and one of several MiB) over iroh, verified, and pinned; a second
/// fetch moves nothing; a file no peer holds is reported missing while the rest are kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_is_fetched_whole_by_its_id() {
    let (a, b) = (spawn().await, spawn().await);
    connect(&b, &a).await;
    let label = Keypair::derive(6, "label");
    let mut contents = Vec::new();
    let mut files = Vec::new();
    for i in 0..300u32 {
        let bytes = data(4096 + 211 * i as usize, i as u8);
        let added = a.h.blobs().add_bytes(bytes.clone()).await.expect("add");
        files.push((added.cid, added.size));
        contents.push(bytes);
    }
    let big = data((3 << 20) + 5, 201);
    let added = a.h.blobs().add_bytes(big.clone()).await.expect("add");
    files.push((added.cid, added.size));
    contents.push(big);
    let records = file_records(&label, &files);
    let stems = release(&label, "Stems", &records);
    let mut all = records.clone();
    all.push(stems.clone());
    a.h.publish(all).await.expect("publish");

    let total: u64 = files.iter().map(|(_, n)| n).sum();
    let mut seen: Vec<ManyProgress> = Vec::new();
    let f =
        b.h.fetch_dag(stems.id(), |p| seen.push(p))
            .await
            .expect("b fetches the release");
    assert!(f.missing.is_empty(), "{:?}", f.missing);
    assert_eq!(
        (f.files, f.held_before, f.size, f.transferred),
        (files.len(), 0, total, total)
    );
    assert_eq!(
        (f.blocks, f.blocks_fetched),
        (records.len() + 1, records.len() + 1)
    );
    assert_eq!(f.from, vec![(a.h.peer_id(), files.len())]);
    let last = seen.last().expect("progress");
    assert_eq!(
        (last.files, last.held, last.bytes),
        (files.len(), files.len(), total)
    );
    for ((cid, _), bytes) in files.iter().zip(&contents) {
        assert_eq!(&b.h.blobs().read_to_bytes(cid).await.expect("read"), bytes);
    }
    let store = b.h.repo().store();
    for r in &records {
        assert!(store.record(&r.cid()).expect("store").is_some());
    }
    assert!(
        store
            .pins()
            .expect("pins")
            .iter()
            .any(|(c, p)| *c == stems.id() && p.recursive),
        "the release is pinned"
    );

    let again = b.h.fetch_dag(stems.id(), |_| {}).await.expect("again");
    assert!(again.missing.is_empty(), "{:?}", again.missing);
    assert_eq!(
        (again.held_before, again.transferred, again.blocks_fetched),
        (files.len(), 0, 0)
    );

    // A second release names a file its publisher no longer holds, beside one B has.
    let gone = a.h.blobs().add_bytes(data(9000, 250)).await.expect("add");
    let extra = data(7000, 251);
    let kept = a.h.blobs().add_bytes(extra.clone()).await.expect("add");
    assert!(a.h.blobs().delete(&gone.cid).await.expect("delete"));
    let more = file_records(&label, &[(gone.cid, gone.size), (kept.cid, kept.size)]);
    let b_sides = release(&label, "B-sides", &more);
    let mut all = more.clone();
    all.push(b_sides.clone());
    a.h.publish(all).await.expect("publish");
    let f =
        b.h.fetch_dag(b_sides.id(), |_| {})
            .await
            .expect("a partial fetch still answers");
    assert_eq!(f.missing.len(), 1, "{:?}", f.missing);
    assert_eq!(f.missing[0].0, gone.cid);
    assert_eq!(
        b.h.blobs().read_to_bytes(&kept.cid).await.expect("kept"),
        extra
    );

    // A record no peer has.
    let nobody = release(&label, "Unreleased", &records[..1]);
    match b.h.fetch_dag(nobody.id(), |_| {}).await {
        Err(mnode_node::node::NodeError::NotFound(c)) => assert_eq!(c, nobody.id()),
        other => panic!("expected NotFound, got {other:?}"),
    }
    a.node.shutdown().await.expect("shutdown a");
    b.node.shutdown().await.expect("shutdown b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_shared_along_a_chain() {
    let (a, b, c) = (spawn().await, spawn().await, spawn().await);
    connect(&b, &a).await;
    connect(&c, &b).await;
    let bytes = data(3 << 20, 9);
    let added = a.h.blobs().add_bytes(bytes.clone()).await.expect("add");
    let artist = Keypair::derive(5, "artist");
    let record = Record::create(&File {
        blob: Link(added.cid),
        name: "track.bin".into(),
        media_type: "application/octet-stream".into(),
        size: added.size,
        kind: FileKind::Other,
        sealed: None,
        unixfs: None,
    })
    .expect("file")
    .at(1_700_000_000_000)
    .sign(&artist)
    .expect("sign");
    a.h.publish(vec![record]).await.expect("publish");

    let size =
        b.h.fetch_file(added.cid, |_| {})
            .await
            .expect("b fetches from a")
            .size;
    assert_eq!(size, bytes.len() as u64);
    assert_eq!(
        b.h.blobs().read_to_bytes(&added.cid).await.expect("read"),
        bytes
    );

    // C may not reach A (the DHT would otherwise connect them): B is the provider now.
    let mut ev = c.h.events();
    let a_id = a.h.peer_id().to_string();
    let connected =
        c.h.peers()
            .await
            .expect("peers")
            .iter()
            .any(|p| p.peer_id == a_id);
    c.h.ban(a.h.peer_id(), true).await.expect("ban");
    a.h.ban(c.h.peer_id(), true).await.expect("ban");
    if connected {
        let a_peer = a.h.peer_id();
        wait_for(&mut ev, "A to be disconnected", |e| {
            matches!(e, NodeEvent::PeerDisconnected(p) if *p == a_peer).then_some(())
        })
        .await;
    }
    let size =
        c.h.fetch_file(added.cid, |_| {})
            .await
            .expect("c fetches from b")
            .size;
    assert_eq!(size, bytes.len() as u64);
    assert_eq!(
        c.h.blobs().read_to_bytes(&added.cid).await.expect("read"),
        bytes
    );
    for n in [a, b, c] {
        n.node.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_fetch_resumes() {
    let (a, b) = (spawn().await, spawn().await);
    connect(&b, &a).await;
    let bytes = data(64 << 20, 7);
    let added = a.h.blobs().add_bytes(bytes.clone()).await.expect("add");
    let cid = added.cid;

    // The only provider goes away once part of the file has arrived.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let h = b.h.clone();
    let first = tokio::spawn(async move {
        h.fetch_file(cid, move |p| {
            let _ = tx.send(p);
        })
        .await
    });
    let mut size_seen = None;
    tokio::time::timeout(WAIT, async {
        while let Some(p) = rx.recv().await {
            match p {
                FetchProgress::Size(n) => size_seen = Some(n),
                FetchProgress::Bytes(n) if n >= 4 << 20 => break,
                FetchProgress::Bytes(_) => {}
            }
        }
    })
    .await
    .expect("first fetch made progress");
    assert_eq!(
        size_seen,
        Some(bytes.len() as u64),
        "the size is reported while the fetch runs"
    );
    a.node.shutdown().await.expect("shutdown a");
    let first = first.await.expect("join");
    assert!(first.is_err(), "the fetch cannot finish without a provider");
    let mut got_first = 0;
    while let Ok(p) = rx.try_recv() {
        if let FetchProgress::Bytes(n) = p {
            got_first = got_first.max(n);
        }
    }
    assert!(got_first < bytes.len() as u64);

    // Another provider: the fetch continues from what B holds.
    let c = spawn().await;
    c.h.blobs()
        .add_bytes(bytes.clone())
        .await
        .expect("add on c");
    connect(&b, &c).await;
    let fetched = b.h.fetch_file(cid, |_| {}).await.expect("second fetch");
    let (size, second) = (fetched.size, fetched.transferred);
    assert_eq!(size, bytes.len() as u64);
    assert_eq!(b.h.blobs().read_to_bytes(&cid).await.expect("read"), bytes);
    println!("first fetch got {got_first} bytes, the second transferred {second} of {size}");
    assert!(
        second + (2 << 20) <= size,
        "the second fetch transferred {second} of {size} bytes: it did not resume"
    );
    b.node.shutdown().await.expect("shutdown b");
    c.node.shutdown().await.expect("shutdown c");
}

/// A big file held by several peers comes in parts from all of them at once, every part
/// verified, and the result says who served what.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_file_fetched_in_parts_from_several_providers() {
    let (a, b, c) = (spawn().await, spawn().await, spawn().await);
    let bytes = data(32 << 20, 11);
    let added =
        a.h.blobs()
            .add_bytes(bytes.clone())
            .await
            .expect("add on a");
    c.h.blobs()
        .add_bytes(bytes.clone())
        .await
        .expect("add on c");
    connect(&b, &a).await;
    connect(&b, &c).await;
    let mut seen = 0;
    let fetched =
        b.h.fetch_file(added.cid, |p| {
            if let FetchProgress::Bytes(n) = p {
                assert!(n <= bytes.len() as u64, "progress past the size: {n}");
                seen = seen.max(n);
            }
        })
        .await
        .expect("fetch");
    assert_eq!(fetched.size, bytes.len() as u64);
    assert_eq!(seen, bytes.len() as u64, "progress reaches the size");
    assert_eq!(
        b.h.blobs().read_to_bytes(&added.cid).await.expect("read"),
        bytes
    );
    assert_eq!(fetched.transferred, bytes.len() as u64);
    let served: u64 = fetched.from.iter().map(|(_, n)| n).sum();
    assert_eq!(served, fetched.transferred, "{:?}", fetched.from);
    for peer in [a.h.peer_id(), c.h.peer_id()] {
        let n = fetched
            .from
            .iter()
            .find(|(p, _)| *p == peer)
            .map_or(0, |(_, n)| *n);
        assert!(n >= 4 << 20, "{peer} served {n} bytes: {:?}", fetched.from);
    }
    for n in [a, b, c] {
        n.node.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_record_rejected_and_peer_penalised() {
    use futures::StreamExt;
    use libp2p::{SwarmBuilder, identity, noise, swarm::SwarmEvent, tcp, yamux};

    let b = spawn().await;
    let alice = Keypair::derive(1, "alice");
    let topic = GossipTopic::Author(*alice.did());
    b.h.follow(topic).await.expect("follow");

    // The attacker speaks plain gossipsub with a key of its own.
    let key = identity::Keypair::generate_ed25519();
    let gs = mnode_protocols::gossip::behaviour(&key, &Default::default()).expect("gossipsub");
    let mut attacker = SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .expect("tcp")
        .with_behaviour(|_| gs)
        .expect("behaviour")
        .build();
    let attacker_id = *attacker.local_peer_id();
    let t = mnode_protocols::gossip::ident(&topic);
    attacker.behaviour_mut().subscribe(&t).expect("subscribe");
    let addr: libp2p::Multiaddr = b.h.info().await.expect("info").addrs[0]
        .parse()
        .expect("addr");
    attacker.dial(addr).expect("dial");

    let mut ev = b.h.events();
    // Wait until the attacker sees B in the topic, then send garbage and a forged record.
    let good = post(&alice, "genuine", 1_700_000_000_000);
    let mut forged = good.bytes().to_vec();
    let i = forged
        .windows(7)
        .position(|w| w == b"genuine")
        .expect("text");
    forged[i] = b'G';
    let forged_msg = mnode_protocols::gossip::Message {
        blocks: vec![],
        record: serde_bytes::ByteBuf::from(forged),
    };
    let payloads = [b"\xa1\x00not cbor".to_vec(), forged_msg.to_bytes()];
    let mut sent = 0;
    let rejected = tokio::time::timeout(WAIT, async {
        let mut rejected = 0;
        loop {
            tokio::select! {
                e = attacker.select_next_some() => {
                    // B subscribes to its owner's feed too: only Alice's topic counts here.
                    if let SwarmEvent::Behaviour(libp2p::gossipsub::Event::Subscribed { topic, .. }) = e
                        && topic == t.hash()
                    {
                        for p in &payloads {
                            attacker.behaviour_mut().publish(t.clone(), p.clone()).expect("publish");
                            sent += 1;
                        }
                    }
                }
                e = ev.recv() => {
                    if let Ok(NodeEvent::Rejected { from, .. }) = e {
                        assert_eq!(from, attacker_id);
                        rejected += 1;
                        if rejected == payloads.len() {
                            return rejected;
                        }
                    }
                }
            }
        }
    })
    .await
    .expect("both messages rejected");
    assert_eq!(rejected, sent);
    assert!(!b.h.repo().store().has_block(&good.cid()).expect("read"));
    let score = b.h.peer_score(attacker_id).await.expect("score");
    assert!(
        score.is_some_and(|s| s < 0.0),
        "the attacker's score is {score:?}, expected negative"
    );
    b.node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_without_a_unixfs_view_get_one_and_a_fetched_file_is_served_by_it() {
    let a = spawn().await;
    let b = spawn().await;
    // A file stored without a view (as before views existed).
    let data = mnode_dag::testing::noise((2 << 20) + 777, 5);
    let want = mnode_dag::unixfs::View::of(&data, Default::default());
    let blob =
        a.h.blobs()
            .add_bytes(Bytes::from(data.clone()))
            .await
            .expect("add")
            .cid;
    // (The node's own pass at start may have run after the add and made it already.)
    assert!(a.h.index_missing_views().await <= 1);
    assert_eq!(a.h.index_missing_views().await, 0, "made once");
    assert_eq!(
        a.h.repo().store().view_of(&blob).expect("index"),
        Some(want.root)
    );

    // B fetches the file and then serves its view too; its leaves come from B's copy.
    connect(&b, &a).await;
    b.h.fetch_file(blob, |_: FetchProgress| {})
        .await
        .expect("fetch");
    let deadline = tokio::time::Instant::now() + WAIT;
    while b.h.repo().store().view_of(&blob).expect("index") != Some(want.root) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "B made no view of the fetched file"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Over Bitswap from A: the root node and a leaf, each checked against its CID.
    let root =
        b.h.fetch_block(want.root, WAIT)
            .await
            .expect("the root over Bitswap");
    assert_eq!(root, want.nodes.last().expect("a dag-pb root").1);
    let leaf = want.leaves[1];
    let c = spawn().await;
    connect(&c, &b).await;
    // (A peer that has just connected is not known to Bitswap for a moment.)
    let deadline = tokio::time::Instant::now() + WAIT;
    let bytes = loop {
        match c.h.fetch_block(leaf.cid, WAIT).await {
            Ok(bytes) => break bytes,
            Err(e) if tokio::time::Instant::now() < deadline && e.to_string().contains("peer") => {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            Err(e) => panic!("a leaf over Bitswap from B: {e}"),
        }
    };
    let at = leaf.offset as usize;
    assert_eq!(bytes, data[at..at + leaf.len as usize]);
    for n in [a, b, c] {
        n.node.shutdown().await.expect("shutdown");
    }
}

/// A node announcing many files in the DHT still answers at once: its announcements run a few
/// at a time. Started all together, the 20,000 announcements of a node holding 10,000 files
/// (with their UnixFS roots) kept its event loop busy for 15 s after its first peer came, and
/// a peer asking which files it holds got no answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_announcing_20000_files_answers_at_once() {
    let a = spawn().await;
    let b = spawn().await;
    connect(&b, &a).await;
    let cids: Vec<Cid> = (0u32..20_000)
        .map(|i| mnode_dag::cids::blob_cid_of(&i.to_be_bytes()))
        .collect();
    a.h.provide(cids).await.expect("provide");
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let start = std::time::Instant::now();
        a.h.peers().await.expect("peers");
        slowest = slowest.max(start.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        slowest < Duration::from_millis(500),
        "the node took {slowest:?} to answer while announcing"
    );
}

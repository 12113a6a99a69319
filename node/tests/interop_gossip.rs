//! Gossip interop with js-libp2p (`tests/interop/gossip.mjs`): a JS gossipsub node and a Rust
//! node exchange signed records on authors' feeds, both ways, and the Rust node rejects a
//! record whose signature is broken.
//!
//! Needs Node.js (>= 20.19) and `npm ci` in `node/tests/interop`. Without `node_modules` the
//! test prints why and passes, unless `CI` is set, where it fails.

mod support;

use libp2p::{PeerId, gossipsub};
use mnode_dag::{Keypair, Record, model::social::Post};
use mnode_node::node::{NodeEvent, Via};
use mnode_protocols::{GossipTopic, gossip};
use support::{Script, spawn, wait_for};

const JS: &str = "node/tests/interop";
const AT: u64 = 1_700_000_000_000;

fn post(key: &Keypair, text: &str) -> Record {
    Record::create(&Post {
        text: text.into(),
        ..Post::default()
    })
    .expect("post")
    .at(AT)
    .sign(key)
    .expect("sign")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_js_libp2p_gossip() {
    if !support::js_installed(JS) {
        return;
    }
    let a = spawn().await;
    let alice = Keypair::derive(11, "alice");
    let js = Keypair::derive(11, "js-libp2p");
    let js_feed = GossipTopic::Author(*js.did());
    let mut ev = a.h.events();
    a.h.follow(js_feed).await.expect("follow the JS author");

    let from_rust = post(&alice, "hello from rust");
    let text = "hello from js-libp2p";
    // Signatures are deterministic, so the JS node must make this very record.
    let from_js = post(&js, text);
    let mut script = Script::start(
        JS,
        "gossip.mjs",
        &[
            a.addr().await,
            hex::encode(js.secret_bytes()),
            AT.to_string(),
            text.to_owned(),
            alice.did().to_string(),
            from_rust.cid().to_string(),
        ],
    );
    let ready = script.expect_event("ready").await;
    assert_eq!(ready["did"], js.did_text(), "did:key of the same secret");
    let js_peer: PeerId = ready["peer"]
        .as_str()
        .expect("peer")
        .parse()
        .expect("peer id");

    // Rust → JS: once the JS node is in alice's topic, a record published here reaches it.
    let feed = GossipTopic::Author(*alice.did()).to_string();
    wait_for(&mut ev, "the JS node's subscription", |e| match e {
        NodeEvent::PeerSubscribed { peer, topic } if *peer == js_peer && *topic == feed => Some(()),
        _ => None,
    })
    .await;
    a.h.publish(vec![from_rust.clone()]).await.expect("publish");
    let got = script.expect_event("received").await;
    assert_eq!(got["cid"], from_rust.cid().to_string());
    assert_eq!(got["from"], a.h.peer_id().to_string());
    // Both sides name a message alike, so duplicates and IHAVE/IWANT gossip line up.
    let sent = gossipsub::Message {
        source: None,
        data: gossip::Message::new(&from_rust).to_bytes(),
        sequence_number: None,
        topic: gossipsub::IdentTopic::new(&feed).hash(),
    };
    assert_eq!(got["id"], hex::encode(gossip::message_id(&sent).0));

    // JS → Rust: a valid record is stored, one with a broken signature is rejected.
    let valid = script.expect_event("published").await;
    assert_eq!(valid["valid"], true);
    assert_eq!(
        valid["cid"],
        from_js.cid().to_string(),
        "JS signs records as Rust does"
    );
    let forged = script.expect_event("published").await;
    assert_eq!(forged["valid"], false);
    let forged_cid: mnode_dag::Cid = forged["cid"].as_str().expect("cid").parse().expect("cid");
    let (mut stored, mut rejected) = (false, false);
    while !(stored && rejected) {
        wait_for(&mut ev, "the JS records' verdicts", |e| match e {
            NodeEvent::Stored { cid, from, via, .. } => {
                assert_ne!(*cid, forged_cid, "the forged record was stored");
                if *cid == from_js.cid() {
                    assert_eq!((*from, *via), (js_peer, Via::Gossip));
                    stored = true;
                }
                Some(())
            }
            NodeEvent::Rejected { from, reason } => {
                assert_eq!(*from, js_peer, "{reason}");
                println!("rejected the forged record: {reason}");
                rejected = true;
                Some(())
            }
            _ => None,
        })
        .await;
    }
    let store = a.h.repo().store();
    let got = store.record(&from_js.cid()).expect("read").expect("stored");
    assert_eq!(got.bytes(), from_js.bytes());
    assert!(!store.has_block(&forged_cid).expect("read"));
    let score = a.h.peer_score(js_peer).await.expect("score");
    assert!(
        score.is_some_and(|s| s < 0.0),
        "the JS node's score is {score:?} after an invalid message, expected negative"
    );

    script.finish().await;
    a.node.shutdown().await.expect("shutdown");
}

//! Catch-up sync between two real libp2p swarms on 127.0.0.1.
//!
//! Node A holds 1,000 signed record versions of an author's feed, node B 900 of them; B
//! reconciles with A and fetches what it lacks. Tests wait on swarm events with timeouts,
//! never on fixed sleeps.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use futures::{StreamExt as _, io::Cursor};
use libp2p::{
    Multiaddr, PeerId, Swarm, SwarmBuilder, noise,
    request_response::{self, Codec as _, Message},
    swarm::SwarmEvent,
    tcp, yamux,
};
use mnode_dag::{Cid, Keypair, Record, model::social::Post};
use mnode_protocols::{
    GossipTopic,
    sync::{self, CatchUp, Next, Request, Response, Store, Summary, SyncSet, item_of},
};

const WAIT: Duration = Duration::from_secs(30);

/// One topic's records in memory.
#[derive(Default)]
struct MemStore {
    sets: HashMap<GossipTopic, SyncSet>,
    blocks: HashMap<Cid, Vec<u8>>,
}

impl MemStore {
    fn new<'a>(topic: GossipTopic, records: impl IntoIterator<Item = &'a Record>) -> Self {
        let mut store = Self::default();
        let mut items = Vec::new();
        for r in records {
            items.push(item_of(r));
            store.blocks.insert(r.cid(), r.bytes().to_vec());
        }
        store.sets.insert(topic, SyncSet::new(items));
        store
    }
}

impl Store for MemStore {
    type Error = std::convert::Infallible;

    fn sync_set(&self, topic: &GossipTopic) -> Result<Option<SyncSet>, Self::Error> {
        Ok(self.sets.get(topic).cloned())
    }

    fn block(&self, cid: &Cid) -> Result<Option<Vec<u8>>, Self::Error> {
        Ok(self.blocks.get(cid).cloned())
    }
}

/// 800 posts by one author a second apart, then an edit of every fourth post: 1,000 versions.
fn feed() -> (GossipTopic, Vec<Record>) {
    let key = Keypair::derive(11, "sync-feed");
    let base = 1_732_400_000_000;
    let mut records: Vec<Record> = (0..800u64)
        .map(|i| {
            let post = Post {
                text: format!("post {i}: what I listened to today"),
                tags: vec!["music/jazz".into()],
                ..Post::default()
            };
            Record::create(&post)
                .expect("post")
                .at(base + i * 1000)
                .sign(&key)
                .expect("sign")
        })
        .collect();
    let edits: Vec<Record> = (0..200u64)
        .map(|j| {
            let post = Post {
                text: format!("post {}, edited", j * 4),
                ..Post::default()
            };
            records[j as usize * 4]
                .update(&post)
                .expect("edit")
                .at(base + (800 + j) * 1000)
                .sign(&key)
                .expect("sign")
        })
        .collect();
    records.extend(edits);
    (GossipTopic::Author(*key.did()), records)
}

fn swarm(config: &sync::Config) -> Swarm<sync::Behaviour> {
    SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .expect("tcp")
        .with_behaviour(|_| sync::behaviour(config))
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

/// Starts node A serving `store`; returns its peer id and address.
async fn serve(store: MemStore, config: sync::Config) -> (PeerId, Multiaddr) {
    let mut a = swarm(&config);
    a.listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("addr"))
        .expect("listen");
    let addr = tokio::time::timeout(WAIT, async {
        loop {
            if let SwarmEvent::NewListenAddr { address, .. } = a.select_next_some().await {
                return address;
            }
        }
    })
    .await
    .expect("A listens");
    let peer = *a.local_peer_id();
    tokio::spawn(async move {
        loop {
            if let SwarmEvent::Behaviour(request_response::Event::Message {
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            }) = a.select_next_some().await
            {
                let response = sync::serve(&store, request, &config);
                // The requester may be gone; that is its business.
                let _ = a.behaviour_mut().send_response(channel, response);
            }
        }
    });
    (peer, addr)
}

/// What B saw of one catch-up.
struct Outcome {
    records: Vec<Record>,
    summary: Summary,
    wire_bytes: usize,
    requests: usize,
}

/// Node B catches `topic` up from A, holding `have`.
async fn catch_up(
    topic: GossipTopic,
    have: &[Record],
    a: (PeerId, Multiaddr),
    config: &sync::Config,
) -> Result<Outcome, sync::SyncError> {
    let mut b = swarm(config);
    b.dial(a.1).expect("dial");
    tokio::time::timeout(WAIT, async {
        loop {
            if let SwarmEvent::ConnectionEstablished { peer_id, .. } = b.select_next_some().await
                && peer_id == a.0
            {
                return;
            }
        }
    })
    .await
    .expect("B connects to A");

    let set: SyncSet = have.iter().map(item_of).collect();
    let (mut state, mut request) = CatchUp::new(topic, &set, config)?;
    let mut outcome = Outcome {
        records: Vec::new(),
        summary: Summary::default(),
        wire_bytes: 0,
        requests: 0,
    };
    loop {
        outcome.wire_bytes += request_len(&request).await;
        outcome.requests += 1;
        let id = b.behaviour_mut().send_request(&a.0, request);
        let response = tokio::time::timeout(WAIT, async {
            loop {
                match b.select_next_some().await {
                    SwarmEvent::Behaviour(request_response::Event::Message {
                        message:
                            Message::Response {
                                request_id,
                                response,
                            },
                        ..
                    }) if request_id == id => return response,
                    SwarmEvent::Behaviour(request_response::Event::OutboundFailure {
                        request_id,
                        error,
                        ..
                    }) if request_id == id => panic!("request failed: {error}"),
                    _ => {}
                }
            }
        })
        .await
        .expect("A answers");
        outcome.wire_bytes += response_len(&response).await;
        let progress = state.handle(response)?;
        outcome.records.extend(progress.records);
        match progress.next {
            Next::Send(next) => request = next,
            Next::Done(summary) => {
                outcome.summary = summary;
                return Ok(outcome);
            }
        }
    }
}

/// The codec [`sync::behaviour`] uses, to count the bytes of each message.
fn codec() -> request_response::cbor::codec::Codec<Request, Response> {
    Default::default()
}

async fn request_len(request: &Request) -> usize {
    let mut buf = Cursor::new(Vec::new());
    codec()
        .write_request(&sync::PROTOCOL, &mut buf, request.clone())
        .await
        .expect("encode");
    buf.into_inner().len()
}

async fn response_len(response: &Response) -> usize {
    let mut buf = Cursor::new(Vec::new());
    codec()
        .write_response(&sync::PROTOCOL, &mut buf, response.clone())
        .await
        .expect("encode");
    buf.into_inner().len()
}

#[tokio::test]
async fn two_nodes_catch_up_missing_records() {
    let (topic, records) = feed();
    assert_eq!(records.len(), 1_000);
    // B lacks every tenth version: posts, edits, and some edits together with their post.
    let (lack, have): (Vec<_>, Vec<_>) = records.iter().enumerate().partition(|(i, _)| i % 10 == 0);
    let have: Vec<Record> = have.into_iter().map(|(_, r)| r.clone()).collect();
    let lack: Vec<Record> = lack.into_iter().map(|(_, r)| r.clone()).collect();
    assert_eq!((have.len(), lack.len()), (900, 100));

    let config = sync::Config::default();
    let a = serve(MemStore::new(topic, &records), config.clone()).await;
    let out = catch_up(topic, &have, a, &config).await.unwrap();

    // Exactly the missing versions, each verified again from its bytes, in an order B can put.
    let want: HashSet<Cid> = lack.iter().map(Record::cid).collect();
    let got: HashSet<Cid> = out.records.iter().map(Record::cid).collect();
    assert_eq!(out.records.len(), 100);
    assert_eq!(got, want);
    let mut stored: HashSet<Cid> = have.iter().map(Record::cid).collect();
    for r in &out.records {
        assert_eq!(Record::decode(r.bytes()).unwrap().cid(), r.cid());
        if let Some(prev) = r.envelope().prev {
            assert!(stored.contains(&prev), "{} came before {prev}", r.cid());
        }
        stored.insert(r.cid());
    }
    let s = &out.summary;
    assert_eq!((s.needed, s.received), (100, 100));
    assert!(s.missing.is_empty() && s.have.is_empty());

    let record_bytes: usize = lack.iter().map(|r| r.bytes().len()).sum();
    let all_bytes: usize = records.iter().map(|r| r.bytes().len()).sum();
    println!(
        "catch-up of 100 of 1,000 versions: {} requests, {} rounds; {} bytes on the wire \
         (reconcile {} + {}) for {record_bytes} bytes of missing records ({:.2}x; the whole \
         feed is {all_bytes} bytes)",
        out.requests,
        s.rounds,
        out.wire_bytes,
        s.reconcile_bytes_sent,
        s.reconcile_bytes_received,
        out.wire_bytes as f64 / record_bytes as f64,
    );
    assert!(out.wire_bytes < all_bytes / 3);
}

#[tokio::test]
async fn two_nodes_in_sync_exchange_one_round() {
    let (topic, records) = feed();
    let config = sync::Config::default();
    let a = serve(MemStore::new(topic, &records), config.clone()).await;
    let out = catch_up(topic, &records, a, &config).await.unwrap();
    assert!(out.records.is_empty());
    assert_eq!((out.summary.rounds, out.requests), (1, 1));
    assert!(out.wire_bytes < 1_000, "{} bytes", out.wire_bytes);
}

#[tokio::test]
async fn two_nodes_topic_not_kept_is_refused() {
    let (topic, records) = feed();
    let config = sync::Config::default();
    let a = serve(MemStore::default(), config.clone()).await;
    let err = catch_up(topic, &records[..10], a, &config)
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(err, sync::SyncError::Remote(ref m) if m.contains("not kept")),
        "{err}"
    );
}

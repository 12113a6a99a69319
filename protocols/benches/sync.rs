//! Catch-up sync between two libp2p swarms on 127.0.0.1 (TCP, noise, yamux): how fast a node
//! gets the versions it misses, and how many bytes cross the wire for them.
//!
//! `cargo bench -p mnode-protocols --bench sync` prints a table. Time runs from the first
//! request to the last response, with every record decoded and verified (signature and CID)
//! on arrival; storing them is the node's business and not counted. Wire bytes are the CBOR
//! messages both ways (without noise and yamux framing).

use std::{
    collections::HashMap,
    time::{Duration, Instant},
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
    sync::{self, CatchUp, Next, Request, Response, Store, SyncSet, item_of},
};

const WAIT: Duration = Duration::from_secs(120);

#[derive(Default)]
struct MemStore {
    sets: HashMap<GossipTopic, SyncSet>,
    blocks: HashMap<Cid, Vec<u8>>,
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

/// `n` posts by one author, a second apart.
fn feed(n: u64) -> (GossipTopic, Vec<Record>) {
    let key = Keypair::derive(12, "sync-bench");
    let base = 1_732_400_000_000;
    let records = (0..n)
        .map(|i| {
            let post = Post {
                text: format!("post {i}: a few lines about what I listened to today, and why"),
                tags: vec!["music/jazz".into(), "listening".into()],
                ..Post::default()
            };
            Record::create(&post)
                .expect("post")
                .at(base + i * 1000)
                .sign(&key)
                .expect("sign")
        })
        .collect();
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

async fn start_server(store: MemStore, config: sync::Config) -> (PeerId, Multiaddr) {
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
    .expect("listening");
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
                let _ = a.behaviour_mut().send_response(channel, response);
            }
        }
    });
    (peer, addr)
}

struct Row {
    missing: usize,
    received: usize,
    requests: usize,
    rounds: u32,
    elapsed: Duration,
    wire: usize,
    record_bytes: usize,
}

async fn run(topic: GossipTopic, all: &[Record], have: &[Record]) -> Row {
    let config = sync::Config::default();
    let mut store = MemStore::default();
    store
        .sets
        .insert(topic, all.iter().map(item_of).collect::<SyncSet>());
    store.blocks = all.iter().map(|r| (r.cid(), r.bytes().to_vec())).collect();
    let (peer, addr) = start_server(store, config.clone()).await;

    let mut b = swarm(&config);
    b.dial(addr).expect("dial");
    tokio::time::timeout(WAIT, async {
        loop {
            if let SwarmEvent::ConnectionEstablished { .. } = b.select_next_some().await {
                return;
            }
        }
    })
    .await
    .expect("connected");

    let set: SyncSet = have.iter().map(item_of).collect();
    let mut messages: Vec<(Request, Response)> = Vec::new();
    let mut received = 0;
    let started = Instant::now();
    let (mut state, mut request) = CatchUp::new(topic, &set, &config).expect("start");
    let summary = loop {
        let id = b.behaviour_mut().send_request(&peer, request.clone());
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
        .expect("answer");
        messages.push((request, response.clone()));
        let progress = state.handle(response).expect("catch-up");
        received += progress.records.len();
        match progress.next {
            Next::Send(next) => request = next,
            Next::Done(summary) => break summary,
        }
    };
    let elapsed = started.elapsed();

    let mut codec = request_response::cbor::codec::Codec::<Request, Response>::default();
    let mut wire = 0;
    for (request, response) in messages.iter().cloned() {
        let mut buf = Cursor::new(Vec::new());
        codec
            .write_request(&sync::PROTOCOL, &mut buf, request)
            .await
            .expect("encode");
        codec
            .write_response(&sync::PROTOCOL, &mut buf, response)
            .await
            .expect("encode");
        wire += buf.into_inner().len();
    }
    let have: std::collections::HashSet<Cid> = have.iter().map(Record::cid).collect();
    let record_bytes = all
        .iter()
        .filter(|r| !have.contains(&r.cid()))
        .map(|r| r.bytes().len())
        .sum();
    Row {
        missing: all.len() - have.len(),
        received,
        requests: messages.len(),
        rounds: summary.rounds,
        elapsed,
        wire,
        record_bytes,
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let (topic, all) = feed(20_000);
    let half = &all[..10_000];
    let every_other: Vec<Record> = all.iter().step_by(2).cloned().collect();
    let most: Vec<Record> = half
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 100 != 7)
        .map(|(_, r)| r.clone())
        .collect();
    let scenarios: [(&str, &[Record], &[Record]); 5] = [
        ("offline: newest 10,000 of 20,000", &all, half),
        ("spread: every other of 20,000", &all, &every_other),
        ("new follower: all of 10,000", half, &[]),
        ("offline: newest 100 of 10,000", half, &half[..9_900]),
        ("spread: 100 of 10,000", half, &most),
    ];
    println!(
        "| scenario | missing | received | requests | rounds | time (ms) | records/s | wire bytes | missing record bytes | wire / records |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, server, client) in scenarios {
        let row = run(topic, server, client).await;
        assert_eq!(row.received, row.missing, "{name}");
        println!(
            "| {name} | {} | {} | {} | {} | {:.0} | {:.0} | {} | {} | {:.3} |",
            row.missing,
            row.received,
            row.requests,
            row.rounds,
            row.elapsed.as_secs_f64() * 1e3,
            row.received as f64 / row.elapsed.as_secs_f64(),
            row.wire,
            row.record_bytes,
            row.wire as f64 / row.record_bytes as f64,
        );
    }
}

//! Bitswap between real libp2p nodes on 127.0.0.1: fetching, "don't have", a peer that sends
//! wrong bytes, a peer waiting for a block that arrives later, and an oversized message.

mod bitswap_support;

use std::time::Duration;

use anyhow::Result;
use bitswap_support::{Node, STEP, Swarm, example_blocks, protocol, within};
use bytes::Bytes;
use futures::{AsyncWriteExt as _, StreamExt as _};
use mnode_dag::cids;
use mnode_protocols::bitswap::{
    Config, FetchError, MAX_MESSAGE_SIZE, Misbehaviour,
    protocol::{
        Block, BlockPresence, Message, Prefix, Presence, WantType, WantlistEntry, read_message,
        write_message,
    },
};

async fn two_nodes() -> Result<(Node, Node)> {
    let a = Node::start(1).await?;
    let b = Node::start(2).await?;
    b.swarm.connect(a.peer(), a.addr()).await?;
    a.swarm.wait_connected(b.peer()).await?;
    Ok((a, b))
}

#[tokio::test]
async fn two_nodes_fetch_block() -> Result<()> {
    let (a, b) = two_nodes().await?;
    let blocks = example_blocks(7, 3);
    assert!(blocks.len() >= 3);
    // Records (dag-cbor, sha2-256) and files (raw, blake3) alike.
    assert!(blocks.iter().any(|(c, _)| c.codec() == cids::DAG_CBOR));
    assert!(blocks.iter().any(|(c, _)| c.hash().code() == cids::BLAKE3));
    for (cid, data) in &blocks {
        a.blocks.insert(*cid, data.clone());
    }
    for (cid, data) in &blocks {
        let got = b.bitswap.fetch(*cid, vec![a.peer()], STEP).await?;
        assert_eq!(&got, data, "{cid}");
        cids::verify_block(cid, &got)?;
    }
    // With no peers named, every connected peer is asked.
    let (cid, data) = &blocks[0];
    assert_eq!(&b.bitswap.fetch(*cid, vec![], STEP).await?, data);
    // Several fetches of the same block at once share one want.
    let (x, y) = tokio::join!(
        b.bitswap.fetch(blocks[1].0, vec![a.peer()], STEP),
        b.bitswap.fetch(blocks[1].0, vec![a.peer()], STEP)
    );
    assert_eq!(x?, blocks[1].1);
    assert_eq!(y?, blocks[1].1);
    Ok(())
}

/// A burst of fetches (one want message each) and their answers overflow a send queue of two
/// messages on both sides; the messages beyond it wait and go as the queue drains, so every
/// fetch succeeds (they used to be dropped, and the fetches timed out).
#[tokio::test]
async fn two_nodes_a_burst_beyond_the_send_queue_loses_nothing() -> Result<()> {
    let config = Config {
        send_queue: 2,
        ..Config::default()
    };
    let a = Node::start_with(1, config.clone()).await?;
    let b = Node::start_with(2, config).await?;
    b.swarm.connect(a.peer(), a.addr()).await?;
    a.swarm.wait_connected(b.peer()).await?;
    let blocks = example_blocks(11, 200);
    for (cid, data) in &blocks {
        a.blocks.insert(*cid, data.clone());
    }
    let fetches = blocks
        .iter()
        .map(|(cid, _)| b.bitswap.fetch(*cid, vec![a.peer()], STEP));
    let got = within("200 fetches at once", futures::future::join_all(fetches)).await?;
    for ((cid, data), got) in blocks.iter().zip(got) {
        assert_eq!(&got?, data, "{cid}");
    }
    Ok(())
}

#[tokio::test]
async fn two_nodes_dont_have() -> Result<()> {
    let (a, b) = two_nodes().await?;
    let missing = cids::record_cid(b"\xa1\x61x\x01");
    // The answer is an explicit "don't have", so the fetch ends well before its timeout.
    let started = tokio::time::Instant::now();
    let err = b
        .bitswap
        .fetch(missing, vec![a.peer()], Duration::from_secs(60))
        .await
        .unwrap_err();
    assert_eq!(err, FetchError::NotFound(missing));
    assert!(started.elapsed() < STEP);

    // A fetch with a short timeout from a peer that never answers times out.
    let silent = Swarm::start(3, |_, _| {}).await?;
    b.swarm.connect(silent.peer, silent.addr.clone()).await?;
    let err = b
        .bitswap
        .fetch(missing, vec![silent.peer], Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::Timeout(_) | FetchError::Unreachable(_)),
        "{err}"
    );
    Ok(())
}

/// A peer that answers every want-block with other bytes under the wanted CID's prefix.
async fn start_liar(seed: u8) -> Result<Swarm> {
    let liar = Swarm::start(seed, |_, _| {}).await?;
    let mut control = liar.control.clone();
    let mut incoming = control.accept(protocol())?;
    tokio::spawn(async move {
        while let Some((peer, mut stream)) = incoming.next().await {
            let mut control = control.clone();
            tokio::spawn(async move {
                while let Ok(Some(frame)) = read_message(&mut stream, MAX_MESSAGE_SIZE).await {
                    let Ok(msg) = Message::decode(frame) else {
                        return;
                    };
                    let blocks: Vec<Block> = msg
                        .wantlist
                        .iter()
                        .filter(|e| !e.cancel && e.want_type == WantType::Block)
                        .map(|e| Block {
                            prefix: Prefix::of(&e.cid),
                            data: Bytes::from_static(b"\xa1\x61x\x66not it"),
                        })
                        .collect();
                    if blocks.is_empty() {
                        continue;
                    }
                    let reply = Message {
                        blocks,
                        ..Message::default()
                    };
                    if let Ok(mut out) = control.open_stream(peer, protocol()).await {
                        let _ = write_message(&mut out, &reply.encode()).await;
                        let _ = out.close().await;
                    }
                }
            });
        }
    });
    Ok(liar)
}

/// How a peer's inbound stream ended.
#[derive(Debug, PartialEq, Eq)]
enum StreamEnd {
    /// The sender closed it.
    Closed,
    /// The peer gave up on it after it stayed idle, as Helia does (dropping it resets it).
    Aborted,
}

/// A peer that, like Helia, reads each inbound stream until it ends or stays idle for `idle`,
/// reports how it ended, and answers every want with DontHave on a new stream.
async fn start_impatient(
    seed: u8,
    idle: Duration,
) -> Result<(Swarm, tokio::sync::mpsc::Receiver<StreamEnd>)> {
    let peer = Swarm::start(seed, |_, _| {}).await?;
    let mut control = peer.control.clone();
    let mut incoming = control.accept(protocol())?;
    let (ends_tx, ends) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        while let Some((from, mut stream)) = incoming.next().await {
            let mut control = control.clone();
            let ends_tx = ends_tx.clone();
            tokio::spawn(async move {
                let end = loop {
                    let frame = match tokio::time::timeout(
                        idle,
                        read_message(&mut stream, MAX_MESSAGE_SIZE),
                    )
                    .await
                    {
                        Err(_) => break StreamEnd::Aborted,
                        Ok(Ok(Some(frame))) => frame,
                        Ok(_) => break StreamEnd::Closed,
                    };
                    let Ok(msg) = Message::decode(frame) else {
                        break StreamEnd::Aborted;
                    };
                    let presences: Vec<BlockPresence> = msg
                        .wantlist
                        .iter()
                        .filter(|e| !e.cancel)
                        .map(|e| BlockPresence {
                            cid: e.cid,
                            presence: Presence::DontHave,
                        })
                        .collect();
                    if presences.is_empty() {
                        continue;
                    }
                    let reply = Message {
                        presences,
                        ..Message::default()
                    };
                    if let Ok(mut out) = control.open_stream(from, protocol()).await {
                        let _ = write_message(&mut out, &reply.encode()).await;
                        let _ = out.close().await;
                    }
                };
                drop(stream);
                let _ = ends_tx.send(end).await;
            });
        }
    });
    Ok((peer, ends))
}

#[tokio::test]
async fn two_nodes_idle_streams_are_closed_before_the_peer_gives_up() -> Result<()> {
    let config = Config {
        stream_idle_timeout: Duration::from_millis(100),
        ..Config::default()
    };
    let b = Node::start_with(2, config).await?;
    let (peer, mut ends) = start_impatient(7, Duration::from_secs(5)).await?;
    b.swarm.connect(peer.peer, peer.addr.clone()).await?;
    for n in 0..3u8 {
        let cid = cids::record_cid(&[0xa1, 0x61, b'r', n]);
        let err = b
            .bitswap
            .fetch(cid, vec![peer.peer], STEP)
            .await
            .unwrap_err();
        assert_eq!(err, FetchError::NotFound(cid), "fetch {n}");
        // The want and its cancel went out on one stream, which b closes once idle; the next
        // fetch opens a new one.
        let end = within("b to close its idle stream", ends.recv()).await?;
        assert_eq!(end, Some(StreamEnd::Closed), "fetch {n}");
    }
    Ok(())
}

#[tokio::test]
async fn two_nodes_wrong_block_is_rejected() -> Result<()> {
    let b = Node::start(2).await?;
    let liar = start_liar(4).await?;
    b.swarm.connect(liar.peer, liar.addr.clone()).await?;
    let mut reports = b.bitswap.misbehaviour();

    let (cid, _) = example_blocks(9, 1)[0].clone();
    let err = b
        .bitswap
        .fetch(cid, vec![liar.peer], STEP)
        .await
        .unwrap_err();
    assert_eq!(err, FetchError::HashMismatch(cid));
    let report = within("a misbehaviour report", reports.recv()).await??;
    assert_eq!(report.peer, liar.peer);
    assert!(
        matches!(report.reason, Misbehaviour::UnwantedBlock(got) if got != cid),
        "{report:?}"
    );

    // With an honest peer among the candidates, the real block still arrives.
    let a = Node::start(1).await?;
    let (cid, data) = example_blocks(9, 2)[1].clone();
    a.blocks.insert(cid, data.clone());
    b.swarm.connect(a.peer(), a.addr()).await?;
    let got = b
        .bitswap
        .fetch(cid, vec![liar.peer, a.peer()], STEP)
        .await?;
    assert_eq!(got, data);
    Ok(())
}

#[tokio::test]
async fn two_nodes_block_added_reaches_a_waiting_peer() -> Result<()> {
    let a = Node::start(1).await?;
    let raw = Swarm::start(5, |_, _| {}).await?;
    let mut control = raw.control.clone();
    let mut incoming = control.accept(protocol())?;
    raw.connect(a.peer(), a.addr()).await?;

    let (cid, data) = example_blocks(11, 1)[0].clone();
    // A want-block without send-dont-have: no answer until the block exists.
    let want = Message {
        wantlist: vec![WantlistEntry {
            send_dont_have: false,
            ..WantlistEntry::want_block(cid)
        }],
        ..Message::default()
    };
    let mut out = within("a stream to a", control.open_stream(a.peer(), protocol())).await??;
    write_message(&mut out, &want.encode()).await?;

    // Wait until a has looked the want up (a want-have on the same stream is answered after
    // it, in order), then add the block.
    let probe = Message {
        wantlist: vec![WantlistEntry::want_have(cids::record_cid(b"\xa0"))],
        ..Message::default()
    };
    write_message(&mut out, &probe.encode()).await?;
    let (_, mut stream) = within("a's answer stream", incoming.next())
        .await?
        .ok_or_else(|| anyhow::anyhow!("no stream"))?;
    let first = within(
        "the probe's answer",
        read_message(&mut stream, MAX_MESSAGE_SIZE),
    )
    .await??
    .ok_or_else(|| anyhow::anyhow!("stream ended"))?;
    let first = Message::decode(first)?;
    assert!(first.blocks.is_empty(), "a does not have the block yet");
    assert_eq!(first.presences.len(), 1);

    a.blocks.insert(cid, data.clone());
    a.bitswap.block_added(cid)?;
    let next = within("the block", read_message(&mut stream, MAX_MESSAGE_SIZE))
        .await??
        .ok_or_else(|| anyhow::anyhow!("stream ended"))?;
    let next = Message::decode(next)?;
    assert_eq!(next.blocks.len(), 1);
    assert_eq!(next.blocks[0].cid()?, cid);
    assert_eq!(next.blocks[0].data, data);
    Ok(())
}

#[tokio::test]
async fn two_nodes_oversized_message_drops_the_stream() -> Result<()> {
    let a = Node::start(1).await?;
    let raw = Swarm::start(6, |_, _| {}).await?;
    let mut control = raw.control.clone();
    raw.connect(a.peer(), a.addr()).await?;
    let mut reports = a.bitswap.misbehaviour();

    let mut out = within("a stream to a", control.open_stream(a.peer(), protocol())).await??;
    let size = MAX_MESSAGE_SIZE + 1;
    let mut prefix = unsigned_varint::encode::usize_buffer();
    out.write_all(unsigned_varint::encode::usize(size, &mut prefix))
        .await?;
    out.write_all(&[0u8; 1024]).await?;
    out.flush().await?;

    let report = within("a misbehaviour report", reports.recv()).await??;
    assert_eq!(report.peer, raw.peer);
    assert_eq!(report.reason, Misbehaviour::Oversized { size: size as u64 });
    // a dropped the stream: writing the rest eventually fails.
    let chunk = vec![0u8; 64 * 1024];
    let failed = within("the stream to be reset", async {
        for _ in 0..(2 * MAX_MESSAGE_SIZE / chunk.len()) {
            if out.write_all(&chunk).await.is_err() || out.flush().await.is_err() {
                return true;
            }
        }
        false
    })
    .await?;
    assert!(failed, "a kept reading an oversized message");
    Ok(())
}

#[tokio::test]
async fn two_nodes_shutdown_ends_pending_fetches() -> Result<()> {
    let b = Node::start(2).await?;
    // A peer that accepts Bitswap streams and never answers.
    let mute = Swarm::start(8, |_, _| {}).await?;
    let mut control = mute.control.clone();
    let mut incoming = control.accept(protocol())?;
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Some((_, stream)) = incoming.next().await {
            held.push(stream);
        }
    });
    b.swarm.connect(mute.peer, mute.addr.clone()).await?;

    let cid = cids::record_cid(b"\xa1\x61s\x00");
    // join! polls the fetch first, so its request is queued before the shutdown.
    let (fetched, ()) = tokio::join!(
        b.bitswap.fetch(cid, vec![mute.peer], STEP),
        b.bitswap.shutdown()
    );
    assert_eq!(fetched.unwrap_err(), FetchError::Stopped);
    assert_eq!(
        b.bitswap
            .fetch(cid, vec![mute.peer], STEP)
            .await
            .unwrap_err(),
        FetchError::Stopped
    );
    assert!(b.bitswap.block_added(cid).is_err());
    Ok(())
}

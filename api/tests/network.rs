//! The node's network over HTTP, with the typed client on a real listener: the node event
//! stream, bans, and traffic counters.

mod support;

use std::time::Duration;

use futures::StreamExt as _;
use mnode_api::client::{Client, ClientError};
use mnode_node::node::NodeEvent;
use support::{TOKEN, TestApi, setup};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

/// Serves `api`'s router on 127.0.0.1; returns its base URL.
async fn serve(api: &TestApi, cancel: &CancellationToken) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(mnode_api::serve(
        listener,
        api.router.clone(),
        cancel.clone(),
    ));
    url
}

fn tcp_addr(api: &TestApi, addrs: &serde_json::Value) -> String {
    let addr = addrs
        .as_array()
        .expect("addrs")
        .iter()
        .filter_map(|a| a.as_str())
        .find(|a| a.contains("/tcp/"))
        .expect("a TCP address");
    assert!(addr.contains(&api.node.handle().peer_id().to_string()));
    addr.to_owned()
}

/// Waits for the first event `pick` accepts.
async fn next_matching<S, T>(events: &mut S, mut pick: impl FnMut(&NodeEvent) -> Option<T>) -> T
where
    S: futures::Stream<Item = Result<NodeEvent, ClientError>> + Unpin,
{
    tokio::time::timeout(WAIT, async {
        loop {
            let ev = events
                .next()
                .await
                .expect("the stream stays open")
                .expect("an event");
            if let Some(t) = pick(&ev) {
                return t;
            }
        }
    })
    .await
    .expect("the event within the wait")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_events_stream_and_bans_over_http() {
    let a = setup().await;
    let b = setup().await;
    let cancel = CancellationToken::new();
    let ca = Client::new(serve(&a, &cancel).await, TOKEN);
    let cb = Client::new(serve(&b, &cancel).await, TOKEN);
    let (pa, pb) = (a.node.handle().peer_id(), b.node.handle().peer_id());

    // Admin only, like every network route.
    let anon = Client::new(serve(&a, &cancel).await, "wrong");
    assert!(matches!(anon.node_events().await, Err(ClientError::Api(e)) if e.status == 401));
    assert!(
        matches!(anon.ban(&pb.to_string(), true).await, Err(ClientError::Api(e)) if e.status == 401)
    );

    let mut events = Box::pin(ca.node_events().await.expect("event stream"));
    let b_addr = tcp_addr(&b, &cb.node().await.expect("node b")["addrs"]);
    ca.connect(&b_addr).await.expect("connect");
    next_matching(&mut events, |e| {
        matches!(e, NodeEvent::PeerConnected(p) if *p == pb).then_some(())
    })
    .await;
    // Traffic counts what moved over the connection (identify, gossip setup) as it moves.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let traffic = ca.node().await.expect("node a")["traffic"].clone();
        let (sent, received) = (traffic["sent"].as_u64(), traffic["received"].as_u64());
        if sent > Some(0) && received > Some(0) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{traffic}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A bad peer id is refused and changes nothing.
    match ca.ban("not-a-peer", true).await {
        Err(ClientError::Api(e)) => assert_eq!(e.status, 400, "{e:?}"),
        other => panic!("expected a 400, got {other:?}"),
    }
    assert_eq!(
        ca.peers().await.expect("peers")["peers"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // A ban disconnects the peer and refuses it: B cannot dial A while it holds.
    let answer = ca.ban(&pb.to_string(), true).await.expect("ban");
    assert_eq!(answer["banned"], pb.to_string());
    next_matching(&mut events, |e| {
        matches!(e, NodeEvent::PeerDisconnected(p) if *p == pb).then_some(())
    })
    .await;
    let a_addr = tcp_addr(&a, &ca.node().await.expect("node a")["addrs"]);
    // (B's dial may complete its handshake before A closes it: what counts is A's side.)
    let _ = cb.connect(&a_addr).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let peers = ca.peers().await.expect("peers");
    assert!(
        !peers.to_string().contains(&pb.to_string()),
        "a banned peer got in: {peers}"
    );

    // Lifted, B gets in again.
    let answer = ca.ban(&pb.to_string(), false).await.expect("unban");
    assert_eq!(answer["unbanned"], pb.to_string());
    let mut tries = 0;
    while let Err(e) = cb.connect(&a_addr).await {
        tries += 1;
        assert!(tries < 50, "B cannot connect after the unban: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    next_matching(&mut events, |e| {
        matches!(e, NodeEvent::PeerConnected(p) if *p == pb).then_some(())
    })
    .await;
    assert!(
        ca.peers()
            .await
            .expect("peers")
            .to_string()
            .contains(&pb.to_string())
    );
    assert_ne!(pa, pb);

    cancel.cancel();
    a.node.shutdown().await.expect("shutdown a");
    b.node.shutdown().await.expect("shutdown b");
}

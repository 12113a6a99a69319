//! One entry point per decoder of outside input (see the crate's docs).

use mnode_dag::{Record, car::CarReader, cbor, json, query::Query};
use mnode_protocols::{
    GossipTopic,
    bitswap::protocol::Message as BitswapMessage,
    gossip,
    sync::{self, SyncSet},
};

/// A fuzz entry point: bytes in, a panic only for a bug.
pub type Target = fn(&[u8]);

/// Every entry point by name: the fuzz target names, and the folders of their corpora.
pub const TARGETS: &[(&str, Target)] = &[
    ("dag_cbor", dag_cbor),
    ("record", record),
    ("dag_json", dag_json),
    ("car", car),
    ("query", query),
    ("bitswap", bitswap),
    ("gossip", gossip_message),
    ("sync_reconcile", sync_reconcile),
];

/// Strict DAG-CBOR: whatever decodes is canonical, so it re-encodes to the same bytes.
pub fn dag_cbor(data: &[u8]) {
    if let Ok(ipld) = cbor::decode_ipld(data) {
        let again = cbor::encode(&ipld).expect("decoded IPLD encodes");
        assert_eq!(again, data, "accepted DAG-CBOR that is not canonical");
    }
}

/// A signed record: decoding verifies encoding, schema and signature; an accepted record's
/// bytes are the input and it decodes again to itself.
pub fn record(data: &[u8]) {
    if let Ok(r) = Record::decode(data) {
        assert_eq!(r.bytes(), data);
        let again = Record::decode(r.bytes()).expect("an accepted record decodes again");
        assert_eq!(again.cid(), r.cid());
    }
}

/// DAG-JSON text: what parses prints and parses back to the same IPLD.
pub fn dag_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ipld) = json::from_dag_json(text)
        && let Ok(printed) = json::to_dag_json(&ipld)
    {
        let back = json::from_dag_json(&printed).expect("printed DAG-JSON parses");
        assert_eq!(back, ipld);
    }
}

/// A CAR v1 file, read block by block to its end or its first error, as an import does.
pub fn car(data: &[u8]) {
    let Ok(mut reader) = CarReader::new(data) else {
        return;
    };
    let _ = reader.roots();
    while let Ok(Some(_)) = reader.next_block() {}
}

/// A widget query (pages carry them; anyone can publish a page).
pub fn query(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Query::parse(text);
    }
}

/// A Bitswap message from a peer; one that decodes encodes again and decodes to itself.
pub fn bitswap(data: &[u8]) {
    if let Ok(msg) = BitswapMessage::decode(bytes::Bytes::copy_from_slice(data)) {
        let again = BitswapMessage::decode(bytes::Bytes::from(msg.encode()))
            .expect("an encoded message decodes");
        assert_eq!(again, msg);
    }
}

/// The author of the golden vectors (the seeds): their records arrive on its topic.
const AUTHOR_TOPIC: &str =
    "/mnode/1/author/did:key:z6MkvDWffg6LeuAJsY4aCQx9yzg5ozTJgFmDav57fg5gPJXo";

/// A gossip message on an author's topic, with no records held to check targets against.
pub fn gossip_message(data: &[u8]) {
    let topic: GossipTopic = AUTHOR_TOPIC.parse().expect("a topic");
    let _ = gossip::Message::decode(data, &topic, 1 << 20, |_| None::<Record>);
}

/// A catch-up reconciliation message as a server answers it, against an empty set.
pub fn sync_reconcile(data: &[u8]) {
    let _ = sync::respond(&SyncSet::new([]), data, &sync::Config::default());
}

//! One entry point per decoder of outside input (see the crate's docs).

use futures::{AsyncWriteExt as _, executor::block_on, io::Cursor};
use libp2p::request_response::{Codec as _, cbor::codec::Codec};
use mnode_config::Config;
use mnode_dag::{
    Keypair, Link, Record,
    car::CarReader,
    cbor, cids,
    files::{self, SNIFF_LEN},
    json,
    model::core::{FileData, FileKind},
    query::Query,
};
use mnode_protocols::{
    GossipTopic,
    bitswap::protocol::Message as BitswapMessage,
    blobs, gossip,
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
    ("blob_exchange", blob_exchange),
    ("upload", upload),
    ("config", config),
    ("dag_pb", dag_pb),
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

/// The codec the node runs on `/mnode/blobs/1`.
type BlobCodec = Codec<blobs::Request, blobs::Response>;

/// A blob-address exchange message (`/mnode/blobs/1`) read with the codec the node runs, once
/// as a request and once as an answer: what decodes is written and read back to itself.
pub fn blob_exchange(data: &[u8]) {
    let mut codec = BlobCodec::default();
    block_on(async {
        round_trip(
            &mut codec,
            data,
            "request",
            async |c, io| c.read_request(&blobs::PROTOCOL, io).await,
            async |c, io, m| c.write_request(&blobs::PROTOCOL, io, m).await,
        )
        .await;
        round_trip(
            &mut codec,
            data,
            "answer",
            async |c, io| c.read_response(&blobs::PROTOCOL, io).await,
            async |c, io, m| c.write_response(&blobs::PROTOCOL, io, m).await,
        )
        .await;
    });
}

/// One half of [`blob_exchange`]: if `data` reads as a `what`, it writes and reads back to
/// itself.
async fn round_trip<M: Clone + PartialEq + std::fmt::Debug>(
    codec: &mut BlobCodec,
    data: &[u8],
    what: &str,
    read: impl AsyncFn(&mut BlobCodec, &mut Cursor<Vec<u8>>) -> std::io::Result<M>,
    write: impl AsyncFn(&mut BlobCodec, &mut Cursor<Vec<u8>>, M) -> std::io::Result<()>,
) {
    let Ok(message) = read(codec, &mut Cursor::new(data.to_vec())).await else {
        return;
    };
    let mut out = Cursor::new(Vec::new());
    write(codec, &mut out, message.clone())
        .await
        .unwrap_or_else(|e| panic!("a decoded {what} does not encode: {e}"));
    out.close().await.expect("close");
    let again = read(codec, &mut Cursor::new(out.into_inner()))
        .await
        .unwrap_or_else(|e| panic!("an encoded {what} does not decode: {e}"));
    assert_eq!(again, message);
}

/// A multipart upload as `POST /api/v1/files` reads it (with `multer`, which axum's
/// `Multipart` runs): the input's first line is the request's `Content-Type`, the rest its
/// body. Every `file` part becomes a file record the way the node makes one, from the part's
/// file name, its declared type and its bytes; the record must be valid and its name safe, so
/// that nothing a client sends makes the node sign a bad record or keep a path.
pub fn upload(data: &[u8]) {
    let Some(split) = data.iter().position(|b| *b == b'\n') else {
        return;
    };
    let Ok(content_type) = std::str::from_utf8(&data[..split]) else {
        return;
    };
    let Ok(boundary) = multer::parse_boundary(content_type) else {
        return;
    };
    let body = bytes::Bytes::copy_from_slice(&data[split + 1..]);
    let stream = futures::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    block_on(async {
        let mut name = None;
        while let Ok(Some(mut field)) = multipart.next_field().await {
            match field.name() {
                Some("file") => {
                    let part_name = name.take().or_else(|| field.file_name().map(str::to_owned));
                    let declared = field.content_type().map(|m| m.to_string());
                    let mut content = Vec::new();
                    loop {
                        match field.chunk().await {
                            Ok(Some(chunk)) => content.extend_from_slice(&chunk),
                            Ok(None) => break,
                            // A broken part is refused whole, as the handler does.
                            Err(_) => return,
                        }
                    }
                    file_record(&content, part_name.as_deref(), declared.as_deref());
                }
                Some("name") => name = field.text().await.ok(),
                _ => {}
            }
        }
    });
}

/// The record the node signs for an uploaded file (`store_file` in mnode-api).
fn file_record(content: &[u8], name: Option<&str>, declared: Option<&str>) {
    let cid = cids::blob_cid_of(content);
    let name = name
        .and_then(files::clean_name)
        .unwrap_or_else(|| cid.to_string());
    assert!(
        !name.contains(['/', '\\']) && !name.chars().any(char::is_control),
        "a file name keeps a path or a control character: {name:?}"
    );
    assert!(!matches!(name.as_str(), "" | "." | ".."), "{name:?}");
    let head = content.get(..SNIFF_LEN).unwrap_or(content);
    let media_type = files::media_type(head, &name, declared);
    let dims = if FileKind::of_media_type(&media_type) == FileKind::Image {
        files::image_dims(content)
    } else {
        None
    };
    let data = FileData {
        blob: Link(cid),
        name,
        media_type,
        size: content.len() as u64,
        sealed: None,
        unixfs: None,
    };
    let draft = files::file_draft(data.clone(), dims)
        .unwrap_or_else(|e| panic!("an upload made an invalid record ({e}): {data:?}"));
    draft
        .sign(&Keypair::derive(1, "fuzz"))
        .unwrap_or_else(|e| panic!("an upload's record does not sign ({e}): {data:?}"));
}

/// `mnode.yaml`: a file that parses is a config whose printed form (`mnode config show`)
/// parses back to the same config; one that does not gives an error that names the file.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::parse(text, "mnode.yaml") {
        Ok(config) => {
            let printed = config.to_commented_yaml();
            let again = Config::parse(&printed, "printed")
                .unwrap_or_else(|e| panic!("a printed config does not parse: {e}\n{printed}"));
            assert_eq!(again, config);
        }
        Err(e) => assert!(e.to_string().contains("mnode.yaml"), "{e}"),
    }
}

/// A dag-pb node of a UnixFS view (a peer's block, a CAR's): its links, or a clean error.
pub fn dag_pb(data: &[u8]) {
    if let Ok(links) = mnode_dag::unixfs::links(data) {
        for (cid, _) in links {
            assert!(!cid.to_bytes().is_empty());
        }
    }
}

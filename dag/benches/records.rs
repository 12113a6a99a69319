//! Records per second for each step of making and checking a typical `social.post`, next to a
//! bare ed25519 sign loop measured in the same run.
//!
//! Run: `cargo bench -p mnode-dag --bench records` (release profile). Prints a markdown table.

#![allow(clippy::unwrap_used)]

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use ed25519_dalek::{Signer as _, SigningKey};
use mnode_dag::{
    Envelope, Keypair, Link, Record, cbor, cids,
    model::social::{Post, ReplyRef},
};

/// Runs `f` in batches for about `budget`, three times, and returns the best rate (ops/s).
fn rate(budget: Duration, mut f: impl FnMut()) -> f64 {
    // Warm up and size a batch to ~10 ms.
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_millis(50) {
        f();
        n += 1;
    }
    let batch = (n / 5).max(1);
    let mut best = 0.0f64;
    for _ in 0..3 {
        let start = Instant::now();
        let mut done = 0u64;
        while start.elapsed() < budget / 3 {
            for _ in 0..batch {
                f();
            }
            done += batch;
        }
        best = best.max(done as f64 / start.elapsed().as_secs_f64());
    }
    best
}

fn typical_post() -> Post {
    let root = Link(cids::record_cid(b"root"));
    let parent = Link(cids::record_cid(b"parent"));
    Post {
        text: "Finished the last mix of the album tonight. Three years of field recordings from \
               the coast, a borrowed upright piano and far too much tape hiss, and I think it \
               finally holds together. Listening party on Friday; the release goes out to \
               everyone who follows the branch first."
            .into(),
        media: vec![Link(cids::record_cid(b"cover image"))],
        reply: Some(ReplyRef { root, parent }),
        tags: vec!["music/ambient".into(), "field-recording".into()],
        branch: Some(Link(cids::record_cid(b"branch"))),
        thread: None,
        language: Some("en".into()),
        doc: None,
    }
}

fn main() {
    let budget = Duration::from_secs_f64(
        std::env::var("MNODE_BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3.0),
    );
    let key = Keypair::derive(1, "bench");
    let post = typical_post();
    let record = Record::create(&post)
        .unwrap()
        .at(1_732_400_000_000)
        .sign(&key)
        .unwrap();
    let bytes = record.bytes().to_vec();
    let envelope: Envelope = record.envelope().clone();
    // The exact bytes a record signature covers: the envelope without `sig`.
    let mut unsigned = mnode_dag::cbor::decode_ipld(&bytes).unwrap();
    if let mnode_dag::Ipld::Map(m) = &mut unsigned {
        m.remove("sig");
    }
    let message = cbor::encode(&unsigned).unwrap();
    let bare = SigningKey::from_bytes(&key.secret_bytes());

    let rows: Vec<(&str, f64)> = vec![
        (
            "bare ed25519 sign (ed25519-dalek, same message)",
            rate(budget, || {
                black_box(bare.sign(black_box(&message)));
            }),
        ),
        (
            "encode (Envelope::to_bytes, the writer signing uses)",
            rate(budget, || {
                black_box(black_box(&envelope).to_bytes().unwrap());
            }),
        ),
        (
            "encode (serde_ipld_dagcbor, same bytes, for comparison)",
            rate(budget, || {
                black_box(cbor::encode(black_box(&envelope)).unwrap());
            }),
        ),
        (
            "decode (strict DAG-CBOR -> envelope)",
            rate(budget, || {
                black_box(cbor::decode::<Envelope>(black_box(&bytes)).unwrap());
            }),
        ),
        (
            "CID (sha2-256)",
            rate(budget, || {
                black_box(cids::record_cid(black_box(&bytes)));
            }),
        ),
        (
            "sign (Keypair::sign)",
            rate(budget, || {
                black_box(key.sign(black_box(&message)));
            }),
        ),
        (
            "verify (signature only)",
            rate(budget, || {
                key.did()
                    .verify(black_box(&message), &envelope.sig)
                    .unwrap();
            }),
        ),
        (
            "decode + verify (Record::decode: strict, sig, rules, schema)",
            rate(budget, || {
                black_box(Record::decode(black_box(&bytes)).unwrap());
            }),
        ),
        (
            "create + sign + encode + CID (Record::create(..).sign)",
            rate(budget, || {
                black_box(
                    Record::create(black_box(&post))
                        .unwrap()
                        .at(1_732_400_000_000)
                        .sign(&key)
                        .unwrap(),
                );
            }),
        ),
    ];

    let sign_rate = rows[0].1;
    println!(
        "typical social.post: {} bytes signed, {} bytes encoded\n",
        message.len(),
        bytes.len()
    );
    println!("| operation | records/s | µs/record | × bare sign |");
    println!("|---|---:|---:|---:|");
    for (name, r) in &rows {
        println!(
            "| {name} | {:.0} | {:.2} | {:.2} |",
            r,
            1e6 / r,
            r / sign_rate
        );
    }
    let full = rows.last().unwrap().1;
    println!(
        "\ncreate+sign+encode+CID = {:.2} × bare sign (target ≥ 0.80): {}",
        full / sign_rate,
        if full / sign_rate >= 0.8 {
            "met"
        } else {
            "NOT met"
        }
    );
}

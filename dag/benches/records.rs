//! Records per second for each step of making and checking a typical `social.post`, next to a
//! bare ed25519 sign loop measured in the same run; and the signature check alone and in
//! batches (`keys::verify_batch`, issue 21), next to ed25519-dalek's `verify_strict` and the
//! torsion check of `R` that keeping it would have cost a batch.
//!
//! Run: `cargo bench -p mnode-dag --bench records` (release profile). Prints a markdown table.

#![allow(clippy::unwrap_used)]

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use mnode_dag::{
    Envelope, Keypair, Link, Record, cbor, cids,
    keys::{SignedMessage, verify_batch},
    model::social::{Post, ReplyRef},
};

/// The bytes a record's signature covers: the envelope without `sig`.
fn signed_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut unsigned = mnode_dag::cbor::decode_ipld(bytes).unwrap();
    if let mnode_dag::Ipld::Map(m) = &mut unsigned {
        m.remove("sig");
    }
    cbor::encode(&unsigned).unwrap()
}

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
    let message = signed_bytes(&bytes);
    let bare = SigningKey::from_bytes(&key.secret_bytes());
    let dalek_key = VerifyingKey::from_bytes(&key.did().public_key()).unwrap();
    let dalek_sig = ed25519_dalek::Signature::from_bytes(&envelope.sig);
    // 512 different posts (a catch-up response's worth) for the batch rows.
    let many: Vec<Record> = (0..512u64)
        .map(|i| {
            Record::create(&Post {
                text: format!("{} ({i})", post.text),
                ..post.clone()
            })
            .unwrap()
            .at(1_732_400_000_000 + i)
            .sign(&key)
            .unwrap()
        })
        .collect();
    let many_blocks: Vec<Vec<u8>> = many.iter().map(|r| r.bytes().to_vec()).collect();
    let many_signed: Vec<(Vec<u8>, [u8; 64])> = many
        .iter()
        .map(|r| (signed_bytes(r.bytes()), r.envelope().sig))
        .collect();
    let items: Vec<SignedMessage<'_>> = many_signed
        .iter()
        .map(|(message, signature)| SignedMessage {
            did: key.did(),
            message,
            signature,
        })
        .collect();
    let batch_rate = |n: usize| {
        let items = &items[..n];
        n as f64
            * rate(budget, || {
                let results = verify_batch(black_box(items));
                assert!(results.iter().all(Result::is_ok));
            })
    };
    let r_point = CompressedEdwardsY(envelope.sig[..32].try_into().unwrap());

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
            "verify (signature only; Did::verify, the rule of issue 21)",
            rate(budget, || {
                key.did()
                    .verify(black_box(&message), &envelope.sig)
                    .unwrap();
            }),
        ),
        (
            "verify_strict (ed25519-dalek, the rule before issue 21, for comparison)",
            rate(budget, || {
                dalek_key
                    .verify_strict(black_box(&message), &dalek_sig)
                    .unwrap();
            }),
        ),
        (
            "verify in batches of 64 (keys::verify_batch)",
            batch_rate(64),
        ),
        (
            "verify in batches of 256 (keys::verify_batch)",
            batch_rate(256),
        ),
        (
            "verify in batches of 512 (keys::verify_batch)",
            batch_rate(512),
        ),
        (
            "R decompress + torsion check (is_torsion_free; what keeping verify_strict would add per signature to a batch)",
            rate(budget, || {
                assert!(black_box(&r_point).decompress().unwrap().is_torsion_free());
            }),
        ),
        (
            "decode + verify (Record::decode: strict, sig, rules, schema)",
            rate(budget, || {
                black_box(Record::decode(black_box(&bytes)).unwrap());
            }),
        ),
        (
            "decode + verify in batches of 512 (Record::decode_batch)",
            512.0
                * rate(budget, || {
                    let results = Record::decode_batch(black_box(many_blocks.clone()));
                    assert!(results.iter().all(Result::is_ok));
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

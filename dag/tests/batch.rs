//! Signatures checked in batches accept exactly what single checks accept (`keys.rs`, "The
//! signature rule"; `docs/decisions.md`, "Signatures checked in batches"), and a bad record in
//! a batch fails alone.

#![allow(clippy::unwrap_used)]

use curve25519_dalek::{
    edwards::{CompressedEdwardsY, EdwardsPoint},
    scalar::Scalar,
};
use ed25519_dalek::{SigningKey, VerifyingKey};
use mnode_dag::{
    Ipld, Keypair, Record, cbor,
    keys::{BadSignature, Did, SignedMessage, verify_batch},
    model::social::Post,
};
use sha2::{Digest as _, Sha512};

/// A point of order 8 (the first of libsodium's small-order list).
fn order_8() -> EdwardsPoint {
    let bytes: [u8; 32] =
        hex::decode("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")
            .unwrap()
            .try_into()
            .unwrap();
    CompressedEdwardsY(bytes).decompress().unwrap()
}

/// The torsion point of order `order` (1, 2, 4 or 8).
fn torsion(order: u8) -> EdwardsPoint {
    order_8() * Scalar::from(8 / order)
}

fn challenge(r: &[u8; 32], a: &[u8; 32], message: &[u8]) -> Scalar {
    let mut h = Sha512::new();
    h.update(r);
    h.update(a);
    h.update(message);
    Scalar::from_bytes_mod_order_wide(&h.finalize().into())
}

/// A signature by `key` (secret scalar `a`, public bytes `a_bytes`) made by hand: nonce `r`,
/// `t` added to `R`, `extra` added to `s`. With `t` the identity and `extra` zero this is an
/// ordinary signature.
fn forge(
    a: Scalar,
    a_bytes: [u8; 32],
    message: &[u8],
    r: Scalar,
    t: EdwardsPoint,
    extra: Scalar,
) -> [u8; 64] {
    let big_r = (EdwardsPoint::mul_base(&r) + t).compress().to_bytes();
    let k = challenge(&big_r, &a_bytes, message);
    let s = r + k * a + extra;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&big_r);
    sig[32..].copy_from_slice(&s.to_bytes());
    sig
}

fn secret(key: &Keypair) -> Scalar {
    SigningKey::from_bytes(&key.secret_bytes()).to_scalar()
}

fn nonce(i: u64) -> Scalar {
    Scalar::from(0x5eed_0000_0000_u64 + i) * Scalar::from(0x1234_5678_9abc_def1_u64)
}

/// What dalek's `verify_strict` (the rule before batches) says.
fn strict(did: &Did, message: &[u8], sig: &[u8; 64]) -> bool {
    VerifyingKey::from_bytes(&did.public_key())
        .unwrap()
        .verify_strict(message, &ed25519_dalek::Signature::from_bytes(sig))
        .is_ok()
}

/// Both paths' verdicts on `cases`: each alone, all in one batch, and each in a batch with 31
/// good signatures around it.
fn verdicts(cases: &[(Did, Vec<u8>, [u8; 64])]) -> Vec<bool> {
    let filler = Keypair::derive(9, "filler");
    let good: Vec<(Vec<u8>, [u8; 64])> = (0..31)
        .map(|i| {
            let m = format!("good {i}").into_bytes();
            let s = filler.sign(&m);
            (m, s)
        })
        .collect();
    let items: Vec<SignedMessage<'_>> = cases
        .iter()
        .map(|(did, message, signature)| SignedMessage {
            did,
            message,
            signature,
        })
        .collect();
    let alone: Vec<bool> = cases
        .iter()
        .map(|(did, m, s)| did.verify(m, s).is_ok())
        .collect();
    let together: Vec<bool> = verify_batch(&items).iter().map(Result::is_ok).collect();
    assert_eq!(alone, together, "one batch of all cases");
    for (i, item) in items.iter().enumerate() {
        let mut batch: Vec<SignedMessage<'_>> = good
            .iter()
            .map(|(message, signature)| SignedMessage {
                did: filler.did(),
                message,
                signature,
            })
            .collect();
        batch.insert(i % 32, *item);
        let got = verify_batch(&batch);
        for (j, r) in got.iter().enumerate() {
            if j == i % 32 {
                assert_eq!(r.is_ok(), alone[i], "case {i} among good signatures");
            } else {
                assert_eq!(*r, Ok(()), "a good signature next to case {i}");
            }
        }
    }
    alone
}

#[test]
fn a_mixed_order_signature_is_treated_the_same_by_both_paths() {
    let key = Keypair::derive(3, "mixed");
    let did = *key.did();
    let (a, a_bytes) = (secret(&key), did.public_key());
    let mut cases = Vec::new();
    for (i, order) in [2u8, 4, 8, 8, 2, 4, 8, 2].into_iter().enumerate() {
        let m = format!("mixed {i}").into_bytes();
        let sig = forge(
            a,
            a_bytes,
            &m,
            nonce(i as u64),
            torsion(order),
            Scalar::ZERO,
        );
        // A real difference between the equations: verify_strict says no.
        assert!(!strict(&did, &m, &sig));
        cases.push((did, m, sig));
    }
    let accepted = verdicts(&cases);
    // The rule is the cofactored equation: R's torsion component does not matter.
    assert!(accepted.iter().all(|&ok| ok), "{accepted:?}");

    // The same with a wrong `s`: no path accepts it.
    let bad: Vec<_> = (0..8u64)
        .map(|i| {
            let m = format!("mixed and wrong {i}").into_bytes();
            let sig = forge(a, a_bytes, &m, nonce(i), torsion(8), Scalar::ONE);
            (did, m, sig)
        })
        .collect();
    assert!(verdicts(&bad).iter().all(|&ok| !ok));
}

#[test]
fn dalek_batches_alone_would_disagree_with_verify_strict() {
    // Why the rule changed: for a signature whose R has a component of order 2,
    // ed25519-dalek's `verify_batch` passes when its random coefficient is even, while
    // `verify_strict` never does. The batch's coefficients come from its contents, so whoever
    // makes the batch can choose.
    let key = Keypair::derive(3, "mixed");
    let did = *key.did();
    let vk = VerifyingKey::from_bytes(&did.public_key()).unwrap();
    let (mut passed, mut failed) = (0, 0);
    for i in 0..32u64 {
        let m = format!("order two {i}").into_bytes();
        let sig = forge(
            secret(&key),
            did.public_key(),
            &m,
            nonce(i),
            torsion(2),
            Scalar::ZERO,
        );
        assert!(!strict(&did, &m, &sig));
        let dalek = ed25519_dalek::verify_batch(
            &[&m[..]],
            &[ed25519_dalek::Signature::from_bytes(&sig)],
            &[vk],
        );
        if dalek.is_ok() {
            passed += 1;
        } else {
            failed += 1;
        }
        // Under the rule both paths accept it, every time.
        assert_eq!(did.verify(&m, &sig), Ok(()));
        let items = [SignedMessage {
            did: &did,
            message: &m,
            signature: &sig,
        }];
        assert_eq!(verify_batch(&items), vec![Ok(())]);
    }
    assert!(passed > 0 && failed > 0, "passed {passed}, failed {failed}");
}

#[test]
fn the_encoding_rules_hold_on_both_paths() {
    let key = Keypair::derive(4, "rules");
    let did = *key.did();
    let (a, a_bytes) = (secret(&key), did.public_key());
    let m = b"rules".to_vec();
    let good = key.sign(&m);
    let mut cases = vec![(did, m.clone(), good)];

    // s + l: the same point, a non-canonical scalar.
    let mut high_s = good;
    let l =
        hex::decode("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010").unwrap();
    let mut carry = 0u16;
    for (i, b) in l.iter().enumerate() {
        let sum = u16::from(high_s[32 + i]) + u16::from(*b) + carry;
        high_s[32 + i] = sum as u8;
        carry = sum >> 8;
    }
    cases.push((did, m.clone(), high_s));

    // R of small order: R = T, s = k·a, so [s]B − [k]A − R = −T.
    for order in [1u8, 2, 4, 8] {
        let t = torsion(order);
        let r_bytes = t.compress().to_bytes();
        let k = challenge(&r_bytes, &a_bytes, &m);
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&r_bytes);
        sig[32..].copy_from_slice(&(k * a).to_bytes());
        cases.push((did, m.clone(), sig));
    }

    // R written with y + p for y (non-canonical; only possible for y < 19, and no one knows
    // the discrete log of such a point, so this one is refused for its encoding alone).
    let mut small_y = None;
    for y in 2u8..19 {
        let mut bytes = [0u8; 32];
        bytes[0] = y;
        if let Some(p) = CompressedEdwardsY(bytes).decompress()
            && !p.is_small_order()
        {
            small_y = Some(bytes);
            break;
        }
    }
    let y = small_y.expect("some y below 19 is on the curve");
    let mut non_canonical = [0xffu8; 32];
    non_canonical[0] = 0xed + y[0];
    non_canonical[31] = 0x7f;
    let mut sig = good;
    sig[..32].copy_from_slice(&non_canonical);
    cases.push((did, m.clone(), sig));

    // A weak (small-order) key: refused as a key, whatever it signs.
    let weak = Did::from_public_key(&torsion(8).compress().to_bytes()).unwrap();
    cases.push((weak, m.clone(), good));

    // A key with a torsion component (A = aB + T): under the cofactored equation its honest
    // signatures are good whatever k is; verify_strict takes them only when [k]T = 0.
    let mixed_key = EdwardsPoint::mul_base(&a) + torsion(8);
    let mixed_did = Did::from_public_key(&mixed_key.compress().to_bytes()).unwrap();
    for i in 0..4u64 {
        let m = format!("mixed key {i}").into_bytes();
        let sig = forge(
            a,
            mixed_did.public_key(),
            &m,
            nonce(i),
            torsion(1),
            Scalar::ZERO,
        );
        cases.push((mixed_did, m, sig));
    }

    let got = verdicts(&cases);
    let mut want = vec![true, false, false, false, false, false, false, false];
    want.extend([true; 4]);
    assert_eq!(got, want);
}

fn post(i: u64) -> Post {
    Post {
        text: format!("post {i}"),
        ..Post::default()
    }
}

/// The bytes a record's signature covers: the envelope without `sig`.
fn signed_bytes(record: &Record) -> Vec<u8> {
    let mut unsigned = cbor::decode_ipld(record.bytes()).unwrap();
    if let Ipld::Map(m) = &mut unsigned {
        m.remove("sig");
    }
    cbor::encode(&unsigned).unwrap()
}

/// `record`'s bytes with its signature replaced.
fn with_sig(record: &Record, sig: &[u8; 64]) -> Vec<u8> {
    let mut bytes = record.bytes().to_vec();
    let at = bytes
        .windows(64)
        .position(|w| w == record.envelope().sig)
        .unwrap();
    bytes[at..at + 64].copy_from_slice(sig);
    bytes
}

/// What a result says, to compare the two paths.
fn outcome(r: &Result<Record, mnode_dag::record::RecordError>) -> String {
    match r {
        Ok(record) => format!("ok {}", record.cid()),
        Err(e) => format!("err {e}"),
    }
}

#[test]
fn one_bad_record_never_rejects_good_ones() {
    let key = Keypair::derive(5, "author");
    let other = Keypair::derive(6, "other");
    let records: Vec<Record> = (0..40)
        .map(|i| {
            let k = if i % 3 == 0 { &other } else { &key };
            Record::create(&post(i))
                .unwrap()
                .at(1_000 + i)
                .sign(k)
                .unwrap()
        })
        .collect();
    let mut blocks: Vec<Vec<u8>> = records.iter().map(|r| r.bytes().to_vec()).collect();
    // A signature that does not verify.
    let mut tampered = records[7].envelope().sig;
    tampered[40] ^= 1;
    blocks[7] = with_sig(&records[7], &tampered);
    // Not a record at all.
    blocks[20] = b"\xa0".to_vec();
    // A good signature with R of mixed order, and the same with a wrong s.
    let (a, a_bytes) = (secret(&key), key.did().public_key());
    let message = signed_bytes(&records[25]);
    let mixed = forge(a, a_bytes, &message, nonce(1), torsion(8), Scalar::ZERO);
    blocks[25] = with_sig(&records[25], &mixed);
    let message = signed_bytes(&records[26]);
    let wrong = forge(a, a_bytes, &message, nonce(2), torsion(4), Scalar::ONE);
    blocks[26] = with_sig(&records[26], &wrong);

    let one_by_one: Vec<String> = blocks
        .iter()
        .map(|b| outcome(&Record::decode_owned(b.clone())))
        .collect();
    let batched: Vec<String> = Record::decode_batch(blocks.clone())
        .iter()
        .map(outcome)
        .collect();
    assert_eq!(one_by_one, batched);
    for (i, o) in batched.iter().enumerate() {
        let bad = [7, 20, 26].contains(&i);
        assert_eq!(o.starts_with("err"), bad, "block {i}: {o}");
        if !bad && i != 25 {
            assert_eq!(*o, format!("ok {}", records[i].cid()));
        }
    }
    assert!(batched[7].contains("signature does not verify"));
    assert!(batched[26].contains("signature does not verify"));

    // Records read back from a store (decoded as trusted): verify_batch agrees with verify.
    let trusted: Vec<Record> = blocks
        .iter()
        .filter_map(|b| Record::decode_trusted(b.clone()).ok())
        .collect();
    assert_eq!(trusted.len(), 39);
    let alone: Vec<bool> = trusted.iter().map(|r| r.verify().is_ok()).collect();
    let together: Vec<bool> = Record::verify_batch(&trusted)
        .iter()
        .map(Result::is_ok)
        .collect();
    assert_eq!(alone, together);
    assert_eq!(together.iter().filter(|ok| !**ok).count(), 2);
}

#[test]
fn empty_and_single_batches() {
    assert!(verify_batch(&[]).is_empty());
    assert!(Record::decode_batch(Vec::new()).is_empty());
    let key = Keypair::derive(8, "one");
    let sig = key.sign(b"one");
    let items = [SignedMessage {
        did: key.did(),
        message: b"one",
        signature: &sig,
    }];
    assert_eq!(verify_batch(&items), vec![Ok(())]);
    let items = [SignedMessage {
        did: key.did(),
        message: b"two",
        signature: &sig,
    }];
    assert_eq!(verify_batch(&items), vec![Err(BadSignature)]);
}

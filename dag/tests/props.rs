//! Property tests: round trips for every kind, tamper detection, and rejection of every
//! non-canonical DAG-CBOR form.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use mnode_dag::{Ipld, KINDS, Record, cbor, cids, example::ExampleGen, json, model::social::Post};
use proptest::prelude::*;

fn kind_index() -> impl Strategy<Value = usize> {
    0..KINDS.len()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Every kind, any seed: the signed record decodes back to itself, its bytes are the
    /// canonical encoding of its envelope, and DAG-JSON converts back to the same bytes.
    #[test]
    fn every_kind_round_trips(seed in any::<u64>(), k in kind_index()) {
        let record = ExampleGen::new(seed).record_of(&KINDS[k]).unwrap();
        let decoded = Record::decode(record.bytes()).unwrap();
        prop_assert_eq!(&decoded, &record);
        prop_assert_eq!(cbor::encode(decoded.envelope()).unwrap(), record.bytes().to_vec());
        let ipld = cbor::decode_ipld(record.bytes()).unwrap();
        let text = json::to_dag_json(&ipld).unwrap();
        prop_assert_eq!(cbor::encode(&json::from_dag_json(&text).unwrap()).unwrap(), record.bytes().to_vec());
    }

    /// Arbitrary user text and tags survive signing and decoding unchanged.
    #[test]
    fn arbitrary_posts_round_trip(
        text in "[^\\p{Cc}]{1,300}".prop_filter("not blank", |t| !t.trim().is_empty()),
        tags in proptest::collection::btree_set("[a-z0-9]{1,8}(/[a-z0-9_-]{1,8}){0,2}", 0..5),
        seed in any::<u64>(),
    ) {
        let key = mnode_dag::Keypair::derive(seed, "prop");
        let post = Post { text, tags: tags.into_iter().collect(), ..Post::default() };
        let record = Record::create(&post).unwrap().sign(&key).unwrap();
        let decoded = Record::decode(record.bytes()).unwrap();
        prop_assert_eq!(decoded.body_as::<Post>().unwrap(), Some(post));
    }

    /// Changing any single byte of a signed record makes it fail to decode or verify.
    #[test]
    fn any_single_byte_change_fails(seed in any::<u64>(), k in kind_index(), pos in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let record = ExampleGen::new(seed).record_of(&KINDS[k]).unwrap();
        let mut bytes = record.bytes().to_vec();
        let i = pos.index(bytes.len());
        bytes[i] ^= flip;
        prop_assert!(Record::decode(&bytes).is_err(), "byte {} ^ {:#x} still verified", i, flip);
    }

    /// The direct IPLD writer used for signing produces exactly serde_ipld_dagcbor's bytes.
    #[test]
    fn direct_writer_matches_serde_ipld_dagcbor(value in ipld()) {
        let mut direct = Vec::new();
        cbor::encode_ipld_into(&mut direct, &value).unwrap();
        prop_assert_eq!(direct, serde_ipld_dagcbor::to_vec(&value).unwrap());
    }

    /// A reference encoder that may deviate from canonical form at any node: if it deviated,
    /// the strict decoder rejects the bytes; if it did not, the bytes are exactly ours.
    #[test]
    fn non_canonical_encodings_are_rejected(value in ipld(), choices in proptest::collection::vec(any::<u8>(), 1..64)) {
        let mut w = Writer { out: Vec::new(), choices, at: 0, deviated: false };
        w.write(&value);
        let canonical = cbor::encode(&value).unwrap();
        if w.deviated {
            prop_assert!(cbor::decode_ipld(&w.out).is_err(), "accepted non-canonical {}", hex::encode(&w.out));
        } else {
            prop_assert_eq!(&w.out, &canonical);
            prop_assert_eq!(cbor::decode_ipld(&w.out).unwrap(), value);
        }
    }
}

fn ipld() -> impl Strategy<Value = Ipld> {
    let leaf = prop_oneof![
        Just(Ipld::Null),
        any::<bool>().prop_map(Ipld::Bool),
        any::<i64>().prop_map(|n| Ipld::Integer(n.into())),
        any::<u64>().prop_map(|n| Ipld::Integer(n.into())),
        any::<f64>()
            .prop_filter("finite, not -0", |f| f.is_finite()
                && !(*f == 0.0 && f.is_sign_negative()))
            .prop_map(Ipld::Float),
        ".{0,40}".prop_map(Ipld::String),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Ipld::Bytes),
        any::<[u8; 8]>().prop_map(|b| Ipld::Link(cids::record_cid(&b))),
        any::<[u8; 8]>().prop_map(|b| Ipld::Link(cids::blob_cid_of(&b))),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Ipld::List),
            proptest::collection::btree_map(".{0,12}", inner, 0..6)
                .prop_map(|m: BTreeMap<String, Ipld>| Ipld::Map(m)),
        ]
    })
}

/// A CBOR writer for the IPLD data model that, driven by `choices`, sometimes writes a
/// non-canonical form: a wider integer or length head, an indefinite length, map keys out of
/// order, a 32-bit float, or a wide tag head.
struct Writer {
    out: Vec<u8>,
    choices: Vec<u8>,
    at: usize,
    deviated: bool,
}

impl Writer {
    /// Whether to deviate at this point (about one time in eight).
    fn deviate(&mut self) -> bool {
        let c = self.choices[self.at % self.choices.len()];
        self.at += 1;
        c < 32
    }

    fn head(&mut self, major: u8, n: u64) {
        let m = major << 5;
        let minimal = match n {
            0..=23 => 0,
            24..=0xff => 1,
            0x100..=0xffff => 2,
            0x1_0000..=0xffff_ffff => 3,
            _ => 4,
        };
        let size = if minimal < 4 && self.deviate() {
            self.deviated = true;
            minimal + 1
        } else {
            minimal
        };
        match size {
            0 => self.out.push(m | n as u8),
            1 => self.out.extend([m | 24, n as u8]),
            2 => {
                self.out.push(m | 25);
                self.out.extend((n as u16).to_be_bytes());
            }
            3 => {
                self.out.push(m | 26);
                self.out.extend((n as u32).to_be_bytes());
            }
            _ => {
                self.out.push(m | 27);
                self.out.extend(n.to_be_bytes());
            }
        }
    }

    fn string_like(&mut self, major: u8, bytes: &[u8]) {
        if self.deviate() {
            self.deviated = true;
            self.out.push((major << 5) | 31);
            let (a, b) = bytes.split_at(bytes.len() / 2);
            for chunk in [a, b] {
                self.head(major, chunk.len() as u64);
                self.out.extend_from_slice(chunk);
            }
            self.out.push(0xff);
        } else {
            self.head(major, bytes.len() as u64);
            self.out.extend_from_slice(bytes);
        }
    }

    fn write(&mut self, v: &Ipld) {
        match v {
            Ipld::Null => self.out.push(0xf6),
            Ipld::Bool(b) => self.out.push(if *b { 0xf5 } else { 0xf4 }),
            Ipld::Integer(n) if *n >= 0 => self.head(0, *n as u64),
            Ipld::Integer(n) => self.head(1, (-1 - *n) as u64),
            Ipld::Float(f) => {
                if (*f as f32) as f64 == *f && self.deviate() {
                    self.deviated = true;
                    self.out.push(0xfa);
                    self.out.extend((*f as f32).to_be_bytes());
                } else {
                    self.out.push(0xfb);
                    self.out.extend(f.to_be_bytes());
                }
            }
            Ipld::String(s) => self.string_like(3, s.as_bytes()),
            Ipld::Bytes(b) => self.string_like(2, b),
            Ipld::List(items) => {
                let indefinite = self.deviate();
                if indefinite {
                    self.deviated = true;
                    self.out.push(0x9f);
                } else {
                    self.head(4, items.len() as u64);
                }
                items.iter().for_each(|i| self.write(i));
                if indefinite {
                    self.out.push(0xff);
                }
            }
            Ipld::Map(map) => {
                let mut entries: Vec<(&String, &Ipld)> = map.iter().collect();
                entries.sort_by(|(a, _), (b, _)| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
                if entries.len() >= 2 && self.deviate() {
                    self.deviated = true;
                    entries.swap(0, 1);
                }
                self.head(5, entries.len() as u64);
                for (k, v) in entries {
                    // Keys are written canonically so that only the chosen deviations apply.
                    let mut key = Writer {
                        out: Vec::new(),
                        choices: vec![255],
                        at: 0,
                        deviated: false,
                    };
                    key.string_like(3, k.as_bytes());
                    self.out.extend(key.out);
                    self.write(v);
                }
            }
            Ipld::Link(cid) => {
                if self.deviate() {
                    self.deviated = true;
                    self.out.extend([0xd9, 0x00, 0x2a]);
                } else {
                    self.out.extend([0xd8, 0x2a]);
                }
                let mut bytes = vec![0u8];
                bytes.extend(cid.to_bytes());
                self.head(2, bytes.len() as u64);
                self.out.extend(bytes);
            }
        }
    }
}

//! A deterministic, seeded example generator.
//!
//! The same seed always gives the same keys, texts, timestamps, files, records and therefore
//! CIDs, which is what golden vectors, demo data and benchmarks need. Linked items (the artists
//! and files of a release, the forum of a branch) are made and signed along the way, and every
//! block made is kept so that a whole example DAG can be written out as a CAR.

use std::collections::HashSet;

use rand::{RngExt as _, SeedableRng as _, rngs::ChaCha8Rng};

use crate::{
    cids::{self, Cid},
    key_log::SignerCite,
    keys::{Did, Keypair},
    model::{
        Link, TitleData,
        core::{FileData, FileKind, KeyLog},
    },
    record::{Draft, Record, RecordError},
    registry::{KindInfo, Model},
};

/// The first timestamp examples use: 2024-11-23T22:13:20Z, in ms.
pub const BASE_TIME_MS: u64 = 1_732_400_000_000;
/// How far the example clock moves per signed record, in ms.
pub const TICK_MS: u64 = 1_000;
/// The personas that sign examples, with keys derived from the seed.
pub const PERSONAS: [&str; 3] = ["alice", "bob", "carol"];

const WORDS: &[&str] = &[
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
    "enim",
    "ad",
    "minim",
    "veniam",
    "quis",
    "nostrud",
    "exercitation",
    "ullamco",
    "laboris",
    "nisi",
    "aliquip",
    "ex",
    "ea",
    "commodo",
    "consequat",
    "duis",
    "aute",
    "irure",
    "in",
    "reprehenderit",
    "voluptate",
    "velit",
    "esse",
    "cillum",
    "fugiat",
    "nulla",
    "pariatur",
    "excepteur",
    "sint",
    "occaecat",
    "cupidatat",
    "non",
    "proident",
    "sunt",
    "culpa",
    "qui",
    "officia",
    "deserunt",
    "mollit",
    "anim",
    "id",
    "est",
    "laborum",
    "cantus",
    "tabula",
    "sonus",
    "lumen",
    "imago",
];

const TAGS: &[&str] = &[
    "music",
    "music/jazz",
    "music/jazz/bebop",
    "music/ambient",
    "music/folk",
    "visual",
    "visual/photo",
    "visual/painting",
    "writing",
    "writing/poetry",
    "film",
    "film/short",
];

/// Makes signed example records from a seed.
#[derive(Debug)]
pub struct ExampleGen {
    rng: ChaCha8Rng,
    seed: u64,
    keys: Vec<Keypair>,
    /// Each persona's recovery key.
    recovery: Vec<Keypair>,
    /// Keys granted by [`ExampleGen::rotate`], which sign for their persona from then on.
    rotated: Vec<Keypair>,
    clock: u64,
    signed: u64,
    blocks: Vec<(Cid, Vec<u8>)>,
    seen: HashSet<Cid>,
}

impl ExampleGen {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            seed,
            keys: PERSONAS.iter().map(|p| Keypair::derive(seed, p)).collect(),
            recovery: PERSONAS
                .iter()
                .map(|p| Keypair::derive(seed, &format!("{p}/recovery")))
                .collect(),
            rotated: Vec::new(),
            clock: BASE_TIME_MS,
            signed: 0,
            blocks: Vec::new(),
            seen: HashSet::new(),
        }
    }

    /// The key of persona `i` (wrapping around [`PERSONAS`]).
    pub fn key(&self, i: usize) -> &Keypair {
        &self.keys[i % self.keys.len()]
    }

    /// The identity of persona `i`.
    pub fn person(&self, i: usize) -> Did {
        *self.key(i).did()
    }

    /// The recovery key of persona `i` (named by its key log, never used to sign examples).
    pub fn recovery_key(&self, i: usize) -> &Keypair {
        &self.recovery[i % self.recovery.len()]
    }

    /// The next version of the key log `log`: a new key, derived from the seed, the identity
    /// and the version number, granted by the log's current key, keeping `kept` and the same
    /// recovery key. The new key is returned and signs what [`ExampleGen::sign`] signs for it.
    pub fn rotate(
        &mut self,
        log: &Record,
        kept: Vec<Link>,
    ) -> Result<(Record, Keypair), RecordError> {
        let before = log.body_as::<KeyLog>()?.ok_or(RecordError::Version(
            "a key log takes no tombstone; there is nothing to rotate",
        ))?;
        let identity = match log.envelope().origin {
            None => *log.author(),
            Some(_) => *self
                .blocks
                .iter()
                .find(|(c, _)| Some(*c) == log.envelope().origin)
                .and_then(|(_, b)| Record::decode(b).ok())
                .ok_or(RecordError::Version(
                    "the key log's version 0 was not made here",
                ))?
                .author(),
        };
        let label = format!("{identity}/key/{}", log.seq() + 1);
        let key = Keypair::derive(self.seed, &label);
        let next = KeyLog::grant(&key, &identity, &log.cid(), before.recovery, kept);
        let signer = self.signing_key(&before.key).ok_or(RecordError::Version(
            "the log's current key is not an example key",
        ))?;
        let record = self.sign_with(log.update(&next)?, &signer)?;
        self.rotated.push(key.clone());
        Ok((record, key))
    }

    fn signing_key(&self, did: &Did) -> Option<Keypair> {
        self.keys
            .iter()
            .chain(&self.rotated)
            .find(|k| k.did() == did)
            .cloned()
    }

    /// Every block made so far (records and files), each once, in the order made.
    pub fn blocks(&self) -> &[(Cid, Vec<u8>)] {
        &self.blocks
    }

    /// Takes the blocks made so far, leaving none.
    pub fn take_blocks(&mut self) -> Vec<(Cid, Vec<u8>)> {
        self.seen.clear();
        std::mem::take(&mut self.blocks)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        self.rng.random_range(lo..=hi)
    }

    /// One lorem-ipsum word.
    pub fn word(&mut self) -> String {
        WORDS[self.rng.random_range(0..WORDS.len())].to_owned()
    }

    /// `n` words separated by spaces.
    pub fn words(&mut self, n: usize) -> String {
        (0..n).map(|_| self.word()).collect::<Vec<_>>().join(" ")
    }

    /// A sentence of 5 to 12 words.
    pub fn sentence(&mut self) -> String {
        let n = self.range(5, 12) as usize;
        let words = self.words(n);
        format!("{}.", self.capitalised(&words))
    }

    /// A paragraph of 3 to 5 sentences.
    pub fn paragraph(&mut self) -> String {
        let n = self.range(3, 5);
        (0..n)
            .map(|_| self.sentence())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// `s` with its first letter in upper case.
    pub fn capitalised(&self, s: &str) -> String {
        let mut c = s.chars();
        c.next()
            .map(|f| f.to_uppercase().chain(c).collect())
            .unwrap_or_default()
    }

    /// A title of 2 to 5 words with its short and abbreviated forms.
    pub fn title(&mut self) -> TitleData {
        let n = self.range(2, 5) as usize;
        let words: Vec<String> = (0..n)
            .map(|_| {
                let w = self.word();
                self.capitalised(&w)
            })
            .collect();
        TitleData {
            full: words.join(" "),
            short: Some(words[..2].join(" ")),
            abbreviated: Some(words.iter().filter_map(|w| w.chars().next()).collect()),
        }
    }

    /// A handle like `dolor_42`.
    pub fn handle(&mut self) -> String {
        format!("{}_{}", self.word(), self.range(1, 999))
    }

    /// Up to `max` distinct tags.
    pub fn tags(&mut self, max: usize) -> Vec<String> {
        let n = self.range(1, max.max(1) as u64) as usize;
        let mut out: Vec<String> = Vec::new();
        while out.len() < n {
            let t = TAGS[self.rng.random_range(0..TAGS.len())];
            if !out.iter().any(|o| o == t) {
                out.push(t.to_owned());
            }
        }
        out
    }

    /// A date between 1990 and 2024.
    pub fn date(&mut self) -> String {
        format!(
            "{}-{:02}-{:02}",
            self.range(1990, 2024),
            self.range(1, 12),
            self.range(1, 28)
        )
    }

    /// A small real file of `kind` (BMP image, WAV audio, Y4M video, text), kept as a block.
    pub fn blob(&mut self, kind: FileKind) -> FileData {
        match kind {
            FileKind::Image => {
                let (w, h) = (self.range(4, 16) as u32, self.range(4, 16) as u32);
                self.image(w, h)
            }
            FileKind::Audio => self.audio(100),
            FileKind::Video => self.video(8, 8, 5),
            FileKind::Text => {
                let text = self.paragraph();
                let name = format!("{}.txt", self.word());
                self.file(name, "text/plain", text.into_bytes())
            }
            FileKind::Other => {
                let bytes = (0..self.range(16, 256))
                    .map(|_| self.rng.random::<u8>())
                    .collect();
                let name = format!("{}.bin", self.word());
                self.file(name, "application/octet-stream", bytes)
            }
        }
    }

    /// A `w`×`h` 24-bit BMP with a seeded gradient.
    pub fn image(&mut self, w: u32, h: u32) -> FileData {
        let row = (w * 3).div_ceil(4) * 4;
        let size = 54 + row * h;
        let mut b = Vec::with_capacity(size as usize);
        b.extend_from_slice(b"BM");
        b.extend_from_slice(&size.to_le_bytes());
        b.extend_from_slice(&[0, 0, 0, 0]);
        b.extend_from_slice(&54u32.to_le_bytes());
        b.extend_from_slice(&40u32.to_le_bytes());
        b.extend_from_slice(&w.to_le_bytes());
        b.extend_from_slice(&h.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&24u16.to_le_bytes());
        b.extend_from_slice(&[0; 4]);
        b.extend_from_slice(&(row * h).to_le_bytes());
        b.extend_from_slice(&[0; 16]);
        let tint: [u8; 3] = self.rng.random();
        for y in 0..h {
            for x in 0..w {
                b.extend_from_slice(&[tint[0] ^ (x * 16) as u8, tint[1] ^ (y * 16) as u8, tint[2]]);
            }
            b.resize(b.len() + (row - w * 3) as usize, 0);
        }
        let name = format!("{}.bmp", self.word());
        self.file(name, "image/bmp", b)
    }

    /// `ms` milliseconds of 8 kHz 8-bit mono WAV (a seeded tone).
    pub fn audio(&mut self, ms: u32) -> FileData {
        let samples = 8 * ms;
        let mut b = Vec::with_capacity(44 + samples as usize);
        b.extend_from_slice(b"RIFF");
        b.extend_from_slice(&(36 + samples).to_le_bytes());
        b.extend_from_slice(b"WAVEfmt ");
        b.extend_from_slice(&16u32.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&8000u32.to_le_bytes());
        b.extend_from_slice(&8000u32.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&8u16.to_le_bytes());
        b.extend_from_slice(b"data");
        b.extend_from_slice(&samples.to_le_bytes());
        let period = self.range(8, 40) as u32;
        b.extend((0..samples).map(|i| {
            if (i / (period / 2)).is_multiple_of(2) {
                96
            } else {
                160
            }
        }));
        let name = format!("{}.wav", self.word());
        self.file(name, "audio/wav", b)
    }

    /// `frames` frames of `w`×`h` YUV4MPEG2 video.
    pub fn video(&mut self, w: u32, h: u32, frames: u32) -> FileData {
        let mut b = format!("YUV4MPEG2 W{w} H{h} F25:1 Ip A1:1 C420jpeg\n").into_bytes();
        let luma: u8 = self.rng.random();
        for f in 0..frames {
            b.extend_from_slice(b"FRAME\n");
            b.resize(
                b.len() + (w * h) as usize,
                luma.wrapping_add((f * 20) as u8),
            );
            b.resize(b.len() + (w * h / 2) as usize, 128);
        }
        let name = format!("{}.y4m", self.word());
        self.file(name, "video/x-yuv4mpeg", b)
    }

    fn file(&mut self, name: String, media_type: &str, bytes: Vec<u8>) -> FileData {
        let cid = cids::blob_cid_of(&bytes);
        let size = bytes.len() as u64;
        self.keep(cid, bytes);
        FileData {
            blob: Link(cid),
            name,
            media_type: media_type.to_owned(),
            size,
            sealed: None,
            unixfs: None,
        }
    }

    fn keep(&mut self, cid: Cid, bytes: Vec<u8>) {
        if self.seen.insert(cid) {
            self.blocks.push((cid, bytes));
        }
    }

    /// Makes, signs and keeps an example `M`, returning a link to it.
    pub fn link<M: Model>(&mut self) -> Link {
        Link(self.record::<M>().cid())
    }

    /// Makes, signs and keeps an example `M`.
    pub fn record<M: Model>(&mut self) -> Record {
        let body = M::example(self);
        let draft = Record::create(&body)
            .unwrap_or_else(|e| panic!("example {} does not encode: {e}", M::KIND));
        self.sign(draft)
            .unwrap_or_else(|e| panic!("example {} is invalid: {e}", M::KIND))
    }

    /// Makes, signs and keeps an example of a registered kind.
    pub fn record_of(&mut self, kind: &KindInfo) -> Result<Record, RecordError> {
        let body = kind.example(self).map_err(|error| RecordError::Schema {
            kind: kind.name.to_owned(),
            error,
        })?;
        self.sign(Draft::new(kind.name, body))
    }

    /// A new version of `record` with a fresh example body, signed by the same persona (with
    /// the same key and `$signer` citation).
    pub fn update(&mut self, record: &Record) -> Result<Record, RecordError> {
        let kind = crate::registry::lookup(record.kind())
            .ok_or_else(|| RecordError::UnknownKind(record.kind().to_owned()))?;
        let body = kind.example(self).map_err(|error| RecordError::Schema {
            kind: kind.name.to_owned(),
            error,
        })?;
        let mut draft = record.update_body(body);
        if let Some(cite) = record.signer() {
            draft = draft.signed_as(cite);
        }
        self.sign(draft)
    }

    /// A new version of `record` with a fresh example body, signed by `key` for the identity
    /// `cite` names, citing it.
    pub fn update_as(
        &mut self,
        record: &Record,
        key: &Keypair,
        cite: SignerCite,
    ) -> Result<Record, RecordError> {
        let kind = crate::registry::lookup(record.kind())
            .ok_or_else(|| RecordError::UnknownKind(record.kind().to_owned()))?;
        let body = kind.example(self).map_err(|error| RecordError::Schema {
            kind: kind.name.to_owned(),
            error,
        })?;
        self.sign_with(record.update_body(body).signed_as(cite), key)
    }

    /// A tombstone for `record`, signed by the same persona.
    pub fn delete(&mut self, record: &Record) -> Result<Record, RecordError> {
        self.sign(record.delete())
    }

    /// Signs `draft` at the next example time with the persona that owns it (the author of the
    /// previous version, or persona 0 for a new item), and keeps the block.
    pub fn sign(&mut self, draft: Draft) -> Result<Record, RecordError> {
        let key = draft
            .author()
            .and_then(|did| self.signing_key(did))
            .unwrap_or_else(|| self.keys[0].clone());
        self.sign_with(draft, &key)
    }

    /// Signs `draft` at the next example time with `key`, and keeps the block.
    pub fn sign_with(&mut self, draft: Draft, key: &Keypair) -> Result<Record, RecordError> {
        self.clock += TICK_MS;
        self.signed += 1;
        let record = draft.at(self.clock).sign(key)?;
        self.keep(record.cid(), record.bytes().to_vec());
        Ok(record)
    }

    /// How many records this generator has signed.
    pub fn signed(&self) -> u64 {
        self.signed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::KINDS;

    #[test]
    fn every_kind_has_a_valid_example_and_the_same_seed_gives_the_same_cids() {
        for kind in KINDS {
            let a = ExampleGen::new(1).record_of(kind).unwrap();
            let b = ExampleGen::new(1).record_of(kind).unwrap();
            let c = ExampleGen::new(2).record_of(kind).unwrap();
            assert_eq!(a.cid(), b.cid(), "{}", kind.name);
            assert_ne!(a.cid(), c.cid(), "{}", kind.name);
            assert_eq!(Record::decode(a.bytes()).unwrap(), a, "{}", kind.name);
        }
    }

    #[test]
    fn chains_and_tombstones() {
        let mut g = ExampleGen::new(3);
        let v0 = g.record::<crate::model::art::Release>();
        let v1 = g.update(&v0).unwrap();
        let v2 = g.delete(&v1).unwrap();
        v1.verify_follows(&v0).unwrap();
        v2.verify_follows(&v1).unwrap();
        assert!(v2.is_tombstone());
        assert!(g.blocks().iter().any(|(c, _)| *c == v2.cid()));
    }

    #[test]
    fn generated_files_are_what_they_say() {
        let mut g = ExampleGen::new(4);
        let img = g.image(5, 3);
        let bytes = &g.blocks().iter().find(|(c, _)| *c == img.blob.0).unwrap().1;
        assert_eq!(&bytes[..2], b"BM");
        assert_eq!(bytes.len() as u64, img.size);
        assert_eq!(u32::from_le_bytes(bytes[18..22].try_into().unwrap()), 5);
        let wav = g.audio(10);
        let bytes = &g.blocks().iter().find(|(c, _)| *c == wav.blob.0).unwrap().1;
        assert_eq!(&bytes[8..12], b"WAVE");
        assert_eq!(bytes.len(), 44 + 80);
    }
}

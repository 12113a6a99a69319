//! Checking a set of blocks, such as the contents of a CAR file: every block against its CID,
//! every DAG-CBOR block strictly, every record's signature, schema and version rules, and every
//! version against the version it replaces when both are present.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use crate::{
    authority::{Authority, Missing},
    cbor,
    cids::{self, Cid},
    model::core::Group,
    record::{ChainError, Record, RecordError, VersionInfo},
    walk,
};

/// What a block turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// A signed record that verified.
    Record,
    /// Strict DAG-CBOR that is not a record envelope.
    Ipld,
    /// Raw bytes (a file).
    Raw,
    /// Another codec; only its hash was checked.
    Other,
}

/// A block that failed a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The block's CID.
    pub cid: Cid,
    /// What failed, naming the rule.
    pub error: String,
}

/// The outcome of a verification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Blocks seen.
    pub blocks: u64,
    /// Bytes of block data seen.
    pub bytes: u64,
    /// Records whose signature, schema and version rules verified.
    pub records: u64,
    /// Non-record DAG-CBOR blocks.
    pub ipld: u64,
    /// Raw blocks.
    pub raw: u64,
    /// Blocks of other codecs.
    pub other: u64,
    /// Records by kind.
    pub kinds: HashMap<String, u64>,
    /// Version links checked (a record and the version it replaces, both present).
    pub chain_links: u64,
    /// Records whose previous version was not among the blocks.
    pub prev_missing: u64,
    /// Records whose group or key rules cite a version (a group's, a key log's) that was not
    /// among the blocks, so those rules could not be checked.
    pub authority_missing: u64,
    /// Items with two versions replacing the same version (kept, not an error).
    pub forks: u64,
    /// Links to blocks that were not among the blocks.
    pub links_missing: u64,
    /// Roots that were not among the blocks.
    pub roots_missing: Vec<Cid>,
    /// Everything that failed.
    pub failures: Vec<Failure>,
}

impl Report {
    /// Whether everything verified.
    pub fn ok(&self) -> bool {
        self.failures.is_empty() && self.roots_missing.is_empty()
    }
}

/// Verifies blocks fed one at a time, then checks chains and links across them.
#[derive(Debug, Default)]
pub struct Verifier {
    report: Report,
    records: HashMap<Cid, Record>,
    links: Vec<Cid>,
    seen: HashSet<Cid>,
}

impl Verifier {
    /// A verifier with nothing seen yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks one block; a failure is recorded in the report and also returned.
    pub fn add(&mut self, cid: Cid, bytes: Vec<u8>) -> Result<BlockKind, Failure> {
        self.report.blocks += 1;
        self.report.bytes += bytes.len() as u64;
        self.seen.insert(cid);
        let result = self.check(cid, bytes);
        if let Err(f) = &result {
            self.report.failures.push(f.clone());
        }
        result
    }

    /// Records a failure found outside the verifier (for example a CAR framing error).
    pub fn fail(&mut self, cid: Cid, error: impl Into<String>) {
        self.report.failures.push(Failure {
            cid,
            error: error.into(),
        });
    }

    fn check(&mut self, cid: Cid, bytes: Vec<u8>) -> Result<BlockKind, Failure> {
        let fail = |e: &dyn std::fmt::Display| Failure {
            cid,
            error: e.to_string(),
        };
        cids::verify_block(&cid, &bytes).map_err(|e| fail(&e))?;
        match cid.codec() {
            cids::DAG_CBOR => {
                let ipld = cbor::decode_ipld(&bytes).map_err(|e| fail(&e))?;
                let is_envelope = matches!(&ipld, ipld_core::ipld::Ipld::Map(m)
                    if m.contains_key("sig") && m.contains_key("author") && m.contains_key("type"));
                walk::collect_links(&ipld, &mut self.links);
                if !is_envelope {
                    self.report.ipld += 1;
                    return Ok(BlockKind::Ipld);
                }
                if cids::link_kind(&cid) != cids::LinkKind::Record {
                    return Err(fail(&"records must have dag-cbor sha2-256 CIDs"));
                }
                let record = Record::decode_owned(bytes).map_err(|e: RecordError| fail(&e))?;
                self.report.records += 1;
                *self
                    .report
                    .kinds
                    .entry(record.kind().to_owned())
                    .or_default() += 1;
                self.records.insert(cid, record);
                Ok(BlockKind::Record)
            }
            cids::RAW => {
                self.report.raw += 1;
                Ok(BlockKind::Raw)
            }
            _ => {
                self.report.other += 1;
                Ok(BlockKind::Other)
            }
        }
    }

    /// Checks version chains and links across all blocks seen, and that `roots` were seen.
    pub fn finish(mut self, roots: &[Cid]) -> Report {
        let mut successors: HashMap<Cid, u64> = HashMap::new();
        let mut chain_failures = Vec::new();
        let held = Held(&self.records);
        for (cid, record) in &self.records {
            let checked = match record.envelope().prev {
                None => record.verify_first_with(&held),
                Some(prev) => {
                    *successors.entry(prev).or_default() += 1;
                    match held.version(&prev) {
                        Ok(p) => {
                            let r = record.verify_follows_with(&p, &held);
                            // The envelope's own chain rules held (the group and key rules
                            // come after them).
                            if matches!(r, Ok(()) | Err(ChainError::Group(_) | ChainError::Key(_)))
                            {
                                self.report.chain_links += 1;
                            }
                            r
                        }
                        Err(_) => {
                            self.report.prev_missing += 1;
                            continue;
                        }
                    }
                }
            };
            match checked {
                Ok(()) => {}
                Err(e) if cites_missing(&e) => self.report.authority_missing += 1,
                Err(e) => chain_failures.push(Failure {
                    cid: *cid,
                    error: format!("chain rule broken: {e}"),
                }),
            }
        }
        chain_failures.sort_by_key(|f| f.cid);
        self.report.failures.extend(chain_failures);
        self.report.forks = successors.values().filter(|&&n| n > 1).count() as u64;
        let missing: HashSet<&Cid> = self
            .links
            .iter()
            .filter(|l| !self.seen.contains(l))
            .collect();
        self.report.links_missing = missing.len() as u64;
        self.report.roots_missing = roots
            .iter()
            .filter(|r| !self.seen.contains(r))
            .copied()
            .collect();
        self.report
    }
}

/// Whether a chain check failed only because a cited version is not among the blocks.
fn cites_missing(e: &ChainError) -> bool {
    match e {
        ChainError::Group(crate::group::GroupError::Missing(_)) => true,
        ChainError::Key(k) => matches!(k, crate::key_log::KeyError::Missing(_)),
        _ => false,
    }
}

/// The blocks seen, as the authority the group and key rules consult.
struct Held<'a>(&'a HashMap<Cid, Record>);

impl Authority for Held<'_> {
    fn version(&self, cid: &Cid) -> Result<VersionInfo, Missing> {
        let r = self.record(cid)?;
        match r.envelope().prev {
            Some(prev) if r.is_tombstone() => Ok(r.info_following(&self.version(&prev)?)),
            _ => Ok(r.info()),
        }
    }

    fn group(&self, at: &Cid) -> Result<Option<Arc<Group>>, Missing> {
        let r = self.record(at)?;
        Ok(r.body_as::<Group>().ok().flatten().map(Arc::new))
    }

    fn record(&self, cid: &Cid) -> Result<Record, Missing> {
        self.0.get(cid).cloned().ok_or(Missing::Version(*cid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{example::ExampleGen, model::art::Release};

    #[test]
    fn a_whole_example_dag_verifies() {
        let mut g = ExampleGen::new(9);
        let v0 = g.record::<Release>();
        let v1 = g.update(&v0).unwrap();
        let mut v = Verifier::new();
        for (cid, bytes) in g.take_blocks() {
            v.add(cid, bytes).unwrap();
        }
        let report = v.finish(&[v1.cid()]);
        assert!(report.ok(), "{report:?}");
        assert_eq!(report.chain_links, 1);
        assert_eq!(report.links_missing, 0);
        assert!(report.raw > 0 && report.records > 5);
    }

    #[test]
    fn group_rules_are_checked_across_the_blocks() {
        use crate::{
            Draft, Ipld, Keypair,
            group::OwnerCite,
            model::core::{Member, Role},
        };
        let (owner, stranger) = (Keypair::derive(3, "o"), Keypair::derive(3, "x"));
        let group = Group {
            name: "The Band".into(),
            description: None,
            members: vec![Member {
                did: *owner.did(),
                role: Role::Owner,
            }],
            settled: vec![],
        };
        let g0 = Record::create(&group).unwrap().sign(&owner).unwrap();
        let name = Ipld::Map([("full".to_owned(), Ipld::String("The Band".into()))].into());
        let body = Ipld::Map(
            [
                ("name".to_owned(), name),
                ("members".to_owned(), Ipld::List(vec![])),
            ]
            .into(),
        );
        let cite = OwnerCite {
            group: g0.id(),
            at: g0.cid(),
        };
        let page = Draft::new("art.artist_group", body.clone())
            .owned_by(cite)
            .sign(&owner)
            .unwrap();
        let taken = page
            .update_body(body)
            .owned_by(cite)
            .sign(&stranger)
            .unwrap();
        let check = |records: &[&Record]| {
            let mut v = Verifier::new();
            for r in records {
                v.add(r.cid(), r.bytes().to_vec()).unwrap();
            }
            v.finish(&[])
        };
        let ok = check(&[&g0, &page]);
        assert!(ok.ok(), "{ok:?}");
        let bad = check(&[&g0, &page, &taken]);
        assert_eq!(bad.failures.len(), 1, "{bad:?}");
        assert_eq!(bad.failures[0].cid, taken.cid());
        assert!(bad.failures[0].error.contains("not a member"), "{bad:?}");
        // Without the group's version, the rules cannot be checked: counted, not failed.
        let partial = check(&[&page, &taken]);
        assert!(partial.ok(), "{partial:?}");
        assert_eq!(partial.authority_missing, 2);
    }

    #[test]
    fn tampering_and_broken_chains_are_reported() {
        let mut g = ExampleGen::new(9);
        let v0 = g.record::<crate::model::social::Post>();
        let v1 = g.update(&v0).unwrap();
        let v2 = g.update(&v1).unwrap();
        // A v2 that is validly signed but changes `created`: only the chain check can tell.
        let mut env = v2.envelope().clone();
        env.created += 1;
        let bytes = env.resign(g.key(0)).unwrap();
        let broken = Record::decode(&bytes).unwrap();

        let mut v = Verifier::new();
        v.add(v0.cid(), v0.bytes().to_vec()).unwrap();
        v.add(v1.cid(), v1.bytes().to_vec()).unwrap();
        v.add(broken.cid(), bytes).unwrap();
        let mut tampered = v2.bytes().to_vec();
        let n = tampered.len();
        tampered[n - 1] ^= 1;
        assert!(v.add(v2.cid(), tampered).is_err());
        let report = v.finish(&[v0.cid()]);
        assert!(!report.ok());
        let errors: Vec<&str> = report.failures.iter().map(|f| f.error.as_str()).collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("does not hash"), "{errors:?}");
        assert!(errors[1].contains("created changed"), "{errors:?}");
        assert_eq!(report.chain_links, 1);
    }
}

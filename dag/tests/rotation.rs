//! Key rotation and recovery: the hard rules K1–K7, the log's winning path and which versions an
//! old key signed stay in force, checked against an in-memory authority (the records
//! themselves, by CID), as every node checks them.

#![allow(clippy::unwrap_used)]

use mnode_dag::{
    Draft, Ipld, Keypair, Link, Record,
    authority::{Missing, Nothing},
    example::ExampleGen,
    group::Standing,
    key_log::{self, KeyError, LogPath, SignerCite, prove, standing, winning_path},
    model::{core::KeyLog, social::Post},
    record::{ChainError, RecordError},
    registry::{Strictness, lookup, split_record_fields},
    testing::{Held, band},
};

fn key(name: &str) -> Keypair {
    Keypair::derive(6, name)
}

fn post(text: &str) -> Post {
    Post {
        text: text.into(),
        ..Post::default()
    }
}

fn cite(identity: &Keypair, at: &Record) -> SignerCite {
    SignerCite {
        identity: *identity.did(),
        at: at.cid(),
    }
}

fn key_error(e: ChainError) -> KeyError {
    match e {
        ChainError::Key(k) => k,
        other => panic!("expected a key rule, got {other}"),
    }
}

fn signing_error(e: RecordError) -> ChainError {
    match e {
        RecordError::Chain(c) => *c,
        other => panic!("expected a chain rule, got {other}"),
    }
}

/// Alice (first key `k0`, recovery key `r0`), her key log's root `l0`, a post `p0` she made
/// with her first key, and her rotation `l1` to `k1`, which keeps `p0`.
struct Alice {
    held: Held,
    k0: Keypair,
    r0: Keypair,
    k1: Keypair,
    l0: Record,
    p0: Record,
    l1: Record,
}

fn alice() -> Alice {
    let (k0, r0, k1) = (key("alice"), key("alice/recovery"), key("alice/1"));
    let mut held = Held::default();
    let l0 = Record::create(&KeyLog::root(&k0, Some(*r0.did())))
        .unwrap()
        .at(1_000)
        .sign(&k0)
        .unwrap();
    held.put(&l0).unwrap();
    let p0 = Record::create(&post("before the rotation"))
        .unwrap()
        .at(1_100)
        .sign(&k0)
        .unwrap();
    held.put(&p0).unwrap();
    let l1 = l0
        .update(&KeyLog::grant(
            &k1,
            k0.did(),
            &l0.cid(),
            Some(*r0.did()),
            vec![Link(p0.cid())],
        ))
        .unwrap()
        .at(2_000)
        .sign(&k0)
        .unwrap();
    held.put(&l1).unwrap();
    Alice {
        held,
        k0,
        r0,
        k1,
        l0,
        p0,
        l1,
    }
}

impl Alice {
    /// The next version of log version `prev`, granting `new`, signed by `by`.
    fn grant(
        &self,
        prev: &Record,
        by: &Keypair,
        new: &Keypair,
        recovery: Option<&Keypair>,
        at: u64,
    ) -> Record {
        prev.update(&KeyLog::grant(
            new,
            self.k0.did(),
            &prev.cid(),
            recovery.map(|r| *r.did()),
            vec![],
        ))
        .unwrap()
        .at(at)
        .sign(by)
        .unwrap()
    }

    fn path(&self, versions: &[&Record]) -> LogPath {
        let history: Vec<Record> = versions.iter().map(|r| (*r).clone()).collect();
        winning_path(&history)
    }

    /// Whether `v` is in force under the log's winning path `path` (nothing vouched).
    fn standing(&self, v: &Record, path: &LogPath) -> Standing {
        standing(&self.held.info(&v.cid()), path, &self.held, |_| false).unwrap()
    }
}

#[test]
fn a_forged_rotation_is_not_authorized() {
    let mut a = alice();
    let mallory = key("mallory");
    let forged = a.grant(&a.l0, &mallory, &mallory, None, 3_000);
    let e = key_error(a.held.put(&forged).unwrap_err());
    assert_eq!(
        e,
        KeyError::NotAuthorized {
            signer: *mallory.did(),
            log_at: a.l0.cid(),
        }
    );
    assert!(
        e.to_string()
            .contains("neither the key nor the recovery key")
    );
    // The key that was rotated away signs no more log versions either.
    let late = a.grant(&a.l1, &a.k0, &mallory, None, 3_000);
    assert!(matches!(
        key_error(a.held.put(&late).unwrap_err()),
        KeyError::NotAuthorized { .. }
    ));
}

#[test]
fn after_a_rotation_the_new_key_edits_an_old_item() {
    let mut a = alice();
    let p1 =
        a.p0.update(&post("edited with the new key"))
            .unwrap()
            .signed_as(cite(&a.k0, &a.l1))
            .at(2_100)
            .sign(&a.k1)
            .unwrap();
    a.held.put(&p1).unwrap();
    assert_eq!(p1.author(), a.k1.did());
    assert_eq!(p1.identity(), a.k0.did());
    assert_eq!(p1.signer(), Some(cite(&a.k0, &a.l1)));
    // The citation survives the trip to another node, which checks it the same way.
    let received = Record::decode(p1.bytes()).unwrap();
    assert_eq!(received.signer(), p1.signer());
    received
        .verify_follows_with(&a.held.info(&a.p0.cid()), &a.held)
        .unwrap();
    assert_eq!(
        a.held.info(&p1.cid()).identity(),
        *a.k0.did(),
        "the version's identity is the first key"
    );
    // The kind's schema does not see `$signer`.
    assert_eq!(
        p1.body_as::<Post>().unwrap().unwrap().text,
        "edited with the new key"
    );
    // Without the citation the new key is a stranger to the item.
    let bare = a.p0.update(&post("who?")).unwrap().sign(&a.k1).unwrap_err();
    assert!(matches!(
        signing_error(bare),
        ChainError::AuthorChanged { .. }
    ));
    // The new key keeps editing, and a version of a new item made with it cites the log too.
    let p2 = p1
        .update(&post("again"))
        .unwrap()
        .signed_as(cite(&a.k0, &a.l1))
        .at(2_200)
        .sign(&a.k1)
        .unwrap();
    a.held.put(&p2).unwrap();
    let fresh = Record::create(&post("new"))
        .unwrap()
        .signed_as(cite(&a.k0, &a.l1))
        .sign(&a.k1)
        .unwrap();
    a.held.put(&fresh).unwrap();
    let path = a.path(&[&a.l0, &a.l1]);
    for v in [&p1, &p2, &fresh, &a.p0] {
        assert_eq!(a.standing(v, &path), Standing::InForce);
    }
}

#[test]
fn an_old_key_post_after_the_rotation_is_retired_unless_kept_or_vouched() {
    let mut a = alice();
    // Whoever still holds the first key posts after the rotation: the hard rules cannot tell
    // when it was made, but it is not among what the rotation kept.
    let late = Record::create(&post("posted with the old key"))
        .unwrap()
        .at(5_000)
        .sign(&a.k0)
        .unwrap();
    a.held.put(&late).unwrap();
    let path = a.path(&[&a.l0, &a.l1]);
    let Standing::Revoked { at, reason } = a.standing(&late, &path) else {
        panic!("an old-key post after the rotation stayed in force");
    };
    assert_eq!(at, a.l1.cid());
    assert!(reason.contains("retired by key log version"), "{reason}");
    // What the rotation kept stays, and so does everything under a kept tip.
    assert_eq!(a.standing(&a.p0, &path), Standing::InForce);
    // A node that has not seen the rotation yet keeps the late post (it converges later).
    assert_eq!(a.standing(&late, &a.path(&[&a.l0])), Standing::InForce);
    // An old-key version the identity built on with its new key is vouched for.
    let vouched = standing(&a.held.info(&late.cid()), &path, &a.held, |at| {
        *at == a.l1.cid()
    })
    .unwrap();
    assert_eq!(vouched, Standing::InForce);
    // Someone else's records are not judged by Alice's log.
    let bob = Record::create(&post("bob"))
        .unwrap()
        .sign(&key("bob"))
        .unwrap();
    a.held.put(&bob).unwrap();
    assert_eq!(a.standing(&bob, &path), Standing::InForce);
}

#[test]
fn an_old_key_never_follows_a_newer_one() {
    let mut a = alice();
    let p1 =
        a.p0.update(&post("new key"))
            .unwrap()
            .signed_as(cite(&a.k0, &a.l1))
            .at(2_100)
            .sign(&a.k1)
            .unwrap();
    a.held.put(&p1).unwrap();
    // Same identity, so signing is allowed; but the item already relies on the rotation.
    let back = p1
        .update(&post("old key again"))
        .unwrap()
        .at(2_200)
        .sign(&a.k0)
        .unwrap();
    let e = key_error(a.held.put(&back).unwrap_err());
    assert_eq!(
        e,
        KeyError::RetiredKey {
            key: *a.k0.did(),
            at: a.l1.cid(),
        }
    );
    // The same one log version later: k1 cannot follow k2.
    let k2 = key("alice/2");
    let l2 = a.grant(&a.l1, &a.k1, &k2, Some(&a.r0), 3_000);
    a.held.put(&l2).unwrap();
    let p2 = p1
        .update(&post("k2"))
        .unwrap()
        .signed_as(cite(&a.k0, &l2))
        .at(3_100)
        .sign(&k2)
        .unwrap();
    a.held.put(&p2).unwrap();
    let p3 = p2
        .update(&post("k1 again"))
        .unwrap()
        .signed_as(cite(&a.k0, &a.l1))
        .at(3_200)
        .sign(&a.k1)
        .unwrap();
    assert!(matches!(
        key_error(a.held.put(&p3).unwrap_err()),
        KeyError::RetiredKey { at, .. } if at == l2.cid()
    ));
}

#[test]
fn a_recovery_fork_beats_a_future_dated_key_fork() {
    let mut a = alice();
    // A thief holding the first key rotates to their own key, dated far in the future.
    let thief = key("thief");
    let stolen = a.grant(&a.l0, &a.k0, &thief, None, 9_000_000_000_000);
    a.held.put(&stolen).unwrap();
    // Alice forks at the same version with her recovery key, naming a fresh one.
    let (k1r, r1) = (key("alice/1r"), key("alice/recovery/1"));
    let recovered = a.grant(&a.l0, &a.r0, &k1r, Some(&r1), 3_000);
    a.held.put(&recovered).unwrap();
    for order in [
        vec![&a.l0, &a.l1, &stolen, &recovered],
        vec![&recovered, &stolen, &a.l1, &a.l0],
    ] {
        let path = a.path(&order);
        assert_eq!(path.head(), Some(recovered.cid()));
        assert_eq!(path.current_key(), Some(*k1r.did()));
        assert_eq!(path.identity(), Some(*a.k0.did()));
    }
    // Without the recovery fork, the newest key-signed child wins by (updated, CID).
    let by_key = a.path(&[&a.l0, &a.l1, &stolen]);
    assert_eq!(by_key.head(), Some(stolen.cid()));
    // The thief's key passes the hard rules where it is granted, but never counts.
    let theirs = Record::create(&post("mine now"))
        .unwrap()
        .signed_as(cite(&a.k0, &stolen))
        .at(9_000_000_000_001)
        .sign(&thief)
        .unwrap();
    a.held.put(&theirs).unwrap();
    let path = a.path(&[&a.l0, &a.l1, &stolen, &recovered]);
    let Standing::Revoked { reason, .. } = a.standing(&theirs, &path) else {
        panic!("a key granted on a losing branch stayed in force");
    };
    assert!(
        reason.contains("not granted on the winning path"),
        "{reason}"
    );
    let mine = Record::create(&post("back"))
        .unwrap()
        .signed_as(cite(&a.k0, &recovered))
        .sign(&k1r)
        .unwrap();
    a.held.put(&mine).unwrap();
    assert_eq!(a.standing(&mine, &path), Standing::InForce);
}

#[test]
fn a_used_recovery_key_is_spent() {
    let mut a = alice();
    let k1r = key("alice/1r");
    // Recovering must name a new recovery key: none, or the same one, is refused.
    for recovery in [None, Some(&a.r0)] {
        let v = a.grant(&a.l0, &a.r0, &k1r, recovery, 3_000);
        assert_eq!(
            key_error(a.held.put(&v).unwrap_err()),
            KeyError::RecoverySpent {
                recovery: *a.r0.did()
            }
        );
    }
    let r1 = key("alice/recovery/1");
    let recovered = a.grant(&a.l0, &a.r0, &k1r, Some(&r1), 3_000);
    a.held.put(&recovered).unwrap();
    // The spent key no longer signs after the version it made.
    let again = a.grant(&recovered, &a.r0, &key("alice/2"), Some(&key("r2")), 4_000);
    assert!(matches!(
        key_error(a.held.put(&again).unwrap_err()),
        KeyError::NotAuthorized { .. }
    ));
    // A rotation by the key may keep the recovery key as it is.
    let rotated = a.grant(&recovered, &k1r, &key("alice/2"), Some(&r1), 4_000);
    a.held.put(&rotated).unwrap();
}

#[test]
fn a_proof_must_be_the_granted_keys_over_this_log_and_place() {
    let mut a = alice();
    let k2 = key("alice/2");
    let mut forged = KeyLog::grant(&k2, a.k0.did(), &a.l1.cid(), None, vec![]);
    // Claiming someone else's key: the proof is the signer's, not the key's.
    forged.proof = prove(&a.k1, a.k0.did(), Some(&a.l1.cid()));
    let v = a.l1.update(&forged).unwrap().sign(&a.k1).unwrap();
    assert_eq!(
        key_error(a.held.put(&v).unwrap_err()),
        KeyError::BadProof { key: *k2.did() }
    );
    // A proof made for another place in the log (replayed from version 1) fails too.
    let replay = KeyLog {
        proof: prove(&k2, a.k0.did(), Some(&a.l0.cid())),
        ..KeyLog::grant(&k2, a.k0.did(), &a.l1.cid(), None, vec![])
    };
    let v = a.l1.update(&replay).unwrap().sign(&a.k1).unwrap();
    assert!(matches!(
        key_error(a.held.put(&v).unwrap_err()),
        KeyError::BadProof { .. }
    ));
}

#[test]
fn a_signer_citation_must_grant_the_signing_key() {
    let mut a = alice();
    let mallory = key("mallory");
    let claim = |at: &Record, identity: &Keypair, by: &Keypair| {
        Record::create(&post("as alice"))
            .unwrap()
            .signed_as(cite(identity, at))
            .sign(by)
            .unwrap()
    };
    let cases = [
        (claim(&a.l1, &a.k0, &mallory), "grants another key"),
        (claim(&a.p0, &a.k0, &a.k1), "not a core.keys version"),
        (
            claim(&a.l1, &key("bob"), &a.k1),
            "another identity's key log",
        ),
    ];
    for (r, why) in cases {
        let e = key_error(a.held.put(&r).unwrap_err());
        assert!(
            matches!(e, KeyError::KeyNotGranted { reason, .. } if reason.contains(why)),
            "{e}"
        );
    }
    // A citation the checker does not hold yet says which record is missing.
    let mut empty = Held::default();
    let e = key_error(empty.put(&claim(&a.l1, &a.k0, &a.k1)).unwrap_err());
    assert_eq!(e, KeyError::Missing(Missing::Version(a.l1.cid())));
}

#[test]
fn a_log_starts_with_its_first_key_and_is_never_deleted_nor_reuses_a_key() {
    let mut a = alice();
    let k = key("someone");
    let naming_other = Record::create(&KeyLog::root(&a.k1, None))
        .unwrap()
        .sign(&k)
        .unwrap();
    let keeping = Record::create(&KeyLog {
        kept: vec![Link(a.p0.cid())],
        ..KeyLog::root(&k, None)
    })
    .unwrap()
    .sign(&k)
    .unwrap();
    let unproven = Record::create(&KeyLog {
        proof: [0; 64],
        ..KeyLog::root(&k, None)
    })
    .unwrap()
    .sign(&k)
    .unwrap();
    for r in [naming_other, keeping, unproven] {
        assert!(matches!(
            key_error(a.held.put(&r).unwrap_err()),
            KeyError::BadRoot { .. }
        ));
    }
    let reused = a.grant(&a.l1, &a.k1, &a.k0, None, 3_000);
    assert_eq!(
        key_error(a.held.put(&reused).unwrap_err()),
        KeyError::KeyReused {
            key: *a.k0.did(),
            at: a.l0.cid(),
        }
    );
    let gone = a.l1.delete().sign(&a.k0).unwrap();
    assert_eq!(
        key_error(a.held.put(&gone).unwrap_err()),
        KeyError::LogDeleted
    );
    let cited =
        a.l1.update(&KeyLog::grant(
            &key("alice/2"),
            a.k0.did(),
            &a.l1.cid(),
            None,
            vec![],
        ))
        .unwrap()
        .signed_as(cite(&a.k0, &a.l1))
        .sign(&a.k1)
        .unwrap();
    assert!(matches!(
        key_error(a.held.put(&cited).unwrap_err()),
        KeyError::LogCites { field: "$signer" }
    ));
    // A recovery key equal to the key is a schema error.
    let e = Record::create(&KeyLog {
        recovery: Some(*k.did()),
        ..KeyLog::root(&k, None)
    })
    .unwrap_err();
    assert!(e.to_string().contains("recovery"), "{e}");
}

#[test]
fn a_successor_keeps_the_identity() {
    let mut a = alice();
    let bob = key("bob");
    let bobs = Record::create(&post("bob's")).unwrap().sign(&bob).unwrap();
    a.held.put(&bobs).unwrap();
    // Alice's new key cannot take over Bob's post by citing her own log.
    let e = bobs
        .update(&post("alice's now"))
        .unwrap()
        .signed_as(cite(&a.k0, &a.l1))
        .sign(&a.k1)
        .unwrap_err();
    assert_eq!(
        key_error(signing_error(e)),
        KeyError::IdentityChanged {
            expected: *bob.did(),
            found: *a.k0.did(),
        }
    );
    // Nor by signing it bare and sending it elsewhere.
    let mut env = bobs
        .update(&post("x"))
        .unwrap()
        .sign(&bob)
        .unwrap()
        .envelope()
        .clone();
    let bytes = env.resign(&a.k1).unwrap();
    let forged = Record::decode(&bytes).unwrap();
    assert!(matches!(
        a.held.put(&forged).unwrap_err(),
        ChainError::AuthorChanged { .. }
    ));
}

#[test]
fn a_tombstone_takes_its_predecessors_citation() {
    let mut a = alice();
    let p1 =
        a.p0.update(&post("new key"))
            .unwrap()
            .signed_as(cite(&a.k0, &a.l1))
            .at(2_100)
            .sign(&a.k1)
            .unwrap();
    a.held.put(&p1).unwrap();
    let gone = p1.delete().at(2_200).sign(&a.k1).unwrap();
    a.held.put(&gone).unwrap();
    assert_eq!(a.held.info(&gone.cid()).signer, Some(cite(&a.k0, &a.l1)));
    assert_eq!(a.held.info(&gone.cid()).identity(), *a.k0.did());
    // A newer key deletes an older key's version in two steps: re-cite, then delete.
    let q0 = Record::create(&post("old"))
        .unwrap()
        .at(1_200)
        .sign(&a.k0)
        .unwrap();
    a.held.put(&q0).unwrap();
    assert!(matches!(
        signing_error(q0.delete().sign(&a.k1).unwrap_err()),
        ChainError::AuthorChanged { .. }
    ));
    let q1 = q0
        .update(&post("old"))
        .unwrap()
        .signed_as(cite(&a.k0, &a.l1))
        .at(2_300)
        .sign(&a.k1)
        .unwrap();
    a.held.put(&q1).unwrap();
    // The old key deleting after the new one signed is retired.
    let by_old = q1.delete().at(2_400).sign(&a.k0).unwrap();
    assert!(matches!(
        key_error(a.held.put(&by_old).unwrap_err()),
        KeyError::RetiredKey { .. }
    ));
    a.held
        .put(&q1.delete().at(2_400).sign(&a.k1).unwrap())
        .unwrap();
}

#[test]
fn dollar_signer_and_private_are_the_records_fields() {
    let a = alice();
    let with = |k: &str, v: Ipld| {
        let mut m = std::collections::BTreeMap::new();
        m.insert("text".to_owned(), Ipld::String("hi".into()));
        m.insert(k.to_owned(), v);
        Ipld::Map(m)
    };
    let c = cite(&a.k0, &a.l1);
    let signed = with("$signer", c.to_ipld());
    let (fields, rest) = split_record_fields(&signed, Strictness::Create).unwrap();
    assert_eq!(fields.signer, Some(c));
    let Ipld::Map(mut plain) = with("$signer", Ipld::Null) else {
        unreachable!()
    };
    plain.remove("$signer");
    assert_eq!(*rest, Ipld::Map(plain));
    let bad = with("$signer", Ipld::String(a.k0.did().to_string()));
    for s in [Strictness::Create, Strictness::Receive] {
        assert_eq!(split_record_fields(&bad, s).unwrap_err().path, "$signer");
    }
    // `$private` is known: its own checks are the private module's.
    assert!(
        split_record_fields(
            &with("$private", Ipld::Map(Default::default())),
            Strictness::Create
        )
        .is_ok()
    );
    let e = split_record_fields(&with("$later", Ipld::Null), Strictness::Create).unwrap_err();
    assert!(e.message.contains("$signer"), "{e}");
    // A non-map body cannot cite a signer.
    let e = Draft::new("future.widget", Ipld::Integer(1))
        .signed_as(c)
        .sign(&a.k1)
        .unwrap_err();
    assert!(e.to_string().contains("$signer"), "{e}");
}

#[test]
fn the_example_key_log_is_valid_and_rotates() {
    let kind = lookup("core.keys").unwrap();
    let mut g = ExampleGen::new(1);
    let l0 = g.record_of(kind).unwrap();
    l0.verify_first_with(&Nothing).unwrap();
    let log = l0.body_as::<KeyLog>().unwrap().unwrap();
    assert_eq!(log.key, *l0.author());
    assert!(log.proof_verifies(l0.author(), None));
    let mut held = Held::default();
    held.put(&l0).unwrap();
    let p0 = g.record::<Post>();
    held.put(&p0).unwrap();
    let (l1, k1) = g.rotate(&l0, vec![Link(p0.cid())]).unwrap();
    held.put(&l1).unwrap();
    let p1 = g
        .update_as(
            &p0,
            &k1,
            SignerCite {
                identity: *l0.author(),
                at: l1.cid(),
            },
        )
        .unwrap();
    held.put(&p1).unwrap();
    // The generator keeps signing for the identity with the new key.
    let p2 = g.update(&p1).unwrap();
    assert_eq!(p2.author(), k1.did());
    held.put(&p2).unwrap();
    assert_eq!(key_log::KEYS_KIND, kind.name);
}

#[test]
fn a_member_who_rotated_keeps_their_role_in_a_group() {
    use mnode_dag::{group::GroupError, model::core::Role};
    let mut a = alice();
    let owner = key("owner");
    let band = band::group(&[(&owner, Role::Owner), (&a.k0, Role::Member)]);
    let g0 = Record::create(&band)
        .unwrap()
        .at(1_000)
        .sign(&owner)
        .unwrap();
    a.held.put(&g0).unwrap();
    let at = band::cite(&g0, &g0);
    let v0 = Record::create(&post("the band's post"))
        .unwrap()
        .owned_by(at)
        .at(1_500)
        .sign(&owner)
        .unwrap();
    a.held.put(&v0).unwrap();
    // Alice's new key signs for her identity, which the group lists: the edit stands.
    let v1 = v0
        .update(&post("edited by Alice's new key"))
        .unwrap()
        .owned_by(at)
        .signed_as(cite(&a.k0, &a.l1))
        .at(2_100)
        .sign(&a.k1)
        .unwrap();
    a.held.put(&v1).unwrap();
    // The same key without the citation is nobody the group knows.
    let bare = v1
        .update(&post("who?"))
        .unwrap()
        .owned_by(at)
        .at(2_200)
        .sign(&a.k1)
        .unwrap();
    match a.held.put(&bare).unwrap_err() {
        ChainError::Group(GroupError::NoRole { who, .. }) => assert_eq!(who, *a.k1.did()),
        other => panic!("expected NoRole, got {other}"),
    }
    // A citation of someone else's log does not borrow their role.
    let mallory = key("mallory");
    let forged = v1
        .update(&post("borrowed"))
        .unwrap()
        .owned_by(at)
        .signed_as(cite(&a.k0, &a.l1))
        .at(2_300)
        .sign(&mallory)
        .unwrap();
    assert!(matches!(
        key_error(a.held.put(&forged).unwrap_err()),
        KeyError::KeyNotGranted { .. }
    ));
}

#[test]
fn a_log_version_after_the_root_names_its_identity() {
    let mut a = alice();
    assert_eq!(
        a.l1.body_as::<KeyLog>().unwrap().unwrap().identity,
        Some(*a.k0.did())
    );
    let k2 = key("alice/2");
    for named in [None, Some(*a.k1.did())] {
        let wrong = KeyLog {
            identity: named,
            ..KeyLog::grant(&k2, a.k0.did(), &a.l1.cid(), None, vec![])
        };
        let v = a.l1.update(&wrong).unwrap().sign(&a.k1).unwrap();
        assert_eq!(
            key_error(a.held.put(&v).unwrap_err()),
            KeyError::LogIdentity {
                identity: *a.k0.did(),
                named
            }
        );
    }
    // A root names none: its key is the identity.
    let k = key("someone");
    let root = Record::create(&KeyLog {
        identity: Some(*k.did()),
        ..KeyLog::root(&k, None)
    })
    .unwrap()
    .sign(&k)
    .unwrap();
    assert!(matches!(
        key_error(a.held.put(&root).unwrap_err()),
        KeyError::BadRoot { .. }
    ));
}

//! Groups that co-edit: the hard rules G1–G7 and which versions stay in force, checked against
//! an in-memory authority (the records themselves, by CID), as every node checks them.

#![allow(clippy::unwrap_used)]

use mnode_dag::{
    Cid, Draft, Ipld, Keypair, Record,
    authority::{Authority, Missing},
    group::{GroupError, GroupPath, OwnerCite, Permission, Standing, standing},
    model::core::{Group, Role},
    record::{ChainError, RecordError},
    registry::{KINDS, Strictness, split_record_fields},
    testing::{
        Held,
        band::{body, cite, group},
    },
};

fn key(name: &str) -> Keypair {
    Keypair::derive(16, name)
}

/// Five people and a group: owner O, admin A, members M and N; X is nobody.
struct Band {
    held: Held,
    o: Keypair,
    a: Keypair,
    m: Keypair,
    n: Keypair,
    x: Keypair,
    g0: Record,
}

fn band() -> Band {
    let (o, a, m, n, x) = (key("o"), key("a"), key("m"), key("n"), key("x"));
    let g0 = Record::create(&group(&[
        (&o, Role::Owner),
        (&a, Role::Admin),
        (&m, Role::Member),
        (&n, Role::Member),
    ]))
    .unwrap()
    .at(1_000)
    .sign(&o)
    .unwrap();
    let mut held = Held::default();
    held.put(&g0).unwrap();
    Band {
        held,
        o,
        a,
        m,
        n,
        x,
        g0,
    }
}

impl Band {
    /// An `art.artist_group` page owned by the group, made by `by` citing `at`.
    fn page(&mut self, by: &Keypair, at: &Record) -> Record {
        let r = Draft::new("art.artist_group", body("The Band"))
            .owned_by(cite(&self.g0, at))
            .at(2_000)
            .sign(by)
            .unwrap();
        self.held.put(&r).unwrap();
        r
    }

    fn edit(&self, prev: &Record, by: &Keypair, at: &Record, text: &str) -> Record {
        prev.update_body(body(text))
            .owned_by(cite(&self.g0, at))
            .at(prev.envelope().updated + 1)
            .sign(by)
            .unwrap()
    }

    fn regroup(&mut self, prev: &Record, by: &Keypair, g: Group) -> Result<Record, ChainError> {
        let r = prev
            .update(&g)
            .unwrap()
            .at(prev.envelope().updated + 1)
            .sign(by)
            .unwrap();
        self.held.put(&r)?;
        Ok(r)
    }

    fn path(&self, versions: &[&Record]) -> GroupPath {
        GroupPath {
            versions: versions
                .iter()
                .map(|r| (r.cid(), self.held.group(&r.cid()).unwrap().unwrap()))
                .collect(),
        }
    }

    fn standing(&self, v: &Record, path: &GroupPath) -> Standing {
        standing(&self.held.info(&v.cid()), path, &self.held, |_| false).unwrap()
    }
}

fn group_error(e: ChainError) -> GroupError {
    match e {
        ChainError::Group(g) => g,
        other => panic!("expected a group rule, got {other}"),
    }
}

#[test]
fn a_member_edits_the_groups_item_and_a_stranger_cannot() {
    let mut b = band();
    let g0 = b.g0.clone();
    let v0 = b.page(&b.o.clone(), &g0);
    let v1 = b.edit(&v0, &b.m, &g0, "The Band (live)");
    b.held.put(&v1).unwrap();
    assert_eq!(v1.owner(), Some(cite(&g0, &g0)));
    let v2 = b.edit(&v1, &b.x, &g0, "taken over");
    let e = group_error(b.held.put(&v2).unwrap_err());
    assert!(
        matches!(
            e,
            GroupError::NoRole {
                needed: Permission::Edit,
                has: None,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("is not a member"), "{e}");
    // A stranger cannot make a group's item either.
    let made = Draft::new("art.artist_group", body("Fake Band"))
        .owned_by(cite(&g0, &g0))
        .sign(&b.x)
        .unwrap();
    assert!(matches!(
        group_error(b.held.put(&made).unwrap_err()),
        GroupError::NoRole { .. }
    ));
}

#[test]
fn deleting_takes_an_admin_and_cites_the_predecessors_group_version() {
    let mut b = band();
    let g0 = b.g0.clone();
    let v0 = b.page(&b.m.clone(), &g0);
    let by_member = v0.delete().sign(&b.m).unwrap();
    let e = group_error(b.held.put(&by_member).unwrap_err());
    assert!(
        matches!(
            e,
            GroupError::NoRole {
                needed: Permission::Delete,
                has: Some(Role::Member),
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string().contains("deleting needs owner or admin"),
        "{e}"
    );
    let by_admin = v0.delete().sign(&b.a).unwrap();
    b.held.put(&by_admin).unwrap();
    assert_eq!(b.held.info(&by_admin.cid()).owner, Some(cite(&g0, &g0)));
}

#[test]
fn the_owner_is_fixed_for_the_items_life() {
    let mut b = band();
    let g0 = b.g0.clone();
    let v0 = b.page(&b.o.clone(), &g0);
    let plain = v0.update_body(body("mine now")).sign(&b.o).unwrap();
    assert!(matches!(
        group_error(b.held.put(&plain).unwrap_err()),
        GroupError::OwnerChanged { found: None, .. }
    ));
    // A plain item never becomes a group's, and still takes only its author's key.
    let mine = Draft::new("art.artist_group", body("Solo"))
        .sign(&b.m)
        .unwrap();
    b.held.put(&mine).unwrap();
    let adopted = mine
        .update_body(body("Solo"))
        .owned_by(cite(&g0, &g0))
        .sign(&b.m)
        .unwrap();
    assert!(matches!(
        group_error(b.held.put(&adopted).unwrap_err()),
        GroupError::OwnerChanged { expected: None, .. }
    ));
    let other = mine.update_body(body("x")).sign(&b.o);
    assert!(matches!(
        other.unwrap_err(),
        RecordError::Chain(c) if matches!(*c, ChainError::AuthorChanged { .. })
    ));
}

#[test]
fn a_citation_must_be_a_live_version_of_the_named_group() {
    let mut b = band();
    let g0 = b.g0.clone();
    let other = Record::create(&group(&[(&b.x, Role::Owner)]))
        .unwrap()
        .sign(&b.x)
        .unwrap();
    b.held.put(&other).unwrap();
    let wrong = Draft::new("art.artist_group", body("x"))
        .owned_by(OwnerCite {
            group: g0.id(),
            at: other.cid(),
        })
        .sign(&b.x)
        .unwrap();
    assert!(matches!(
        group_error(b.held.put(&wrong).unwrap_err()),
        GroupError::NotAGroupVersion { .. }
    ));
    let unknown = Draft::new("art.artist_group", body("x"))
        .owned_by(OwnerCite {
            group: g0.id(),
            at: b.page(&b.o.clone(), &g0).cid(),
        })
        .sign(&b.o)
        .unwrap();
    assert!(matches!(
        group_error(b.held.put(&unknown).unwrap_err()),
        GroupError::NotAGroupVersion { .. }
    ));
    let gone = b.g0.delete().sign(&b.o).unwrap();
    b.held.put(&gone).unwrap();
    let after = Draft::new("art.artist_group", body("x"))
        .owned_by(cite(&g0, &gone))
        .sign(&b.o)
        .unwrap();
    assert!(matches!(
        group_error(b.held.put(&after).unwrap_err()),
        GroupError::GroupDeleted { .. }
    ));
    // A citation the checker does not hold yet says which record is missing.
    let mut empty = Held::default();
    let v = Draft::new("art.artist_group", body("x"))
        .owned_by(cite(&g0, &g0))
        .sign(&b.o)
        .unwrap();
    let e = group_error(empty.put(&v).unwrap_err());
    assert_eq!(e, GroupError::Missing(Missing::Version(g0.cid())));
}

#[test]
fn a_removed_member_is_rejected_or_out_of_force_everywhere() {
    let mut b = band();
    let g0 = b.g0.clone();
    let v0 = b.page(&b.o.clone(), &g0);
    let (o, m, n) = (b.o.clone(), b.m.clone(), b.n.clone());
    let g1 = b
        .regroup(&g0, &o, group(&[(&o, Role::Owner), (&n, Role::Member)]))
        .unwrap();
    // Citing the removal: no role there.
    let e = group_error(b.held.put(&b.edit(&v0, &m, &g1, "mine")).unwrap_err());
    assert!(matches!(e, GroupError::NoRole { has: None, .. }), "{e}");
    // Once the item cites the removal, citing an older group version is refused (G5).
    let v1 = b.edit(&v0, &n, &g1, "The Band, now a duo");
    b.held.put(&v1).unwrap();
    let e = group_error(b.held.put(&b.edit(&v1, &m, &g0, "mine")).unwrap_err());
    assert!(matches!(e, GroupError::StaleGroupVersion { .. }), "{e}");
    // An edit of the untouched version 0, citing the old group version, passes the hard rules
    // but every node holding the removal counts it out of force.
    let fork = b.edit(&v0, &m, &g0, "mine after all");
    b.held.put(&fork).unwrap();
    let path = b.path(&[&g0, &g1]);
    let Standing::Revoked { at, reason } = b.standing(&fork, &path) else {
        panic!("a removed member's edit stayed in force");
    };
    assert_eq!(at, g1.cid());
    assert!(reason.contains("is not a member"), "{reason}");
    // A node that has not seen the removal yet keeps it (it converges when the removal comes).
    assert_eq!(b.standing(&fork, &b.path(&[&g0])), Standing::InForce);
    // What others did stays in force.
    assert_eq!(b.standing(&v0, &path), Standing::InForce);
    assert_eq!(b.standing(&v1, &path), Standing::InForce);
}

#[test]
fn settled_versions_of_a_removed_member_stay() {
    let mut b = band();
    let g0 = b.g0.clone();
    let (o, m) = (b.o.clone(), b.m.clone());
    let v0 = b.page(&m, &g0);
    let mut g = group(&[(&o, Role::Owner)]);
    g.settled = vec![mnode_dag::Link(v0.cid())];
    let g1 = b.regroup(&g0, &o, g).unwrap();
    assert_eq!(b.standing(&v0, &b.path(&[&g0, &g1])), Standing::InForce);
    // Work the group did not settle is out.
    let v1 = b.edit(&v0, &m, &g0, "later");
    b.held.put(&v1).unwrap();
    assert!(matches!(
        b.standing(&v1, &b.path(&[&g0, &g1])),
        Standing::Revoked { .. }
    ));
}

#[test]
fn a_downgrade_takes_effect_at_its_group_version_per_permission() {
    let mut b = band();
    let g0 = b.g0.clone();
    let (o, a) = (b.o.clone(), b.a.clone());
    let v0 = b.page(&o, &g0);
    let del = v0.delete().sign(&a).unwrap();
    // The owner demotes the admin to member: deleting is gone from g1 on, editing is not.
    let g1 = b
        .regroup(&g0, &o, group(&[(&o, Role::Owner), (&a, Role::Member)]))
        .unwrap();
    b.held.put(&del).unwrap();
    let edit = b.edit(&v0, &a, &g0, "edited");
    b.held.put(&edit).unwrap();
    let path = b.path(&[&g0, &g1]);
    assert!(matches!(b.standing(&del, &path), Standing::Revoked { at, .. } if at == g1.cid()));
    assert_eq!(b.standing(&edit, &path), Standing::InForce);
    // Before the downgrade, both count.
    assert_eq!(b.standing(&del, &b.path(&[&g0])), Standing::InForce);
}

#[test]
fn a_citation_on_a_losing_group_fork_is_judged_from_where_it_branched() {
    let mut b = band();
    let g0 = b.g0.clone();
    let (o, m, n) = (b.o.clone(), b.m.clone(), b.n.clone());
    // Two owners' forks of the group: one keeps m, one (the head) removes m.
    let keep = b
        .regroup(&g0, &o, {
            let mut g = group(&[(&o, Role::Owner), (&m, Role::Member), (&n, Role::Member)]);
            g.name = "The Band!".into();
            g
        })
        .unwrap();
    let head = b
        .regroup(&g0, &o, group(&[(&o, Role::Owner), (&n, Role::Member)]))
        .unwrap();
    let v0 = b.page(&m, &keep);
    let path = b.path(&[&g0, &head]);
    assert!(matches!(b.standing(&v0, &path), Standing::Revoked { at, .. } if at == head.cid()));
    // n is a member on both: in force.
    let v1 = b.edit(&v0, &n, &keep, "n was here");
    b.held.put(&v1).unwrap();
    assert_eq!(b.standing(&v1, &path), Standing::InForce);
}

#[test]
fn the_group_chain_governs_itself() {
    let mut b = band();
    let g0 = b.g0.clone();
    let (o, a, m, n, x) = (
        b.o.clone(),
        b.a.clone(),
        b.m.clone(),
        b.n.clone(),
        b.x.clone(),
    );
    let all = |extra: &[(&Keypair, Role)]| {
        let mut v = vec![
            (&o, Role::Owner),
            (&a, Role::Admin),
            (&m, Role::Member),
            (&n, Role::Member),
        ];
        v.extend_from_slice(extra);
        group(&v)
    };
    // An admin adds a member and makes one a moderator…
    let g1 = b.regroup(&g0, &a, all(&[(&x, Role::Moderator)])).unwrap();
    // …but may not make an admin or touch the owner.
    let e = group_error(
        b.regroup(
            &g1,
            &a,
            group(&[(&o, Role::Owner), (&a, Role::Admin), (&m, Role::Admin)]),
        )
        .unwrap_err(),
    );
    assert!(
        e.to_string()
            .contains("only owners change owners and admins"),
        "{e}"
    );
    let e = group_error(b.regroup(&g1, &a, group(&[(&a, Role::Owner)])).unwrap_err());
    assert!(
        matches!(
            e,
            GroupError::GroupChange {
                role: Some(Role::Admin),
                ..
            }
        ),
        "{e}"
    );
    // A member may not add anyone, but may leave.
    let e = group_error(
        b.regroup(
            &g1,
            &m,
            all(&[(&x, Role::Moderator), (&key("y"), Role::Member)]),
        )
        .unwrap_err(),
    );
    assert!(
        matches!(
            e,
            GroupError::GroupChange {
                role: Some(Role::Member),
                ..
            }
        ),
        "{e}"
    );
    let g2 = b
        .regroup(
            &g1,
            &m,
            group(&[
                (&o, Role::Owner),
                (&a, Role::Admin),
                (&n, Role::Member),
                (&x, Role::Moderator),
            ]),
        )
        .unwrap();
    // Strangers change nothing; only an owner deletes the group.
    assert!(b.regroup(&g2, &key("z"), all(&[])).is_err());
    let e = group_error(b.held.put(&g2.delete().sign(&a).unwrap()).unwrap_err());
    assert!(e.to_string().contains("owners only"), "{e}");
    b.held.put(&g2.delete().sign(&o).unwrap()).unwrap();
    // Version 0 is made by one of its owners; a group has no owner but itself.
    let founded = Record::create(&group(&[(&o, Role::Owner)]))
        .unwrap()
        .sign(&x)
        .unwrap();
    assert!(matches!(
        group_error(b.held.put(&founded).unwrap_err()),
        GroupError::FounderNotOwner { .. }
    ));
    let owned = Record::create(&group(&[(&x, Role::Owner)]))
        .unwrap()
        .owned_by(cite(&g0, &g0))
        .sign(&x)
        .unwrap();
    assert_eq!(
        group_error(b.held.put(&owned).unwrap_err()),
        GroupError::GroupOwned
    );
}

#[test]
fn group_rules_hold_for_records_received_from_elsewhere() {
    let mut b = band();
    let g0 = b.g0.clone();
    let v0 = b.page(&b.o.clone(), &g0);
    let v1 = b.edit(&v0, &b.m, &g0, "The Band (live)");
    let received = Record::decode(v1.bytes()).unwrap();
    assert_eq!(received.owner(), v1.owner());
    received
        .verify_follows_with(&b.held.info(&v0.cid()), &b.held)
        .unwrap();
    let stranger = Record::decode(b.edit(&v0, &b.x, &g0, "x").bytes()).unwrap();
    assert!(
        stranger
            .verify_follows_with(&b.held.info(&v0.cid()), &b.held)
            .is_err()
    );
}

#[test]
fn dollar_keys_are_the_records_not_the_kinds() {
    let b = band();
    let g0 = b.g0.clone();
    let with = |k: &str, v: Ipld| {
        let Ipld::Map(mut m) = body("x") else {
            unreachable!()
        };
        m.insert(k.to_owned(), v);
        Ipld::Map(m)
    };
    let owned = with("$owner", cite(&g0, &g0).to_ipld());
    let (fields, rest) = split_record_fields(&owned, Strictness::Create).unwrap();
    assert_eq!(fields.owner, Some(cite(&g0, &g0)));
    assert_eq!(*rest, body("x"));
    // An unknown `$` key: refused when made here, kept when received.
    let unknown = with("$later", Ipld::Integer(1));
    let e = Draft::new("art.artist_group", unknown.clone())
        .sign(&b.o)
        .unwrap_err();
    assert!(e.to_string().contains("$later"), "{e}");
    assert!(split_record_fields(&unknown, Strictness::Receive).is_ok());
    // A malformed `$owner` is refused both ways.
    let bad = with("$owner", Ipld::String("the band".into()));
    for s in [Strictness::Create, Strictness::Receive] {
        let e = split_record_fields(&bad, s).unwrap_err();
        assert_eq!(e.path, "$owner");
    }
    // No kind has a field of its own starting with `$`.
    let mut g = mnode_dag::example::ExampleGen::new(7);
    for kind in KINDS {
        let Ipld::Map(m) = kind.example(&mut g).unwrap() else {
            continue;
        };
        assert!(!m.keys().any(|k| k.starts_with('$')), "{}", kind.name);
        let schema = serde_json::to_string(&kind.schema()).unwrap();
        assert!(!schema.contains("\"$owner\""), "{}", kind.name);
    }
}

#[test]
fn a_member_leaving_settles_their_own_work_and_nobody_elses() {
    let mut b = band();
    let g0 = b.g0.clone();
    let v0 = b.page(&b.o.clone(), &g0);
    let v1 = b.edit(&v0, &b.m, &g0, "edited by M");
    b.held.put(&v1).unwrap();
    let (o, a, m, n) = (b.o.clone(), b.a.clone(), b.m.clone(), b.n.clone());
    let without_m = |settled: Vec<Cid>| Group {
        settled: settled.into_iter().map(mnode_dag::Link).collect(),
        ..group(&[(&o, Role::Owner), (&a, Role::Admin), (&n, Role::Member)])
    };
    // Settling the owner's version 0 on the way out is not M's to do.
    let e = group_error(
        b.regroup(&g0, &m, without_m(vec![v1.cid(), v0.cid()]))
            .unwrap_err(),
    );
    assert!(
        matches!(&e, GroupError::GroupChange { what, .. } if what.contains("only their own")),
        "{e}"
    );
    // M's own edit stays in force after M leaves.
    b.regroup(&g0, &m, without_m(vec![v1.cid()])).unwrap();
}

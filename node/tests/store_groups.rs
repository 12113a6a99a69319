//! Items a group owns, in the store: every put (made here, received, imported) checks the group
//! rules against the group versions stored, and an item's head is its newest version still in
//! force under the group's head, judged again whenever that head moves.

#![allow(clippy::unwrap_used)]

use mnode_dag::{
    Cid, Draft, Keypair, Record, RecordError,
    group::GroupError,
    model::core::{Group, Role},
    record::ChainError,
    testing::band::{body, cite, group},
};
use mnode_node::store::{ListFilter, Put, Store, StoreError};
use mnode_protocols::GossipTopic;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("db"), 8).unwrap();
    (dir, s)
}

fn key(name: &str) -> Keypair {
    Keypair::derive(41, name)
}

fn page(g: &Record, at: &Record, by: &Keypair, t: u64) -> Record {
    Draft::new("art.artist_group", body("The Band"))
        .owned_by(cite(g, at))
        .at(t)
        .sign(by)
        .unwrap()
}

fn edit(prev: &Record, g: &Record, at: &Record, by: &Keypair, text: &str, t: u64) -> Record {
    prev.update_body(body(text))
        .owned_by(cite(g, at))
        .at(t)
        .sign(by)
        .unwrap()
}

fn regroup(prev: &Record, by: &Keypair, g: &Group, t: u64) -> Record {
    prev.update(g).unwrap().at(t).sign(by).unwrap()
}

fn head(s: &Store, id: &Cid) -> Cid {
    s.item(id).unwrap().unwrap().head
}

fn listed(s: &Store) -> Vec<Cid> {
    let filter = ListFilter {
        kind: Some("art.artist_group".into()),
        ..ListFilter::default()
    };
    s.list(&filter)
        .unwrap()
        .items
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

fn group_rule(e: StoreError) -> GroupError {
    match e {
        StoreError::Record(RecordError::Chain(c)) => match *c {
            ChainError::Group(g) => g,
            other => panic!("expected a group rule, got {other}"),
        },
        other => panic!("expected a group rule, got {other}"),
    }
}

#[test]
fn members_edit_and_strangers_change_nothing() {
    let (_d, s) = store();
    let (o, m, x) = (key("o"), key("m"), key("x"));
    let g0 = Record::create(&group(&[(&o, Role::Owner), (&m, Role::Member)]))
        .unwrap()
        .at(1_000)
        .sign(&o)
        .unwrap();
    s.put(g0.clone()).unwrap();
    let v0 = page(&g0, &g0, &o, 2_000);
    s.put(v0.clone()).unwrap();
    let v1 = edit(&v0, &g0, &g0, &m, "The Band (live)", 3_000);
    assert!(matches!(
        s.put(v1.clone()).unwrap(),
        Put::Stored { head: true, .. }
    ));
    assert_eq!(head(&s, &v0.id()), v1.cid());
    let item = s.item(&v0.id()).unwrap().unwrap();
    assert_eq!(item.owner, Some(g0.id()));
    assert_eq!(listed(&s), vec![v0.id()]);

    let before = s.stats().unwrap();
    let e = group_rule(s.put(edit(&v1, &g0, &g0, &x, "mine", 4_000)).unwrap_err());
    assert!(matches!(e, GroupError::NoRole { has: None, .. }), "{e}");
    let e = group_rule(s.put(v1.delete().at(4_000).sign(&m).unwrap()).unwrap_err());
    assert!(
        e.to_string().contains("deleting needs owner or admin"),
        "{e}"
    );
    assert_eq!(
        s.stats().unwrap(),
        before,
        "a refused version changes nothing"
    );
    assert_eq!(head(&s, &v0.id()), v1.cid());
}

#[test]
fn a_version_citing_a_group_version_not_held_waits_for_it() {
    let (_d, s) = store();
    let o = key("o");
    let g0 = Record::create(&group(&[(&o, Role::Owner)]))
        .unwrap()
        .at(1_000)
        .sign(&o)
        .unwrap();
    let v0 = page(&g0, &g0, &o, 2_000);
    let e = s.put(v0.clone()).unwrap_err();
    assert!(
        matches!(e, StoreError::MissingAuthority { cid, missing } if cid == v0.cid() && missing == g0.cid()),
        "{e}"
    );
    assert!(s.item(&v0.id()).unwrap().is_none());
    // In one batch, the group's version before the item's, as catch-up and CAR import order
    // them.
    s.put_batch(vec![g0.clone(), v0.clone()]).unwrap();
    assert_eq!(head(&s, &v0.id()), v0.cid());
}

#[test]
fn removing_a_member_takes_their_concurrent_edit_out_of_force() {
    let (_d, s) = store();
    let (o, m) = (key("o"), key("m"));
    let g0 = Record::create(&group(&[(&o, Role::Owner), (&m, Role::Member)]))
        .unwrap()
        .at(1_000)
        .sign(&o)
        .unwrap();
    let v0 = page(&g0, &g0, &o, 2_000);
    s.put_batch(vec![g0.clone(), v0.clone()]).unwrap();
    // m edits on one node, while the owner removes m on another; the edit arrives first.
    let mine = edit(&v0, &g0, &g0, &m, "mine", 5_000);
    s.put(mine.clone()).unwrap();
    assert_eq!(head(&s, &v0.id()), mine.cid());
    let g1 = regroup(&g0, &o, &group(&[(&o, Role::Owner)]), 3_000);
    s.put(g1.clone()).unwrap();
    assert_eq!(
        head(&s, &v0.id()),
        v0.cid(),
        "the removal takes the removed member's edit out of force"
    );
    assert_eq!(listed(&s), vec![v0.id()]);
    // Received in the other order, the store ends the same.
    let (_d2, t) = store();
    t.put_batch(vec![g0.clone(), v0.clone(), g1.clone()])
        .unwrap();
    assert!(matches!(
        t.put(mine.clone()).unwrap(),
        Put::Stored { head: false, .. }
    ));
    assert_eq!(head(&t, &v0.id()), v0.cid());
    // An item only the removed member ever wrote drops out of the listings.
    let (_d3, u) = store();
    let solo = page(&g0, &g0, &m, 2_500);
    u.put_batch(vec![g0.clone(), solo.clone()]).unwrap();
    assert_eq!(listed(&u), vec![solo.id()]);
    u.put(g1.clone()).unwrap();
    assert!(listed(&u).is_empty());
    assert!(u.item(&solo.id()).unwrap().unwrap().revoked);
}

#[test]
fn a_group_fork_decides_by_its_newest_tip_and_items_follow_it() {
    let (_d, s) = store();
    let (o, p, m) = (key("o"), key("p"), key("m"));
    let g0 = Record::create(&group(&[
        (&o, Role::Owner),
        (&p, Role::Owner),
        (&m, Role::Member),
    ]))
    .unwrap()
    .at(1_000)
    .sign(&o)
    .unwrap();
    let v0 = page(&g0, &g0, &o, 2_000);
    let mine = edit(&v0, &g0, &g0, &m, "mine", 2_500);
    s.put_batch(vec![g0.clone(), v0.clone(), mine.clone()])
        .unwrap();
    // Two owners fork the group: o removes m, p keeps m. The newer tip wins (DESIGN §2).
    let without = regroup(
        &g0,
        &o,
        &group(&[(&o, Role::Owner), (&p, Role::Owner)]),
        3_000,
    );
    s.put(without.clone()).unwrap();
    assert_eq!(head(&s, &v0.id()), v0.cid());
    let mut kept = group(&[(&o, Role::Owner), (&p, Role::Owner), (&m, Role::Member)]);
    kept.name = "The Band!".into();
    let with = regroup(&g0, &p, &kept, 4_000);
    s.put(with.clone()).unwrap();
    assert_eq!(head(&s, &g0.id()), with.cid());
    assert_eq!(head(&s, &v0.id()), mine.cid(), "m's edit is back in force");
    // A later version on the first fork flips the group back, and the item with it.
    let again = regroup(
        &without,
        &o,
        &group(&[(&o, Role::Owner), (&p, Role::Owner)]),
        5_000,
    );
    s.put(again).unwrap();
    assert_eq!(head(&s, &v0.id()), v0.cid());
}

#[test]
fn group_items_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (o, m) = (key("o"), key("m"));
    let g0 = Record::create(&group(&[(&o, Role::Owner), (&m, Role::Member)]))
        .unwrap()
        .at(1_000)
        .sign(&o)
        .unwrap();
    let v0 = page(&g0, &g0, &m, 2_000);
    {
        let s = Store::open(&dir.path().join("db"), 8).unwrap();
        s.put_batch(vec![g0.clone(), v0.clone()]).unwrap();
    }
    let s = Store::open(&dir.path().join("db"), 8).unwrap();
    let g1 = regroup(&g0, &o, &group(&[(&o, Role::Owner)]), 3_000);
    s.put(g1).unwrap();
    assert!(s.item(&v0.id()).unwrap().unwrap().revoked);
}

#[test]
fn a_tombstone_of_a_groups_item_is_in_the_groups_catch_up_set() {
    let (_d, s) = store();
    let (o, m) = (key("o"), key("m"));
    let g0 = Record::create(&group(&[(&o, Role::Owner), (&m, Role::Member)]))
        .unwrap()
        .at(1_000)
        .sign(&o)
        .unwrap();
    let v0 = page(&g0, &g0, &m, 2_000);
    let gone = v0.delete().at(3_000).sign(&o).unwrap();
    s.put_batch(vec![g0.clone(), v0.clone(), gone.clone()])
        .unwrap();
    assert!(s.item(&v0.id()).unwrap().unwrap().deleted);
    let set = |t: GossipTopic| -> Vec<(u64, Vec<u8>)> {
        s.sync_items(&t)
            .unwrap()
            .into_iter()
            .map(|(at, d)| (at, d.to_vec()))
            .collect()
    };
    let filed = (3_000, gone.cid().hash().digest().to_vec());
    // On the group's topic (the tombstone names no `$owner`; the version it replaces does)…
    assert!(set(GossipTopic::Group(g0.id())).contains(&filed));
    // …and on its author's, as every version.
    assert!(set(GossipTopic::Author(*o.did())).contains(&filed));
}

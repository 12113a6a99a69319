//! Key rotation in the store: every put (made here, received, imported) checks the key rules
//! against the key log versions stored and those earlier in the batch; a key log's head is its
//! winning path's end; an identity's items show their newest version still in force under that
//! path, and are judged again when the path's head moves. Accounts make the log's root and the
//! rotations, which the store then takes.

#![allow(clippy::unwrap_used)]

use mnode_dag::{
    Cid, Keypair, Link, Record, RecordError,
    key_log::{KeyError, SignerCite},
    model::{core::KeyLog, social::Post},
    record::ChainError,
};
use mnode_node::{
    accounts::{Accounts, Role},
    keystore::Keystore,
    store::{ListFilter, Put, Store, StoreError},
};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("db"), 8).unwrap();
    (dir, s)
}

fn key(name: &str) -> Keypair {
    Keypair::derive(43, name)
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

fn head(s: &Store, id: &Cid) -> Cid {
    s.item(id).unwrap().unwrap().head
}

/// The posts listed under `who`.
fn by_author(s: &Store, who: &Keypair) -> Vec<Cid> {
    let filter = ListFilter {
        author: Some(*who.did()),
        kind: Some("social.post".into()),
        ..ListFilter::default()
    };
    s.list(&filter)
        .unwrap()
        .items
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

fn posts(s: &Store) -> Vec<Cid> {
    let filter = ListFilter {
        kind: Some("social.post".into()),
        ..ListFilter::default()
    };
    s.list(&filter)
        .unwrap()
        .items
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

fn key_rule(e: StoreError) -> KeyError {
    match e {
        StoreError::Record(RecordError::Chain(c)) => match *c {
            ChainError::Key(k) => k,
            other => panic!("expected a key rule, got {other}"),
        },
        other => panic!("expected a key rule, got {other}"),
    }
}

/// Alice (first key `k0`, recovery key `r0`), her key log's root `l0`, a post `p0` made with
/// `k0`, and her rotation `l1` to `k1`, which keeps `p0`.
struct Alice {
    k0: Keypair,
    r0: Keypair,
    k1: Keypair,
    l0: Record,
    p0: Record,
    l1: Record,
}

fn alice() -> Alice {
    let (k0, r0, k1) = (key("alice"), key("alice/recovery"), key("alice/1"));
    let l0 = Record::create(&KeyLog::root(&k0, Some(*r0.did())))
        .unwrap()
        .at(1_000)
        .sign(&k0)
        .unwrap();
    let p0 = Record::create(&post("before the rotation"))
        .unwrap()
        .at(1_100)
        .sign(&k0)
        .unwrap();
    let l1 = grant(&l0, &k0, &k0, &k1, Some(&r0), vec![p0.cid()], 2_000);
    Alice {
        k0,
        r0,
        k1,
        l0,
        p0,
        l1,
    }
}

/// The version after log version `prev` of `identity`'s log, granting `new`, signed by `by`.
fn grant(
    prev: &Record,
    identity: &Keypair,
    by: &Keypair,
    new: &Keypair,
    recovery: Option<&Keypair>,
    kept: Vec<Cid>,
    at: u64,
) -> Record {
    prev.update(&KeyLog::grant(
        new,
        identity.did(),
        &prev.cid(),
        recovery.map(|r| *r.did()),
        kept.into_iter().map(Link).collect(),
    ))
    .unwrap()
    .at(at)
    .sign(by)
    .unwrap()
}

impl Alice {
    /// A store holding the root, the post and the rotation.
    fn stored(&self) -> (tempfile::TempDir, Store) {
        let (d, s) = store();
        s.put_batch(vec![self.l0.clone(), self.p0.clone(), self.l1.clone()])
            .unwrap();
        (d, s)
    }

    /// `prev`'s next version, signed by `k1` for Alice (citing `l1`).
    fn edit_with_new_key(&self, prev: &Record, text: &str, at: u64) -> Record {
        prev.update(&post(text))
            .unwrap()
            .signed_as(cite(&self.k0, &self.l1))
            .at(at)
            .sign(&self.k1)
            .unwrap()
    }
}

#[test]
fn after_a_rotation_the_new_key_edits_an_old_item() {
    let a = alice();
    let (_d, s) = a.stored();
    assert_eq!(
        head(&s, &a.l0.id()),
        a.l1.cid(),
        "the rotation is the log's head"
    );
    assert_eq!(
        s.identity_log(a.k0.did()).unwrap(),
        Some((a.l0.id(), false))
    );
    let p1 = a.edit_with_new_key(&a.p0, "edited with the new key", 2_100);
    assert!(matches!(
        s.put(p1.clone()).unwrap(),
        Put::Stored { head: true, .. }
    ));
    assert_eq!(head(&s, &a.p0.id()), p1.cid());
    // The item's author stays the identity; the version's is the key that signed it.
    let item = s.item(&a.p0.id()).unwrap().unwrap();
    assert_eq!(item.author, *a.k0.did());
    assert!(!item.revoked);
    assert_eq!(
        s.version_of(&p1.cid()).unwrap().unwrap().author,
        *a.k1.did()
    );
    // A new item made with the new key is listed under the identity too.
    let fresh = Record::create(&post("new"))
        .unwrap()
        .signed_as(cite(&a.k0, &a.l1))
        .at(2_200)
        .sign(&a.k1)
        .unwrap();
    s.put(fresh.clone()).unwrap();
    assert_eq!(by_author(&s, &a.k0), vec![fresh.id(), a.p0.id()]);
    assert!(by_author(&s, &a.k1).is_empty());
    // The new key deletes what it signed; the tombstone keeps the citation.
    let gone = p1.delete().at(2_300).sign(&a.k1).unwrap();
    s.put(gone.clone()).unwrap();
    let info = s.version_of(&gone.cid()).unwrap().unwrap();
    assert_eq!(info.signer, Some(cite(&a.k0, &a.l1)));
    assert_eq!(info.identity(), *a.k0.did());
    assert_eq!(by_author(&s, &a.k0), vec![fresh.id()]);
}

#[test]
fn a_forged_rotation_is_refused() {
    let a = alice();
    let (_d, s) = a.stored();
    let before = s.stats().unwrap();
    let mallory = key("mallory");
    let forged = grant(&a.l1, &a.k0, &mallory, &mallory, None, vec![], 3_000);
    let e = key_rule(s.put(forged).unwrap_err());
    assert_eq!(
        e,
        KeyError::NotAuthorized {
            signer: *mallory.did(),
            log_at: a.l1.cid(),
        }
    );
    // The key rotated away signs no more log versions either.
    let late = grant(&a.l1, &a.k0, &a.k0, &mallory, None, vec![], 3_000);
    assert!(matches!(
        key_rule(s.put(late).unwrap_err()),
        KeyError::NotAuthorized { .. }
    ));
    assert_eq!(
        s.stats().unwrap(),
        before,
        "a refused rotation changes nothing"
    );
    assert_eq!(head(&s, &a.l0.id()), a.l1.cid());
}

#[test]
fn an_old_key_post_after_the_rotation_is_retired() {
    let a = alice();
    let (_d, s) = a.stored();
    // Whoever still holds the first key edits the kept post, and posts anew.
    let edit =
        a.p0.update(&post("edited with the old key"))
            .unwrap()
            .at(5_000)
            .sign(&a.k0)
            .unwrap();
    assert!(matches!(
        s.put(edit.clone()).unwrap(),
        Put::Stored { head: false, .. }
    ));
    assert_eq!(
        head(&s, &a.p0.id()),
        a.p0.cid(),
        "the kept version stays the head"
    );
    let late = Record::create(&post("posted with the old key"))
        .unwrap()
        .at(5_100)
        .sign(&a.k0)
        .unwrap();
    s.put(late.clone()).unwrap();
    assert!(s.item(&late.id()).unwrap().unwrap().revoked);
    assert_eq!(posts(&s), vec![a.p0.id()]);
    assert_eq!(by_author(&s, &a.k0), vec![a.p0.id()]);
    // A node that hears of the rotation last ends the same: the rotation judges them again.
    let (_d2, t) = store();
    t.put_batch(vec![a.l0.clone(), a.p0.clone(), edit.clone(), late.clone()])
        .unwrap();
    assert_eq!(head(&t, &a.p0.id()), edit.cid());
    assert_eq!(posts(&t).len(), 2);
    t.put(a.l1.clone()).unwrap();
    assert_eq!(head(&t, &a.p0.id()), a.p0.cid());
    assert!(t.item(&late.id()).unwrap().unwrap().revoked);
    assert_eq!(posts(&t), vec![a.p0.id()]);
    // The new key building on the old key's edit vouches for nothing it did not sign, but
    // becomes the head itself.
    let over = a.edit_with_new_key(&edit, "taken back", 6_000);
    assert!(matches!(
        t.put(over.clone()).unwrap(),
        Put::Stored { head: true, .. }
    ));
}

#[test]
fn a_recovery_beats_a_stolen_key_in_the_store() {
    let a = alice();
    let (_d, s) = a.stored();
    // A thief with the first key forks the log before the rotation, dated far ahead. k0 is
    // the root's key, so the fork passes the hard rules.
    let thief = key("thief");
    let stolen = grant(&a.l0, &a.k0, &a.k0, &thief, None, vec![], 9_000_000_000_000);
    s.put(stolen.clone()).unwrap();
    assert_eq!(
        head(&s, &a.l0.id()),
        stolen.cid(),
        "the newest key-signed fork wins"
    );
    let theirs = Record::create(&post("mine now"))
        .unwrap()
        .signed_as(cite(&a.k0, &stolen))
        .at(9_000_000_000_001)
        .sign(&thief)
        .unwrap();
    s.put(theirs.clone()).unwrap();
    assert!(posts(&s).contains(&theirs.id()));
    // Alice recovers at the root with her recovery key: her fork wins, the thief's post drops.
    let (k1r, r1) = (key("alice/1r"), key("alice/recovery/1"));
    let recovered = grant(
        &a.l0,
        &a.k0,
        &a.r0,
        &k1r,
        Some(&r1),
        vec![a.p0.cid()],
        3_000,
    );
    assert!(matches!(
        s.put(recovered.clone()).unwrap(),
        Put::Stored { head: true, .. }
    ));
    assert_eq!(head(&s, &a.l0.id()), recovered.cid());
    assert_eq!(
        s.key_log_path(a.k0.did()).unwrap().unwrap().current_key(),
        Some(*k1r.did())
    );
    assert!(s.item(&theirs.id()).unwrap().unwrap().revoked);
    assert_eq!(posts(&s), vec![a.p0.id()]);
}

#[test]
fn a_signer_record_waits_for_its_log_version_and_survives_a_reopen() {
    let a = alice();
    let dir = tempfile::tempdir().unwrap();
    let p1 = a.edit_with_new_key(&a.p0, "edited with the new key", 2_100);
    {
        let s = Store::open(&dir.path().join("db"), 8).unwrap();
        s.put_batch(vec![a.l0.clone(), a.p0.clone()]).unwrap();
        let e = s.put(p1.clone()).unwrap_err();
        assert!(
            matches!(e, StoreError::MissingAuthority { cid, missing } if cid == p1.cid() && missing == a.l1.cid()),
            "{e}"
        );
        assert_eq!(head(&s, &a.p0.id()), a.p0.cid());
        // In one batch, the log's version before the record citing it, as catch-up and CAR
        // import order them.
        let ordered = mnode_protocols::sync::order_for_put(vec![p1.clone(), a.l1.clone()]);
        assert_eq!(ordered[0].cid(), a.l1.cid());
        s.put_batch(ordered).unwrap();
        assert_eq!(head(&s, &a.p0.id()), p1.cid());
    }
    let s = Store::open(&dir.path().join("db"), 8).unwrap();
    assert_eq!(head(&s, &a.p0.id()), p1.cid());
    assert_eq!(
        s.identity_log(a.k0.did()).unwrap(),
        Some((a.l0.id(), false))
    );
    let p2 = a.edit_with_new_key(&p1, "again", 2_200);
    assert!(matches!(
        s.put(p2.clone()).unwrap(),
        Put::Stored { head: true, .. }
    ));
    // After the reopen, the old key still cannot follow the new one (K7), and a late
    // old-key post is still retired.
    let back = p2
        .update(&post("old key"))
        .unwrap()
        .at(2_300)
        .sign(&a.k0)
        .unwrap();
    assert!(matches!(
        key_rule(s.put(back).unwrap_err()),
        KeyError::RetiredKey { .. }
    ));
    let late = Record::create(&post("late"))
        .unwrap()
        .at(2_400)
        .sign(&a.k0)
        .unwrap();
    s.put(late.clone()).unwrap();
    assert!(s.item(&late.id()).unwrap().unwrap().revoked);
}

#[test]
fn a_second_root_for_an_identity_is_stored_but_never_used() {
    let a = alice();
    let (_d, s) = a.stored();
    let other = Record::create(&KeyLog::root(&a.k0, None))
        .unwrap()
        .at(1_500)
        .sign(&a.k0)
        .unwrap();
    s.put(other.clone()).unwrap();
    assert_eq!(s.identity_log(a.k0.did()).unwrap(), Some((a.l0.id(), true)));
    // A key granted on the second log signs (K6 holds there) but never counts.
    let k9 = key("alice/9");
    let o1 = grant(&other, &a.k0, &a.k0, &k9, None, vec![], 1_600);
    s.put(o1.clone()).unwrap();
    let theirs = Record::create(&post("from the other log"))
        .unwrap()
        .signed_as(cite(&a.k0, &o1))
        .sign(&k9)
        .unwrap();
    s.put(theirs.clone()).unwrap();
    assert!(s.item(&theirs.id()).unwrap().unwrap().revoked);
    assert_eq!(head(&s, &a.l0.id()), a.l1.cid());
}

#[test]
fn an_account_makes_its_log_rotates_and_keeps_editing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("db"), 8).unwrap();
    let ks = Keystore::create(&dir.path().join("keystore"), None).unwrap();
    let accounts = Accounts::new(&s, &ks);
    let account = accounts
        .create("alice", "alice@example.org", None, None, Role::User)
        .unwrap();
    let identity = *account.did().unwrap();
    let (root, recovery) = accounts.ensure_log("alice").unwrap();
    let recovery = recovery.expect("a fresh recovery key, once");
    assert!(
        !ks.contains(recovery.did()),
        "the recovery secret is not kept"
    );
    assert_eq!(*root.author(), identity);
    s.put(root.clone()).unwrap();
    let (again, none) = accounts.ensure_log("alice").unwrap();
    assert_eq!((again.cid(), none.is_none()), (root.cid(), true));

    let (k0, cite0) = accounts.signing("alice").unwrap();
    assert_eq!((*k0.did(), cite0), (identity, None));
    let p0 = Record::create(&post("hello")).unwrap().sign(&k0).unwrap();
    s.put(p0.clone()).unwrap();

    let (k1, l1) = accounts.rotate("alice").unwrap();
    let log = l1.body_as::<KeyLog>().unwrap().unwrap();
    assert_eq!(
        log.kept,
        vec![Link(p0.cid())],
        "the rotation keeps what k0 signed"
    );
    assert_eq!(log.recovery, Some(*recovery.did()));
    assert!(matches!(
        s.put(l1.clone()).unwrap(),
        Put::Stored { head: true, .. }
    ));
    let (signer, cite1) = accounts.signing("alice").unwrap();
    assert_eq!(signer.did(), k1.did());
    let cite1 = cite1.unwrap();
    assert_eq!((cite1.identity, cite1.at), (identity, l1.cid()));
    let p1 = p0
        .update(&post("hello again"))
        .unwrap()
        .signed_as(cite1)
        .sign(&k1)
        .unwrap();
    assert!(matches!(
        s.put(p1.clone()).unwrap(),
        Put::Stored { head: true, .. }
    ));
    assert_eq!(head(&s, &p0.id()), p1.cid());

    // A second rotation keeps the new key's item too, and the recovery key can still act.
    let (k2, l2) = accounts.rotate("alice").unwrap();
    assert_eq!(*l2.author(), *k1.did());
    assert_eq!(
        l2.body_as::<KeyLog>().unwrap().unwrap().kept,
        vec![Link(p1.cid())]
    );
    s.put(l2.clone()).unwrap();
    assert_eq!(head(&s, &p0.id()), p1.cid(), "kept by the second rotation");
    let account = accounts.get("alice").unwrap().unwrap();
    assert_eq!(account.keys, vec![*k2.did(), *k1.did(), identity]);
    assert_eq!(account.identity(), Some(&identity));
    assert_eq!(account.recovery, Some(*recovery.did()));
    assert_eq!(
        accounts.by_identity(&identity).unwrap().unwrap().handle,
        "alice"
    );
    assert_eq!(by_author(&s, &k0), vec![p0.id()]);
}

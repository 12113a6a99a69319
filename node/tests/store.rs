//! The record store against a real RocksDB in a temp folder.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use mnode_dag::{
    Cid, Draft, Ipld, Keypair, Record,
    example::ExampleGen,
    model::{
        TitleData,
        art::Artist,
        social::{Post, ReplyRef},
    },
    query::Query,
    registry::Topic,
};
use mnode_node::store::{Cursor, ListFilter, Put, QueryResult, Store, StoreError};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("db"), 8).unwrap();
    (dir, s)
}

fn post(text: &str, tags: &[&str]) -> Post {
    Post {
        text: text.into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        ..Post::default()
    }
}

fn sign(p: &Post, key: &Keypair, at: u64) -> Record {
    Record::create(p).unwrap().at(at).sign(key).unwrap()
}

fn kind(k: &str) -> ListFilter {
    ListFilter {
        kind: Some(k.into()),
        ..ListFilter::default()
    }
}

#[test]
fn put_get_update_delete() {
    let (_d, s) = store();
    let key = Keypair::derive(1, "alice");
    let v0 = sign(&post("hello", &["music/jazz"]), &key, 10);
    assert_eq!(
        s.put(v0.clone()).unwrap(),
        Put::Stored {
            cid: v0.cid(),
            id: v0.cid(),
            head: true,
            fork: false
        }
    );
    assert_eq!(s.put(v0.clone()).unwrap(), Put::Duplicate(v0.cid()));
    assert_eq!(s.record(&v0.cid()).unwrap().unwrap(), v0);
    assert_eq!(s.list(&kind("social.post")).unwrap().items.len(), 1);

    let tag = |t: &str| ListFilter {
        tag: Some(t.into()),
        ..ListFilter::default()
    };
    assert_eq!(
        s.list(&tag("music")).unwrap().items.len(),
        1,
        "a parent tag finds its children"
    );
    assert_eq!(s.list(&tag("music/jazz")).unwrap().items.len(), 1);

    let v1 = v0
        .update(&post("hello again", &["visual"]))
        .unwrap()
        .at(20)
        .sign(&key)
        .unwrap();
    assert!(matches!(
        s.put(v1.clone()).unwrap(),
        Put::Stored {
            head: true,
            fork: false,
            ..
        }
    ));
    assert_eq!(s.head(&v0.cid()).unwrap().unwrap(), v1);
    assert_eq!(
        s.head(&v1.cid()).unwrap().unwrap(),
        v1,
        "any version's CID finds the head"
    );
    assert!(
        s.list(&tag("music")).unwrap().items.is_empty(),
        "old tags leave the index"
    );
    assert_eq!(s.list(&tag("visual")).unwrap().items.len(), 1);
    assert_eq!(s.list(&kind("social.post")).unwrap().items.len(), 1);

    let gone = v1.delete().at(30).sign(&key).unwrap();
    s.put(gone.clone()).unwrap();
    assert!(s.list(&kind("social.post")).unwrap().items.is_empty());
    assert!(s.list(&tag("visual")).unwrap().items.is_empty());
    let author = ListFilter {
        author: Some(*key.did()),
        ..ListFilter::default()
    };
    assert!(s.list(&author).unwrap().items.is_empty());
    let item = s.item(&v0.cid()).unwrap().unwrap();
    assert!(item.deleted);
    assert_eq!(item.head, gone.cid());
    let history = s.history(&v0.cid()).unwrap();
    assert_eq!(
        history.iter().map(|v| v.cid).collect::<Vec<_>>(),
        vec![v0.cid(), v1.cid(), gone.cid()]
    );
}

#[test]
fn forks_are_kept_and_the_head_is_the_newest_tip() {
    let (_d, s) = store();
    let key = Keypair::derive(1, "alice");
    let v0 = sign(&post("base", &[]), &key, 10);
    let a = v0
        .update(&post("edit on the laptop", &[]))
        .unwrap()
        .at(30)
        .sign(&key)
        .unwrap();
    let b = v0
        .update(&post("edit on the phone", &[]))
        .unwrap()
        .at(20)
        .sign(&key)
        .unwrap();
    s.put(v0.clone()).unwrap();
    s.put(a.clone()).unwrap();
    assert!(matches!(
        s.put(b.clone()).unwrap(),
        Put::Stored {
            head: false,
            fork: true,
            ..
        }
    ));
    let item = s.item(&v0.cid()).unwrap().unwrap();
    assert!(item.forked());
    assert_eq!(item.head, a.cid(), "the later edit wins");
    // Continuing the older branch past the newer one moves the head there.
    let b2 = b
        .update(&post("phone again", &[]))
        .unwrap()
        .at(40)
        .sign(&key)
        .unwrap();
    assert!(matches!(
        s.put(b2.clone()).unwrap(),
        Put::Stored {
            head: true,
            fork: false,
            ..
        }
    ));
    assert_eq!(s.item(&v0.cid()).unwrap().unwrap().head, b2.cid());
    assert_eq!(s.history(&v0.cid()).unwrap().len(), 4);
}

#[test]
fn bad_records_change_nothing() {
    let (_d, s) = store();
    let key = Keypair::derive(1, "alice");
    let v0 = sign(&post("base", &[]), &key, 10);
    let v1 = v0
        .update(&post("next", &[]))
        .unwrap()
        .at(20)
        .sign(&key)
        .unwrap();

    // The version it replaces is missing.
    assert!(matches!(
        s.put(v1.clone()),
        Err(StoreError::MissingPrev { .. })
    ));
    assert!(!s.has_block(&v1.cid()).unwrap());

    // Bytes with a forged body: the signature fails before anything is written.
    let mut env = v0.envelope().clone();
    env.body = Some(mnode_dag::Ipld::Map(
        [("text".to_owned(), Ipld::String("forged".into()))].into(),
    ));
    let forged = mnode_dag::cbor::encode(&env).unwrap();
    let err = s.put_bytes(forged).unwrap_err();
    assert!(
        err.to_string().contains("signature does not verify"),
        "{err}"
    );
    assert!(s.list(&kind("social.post")).unwrap().items.is_empty());

    // A batch whose second record breaks a chain rule is rejected whole.
    let mut bad = v1.envelope().clone();
    bad.seq = 5;
    let bad = Record::decode(&bad.resign(&key).unwrap()).unwrap();
    let err = s.put_batch(vec![v0.clone(), bad]).unwrap_err();
    assert!(err.to_string().contains("seq is 5, expected 1"), "{err}");
    assert!(
        !s.has_block(&v0.cid()).unwrap(),
        "nothing of the batch was written"
    );
    assert!(s.item(&v0.cid()).unwrap().is_none());

    // Malformed CBOR.
    assert!(s.put_bytes(vec![0xa9, 0x63]).is_err());
}

#[test]
fn batches_can_hold_whole_chains() {
    let (_d, s) = store();
    let key = Keypair::derive(2, "bob");
    let v0 = sign(&post("a", &[]), &key, 1);
    let v1 = v0
        .update(&post("b", &[]))
        .unwrap()
        .at(2)
        .sign(&key)
        .unwrap();
    let v2 = v1
        .update(&post("c", &[]))
        .unwrap()
        .at(3)
        .sign(&key)
        .unwrap();
    let out = s.put_batch(vec![v0.clone(), v1, v2.clone()]).unwrap();
    assert!(
        out.iter()
            .all(|p| matches!(p, Put::Stored { head: true, .. }))
    );
    assert_eq!(s.head(&v0.cid()).unwrap().unwrap(), v2);
    assert_eq!(s.item(&v0.cid()).unwrap().unwrap().versions, 3);
}

#[test]
fn pages_are_newest_first_without_gaps_or_repeats() {
    let (_d, s) = store();
    let key = Keypair::derive(3, "carol");
    let posts: Vec<Record> = (0..25)
        .map(|i| sign(&post(&format!("post {i}"), &[]), &key, 1000 + i))
        .collect();
    s.put_batch(posts.clone()).unwrap();
    let mut seen = Vec::new();
    let mut cursor: Option<Cursor> = None;
    loop {
        let page = s
            .list(&ListFilter {
                kind: Some("social.post".into()),
                cursor,
                limit: 10,
                ..ListFilter::default()
            })
            .unwrap();
        seen.extend(page.items.iter().map(|(id, _)| *id));
        match page.next {
            Some(c) => cursor = Some(c.to_string().parse().unwrap()),
            None => break,
        }
    }
    let expected: Vec<_> = posts.iter().rev().map(|r| r.cid()).collect();
    assert_eq!(seen, expected);
}

#[test]
fn topics_list_a_branch_and_a_thread() {
    let (_d, s) = store();
    let mut g = ExampleGen::new(4);
    let branch = g.record::<mnode_dag::model::social::Branch>();
    let key = g.key(1).clone();
    let in_branch = Post {
        branch: Some(branch.cid().into()),
        ..post("in the branch", &[])
    };
    let r1 = sign(&in_branch, &key, 5);
    let reply = Post {
        reply: Some(ReplyRef {
            root: r1.cid().into(),
            parent: r1.cid().into(),
        }),
        ..in_branch.clone()
    };
    let r2 = sign(&reply, &key, 6);
    s.put_batch(vec![r1.clone(), r2.clone()]).unwrap();
    let topic = |t| ListFilter {
        topic: Some(t),
        ..ListFilter::default()
    };
    let ids: Vec<_> = s
        .list(&topic(Topic::Branch(branch.cid())))
        .unwrap()
        .items
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids, vec![r2.cid(), r1.cid()]);
    let replies = s.list(&topic(Topic::About(r1.cid()))).unwrap().items;
    assert_eq!(replies.len(), 1);
}

#[test]
fn widget_queries_run_against_the_indexes() {
    let (_d, s) = store();
    let key = Keypair::derive(5, "dana");
    let artist = |name: &str, tags: &[&str], at| {
        let a = Artist {
            name: TitleData::new(name),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..Artist::default()
        };
        Record::create(&a).unwrap().at(at).sign(&key).unwrap()
    };
    let (miles, alice, bill) = (
        artist("Miles Davis", &["music/jazz"], 1),
        artist("Alice Coltrane", &["music/jazz", "music/ambient"], 2),
        artist("Bill Callahan", &["music/folk"], 3),
    );
    s.put_batch(vec![miles.clone(), alice.clone(), bill.clone()])
        .unwrap();
    s.put(sign(&post("not an artist", &["music/jazz"]), &key, 4))
        .unwrap();

    let run = |q: &str| s.query(&Query::parse(q).unwrap()).unwrap();
    let ids = |r: QueryResult| match r {
        QueryResult::Items(v) => v,
        QueryResult::Count(_) => panic!("count"),
    };
    assert_eq!(
        ids(run("art.artists.list()")),
        vec![bill.cid(), alice.cid(), miles.cid()]
    );
    assert_eq!(
        ids(run(&format!("art.artists.id = '{}'", alice.cid()))),
        vec![alice.cid()]
    );
    assert_eq!(
        ids(run("art.artists.tag = 'music/jazz'")),
        vec![alice.cid(), miles.cid()]
    );
    assert_eq!(
        run("art.artists.tag = 'music'.count()"),
        QueryResult::Count(3)
    );
    assert_eq!(
        ids(run("art.artists.name.full ~ 'COLTRANE'")),
        vec![alice.cid()]
    );
    assert_eq!(
        ids(run("art.artists.sort('name.full').limit(2)")),
        vec![alice.cid(), bill.cid()]
    );
    assert_eq!(
        ids(run("art.artists.sort('created', 'asc').first()")),
        vec![miles.cid()]
    );
    assert_eq!(
        ids(run(&format!(
            "art.artists.author = '{}' and tag = 'music/folk'",
            key.did()
        ))),
        vec![bill.cid()]
    );
    assert_eq!(
        ids(run(
            "art.artists.tag = 'music/jazz' and name.full != 'Miles Davis'"
        )),
        vec![alice.cid()]
    );
}

#[test]
fn equal_times_and_equal_sort_values_order_by_id_everywhere() {
    let (_d, s) = store();
    let key = Keypair::derive(5, "dana");
    // Five artists made in the same millisecond with the same tag.
    let made: Vec<Record> = (0..5)
        .map(|i| {
            let a = Artist {
                name: TitleData::new(format!("Twin {i}")),
                tags: vec!["music/twins".into()],
                ..Artist::default()
            };
            Record::create(&a).unwrap().at(7).sign(&key).unwrap()
        })
        .collect();
    s.put_batch(made.clone()).unwrap();
    let mut by_id: Vec<Cid> = made.iter().map(Record::cid).collect();
    by_id.sort_by_key(Cid::to_bytes);
    let newest_first: Vec<Cid> = by_id.iter().rev().copied().collect();

    let listed = |f: &ListFilter| -> Vec<Cid> {
        s.list(f)
            .unwrap()
            .items
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    };
    assert_eq!(listed(&kind("art.artist")), newest_first);
    assert_eq!(listed(&ListFilter::default()), newest_first);
    let tagged = ListFilter {
        tag: Some("music/twins".into()),
        ..ListFilter::default()
    };
    assert_eq!(listed(&tagged), newest_first);
    // Pages of two continue through the tie without losing or repeating an item.
    let mut paged = Vec::new();
    let mut cursor = None;
    loop {
        let page = s
            .list(&ListFilter {
                kind: Some("art.artist".into()),
                limit: 2,
                cursor,
                ..ListFilter::default()
            })
            .unwrap();
        paged.extend(page.items.into_iter().map(|(id, _)| id));
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(paged, newest_first);

    let run = |q: &str| match s.query(&Query::parse(q).unwrap()).unwrap() {
        QueryResult::Items(v) => v,
        QueryResult::Count(_) => panic!("count"),
    };
    for field in ["created", "updated", "tags"] {
        assert_eq!(
            run(&format!("art.artists.sort('{field}', 'asc')")),
            by_id,
            "{field}"
        );
        assert_eq!(
            run(&format!("art.artists.sort('{field}', 'desc')")),
            newest_first,
            "{field}"
        );
    }
}

#[test]
fn unknown_kinds_are_stored_and_listed() {
    let (_d, s) = store();
    let key = Keypair::derive(6, "eve");
    let r = Draft::new("future.gadget", mnode_dag::Ipld::Map(Default::default()))
        .at(1)
        .sign(&key)
        .unwrap();
    s.put_bytes(r.bytes().to_vec()).unwrap();
    assert_eq!(s.list(&kind("future.gadget")).unwrap().items.len(), 1);
    assert_eq!(s.list(&ListFilter::default()).unwrap().items.len(), 1);
}

#[test]
fn reads_are_safe_while_writes_run() {
    let (_d, s) = store();
    let s = Arc::new(s);
    let writer = {
        let s = s.clone();
        std::thread::spawn(move || {
            let key = Keypair::derive(7, "writer");
            for batch in 0..20u64 {
                let records: Vec<Record> = (0..100)
                    .map(|i| {
                        sign(
                            &post(&format!("p{batch}-{i}"), &["t"]),
                            &key,
                            batch * 100 + i,
                        )
                    })
                    .collect();
                s.put_batch(records).unwrap();
            }
        })
    };
    let mut last = 0;
    while !writer.is_finished() {
        let n = s.list(&kind("social.post")).unwrap().items.len();
        assert!(n >= last, "a listing never goes backwards");
        assert_eq!(n % 100, 0, "batches are visible whole or not at all");
        last = n;
    }
    writer.join().unwrap();
    assert_eq!(s.list(&kind("social.post")).unwrap().items.len(), 2000);
}

#[test]
fn reopening_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let key = Keypair::derive(8, "frank");
    let v0 = sign(&post("persist", &["x"]), &key, 1);
    {
        let s = Store::open(&dir.path().join("db"), 8).unwrap();
        s.put(v0.clone()).unwrap();
        s.pin(&v0.cid(), true).unwrap();
    }
    let s = Store::open(&dir.path().join("db"), 8).unwrap();
    assert_eq!(s.head(&v0.cid()).unwrap().unwrap(), v0);
    assert_eq!(s.pins().unwrap().len(), 1);
    let stats = s.stats().unwrap();
    assert_eq!((stats.items, stats.versions, stats.pins), (1, 1, 1));
}

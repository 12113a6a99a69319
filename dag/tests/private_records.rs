//! Private bodies in records: every node checks the sealed shape and that the author can read
//! it; the kind's own fields are checked by whoever opens them.

#![allow(clippy::unwrap_used)]

use mnode_dag::{Draft, Ipld, Keypair, Record, private};
use rand::{SeedableRng as _, rngs::ChaCha8Rng};

fn post(text: &str) -> Ipld {
    Ipld::Map([("text".to_owned(), Ipld::String(text.into()))].into())
}

#[test]
fn a_sealed_post_travels_as_a_record_and_only_recipients_open_it() {
    let (ana, ben, cy) = (
        Keypair::derive(5, "a"),
        Keypair::derive(5, "b"),
        Keypair::derive(5, "c"),
    );
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let to = [(*ana.did(), *ana.did()), (*ben.did(), *ben.did())];
    let sealed = private::seal(
        "social.post",
        ana.did(),
        None,
        &post("for Ben"),
        &to,
        &mut rng,
    )
    .unwrap();
    let record = Draft::new("social.post", sealed).sign(&ana).unwrap();
    // Any node decodes and verifies it; nothing of the post is indexed.
    let received = Record::decode(record.bytes()).unwrap();
    assert!(received.index().tags.is_empty() && received.index().topics.is_empty());
    let body = received.body().unwrap();
    assert_eq!(
        private::open("social.post", ana.did(), None, body, ben.did(), &ben).unwrap(),
        post("for Ben")
    );
    assert!(private::open("social.post", ana.did(), None, body, cy.did(), &cy).is_err());

    // Sealed without its author among the readers: refused when made and when received.
    let only_ben = [(*ben.did(), *ben.did())];
    let e = private::seal(
        "social.post",
        ana.did(),
        None,
        &post("x"),
        &only_ben,
        &mut rng,
    );
    assert!(e.is_err(), "seal itself requires the author");
    let mut forged = private::shape(body).unwrap().unwrap();
    forged.to.retain(|r| r.id != *ana.did());
    let mut map = match body {
        Ipld::Map(m) => m.clone(),
        _ => unreachable!(),
    };
    map.insert(private::PRIVATE_KEY.to_owned(), forged.to_ipld());
    let e = Draft::new("social.post", Ipld::Map(map.clone()))
        .sign(&ana)
        .unwrap_err();
    assert!(e.to_string().contains("$private"), "{e}");

    // A malformed `$private`, or a kind field beside it, is refused.
    let mut bad = map.clone();
    bad.insert(
        private::PRIVATE_KEY.to_owned(),
        Ipld::String("secret".into()),
    );
    assert!(
        Draft::new("social.post", Ipld::Map(bad))
            .sign(&ana)
            .is_err()
    );
    let mut leaky = match record.body().unwrap() {
        Ipld::Map(m) => m.clone(),
        _ => unreachable!(),
    };
    leaky.insert("text".into(), Ipld::String("in the clear".into()));
    let e = Draft::new("social.post", Ipld::Map(leaky))
        .sign(&ana)
        .unwrap_err();
    assert!(e.to_string().contains("$private"), "{e}");
}

//! What a newcomer meets in the terminal (issue #19): output into pipes, the same answers with
//! and without a daemon, errors a person can act on.
#![allow(clippy::unwrap_used)]

mod support;

use std::{
    io::Read,
    process::{Command, Stdio},
};

use support::mnode;

/// `mnode … | head -1`: the reader goes away after the first bytes; the command must end
/// quietly and successfully, not panic about a broken pipe.
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    assert!(mnode(&repo, &["init"]).status.success());
    assert!(
        mnode(&repo, &["seed", "--count", "20"]).status.success(),
        "seed failed"
    );
    // Each of these prints far more than a pipe holds (64 KiB), so writes go on after `head`
    // has closed its end.
    let runs: [&[&str]; 3] = [
        &["record", "list", "--limit", "1000"],
        &["--json", "record", "list", "--limit", "1000"],
        &["--json", "types", "--schema"],
    ];
    for args in runs {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mnode"))
            .arg("--repo")
            .arg(&repo)
            .args(args)
            .env("RUST_BACKTRACE", "1")
            .env("MNODE_PASSPHRASE", "a test passphrase")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 16];
        child.stdout.take().unwrap().read_exact(&mut first).unwrap();
        // The read end is dropped here, as `head` closes it.
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "mnode {args:?} into a closed pipe: {:?}, stderr: {stderr}",
            out.status
        );
        assert!(stderr.is_empty(), "mnode {args:?} said: {stderr}");
    }
}

/// What a run printed, with CIDs replaced by `CID` when `blind` (writes make new ones).
fn said(repo: &std::path::Path, args: &[&str], blind: bool) -> (bool, String, String) {
    let o = mnode(repo, args);
    let mut out = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut err = String::from_utf8_lossy(&o.stderr).into_owned();
    if blind {
        out = blind_cids(&out);
        err = blind_cids(&err);
    }
    (o.status.success(), out, err)
}

/// `text` with every base32 CID (`b` and 50 or more of `a-z2-7`) replaced by `CID`.
fn blind_cids(text: &str) -> String {
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let cid = word.len() > 50
            && word.starts_with('b')
            && word
                .chars()
                .all(|c| c.is_ascii_lowercase() || ('2'..='7').contains(&c));
        out.push_str(if cid { "CID" } else { word });
        word.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Every README verb that reads or writes the repo prints the same thing whether a daemon
/// holds the repo (the CLI goes through its API) or not (the CLI runs the API in-process), and
/// `--author HANDLE` works both ways.
#[test]
fn readme_verbs_answer_the_same_with_and_without_a_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let repo = support::init(dir.path(), "repo");
    assert!(mnode(&repo, &["seed", "--count", "2"]).status.success());
    let release = support::json(&repo, &["record", "list", "art.release", "--limit", "1"])["items"]
        [0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // One item by the owner, for `--author owner`.
    support::json(
        &repo,
        &["record", "create", "social.post", "--set", "text=Out now"],
    );
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "liner notes, side A\n".repeat(100)).unwrap();
    let added = support::json(&repo, &["add", file.to_str().unwrap()]);
    let blob = added[0]["cid"].as_str().unwrap().to_owned();
    let typo = &release[..release.len() - 2];
    let reads: Vec<Vec<&str>> = vec![
        vec!["record", "list", "--limit", "30"],
        vec![
            "record",
            "list",
            "social.post",
            "--author",
            "owner",
            "--limit",
            "5",
        ],
        vec!["--json", "record", "list", "--tag", "music", "--limit", "5"],
        vec!["record", "show", &release],
        vec!["--json", "record", "show", &release],
        vec!["record", "history", &release],
        vec!["--json", "record", "history", &release],
        vec!["query", "art.releases.limit(3)"],
        vec!["query", "social.posts.count()"],
        vec!["feed", "owner", "--limit", "5"],
        vec!["timeline", "--limit", "5"],
        vec!["forum", "list"],
        vec!["pin", "ls"],
        vec!["repo", "stat"],
        vec!["--json", "repo", "stat"],
        vec!["cat", &blob, "--range", "0-19"],
        vec!["account", "list"],
        vec!["--json", "account", "list"],
        // Mistakes are answered the same too, and each says what is wrong.
        vec!["record", "show", typo],
        vec!["record", "show", "hello"],
        vec!["record", "list", "art.releases"],
        vec!["record", "list", "--author", "nobody"],
        vec![
            "record",
            "create",
            "social.post",
            "--set",
            "text=x",
            "--set",
            "tags=music",
        ],
        vec!["record", "create", "social.psot", "--set", "text=x"],
    ];
    let mistakes = [
        (typo, "looks like a CID but does not decode"),
        ("hello", "\"hello\" is not a CID"),
        ("art.releases", "did you mean art.release?"),
        ("nobody", "nobody"),
        (
            "tags=music",
            r#"expected a list, found text "music"; --set reads lists"#,
        ),
        ("social.psot", "did you mean social.post?"),
    ];
    let offline: Vec<_> = reads.iter().map(|a| said(&repo, a, false)).collect();
    {
        let _daemon = support::run(&repo);
        for (args, before) in reads.iter().zip(&offline) {
            let after = said(&repo, args, false);
            assert_eq!(before, &after, "mnode {args:?} differs with a daemon");
        }
    }

    // Writes: a new item, a version, a delete and the history they make, offline and then
    // through a daemon, the same but for the new CIDs.
    let writes = |repo: &std::path::Path| {
        let post = support::json(
            repo,
            &["record", "create", "social.post", "--set", "text=Out"],
        )["id"]
            .as_str()
            .unwrap()
            .to_owned();
        [
            said(
                repo,
                &["record", "update", &post, "--set", "text=Out now!"],
                true,
            ),
            said(
                repo,
                &["record", "create", "social.post", "--set", "text=Second"],
                true,
            ),
            said(repo, &["record", "delete", &post], true),
            said(repo, &["record", "history", &post], true),
            said(repo, &["post", "hello", "--tag", "music"], true),
        ]
    };
    let writes_offline = writes(&repo);
    let _daemon = support::run(&repo);
    let writes_daemon = writes(&repo);
    assert_eq!(writes_offline, writes_daemon);
    // What the mistakes said, so that "the same" is not the same silence.
    for (word, says) in mistakes {
        let (args, (ok, _, err)) = reads
            .iter()
            .zip(&offline)
            .find(|(args, _)| args.contains(&word))
            .unwrap();
        assert!(!ok && err.contains(says), "mnode {args:?}: {err}");
    }
    let by_owner = &offline[1];
    assert!(by_owner.0 && by_owner.1.contains("Out now"), "{by_owner:?}");
}

/// serde's and ipld-core's own phrases, which mean nothing to a person writing a record.
const SERDE_PHRASES: [&str; 10] = [
    "Ipld::",
    "String(",
    "Integer(",
    "deserialize",
    "invalid type:",
    "invalid value:",
    "expected struct",
    "untagged enum",
    "did not match any variant",
    "serde",
];

/// Every field of every kind, given a value of the wrong type, is refused with a message that
/// names the field and says what was expected in words, never in serde's.
#[test]
fn wrong_values_are_explained_without_serde_internals() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    assert!(mnode(&repo, &["init"]).status.success());
    let kinds = support::json(&repo, &["types"]);
    let mut tried = 0;
    for kind in kinds.as_array().unwrap() {
        let kind = kind["name"].as_str().unwrap();
        let example = support::json(&repo, &["example", kind]);
        let body = example["record"]["body"].as_object().unwrap();
        for (field, value) in body {
            let wrong = match value {
                serde_json::Value::String(_) => serde_json::json!([1]),
                serde_json::Value::Number(_) => serde_json::json!("ten"),
                serde_json::Value::Null => continue,
                _ => serde_json::json!("a text"),
            };
            let mut bad = body.clone();
            bad.insert(field.clone(), wrong);
            let file = dir.path().join("body.json");
            std::fs::write(&file, serde_json::to_vec(&bad).unwrap()).unwrap();
            let o = mnode(
                &repo,
                &["record", "create", kind, "--file", file.to_str().unwrap()],
            );
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                !o.status.success(),
                "{kind}.{field} = wrong type was accepted"
            );
            assert!(err.contains(field.as_str()), "{kind}.{field}: {err}");
            for phrase in SERDE_PHRASES {
                assert!(!err.contains(phrase), "{kind}.{field}: {err}");
            }
            tried += 1;
        }
    }
    assert!(tried > 50, "only {tried} fields tried");

    // Settings too: a wrong value given with -c or written in mnode.yaml.
    let o = mnode(
        &dir.path().join("new"),
        &["init", "-c", "store.cache_mb=lots"],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("-c store.cache_mb=lots"),
        "{err}"
    );
    let yaml = repo.join("mnode.yaml");
    let text = std::fs::read_to_string(&yaml).unwrap();
    std::fs::write(&yaml, text.replace("cache_mb: 64", "cache_mb: [64]")).unwrap();
    let o = mnode(&repo, &["record", "list"]);
    let err2 = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err2.contains("cache_mb"), "{err2}");
    for err in [err, err2] {
        assert!(err.contains("expected a whole number"), "{err}");
        for phrase in SERDE_PHRASES {
            assert!(!err.contains(phrase), "{err}");
        }
    }
}

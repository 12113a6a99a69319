//! The discussion verbs (`forum`, `thread`, `reply`, `fact`, `context`, `feed`, `timeline`)
//! as a person uses them: offline on the repo, then through a daemon on the same repo, with the
//! same answers; and their errors, which write nothing.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;

use serde_json::Value;
use support::{init, json, mnode, run};

fn text(repo: &Path, args: &[&str]) -> String {
    let o = mnode(repo, args);
    assert!(
        o.status.success(),
        "mnode {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// Runs a command that must fail: exit code 1, and the error on stderr.
fn fails(repo: &Path, args: &[&str]) -> String {
    let o = mnode(repo, args);
    assert_eq!(
        o.status.code(),
        Some(1),
        "mnode {args:?} should fail: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(o.stdout.is_empty(), "an error prints nothing on stdout");
    String::from_utf8(o.stderr).unwrap()
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// How many items the repo holds (live ones, of every kind).
fn count(repo: &Path) -> usize {
    json(repo, &["record", "list", "--limit", "10000"])["items"]
        .as_array()
        .unwrap()
        .len()
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The indentation of the line of `text` that contains `needle`.
fn indent_of(text: &str, needle: &str) -> usize {
    let line = text
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in:\n{text}"));
    line.len() - line.trim_start().len()
}

/// The answers that depend only on what the repo holds: the same offline and from a daemon.
fn reads(repo: &Path, forum: &str, thread: &str, fact: &str) -> Vec<Value> {
    vec![
        json(repo, &["forum", "list"]),
        json(repo, &["forum", "show", forum]),
        json(repo, &["thread", "show", thread]),
        json(repo, &["fact", "show", fact]),
        json(repo, &["feed"]),
        json(repo, &["feed", "bob", "--limit", "3"]),
        json(repo, &["timeline", "--limit", "50"]),
    ]
}

fn newest_first(items: &Value) {
    // ISO 8601 with a fixed-width fraction: sorts as text.
    let created: Vec<&str> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["created"].as_str().unwrap())
        .collect();
    assert!(
        created.windows(2).all(|w| w[0] >= w[1]),
        "not newest first: {created:?}"
    );
}

#[test]
fn forums_threads_replies_forks_and_facts_offline_and_through_a_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let repo = init(dir.path(), "node");
    let owner = json(&repo, &["id"])["owner_did"]
        .as_str()
        .unwrap()
        .to_owned();
    json(
        &repo,
        &["account", "create", "bob", "--email", "bob@example.org"],
    );

    // Offline: a forum with a branch and a sub-branch.
    let forum = id(&json(
        &repo,
        &[
            "forum",
            "create",
            "Jazz",
            "--description",
            "Records and players",
            "--moderator",
            &owner,
            "--tag",
            "music/jazz",
        ],
    ));
    let shown = json(&repo, &["record", "show", &forum]);
    assert_eq!(
        shown["record"]["body"]["tags"],
        serde_json::json!(["music", "music/jazz"]),
        "a tag brings its parents"
    );
    let bebop = id(&json(&repo, &["forum", "branch", &forum, "Bebop"]));
    let hard = id(&json(
        &repo,
        &["forum", "branch", &forum, "Hard bop", "--parent", &bebop],
    ));
    let out = text(&repo, &["forum", "show", &forum]);
    assert!(out.contains("Jazz") && out.contains("Records and players"));
    assert!(indent_of(&out, &hard) > indent_of(&out, &bebop), "{out}");

    // A thread, a reply from a second account, a reply to that reply, a fork at bob's post.
    let started = json(
        &repo,
        &[
            "thread",
            "start",
            &bebop,
            "--title",
            "Favourite solos",
            "--text",
            "Parker on Ko-Ko",
        ],
    );
    let thread = id(&started["thread"]);
    let first = id(&started["post"]);
    let r1 = json(
        &repo,
        &["--as", "bob", "reply", &first, "--text", "Gillespie too"],
    );
    assert_eq!(r1["thread"], thread.as_str());
    assert_eq!(r1["reply"]["parent"], first.as_str());
    let r1 = id(&r1);
    let r2 = id(&json(&repo, &["reply", &r1, "--text", "Agreed"]));
    let fork = json(
        &repo,
        &["thread", "fork", &thread, "--at", &r1, "--title", "Dizzy"],
    );
    assert_eq!(fork["fork"]["post"], r1.as_str());
    let fork = id(&fork);

    let shown = json(&repo, &["thread", "show", &thread]);
    assert_eq!(
        ids(&shown["posts"]),
        [first.clone(), r1.clone(), r2.clone()]
    );
    assert_eq!(ids(&shown["forks"]), [fork.as_str()]);
    let out = text(&repo, &["thread", "show", &thread]);
    assert!(out.contains("Favourite solos"), "{out}");
    assert!(
        indent_of(&out, "Gillespie too") > indent_of(&out, "Parker on Ko-Ko"),
        "the reply sits under its parent:\n{out}"
    );
    assert!(
        indent_of(&out, "Agreed") > indent_of(&out, "Gillespie too"),
        "{out}"
    );
    let bob_line = out.lines().find(|l| l.contains(&r1)).unwrap();
    assert!(bob_line.trim_start().starts_with("bob "), "{bob_line}");
    assert!(out.contains("forks:") && out.contains("Dizzy"), "{out}");

    // A reply outside threads: reply.root is the conversation's first post.
    let plain = id(&json(&repo, &["post", "Blue Train is out"]));
    let a = id(&json(
        &repo,
        &["--as", "bob", "reply", &plain, "--text", "Great"],
    ));
    let b = json(&repo, &["reply", &a, "--text", "It is"]);
    assert_eq!(b["thread"], Value::Null);
    let body = &json(&repo, &["record", "show", &id(&b)])["record"]["body"];
    assert_eq!(body["reply"]["root"]["/"], plain.as_str());
    assert_eq!(body["reply"]["parent"]["/"], a.as_str());

    // Facts: a sub-fact and a context note with a source.
    let fact = id(&json(
        &repo,
        &[
            "fact",
            "add",
            "Ko-Ko was recorded in 1945",
            "--source",
            "Liner notes=https://example.org/koko",
        ],
    ));
    let sub = id(&json(
        &repo,
        &["fact", "add", "For Savoy", "--parent", &fact],
    ));
    let note = id(&json(
        &repo,
        &[
            "--as",
            "bob",
            "context",
            "add",
            &fact,
            "--text",
            "Miles Davis played on it",
            "--source",
            "Discography",
        ],
    ));
    let shown = json(&repo, &["fact", "show", &fact]);
    assert_eq!(ids(&shown["facts"]), [sub.as_str()]);
    assert_eq!(ids(&shown["context"]), [note]);
    let out = text(&repo, &["fact", "show", &fact]);
    assert!(out.contains("https://example.org/koko"), "{out}");
    assert!(indent_of(&out, "For Savoy") > indent_of(&out, "Ko-Ko was"));
    assert!(out.contains("bob") && out.contains("Miles Davis played on it"));

    // Feeds and the timeline: newest first, --limit honoured. The owner follows the fork (the
    // fork route follows it), so bob's post there is in the owner's timeline.
    let in_fork = id(&json(
        &repo,
        &["--as", "bob", "post", "Salt Peanuts", "--thread", &fork],
    ));
    let feed = json(&repo, &["feed", "--limit", "3"]);
    assert_eq!(feed["items"].as_array().unwrap().len(), 3);
    assert!(feed["next"].is_string());
    newest_first(&feed["items"]);
    let whole = json(&repo, &["feed", &owner, "--limit", "100"]);
    newest_first(&whole["items"]);
    assert_eq!(ids(&feed["items"])[..], ids(&whole["items"])[..3]);
    let timeline = json(&repo, &["timeline"]);
    newest_first(&timeline["items"]);
    let tl = ids(&timeline["items"]);
    assert_eq!(tl[0], in_fork, "bob's post in the followed fork is newest");
    assert!(tl.contains(&plain) && tl.contains(&first), "own posts too");
    assert!(!tl.contains(&a), "bob's plain reply is not followed");
    let one = json(&repo, &["timeline", "--limit", "1"]);
    assert_eq!(ids(&one["items"]), [in_fork.as_str()]);
    assert!(one["next"].is_string());
    let out = text(&repo, &["timeline", "--limit", "2"]);
    assert_eq!(out.lines().count(), 3, "two rows and the cursor:\n{out}");
    assert!(out.lines().next().unwrap().contains("bob"));

    // Following needs the network.
    let e = fails(&repo, &["forum", "follow", &forum]);
    assert!(e.contains("needs a running node"), "{e}");

    // The same answers from a daemon on the same repo.
    let offline = reads(&repo, &forum, &thread, &fact);
    let daemon = run(&repo);
    let online = reads(&repo, &forum, &thread, &fact);
    for (a, b) in offline.iter().zip(&online) {
        assert_eq!(a, b);
    }

    // Writes through the daemon.
    let r3 = json(
        &daemon.repo,
        &["--as", "bob", "reply", &r2, "--text", "Through the daemon"],
    );
    assert_eq!(r3["thread"], thread.as_str());
    let r3 = id(&r3);
    let out = text(&daemon.repo, &["thread", "show", &thread]);
    assert!(indent_of(&out, "Through the daemon") > indent_of(&out, "Agreed"));
    let fork2 = id(&json(
        &daemon.repo,
        &["thread", "fork", &thread, "--at", &r3],
    ));
    let shown = json(&daemon.repo, &["thread", "show", &fork2]);
    assert_eq!(shown["thread"]["summary"], "Favourite solos (fork)");
    let cool = id(&json(&daemon.repo, &["forum", "branch", &forum, "Cool"]));
    let started = json(
        &daemon.repo,
        &[
            "thread", "start", &cool, "--title", "Birth", "--text", "Nonet",
        ],
    );
    json(
        &daemon.repo,
        &["fact", "add", "Recorded at WOR", "--parent", &sub],
    );
    let out = text(&daemon.repo, &["fact", "show", &fact]);
    assert!(
        indent_of(&out, "Recorded at WOR") > indent_of(&out, "For Savoy"),
        "{out}"
    );
    let followed = json(&daemon.repo, &["forum", "follow", &forum]);
    // The forum's own topic, then each of its branches.
    let follows = followed["follows"].as_array().unwrap();
    let shown = json(&daemon.repo, &["forum", "show", &forum]);
    let branches = shown["branches"].as_array().unwrap().len();
    assert!(branches >= 2, "{shown}");
    assert_eq!(follows.len(), 1 + branches);
    assert_eq!(follows[0]["following"], format!("/mnode/1/forum/{forum}"));
    let timeline = json(&daemon.repo, &["timeline"]);
    assert_eq!(
        ids(&timeline["items"])[0],
        id(&started["post"]),
        "the new thread's first post leads the timeline"
    );
    let online = reads(&daemon.repo, &forum, &thread, &fact);
    drop(daemon);
    let offline = reads(&repo, &forum, &thread, &fact);
    for (a, b) in offline.iter().zip(&online) {
        assert_eq!(a, b);
    }
}

#[test]
fn errors_are_clear_and_write_nothing_offline_and_through_a_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let repo = init(dir.path(), "node");
    let forum = id(&json(&repo, &["forum", "create", "Jazz"]));
    let branch = id(&json(&repo, &["forum", "branch", &forum, "Bebop"]));
    let started = json(
        &repo,
        &[
            "thread", "start", &branch, "--title", "Solos", "--text", "Ko-Ko",
        ],
    );
    let thread = id(&started["thread"]);
    let other = id(&json(&repo, &["post", "not in the thread"]));
    // A well-formed CID of nothing this node holds.
    let missing = mnode_dag::cids::record_cid(b"nothing here").to_string();

    let check = |repo: &Path| {
        let before = count(repo);
        let e = fails(repo, &["reply", &missing, "--text", "hello"]);
        assert!(e.contains(&missing) && e.contains("on this node"), "{e}");
        let e = fails(repo, &["reply", &forum, "--text", "hello"]);
        assert!(e.contains("social.forum, not a post"), "{e}");
        let e = fails(repo, &["thread", "show", &forum]);
        assert!(e.contains("social.forum, not a social.thread"), "{e}");
        let e = fails(
            repo,
            &["thread", "start", &forum, "--title", "T", "--text", "x"],
        );
        assert!(e.contains("not a social.branch"), "{e}");
        let e = fails(repo, &["thread", "show", "bafy-not-a-cid"]);
        assert!(e.contains("\"bafy-not-a-cid\" is not a CID"), "{e}");
        let e = fails(repo, &["reply", "nope", "--text", "hello"]);
        assert!(e.contains("is not a CID"), "{e}");
        let e = fails(repo, &["thread", "fork", &thread, "--at", &other]);
        assert!(e.contains("is not in thread"), "{e}");
        let e = fails(repo, &["fact", "add", "x", "--parent", &missing]);
        assert!(e.contains("no info.fact"), "{e}");
        let e = fails(repo, &["context", "add", &missing, "--text", "x"]);
        assert!(e.contains("on this node"), "{e}");
        let e = fails(repo, &["--as", "nobody", "reply", &other, "--text", "x"]);
        assert!(e.contains("nobody"), "{e}");
        assert_eq!(count(repo), before, "nothing written");
    };
    check(&repo);
    let daemon = run(&repo);
    check(&daemon.repo);
    let o = mnode(&daemon.repo, &["--json", "thread", "show", &forum]);
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a social.thread")
    );
}

#[test]
fn moderation_and_texts_from_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let repo = init(dir.path(), "node");
    let bob_did = json(
        &repo,
        &["account", "create", "bob", "--email", "bob@example.org"],
    )["keys"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let forum = id(&json(&repo, &["forum", "create", "Tape"]));
    let branch = id(&json(&repo, &["forum", "branch", &forum, "Decks"]));
    let started = json(
        &repo,
        &[
            "thread", "start", &branch, "--title", "Hiss", "--text", "Heads?",
        ],
    );
    let thread = id(&started["thread"]);
    let first = id(&started["post"]);
    let spam = id(&json(
        &repo,
        &["--as", "bob", "reply", &first, "--text", "cheap watches"],
    ));

    // Bob is no moderator: refused, nothing written.
    let before = count(&repo);
    let e = fails(
        &repo,
        &["--as", "bob", "mod", "hide", &spam, "--reason", "x"],
    );
    assert!(e.contains("not a moderator"), "{e}");
    assert_eq!(count(&repo), before);
    // The owner (the forum's maker) hides it; the forum is found from the post.
    let hid = json(&repo, &["mod", "hide", &spam, "--reason", "spam"]);
    assert_eq!(hid["forum"], forum.as_str());
    let shown = json(&repo, &["thread", "show", &thread]);
    let post = shown["posts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == spam.as_str())
        .unwrap();
    assert_eq!(post["moderation"]["reason"], "spam", "{post}");
    json(
        &repo,
        &[
            "mod", "ban", &bob_did, "--forum", &forum, "--reason", "again",
        ],
    );
    let m = json(&repo, &["mod", "unhide", &spam, "--reason", "fine"]);
    assert_eq!(m["forum"], forum.as_str());
    // A ban names its forum: a usage error (2) says so.
    let o = mnode(&repo, &["mod", "ban", &bob_did, "--reason", "x"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--forum"));

    // A text from Markdown, read back as Markdown, edited.
    let md = dir.path().join("notes.md");
    std::fs::write(&md, "# Side A\n\nRecorded **live** with [the band](https://example.org/band).\n\n- one\n- two\n").unwrap();
    let made = json(
        &repo,
        &[
            "text",
            "new",
            md.to_str().unwrap(),
            "--title",
            "Liner notes",
        ],
    );
    let text_id = id(&made);
    let stored = json(&repo, &["record", "show", &text_id]);
    assert_eq!(stored["record"]["body"]["format"], "prosemirror-markdown/1");
    assert_eq!(
        stored["record"]["body"]["doc"]["content"][0]["type"],
        "heading"
    );
    let out = text(&repo, &["text", "export", &text_id]);
    assert!(out.starts_with("# Side A\n"), "{out}");
    assert!(
        out.contains("**live**") && out.contains("[the band](https://example.org/band)"),
        "{out}"
    );
    std::fs::write(&md, "# Side B\n\nNew notes.\n").unwrap();
    json(&repo, &["text", "edit", &text_id, md.to_str().unwrap()]);
    let out = text(&repo, &["text", "export", &text_id]);
    assert!(
        out.starts_with("# Side B\n") && out.contains("New notes."),
        "{out}"
    );
    let empty = dir.path().join("empty.md");
    std::fs::write(&empty, "  \n").unwrap();
    let e = fails(&repo, &["text", "new", empty.to_str().unwrap()]);
    assert!(e.contains("empty"), "{e}");
    let e = fails(&repo, &["text", "export", &forum]);
    assert!(e.contains("not a core.text"), "{e}");
}

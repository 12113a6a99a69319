//! The offline CLI against real repos: what a newcomer does, and what goes wrong.

#![allow(clippy::unwrap_used)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use serde_json::Value;

struct Repo {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Repo {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("repo");
        let repo = Self { _dir: dir, path };
        let o = repo.run(&["init", "--handle", "alice", "--no-password"]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        repo
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_mnode"))
            .arg("--repo")
            .arg(&self.path)
            .args(args)
            .env_remove("MNODE_REPO")
            .env_remove("MNODE_PASSPHRASE")
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "mnode {args:?} failed:\n{}\n{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        text(&o.stdout)
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            !o.status.success(),
            "mnode {args:?} should fail:\n{}",
            text(&o.stdout)
        );
        text(&o.stderr) + &text(&o.stdout)
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A folder with a real BMP image, a WAV file and a text file.
fn release_folder(dir: &Path) -> PathBuf {
    let folder = dir.join("album");
    std::fs::create_dir_all(&folder).unwrap();
    let mut g = mnode_dag::example::ExampleGen::new(11);
    let image = g.image(12, 9);
    let audio = g.audio(200);
    for (data, name) in [(image, "cover.bmp"), (audio, "track1.wav")] {
        let bytes = &g
            .blocks()
            .iter()
            .find(|(c, _)| *c == data.blob.0)
            .unwrap()
            .1;
        std::fs::write(folder.join(name), bytes).unwrap();
    }
    std::fs::write(
        folder.join("notes.md"),
        "# Liner notes\n\nRecorded at home.\n",
    )
    .unwrap();
    folder
}

#[test]
fn a_newcomer_publishes_versions_exports_and_imports_a_release() {
    let a = Repo::new();
    let id = a.json(&["id"]);
    assert_eq!(id["owner"], "alice");
    assert!(id["node"].as_str().unwrap().starts_with("did:key:z6Mk"));

    let seeded = a.json(&["seed"]);
    assert!(seeded["records"].as_u64().unwrap() > 20, "{seeded}");
    assert!(seeded["files"].as_u64().unwrap() > 2);

    let folder = release_folder(a.path.parent().unwrap());
    let published = a.json(&[
        "publish",
        "release",
        folder.to_str().unwrap(),
        "--title",
        "Home Recordings",
        "--artist",
        "The Kitchen Band",
        "--tag",
        "music/folk",
        "--date",
        "2024-11",
    ]);
    let release = published["release"].as_str().unwrap().to_owned();
    let files = published["files"].as_array().unwrap();
    let kinds: Vec<&str> = files.iter().map(|f| f["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        vec!["art.image", "core.file", "art.audio"],
        "sorted: cover.bmp, notes.md, track1.wav"
    );

    let shown = a.json(&["record", "show", &release]);
    assert_eq!(shown["record"]["body"]["title"]["full"], "Home Recordings");
    assert_eq!(
        shown["record"]["body"]["files"].as_array().unwrap().len(),
        3
    );
    let image = files[0]["record"].as_str().unwrap();
    let image_record = a.json(&["record", "show", image]);
    assert_eq!(image_record["record"]["body"]["width"], 12);
    assert_eq!(
        image_record["record"]["body"]["file"]["media_type"],
        "image/bmp"
    );

    let listed = a.json(&[
        "record",
        "list",
        "art.release",
        "--tag",
        "music",
        "--author",
        "alice",
    ]);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");

    a.ok(&[
        "record",
        "update",
        &release,
        "--set",
        "title.full=Home Recordings (Remastered)",
    ]);
    let history = a.json(&["record", "history", &release]);
    assert_eq!(history["versions"].as_array().unwrap().len(), 2);
    assert_eq!(
        a.json(&["record", "show", &release])["record"]["body"]["title"]["full"],
        "Home Recordings (Remastered)"
    );

    let q = a.json(&["query", "art.releases.tag = 'music/folk'"]);
    assert_eq!(q["items"].as_array().unwrap().len(), 1);

    // Export the release (versions, artist, files) and import it into a second repo.
    let car = a.path.parent().unwrap().join("release.car");
    a.ok(&["dag", "export", &release, "-o", car.to_str().unwrap()]);
    let report = a.json(&["verify", car.to_str().unwrap()]);
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["chain_links"], 1);
    assert_eq!(report["raw"], 3, "the three files travel in the CAR");

    let b = Repo::new();
    let imported = b.json(&["dag", "import", car.to_str().unwrap()]);
    assert_eq!(imported["ok"], true, "{imported}");
    assert_eq!(
        b.json(&["record", "show", &release])["record"],
        a.json(&["record", "show", &release])["record"]
    );
    let cover = files[0]["cid"].as_str().unwrap();
    assert_eq!(b.ok(&["cat", cover]), a.ok(&["cat", cover]));
    assert_eq!(b.json(&["repo", "verify"])["ok"], true);

    // Deleting hides the release from listings and keeps its history.
    a.ok(&["record", "delete", &release]);
    assert!(
        a.json(&["record", "list", "art.release", "--author", "alice"])["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        a.json(&["record", "history", &release])["versions"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert!(
        a.fails(&["record", "update", &release, "--set", "title.full=x"])
            .contains("deleted")
    );
    assert_eq!(a.json(&["repo", "verify"])["ok"], true);
}

#[test]
fn add_get_and_cat_files() {
    let a = Repo::new();
    let dir = a.path.parent().unwrap().to_owned();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.join("data.bin"), &data).unwrap();
    let added = a.json(&["add", dir.join("data.bin").to_str().unwrap()]);
    let cid = added[0]["cid"].as_str().unwrap().to_owned();
    assert_eq!(cid, mnode_dag::cids::blob_cid_of(&data).to_string());
    assert_eq!(added[0]["type"], "core.file");
    let o = a.run(&["cat", &cid, "--range", "1000-1999"]);
    assert_eq!(o.stdout, data[1000..2000]);
    let o = a.run(&[
        "cat",
        added[0]["record"].as_str().unwrap(),
        "--range",
        "299990-",
    ]);
    assert_eq!(
        o.stdout,
        data[299_990..],
        "a file record's id works as well as the file's CID"
    );
    let out = dir.join("copy.bin");
    a.ok(&["get", &cid, "-o", out.to_str().unwrap()]);
    assert_eq!(std::fs::read(&out).unwrap(), data);
    assert!(
        a.fails(&["get", &cid, "-o", out.to_str().unwrap()])
            .contains("exists")
    );
    assert!(
        a.fails(&["cat", &cid, "--range", "400000-"])
            .contains("range")
    );
    assert!(
        a.fails(&["cat", &cid, "--range", "9-3"])
            .contains("--range")
    );
    // Its UnixFS CID (one raw leaf, for a file under 1 MiB) names the same file.
    let unixfs = added[0]["unixfs"].as_str().unwrap().to_owned();
    assert_eq!(unixfs, mnode_dag::unixfs::leaf_cid(&data).to_string());
    let by_ipfs = dir.join("by-ipfs.bin");
    a.ok(&["get", &unixfs, "-o", by_ipfs.to_str().unwrap()]);
    assert_eq!(std::fs::read(&by_ipfs).unwrap(), data);
    let other = mnode_dag::unixfs::leaf_cid(b"not here").to_string();
    assert!(a.fails(&["get", &other]).contains("names no file"));
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let a = Repo::new();
    let e = a.fails(&[
        "record",
        "create",
        "social.post",
        "--set",
        "text=hi",
        "--set",
        "colour=red",
    ]);
    assert!(e.contains("colour") && e.contains("unknown field"), "{e}");
    let e = a.fails(&["record", "create", "social.post", "--set", "text="]);
    assert!(e.contains("text: must not be empty"), "{e}");
    let e = a.fails(&["record", "create", "art.relase", "--set", "x=1"]);
    assert!(e.contains("unknown kind"), "{e}");
    let e = a.fails(&[
        "record",
        "create",
        "art.release",
        "--set",
        "title.full=X",
        "--set",
        "artists=[\"nope\"]",
    ]);
    assert!(e.contains("artists[0]: expected a link"), "{e}");
    // A private file needs the daemon, which knows its readers' keys; nothing is stored.
    let take = a.path.parent().unwrap().join("take.wav");
    std::fs::write(&take, b"not for everyone").unwrap();
    let e = a.fails(&["add", take.to_str().unwrap(), "--to", "ben"]);
    assert!(e.contains("mnode daemon"), "{e}");
    assert_eq!(a.json(&["repo", "stat"])["records"]["items"], 0);

    let e = a.fails(&["init"]);
    assert!(e.contains("already holds an mnode repo"), "{e}");
    let e = a.fails(&["query", "art.artists.lst()"]);
    assert!(e.contains("column 13"), "{e}");
    let e = a.fails(&["record", "show", "bafyreinotacid"]);
    assert!(e.contains("\"bafyreinotacid\" is not a CID"), "{e}");

    // A malformed config names the file, the line and the key.
    let yaml = a.path.join("mnode.yaml");
    let original = std::fs::read_to_string(&yaml).unwrap();
    std::fs::write(&yaml, original.replace("cache_mb: 64", "cache_mb: lots")).unwrap();
    let e = a.fails(&["id"]);
    assert!(e.contains("mnode.yaml:") && e.contains("cache_mb"), "{e}");
    std::fs::write(&yaml, original).unwrap();
    let e = a.fails(&["-c", "store.cache_mb=lots", "id"]);
    assert!(e.contains("store.cache_mb"), "{e}");

    // A tampered CAR: the bad block is refused, the good ones still import.
    let post = a.json(&["record", "create", "social.post", "--set", "text=hello"]);
    let id = post["id"].as_str().unwrap();
    let car = a.path.parent().unwrap().join("post.car");
    a.ok(&["dag", "export", id, "-o", car.to_str().unwrap()]);
    let mut bytes = std::fs::read(&car).unwrap();
    let n = bytes.len();
    bytes[n - 5] ^= 0x01;
    std::fs::write(&car, &bytes).unwrap();
    let b = Repo::new();
    let o = b.run(&["--json", "dag", "import", car.to_str().unwrap()]);
    assert!(!o.status.success());
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        !report["report"]["failures"].as_array().unwrap().is_empty(),
        "{report}"
    );
    assert_eq!(b.json(&["repo", "stat"])["records"]["items"], 0);
}

#[test]
fn pins_keep_things_from_gc() {
    let a = Repo::new();
    let kept = a.json(&["record", "create", "social.post", "--set", "text=keep me"]);
    let dropped = a.json(&["record", "create", "social.post", "--set", "text=drop me"]);
    let (kept, dropped) = (
        kept["id"].as_str().unwrap(),
        dropped["id"].as_str().unwrap(),
    );
    a.ok(&["record", "update", dropped, "--set", "text=drop me too"]);
    a.ok(&["pin", "rm", dropped]);
    let pins: Vec<String> = a
        .json(&["pin", "ls"])
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["cid"].as_str().unwrap().to_owned())
        .collect();
    assert!(pins.contains(&kept.to_owned()) && !pins.contains(&dropped.to_owned()));
    let gc = a.json(&["repo", "gc"]);
    assert_eq!(gc["items"], 1, "{gc}");
    assert_eq!(
        gc["blocks"], 2,
        "both versions of the unpinned item go: {gc}"
    );
    assert!(
        a.fails(&["record", "show", dropped])
            .contains("on this node"),
        "gone after gc"
    );
    a.ok(&["record", "show", kept]);
    assert_eq!(a.json(&["repo", "verify"])["ok"], true);
}

#[test]
fn accounts_sign_as_themselves() {
    let a = Repo::new();
    let pw = a.path.parent().unwrap().join("pw");
    std::fs::write(&pw, "tangerine-lighthouse-vortex-88\n").unwrap();
    let bob = a.json(&[
        "account",
        "create",
        "bob",
        "--email",
        "Bob@Example.org",
        "--password-file",
        pw.to_str().unwrap(),
    ]);
    let bob_did = bob["keys"][0].as_str().unwrap().to_owned();
    let e = a.fails(&["account", "create", "robert", "--email", "bob@example.ORG"]);
    assert!(e.contains("used by another account"), "{e}");

    // Phone numbers: optional, stored in E.164, unique, set and removed later.
    let dave = a.json(&[
        "account",
        "create",
        "dave",
        "--email",
        "dave@example.org",
        "--phone",
        "+49 30 901820",
    ]);
    assert_eq!(dave["phone"], "+4930901820", "{dave}");
    let e = a.fails(&["account", "phone", "bob", "+49-30-901820"]);
    assert!(e.contains("+4930901820 is used by another account"), "{e}");
    let e = a.fails(&["account", "phone", "bob", "030 901820"]);
    assert!(e.contains("with + and the country code"), "{e}");
    let e = a.fails(&["account", "phone", "bob"]);
    assert!(e.contains("--remove"), "a number or --remove: {e}");
    a.ok(&["account", "phone", "dave", "--remove"]);
    let bob_phone = a.json(&["account", "phone", "bob", "+4930901820"]);
    assert_eq!(bob_phone["phone"], "+4930901820", "{bob_phone}");
    a.ok(&["account", "delete", "dave"]);
    std::fs::write(&pw, "password1\n").unwrap();
    let e = a.fails(&[
        "account",
        "create",
        "carol",
        "--email",
        "c@example.org",
        "--password-file",
        pw.to_str().unwrap(),
    ]);
    assert!(e.contains("too weak"), "{e}");

    let post = a.json(&[
        "--as",
        "bob",
        "record",
        "create",
        "social.post",
        "--set",
        "text=from bob",
    ]);
    let post = a.json(&["record", "show", post["id"].as_str().unwrap()]);
    assert_eq!(post["record"]["author"], bob_did);
    let mine = a.json(&["record", "list", "social.post", "--author", "bob"]);
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    // Alice cannot write a new version of Bob's post.
    let e = a.fails(&[
        "record",
        "update",
        post["id"].as_str().unwrap(),
        "--set",
        "text=alice was here",
    ]);
    assert!(
        e.contains("bob wrote this item; alice cannot sign a version of it"),
        "{e}"
    );
    assert_eq!(a.json(&["account", "list"]).as_array().unwrap().len(), 2);
    a.ok(&["account", "delete", "bob"]);
    assert!(
        a.fails(&["account", "delete", "alice"])
            .contains("owns this node")
    );
    assert!(
        a.fails(&[
            "--as",
            "bob",
            "record",
            "create",
            "social.post",
            "--set",
            "text=x"
        ])
        .contains("bob")
    );
}

#[test]
fn a_band_keeps_its_page_together_from_the_command_line() {
    let a = Repo::new();
    a.json(&["account", "create", "ben", "--email", "ben@example.org"]);
    a.json(&["account", "create", "cy", "--email", "cy@example.org"]);
    let made = a.ok(&[
        "group", "create", "The Band", "--member", "ben", "--member", "cy:admin",
    ]);
    assert!(made.starts_with("created group The Band "), "{made}");
    let group = made.split_whitespace().last().unwrap().to_owned();
    // Ben makes the band's page as the group's; Alice (the owner) edits it.
    let page = a.json(&[
        "--as",
        "ben",
        "record",
        "create",
        "art.artist_group",
        "--set",
        "name.full=The Band",
        "--set",
        "members=[]",
        "--owner",
        &group,
    ]);
    let id = page["id"].as_str().unwrap().to_owned();
    a.json(&[
        "record",
        "update",
        &id,
        "--set",
        "name.full=The Band (live)",
    ]);
    let shown = a.ok(&["group", "show", &group]);
    for line in [
        "owner      alice",
        "member     ben",
        "admin      cy",
        "art.artist_group",
    ] {
        assert!(shown.contains(line), "{line:?} in:\n{shown}");
    }
    // Roles decide: Ben may not delete, nor add anyone; Cy may not make an admin.
    let e = a.fails(&["--as", "ben", "record", "delete", &id]);
    assert!(
        e.contains("ben is member") && e.contains("deleting needs owner or admin"),
        "{e}"
    );
    let e = a.fails(&[
        "--as", "ben", "group", "add", &group, "cy", "--role", "member",
    ]);
    assert!(
        e.contains("group_role") || e.contains("managing members"),
        "{e}"
    );
    let e = a.fails(&["--as", "cy", "group", "role", &group, "ben", "admin"]);
    assert!(e.contains("only owners change owners and admins"), "{e}");
    let e = a.fails(&["group", "role", &group, "ben", "boss"]);
    assert!(e.contains("unknown role \"boss\""), "{e}");
    // Removed, Ben edits no more; the page keeps what the band wrote.
    a.ok(&["group", "remove", &group, "ben"]);
    let e = a.fails(&[
        "--as",
        "ben",
        "record",
        "update",
        &id,
        "--set",
        "name.full=Mine",
    ]);
    assert!(e.contains("ben is not a member"), "{e}");
    let shown = a.json(&["record", "show", &id]);
    assert_eq!(shown["record"]["body"]["name"]["full"], "The Band (live)");
    let listed = a.json(&["group", "list", "--member", "cy"]);
    assert_eq!(listed["items"][0]["id"], group.as_str(), "{listed}");
}

#[test]
fn private_messages_and_posts_from_the_command_line() {
    let a = Repo::new();
    a.json(&["account", "create", "ben", "--email", "ben@example.org"]);
    a.json(&["account", "create", "cy", "--email", "cy@example.org"]);
    let sent = a.ok(&["message", "send", "ben", "the mix is ready"]);
    assert!(sent.starts_with("sent message "), "{sent}");
    let e = a.fails(&["message", "send", "nobody", "hello?"]);
    assert!(e.contains("neither a did:key nor an account"), "{e}");
    let ben = a.ok(&["--as", "ben", "message", "list"]);
    assert!(
        ben.contains("alice") && ben.contains("the mix is ready"),
        "{ben}"
    );
    let cy = a.ok(&["--as", "cy", "message", "list"]);
    assert!(cy.contains("no messages yet"), "{cy}");
    let alice = a.json(&["message", "list", "--with", "ben"]);
    assert_eq!(alice["messages"][0]["text"], "the mix is ready", "{alice}");
    // A post only Ben may read: the owner's account (the CLI's) reads it, and no listing
    // shows it to anyone else.
    let post = a.json(&[
        "record",
        "create",
        "social.post",
        "--set",
        "text=rehearsal on Thursday",
        "--to",
        "ben",
    ]);
    let id = post["id"].as_str().unwrap().to_owned();
    let shown = a.json(&["record", "show", &id]);
    assert_eq!(shown["record"]["body"]["text"], "rehearsal on Thursday");
    assert_eq!(shown["private"]["readable"], true, "{shown}");
    let e = a.fails(&[
        "record",
        "create",
        "social.message",
        "--set",
        "text=to everyone",
    ]);
    assert!(e.contains("always private"), "{e}");
    // For a group's members: the record lists them (and its author) as its readers.
    let made = a.ok(&["group", "create", "The Band", "--member", "ben"]);
    let group = made.split_whitespace().last().unwrap().to_owned();
    let post = a.json(&[
        "record",
        "create",
        "social.post",
        "--set",
        "text=set list",
        "--to-group",
        &group,
    ]);
    let shown = a.json(&["record", "show", post["id"].as_str().unwrap()]);
    assert_eq!(shown["record"]["body"]["text"], "set list");
    assert_eq!(
        shown["private"]["to"].as_array().unwrap().len(),
        2,
        "{shown}"
    );
    let e = a.fails(&[
        "record",
        "create",
        "social.post",
        "--set",
        "text=x",
        "--to-group",
        "nope",
    ]);
    assert!(e.contains("the group to send to"), "{e}");
}

//! Two daemons on one machine, driven by the `mnode` CLI as the README shows: connect, follow,
//! post, share a file, see them arrive.

#![allow(clippy::unwrap_used)]

mod support;

use support::{json, mnode, start, wait_until};

#[test]
fn two_daemons_connect_follow_post_and_share_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let a = start(dir.path(), "a");
    let b = start(dir.path(), "b");

    let id_a = json(&a.repo, &["id"]);
    let addr = id_a["addrs"][0].as_str().unwrap().to_owned();
    assert!(addr.contains("/p2p/"));
    let owner_a = id_a["owner_did"].as_str().unwrap().to_owned();

    let c = json(&b.repo, &["connect", &addr]);
    assert_eq!(c["peer_id"], id_a["peer_id"]);
    let peers = json(&b.repo, &["peers"]);
    assert!(
        peers["peers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["peer_id"] == id_a["peer_id"])
    );
    json(&b.repo, &["follow", &owner_a]);
    let follows = json(&b.repo, &["follows"]);
    assert!(follows["follows"][0].as_str().unwrap().ends_with(&owner_a));

    // The post reaches B by gossip (or by catch-up, if the mesh is still forming).
    let posted = json(&a.repo, &["post", "hello from A"]);
    let id = posted["id"].as_str().unwrap().to_owned();
    wait_until("the post on B", || {
        let list = json(&b.repo, &["record", "list", "social.post"]);
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"] == id.as_str())
    });
    let shown = json(&b.repo, &["record", "show", &id]);
    assert_eq!(shown["record"]["body"]["text"], "hello from A");

    // A new version made through A's daemon reaches B; history and delete work there too.
    let updated = json(
        &a.repo,
        &["record", "update", &id, "--set", "text=edited on A"],
    );
    assert_eq!(updated["seq"], 1);
    wait_until("the new version on B", || {
        json(&b.repo, &["record", "show", &id])["record"]["body"]["text"] == "edited on A"
    });
    let deleted = json(&a.repo, &["record", "delete", &id]);
    assert_eq!(deleted["seq"], 2);
    let history = json(&a.repo, &["record", "history", &id]);
    let versions = history["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 3);
    assert_eq!(versions[2]["deleted"], true);
    let o = mnode(&a.repo, &["record", "delete", &id]);
    assert!(!o.status.success(), "deleting twice is refused");

    // A file added on A is fetched by B, verified.
    let file = dir.path().join("track.bin");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&file, &data).unwrap();
    let added = json(&a.repo, &["add", file.to_str().unwrap()]);
    let cid = added[0]["cid"].as_str().unwrap().to_owned();
    let fetched = json(&b.repo, &["fetch", &cid]);
    assert_eq!(fetched["size"], data.len() as u64);
    let out = dir.path().join("copy.bin");
    let got = json(&b.repo, &["get", &cid, "-o", out.to_str().unwrap()]);
    assert_eq!(
        got["transferred"], 0,
        "already fetched: nothing more to transfer"
    );
    assert_eq!(std::fs::read(&out).unwrap(), data);
    let o = mnode(&b.repo, &["get", &cid, "-o", out.to_str().unwrap()]);
    assert!(!o.status.success(), "an existing file is not overwritten");

    // A release published on A is fetched whole by B, by its id: records and files.
    let album = dir.path().join("photos");
    std::fs::create_dir_all(&album).unwrap();
    let mut photos = Vec::new();
    for i in 0..40u32 {
        let bytes: Vec<u8> = (0..4096 + 100 * i).map(|j| (j * 31 + i) as u8).collect();
        std::fs::write(album.join(format!("{i:02}.bin")), &bytes).unwrap();
        photos.push(bytes);
    }
    let published = json(
        &a.repo,
        &[
            "publish",
            "release",
            album.to_str().unwrap(),
            "--title",
            "Forty",
        ],
    );
    let release = published["release"].as_str().unwrap().to_owned();
    let fetched = json(&b.repo, &["fetch", &release]);
    assert_eq!(fetched["complete"], true, "{fetched}");
    assert_eq!(fetched["files"], 40);
    assert_eq!(fetched["held_before"], 0);
    let total: u64 = photos.iter().map(|p| p.len() as u64).sum();
    assert_eq!(fetched["transferred"], total);
    let shown = json(&b.repo, &["record", "show", &release]);
    let files = shown["record"]["body"]["files"].as_array().unwrap().clone();
    assert_eq!(files.len(), 40);
    let first = files[0]["/"].as_str().unwrap();
    let out = dir.path().join("first.bin");
    let got = json(&b.repo, &["get", first, "-o", out.to_str().unwrap()]);
    assert_eq!(got["transferred"], 0, "the release's files are held");
    assert_eq!(std::fs::read(&out).unwrap(), photos[0]);
    let o = mnode(&b.repo, &["fetch", &release]);
    assert!(o.status.success());
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(
        said.contains("40 files") && said.contains("40 held before"),
        "{said}"
    );

    // Errors are clear: a bad multiaddr, a bad follow target.
    let o = mnode(&b.repo, &["connect", "not-an-address"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a multiaddr"));
    let o = mnode(&b.repo, &["follow", "nobody"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not an mnode topic"));

    // Stopping removes daemon.json; the CLI works on the repo directly again.
    drop(a);
    assert!(!dir.path().join("a/daemon.json").exists());
    let history = json(&dir.path().join("a"), &["record", "history", &id]);
    assert_eq!(history["versions"].as_array().unwrap().len(), 3);
}

#[test]
fn network_commands_without_a_daemon_say_how_to_start_one() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("r");
    assert!(mnode(&repo, &["init"]).status.success());
    let o = mnode(&repo, &["peers"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("mnode daemon"));
}

/// The repo verbs work the same while a daemon holds the repo: they go through its API.
#[test]
fn publish_pin_dag_and_repo_go_through_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path(), "a");
    let album = dir.path().join("album");
    std::fs::create_dir_all(&album).unwrap();
    std::fs::write(album.join("one.txt"), "first track notes\n").unwrap();
    std::fs::write(album.join("two.bin"), vec![7u8; 70_000]).unwrap();

    let published = json(
        &d.repo,
        &[
            "publish",
            "release",
            album.to_str().unwrap(),
            "--title",
            "Home Recordings",
            "--artist",
            "The Kitchen Band",
            "--tag",
            "music/folk",
        ],
    );
    let release = published["release"].as_str().unwrap().to_owned();
    assert_eq!(published["files"].as_array().unwrap().len(), 2);
    let shown = json(&d.repo, &["record", "show", &release]);
    assert_eq!(shown["record"]["body"]["title"]["full"], "Home Recordings");
    assert_eq!(
        shown["record"]["body"]["files"].as_array().unwrap().len(),
        2
    );

    // cat, by the file's CID and by its record, with a range.
    let one = published["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with("one.txt"))
        .unwrap()
        .clone();
    let o = mnode(&d.repo, &["cat", one["cid"].as_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.stdout, b"first track notes\n");
    let o = mnode(
        &d.repo,
        &["cat", one["record"].as_str().unwrap(), "--range", "6-10"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.stdout, b"track");

    let found = json(&d.repo, &["query", "art.releases.tag = 'music/folk'"]);
    assert_eq!(found["items"][0]["id"], release.as_str(), "{found}");

    // Accounts through the daemon.
    let secret = dir.path().join("pw");
    std::fs::write(&secret, "a long walk by the river\n").unwrap();
    let created = json(
        &d.repo,
        &[
            "account",
            "create",
            "kim",
            "--email",
            "kim@example.org",
            "--password-file",
            secret.to_str().unwrap(),
        ],
    );
    assert_eq!(created["handle"], "kim");
    let listed = json(&d.repo, &["account", "list"]);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["handle"] == "kim")
    );
    std::fs::write(&secret, "another long walk by the sea\n").unwrap();
    let o = mnode(
        &d.repo,
        &[
            "account",
            "passwd",
            "kim",
            "--password-file",
            secret.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    json(&d.repo, &["account", "delete", "kim"]);
    let listed = json(&d.repo, &["account", "list"]);
    assert!(
        !listed
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["handle"] == "kim")
    );

    let block = json(&d.repo, &["dag", "get", &release]);
    assert_eq!(block["type"], "art.release");

    let pins = json(&d.repo, &["pin", "ls"]);
    assert!(
        pins.as_array()
            .unwrap()
            .iter()
            .any(|p| p["cid"] == release.as_str()),
        "{pins}"
    );
    let car = dir.path().join("release.car");
    let exported = json(
        &d.repo,
        &["dag", "export", &release, "-o", car.to_str().unwrap()],
    );
    assert_eq!(exported["report"]["files"], 2, "{exported}");
    let o = mnode(&d.repo, &["verify", car.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    // Exporting over an existing file is refused.
    let o = mnode(
        &d.repo,
        &["dag", "export", &release, "-o", car.to_str().unwrap()],
    );
    assert!(!o.status.success());

    let unpinned = json(&d.repo, &["pin", "rm", &release]);
    assert_eq!(unpinned["unpinned"], release.as_str());
    let imported = json(&d.repo, &["dag", "import", car.to_str().unwrap()]);
    assert_eq!(imported["ok"], true, "{imported}");
    assert_eq!(imported["report"]["roots"][0], release.as_str());

    let stat = json(&d.repo, &["repo", "stat"]);
    assert!(stat["records"]["items"].as_u64().unwrap() >= 4, "{stat}");
    assert_eq!(stat["files"], 2, "{stat}");
    let verified = json(&d.repo, &["repo", "verify"]);
    assert_eq!(verified["ok"], true, "{verified}");
    let gc = json(&d.repo, &["repo", "gc"]);
    assert_eq!(gc["blobs"], 0, "the pinned release keeps its files: {gc}");
    let stat = json(&d.repo, &["repo", "stat"]);
    assert_eq!(stat["files"], 2, "{stat}");
}

/// Open event streams (a web page's `/events`, a monitor's `/node/events`) end when the daemon
/// is told to stop, instead of holding its graceful shutdown open forever.
#[test]
fn sigterm_stops_a_daemon_with_open_event_streams() {
    use std::io::{BufRead as _, BufReader, Write as _};

    let dir = tempfile::tempdir().unwrap();
    let mut d = support::start(dir.path(), "a");
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.repo.join("daemon.json")).unwrap()).unwrap();
    let api = file["api"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://")
        .to_owned();
    let token = std::fs::read_to_string(d.repo.join("api.token")).unwrap();
    let mut streams = Vec::new();
    for path in ["/api/v1/events", "/api/v1/node/events"] {
        let mut s = std::net::TcpStream::connect(&api).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {api}\r\nAuthorization: Bearer {}\r\nAccept: text/event-stream\r\n\r\n",
            token.trim()
        )
        .unwrap();
        let mut r = BufReader::new(s);
        let mut status = String::new();
        r.read_line(&mut status).unwrap();
        assert!(status.contains(" 200 "), "{path}: {status}");
        streams.push(r);
    }
    let term = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(d.child.id().to_string())
        .status()
        .unwrap();
    assert!(term.success());
    let start = std::time::Instant::now();
    let exited = loop {
        if let Some(status) = d.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(15),
            "the daemon did not stop with event streams open"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(exited.success(), "{exited}");
    assert!(!d.repo.join("daemon.json").exists());
    // The streams ended with it.
    for mut r in streams {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut r, &mut rest);
    }
}

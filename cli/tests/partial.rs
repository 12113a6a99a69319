//! Failures leave nothing half-done, and what `add`, `publish release` and `get` make is what a
//! newcomer expects: a refused publish, CAR import or init writes nothing; `repo verify` notices
//! a pinned item whose DAG is incomplete; curl's default `Content-Type` does not become a
//! file's media type; covers, release kinds, artists and titles are chosen sensibly; `get`
//! does not make folders it was not asked to.
#![allow(clippy::unwrap_used)]

mod support;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use mnode_dag::car::{CarReader, CarWriter};
use serde_json::Value;
use support::{init, json, mnode, run};

/// A PNG header with its size (all the sniffer and `imagesize` read), and `tag` after it so
/// that each image is a different file.
fn png(tag: u8) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x02\0\0\0\x03\x08\x06\0\0\0".to_vec();
    b.extend_from_slice(&[tag; 64]);
    b
}

/// A short mono 8-bit WAV file of `n` samples.
fn wav(n: u32, tag: u8) -> Vec<u8> {
    let mut b = b"RIFF".to_vec();
    b.extend_from_slice(&(36 + n).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes()); // PCM
    b.extend_from_slice(&1u16.to_le_bytes()); // mono
    b.extend_from_slice(&8000u32.to_le_bytes());
    b.extend_from_slice(&8000u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&8u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&n.to_le_bytes());
    b.extend((0..n).map(|i| (i as u8).wrapping_mul(tag)));
    b
}

/// A folder `name` under `dir` holding `files`.
fn folder(dir: &Path, name: &str, files: &[(&str, Vec<u8>)]) -> PathBuf {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    for (f, bytes) in files {
        std::fs::write(d.join(f), bytes).unwrap();
    }
    d
}

/// An album folder: two images (the one named `cover` sorts last) and two tracks.
fn album(dir: &Path, name: &str) -> PathBuf {
    folder(
        dir,
        name,
        &[
            ("back.png", png(1)),
            ("cover.png", png(2)),
            ("01 Intro.wav", wav(1000, 3)),
            ("02 Outro.wav", wav(2000, 5)),
        ],
    )
}

fn fails(repo: &Path, args: &[&str]) -> String {
    let o = mnode(repo, args);
    assert!(
        !o.status.success(),
        "mnode {args:?} should have failed: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn text(repo: &Path, args: &[&str]) -> String {
    let o = mnode(repo, args);
    assert!(
        o.status.success(),
        "mnode {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// (items, files, pins) of a repo.
fn counts(repo: &Path) -> (u64, u64, u64) {
    let stat = json(repo, &["repo", "stat"]);
    (
        stat["records"]["items"].as_u64().unwrap(),
        stat["files"].as_u64().unwrap(),
        stat["records"]["pins"].as_u64().unwrap(),
    )
}

fn publish(repo: &Path, dir: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "publish",
        "release",
        dir.to_str().unwrap(),
        "--title",
        "Tapes",
    ];
    args.extend_from_slice(extra);
    json(repo, &args)
}

fn body(repo: &Path, id: &str) -> Value {
    json(repo, &["record", "show", id])["record"]["body"].clone()
}

/// What `publish` or `add` reported for the file named `name`.
fn file_of<'a>(published: &'a Value, name: &str) -> &'a Value {
    let files = published["files"].as_array().unwrap();
    files
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with(name))
        .unwrap_or_else(|| panic!("no {name} in {published}"))
}

/// The file record `publish` made for the file named `name`.
fn record_of(published: &Value, name: &str) -> String {
    file_of(published, name)["record"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn a_refused_publish_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let repo = init(dir.path(), "a");
    let tapes = album(dir.path(), "tapes");
    let tapes = tapes.to_str().unwrap();
    let before = counts(&repo);
    for bad in [
        &["--date", "2024-13-45"][..],
        &["--tag", "Not A Tag"],
        &["--artist", "Bob", "--date", "yesterday"],
        &["--cover", "01 Intro.wav"],
        &["--cover", "elsewhere.png"],
    ] {
        let mut args = vec!["publish", "release", tapes, "--title", "Tapes"];
        args.extend_from_slice(bad);
        let e = fails(&repo, &args);
        assert!(e.contains("nothing was published"), "{bad:?}: {e}");
        assert_eq!(
            counts(&repo),
            before,
            "{bad:?} left records, files or pins behind"
        );
    }
    let e = fails(
        &repo,
        &[
            "publish",
            "release",
            tapes,
            "--title",
            "T",
            "--date",
            "2024-13-45",
        ],
    );
    assert!(e.contains("date"), "the error names the field: {e}");
    publish(&repo, Path::new(tapes), &["--date", "2024-11"]);
}

#[test]
fn a_corrupt_car_is_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let a = init(dir.path(), "a");
    let published = publish(&a, &album(dir.path(), "tapes"), &["--artist", "Bob"]);
    let release = published["release"].as_str().unwrap();
    let car = dir.path().join("tapes.car");
    json(&a, &["dag", "export", release, "-o", car.to_str().unwrap()]);
    let good = std::fs::read(&car).unwrap();
    // A flipped bit in the last block: every block before it is good (files among them).
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 5] ^= 0x01;
    let bad_car = dir.path().join("bad.car");
    std::fs::write(&bad_car, &bad).unwrap();

    let b = init(dir.path(), "b");
    let o = mnode(&b, &["--json", "dag", "import", bad_car.to_str().unwrap()]);
    assert!(!o.status.success());
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        !report["report"]["failures"].as_array().unwrap().is_empty(),
        "{report}"
    );
    assert_eq!(counts(&b), (0, 0, 0), "nothing stored or pinned: {report}");
    assert_eq!(json(&b, &["repo", "verify"])["ok"], true);
    let shown = mnode(&b, &["dag", "import", bad_car.to_str().unwrap()]).stdout;
    let shown = String::from_utf8_lossy(&shown);
    assert!(shown.contains("nothing was imported"), "{shown}");

    let imported = json(&b, &["dag", "import", car.to_str().unwrap()]);
    assert_eq!(imported["ok"], true, "{imported}");
    assert_eq!(counts(&b), (6, 4, 1), "the good CAR imports whole");
    assert_eq!(json(&b, &["repo", "verify"])["ok"], true);
}

#[test]
fn verify_names_a_pinned_item_whose_dag_is_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let a = init(dir.path(), "a");
    let published = publish(&a, &album(dir.path(), "tapes"), &[]);
    let release = published["release"].as_str().unwrap();
    let car = dir.path().join("tapes.car");
    json(&a, &["dag", "export", release, "-o", car.to_str().unwrap()]);

    // The same CAR without one track: its record and its file.
    let track = record_of(&published, "02 Outro.wav");
    let track_file = file_of(&published, "02 Outro.wav")["cid"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut reader = CarReader::new(std::fs::File::open(&car).unwrap()).unwrap();
    let roots = reader.roots().to_vec();
    let partial = dir.path().join("partial.car");
    let mut writer = CarWriter::new(std::fs::File::create(&partial).unwrap(), &roots).unwrap();
    while let Some((cid, bytes)) = reader.next_block().unwrap() {
        if cid.to_string() != track && cid.to_string() != track_file {
            writer.write_block(&cid, &bytes).unwrap();
        }
    }
    writer.finish().unwrap();

    let b = init(dir.path(), "b");
    let imported = json(&b, &["dag", "import", partial.to_str().unwrap()]);
    assert_eq!(imported["ok"], true, "{imported}");
    let o = mnode(&b, &["--json", "repo", "verify"]);
    assert!(!o.status.success(), "verify fails");
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["ok"], false);
    let problems = report["report"]["problems"].as_array().unwrap();
    let about_release = problems
        .iter()
        .find(|p| p["what"] == release)
        .unwrap_or_else(|| panic!("no problem names the release: {report}"));
    let problem = about_release["problem"].as_str().unwrap();
    assert!(
        problem.contains("incomplete") && problem.contains(&track),
        "{problem}"
    );
    let shown = String::from_utf8_lossy(&mnode(&b, &["repo", "verify"]).stdout).into_owned();
    assert!(
        shown.contains(&format!("FAIL {release}")) && shown.contains("FAILED"),
        "{shown}"
    );
}

#[test]
fn a_bad_setting_at_init_leaves_no_repo() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("r");
    let e = fails(&repo, &["init", "-c", "store.cache_mbb=16"]);
    assert!(e.contains("cache_mbb"), "{e}");
    assert!(!repo.exists(), "no half-made repo at {}", repo.display());
    let o = mnode(&repo, &["init", "-c", "store.cache_mb=16"]);
    assert!(
        o.status.success(),
        "the next init works: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    json(&repo, &["id"]);

    // An empty folder given to init is left empty.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    fails(&empty, &["init", "-c", "nonsense=1"]);
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
}

#[test]
fn publish_picks_the_cover_by_name_or_as_told() {
    let dir = tempfile::tempdir().unwrap();
    let repo = init(dir.path(), "a");
    let tapes = album(dir.path(), "tapes");
    let published = publish(&repo, &tapes, &[]);
    let cover = body(&repo, published["release"].as_str().unwrap())["cover"]["/"].clone();
    assert_eq!(
        cover,
        record_of(&published, "cover.png").as_str(),
        "cover.png, though back.png sorts first"
    );

    let published = publish(&repo, &tapes, &["--cover", "back.png"]);
    let cover = body(&repo, published["release"].as_str().unwrap())["cover"]["/"].clone();
    assert_eq!(cover, record_of(&published, "back.png").as_str());
    let path = tapes.join("back.png");
    let published = publish(&repo, &tapes, &["--cover", path.to_str().unwrap()]);
    let cover = body(&repo, published["release"].as_str().unwrap())["cover"]["/"].clone();
    assert_eq!(cover, record_of(&published, "back.png").as_str());

    // Without a cover-like name, the first image.
    let plain = folder(
        dir.path(),
        "plain",
        &[("b.png", png(7)), ("a.png", png(8)), ("c.wav", wav(10, 9))],
    );
    let published = publish(&repo, &plain, &[]);
    let cover = body(&repo, published["release"].as_str().unwrap())["cover"]["/"].clone();
    assert_eq!(cover, record_of(&published, "a.png").as_str());
}

#[test]
fn wav_files_make_an_audio_release() {
    let dir = tempfile::tempdir().unwrap();
    let repo = init(dir.path(), "a");
    let kind = |dir: &Path| {
        let published = publish(&repo, dir, &[]);
        body(&repo, published["release"].as_str().unwrap())["kind"].clone()
    };
    assert_eq!(
        kind(&album(dir.path(), "tapes")),
        "single",
        "two tracks and artwork"
    );
    let long = folder(
        dir.path(),
        "long",
        &[
            ("cover.png", png(4)),
            ("notes.txt", b"liner notes".to_vec()),
            ("1.wav", wav(100, 1)),
            ("2.wav", wav(100, 2)),
            ("3.wav", wav(100, 3)),
            ("4.wav", wav(100, 4)),
        ],
    );
    assert_eq!(kind(&long), "album");
    let images = folder(
        dir.path(),
        "images",
        &[("x.png", png(5)), ("y.png", png(6))],
    );
    assert_eq!(kind(&images), "images");
    let added = json(&repo, &["add", long.join("1.wav").to_str().unwrap()]);
    assert_eq!(added[0]["type"], "art.audio");
}

#[test]
fn an_artist_name_is_reused() {
    let dir = tempfile::tempdir().unwrap();
    let repo = init(dir.path(), "a");
    let tapes = album(dir.path(), "tapes");
    let first = publish(&repo, &tapes, &["--artist", "The Kitchen Band"]);
    let second = publish(&repo, &tapes, &["--artist", "The Kitchen Band"]);
    let artist = |p: &Value| body(&repo, p["release"].as_str().unwrap())["artists"][0]["/"].clone();
    assert_eq!(artist(&first), artist(&second), "the same artist record");
    assert_eq!(first["artists"][0]["new"], true, "{first}");
    assert_eq!(second["artists"][0]["new"], false, "{second}");
    let artists = json(&repo, &["record", "list", "art.artist"]);
    assert_eq!(artists["items"].as_array().unwrap().len(), 1, "{artists}");
    let shown = text(
        &repo,
        &[
            "publish",
            "release",
            tapes.to_str().unwrap(),
            "--title",
            "T",
            "--artist",
            "The Kitchen Band",
        ],
    );
    assert!(
        shown.contains("The Kitchen Band: using your existing"),
        "says which artist it picked: {shown}"
    );
    // Another name makes another artist.
    let third = publish(&repo, &tapes, &["--artist", "Someone Else"]);
    assert_ne!(artist(&third), artist(&first));
}

#[test]
fn media_records_have_titles() {
    let dir = tempfile::tempdir().unwrap();
    let repo = init(dir.path(), "a");
    let tapes = album(dir.path(), "tapes");
    let published = publish(&repo, &tapes, &[]);
    assert_eq!(
        body(&repo, &record_of(&published, "01 Intro.wav"))["title"]["full"],
        "01 Intro"
    );
    assert_eq!(
        body(&repo, &record_of(&published, "cover.png"))["title"]["full"],
        "cover"
    );
    for kind in ["art.image", "art.audio"] {
        let listed = json(&repo, &["record", "list", kind]);
        for item in listed["items"].as_array().unwrap() {
            assert_ne!(item["summary"], "", "{item}");
        }
    }
    let shown = text(&repo, &["add", tapes.join("cover.png").to_str().unwrap()]);
    assert!(
        shown.contains("file bafkr4i") && shown.contains("record bafyrei"),
        "add labels its CIDs: {shown}"
    );
}

#[test]
fn get_into_a_missing_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let repo = init(dir.path(), "a");
    let src = dir.path().join("x.png");
    std::fs::write(&src, png(1)).unwrap();
    let added = json(&repo, &["add", src.to_str().unwrap()]);
    let cid = added[0]["cid"].as_str().unwrap();
    let out = dir.path().join("nonexistent").join("dir").join("x.png");
    let e = fails(&repo, &["get", cid, "-o", out.to_str().unwrap()]);
    assert!(
        e.contains("does not exist") && e.contains("--parents"),
        "{e}"
    );
    assert!(
        !dir.path().join("nonexistent").exists(),
        "no folder was made"
    );
    json(
        &repo,
        &["get", cid, "-o", out.to_str().unwrap(), "--parents"],
    );
    assert_eq!(std::fs::read(&out).unwrap(), png(1));
}

/// Through a daemon: curl's default `Content-Type` is not taken for the file's type; a refused
/// publish writes nothing; artists are reused; `get` makes no folders.
#[test]
fn through_a_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let repo = init(dir.path(), "a");
    let tapes = album(dir.path(), "tapes");
    let d = run(&repo);
    let info: Value =
        serde_json::from_slice(&std::fs::read(repo.join("daemon.json")).unwrap()).unwrap();
    let api = info["api"].as_str().unwrap().to_owned();
    let token = std::fs::read_to_string(repo.join("api.token")).unwrap();

    // Like the README: `curl --data-binary` sends application/x-www-form-urlencoded.
    let upload = |name: &str, bytes: &[u8]| -> Value {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let o = Command::new("curl")
            .args(["-sf", "-X", "PUT"])
            .arg(format!("{api}/api/v1/files?name={name}"))
            .arg("-H")
            .arg(format!("Authorization: Bearer {}", token.trim()))
            .arg("--data-binary")
            .arg(format!("@{}", path.display()))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let v = upload("dot.png", &png(9));
    assert_eq!(v["media_type"], "image/png", "{v}");
    let noise: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let v = upload("track1.flac", &noise);
    assert_eq!(v["media_type"], "audio/flac", "{v}");
    assert_eq!(v["record"]["type"], "art.audio", "{v}");
    let v = upload("data", &noise[..1000]);
    assert_eq!(v["media_type"], "application/octet-stream", "{v}");

    let before = counts(&d.repo);
    let e = fails(
        &d.repo,
        &[
            "publish",
            "release",
            tapes.to_str().unwrap(),
            "--title",
            "T",
            "--artist",
            "Bob",
            "--tag",
            "Bad Tag",
        ],
    );
    assert!(e.contains("nothing was published"), "{e}");
    assert_eq!(counts(&d.repo), before, "nothing was written");

    let first = publish(&d.repo, &tapes, &["--artist", "Bob"]);
    let second = publish(&d.repo, &tapes, &["--artist", "Bob"]);
    assert_eq!(first["artists"][0]["id"], second["artists"][0]["id"]);
    assert_eq!(second["artists"][0]["new"], false);
    let release = body(&d.repo, second["release"].as_str().unwrap());
    assert_eq!(release["kind"], "single");
    assert_eq!(
        release["cover"]["/"],
        record_of(&second, "cover.png").as_str()
    );

    let cid = first["files"][0]["cid"].as_str().unwrap();
    let out = dir.path().join("missing").join("x");
    let e = fails(&d.repo, &["get", cid, "-o", out.to_str().unwrap()]);
    assert!(e.contains("--parents"), "{e}");
    assert!(!dir.path().join("missing").exists());
    json(
        &d.repo,
        &["get", cid, "-o", out.to_str().unwrap(), "--parents"],
    );
    assert!(out.exists());
}

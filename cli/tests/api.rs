//! The README's HTTP walk-through, run as written (bash, curl, jq) against a real daemon:
//! register, log in, upload a file, create and edit a release, read everything back through
//! `/ipfs/`, verify the CAR.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;

use support::{have_tools, readme_block, start};

#[test]
fn readme_api_walkthrough_with_curl() {
    if !have_tools(&["bash", "curl", "jq"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path(), "node");
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.repo.join("daemon.json")).unwrap()).unwrap();
    let api = info["api"].as_str().unwrap().to_owned();
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    // Bytes no content sniffer knows: curl declares them form data, so the node goes by the
    // name, and `.flac` makes an audio/flac file with an art.audio record.
    let track: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(work.join("track1.flac"), &track).unwrap();
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_mnode"))
        .parent()
        .unwrap()
        .to_owned();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &readme_block("api-walkthrough")])
        .current_dir(&work)
        .env("API", &api)
        .env("PATH", path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the walk-through failed:\n{stdout}\n{stderr}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines.contains(&"Home Recordings (Remastered)"),
        "the edited title is read back:\n{stdout}"
    );
    assert!(lines.contains(&"2"), "two versions:\n{stdout}");
    assert_eq!(std::fs::read(work.join("track1.copy.flac")).unwrap(), track);
    assert!(work.join("release.car").metadata().unwrap().len() > track.len() as u64);
    // By its UnixFS CID: the same bytes, and a CAR of the one raw leaf a file this small is.
    assert_eq!(std::fs::read(work.join("track1.ipfs.flac")).unwrap(), track);
    let car = std::fs::read(work.join("track1.car")).unwrap();
    let reader = mnode_dag::car::CarReader::new(&car[..]).unwrap();
    let root = reader.roots()[0];
    let blocks: Vec<_> = reader.collect::<Result<_, _>>().unwrap();
    assert_eq!(blocks, vec![(root, track.clone())]);
    assert_eq!(root, mnode_dag::unixfs::leaf_cid(&track));
}

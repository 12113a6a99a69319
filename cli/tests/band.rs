//! The README's band walk-through, run as written (bash, jq) against two daemons: a group of
//! three on two nodes keeps its artist page together, one member recovers a lost key and keeps
//! editing, and a post only the band reads.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;

use support::{have_tools, json, readme_block, start, wait_until};

#[test]
fn readme_band_walkthrough_on_two_nodes() {
    if !have_tools(&["bash", "jq"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let a = start(dir.path(), "a");
    let b = start(dir.path(), "b");
    // "Set up and connected as above": B dials A.
    let addr = json(&a.repo, &["id"])["addrs"][0]
        .as_str()
        .unwrap()
        .to_owned();
    json(&b.repo, &["connect", &addr]);

    // The walk-through's `~/.mnode-a` and `~/.mnode-b` are these repos.
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::os::unix::fs::symlink(&a.repo, home.join(".mnode-a")).unwrap();
    std::os::unix::fs::symlink(&b.repo, home.join(".mnode-b")).unwrap();
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
        .args(["-euo", "pipefail", "-c", &readme_block("band-walkthrough")])
        .current_dir(&home)
        .env("HOME", &home)
        .env("PATH", path)
        .env("MNODE_PASSPHRASE", "a test passphrase")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the walk-through failed:\n{stdout}\n{stderr}"
    );

    // Both recovery keys were written, and the new one is another key.
    let old = std::fs::read_to_string(home.join("cy.recovery")).unwrap();
    let new = std::fs::read_to_string(home.join("cy.recovery.new")).unwrap();
    assert!(!old.trim().is_empty() && old.trim() != new.trim());

    // The page's last version, signed on B with Cy's new key, reaches A.
    let pages = json(&a.repo, &["record", "list", "art.artist_group"]);
    let page = pages["items"][0]["id"].as_str().unwrap().to_owned();
    wait_until("Cy's last version on A", || {
        json(&a.repo, &["record", "show", &page])["record"]["body"]["bio"] == "Still us."
    });
    let history = json(&a.repo, &["record", "history", &page]);
    let versions = history["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 3, "{history}");
    let cy = json(&b.repo, &["account", "list"])
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["handle"] == "cy")
        .unwrap()["did"]
        .as_str()
        .unwrap()
        .to_owned();
    let signed_by = |v: &serde_json::Value| {
        let shown = json(
            &a.repo,
            &["record", "show", "--exact", v["cid"].as_str().unwrap()],
        );
        shown["record"]["author"].as_str().unwrap().to_owned()
    };
    assert_eq!(signed_by(&versions[1]), cy, "Cy's first key: {history}");
    assert_ne!(
        signed_by(&versions[2]),
        cy,
        "the key the recovery granted signed the last version: {history}"
    );

    // Ben's message reaches Cy on B on her own feed's topic: B follows nobody on A.
    // The band's release: Cy's edit from B reaches A, where Ana (a reader) reads it and the
    // node's owner (not in the band) does not.
    let releases = json(&a.repo, &["record", "list", "art.release", "--as", "ana"]);
    let release = releases["items"][0]["id"].as_str().unwrap().to_owned();
    wait_until("Cy's edit of the release on A", || {
        json(&a.repo, &["record", "show", &release, "--as", "ana"])["record"]["body"]["description"]
            == "Live in the rehearsal room."
    });
    let withheld = json(&a.repo, &["record", "show", &release]);
    assert_eq!(withheld["private"]["readable"], false, "{withheld}");
    assert!(withheld["record"]["body"].is_null(), "{withheld}");
    // The take on A's disk is ciphertext: the blob its record names is not the file.
    let take = std::fs::read(home.join("take.wav")).unwrap();
    assert_eq!(take, std::fs::read(home.join("take-on-b.wav")).unwrap());
    let shown = json(&a.repo, &["record", "show", &release, "--as", "ben"]);
    let take_record = shown["record"]["body"]["files"][0]["/"]
        .as_str()
        .unwrap()
        .to_owned();
    let shown = json(&a.repo, &["record", "show", &take_record, "--as", "ben"]);
    let body = &shown["record"]["body"];
    let file = if body["file"].is_object() {
        &body["file"]
    } else {
        body
    };
    assert!(file["sealed"]["key"].is_string(), "{shown}");
    let blob = file["blob"]["/"].as_str().unwrap().to_owned();
    assert_ne!(blob, blake3_cid(&take), "{shown}");

    wait_until("Ben's message on B", || {
        json(&b.repo, &["message", "list", "--as", "cy"])
            .to_string()
            .contains("See you there")
    });
}

/// The CID a file's plain bytes would have as a blob.
fn blake3_cid(data: &[u8]) -> String {
    mnode_dag::cids::blob_cid_of(data).to_string()
}

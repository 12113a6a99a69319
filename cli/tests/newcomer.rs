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

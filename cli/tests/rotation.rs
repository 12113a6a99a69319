//! `mnode account rotate-key` and `mnode account recover`, offline (the CLI runs the API in
//! itself) and through a running daemon.
#![allow(clippy::unwrap_used)]

mod support;

use support::{init, json, mnode, run};

#[test]
fn an_account_rotates_its_key_and_recovers_with_the_key_saved_at_creation() {
    let dir = tempfile::tempdir().unwrap();
    let repo = init(dir.path(), "a");
    let saved = dir.path().join("bob.recovery");
    let bob = json(
        &repo,
        &[
            "account",
            "create",
            "bob",
            "--email",
            "bob@example.org",
            "--recovery-key-out",
            saved.to_str().unwrap(),
        ],
    );
    let identity = bob["did"].as_str().unwrap().to_owned();
    let text = std::fs::read_to_string(&saved).unwrap();
    assert!(text.starts_with("mnode-recovery-1:"), "{text}");
    assert_eq!(bob["recovery_key"].as_str(), Some(text.trim()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&saved).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "only its owner reads the recovery key");
    }

    // Offline: a new key for the same identity.
    let rotated = json(&repo, &["account", "rotate-key", "bob"]);
    assert_eq!(rotated["identity"], identity.as_str());
    assert_ne!(rotated["key"], identity.as_str());
    assert!(
        rotated["recovery_key"].is_null(),
        "made at creation: {rotated}"
    );

    // The node owner's account was made by `mnode init`, before any key log: its first
    // rotation makes one, and says the recovery key once.
    let out = mnode(&repo, &["account", "rotate-key"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("shown only now"), "{said}");
    assert!(said.contains("mnode-recovery-1:"), "{said}");

    // Through the daemon: a wrong file is refused and changes nothing; the saved one recovers.
    let daemon = run(&repo);
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, format!("mnode-recovery-1:{}\n", "cd".repeat(32))).unwrap();
    let refused = mnode(
        &daemon.repo,
        &[
            "account",
            "recover",
            "bob",
            "--recovery-key",
            wrong.to_str().unwrap(),
        ],
    );
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("is not the recovery key of"), "{err}");
    let before = json(&daemon.repo, &["account", "list"]);
    let next = dir.path().join("bob.recovery.2");
    let recovered = json(
        &daemon.repo,
        &[
            "account",
            "recover",
            "bob",
            "--recovery-key",
            saved.to_str().unwrap(),
            "--recovery-key-out",
            next.to_str().unwrap(),
        ],
    );
    assert_eq!(recovered["identity"], identity.as_str());
    assert_ne!(recovered["key"], rotated["key"]);
    let fresh = std::fs::read_to_string(&next).unwrap();
    assert_ne!(fresh, text, "a new recovery key");
    let after = json(&daemon.repo, &["account", "list"]);
    assert_ne!(before, after, "bob signs with the recovered key");
}

//! Key files: created owner-only, never silently overwritten, usable by every command.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::{tempdir, wallet};

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

#[test]
fn keygen_creates_an_owner_only_file_and_refuses_to_overwrite_it() {
    let home = tempdir();
    let path = home.path().join("my-key.json");
    let file = path.to_str().expect("utf-8 path");

    let run = wallet(home.path(), &["keygen", "--out", file]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(mode(&path), 0o600);
    let address = run.stdout.trim().to_string();
    assert!(address.starts_with("ldg1"), "{run:?}");
    let content = fs::read_to_string(&path).expect("reads");

    let run = wallet(home.path(), &["address", "--key", file]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout.trim(), address);

    let run = wallet(home.path(), &["keygen", "--out", file]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stderr_lines().len(), 1, "{run:?}");
    assert!(run.stderr.contains("already exists"), "{run:?}");
    assert_eq!(
        fs::read_to_string(&path).expect("reads"),
        content,
        "untouched"
    );

    // --force replaces it, still owner-only even when the old file was not.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
    let run = wallet(home.path(), &["keygen", "--out", file, "--force"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_ne!(run.stdout.trim(), address, "a new key");
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn keygen_defaults_to_the_wallet_directory_under_home() {
    let home = tempdir();
    let run = wallet(home.path(), &["--json", "keygen"]);
    assert_eq!(run.code, 0, "{run:?}");
    let v = run.json();
    let path = home.path().join(".ledger-wallet").join("key.json");
    assert_eq!(v["key_file"], path.to_str().expect("utf-8 path"));
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().expect("has a parent")), 0o700);
    let run = wallet(home.path(), &["address"]);
    assert_eq!(run.stdout.trim(), v["address"].as_str().expect("address"));
}

#[test]
fn a_readable_key_file_still_works_but_is_warned_about() {
    let home = tempdir();
    let path = home.path().join("k.json");
    let file = path.to_str().expect("utf-8 path");
    assert_eq!(wallet(home.path(), &["keygen", "--out", file]).code, 0);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
    let run = wallet(home.path(), &["address", "--key", file]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("chmod 600"), "{run:?}");
}

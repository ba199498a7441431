//! What `testnet up` tells a person to type next, spelled so that it runs as printed, and the
//! record of the last started testnet that lets `wallet` (and a later `testnet` from another
//! folder) find it.
//!
//! A command is printed as the binary's name when `PATH` finds this very binary, else as its path
//! (with `~` for `$HOME`, which the shell expands): `./scripts/testnet.sh` runs the binary from
//! cargo's target folder, which is not on `PATH`.

use std::path::{Path, PathBuf};

/// The file naming the folder of the testnet `testnet up` started last:
/// `$XDG_STATE_HOME/ledger/testnet-dir`, default `~/.local/state/ledger/testnet-dir`. The wallet
/// reads it (wallet/src/discover.rs) when neither `--node` nor `LEDGER_NODE` is given.
pub fn last_testnet_pointer() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| home().map(|h| h.join(".local/state")))?;
    Some(base.join("ledger/testnet-dir"))
}

/// Records `dir` as the last started testnet. A failure only costs the wallet's discovery, so it
/// is returned for a note, never fatal.
pub fn record_last_testnet(dir: &Path) -> std::io::Result<()> {
    let Some(path) = last_testnet_pointer() else {
        return Ok(());
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{}\n", dir.display()))?;
    std::fs::rename(&tmp, &path)
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// How to run the binary `name` that sits next to this one (`testnet`, `wallet`), as a person
/// types it: `name` if `PATH` finds that same file, else its path with `~` for `$HOME`.
pub fn command(name: &str) -> String {
    let Some(bin) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(name)))
    else {
        return name.to_string();
    };
    if on_path(name).is_some_and(|found| same_file(&found, &bin)) {
        return name.to_string();
    }
    tilde(&bin)
}

/// `--dir <dir>` when `dir` is not what a bare command finds (`$TESTNET_DIR`, else ./.testnet).
pub fn dir_flag(dir: &Path) -> String {
    let default = std::env::var_os("TESTNET_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".testnet"));
    match std::path::absolute(&default) {
        Ok(d) if same_file(&d, dir) || d == dir => String::new(),
        _ => format!(" --dir {}", shell_word(&tilde(dir))),
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// `/home/me/x` as `~/x`; other paths unchanged.
fn tilde(p: &Path) -> String {
    if let Some(h) = home()
        && let Ok(rest) = p.strip_prefix(&h)
    {
        return format!("~/{}", rest.display());
    }
    p.display().to_string()
}

/// Quotes a word for a POSIX shell when it holds anything but safe characters (a leading `~/` is
/// kept outside the quotes so the shell still expands it).
fn shell_word(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c);
    let (prefix, rest) = match s.strip_prefix("~/") {
        Some(rest) => ("~/", rest),
        None => ("", s),
    };
    if rest.chars().all(safe) {
        s.to_string()
    } else {
        format!("{prefix}'{}'", rest.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_words_are_quoted_and_a_home_prefix_stays_expandable() {
        assert_eq!(shell_word("/tmp/a.b-c"), "/tmp/a.b-c");
        assert_eq!(shell_word("/tmp/my net"), "'/tmp/my net'");
        assert_eq!(shell_word("~/my net"), "~/'my net'");
        assert_eq!(shell_word("/tmp/it's"), r"'/tmp/it'\''s'");
    }
}
